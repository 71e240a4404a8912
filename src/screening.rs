//! Ingest-time screening: does a chunk's *text* name a person who is being or
//! has been erased? Tombstones keep only keyed hashes, so the text is read
//! the other way round: the candidate mentions in it (e-mail addresses,
//! handles, phone numbers, capitalised `First [M.] Last` and `Last, First`)
//! are turned into the same match keys suppression uses
//! ([`identity::match_keys`]), hashed with the tenant key, and looked up among
//! the tenant's erased subjects in one query per write.
//!
//! What is not screened: a name written all in lower case, a surname alone,
//! a first name alone. Residual search, which knows the person's clear
//! identifiers during the erasure, reaches those; screening never can.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use regex::Regex;
use uuid::Uuid;

use crate::context::{Context, keyed_hash};
use crate::domain::{Identifier, IdentifierKind};
use crate::error::Result;
use crate::identity;
use crate::store::lineage;

/// A possible mention of a person in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mention {
    /// Byte range in the text.
    pub start: usize,
    pub end: usize,
    /// The match keys it is hashed under.
    pub keys: Vec<String>,
}

/// A chunk whose text names an erased (or frozen) person.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Index of the chunk in the screened list.
    pub chunk: usize,
    /// The erased subject it names (the first, if several).
    pub subject_id: Uuid,
    /// Byte ranges of the mentions that matched, in text order, disjoint.
    pub spans: Vec<(usize, usize)>,
}

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    // The domain in Unicode too (`ann@bücher.de`): its match keys are the
    // ASCII form's (`identity::canonical`).
    // Invisible characters inside it (a soft hyphen, a zero-width space)
    // belong to it: `identity::canonical` drops them, as residual search does.
    Regex::new(
        r"(?i)\b[a-z0-9][a-z0-9._%+\x{AD}\x{200B}-\x{200D}\x{2060}\x{FEFF}-]*@[\p{L}\p{N}\x{AD}\x{200B}-\x{200D}\x{2060}-]+(?:\.[\p{L}\p{N}\x{AD}\x{200B}-\x{200D}\x{2060}-]+)*\.(?:\p{L}{2,}|xn--[a-z0-9-]+)\b",
    )
        .unwrap_or_else(|_| unreachable!())
});
static HANDLE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:^|[^\w@.])(@[A-Za-z0-9_]+(?:[.-][A-Za-z0-9_]+)*)").unwrap_or_else(|_| unreachable!()));
static PHONE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\+?\(?\d[\d \t().-]{5,}\d").unwrap_or_else(|_| unreachable!()));
// A word with its combining marks (`Jose\u{301}` as NFD writes `José`) and
// the invisible characters inside it, which the name's keys drop.
static WORD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\p{L}[\p{L}\p{M}'’\x{AD}\x{200B}-\x{200D}\x{2060}\x{FEFF}-]*\.?").unwrap_or_else(|_| unreachable!())
});

/// Every candidate mention in a text.
pub fn mentions(text: &str) -> Vec<Mention> {
    let mut out = Vec::new();
    // Each spelling's keys once: a text naming one person thousands of times
    // (hostile, or a long thread) made as many key sets, and screening as
    // many keyed hashes.
    let mut seen: HashMap<IdentifierKind, HashMap<String, Vec<String>>> = HashMap::new();
    let mut push = |start: usize, end: usize, kind: IdentifierKind, value: &str| {
        let of_kind = seen.entry(kind).or_default();
        let keys = if let Some(keys) = of_kind.get(value) {
            keys.clone()
        } else {
            let mut keys = identity::match_keys(&Identifier { kind, value: value.to_owned() });
            // A name in the possessive (`Zora Kellerman's`) is the name.
            if kind == IdentifierKind::Name
                && let Some(bare) = value.strip_suffix("'s").or_else(|| value.strip_suffix("’s"))
            {
                keys.extend(identity::match_keys(&Identifier { kind, value: bare.to_owned() }));
            }
            of_kind.insert(value.to_owned(), keys.clone());
            keys
        };
        out.push(Mention { start, end, keys });
    };
    for m in EMAIL.find_iter(text) {
        push(m.start(), m.end(), IdentifierKind::Email, m.as_str());
    }
    for c in HANDLE.captures_iter(text) {
        if let Some(m) = c.get(1) {
            push(m.start(), m.end(), IdentifierKind::Handle, m.as_str());
        }
    }
    for m in PHONE.find_iter(text) {
        if m.as_str().chars().filter(char::is_ascii_digit).count() >= 7 {
            push(m.start(), m.end(), IdentifierKind::Phone, m.as_str());
        }
    }
    let words: Vec<regex::Match<'_>> = WORD.find_iter(text).collect();
    let capital = |w: &regex::Match<'_>| w.as_str().chars().next().is_some_and(char::is_uppercase);
    let initial = |w: &regex::Match<'_>| w.as_str().trim_end_matches('.').chars().count() == 1;
    let between = |a: &regex::Match<'_>, b: &regex::Match<'_>| &text[a.end()..b.start()];
    for (i, a) in words.iter().enumerate() {
        if !capital(a) || initial(a) {
            continue;
        }
        let Some(b) = words.get(i + 1).filter(|b| capital(b)) else { continue };
        let gap = between(a, b);
        if gap.chars().all(char::is_whitespace) && !gap.is_empty() {
            if initial(b) {
                // `First M. Last`
                if let Some(c) = words.get(i + 2).filter(|c| capital(c) && !initial(c))
                    && between(b, c).chars().all(char::is_whitespace)
                {
                    push(a.start(), c.end(), IdentifierKind::Name, &text[a.start()..c.end()]);
                }
            } else {
                push(a.start(), b.end(), IdentifierKind::Name, &text[a.start()..b.end()]);
            }
        } else if gap.trim() == "," && !initial(b) {
            // `Last, First`
            push(a.start(), b.end(), IdentifierKind::Name, &text[a.start()..b.end()]);
        }
    }
    out
}

/// The mentions in a chunk's text, read as written and as
/// [`identity::text_readings`] reads it (a link's `?e=zk%40corp.example`, a
/// page's `zk [at] corp [dot] example`), each at the range of the text it was
/// read from.
pub fn text_mentions(text: &str) -> Vec<Mention> {
    let mut out = mentions(text);
    let readings = identity::text_readings(text);
    if readings.is_empty() {
        return out;
    }
    // Two readings find most mentions alike: one mention per range.
    let mut at: HashMap<(usize, usize), usize> = out.iter().enumerate().map(|(i, m)| ((m.start, m.end), i)).collect();
    for r in readings {
        for m in mentions(&r.text) {
            let (start, end) = r.origin(m.start, m.end);
            if start >= end {
                continue; // a piece reads as one character: not expected
            }
            match at.get(&(start, end)) {
                Some(i) => {
                    let keys = &mut out[*i].keys;
                    for k in m.keys {
                        if !keys.contains(&k) {
                            keys.push(k);
                        }
                    }
                }
                None => {
                    at.insert((start, end), out.len());
                    out.push(Mention { start, end, keys: m.keys });
                }
            }
        }
    }
    out
}

/// Screens chunk texts against the tenant's erased subjects.
///
/// # Errors
/// Database failures.
pub async fn screen(ctx: &Context, tenant_id: Uuid, texts: &[Option<&str>]) -> Result<Vec<Finding>> {
    let secret = ctx.tenant_secret(tenant_id).await?;
    // Grouped by key, then each key hashed once per request, however often
    // the texts repeat it.
    let mut by_key: HashMap<String, Vec<(usize, usize, usize)>> = HashMap::new();
    for (chunk, text) in texts.iter().enumerate() {
        let Some(text) = text else { continue };
        for m in text_mentions(text) {
            for key in m.keys {
                by_key.entry(key).or_default().push((chunk, m.start, m.end));
            }
        }
    }
    let by_hash: HashMap<Vec<u8>, Vec<(usize, usize, usize)>> =
        by_key.into_iter().map(|(key, at)| (keyed_hash(&secret, &key), at)).collect();
    if by_hash.is_empty() {
        return Ok(Vec::new());
    }
    let hashes: Vec<Vec<u8>> = by_hash.keys().cloned().collect();
    let erased = lineage::erased_subjects_by_keys(&ctx.pool, tenant_id, &hashes).await?;
    let mut found: HashMap<usize, Finding> = HashMap::new();
    for (hash, subject_id) in erased {
        for (chunk, start, end) in by_hash.get(&hash).into_iter().flatten() {
            let f = found.entry(*chunk).or_insert_with(|| Finding { chunk: *chunk, subject_id, spans: Vec::new() });
            f.spans.push((*start, *end));
        }
    }
    let mut out: Vec<Finding> = found.into_values().collect();
    for f in &mut out {
        f.spans.sort_unstable();
        f.spans.dedup();
        // Overlapping mentions (a name inside `"Xu, Xavier" <x@ex.com>` is
        // not, but `Xavier Q. Xu` and `Q. Xu` could be) merge into one range.
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(f.spans.len());
        for (s, e) in f.spans.drain(..) {
            match merged.last_mut() {
                Some(last) if s < last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        f.spans = merged;
    }
    out.sort_by_key(|f| f.chunk);
    Ok(out)
}

/// The keyed hashes of the match keys of every mention in a free text,
/// read as written and as identifiers are read (`identity::readable`:
/// invisible characters out, NFKC), sorted and without repeats: what a text
/// that is kept for ever is checked by, against erased subjects' keys.
pub fn mention_hashes(secret: &[u8], text: &str) -> Vec<Vec<u8>> {
    // As written and read otherwise (`identity::other_readings`: a uri's
    // `%40`, a page's `&#64;`), each also as identifiers are read.
    let mut keys = std::collections::BTreeSet::new();
    let readings = identity::other_readings(text).into_iter().map(std::borrow::Cow::Owned);
    for text in std::iter::once(std::borrow::Cow::Borrowed(text)).chain(readings) {
        let readable = identity::readable(&text);
        let again = if readable == *text { Vec::new() } else { mentions(&readable) };
        keys.extend(mentions(&text).into_iter().chain(again).flat_map(|m| m.keys));
    }
    // Each key hashed once, however often the text repeats it (sorted keys
    // give sorted hashes only by chance: sorted again).
    let mut hashes: Vec<Vec<u8>> = keys.iter().map(|k| keyed_hash(secret, k)).collect();
    hashes.sort_unstable();
    hashes
}

/// The keyed hashes of [`identity::id_strong_keys`]: what a subject id
/// that is itself an address, a phone or a handle (`xavier@ex.com`) is
/// keyed by, so that the erasure of the person it names finds it as a twin.
pub fn id_key_hashes(secret: &[u8], id: &str) -> Vec<Vec<u8>> {
    identity::id_strong_keys(id).iter().map(|k| keyed_hash(secret, k)).collect()
}

/// [`mention_hashes`] and the keyed hashes of the parts of a document's id,
/// uri or kind that could be a person's caller id ([`identity::id_forms`]):
/// what such a text is checked by against erased people (their keys and
/// their ids' hashes), sorted and without repeats.
pub fn name_hashes(secret: &[u8], text: &str) -> Vec<Vec<u8>> {
    let mut hashes = mention_hashes(secret, text);
    hashes.extend(identity::id_forms(text).into_iter().map(|f| keyed_hash(secret, f)));
    for text in identity::other_readings(text) {
        hashes.extend(identity::id_forms(&text).into_iter().map(|f| keyed_hash(secret, f)));
    }
    hashes.sort_unstable();
    hashes.dedup();
    hashes
}

/// Refuses free texts of a request that are kept for ever (who asked and
/// why: the job, the chained log, the certificate, a reconcile run) when
/// one names a person who is being or has been erased ([`mention_hashes`]
/// among their keys): their keys are all that is left of them, and the log
/// is append-only. `fields` are (field name, text).
///
/// # Errors
/// `InvalidArgument` naming the field (never the text or the person);
/// database failures.
pub async fn refuse_texts_naming_the_erased(ctx: &Context, tenant_id: Uuid, fields: &[(&str, &str)]) -> Result<()> {
    if fields.iter().all(|(_, t)| t.is_empty()) {
        return Ok(());
    }
    let secret = ctx.tenant_secret(tenant_id).await?;
    let by_field: Vec<Vec<Vec<u8>>> = fields.iter().map(|(_, t)| mention_hashes(&secret, t)).collect();
    let all: Vec<Vec<u8>> = by_field.iter().flatten().cloned().collect();
    if all.is_empty() {
        return Ok(());
    }
    let erased: HashSet<Vec<u8>> =
        lineage::erased_subjects_by_keys(&ctx.pool, tenant_id, &all).await?.into_iter().map(|(h, _)| h).collect();
    match by_field.iter().position(|hs| hs.iter().any(|h| erased.contains(h))) {
        Some(at) => Err(crate::error::LetheError::invalid(
            fields[at].0,
            "names a person who is being or has been erased; it is kept for ever, so it must not",
        )),
        None => Ok(()),
    }
}

/// The text with the spans replaced by `[redacted]`.
pub fn redact(text: &str, spans: &[(usize, usize)]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for (s, e) in spans {
        out.push_str(&text[at..*s]);
        out.push_str(crate::residual::REDACTED);
        at = *e;
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(text: &str) -> Vec<&str> {
        mentions(text).iter().map(|m| &text[m.start..m.end]).collect()
    }

    #[test]
    fn addresses_handles_phones_and_capitalised_names_are_candidates() {
        assert_eq!(found("mail Xavier.Xu@Ex.com today"), ["Xavier.Xu@Ex.com"]);
        assert_eq!(found("ping @xavier_x and x@ann.io"), ["x@ann.io", "@xavier_x"]);
        assert_eq!(found("call +44 20 7946 0958 now"), ["+44 20 7946 0958"]);
        assert_eq!(found("met Xavier Q. Xu and Xu, Xavier"), ["Xavier Q. Xu", "Xu, Xavier"]);
        assert!(found("met xavier xu at noon").is_empty(), "lower case is left to residual search");
    }

    #[test]
    fn a_uri_names_the_person_it_carries_escaped() {
        let secret = b"tenant secret";
        let keys: Vec<Vec<u8>> = identity::match_keys(&Identifier { kind: IdentifierKind::Email, value: "zora.kellerman@corp.example".into() })
            .iter()
            .map(|k| keyed_hash(secret, k))
            .collect();
        let id = keyed_hash(secret, "zora-k");
        for uri in [
            "https://mail.corp.example/view?owner=zora.kellerman%40corp.example",
            "imap://x/zora.kellerman%2540corp.example/7",
            // A `+` kept (a +tag address in a path), not only read as a space.
            "imap://zora.kellerman+lists%40corp.example@imap.corp.example/INBOX",
        ] {
            assert!(name_hashes(secret, uri).iter().any(|h| keys.contains(h)), "{uri}");
            assert!(mention_hashes(secret, uri).iter().any(|h| keys.contains(h)), "{uri}");
        }
        assert!(name_hashes(secret, "shared/zora%2Dk/notes").contains(&id), "the caller id, escaped");
        assert!(!name_hashes(secret, "shared/zora%2Dkay/notes").contains(&id));
        assert!(name_hashes(secret, "shared/zora&#45;k/notes").contains(&id), "the caller id, as a reference");
        assert!(name_hashes(secret, "shared/zora\\u002dk/notes").contains(&id), "the caller id, as JSON writes it");
    }

    #[test]
    fn a_mention_shares_a_key_with_the_identifier_it_spells() {
        let erased = identity::match_keys(&Identifier { kind: IdentifierKind::Name, value: "Xavier Xu".into() });
        for text in ["From: Xu, Xavier", "Xavier Q. Xu wrote", "Hi Xavier Xu!", "Xavier Xu's notes", "Xavier Q. Xu’s desk"] {
            let hit = mentions(text).iter().any(|m| m.keys.iter().any(|k| erased.contains(k)));
            assert!(hit, "{text}");
        }
        let email = identity::match_keys(&Identifier { kind: IdentifierKind::Email, value: "xavier@ex.com".into() });
        assert!(mentions("<mailto:XAVIER@ex.com>").iter().any(|m| m.keys.iter().any(|k| email.contains(k))));
        // Another form of the same number, address or name; decomposed
        // accents and invisible characters in the text.
        for (kind, erased, text) in [
            (IdentifierKind::Name, "José Núñez", "met Jose\u{301} Nun\u{303}ez"),
            (IdentifierKind::Name, "Jeff Dasovich", "met Je\u{200B}ff Da\u{AD}sovich"),
            (IdentifierKind::Email, "jeff.dasovich@enron.com", "mail jeff\u{200B}.dasovich@enron.com"),
            (IdentifierKind::Email, "jeff.dasovich@enron.com", "mail jeff.dasovich\u{AD}@enron.com"),
            (IdentifierKind::Phone, "+44 20 7946 0958", "ring 020 7946 0958"),
            (IdentifierKind::Email, "ann.b@xn--bcher-kva.de", "write to ann.b@bücher.de."),
            (IdentifierKind::Name, "José Núñez", "met Jose Nunez"),
        ] {
            let keys = identity::match_keys(&Identifier { kind, value: erased.into() });
            assert!(mentions(text).iter().any(|m| m.keys.iter().any(|k| keys.contains(k))), "{text}");
        }
    }

    #[test]
    fn a_chunk_text_is_read_unescaped_at_the_ranges_it_was_written() {
        let text = "Unsubscribe: https://l.example/u?e=zk%40corp.example&n=Xavier+Xu";
        let spans: Vec<&str> = text_mentions(text).iter().map(|m| &text[m.start..m.end]).collect();
        assert_eq!(spans, ["zk%40corp.example", "Xavier+Xu"]);
        let zk = identity::match_keys(&Identifier { kind: IdentifierKind::Email, value: "zk@corp.example".into() });
        assert!(text_mentions(text)[0].keys.iter().any(|k| zk.contains(k)));
        assert!(found(text).is_empty(), "as written, neither is a mention");
        let page = "write zk (at) corp (dot) example";
        let spans: Vec<&str> = text_mentions(page).iter().map(|m| &page[m.start..m.end]).collect();
        assert_eq!(spans, ["zk (at) corp (dot) example"]);
    }

    #[test]
    fn redaction_replaces_the_spans() {
        assert_eq!(redact("a Xavier Xu b", &[(2, 11)]), "a [redacted] b");
    }
}
