//! How Lethe recognises a person: one canonical reading of every identifier,
//! shared by suppression (the write path's tombstone check) and residual
//! search, so that whatever residual search treats as the same person is
//! also suppressed on re-ingestion.
//!
//! The kind a caller gives is a hint, not the truth: `mailto:x@ex.com` under
//! `OTHER` is an e-mail address, `Xu, Xavier` is the name `Xavier Xu`, a
//! `+`-number is a phone and `@ann` a handle. [`canonical`] reads the shape
//! of the value; [`match_keys`] gives the strings that are hashed (with the
//! tenant key) for tombstones, one per way residual search would recognise
//! the person on its own: the address (its domain in ASCII), a specific
//! local part at any domain, `first last` with every nickname of the first
//! name (also without diacritics), the phone's subscriber number, the handle.

use unicode_normalization::UnicodeNormalization;

use crate::domain::{Identifier, IdentifierKind};
use crate::residual::names::parse_name;
use crate::residual::nicknames;

/// The identifier as residual search and suppression read it: the kind its
/// value has, and the value cleaned (invisible characters dropped, NFKC,
/// whitespace collapsed, `mailto:`, `<…>` and a handle's `@` removed).
pub fn canonical(id: &Identifier) -> Identifier {
    let nfkc: String = visible(&id.value).nfkc().collect();
    let value = nfkc.split_whitespace().collect::<Vec<_>>().join(" ");
    let unwrapped = value.trim_matches(|c| c == '<' || c == '>' || c == '"' || c == '\'');
    let unwrapped = strip_prefix_ci(unwrapped, "mailto:").unwrap_or(unwrapped);
    if id.kind != IdentifierKind::AnonymousId && is_email(unwrapped) {
        return Identifier { kind: IdentifierKind::Email, value: ascii_address(&unwrapped.to_lowercase()) };
    }
    // A display form with one address in it (`Xavier Xu <xavier@ex.com>`,
    // `"Xu, Xavier" mailto:xavier@ex.com`, `(xavier@ex.com),`,
    // `email:xavier@ex.com`, `"xavier"@ex.com`) is that address: residual
    // search finds the address wherever such punctuation bounds it.
    if id.kind != IdentifierKind::AnonymousId
        && let Some(address) = one_address(&value)
    {
        return Identifier { kind: IdentifierKind::Email, value: address };
    }
    // `tel:`, an extension, and `00`/`011` for `+`: the number residual search finds.
    let phone = phone_part(&value);
    if id.kind == IdentifierKind::Phone || (id.kind != IdentifierKind::AnonymousId && is_phone(phone)) {
        return Identifier { kind: IdentifierKind::Phone, value: phone_digits(phone) };
    }
    // `Jeff Dasovich (Enron)`: the parenthesis is no part of the name.
    let value = match without_parentheses(&value) {
        Some(name) if looks_like_name(&name) => name,
        _ => value,
    };
    if let Some(handle) = value.strip_prefix('@').filter(|h| is_token(h)) {
        return Identifier { kind: IdentifierKind::Handle, value: handle.to_owned() };
    }
    match id.kind {
        IdentifierKind::Handle if is_token(&value) => Identifier { kind: IdentifierKind::Handle, value },
        IdentifierKind::Name | IdentifierKind::Other | IdentifierKind::Handle if looks_like_name(&value) => {
            Identifier { kind: IdentifierKind::Name, value }
        }
        IdentifierKind::Email | IdentifierKind::Name | IdentifierKind::Handle | IdentifierKind::Other => {
            Identifier { kind: IdentifierKind::Other, value }
        }
        IdentifierKind::Phone | IdentifierKind::AnonymousId => Identifier { kind: id.kind, value },
    }
}

/// The strings hashed for tombstones and looked up on every write: two
/// identifiers share a key exactly when residual search would take a match
/// of either for the same person. Also the legacy key `kind:normalised`
/// under which earlier versions stored tombstones.
pub fn match_keys(id: &Identifier) -> Vec<String> {
    let c = canonical(id);
    let mut keys = vec![legacy_key(id)];
    match c.kind {
        IdentifierKind::Email => {
            keys.push(format!("email:{}", c.value));
            if let Some((local, domain)) = c.value.rsplit_once('@') {
                // The address as residual search also finds it from the
                // erased one: without a `+tag`, and without a middle
                // initial (`jeff.k.dasovich` is `jeff.dasovich`'s form).
                let mut locals = vec![local.to_owned()];
                if let Some((base, _)) = local.split_once('+').filter(|(b, _)| !b.is_empty()) {
                    locals.push(base.to_owned());
                }
                if let [first, middle, last] = local.split('.').collect::<Vec<_>>().as_slice()
                    && middle.chars().count() == 1
                    && first.len() > 1
                    && last.len() > 1
                {
                    locals.push(format!("{first}.{last}"));
                }
                for l in &locals[1..] {
                    keys.push(format!("email:{l}@{domain}"));
                }
                keys.extend(locals.iter().filter(|l| specific_local_part(l)).map(|l| format!("local:{l}")));
            }
        }
        IdentifierKind::Name => match parse_name(&c.value) {
            Some(n) => {
                let last = n.last.to_lowercase();
                let first = n.first.to_lowercase();
                // Also without diacritics (`José Núñez` is `Jose Nunez` as
                // many systems store it, and a write must not pass the
                // tombstone by dropping the accents).
                for (first, last) in [(first.clone(), last.clone()), (fold_diacritics(&first), fold_diacritics(&last))] {
                    keys.push(format!("name:{first} {last}"));
                    for alt in nicknames::alternatives(&first) {
                        keys.push(format!("name:{alt} {last}"));
                    }
                }
            }
            None => keys.push(format!("literal:{}", c.value.to_lowercase())),
        },
        IdentifierKind::Phone => {
            keys.push(format!("phone:{}", national_number(&c.value)));
            keys.extend(subscriber_numbers(&c.value).into_iter().map(|n| format!("subscriber:{n}")));
            // `00…` and `011…` without `+` are read as international prefixes;
            // they may as well be a national number after its trunk `0`
            // (Leeds' `0113 496 0000`, Sapporo's `011-…`): both readings.
            let written = phone_part(&id.value);
            let digits: String = written.chars().filter(char::is_ascii_digit).collect();
            if !written.trim_start().starts_with('+') && (digits.starts_with("00") || digits.starts_with("011")) {
                keys.extend(subscriber_numbers(&digits).into_iter().map(|n| format!("subscriber:{n}")));
            }
        }
        IdentifierKind::Handle => keys.push(format!("handle:{}", c.value.to_lowercase())),
        IdentifierKind::AnonymousId | IdentifierKind::Other => keys.push(format!("literal:{}", c.value.to_lowercase())),
    }
    // An anonymous id is read as written, but residual search finds its
    // text as any literal: what the same value would be under OTHER (an
    // address, a name, a phone) counts too.
    if id.kind == IdentifierKind::AnonymousId {
        keys.extend(match_keys(&Identifier { kind: IdentifierKind::Other, value: id.value.clone() }));
    }
    // One token (`jeff.dasovich`, `ann_b`, `u-1042`) is found by residual
    // search as a local part, a bare handle or a literal, whichever kind it
    // was erased under: each of those keys, so that the families meet.
    // (Only a token specific enough to name one person, as residual search
    // takes a bare handle or a local part: `jeff` alone is no one.)
    if c.kind != IdentifierKind::Email && c.kind != IdentifierKind::Phone && is_token(&c.value) {
        let token = c.value.to_lowercase();
        if specific_local_part(&token) {
            keys.extend([format!("local:{token}"), format!("handle:{token}"), format!("literal:{token}")]);
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// Whether a match key names one person for certain: an address, a
/// national phone number, a handle, a literal value. Not a name (two
/// people may share it, nicknames too), a subscriber number (the same in
/// another area code) or a local part at any domain: those suppress a
/// write, but are not enough to take another subject for the same person.
#[must_use]
pub fn is_strong_key(key: &str) -> bool {
    !["name:", "subscriber:", "local:"].iter().any(|p| key.starts_with(p))
}

/// The identifier's match keys that name one person for certain
/// ([`is_strong_key`]): none for a name, whatever kind it was given under
/// (`other:xavier xu`, the legacy key of a name given as OTHER, and
/// `literal:xavier`, of a one-word name, are a name all the same).
#[must_use]
pub fn strong_match_keys(id: &Identifier) -> Vec<String> {
    let c = canonical(id);
    if c.kind == IdentifierKind::Name || (id.kind == IdentifierKind::Name && c.kind == IdentifierKind::Other) {
        return Vec::new();
    }
    match_keys(id).into_iter().filter(|k| is_strong_key(k)).collect()
}

/// The strong keys of a subject id that is, as a whole, an address, a phone
/// or a handle (`xavier@ex.com`, `mailto:Xavier@EX.com`, `+1 555 0100`,
/// `@xavier`), read as an identifier of kind OTHER; none for any other id
/// (`s0000042`, `user-5550100`: an id that only contains digits or a word
/// is its own, not a person's identifier).
#[must_use]
pub fn id_strong_keys(id: &str) -> Vec<String> {
    let as_identifier = Identifier { kind: IdentifierKind::Other, value: id.to_owned() };
    match canonical(&as_identifier).kind {
        IdentifierKind::Email | IdentifierKind::Phone | IdentifierKind::Handle => strong_match_keys(&as_identifier),
        _ => Vec::new(),
    }
}

/// Words too common to name anybody: an identifier made only of them would
/// turn residual search (and a `delete` or `redact` policy) on everyone.
const STOP_WORDS: &[&str] = &[
    "a", "about", "after", "again", "all", "also", "am", "an", "and", "any", "are", "as", "at", "be", "because",
    "been", "before", "being", "both", "but", "by", "can", "could", "did", "do", "does", "doing", "done", "down",
    "each", "few", "for", "from", "further", "get", "got", "had", "has", "have", "having", "he", "her", "here",
    "hers", "him", "his", "how", "i", "if", "in", "into", "is", "it", "its", "just", "me", "more", "most", "my",
    "no", "nor", "not", "now", "of", "off", "on", "once", "only", "or", "other", "our", "out", "over", "own",
    "re", "same", "she", "should", "so", "some", "such", "than", "that", "the", "their", "them", "then", "there",
    "these", "they", "this", "those", "through", "to", "too", "under", "until", "up", "us", "very", "was", "we",
    "were", "what", "when", "where", "which", "while", "who", "whom", "why", "will", "with", "would", "you",
    "your", "yes", "hi", "hello", "thanks", "regards", "dear", "team", "null", "none", "unknown", "test",
    "admin", "user", "info", "mail", "email", "name", "phone", "subject", "sent", "cc", "bcc", "fw", "fwd",
];

/// Checks that an identifier can name one person, as [`canonical`] reads
/// it: an address with a local part and a dotted domain, a phone with seven
/// digits or more, a handle or id of three characters or more, a name of
/// three letters or more; never only common words.
///
/// # Errors
/// Why the identifier is refused.
pub fn validate(id: &Identifier) -> Result<(), String> {
    let c = canonical(id);
    let words: Vec<String> = c
        .value
        .split(|ch: char| !ch.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect();
    if !words.is_empty() && words.iter().all(|w| STOP_WORDS.contains(&w.as_str())) {
        return Err(format!("`{}` is made of common words only and would match everyone", c.value));
    }
    let letters_or_digits = c.value.chars().filter(|ch| ch.is_alphanumeric()).count();
    match c.kind {
        IdentifierKind::Email => Ok(()),
        _ if id.kind == IdentifierKind::Email => Err("is not an e-mail address (local@domain.tld)".into()),
        IdentifierKind::Phone if national_number(&c.value).len() < 7 => {
            Err("a phone number needs at least 7 digits".into())
        }
        IdentifierKind::Phone => Ok(()),
        IdentifierKind::Name if letters_or_digits < 3 || words.iter().all(|w| w.chars().count() < 2) => {
            Err("a name needs at least 3 letters".into())
        }
        _ if letters_or_digits < 3 => Err("needs at least 3 letters or digits".into()),
        _ => Ok(()),
    }
}

/// How earlier versions hashed an identifier (kept so their tombstones hold).
pub fn legacy_key(id: &Identifier) -> String {
    format!("{}:{}", id.kind.as_str(), id.normalized())
}

/// A local part that names somebody in particular (`jeff.dasovich`,
/// `pallen`), not just a first name (`jeff`): residual search matches it at
/// any domain.
pub fn specific_local_part(local: &str) -> bool {
    local.contains(['.', '_', '-']) || local.chars().any(|c| c.is_ascii_digit()) || local.len() >= 6
}

/// The national number of a phone: its digits without a leading `1`
/// country code of an 11-digit North American number.
pub fn national_number(digits: &str) -> String {
    let plain: String = digits.chars().filter(char::is_ascii_digit).collect();
    if plain.len() == 11 && plain.starts_with('1') { plain[1..].to_owned() } else { plain }
}

/// The digits a phone number's subscriber is reached by in any of the
/// forms people write it: the number after its country code (`+44 20 7946
/// 0958`, `0044 …`) or, written nationally, after the trunk prefix (`020
/// 7946 0958`), without leading zeros (`+44 (0)20 …`; Italy keeps its `0`
/// after the country code, and drops nothing: both read `6…` here). A
/// national number of 11 digits beginning with `1` also gives its last 10
/// (`1-713-853-6000`), and one beginning with `8` too (the trunk prefix of
/// Russia and Kazakhstan). `canonical_digits` is a canonical phone value
/// (`+` and digits, or digits). Numbers shorter than 7 digits give none.
pub fn subscriber_numbers(canonical_digits: &str) -> Vec<String> {
    let digits: String = canonical_digits.chars().filter(char::is_ascii_digit).collect();
    let mut out = Vec::new();
    if canonical_digits.starts_with('+') {
        let code = country_code_len(&digits).min(digits.len());
        out.push(digits[code..].trim_start_matches('0').to_owned());
    } else {
        out.push(digits.trim_start_matches('0').to_owned());
        // North America's `1`, and `8`, the trunk prefix of Russia and
        // Kazakhstan (`8 495 123-45-67` is `+7 495 123 45 67`).
        if digits.len() == 11 && digits.starts_with(['1', '8']) {
            out.push(digits[1..].to_owned());
        }
    }
    out.retain(|n| n.len() >= 7);
    out.dedup();
    out
}

/// How many digits an international number's country code has (ITU-T
/// E.164: `1` and `7` alone, the two-digit codes listed, three otherwise).
fn country_code_len(digits: &str) -> usize {
    match digits.as_bytes() {
        [b'1' | b'7', ..] => 1,
        [b'2', b'0' | b'7', ..]
        | [b'3', b'0'..=b'4' | b'6' | b'9', ..]
        | [b'4', b'0' | b'1' | b'3'..=b'9', ..]
        | [b'5', b'1'..=b'8', ..]
        | [b'6', b'0'..=b'6', ..]
        | [b'8', b'1' | b'2' | b'4' | b'6', ..]
        | [b'9', b'0'..=b'5' | b'8', ..] => 2,
        _ => 3,
    }
}

/// A word without its diacritics (`núñez` → `nunez`, `łódź` → `lodz`,
/// `straße` → `strasse`): canonical decomposition with the combining marks
/// dropped, and the Latin letters that do not decompose spelt as their
/// usual ASCII.
pub fn fold_diacritics(word: &str) -> String {
    // Only the Latin combining diacritics (U+0300–U+036F) after a Latin
    // letter: the vowel signs of Devanagari, Thai, … are letters of the name.
    let latin = |c: char| c.is_ascii_alphabetic() || matches!(c as u32, 0xC0..=0x24F | 0x1E00..=0x1EFF);
    let mut out = String::with_capacity(word.len());
    let mut after_latin = false;
    for c in word.nfd() {
        if ('\u{300}'..='\u{36F}').contains(&c) && after_latin {
            continue;
        }
        after_latin = latin(c) || (after_latin && unicode_normalization::char::is_combining_mark(c));
        match c {
            'ß' => out.push_str("ss"),
            'æ' => out.push_str("ae"),
            'Æ' => out.push_str("AE"),
            'œ' => out.push_str("oe"),
            'Œ' => out.push_str("OE"),
            'þ' => out.push_str("th"),
            'Þ' => out.push_str("TH"),
            'ø' => out.push('o'),
            'Ø' => out.push('O'),
            'ł' => out.push('l'),
            'Ł' => out.push('L'),
            'đ' | 'ð' => out.push('d'),
            'Đ' | 'Ð' => out.push('D'),
            'ı' => out.push('i'),
            _ => out.push(c),
        }
    }
    out
}

/// An address with its domain in ASCII (IDNA: `ann@bücher.de` is
/// `ann@xn--bcher-kva.de`, as mail systems send it); the address unchanged
/// when its domain is not a valid IDN.
fn ascii_address(address: &str) -> String {
    match address.rsplit_once('@') {
        Some((local, domain)) if !domain.is_ascii() || domain.contains("xn--") => match idna::domain_to_ascii(domain) {
            Ok(ascii) if !ascii.is_empty() => format!("{local}@{ascii}"),
            _ => address.to_owned(),
        },
        _ => address.to_owned(),
    }
}

/// A domain's Unicode form when it has IDN labels (`xn--bcher-kva.de` →
/// `bücher.de`), as texts may write it.
pub fn unicode_domain(domain: &str) -> Option<String> {
    if !domain.contains("xn--") {
        return None;
    }
    match idna::domain_to_unicode(domain) {
        (unicode, Ok(())) if unicode != domain => Some(unicode),
        _ => None,
    }
}

/// A free text as identifiers are read: without invisible characters, in
/// NFKC (full-width digits and `＠` as ASCII). Where a text is checked for
/// mentions and never shown, this form is checked too: `Zora\u{200B}
/// Kellerman` or `２１２ ５５５ ０１９９` must not pass for no one.
pub fn readable(text: &str) -> String {
    visible(text).nfkc().collect()
}

/// A document's id, uri or kind, or a request's text, as a uri's reader
/// takes it: `%XX` escapes decoded (twice at most: `%2540` is `%40` is
/// `@`), with `+` kept (a path's or userinfo's: `zora+lists%40corp.example`)
/// and with `+` as a space (a query's: `?q=Zora+Kellerman`); none when it
/// has neither or reads the same. Ids and uris carry people escaped
/// (`?owner=zora%40corp.example`, `zora%2Dk`): read only as written, an
/// erased person would stay in Lethe's tables in clear, escaped. Read beside
/// the text as written, never instead of it.
pub fn unescaped(text: &str) -> Vec<String> {
    let decoded = |mut t: String| {
        for _ in 0..2 {
            if !has_escape(&t) {
                break;
            }
            t = percent_encoding::percent_decode_str(&t).decode_utf8_lossy().into_owned();
        }
        t
    };
    let mut out = Vec::new();
    if has_escape(text) {
        out.push(decoded(text.to_owned()));
    }
    if text.contains('+') {
        out.push(decoded(text.replace('+', " ")));
    }
    out.retain(|t| t != text);
    out.dedup();
    out
}

/// A text read unescaped, with where each of its bytes was read from in the
/// text as written: a match found in the reading is a range of the text
/// as written too (a chunk's `?email=zk%40corp.example` is found, and
/// redacted, where it is written).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reading {
    pub text: String,
    /// Per byte of `text`, and one past its end: a byte offset in the text
    /// as written (a decoded byte's: its `%`).
    from: Vec<usize>,
}

impl Reading {
    /// The range of the text as written that `start..end` of this reading
    /// was read from (ends on a character boundary of the reading:
    /// [`std::str`] ranges).
    pub fn origin(&self, start: usize, end: usize) -> (usize, usize) {
        (self.from[start], self.from[end])
    }
}

/// Every other way a document's id, uri or kind, a caller's id or a
/// request's free text can be read as naming someone: [`unescaped`]
/// (`zora%2Dk`), and [`deobfuscated`] (`zk&#64;corp.example`, `jos&eacute;`,
/// `Zo\u00eb`, `zk [at] corp [dot] example`); each once, none the text as
/// written. Read beside the text as written, never instead of it.
pub fn other_readings(text: &str) -> Vec<String> {
    let mut out = unescaped(text);
    if let Some(r) = deobfuscated(text)
        && !out.contains(&r.text)
    {
        out.push(r.text);
    }
    out
}

/// A chunk's text as [`unescaped`] reads an id, each reading with its
/// origin ([`Reading`]): `%XX` escapes decoded (twice at most) with `+`
/// kept, and with `+` as a space; none when the text has neither or reads
/// the same. A run of escapes that is not UTF-8 (`%FF`) is read as written,
/// not replaced: every byte of a reading comes from one place.
pub fn unescaped_readings(text: &str) -> Vec<Reading> {
    let mut out: Vec<Reading> = Vec::new();
    for plus_as_space in [false, true] {
        if !(has_escape(text) || plus_as_space && text.contains('+')) {
            continue;
        }
        let Some(mut r) = decode_once(text, plus_as_space) else { continue };
        if has_escape(&r.text)
            && let Some(again) = decode_once(&r.text, false)
        {
            r = Reading { from: again.from.iter().map(|i| r.from[*i]).collect(), text: again.text };
        }
        if r.text != text && !out.iter().any(|o| o.text == r.text) {
            out.push(r);
        }
    }
    out
}

/// Every other reading of a chunk's text: [`unescaped_readings`], the text
/// with HTML character references decoded and the ways people write an
/// address so that scrapers miss it spelled out ([`deobfuscated`]), and a
/// mail body as quoted-printable reads ([`quoted_printable`]).
pub fn text_readings(text: &str) -> Vec<Reading> {
    let mut out = unescaped_readings(text);
    for r in deobfuscated(text).into_iter().chain(quoted_printable(text)) {
        if !out.iter().any(|o| o.text == r.text) {
            out.push(r);
        }
    }
    out
}

/// A mail body left quoted-printable (RFC 2045), as a pipeline that chunks
/// raw `.eml` files keeps it, read decoded: soft line breaks (`=` at the end
/// of a line) removed, `=XX` escapes decoded where they spell UTF-8. Lines
/// are broken wherever they reach 76 characters, inside a name or an address
/// (the development corpus: `Sara Shackleton/HOU/ECT@E=\nCT`,
/// `eservice@=\ncoair.com`). Only a text with a soft line break is read so:
/// `=20` or `=3D` alone is no sign of the encoding. A match across a soft
/// break is the range of the text with the break in it (what `redact`
/// replaces).
pub fn quoted_printable(text: &str) -> Option<Reading> {
    if !text.contains("=\n") && !text.contains("=\r\n") {
        return None;
    }
    decoded(text, b'=', false, true).filter(|r| r.text != text)
}

/// What [`deobfuscated`] replaces piece by piece: an HTML character
/// reference, numeric or named (`&#64;`, `&#x40;`, `&commat;`, `&nbsp;`,
/// `Jos&eacute;`), JSON's `\u` escape (`Zo\u00eb`, what Python's
/// `json.dumps` writes for every letter outside ASCII) or JavaScript's
/// `escape()`'s (`Zo%u00EB`, `zk%u0040corp.example`), one character each (a
/// surrogate pair is one), and `at` / `dot` in brackets (`zk [at] corp [dot]
/// example`, `zk(at)corp(dot)example`). One piece is one character: a
/// reading's bytes from one piece all map to where the piece starts, so a
/// match that ends inside a longer piece would lose its last characters
/// (`Nov\u00e1kov\u00e1\u2019s` read as a run cut the name short).
static OBFUSCATED_PIECE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(
        r"(?i)&#(?:x[0-9a-f]{1,6}|[0-9]{1,7});|&[a-z][a-z0-9]{1,31};|[\\%]ud[89ab][0-9a-f]{2}[\\%]ud[c-f][0-9a-f]{2}|[\\%]u[0-9a-f]{4}|\s*[\[({<]\s*(at|dot)\s*[\])}>]\s*",
    )
    .unwrap_or_else(|_| unreachable!())
});

/// An address spelled out between spaces (`zk at corp dot example`): the
/// whole of it, so that `at` in prose (`met at noon`) is left alone.
static SPELLED_ADDRESS: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)\b([a-z0-9][\w.+-]*)[ \t]+at[ \t]+([a-z0-9][\w-]*(?:[ \t]+dot[ \t]+[a-z0-9][\w-]*)+)\b")
        .unwrap_or_else(|_| unreachable!())
});

/// The text with HTML character references decoded and an address written
/// so that scrapers miss it read as one (`zk [at] corp [dot] example`, `zk
/// (at) corp (dot) example`, `zk at corp dot example`, `zk&#64;corp.example`):
/// what a web page or a signature writes names the person all the same.
/// `None` when there is nothing of the kind. The bytes that replace a piece
/// of the text come from where the piece starts ([`Reading`]).
pub fn deobfuscated(text: &str) -> Option<Reading> {
    // Substring searches first (the standard library's): a chunk of 32 KiB
    // is read by every residual search that proposes it, and almost none
    // holds any of this.
    let b = text.as_bytes();
    let word_before = |end: usize, w: &[u8]| end >= w.len() && b[end - w.len()..end].eq_ignore_ascii_case(w);
    let bracketed = text.match_indices([']', ')', '}', '>']).any(|(i, _)| {
        let end = text[..i].trim_end().len();
        word_before(end, b"at") || word_before(end, b"dot")
    });
    let escapes = text.contains("\\u") || text.contains("%u") || text.contains("%U");
    let pieces = if bracketed || escapes || text.contains('&') { piecewise(text) } else { None };
    let base = pieces.as_ref().map_or(text, |r| r.text.as_str());
    // The regex decides; `dot` as a word is rare in prose.
    let holds = |words: [&str; 3]| words.iter().any(|w| base.contains(w));
    let spelled = if holds(["dot", "DOT", "Dot"]) && holds(["at", "AT", "At"]) { spelled_out(base) } else { None };
    match (pieces, spelled) {
        (None, s) => s,
        (p, None) => p,
        (Some(p), Some(s)) => Some(Reading { from: s.from.iter().map(|i| p.from[*i]).collect(), text: s.text }),
    }
}

/// [`deobfuscated`]'s references and bracketed words.
fn piecewise(text: &str) -> Option<Reading> {
    replaced(text, &OBFUSCATED_PIECE, |c| match c.get(1) {
        Some(w) if w.as_str().eq_ignore_ascii_case("at") => Some("@".to_owned()),
        Some(_) => Some(".".to_owned()),
        None => {
            let piece = c.get(0)?.as_str();
            if piece.starts_with(['\\', '%']) { utf16_escapes(piece) } else { entity(piece) }
        }
    })
}

/// A `\uXXXX` (or `%uXXXX`) escape as the character it spells, or a
/// surrogate pair of them as one (`\ud83d\ude00`); `None` for `\U…`, which
/// JSON does not write. A lone surrogate reads as U+FFFD: the characters
/// around it still count.
fn utf16_escapes(run: &str) -> Option<String> {
    let units: Vec<u16> = run
        .as_bytes()
        .chunks(6)
        .map(|e| match e {
            [b'\\', b'u', hex @ ..] | [b'%', b'u' | b'U', hex @ ..] => u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    if units.len() * 6 != run.len() {
        return None;
    }
    let text: String = char::decode_utf16(units).map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER)).collect();
    (!text.chars().any(|c| c.is_control() && !c.is_whitespace())).then_some(text)
}

/// [`deobfuscated`]'s addresses spelled out between spaces.
fn spelled_out(text: &str) -> Option<Reading> {
    replaced(text, &SPELLED_ADDRESS, |c| {
        let domain = c.get(2)?.as_str().split_whitespace().filter(|w| !w.eq_ignore_ascii_case("dot")).collect::<Vec<_>>().join(".");
        Some(format!("{}@{domain}", c.get(1)?.as_str()))
    })
}

/// `text` with each match of `re` that `with` gives a replacement for
/// replaced, as a [`Reading`]; `None` when nothing was replaced.
fn replaced(text: &str, re: &regex::Regex, with: impl Fn(&regex::Captures<'_>) -> Option<String>) -> Option<Reading> {
    let mut out = String::with_capacity(text.len());
    let mut from: Vec<usize> = Vec::with_capacity(text.len() + 1);
    let (mut copied, mut changed) = (0, false);
    for c in re.captures_iter(text) {
        let (Some(m), Some(piece)) = (c.get(0), with(&c)) else { continue };
        out.push_str(&text[copied..m.start()]);
        from.extend(copied..m.start());
        out.push_str(&piece);
        from.extend(std::iter::repeat_n(m.start(), piece.len()));
        copied = m.end();
        changed = true;
    }
    if !changed {
        return None;
    }
    out.push_str(&text[copied..]);
    from.extend(copied..=text.len());
    Some(Reading { text: out, from })
}

/// What an HTML character reference stands for: a numeric one's
/// character; a named one's from HTML's table when it is a letter
/// (`&eacute;` é, `&Scaron;` Š; names are case-sensitive there, as in a
/// browser), and `&commat;` @, `&period;` . and `&nbsp;` a plain space (it
/// separates a name's words), in any case. `None` otherwise.
fn entity(reference: &str) -> Option<String> {
    let body = reference.strip_prefix('&')?.strip_suffix(';')?;
    let lower = body.to_ascii_lowercase();
    let code = if let Some(hex) = lower.strip_prefix("#x") {
        u32::from_str_radix(hex, 16).ok()?
    } else if let Some(dec) = lower.strip_prefix('#') {
        dec.parse().ok()?
    } else {
        let known = match lower.as_str() {
            "nbsp" => " ",
            "commat" => "@",
            "period" => ".",
            _ => {
                // One letter (`&eacute;`, `&szlig;`): `&amp;` and `&lt;`
                // spell neither a name nor an address, and are everywhere.
                // A text read lower-cased (`lexical::Matcher::may_match`)
                // has lost the capital of a name only HTML's capital has
                // (`&Gcedil;`, `&Idot;`): tried capitalised too.
                let letter = |r: &str| {
                    let decoded = html_escape::decode_html_entities(r);
                    let mut chars = decoded.chars();
                    chars.next().filter(|c| c.is_alphabetic() && chars.next().is_none() && decoded != r).map(String::from)
                };
                let mut capitalised = reference.to_owned();
                capitalised[1..2].make_ascii_uppercase();
                return letter(reference).or_else(|| letter(&capitalised));
            }
        };
        return Some(known.to_owned());
    };
    char::from_u32(code).filter(|c| !c.is_control() || c.is_whitespace()).map(String::from)
}

fn has_escape(t: &str) -> bool {
    let b = t.as_bytes();
    t.match_indices('%').any(|(i, _)| b.get(i + 1..i + 3).is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)))
}

/// One pass of [`unescaped_readings`].
fn decode_once(text: &str, plus_as_space: bool) -> Option<Reading> {
    decoded(text, b'%', plus_as_space, false)
}

/// `text` with each run of `marker` escapes (`%XX`, quoted-printable's
/// `=XX`) decoded where it spells UTF-8 and read as written where it does
/// not (`%FF`): every byte of the reading comes from one place. With
/// `soft_breaks`, quoted-printable's soft line breaks (`=` at the end of a
/// line) are left out, also between a character's escapes.
fn decoded(text: &str, marker: u8, plus_as_space: bool, soft_breaks: bool) -> Option<Reading> {
    let hex = |b: u8| char::from(b).to_digit(16).and_then(|d| u8::try_from(d).ok()).unwrap_or(0);
    let b = text.as_bytes();
    let escape = |j: usize| j + 3 <= b.len() && b[j] == marker && b[j + 1].is_ascii_hexdigit() && b[j + 2].is_ascii_hexdigit();
    // The length of a soft line break at `j`, or 0.
    let soft = |j: usize| match &b[j..] {
        [b'=', b'\n', ..] if soft_breaks => 2,
        [b'=', b'\r', b'\n', ..] if soft_breaks => 3,
        _ => 0,
    };
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut from: Vec<usize> = Vec::with_capacity(b.len() + 1);
    let mut i = 0;
    while i < b.len() {
        if soft(i) > 0 {
            i += soft(i);
            continue;
        }
        let (mut run, mut at, mut j) = (Vec::new(), Vec::new(), i);
        while escape(j) {
            run.push(hex(b[j + 1]) << 4 | hex(b[j + 2]));
            at.push(j);
            j += 3;
            if soft(j) > 0 && escape(j + soft(j)) {
                j += soft(j);
            }
        }
        if run.is_empty() {
            out.push(if plus_as_space && b[i] == b'+' { b' ' } else { b[i] });
            from.push(i);
            i += 1;
        } else if std::str::from_utf8(&run).is_ok() {
            out.extend(run);
            from.extend(at);
            i = j;
        } else {
            out.extend_from_slice(&b[i..j]);
            from.extend(i..j);
            i = j;
        }
    }
    from.push(b.len());
    // Whole characters copied and whole decoded runs: UTF-8 throughout.
    Some(Reading { text: String::from_utf8(out).ok()?, from })
}

/// The other ways a caller's id reads, as suppression compares ids: as
/// identifiers are read ([`readable`]: `ps1\u{200B}` is `ps1`), unescaped
/// and with references decoded ([`other_readings`]: `zora%2Dk` and
/// `zora&#45;k` are `zora-k`), each once, none blank and none the id itself.
pub fn id_readings(id: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for t in std::iter::once(id.to_owned()).chain(other_readings(id)) {
        let r = readable(&t);
        if r.trim().is_empty() {
            continue;
        }
        for t in [t, r] {
            if t != id && !out.contains(&t) {
                out.push(t);
            }
        }
    }
    out
}

/// The text without Unicode's default-ignorable code points (soft hyphen,
/// zero-width space and joiners, word joiner, bidirectional marks, variation
/// selectors, BOM, tags …): invisible, so `jeff.dasovich\u{AD}@enron.com`
/// reads as the erased address and must not pass the tombstone as another.
/// NFKC keeps them ([`crate::domain::invisible`]).
fn visible(s: &str) -> std::borrow::Cow<'_, str> {
    use crate::domain::invisible;
    if s.chars().any(invisible) { s.chars().filter(|c| !invisible(*c)).collect::<String>().into() } else { s.into() }
}

/// Whether a free text of a request (an erasure's reason, who asked, a
/// hold's reason: kept after the erasure, in the job, the chained log and
/// the certificate) names the person: their id (the caller's, a whole
/// token, any case) or one of their identifiers as residual search would
/// name them (a match scoring `lexical::MIN_SCORE`: an address, a full
/// name, not a lone surname).
pub fn names_person(text: &str, subject_id: &str, identifiers: &[Identifier]) -> bool {
    Person::new(subject_id, identifiers).named_in(text)
}

/// [`names_person`] for many texts: the person's id as read and their
/// identifiers' matcher prepared once.
pub struct Person {
    /// The id without invisible characters and surrounding blanks, lower case.
    id: String,
    naming: Option<crate::residual::Naming>,
}

impl Person {
    #[must_use]
    pub fn new(subject_id: &str, identifiers: &[Identifier]) -> Self {
        // The id as read, too: `alice\u{200B}` or ` alice ` is named by `alice`.
        let id = visible(subject_id).trim().to_lowercase();
        Self { id, naming: (!identifiers.is_empty()).then(|| crate::residual::Naming::new(identifiers)) }
    }

    /// For reading ids and uris of documents: the person's id counts only
    /// when it is specific enough not to be any document's number (at least
    /// four characters, six when all digits): subject `42` does not name
    /// `tickets/2024/42`, `zora-k` names `mailbox:zora-k/7`.
    #[must_use]
    pub fn naming_sources(subject_id: &str, identifiers: &[Identifier]) -> Self {
        let mut person = Self::new(subject_id, identifiers);
        let n = person.id.chars().count();
        if n < 4 || (n < 6 && person.id.chars().all(|c| c.is_ascii_digit())) {
            person.id.clear();
        }
        person
    }

    /// See [`names_person`].
    #[must_use]
    pub fn named_in(&self, text: &str) -> bool {
        self.named_as_written(text) || other_readings(text).iter().any(|t| self.named_as_written(t))
    }

    fn named_as_written(&self, text: &str) -> bool {
        // Read as identifiers are: an invisible character must not hide a name.
        let text = visible(text);
        let text = text.as_ref();
        let text_lower = text.to_lowercase();
        let boundary = |c: Option<char>| c.is_none_or(|c| !c.is_alphanumeric());
        let names_id = !self.id.is_empty()
            && text_lower.match_indices(&self.id).any(|(at, m)| {
                boundary(text_lower[..at].chars().next_back()) && boundary(text_lower[at + m.len()..].chars().next())
            });
        names_id || self.naming.as_ref().is_some_and(|n| n.names(text))
    }
}

/// The parts of a document's id, uri or kind that could be a caller's id
/// for a person, as [`Person::naming_sources`] reads one: from the start of
/// an alphanumeric run to the end of one (`zora-k/inbox/7` gives `zora`,
/// `inbox`, `zora-k`, `zora-k/inbox`, …), at least 4 characters (6 when all
/// digits) and at most 256 bytes, each once. Single runs first, then two
/// joined, and so on, at most [`MAX_ID_FORMS`] in all, from at most 4 times
/// as many windows looked at (the work is bounded as the output is): every
/// single run of a text of the write path's sizes (a uri of 2,048 bytes
/// has at most 1,024 runs, 410 of 4 characters) is read, and only forms of
/// many runs in a long text may be left out. Their keyed hashes are looked
/// up among erased subjects' id hashes: all that is left of an erased
/// person's caller id.
#[must_use]
pub fn id_forms(text: &str) -> Vec<&str> {
    let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
    // Byte offsets, with the number of characters before them.
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut prev = None;
    let mut chars = 0;
    for (i, c) in text.char_indices() {
        if c.is_alphanumeric() && !alnum(prev) {
            starts.push((i, chars));
        }
        if !c.is_alphanumeric() && alnum(prev) {
            ends.push((i, chars));
        }
        prev = Some(c);
        chars += 1;
    }
    if alnum(prev) {
        ends.push((text.len(), chars));
    }
    // Run i spans starts[i]..ends[i]; k more runs joined end at ends[i + k].
    // The work is bounded as the output is: a text of many short repeated
    // runs gives few distinct forms from many windows.
    let mut forms = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut windows = 0;
    for k in 0..starts.len() {
        let mut any = false;
        for (i, &(s, s_chars)) in starts.iter().enumerate().take(starts.len() - k) {
            let (e, e_chars) = ends[i + k];
            if e - s > 256 {
                continue;
            }
            any = true;
            windows += 1;
            if windows > 4 * MAX_ID_FORMS {
                return forms;
            }
            let form = &text[s..e];
            let n = e_chars - s_chars;
            if (n >= 6 || (n >= 4 && !form.chars().all(|c| c.is_ascii_digit()))) && seen.insert(form) {
                forms.push(form);
                if forms.len() == MAX_ID_FORMS {
                    return forms;
                }
            }
        }
        if !any {
            break;
        }
    }
    forms
}

/// The most forms [`id_forms`] reads in one text.
pub const MAX_ID_FORMS: usize = 512;

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    s.get(..prefix.len()).filter(|p| p.eq_ignore_ascii_case(prefix)).map(|_| &s[prefix.len()..])
}

/// The one address a display form holds, lower case: its words split at
/// whitespace and `<>'(),;:[]{}`, each without `mailto:`, the quotes of a
/// quoted local part and a final dot. None for none or several.
fn one_address(value: &str) -> Option<String> {
    let mut addresses = value
        .split(|c: char| c.is_whitespace() || "<>'(),;:[]{}".contains(c))
        .filter(|w| !w.eq_ignore_ascii_case("mailto"))
        .map(|w| w.replace("\"@", "@").trim_matches('"').trim_end_matches('.').to_lowercase())
        .filter(|w| is_email(w));
    match (addresses.next(), addresses.next()) {
        (Some(only), None) => Some(ascii_address(&only)),
        _ => None,
    }
}

/// A phone value without `tel:` and without an extension (`x12`, `ext. 12`, `;ext=12`).
fn phone_part(value: &str) -> &str {
    let value = strip_prefix_ci(value, "tel:").unwrap_or(value).trim();
    let lower = value.to_ascii_lowercase();
    let cut = [";ext=", " ext", "ext.", " x", "#"].iter().filter_map(|m| lower.find(m)).min();
    match cut {
        Some(at) if value[..at].chars().filter(char::is_ascii_digit).count() >= 7 => value[..at].trim(),
        _ => value,
    }
}

/// The value without its parenthesised parts, when it has any.
fn without_parentheses(value: &str) -> Option<String> {
    if !value.contains('(') {
        return None;
    }
    let mut out = String::new();
    let mut depth = 0usize;
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    Some(out.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// `local@domain.tld` with one `@`: the local part of the characters an
/// address allows unquoted (RFC 5322's atext and dots), the domain of
/// letters, digits, `-` and dots.
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else { return false };
    !local.is_empty()
        && local.chars().all(|c| c.is_alphanumeric() || ".!#$%&'*+/=?^_`{|}~-".contains(c))
        && domain.chars().all(|c| c.is_alphanumeric() || ".-".contains(c))
        && !s.contains(char::is_whitespace)
        && !domain.contains('@')
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// Digits with the usual separators, seven digits at least.
fn is_phone(s: &str) -> bool {
    let digits = s.chars().filter(char::is_ascii_digit).count();
    digits >= 7 && s.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) && !s.starts_with(['-', '.'])
}

fn phone_digits(s: &str) -> String {
    let plus = s.trim_start().starts_with('+');
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    // The international prefixes `00` (most of the world) and `011` (North America).
    let international = ["00", "011"].iter().find_map(|p| digits.strip_prefix(p)).filter(|rest| rest.len() >= 7);
    match international {
        Some(rest) if !plus => format!("+{rest}"),
        _ if plus => format!("+{digits}"),
        _ => digits,
    }
}

/// One word of letters, digits, `_`, `.` or `-`.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_alphanumeric() || "_.-".contains(c))
}

/// Two to six words of letters (with `.`, `,`, `-`, `'`).
fn looks_like_name(s: &str) -> bool {
    let words: Vec<&str> = s.split([' ', ',']).filter(|w| !w.is_empty()).collect();
    (2..=6).contains(&words.len())
        && words.iter().all(|w| w.chars().any(char::is_alphabetic) && w.chars().all(|c| c.is_alphabetic() || ".-'".contains(c)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: IdentifierKind, value: &str) -> Identifier {
        Identifier { kind, value: value.into() }
    }

    fn shares_key(a: &Identifier, b: &Identifier) -> bool {
        let ka = match_keys(a);
        match_keys(b).iter().any(|k| ka.contains(k))
    }

    #[test]
    fn names_are_never_strong_keys_under_any_kind() {
        for (kind, value) in [
            (IdentifierKind::Name, "Xavier Xu"),
            (IdentifierKind::Other, "Xavier Xu"),
            (IdentifierKind::Handle, "Xavier Xu"),
            (IdentifierKind::Name, "Xavier"),
        ] {
            assert_eq!(strong_match_keys(&id(kind, value)), Vec::<String>::new(), "{kind:?} {value}");
        }
        assert!(strong_match_keys(&id(IdentifierKind::Name, "xavier@ex.com")).contains(&"email:xavier@ex.com".to_owned()));
        assert!(strong_match_keys(&id(IdentifierKind::Other, "cust-00412")).iter().any(|k| k.starts_with("literal:")));
        assert!(!strong_match_keys(&id(IdentifierKind::Phone, "+1 555 010 0777")).iter().any(|k| k.starts_with("subscriber:")));
    }

    #[test]
    fn a_subject_id_is_keyed_only_when_it_is_an_identifier_as_a_whole() {
        for id in ["xavier@ex.com", "mailto:Xavier@EX.com", "@xavier_xu"] {
            assert!(!id_strong_keys(id).is_empty(), "{id}");
        }
        assert!(id_strong_keys("Xavier@EX.com").contains(&"email:xavier@ex.com".to_owned()));
        for id in ["s0000000", "s0000000~g1", "user-42", "Xavier Xu", "xavier", ""] {
            assert_eq!(id_strong_keys(id), Vec::<String>::new(), "{id}");
        }
    }

    #[test]
    fn id_forms_are_the_runs_a_caller_id_could_be() {
        let forms = id_forms("mailbox:zora-k/inbox/7");
        for want in ["mailbox", "zora", "zora-k", "inbox", "zora-k/inbox", "mailbox:zora-k/inbox/7"] {
            assert!(forms.contains(&want), "{want}: {forms:?}");
        }
        assert!(!forms.contains(&"k") && !forms.contains(&"7") && !forms.contains(&"ora-k"), "{forms:?}");
        assert_eq!(id_forms("tickets/2024/42"), ["tickets", "tickets/2024", "2024/42", "tickets/2024/42"], "short numbers alone are no one's id");
        assert_eq!(id_forms("acct-004217"), ["acct", "004217", "acct-004217"]);
        assert_eq!(id_forms(&"ab-".repeat(400))[0], "ab-ab", "each form once");
        let many: String = (0..1_000).map(|i| format!("w{i:04}-")).collect();
        assert_eq!(id_forms(&many).len(), MAX_ID_FORMS);
        // A long uri: every single run is read, the last one too, and
        // repeats are read once.
        let uri: String = (0..400).map(|i| format!("d{i:03}/")).chain(["zora-k".to_owned()]).collect();
        assert!(uri.len() <= 2_048 && id_forms(&uri).contains(&"zora"), "a late single run");
        assert!(id_forms(&format!("{}zora-k", "abcd/".repeat(400))).contains(&"zora-k"));
        // Work bounded: many short repeated runs.
        assert!(id_forms(&"a-".repeat(1_024)).len() <= MAX_ID_FORMS);
        assert!(id_forms(&format!("{}zora", "a-".repeat(1_000))).contains(&"zora"), "every single run");
        assert!(id_forms("").is_empty() && id_forms("--//").is_empty());
    }

    #[test]
    fn invisible_characters_do_not_make_another_identifier() {
        let erased = id(IdentifierKind::Email, "jeff.dasovich@enron.com");
        for value in ["jeff.dasovich\u{AD}@enron.com", "jeff\u{200B}.dasovich@enron.com", "\u{FEFF}jeff.dasovich@enron.com\u{2060}"] {
            assert!(shares_key(&erased, &id(IdentifierKind::Email, value)), "{value:?}");
        }
        let name = id(IdentifierKind::Name, "Jeff Dasovich");
        assert!(shares_key(&name, &id(IdentifierKind::Name, "Je\u{200D}ff Da\u{AD}sovich")));
        // An identifier given with one keeps its earlier (legacy) key too.
        let soft = id(IdentifierKind::Email, "jeff.dasovich\u{AD}@enron.com");
        assert!(match_keys(&soft).contains(&legacy_key(&soft)));
        assert!(!shares_key(&erased, &id(IdentifierKind::Email, "jeff.dasovic@enron.com")));
    }

    #[test]
    fn what_residual_search_takes_for_the_erased_person_shares_a_key() {
        let erased = |kind, value: &str| id(kind, value);
        let cases: &[(Identifier, &[(IdentifierKind, &str)])] = &[
            (erased(IdentifierKind::Email, "ann@ex.com"), &[
                (IdentifierKind::Email, "ann@ex.com,"),
                (IdentifierKind::Email, "(ann@ex.com)"),
                (IdentifierKind::Other, "ann@ex.com;"),
                (IdentifierKind::Other, "email:ann@ex.com"),
                (IdentifierKind::Name, "ann@ex.com."),
                (IdentifierKind::AnonymousId, "ann@ex.com"),
            ]),
            (erased(IdentifierKind::Email, "jeff.dasovich@enron.com"), &[
                (IdentifierKind::Email, "jeff.dasovich+news@enron.com"),
                (IdentifierKind::Email, "\"jeff.dasovich\"@enron.com"),
                (IdentifierKind::Email, "jeff.k.dasovich@enron.com"),
                (IdentifierKind::Other, "jeff.dasovich"),
                (IdentifierKind::Handle, "@jeff.dasovich"),
            ]),
            (erased(IdentifierKind::Phone, "+44 20 7946 0958"), &[(IdentifierKind::Phone, "0044 20 7946 0958")]),
            (erased(IdentifierKind::Phone, "+1 713 853 6000"), &[
                (IdentifierKind::Phone, "001 713 853 6000"),
                (IdentifierKind::Phone, "011 1 713 853 6000"),
                (IdentifierKind::Phone, "(713) 853-6000 ext 12"),
                (IdentifierKind::Other, "713-853-6000 x12"),
                (IdentifierKind::Other, "tel:+17138536000"),
            ]),
            (erased(IdentifierKind::Name, "Jeff Dasovich"), &[
                (IdentifierKind::Name, "Mx Jeff Dasovich"),
                (IdentifierKind::Name, "Rev. Jeff Dasovich"),
                (IdentifierKind::Name, "Jeff Dasovich, CPA"),
                (IdentifierKind::Name, "Jeff Dasovich (Enron)"),
            ]),
            (erased(IdentifierKind::Handle, "@ann_b"), &[(IdentifierKind::Other, "ann_b")]),
            (erased(IdentifierKind::AnonymousId, "u-1042"), &[(IdentifierKind::Handle, "u-1042")]),
        ];
        for (gone, variants) in cases {
            for (kind, value) in *variants {
                assert!(shares_key(gone, &id(*kind, value)), "{gone:?} and {kind:?} {value}");
            }
        }
        // Not the same person to residual search either.
        for (a, b) in [
            (id(IdentifierKind::Handle, "@jeff"), id(IdentifierKind::Other, "jeff")),
            (id(IdentifierKind::Email, "jeff.dasovich@enron.com"), id(IdentifierKind::Email, "jeff.dasovich2@enron.com")),
            (id(IdentifierKind::Phone, "+1 713 853 6000"), id(IdentifierKind::Phone, "+1 713 853 6001")),
            (id(IdentifierKind::Email, "ann@ex.com"), id(IdentifierKind::Email, "ann@ex.co")),
        ] {
            assert!(!shares_key(&a, &b), "{a:?} and {b:?}");
        }
    }

    #[test]
    fn a_free_text_names_the_person_by_id_or_by_a_strong_form() {
        let ids = [id(IdentifierKind::Email, "alice@example.com"), id(IdentifierKind::Name, "Alice Liddell")];
        for text in [
            "DSAR from alice@example.com",
            "request of Alice Liddell",
            "ticket for LIDDELL, ALICE",
            "erase user u-42 now",
            "U-42",
            "from ali\u{200B}ce@exam\u{AD}ple.com",
        ] {
            assert!(names_person(text, "u-42", &ids), "{text}");
        }
        for text in ["GDPR Art. 17 request 2026-123", "dpo@acme.example", "Liddell v. Acme", "user u-421", "au-42x"] {
            assert!(!names_person(text, "u-42", &ids), "{text}");
        }
        assert!(!names_person("anything", "", &[]));
        // The id as read: invisible characters and surrounding blanks in it
        // do not hide it.
        for id in ["u\u{200B}-42", " u-42\t", "U-\u{AD}42"] {
            assert!(names_person("erase user u-42 now", id, &[]), "{id:?}");
        }
        assert!(!names_person("anything", " \u{200B} ", &[]));
        // Reading documents' ids: a short or numeric id is any document's number.
        for (id, text, named) in [("42", "tickets/2024/42", false), ("1234", "doc-1234", false), ("ab12", "doc-ab12", true), ("12345", "inv-12345", false), ("123456", "inv-123456", true), ("zora-k", "mailbox:zora-k/7", true), ("bob", "bob/7", false)] {
            assert_eq!(Person::naming_sources(id, &[]).named_in(text), named, "{id} in {text}");
        }
    }

    #[test]
    fn ids_and_uris_are_read_unescaped_too() {
        assert_eq!(unescaped("mailbox:zora%40corp.example/7"), ["mailbox:zora@corp.example/7"]);
        assert_eq!(unescaped("?who=Zora+Kellerman"), ["?who=Zora Kellerman"]);
        assert_eq!(unescaped("imap://zora+lists%40corp.example@imap"), ["imap://zora+lists@corp.example@imap", "imap://zora lists@corp.example@imap"]);
        assert_eq!(unescaped("x%2540y"), ["x@y"], "twice escaped");
        assert!(unescaped("50%off%zz").is_empty(), "no escape: read as written only");
        assert!(unescaped("tickets/2024/42").is_empty());
        // A chunk's text: each reading knows where its bytes were written.
        let text = "unsubscribe: ?e=zk%40corp.example&n=Zora+K%C3%A9llerman %FF";
        let readings = unescaped_readings(text);
        assert_eq!(readings.len(), 2, "{readings:?}");
        let (plain, spaced) = (&readings[0], &readings[1]);
        assert_eq!(plain.text, "unsubscribe: ?e=zk@corp.example&n=Zora+Kéllerman %FF", "not UTF-8: as written");
        assert_eq!(spaced.text, "unsubscribe: ?e=zk@corp.example&n=Zora Kéllerman %FF");
        for (found, written) in [("zk@corp.example", "zk%40corp.example"), ("Zora Kéllerman", "Zora+K%C3%A9llerman"), ("é", "%C3%A9")] {
            let at = spaced.text.find(found).unwrap_or_else(|| panic!("{found}"));
            let (s, e) = spaced.origin(at, at + found.len());
            assert_eq!(&text[s..e], written);
        }
        let twice = &unescaped_readings("a%2540b")[0];
        assert_eq!((twice.text.as_str(), twice.origin(1, 2)), ("a@b", (1, 6)), "twice escaped: from the first %");
        assert!(unescaped_readings("50% off, 100%").is_empty());
        // An address written so that scrapers miss it, and references.
        for (text, read, written) in [
            ("mail zk [at] corp [dot] example today", "mail zk@corp.example today", "zk [at] corp [dot] example"),
            ("mail zk(at)corp(dot)example.", "mail zk@corp.example.", "zk(at)corp(dot)example"),
            ("or zk AT corp DOT example, we met at noon", "or zk@corp.example, we met at noon", "zk AT corp DOT example"),
            ("zk&#64;corp&#x2E;example", "zk@corp.example", "zk&#64;corp&#x2E;example"),
            ("Zora&nbsp;K&#233;llerman: zk&commat;corp [dot] example", "Zora Kéllerman: zk@corp.example", "zk&commat;corp [dot] example"),
        ] {
            let r = deobfuscated(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(r.text, read);
            let at = r.text.find("zk@").unwrap_or_else(|| panic!("{text}"));
            let (s, e) = r.origin(at, at + "zk@corp.example".len());
            assert_eq!(&text[s..e], written, "{text}");
        }
        let r = deobfuscated("Zora&nbsp;K&#233;llerman").unwrap();
        let (s, e) = r.origin(0, r.text.len());
        assert_eq!((r.text.as_str(), s, e), ("Zora Kéllerman", 0, 24));
        // Named references of letters (HTML mail), and JSON's `\u` escapes
        // (what Python's `json.dumps` writes for every letter outside ASCII).
        for (text, read, name, written) in [
            ("From: Jos&eacute; N&uacute;&ntilde;ez", "From: José Núñez", "José Núñez", "Jos&eacute; N&uacute;&ntilde;ez"),
            ("{\"from\": \"Zo\\u00eb M\\u00fcller\"}", "{\"from\": \"Zoë Müller\"}", "Zoë Müller", "Zo\\u00eb M\\u00fcller"),
            ("&Scaron;koda &amp; Co", "Škoda &amp; Co", "Škoda", "&Scaron;koda"),
            ("smile \\ud83d\\ude00 Zo\\u00EB", "smile 😀 Zoë", "Zoë", "Zo\\u00EB"),
        ] {
            let r = deobfuscated(text).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(r.text, read);
            let at = r.text.find(name).unwrap_or_else(|| panic!("{text}"));
            let (s, e) = r.origin(at, at + name.len());
            assert_eq!(&text[s..e], written, "{text}");
        }
        assert_eq!(deobfuscated("a lone \\ud800 half").map(|r| r.text).as_deref(), Some("a lone \u{FFFD} half"));
        // A name ending inside a stretch of escapes is read to its last letter.
        let text = r"Jana Nov\u00e1kov\u00e1\u2019s report, \u00ab\u0418\u0432\u0430\u043d \u041f\u0435\u0442\u0440\u043e\u0432\u00bb";
        let r = deobfuscated(text).unwrap();
        assert_eq!(r.text, "Jana Nováková’s report, «Иван Петров»");
        for (name, written) in [("Jana Nováková", r"Jana Nov\u00e1kov\u00e1"), ("Петров", r"\u041f\u0435\u0442\u0440\u043e\u0432")] {
            let at = r.text.find(name).unwrap();
            let (s, e) = r.origin(at, at + name.len());
            assert_eq!(&text[s..e], written);
        }
        assert_eq!(deobfuscated("&gcedil;").map(|r| r.text).as_deref(), Some("Ģ"), "lower-cased, as may_match reads");
        // Quoted-printable, as a raw mail body keeps it.
        let text = "To: Sara Shackleton/HOU/ECT@E=\nCT\r\nFrom Jeff Dasov=\r\nich: caf=C3=\n=A9 a=3Db =FF=";
        let r = quoted_printable(text).unwrap();
        assert_eq!(r.text, "To: Sara Shackleton/HOU/ECT@ECT\r\nFrom Jeff Dasovich: café a=b =FF=");
        for (found, written) in [("Jeff Dasovich", "Jeff Dasov=\r\nich"), ("café", "caf=C3=\n=A9"), ("ECT@ECT", "ECT@E=\nCT")] {
            let at = r.text.find(found).unwrap_or_else(|| panic!("{found}"));
            let (s, e) = r.origin(at, at + found.len());
            assert_eq!(&text[s..e], written);
        }
        assert!(quoted_printable("a=3Db and 100=20%").is_none(), "no soft break: not read so");
        assert!(text_readings(text).iter().any(|r| r.text.contains("Jeff Dasovich")));
        let r = deobfuscated("Zo%u00EB at zk%u0040corp.example").unwrap();
        assert_eq!(r.text, "Zoë at zk@corp.example", "JavaScript's escape()");
        let at = r.text.find("zk@").unwrap();
        assert_eq!(r.origin(at, at + "zk@corp.example".len()), (12, 32));
        assert_eq!(deobfuscated("Jos&Eacute;").map(|r| r.text).as_deref(), Some("JosÉ"));
        for prose in [
            "we met at noon at the office",
            "at dot com",
            "&amp; &lt;b&gt; &#0; &#xD800; &copy; &EACUTE; &nosuch;",
            "(see above)",
            "C:\\users\\u12 and \\U00e9 and \\u0007 and 100%u and %u12",
        ] {
            assert!(deobfuscated(prose).is_none(), "{prose}");
        }
        assert_eq!(unescaped("caf%C3%A9%FF"), ["café\u{FFFD}"], "not UTF-8: replaced, not dropped");
        assert_eq!(id_readings("ps%2D1\u{200B}"), ["ps%2D1", "ps-1\u{200B}", "ps-1"]);
        assert_eq!(id_readings("ps\u{AD}1"), ["ps1"]);
        assert_eq!(id_readings("zora&#45;k"), ["zora-k"]);
        assert_eq!(id_readings("ps\\u002d1"), ["ps-1"], "JSON's escape");
        assert_eq!(id_readings("jos&eacute;"), ["josé"]);
        assert_eq!(id_readings("zora%u002Dk"), ["zora-k"], "JavaScript's escape()");
        assert_eq!(other_readings("a%40b&#64;c"), ["a@b&#64;c", "a%40b@c"], "each reading once");
        assert!(id_readings("ps1").is_empty() && id_readings("%E2%80%8B").is_empty());
        let ids = [
            id(IdentifierKind::Email, "zora.kellerman@corp.example"),
            id(IdentifierKind::Email, "zk@corp.example"),
            id(IdentifierKind::Name, "Zora Kellerman"),
        ];
        let zora = Person::naming_sources("zora-k", &ids);
        // Each names her only unescaped (addresses and names: the matcher
        // reads the text unescaped itself, `lexical::Matcher::find`).
        for text in [
            "https://mail.corp.example/view?owner=zk%40corp.example&t=7",
            "https://mail.corp.example/view?owner=ZK%2540CORP.EXAMPLE",
            "imap://zk%40corp.example@imap.corp.example/INBOX",
            "https://people.corp.example/find?q=zora+kellerman",
            "inbox:zora%2Dk",
            "inbox:zora&#45;k",
            "https://people.corp.example/find?q=zora&#32;kellerman",
            "mailbox:zk&commat;corp.example/7",
        ] {
            assert!(zora.named_in(text), "{text}");
        }
        assert!(!zora.named_as_written("inbox:zora%2Dk"), "her id, escaped");
        for text in ["https://mail.corp.example/view?owner=zkk%40corp.example", "inbox:zora%2Dkay", "100%25 zora", "find?q=zora+kellermann"] {
            assert!(!zora.named_in(text), "{text}");
        }
    }

    #[test]
    fn an_address_is_an_address_under_any_kind_and_wrapping() {
        let erased = id(IdentifierKind::Email, "xavier@ex.com");
        for (kind, value) in [
            (IdentifierKind::Other, "xavier@ex.com"),
            (IdentifierKind::Handle, "Xavier@Ex.com"),
            (IdentifierKind::Email, "mailto:xavier@ex.com"),
            (IdentifierKind::Other, "<XAVIER@ex.com>"),
            (IdentifierKind::Name, " xavier@ex.com "),
            (IdentifierKind::Other, "Xavier Xu <Xavier@ex.com>"),
            (IdentifierKind::Name, "\"Xu, Xavier\" [mailto:xavier@ex.com]"),
        ] {
            assert!(shares_key(&erased, &id(kind, value)), "{kind:?} {value}");
        }
        // A specific local part is the person at any domain, a first name is not.
        assert!(shares_key(&erased, &id(IdentifierKind::Email, "xavier@other.com")));
        let ann = id(IdentifierKind::Email, "ann@ex.com");
        assert!(!shares_key(&ann, &id(IdentifierKind::Email, "ann@other.com")), "a short local part is not specific");
        let jeff = id(IdentifierKind::Email, "jeff.dasovich@enron.com");
        assert!(shares_key(&jeff, &id(IdentifierKind::Email, "jeff.dasovich@gmail.com")));
    }

    #[test]
    fn a_name_in_any_order_with_middle_initials_and_nicknames_is_the_same_name() {
        let erased = id(IdentifierKind::Name, "Xavier Xu");
        for (kind, value) in [
            (IdentifierKind::Name, "Xu, Xavier"),
            (IdentifierKind::Name, "xavier   q. xu"),
            (IdentifierKind::Other, "Dr. Xavier Xu"),
            (IdentifierKind::Handle, "XAVIER XU"),
        ] {
            assert!(shares_key(&erased, &id(kind, value)), "{kind:?} {value}");
        }
        assert!(shares_key(&id(IdentifierKind::Name, "Michael Grigsby"), &id(IdentifierKind::Name, "Mike Grigsby")));
        assert!(!shares_key(&erased, &id(IdentifierKind::Name, "Xavier Yu")));
    }

    #[test]
    fn identifiers_that_would_match_everyone_are_refused() {
        for (kind, value) in [
            (IdentifierKind::Other, "the"),
            (IdentifierKind::Name, "The And"),
            (IdentifierKind::Handle, "@to"),
            (IdentifierKind::Email, "nobody"),
            (IdentifierKind::Email, "ann@localhost"),
            (IdentifierKind::Name, "P Q"),
            (IdentifierKind::Phone, "+1 555"),
            (IdentifierKind::AnonymousId, "42"),
            (IdentifierKind::Other, "Hi all"),
        ] {
            assert!(validate(&id(kind, value)).is_err(), "{kind:?} {value} must be refused");
        }
        for (kind, value) in [
            (IdentifierKind::Email, "mailto:ann@ex.com"),
            (IdentifierKind::Name, "Madonna"),
            (IdentifierKind::Name, "Xu, Xavier"),
            (IdentifierKind::Name, "Al Xu"),
            (IdentifierKind::Handle, "@ann"),
            (IdentifierKind::Phone, "+44 20 7946 0958"),
            (IdentifierKind::AnonymousId, "u-1042"),
        ] {
            assert_eq!(validate(&id(kind, value)), Ok(()), "{kind:?} {value}");
        }
    }

    #[test]
    fn a_phone_is_one_number_in_its_national_and_international_forms() {
        let phone = |v: &str| id(IdentifierKind::Phone, v);
        for (erased, written) in [
            ("+44 20 7946 0958", "020 7946 0958"),
            ("+44 20 7946 0958", "+44 (0)20 7946 0958"),
            ("020 7946 0958", "0044 20 7946 0958"),
            ("+33 1 23 45 67 89", "01 23 45 67 89"),
            ("+39 06 1234 5678", "06 1234 5678"),
            ("+45 12 34 56 78", "12 34 56 78"),
            ("+49 30 901820", "030 901820"),
            ("+1 713 853 6000", "1-713-853-6000"),
            ("+86 138 1234 5678", "138 1234 5678"),
            ("+353 1 234 5678", "01 234 5678"),
            ("+7 495 123 45 67", "8 495 123-45-67"),
            ("+44 113 496 0000", "0113 496 0000"),
        ] {
            assert!(shares_key(&phone(erased), &phone(written)), "{erased} and {written}");
            assert!(shares_key(&phone(written), &phone(erased)), "{written} and {erased}");
        }
        for (a, b) in [("+44 20 7946 0958", "+44 20 7946 0959"), ("+1 713 853 6000", "+1 813 853 6000")] {
            assert!(!shares_key(&phone(a), &phone(b)), "{a} and {b}");
        }
        assert_eq!(subscriber_numbers("+4402079460958"), ["2079460958"]);
        assert!(subscriber_numbers("+35412").is_empty(), "too short to name anyone");
    }

    #[test]
    fn an_idn_domain_is_one_domain_in_unicode_and_ascii() {
        let erased = id(IdentifierKind::Email, "ann.b@bücher.de");
        assert_eq!(canonical(&erased).value, "ann.b@xn--bcher-kva.de");
        for value in ["ann.b@xn--bcher-kva.de", "ANN.B@BÜCHER.DE", "Ann B <ann.b@bücher.de>"] {
            assert!(shares_key(&erased, &id(IdentifierKind::Email, value)), "{value}");
        }
        assert!(!shares_key(&id(IdentifierKind::Email, "ann@bücher.de"), &id(IdentifierKind::Email, "ann@bucher.de")));
        assert_eq!(unicode_domain("xn--bcher-kva.de").as_deref(), Some("bücher.de"));
        assert_eq!(unicode_domain("enron.com"), None);
    }

    #[test]
    fn a_name_with_or_without_its_diacritics_is_the_same_name() {
        let erased = id(IdentifierKind::Name, "José Núñez");
        for value in ["Jose Nunez", "JOSE NUNEZ", "Núñez, José", "Jose\u{301} Nun\u{303}ez"] {
            assert!(shares_key(&erased, &id(IdentifierKind::Name, value)), "{value}");
        }
        assert!(shares_key(&id(IdentifierKind::Name, "Jose Nunez"), &erased), "either way round");
        assert!(shares_key(&id(IdentifierKind::Name, "Jörg Straße"), &id(IdentifierKind::Name, "Jorg Strasse")));
        assert!(shares_key(&id(IdentifierKind::Name, "Lech Wałęsa"), &id(IdentifierKind::Name, "Lech Walesa")));
        assert!(!shares_key(&erased, &id(IdentifierKind::Name, "Jose Nunes")));
        assert_eq!(fold_diacritics("łódź"), "lodz");
        // Another script's vowel signs are no diacritics: Sita is not Sati.
        assert!(!shares_key(&id(IdentifierKind::Name, "सीता शर्मा"), &id(IdentifierKind::Name, "सती शर्मा")));
    }

    #[test]
    fn phones_and_handles_lose_their_punctuation() {
        let phone = id(IdentifierKind::Phone, "+1 (713) 853-6000");
        assert!(shares_key(&phone, &id(IdentifierKind::Other, "713.853.6000")));
        assert!(shares_key(&phone, &id(IdentifierKind::Handle, "+17138536000")));
        assert_eq!(canonical(&id(IdentifierKind::Other, "@ann_b")), id(IdentifierKind::Handle, "ann_b"));
        assert!(shares_key(&id(IdentifierKind::Handle, "@ann_b"), &id(IdentifierKind::Handle, "ANN_B")));
        // An anonymous id is never read as something else.
        assert_eq!(canonical(&id(IdentifierKind::AnonymousId, "7138536000")).kind, IdentifierKind::AnonymousId);
    }
}
