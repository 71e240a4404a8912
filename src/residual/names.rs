//! How people write an identifier: each identifier becomes a set of match
//! forms (a regex, a weight, and a literal that every match contains, for the
//! SQL prefilter). Names give `First Last`, `First M. Last`, `Last, First`,
//! initials and common nicknames; e-mail addresses give the address, the
//! address at another domain, middle-initial variants (Enron wrote a middle
//! initial as `k..allen@…`) and the bare local part.

use crate::domain::{Identifier, IdentifierKind};
use crate::identity;

/// A way of writing an identifier, with how strongly a match of it alone
/// says "this refers to the person".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Form {
    /// The address itself, any case, also inside `<…>` or after `mailto:`.
    Email,
    /// The local part at another domain (`jeff.dasovich@ees.enron.com`).
    EmailOtherDomain,
    /// The address with a middle initial (`jeff.k.dasovich@`, `k..dasovich@`
    /// when the name's middle initial is `K`).
    EmailMiddleInitial,
    /// First initial and surname at the domain (`jdasovich@`).
    EmailInitial,
    /// `x..dasovich@` with an initial the name does not confirm; weak.
    EmailAnyInitial,
    /// The local part on its own (`jeff.dasovich` in a Notes header).
    LocalPart,
    FirstLast,
    FirstMiddleLast,
    LastCommaFirst,
    /// A nickname or full form of the first name (`Mike`/`Michael`).
    NicknameLast,
    /// `J. Dasovich`, `Dasovich, J.`
    InitialLast,
    /// The surname alone, capitalised; weak: only evidence, see `lexical`.
    LastOnly,
    /// A name of one word, a handle, an id or a phone number, as given.
    Literal,
    /// A literal of fewer than seven digits and no letter (an id `1042`):
    /// as often an amount, a year or a version as the person; weak.
    ShortNumber,
}

impl Form {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Email => "email",
            Self::EmailOtherDomain => "email_other_domain",
            Self::EmailMiddleInitial => "email_middle_initial",
            Self::EmailInitial => "email_initial",
            Self::EmailAnyInitial => "email_any_initial",
            Self::LocalPart => "local_part",
            Self::FirstLast => "first_last",
            Self::FirstMiddleLast => "first_middle_last",
            Self::LastCommaFirst => "last_comma_first",
            Self::NicknameLast => "nickname_last",
            Self::InitialLast => "initial_last",
            Self::LastOnly => "last_only",
            Self::Literal => "literal",
            Self::ShortNumber => "short_number",
        }
    }

    /// Strength of a match of this form alone, 0..=1.
    pub fn weight(self) -> f32 {
        match self {
            Self::Email | Self::Literal => 1.0,
            Self::FirstLast | Self::FirstMiddleLast | Self::LastCommaFirst => 0.95,
            Self::EmailOtherDomain => 0.9,
            Self::EmailMiddleInitial | Self::LocalPart | Self::NicknameLast => 0.8,
            Self::InitialLast | Self::EmailInitial => 0.6,
            Self::EmailAnyInitial | Self::ShortNumber => 0.4,
            Self::LastOnly => 0.3,
        }
    }
}

/// One form of one identifier.
#[derive(Debug, Clone)]
pub struct FormSpec {
    /// Index of the identifier in the query.
    pub identifier: usize,
    pub form: Form,
    /// Regex source (without flags; matching is case-insensitive unless the
    /// pattern says `(?-i:…)`).
    pub pattern: String,
    /// Lower-case text that every match contains (the SQL prefilter).
    pub literal: String,
    /// Matches must not touch an e-mail-ish character on either side
    /// (`[\w.+-]` before, `[\w-]` or `.x` after): addresses and local parts.
    pub email_boundary: bool,
    /// Matches must not touch a word character on either side, whatever
    /// their own first and last characters are (`\b` cannot bound `@ann`
    /// or `+44…`): literals and handles.
    pub word_edges: bool,
    /// Lower-case words of which every match contains each one whole
    /// (bounded by non-alphanumeric characters): what the residual index
    /// finds the form's matches by. `None` when no word is certain (a phone
    /// number's digits may be split anywhere).
    pub index_words: Option<Vec<String>>,
}

/// A person's name split into parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameParts {
    pub first: String,
    pub middle: Vec<String>,
    pub last: String,
}

const HONORIFICS: &[&str] = &["mr", "mrs", "ms", "miss", "mx", "dr", "prof", "rev", "sir", "dame", "fr", "hon", "capt", "col"];
const SUFFIXES: &[&str] =
    &["jr", "sr", "ii", "iii", "iv", "phd", "md", "esq", "cpa", "mba", "cfa", "rn", "dds", "llm", "obe", "mbe", "cbe", "qc", "kc"];
const PARTICLES: &[&str] = &["van", "von", "de", "der", "den", "da", "di", "du", "del", "della", "la", "le", "st"];

/// Parses `First [Middle…] Last` or `Last, First [Middle…]`; honorifics and
/// suffixes are dropped, particles (`van`, `de`, …) stay with the surname.
/// `None` for a single word.
pub fn parse_name(value: &str) -> Option<NameParts> {
    let clean = |w: &str| w.trim_matches(|c: char| c == '.' || c == ',' || c == '"' || c == '\'').to_owned();
    let (head, tail) = match value.split_once(',') {
        Some((last, rest)) if !SUFFIXES.contains(&clean(rest.trim()).to_lowercase().as_str()) => (rest, Some(last)),
        _ => (value, None),
    };
    let mut words: Vec<String> = head
        .split_whitespace()
        .map(clean)
        .filter(|w| !w.is_empty() && !SUFFIXES.contains(&w.to_lowercase().as_str()))
        .collect();
    if words.first().is_some_and(|w| HONORIFICS.contains(&w.to_lowercase().as_str())) {
        words.remove(0);
    }
    let last = match tail {
        Some(t) => t.split_whitespace().map(clean).collect::<Vec<_>>().join(" "),
        None => {
            let mut i = words.len().checked_sub(1)?;
            while i > 1 && PARTICLES.contains(&words[i - 1].to_lowercase().as_str()) {
                i -= 1;
            }
            words.split_off(i).join(" ")
        }
    };
    let mut words = words.into_iter();
    let first = words.next()?;
    (!last.is_empty()).then(|| NameParts { first, middle: words.collect(), last })
}

/// Whitespace between words of a name: any run of spaces or line breaks.
const SP: &str = r"\s+";

fn word(w: &str) -> String {
    regex::escape(w).replace(r"\ ", SP)
}

/// The forms of every identifier. Middle initials known from names also
/// give the addresses' middle-initial variants.
pub fn all_forms(identifiers: &[Identifier]) -> Vec<FormSpec> {
    let initials: Vec<char> = identifiers
        .iter()
        .map(identity::canonical)
        .filter(|id| id.kind == IdentifierKind::Name)
        .filter_map(|id| parse_name(&id.value))
        .filter_map(|n| n.middle.first().and_then(|m| m.chars().next()))
        .flat_map(char::to_lowercase)
        .collect();
    identifiers.iter().enumerate().flat_map(|(i, id)| forms(i, id, &initials)).collect()
}

/// The forms of one identifier.
/// The identifier is read as [`identity::canonical`] reads it (the same
/// reading suppression hashes), so its kind is the kind its value has.
fn forms(index: usize, id: &Identifier, initials: &[char]) -> Vec<FormSpec> {
    let id = identity::canonical(id);
    let value = id.value;
    match id.kind {
        IdentifierKind::Email => email_forms(index, &value.to_lowercase(), initials),
        IdentifierKind::Name => match parse_name(&value) {
            Some(parts) => name_forms(index, &parts),
            None => vec![literal(index, &value)],
        },
        IdentifierKind::Phone => phone_forms(index, &value),
        IdentifierKind::Handle => handle_forms(index, &value),
        IdentifierKind::AnonymousId | IdentifierKind::Other => vec![literal(index, &value)],
    }
}

fn spec(identifier: usize, form: Form, pattern: String, literal: &str, email_boundary: bool) -> FormSpec {
    FormSpec {
        identifier,
        form,
        pattern,
        literal: literal.to_lowercase(),
        email_boundary,
        word_edges: false,
        index_words: words_of(literal),
    }
}

/// The alphanumeric words of a literal, lower case. Every form's literal is
/// bounded in its matches by a non-word character or by the pattern's own
/// punctuation, so each of its words is a whole word of the matched text.
fn words_of(literal: &str) -> Option<Vec<String>> {
    let words: Vec<String> =
        literal.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect();
    (!words.is_empty()).then_some(words)
}

/// The value as written, not touching a word character on either side.
fn literal(index: usize, value: &str) -> FormSpec {
    let form = if !value.starts_with('@') && short_number(value) { Form::ShortNumber } else { Form::Literal };
    FormSpec { word_edges: true, ..spec(index, form, word(value), value, false) }
}

/// Digits only (whatever separates them), fewer than seven.
fn short_number(value: &str) -> bool {
    let alnum: Vec<char> = value.chars().filter(|c| c.is_alphanumeric()).collect();
    !alnum.is_empty() && alnum.len() < 7 && alnum.iter().all(char::is_ascii_digit)
}

/// A token specific enough to be matched on its own, without `@` (a local
/// part, a handle): specific as an address's local part is, and with a
/// word of three characters or more holding a letter, so that `2020`,
/// `1.2` or `j.d` (a year, a version, initials) are not taken for a person.
fn bare_specific(token: &str) -> bool {
    identity::specific_local_part(token)
        && token
            .split(|c: char| !c.is_alphanumeric())
            .any(|w| w.chars().count() >= 3 && w.chars().any(char::is_alphabetic))
}

/// `@handle`; the bare handle too when it is specific enough to name one
/// person (`ann_b42`, not `ann`), bounded like a local part so that it does
/// not match inside an address or a domain (`x@ann_b.example`).
fn handle_forms(index: usize, handle: &str) -> Vec<FormSpec> {
    let mut out = vec![literal(index, &format!("@{handle}"))];
    if bare_specific(handle) {
        out.push(spec(index, Form::Literal, regex::escape(handle), handle, true));
    }
    out
}

fn name_forms(i: usize, n: &NameParts) -> Vec<FormSpec> {
    let (f, l) = (word(&n.first), word(&n.last));
    let initial = n.first.chars().next().map(|c| regex::escape(&c.to_string())).unwrap_or_default();
    // Any middle initial; with a known middle name or initial, also the
    // middle names as given and words that start with that initial.
    let given_middle = n.middle.iter().map(|m| word(m)).collect::<Vec<_>>().join(SP);
    let middle = match n.middle.first().and_then(|m| m.chars().next()) {
        Some(c) => format!(r"(?:[a-z]\.?|{given_middle}|{}[a-z]+)", regex::escape(&c.to_string())),
        None => r"[a-z]\.?".to_owned(),
    };
    let mut out = vec![
        spec(i, Form::FirstLast, format!(r"\b{f}{SP}{l}\b"), &n.last, false),
        spec(i, Form::FirstMiddleLast, format!(r"\b{f}{SP}{middle}{SP}{l}\b"), &n.last, false),
        // `Last, First` and `Last, First M.` (the initial is taken with it, for redaction).
        spec(i, Form::LastCommaFirst, format!(r"\b{l},\s*{f}\b(?:{SP}[a-z]\.|{SP}[a-z]\b)?"), &n.last, false),
        spec(
            i,
            Form::InitialLast,
            format!(r"\b{initial}\.\s*(?:[a-z]\.\s*)?{l}\b|\b{l},\s*{initial}\.(?:\s*[a-z]\.)?"),
            &n.last,
            false,
        ),
        spec(i, Form::LastOnly, format!(r"(?-i:\b{}\b)", title_case_pattern(&n.last)), &n.last, false),
    ];
    let nicks = super::nicknames::alternatives(&n.first);
    if !nicks.is_empty() {
        let alt = nicks.iter().map(|w| word(w)).collect::<Vec<_>>().join("|");
        out.push(spec(
            i,
            Form::NicknameLast,
            format!(r"\b(?:{alt}){SP}(?:[a-z]\.?{SP})?{l}\b|\b{l},\s*(?:{alt})\b"),
            &n.last,
            false,
        ));
    }
    out
}

/// The surname as written in running text: `Dasovich`, `DASOVICH`, or as
/// given when it has capitals (`McDonald`), never all lower case (`cook`,
/// `blair` are usually common words there).
fn title_case_pattern(last: &str) -> String {
    let mut chars = last.chars();
    let title = chars.next().map(|c| format!("{}{}", c.to_uppercase(), chars.as_str().to_lowercase()));
    let mut variants: Vec<String> = title.into_iter().chain([last.to_uppercase()]).collect();
    if last.chars().any(char::is_uppercase) {
        variants.push(last.to_owned());
    }
    variants.sort_unstable();
    variants.dedup();
    format!("(?:{})", variants.iter().map(|v| word(v)).collect::<Vec<_>>().join("|"))
}

fn email_forms(i: usize, address: &str, initials: &[char]) -> Vec<FormSpec> {
    let Some((local, domain)) = address.rsplit_once('@') else { return vec![literal(i, address)] };
    // An IDN domain as mail sends it (`xn--…`) or as a text may write it.
    let unicode = identity::unicode_domain(domain);
    let l = regex::escape(local);
    let d = match &unicode {
        Some(u) => format!("(?:{}|{})", regex::escape(domain), regex::escape(u)),
        None => regex::escape(domain),
    };
    let mut out = vec![spec(i, Form::Email, format!("{l}@{d}"), local, true)];
    // A local part like `jeff` names nobody in particular; `jeff.dasovich` or `pallen` does.
    if identity::specific_local_part(local) {
        out.push(spec(i, Form::EmailOtherDomain, format!(r"{l}@[a-z0-9.-]+\.[a-z]{{2,}}"), local, true));
        if bare_specific(local) {
            out.push(spec(i, Form::LocalPart, l.clone(), local, true));
        }
    }
    // first.last → first.m.last, m..last (Enron's way of writing a middle
    // initial, strong when the name has that initial) and flast (first initial).
    let parts: Vec<&str> = local.split('.').collect();
    if let [first, last] = parts.as_slice()
        && first.len() > 1
        && last.len() > 1
    {
        let (f, la) = (regex::escape(first), regex::escape(last));
        let fi = regex::escape(&first[..first.chars().next().map_or(1, char::len_utf8)]);
        // Every word of such an address is a whole word of the text (the
        // match is bounded as an address is): the index is asked for the
        // words the form is sure of, not for the surname alone, which may be
        // any word (`funnymoney.10@reply.pm0.net`: `10` proposed 14,735 of
        // 100,000 chunks, 0.4 s of reading to find nothing). Where the
        // initial is any letter, that is the surname and the domain.
        let with_domain = |w: &str| words_of(&if unicode.is_some() { w.to_owned() } else { format!("{w} {domain}") });
        out.push(FormSpec {
            index_words: words_of(&format!("{first} {last}")),
            ..spec(i, Form::EmailMiddleInitial, format!(r"{f}\.[a-z]\.{la}@{d}"), last, true)
        });
        for m in initials {
            let m = regex::escape(&m.to_string());
            out.push(FormSpec {
                index_words: with_domain(last),
                ..spec(i, Form::EmailMiddleInitial, format!(r"{m}\.\.{la}@{d}"), last, true)
            });
        }
        // The literal (the surname) is not a whole word here: `jdasovich` is.
        let initial_last = format!("{}{last}", &first[..first.chars().next().map_or(1, char::len_utf8)]);
        out.push(FormSpec {
            index_words: words_of(&initial_last),
            ..spec(i, Form::EmailInitial, format!(r"{fi}{la}@{d}"), last, true)
        });
        out.push(FormSpec {
            index_words: with_domain(last),
            ..spec(i, Form::EmailAnyInitial, format!(r"[a-z]\.\.{la}@{d}"), last, true)
        });
    }
    out
}

fn phone_forms(i: usize, digits: &str) -> Vec<FormSpec> {
    // The subscriber's number (after the country code or the trunk prefix,
    // as suppression keys it) with any separators, whatever comes before
    // it: `+44 20 7946 0958`, `+44 (0)20 7946 0958` and `020 7946 0958`
    // are one number. Without one, the national number as before.
    let subscriber = identity::subscriber_numbers(digits).into_iter().min_by_key(String::len);
    let national = subscriber.unwrap_or_else(|| identity::national_number(digits));
    let national = national.as_str();
    if national.len() < 7 {
        return vec![literal(i, digits)];
    }
    let body = national.chars().map(|c| c.to_string()).collect::<Vec<_>>().join(r"[\s().-]*");
    let tail = &national[national.len() - 4..];
    // What is written before it belongs to the match (a redaction takes
    // it too): a country code after `+`, `00` or `011`, a trunk `0` or `(0)`.
    let prefix = r"(?:(?:\+|\b00|\b011)[\s.-]*\d{1,3}[\s().-]*)?(?:\(0\)[\s.-]*|0[\s().-]*)*";
    // Separators may split the digits anywhere: no word is certain.
    vec![FormSpec { index_words: None, ..spec(i, Form::Literal, format!(r"{prefix}\(?{body}\b"), tail, false) }]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(first: &str, middle: &[&str], last: &str) -> Option<NameParts> {
        Some(NameParts {
            first: first.into(),
            middle: middle.iter().map(|m| (*m).to_owned()).collect(),
            last: last.into(),
        })
    }

    #[test]
    fn names_parse_in_either_order_without_titles() {
        assert_eq!(parse_name("Jeff Dasovich"), parts("Jeff", &[], "Dasovich"));
        assert_eq!(parse_name("Phillip K. Allen"), parts("Phillip", &["K"], "Allen"));
        assert_eq!(parse_name("Allen, Phillip K."), parts("Phillip", &["K"], "Allen"));
        assert_eq!(parse_name("Dr. Ludwig van Beethoven Jr."), parts("Ludwig", &[], "van Beethoven"));
        assert_eq!(parse_name("Madonna"), None);
    }

    #[test]
    fn a_lone_surname_is_matched_capitalised_only() {
        let re = |last: &str| regex::Regex::new(&title_case_pattern(last)).unwrap();
        assert!(re("DASOVICH").is_match("Dasovich") && re("dasovich").is_match("DASOVICH"));
        assert!(!re("cook").is_match("cook") && re("cook").is_match("Cook"));
        assert!(re("McDonald").is_match("McDonald") && re("McDonald").is_match("Mcdonald"));
    }

    #[test]
    fn every_form_carries_its_prefilter_literal() {
        let ids = [
            Identifier { kind: IdentifierKind::Email, value: "Mike.Grigsby@Enron.com".into() },
            Identifier { kind: IdentifierKind::Name, value: "Mike Grigsby".into() },
            Identifier { kind: IdentifierKind::Phone, value: "+1 (713) 853-6000".into() },
        ];
        let all = all_forms(&ids);
        for f in &all {
            assert!(["mike.grigsby", "grigsby", "6000"].contains(&f.literal.as_str()), "{f:?}");
        }
        assert!(all.iter().any(|f| f.form == Form::NicknameLast && f.pattern.contains("michael")));
        // A bare first name as local part is not specific enough to match alone.
        let jeff = all_forms(&[Identifier { kind: IdentifierKind::Email, value: "jeff@example.com".into() }]);
        assert!(jeff.iter().all(|f| f.form == Form::Email));
    }
}
