//! Semantic residual search: content derived from the subject's own
//! documents (excerpts, notes, copies filed under someone else), found from
//! their own chunks as they were before deletion.
//!
//! Similarity of embeddings alone does not say "derived from this person":
//! on e-mail, header blocks, templates, newsletters and forwarded memos are
//! as close to one another (often > 0.97) as an excerpt is to its source,
//! and a two-sentence excerpt of a long chunk is often not close to it at
//! all (< 0.5). So the signals are:
//! - **own words**: the share of a chunk's words that lie in a word 5-gram of
//!   text the person wrote (their documents without header lines, quoted or
//!   forwarded parts; also with their identifiers left out, as excerpts are
//!   stored), counting only 5-grams specific to them — one that also appears
//!   in several other sources is boilerplate, neither for nor against;
//! - **exact nearest neighbours** of their own chunks' vectors, where words
//!   cannot decide (chunks stored without text, or no own text): a near copy
//!   of a chunk of theirs that is not copied widely.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use uuid::Uuid;

use super::Probe;
use crate::context::Context;
use crate::domain::CollectionSpec;
use crate::error::Result;

/// Words per shingle: long enough that phrases rarely repeat by chance.
pub(super) const SHINGLE: usize = 5;

/// A 5-gram in this many other sources (or more) is not the person's own.
pub const COMMON_SOURCES: usize = 3;

/// Fewest own words for an excerpt: a short line proves nothing.
pub const MIN_OWN_WORDS: usize = 8;

/// Leading header lines of a message (`From:`, `To:`, …).
static HEADER_LINE: LazyLock<Option<Regex>> =
    LazyLock::new(|| Regex::new(r"(?i)^(from|to|cc|bcc|subject|date|sent|reply-to):").ok());

/// Where text written by someone else begins: reply and forward markers,
/// quoted lines, a header block inside the body, or a Notes-style
/// "Name  01/02/2001 10:00 AM" line. A line that begins with `>` is quoted
/// when a word or another `>` follows, not when a number, sign or currency
/// does: `> 5,000 MW` or `>= 10%` in a table is the author's own.
static QUOTE_START: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(
        r"(?im)-{3,}\s*(original message|forwarded by)|^\s*(begin forwarded message|>(?:>|[ \t]*[^\d\s$€£=+.<>-]))|^\s*(from|to|sent|cc|subject):|^[^\n]*\d{1,2}/\d{1,2}/\d{2,4}\s+\d{1,2}:\d{2}|^[^\n]*wrote:\s*$",
    )
    .ok()
});

/// A structural line: a header or metadata field (`From: …`, `To: …`,
/// `Subject: …`, `Date: …`, `Title: …`, `Source: …`: up to three words
/// before a colon at the start of the line) or a bracketed tag line
/// (`[source: crm]`, `[page 3]`).
static FIELD_LINE: LazyLock<Option<Regex>> = LazyLock::new(|| {
    Regex::new(r"^\s*(?:[A-Za-z][\w.-]*(?:[ ][\w.-]+){0,2}[ \t]*:(?:\s|$)|\[[^\]]{0,80}\]\s*$)").ok()
});

/// Words of a chunk that lie on structural lines: fields (see
/// [`FIELD_LINE`]), lines of addresses continuing them, and a title (a
/// first line of at most `TITLE_WORDS` words, without a sentence's final
/// stop, followed by an empty line). A pipeline prepends these to every
/// chunk; they say where the text came from, not what it says, so they
/// count neither for nor against the person's own words.
pub fn structural_words(text: &str) -> Vec<bool> {
    let mut out = Vec::new();
    let mut in_field = false;
    let lines: Vec<&str> = text.split('\n').collect();
    let first = lines.iter().position(|l| !l.trim().is_empty());
    for (i, line) in lines.iter().enumerate() {
        let t = line.trim();
        let n = word_hashes(line).len();
        let field = FIELD_LINE.as_ref().is_some_and(|r| r.is_match(t));
        let continued = in_field && !field && addresses_only(t);
        let title = Some(i) == first
            && n <= TITLE_WORDS
            && !t.ends_with(['.', '!', '?', ','])
            && lines.get(i + 1).is_some_and(|l| l.trim().is_empty());
        in_field = (field || continued) && !t.is_empty();
        out.extend(std::iter::repeat_n(field || continued || title, n));
    }
    out
}

/// Longest first line taken for a title.
const TITLE_WORDS: usize = 10;

/// The part of a document its author wrote: without the leading header
/// block, up to the first sign of quoted or forwarded text.
pub fn authored(doc: &str) -> &str {
    let body = &doc[header_end(doc)..];
    let cut = QUOTE_START.as_ref().and_then(|r| r.find(body)).map_or(body.len(), |m| m.start());
    &body[..cut]
}

/// Where a leading header block (`From:`, `To:`, … and their continuation
/// lines of addresses, even across a chunk boundary) ends.
fn header_end(doc: &str) -> usize {
    let mut end = 0;
    let mut in_header = false;
    for line in doc.split_inclusive('\n') {
        let t = line.trim();
        let is_header = HEADER_LINE.as_ref().is_some_and(|r| r.is_match(t));
        if is_header || t.is_empty() || (in_header && addresses_only(t)) {
            in_header |= is_header;
            end += line.len();
        } else {
            break;
        }
    }
    end
}

/// A line that lists addresses (a header continued on the next line).
fn addresses_only(line: &str) -> bool {
    let tokens: Vec<&str> = line.split([' ', ',', ';', '\t']).filter(|t| !t.is_empty()).collect();
    !tokens.is_empty() && tokens.iter().filter(|t| t.contains('@')).count() * 2 >= tokens.len()
}

/// FNV-1a of each lower-cased alphanumeric word.
pub(super) fn word_hashes(text: &str) -> Vec<u64> {
    word_hashes_joining(text, '\0')
}

/// [`word_hashes`] with `join` read as a letter: a lower-cased word of
/// the index's queries that holds what lower-casing a text's letter gives
/// (`İ` → `i` + U+0307) hashes as the text's word did.
pub(super) fn word_hashes_joining(text: &str, join: char) -> Vec<u64> {
    let mut out = Vec::new();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut in_word = false;
    for c in text.chars() {
        if c.is_ascii_alphanumeric() {
            // The same as `to_lowercase` for ASCII, without its iterator.
            h = (h ^ u64::from(c.to_ascii_lowercase())).wrapping_mul(0x0100_0000_01b3);
            in_word = true;
        } else if !c.is_ascii() && (c.is_alphanumeric() || (c == join && join != '\0')) {
            for l in c.to_lowercase() {
                h = (h ^ u64::from(u32::from(l))).wrapping_mul(0x0100_0000_01b3);
            }
            in_word = true;
        } else if in_word {
            out.push(h);
            h = 0xcbf2_9ce4_8422_2325;
            in_word = false;
        }
    }
    if in_word {
        out.push(h);
    }
    out
}

/// Winnowing (Schleimer, Wilkerson and Aiken, SIGMOD 2003): of every
/// `window` consecutive 5-grams of `sequence`, the smallest (the rightmost
/// of equal ones) goes into `out`; a sequence shorter than the window gives
/// all of its 5-grams. Any text that holds `window` consecutive 5-grams of
/// the sequence (a run of `window + 4` words) holds one selected: looking
/// up the selected ones finds every chunk that copies such a run, with about
/// `2 / (window + 1)` of the keys. `window` 1 selects every 5-gram.
pub(super) fn winnow(sequence: &[u64], window: usize, out: &mut HashSet<u64>) {
    if window <= 1 || sequence.len() <= window {
        out.extend(sequence.iter().copied());
        return;
    }
    for w in sequence.windows(window) {
        if let Some(min) = w.iter().rev().min() {
            out.insert(*min);
        }
    }
}

pub(super) fn shingles(words: &[u64]) -> impl Iterator<Item = u64> + '_ {
    words.windows(SHINGLE).map(|w| {
        w.iter().fold(0x9e37_79b9_7f4a_7c15_u64, |acc, x| (acc.rotate_left(17) ^ x).wrapping_mul(0x2545_f491_4f6c_dd1d))
    })
}

/// The 5-grams of the text a person wrote.
#[derive(Debug, Default)]
pub struct OwnWords {
    /// Some text of the person's own chunks was read (their own words may
    /// be none, or too few for a 5-gram).
    read_text: bool,
    shingles: HashSet<u64>,
    /// The ones the residual index is asked for (see [`winnow`]).
    query: HashSet<u64>,
}

/// Which of a chunk's words lie in the person's 5-grams.
#[derive(Debug, Clone)]
pub struct Overlap {
    pub words: usize,
    /// Which words lie on structural lines (see [`structural_words`]).
    pub structural: Vec<bool>,
    /// (position of the 5-gram's first word, 5-gram)
    pub hits: Vec<(usize, u64)>,
}

impl OwnWords {
    /// From the person's own documents, each in full (chunks joined in order).
    #[cfg(test)]
    pub fn from_documents<'a>(documents: impl IntoIterator<Item = &'a str>) -> Self {
        Self::from_documents_winnowed(documents, 1)
    }

    /// [`Self::from_documents`], asking the index for the 5-grams
    /// [`winnow`] selects with `window`.
    pub fn from_documents_winnowed<'a>(documents: impl IntoIterator<Item = &'a str>, window: usize) -> Self {
        let mut own = Self::default();
        for d in documents {
            // Text of theirs was read: words decide wherever text is stored
            // (see `text_known`), also when all they wrote is too short for a
            // 5-gram ("Approved.").
            own.read_text = true;
            let sequence: Vec<u64> = shingles(&word_hashes(authored(d))).collect();
            winnow(&sequence, window, &mut own.query);
            own.shingles.extend(sequence);
        }
        own
    }

    pub fn is_empty(&self) -> bool {
        self.shingles.is_empty()
    }

    /// Whether the person's own chunks had text to read: then words decide
    /// wherever text is stored, also when none of it is theirs (headers and
    /// quoted mail only) or all they wrote is one to four words ("Approved."):
    /// nothing can be derived from so little, and a copy of such a chunk names
    /// them in its headers, which the lexical search finds. Measured at a
    /// million vectors (examples/bench): the exact vector search this skips
    /// took 2–6 s per erasure of such a sender, and with it back for one- to
    /// four-word writers the residual stage's p95 under load went from 1.5 s
    /// to 4.6 s, for near copies that words already find.
    pub fn text_known(&self) -> bool {
        self.read_text
    }

    /// The person's 5-grams.
    #[cfg(test)]
    pub fn shingles(&self) -> impl Iterator<Item = u64> + '_ {
        self.shingles.iter().copied()
    }

    /// The 5-grams the residual index is asked for: all of them, or those
    /// winnowing selected.
    pub fn query_shingles(&self) -> impl Iterator<Item = u64> + '_ {
        self.query.iter().copied()
    }

    /// The chunk's overlap with the person's words, if any.
    pub fn overlap(&self, text: &str) -> Option<Overlap> {
        if self.shingles.is_empty() {
            return None;
        }
        let words = word_hashes(text);
        let hits: Vec<(usize, u64)> = shingles(&words).enumerate().filter(|(_, s)| self.shingles.contains(s)).collect();
        (!hits.is_empty()).then(|| Overlap { words: words.len(), structural: structural_words(text), hits })
    }
}

impl Overlap {
    /// Words covered by the person's own 5-grams, and words that count
    /// neither for nor against: covered only by `common` ones (boilerplate)
    /// or on structural lines (headers, metadata, a title), when not own.
    pub fn own_words(&self, common: &HashSet<u64>) -> (usize, usize) {
        let mut own = vec![false; self.words];
        let mut shared = vec![false; self.words];
        for (i, s) in &self.hits {
            let span = *i..(*i + SHINGLE).min(self.words);
            let marks = if common.contains(s) { &mut shared } else { &mut own };
            marks[span].iter_mut().for_each(|c| *c = true);
        }
        let own_n = own.iter().filter(|c| **c).count();
        for (s, structural) in shared.iter_mut().zip(&self.structural) {
            *s |= *structural;
        }
        let boilerplate = own.iter().zip(&shared).filter(|(o, s)| !**o && **s).count();
        (own_n, boilerplate)
    }
}

/// 5-grams found in `COMMON_SOURCES` or more distinct sources (boilerplate,
/// templates, widely quoted text), ignoring sources in `named` (those that
/// name the person: a reply quoting them is still about them).
pub fn common_shingles<'a>(
    overlaps: impl IntoIterator<Item = (&'a str, &'a Overlap)>,
    named: &HashSet<&str>,
) -> HashSet<u64> {
    let mut sources: HashMap<u64, HashSet<&str>> = HashMap::new();
    for (source, o) in overlaps.into_iter().filter(|(s, _)| !named.contains(s)) {
        for (_, s) in &o.hits {
            sources.entry(*s).or_default().insert(source);
        }
    }
    sources.into_iter().filter(|(_, s)| s.len() >= COMMON_SOURCES).map(|(h, _)| h).collect()
}

/// The person's own documents from lineage: `texts`, their chunks' (source,
/// text) as [`crate::store::lineage::chunk_texts_in_order`] orders them, joined per
/// source in order; the probes' texts when lineage holds no text. Each as
/// written and as `strip` leaves it (without the person's identifiers:
/// excerpts are usually stored that way).
pub fn own_words<'a>(
    texts: impl IntoIterator<Item = (&'a str, Option<&'a str>)>,
    probes: &[Probe],
    strip: impl Fn(&str) -> String,
    window: usize,
) -> OwnWords {
    let mut docs: Vec<(&str, String)> = Vec::new();
    for (source, text) in texts {
        let Some(text) = text else { continue };
        match docs.last_mut() {
            Some((s, doc)) if *s == source => {
                doc.push_str("\n\n");
                doc.push_str(text);
            }
            _ => docs.push((source, text.to_owned())),
        }
    }
    if docs.is_empty() {
        docs = probes.iter().filter_map(|p| p.text.clone()).map(|t| ("", t)).collect();
    }
    let stripped: Vec<String> = docs.iter().map(|(_, d)| strip(d)).collect();
    let documents = docs.iter().map(|(_, d)| d.as_str()).chain(stripped.iter().map(String::as_str));
    OwnWords::from_documents_winnowed(documents, window)
}

/// A chunk near one of the probes.
#[derive(Debug, Clone)]
pub struct Neighbour {
    pub collection_id: Uuid,
    pub point_id: Uuid,
    pub source_id: String,
    /// Cosine similarity to the closest probe, and that probe.
    pub similarity: f32,
    pub probe: usize,
    /// Whether the backend holds the chunk's text (then own words decide).
    pub has_text: bool,
}

/// Exact neighbours of the probes in one collection, at least `floor`
/// similar, the `pool` closest.
///
/// # Errors
/// Backend failures.
pub async fn neighbours(
    ctx: &Context,
    spec: &CollectionSpec,
    probes: &[Vec<f32>],
    floor: f32,
    pool: usize,
) -> Result<Vec<Neighbour>> {
    let usable: Vec<Vec<f32>> = probes.iter().filter(|p| p.len() == spec.dimension).cloned().collect();
    if usable.is_empty() {
        return Ok(Vec::new());
    }
    let hits = ctx.stores.get(spec)?.search_exact(spec, &usable, floor, pool).await?;
    Ok(hits
        .into_iter()
        .map(|h| Neighbour {
            collection_id: spec.collection_id,
            point_id: h.id,
            source_id: h.payload.source_id,
            similarity: h.score,
            probe: h.probe,
            has_text: h.payload.text.is_some(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_hashes_are_fnv_of_each_lower_cased_word_whatever_the_script() {
        // The hashes are stored in the residual index: they must not change.
        let reference = |text: &str| -> Vec<u64> {
            text.split(|c: char| !c.is_alphanumeric())
                .filter(|w| !w.is_empty())
                .map(|w| w.chars().flat_map(char::to_lowercase).fold(0xcbf2_9ce4_8422_2325_u64, |h, l| (h ^ u64::from(u32::from(l))).wrapping_mul(0x0100_0000_01b3)))
                .collect()
        };
        for text in ["Hello, World 42", "JEFF.Dasovich@ENRON.com", "Grüße aus Köln — ĐẶNG Văn Lâm", "İstanbul ΣΟΦΊΑ ΟΔΟΣ x_y", ""] {
            assert_eq!(word_hashes(text), reference(text), "{text}");
        }
    }

    /// Words decide where the person's chunks hold text: their own words,
    /// none (headers and quoted mail), or too few for a 5-gram; only no text
    /// at all leaves it to the vectors.
    #[test]
    fn text_is_known_whenever_their_chunks_hold_text() {
        assert!(OwnWords::from_documents(["We should file the comments with the commission by Friday."]).text_known());
        assert!(OwnWords::from_documents(["From: a@x.com\nTo: b@x.com\nSubject: re\n\n> quoted words of somebody else here"]).text_known());
        assert!(OwnWords::from_documents(["Approved."]).text_known());
        assert!(!OwnWords::from_documents(std::iter::empty::<&str>()).text_known());
    }

    /// Every run of `window + 4` words of the person's text, copied anywhere,
    /// shares a selected 5-gram; the selection is a fraction of the 5-grams.
    #[test]
    fn winnowing_finds_every_long_enough_copied_run_with_fewer_keys() {
        let own: String = (0..300).map(|i| format!("w{} ", (i * 7919) % 1000)).collect();
        let words: Vec<&str> = own.split_whitespace().collect();
        for window in [1, 4, 8, 12, 16] {
            let winnowed = OwnWords::from_documents_winnowed([own.as_str()], window);
            let query: HashSet<u64> = winnowed.query_shingles().collect();
            assert!(query.iter().all(|q| winnowed.shingles.contains(q)));
            if window > 1 {
                assert!(query.len() * (window + 1) <= 3 * winnowed.shingles.len(), "window {window}: {} of {}", query.len(), winnowed.shingles.len());
            }
            for start in 0..=words.len() - (window + 4) {
                let run = words[start..start + window + 4].join(" ");
                let chunk = format!("Subject: notes\nsomething else entirely {run} and more of other words");
                let found: Vec<u64> = shingles(&word_hashes(&chunk)).collect();
                assert!(found.iter().any(|s| query.contains(s)), "window {window}: the run at {start} is not found");
            }
        }
    }

    const OWN: &str = "From: a@x.com\nTo: b@x.com\nSubject: filing\n\n\
        We should file the comments with the commission by Friday and ask for a hearing.\n\n\
        -----Original Message-----\nFrom: someone\nPlease send me the draft of the tariff filing today.";

    fn share(own: &OwnWords, text: &str) -> f32 {
        own.overlap(text).map_or(0.0, |o| o.own_words(&HashSet::new()).0 as f32 / o.words as f32)
    }

    #[test]
    fn own_words_are_the_authored_part_only() {
        let own = OwnWords::from_documents([OWN]);
        assert!((share(&own, "file the comments with the commission by Friday") - 1.0).abs() < 1e-6);
        assert_eq!(share(&own, "Please send me the draft of the tariff filing today."), 0.0);
        assert_eq!(share(&own, "From: a@x.com To: b@x.com Subject: filing"), 0.0);
        let half = share(&own, "we should file the comments with totally different words in this sentence");
        assert!(half > 0.3 && half < 0.7, "{half}");
        assert_eq!(share(&own, "by Friday"), 0.0);
    }

    #[test]
    fn authored_text_stops_where_someone_else_begins() {
        assert_eq!(authored("Subject: x\n\nmine\n> theirs"), "mine\n");
        assert_eq!(authored("mine\nJeff Crook  04/29/2000 10:51 AM\nTo: me"), "mine\n");
        assert_eq!(authored("mine ----- Forwarded by X"), "mine ");
        assert_eq!(authored("all mine"), "all mine");
        // A recipient list split across chunks is still header.
        let doc = "From: a@x.com\nTo: b@x.com, c@x.com,\n\nd@x.com, e@x.com\nCc: \nSubject: s\n\nmy words\nTo: them";
        assert_eq!(authored(doc), "my words\n");
    }

    #[test]
    fn header_lines_count_neither_for_nor_against_own_words() {
        let own = OwnWords::from_documents([
            "We should file the comments with the commission by Friday and ask for a hearing on the tariff.",
        ]);
        let bare = "We should file the comments with the commission by Friday and ask for a hearing";
        let stored = format!(
            "From: someone.else@x.com\nTo: a@x.com, b@x.com,\n c@x.com\nSubject: notes from the meeting\n\n{bare}"
        );
        let o = own.overlap(&stored).unwrap();
        let (mine, neutral) = o.own_words(&HashSet::new());
        assert_eq!(mine, 15);
        assert_eq!(o.words - neutral, 15, "only the body counts");
        let titled = format!("Meeting notes for the regulatory team\n\n{bare}");
        let o = own.overlap(&titled).unwrap();
        assert_eq!(o.words - o.own_words(&HashSet::new()).1, 15);
        // A sentence with a colon in it is not a field.
        assert_eq!(structural_words("We agreed on three things: the filing, the hearing and the date."), vec![
            false;
            12
        ]);
    }

    #[test]
    fn a_greater_than_sign_in_a_table_is_not_quoted_text() {
        assert_eq!(authored("Capacity\n> 5,000 MW\n>= 10%\nmy words"), "Capacity\n> 5,000 MW\n>= 10%\nmy words");
        assert_eq!(authored("mine\n> I disagree\n"), "mine\n");
        assert_eq!(authored("mine\n>> nested\n"), "mine\n");
    }

    #[test]
    fn five_grams_shared_by_many_sources_are_boilerplate() {
        let own = OwnWords::from_documents(["Your transaction request was approved by the league commissioner today."]);
        let text = "Your transaction request was approved by the league commissioner today.";
        let copy = own.overlap(text).unwrap();
        let copies = [("a", &copy), ("b", &copy), ("c", &copy)];
        let common = common_shingles(copies, &HashSet::new());
        assert!(common.len() >= 4);
        assert_eq!(copy.own_words(&common), (0, 10), "all boilerplate");
        // Sources that name the person do not make a 5-gram common.
        let named: HashSet<&str> = ["a", "b"].into_iter().collect();
        assert!(common_shingles(copies, &named).is_empty());
    }
}
