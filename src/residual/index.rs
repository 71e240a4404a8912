//! The residual index: what a chunk's text is found by, computed when the
//! text is written (`store::lineage` stores it beside the text, under a GIN
//! index), so that a person's residual query reads the chunks that may hold
//! evidence instead of every chunk of the tenant. The index proposes, the
//! exact matchers (`lexical`, `semantic`) decide.
//!
//! A chunk's keys are 32-bit hashes, keyed with the tenant, of
//! - each distinct word (a maximal run of alphanumeric characters, lower
//!   case: how `semantic` reads words). Every lexical form has words that
//!   each of its matches contains whole (the surname, the words of the local
//!   part, `jdasovich` for `jdasovich@`; see `names::FormSpec::index_words`),
//!   because the forms are bounded by non-word characters: a chunk holding
//!   all of one form's words is proposed;
//! - its word 5-grams (the shingles `semantic` compares), winnowed in a long
//!   chunk ([`INDEX_WINDOW`], [`KEEP_ALL_UP_TO`]): a chunk that copies a run
//!   of 16 of the person's words holds one of the keys their query asks for.
//!
//! Why this index (measured with `examples/bench`, section `residual`, and
//! by hand on the Enron text repeated to 100,000 chunks; see the README):
//! - PostgreSQL full-text search (`tsvector` + GIN) finds words, but its
//!   parser reads `jeff.dasovich@enron.com`, `k..allen@` and `Dasovich/NA`
//!   as its own token types (email, host, file), so a word query misses forms
//!   the matcher finds unless the text is re-tokenised first; and the own
//!   words' 5-grams would be phrase queries (`a <-> b <-> …`), which need
//!   positions and a recheck of every row the GIN proposes.
//! - `pg_trgm` is not in the PostgreSQL build Lethe ships with (and trigram
//!   postings of 1,000-character chunks are several times larger).
//! - A side table (tenant, key, chunk) would hold ~250 rows per chunk; the
//!   array in the chunk's own row is written, rewritten and deleted with the
//!   text in the same statement, which is what keeps the index consistent
//!   with lineage (ingest, redaction, forget lineage, crash recovery) and
//!   never lets it outlive an erased text.
//!
//! Collisions of the 32-bit keys only add candidates, which the matchers
//! then turn down.

use uuid::Uuid;

use super::semantic;

const WORD: u64 = 0x7769_6e64_6578_0001;
const SHINGLE: u64 = 0x7369_6e64_6578_0002;

/// The tenant's salt: the same word has different keys in two tenants, so
/// one tenant's postings are never read for another's query.
fn salt(tenant_id: Uuid, kind: u64) -> u64 {
    let (hi, lo) = tenant_id.as_u64_pair();
    mix(hi ^ mix(lo ^ kind))
}

/// splitmix64's finaliser.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn key(salt: u64, hash: u64) -> i32 {
    // The high half of a 64-bit mix: the truncation is the point.
    #[allow(clippy::cast_possible_truncation)]
    let k = (mix(hash ^ salt) >> 32) as u32;
    i32::from_ne_bytes(k.to_ne_bytes())
}

/// Of a chunk's 5-grams, the index keeps the smallest of every this many
/// consecutive ones (winnowing, as the query side selects the person's:
/// `residual.derived_query_window`), unless the chunk is short
/// ([`KEEP_ALL_UP_TO`]). A run of words the chunk shares with the person's
/// text that holds this many 5-grams, and the query's window, holds the
/// run's smallest 5-gram, which both sides select: every chunk that copies a
/// run of 16 words of theirs is still proposed (the guarantee the query side
/// gave alone), with about a sixth of the 5-gram keys. A chunk of mail
/// (~1,000 characters) had ~100 word keys and ~170 5-gram keys; the index's
/// writes and merges cost per key.
pub const INDEX_WINDOW: usize = 12;

/// A chunk with at most this many 5-grams of content (~70 words besides its
/// header lines, `semantic::structural_words`) keeps them all. A short
/// chunk can be mostly a person's words copied in runs shorter than the
/// guarantee (two sentences of 14 and 11 words, something between them left
/// out), or a short message of theirs (up to 15 words, all of whose 5-grams
/// the query asks for) under a long block of `To:`/`Cc:` lines: with every
/// 5-gram of the chunk kept, the query finds them as it did before this side
/// winnowed. Measured on the evaluation: winnowing every chunk lost one
/// derived excerpt of 27 words in two runs (Robert Badeer's, bare and as
/// mail); this keeps it. Not kept: a long chunk of content that is mostly
/// their words in such short runs (a digest of many one-line replies of
/// theirs) is found only if one of the runs holds a 5-gram both sides select.
pub const KEEP_ALL_UP_TO: usize = 64;

/// The keys of a chunk's text: its words and its 5-grams, winnowed in a
/// long chunk ([`INDEX_WINDOW`]), sorted, distinct.
pub fn terms(tenant_id: Uuid, text: &str) -> Vec<i32> {
    let (w, s) = (salt(tenant_id, WORD), salt(tenant_id, SHINGLE));
    let words = semantic::word_hashes(text);
    let mut out: Vec<i32> = words.iter().map(|h| key(w, *h)).collect();
    let shingles: Vec<u64> = semantic::shingles(&words).collect();
    let mut kept = std::collections::HashSet::new();
    let short = shingles.len() <= KEEP_ALL_UP_TO
        || semantic::structural_words(text).iter().filter(|s| !**s).count() < KEEP_ALL_UP_TO + semantic::SHINGLE;
    let window = if short { 1 } else { INDEX_WINDOW };
    semantic::winnow(&shingles, window, &mut kept);
    out.extend(kept.into_iter().map(|h| key(s, h)));
    // The words of the text's other readings too, as the matcher reads it
    // (`lexical::Matcher::find`): `zk%40corp.example` holds `40corp`, and
    // `mailto%3Azk%40…` `3azk`, read unescaped `zk` and `corp`; `Jos&#233;`
    // holds `jos` and `233`, decoded `josé`.
    for reading in crate::identity::text_readings(text) {
        out.extend(semantic::word_hashes(&reading.text).iter().map(|h| key(w, *h)));
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Chunks re-keyed per transaction by [`rekey_listed`].
const REKEY_BATCH: i64 = 500;

/// Re-keys every chunk listed for it (texts written before their words
/// were also read decoded, listed by the migrations that taught the
/// readings: `20261204000010` and later), batch by batch; returns how many.
/// Run by every replica from its start, beside serving
/// (`merger::run_until_stopped`): until a chunk's turn, residual searches
/// read it whole, by its text (`Tenant::listed`), so none misses a link's
/// `zk%40corp.example` meanwhile. An empty list costs one statement.
///
/// # Errors
/// Database failures (the batches done stay done: the next try goes on).
pub async fn rekey_listed(pool: &sqlx::PgPool) -> crate::store::Result<u64> {
    let mut total = 0;
    loop {
        let n = crate::store::lineage::rekey_listed(pool, REKEY_BATCH).await?;
        if n == 0 {
            if total > 0 {
                tracing::info!(chunks = total, "residual index: re-keyed the texts an upgrade listed");
            }
            return Ok(total);
        }
        if total == 0 {
            tracing::info!(
                "residual index: re-keying the texts an upgrade listed, in the background; residual searches read them \
                 whole meanwhile"
            );
        }
        total += n;
        if total % 50_000 < n {
            tracing::info!(chunks = total, "residual index: re-keying");
        }
    }
}

/// The keys of words (each string one word, as `names` gives them).
pub fn word_keys<'a>(tenant_id: Uuid, words: impl IntoIterator<Item = &'a str>) -> Vec<i32> {
    let w = salt(tenant_id, WORD);
    words.into_iter().flat_map(semantic::word_hashes).map(|h| key(w, h)).collect()
}

/// At most this many key sets per form (see [`form_keys`]).
const MAX_FORM_SETS: usize = 8;

/// What a chunk must hold to be proposed for a form whose matches contain
/// all of `words` (lower case, as `names` gives them): sets of keys, a chunk
/// holding every key of one set. A word is every key its text gives (`o'brien`:
/// `o` and `brien`). One set, unless a word can be written two ways, each
/// looked for:
/// - a final sigma: lower case it is `ς`, but a text in capitals (`Σ`) is read
///   letter by letter, as `σ`, while the matchers fold the three together;
/// - a dotted capital I (`İnce`): lower case `i` + U+0307, one word where the
///   text has the capital, two where it was typed decomposed.
///
/// The combinations stop at [`MAX_FORM_SETS`]: a word that would exceed them
/// is left out of the keys (the index proposes more chunks, the matcher still
/// decides), so that a name of thirty such words costs eight lookups, not 2^30.
pub fn form_keys(tenant_id: Uuid, words: &[String]) -> Vec<Vec<i32>> {
    let w = salt(tenant_id, WORD);
    let mut sets: Vec<Vec<i32>> = vec![Vec::new()];
    for word in words {
        let mut spellings: Vec<Vec<i32>> = spellings(word)
            .iter()
            .map(|hashes| {
                let mut keys: Vec<i32> = hashes.iter().map(|h| key(w, *h)).collect();
                keys.sort_unstable();
                keys.dedup();
                keys
            })
            .filter(|keys| !keys.is_empty())
            .collect();
        spellings.sort_unstable();
        spellings.dedup();
        match spellings.as_slice() {
            [] => {}
            [one] => sets.iter_mut().for_each(|set| set.extend_from_slice(one)),
            many if sets.len() * many.len() <= MAX_FORM_SETS => {
                sets = sets.iter().flat_map(|set| many.iter().map(move |keys| [set.as_slice(), keys].concat())).collect();
            }
            _ => {}
        }
    }
    for set in &mut sets {
        set.sort_unstable();
        set.dedup();
    }
    sets.retain(|set| !set.is_empty());
    sets
}

/// The ways a text can give a lower-case word's keys, as word hashes.
fn spellings(word: &str) -> Vec<Vec<u64>> {
    let mut forms = vec![word.to_owned()];
    if word.contains('ς') {
        forms.push(word.replace('ς', "σ"));
    }
    let mut out: Vec<Vec<u64>> = forms.iter().map(|f| semantic::word_hashes(f)).collect();
    if word.contains('\u{307}') {
        out.extend(forms.iter().map(|f| semantic::word_hashes_joining(f, '\u{307}')));
    }
    out
}

/// The keys of 5-grams (as `semantic::OwnWords` holds them).
pub fn shingle_keys(tenant_id: Uuid, shingles: impl IntoIterator<Item = u64>) -> Vec<i32> {
    let s = salt(tenant_id, SHINGLE);
    shingles.into_iter().map(|h| key(s, h)).collect()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn a_chunk_is_found_by_its_words_and_5_grams_in_its_tenant_only() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let text = "From: K..Allen@enron.com\nPlease ask Dasovich, Jeff to file the comments by Friday.";
        let t = terms(a, text);
        for w in ["allen", "dasovich", "jeff", "k"] {
            assert!(t.contains(&word_keys(a, [w])[0]), "{w}");
            assert!(!terms(b, text).contains(&word_keys(a, [w])[0]), "{w} in another tenant");
        }
        let own = semantic::OwnWords::from_documents(["we will file the comments by Friday, as agreed"]);
        assert!(shingle_keys(a, own.shingles()).iter().any(|k| t.contains(k)));
        assert!(t.windows(2).all(|p| p[0] < p[1]), "sorted, distinct");
        let link = terms(a, "unsubscribe: mailto%3Ak..allen%40enron.com?q=Phillip+K.+Allen");
        for w in ["allen", "enron", "k", "3ak", "40enron", "phillip"] {
            assert!(link.contains(&word_keys(a, [w])[0]), "{w}: as written and unescaped");
        }
    }

    /// Both sides winnowed: every run of 16 words of the person's text, copied
    /// into a longer chunk of other words, is found by one of the query's
    /// keys among the chunk's, for every query window up to the index's.
    /// Fewer 5-gram keys are kept; a short chunk keeps them all.
    #[test]
    fn a_winnowed_chunk_is_found_by_every_run_of_16_words_it_copies() {
        let a = Uuid::from_u128(1);
        let own: String = (0..300).map(|i| format!("w{} ", (i * 7919) % 1000)).collect();
        let words: Vec<&str> = own.split_whitespace().collect();
        let filler: String = (0..60).map(|i| format!("f{i} ")).collect();
        let shingle_count = |text: &str| semantic::shingles(&semantic::word_hashes(text)).count();
        for window in [1, 4, 8, 12] {
            let query = semantic::OwnWords::from_documents_winnowed([own.as_str()], window);
            let keys = shingle_keys(a, query.query_shingles());
            for start in 0..=words.len() - (INDEX_WINDOW + 4) {
                let run = words[start..start + INDEX_WINDOW + 4].join(" ");
                let chunk = format!("Subject: notes\n{filler}{run} {filler}");
                let t = terms(a, &chunk);
                assert!(keys.iter().any(|k| t.contains(k)), "window {window}: the run at {start} is not found");
            }
        }
        let long = format!("{filler}{own}");
        let all: usize = shingle_count(&long);
        let kept = terms(a, &long).len() - word_keys(a, long.split_whitespace()).into_iter().collect::<HashSet<_>>().len();
        assert!(kept * 4 < all, "winnowed: {kept} of {all} 5-grams kept (some keys of words and 5-grams may collide)");
        // A short message of theirs under a long block of address lines.
        let cc: String = (0..40).map(|i| format!("Cc: person{i}.name{i}@example.com, other{i}@example.com\n")).collect();
        let message = words[..12].join(" ");
        let forwarded = format!("From: a@example.com\n{cc}Subject: fwd\n\n{message}");
        assert!(shingle_count(&forwarded) > KEEP_ALL_UP_TO);
        let message_keys = shingle_keys(a, semantic::shingles(&semantic::word_hashes(&message)));
        assert!(message_keys.iter().all(|k| terms(a, &forwarded).contains(k)), "header lines are not content");
        let short = words[..KEEP_ALL_UP_TO + 4].join(" ");
        let short_shingles = shingle_keys(a, semantic::shingles(&semantic::word_hashes(&short)));
        assert!(short_shingles.iter().all(|k| terms(a, &short).contains(k)), "a short chunk keeps every 5-gram");
    }

    #[test]
    fn a_final_sigma_is_looked_for_as_written_and_as_a_capital_reads() {
        let a = Uuid::from_u128(1);
        let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let holds = |text: &str, sets: &[Vec<i32>]| {
            let t = terms(a, text);
            sets.iter().any(|set| set.iter().all(|k| t.contains(k)))
        };
        let sets = form_keys(a, &words(&["νικος", "παπαδοπουλος"]));
        assert_eq!(sets.len(), 4, "each word both ways");
        for text in ["ΝΙΚΟΣ ΠΑΠΑΔΟΠΟΥΛΟΣ", "Νικος Παπαδοπουλος", "ΝΙΚΟΣ Παπαδοπουλος"] {
            assert!(holds(text, &sets), "{text}");
        }
        assert!(!holds("Νικος Παπαδακης", &sets));
        // Without a final sigma, one set of the words' keys.
        assert_eq!(form_keys(a, &words(&["jeff", "dasovich"])), [{
            let mut k = word_keys(a, ["jeff", "dasovich"]);
            k.sort_unstable();
            k
        }]);
    }

    #[test]
    fn a_form_of_many_two_way_words_stays_a_few_lookups() {
        let a = Uuid::from_u128(1);
        // Thirty words with a final sigma were 2^30 key sets (out of memory).
        let many: Vec<String> = (0..30).map(|i| format!("λογ{}ς", char::from(b'a' + (i % 26) as u8))).collect();
        let sets = form_keys(a, &many);
        assert_eq!(sets.len(), MAX_FORM_SETS);
        let text = many.iter().map(|w| w.to_uppercase()).collect::<Vec<_>>().join(" ");
        let t = terms(a, &text);
        assert!(sets.iter().any(|set| set.iter().all(|k| t.contains(k))), "still proposes the chunk");
    }

    #[test]
    fn a_word_is_all_of_its_keys_and_a_dotted_capital_i_is_one_word() {
        let a = Uuid::from_u128(1);
        let holds = |text: &str, sets: &[Vec<i32>]| {
            let t = terms(a, text);
            sets.iter().any(|set| set.iter().all(|k| t.contains(k)))
        };
        let ince = form_keys(a, &["mehmet".to_owned(), "İnce".to_lowercase()]);
        assert!(holds("Mehmet İnce wrote", &ince), "as written with the capital");
        assert!(holds("mehmet i\u{307}nce wrote", &ince), "typed decomposed");
        assert!(!holds("Mehmet said I would", &ince), "the word `I` is not the surname");
        let obrien = form_keys(a, &["o'brien".to_owned()]);
        assert!(holds("Ask O'Brien", &obrien));
        assert!(!holds("O Connor", &obrien), "both parts, not either");
    }
}
