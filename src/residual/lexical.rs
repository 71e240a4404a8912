//! Lexical residual search: the subject's identifiers, in every form people
//! write them (see `names`), matched in chunk text with evidence (identifier,
//! form, matched text, position), and redaction of those matches.
//!
//! Every match contains one of a few literals (surnames, local parts), which
//! the scan (`scan`) uses as a cheap necessary condition before the regexes.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use regex_automata::meta::{self, Regex};
use regex_automata::util::syntax;
use uuid::Uuid;

use super::names::{self, Form, FormSpec};
use crate::domain::Identifier;
use crate::identity;

/// A chunk whose text names the person.
#[derive(Debug, Clone)]
pub struct Hit {
    pub collection_id: Uuid,
    pub point_id: Uuid,
    pub source_id: String,
    pub score: f32,
    pub matches: Vec<Match>,
}

/// Escapes `%`, `_` and `\` for a literal inside `ILIKE`.
pub(super) fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// One occurrence of an identifier in a text.
#[derive(Debug, Clone, PartialEq)]
pub struct Match {
    /// Index of the identifier in the query.
    pub identifier: usize,
    pub form: Form,
    /// Byte range in the text.
    pub start: usize,
    pub end: usize,
    pub text: String,
}

/// The forms of a set of identifiers, each compiled when first needed.
///
/// Compiling is what a search spent most of its own time on (a third of the
/// service's CPU with the residual stage on: dozens of case-insensitive
/// patterns per person, whose literal prefilters expand every letter's
/// case), and most forms (initials, nicknames, other name orders) never
/// meet a text that holds their literal. A form is compiled when a text
/// holds it; `redact` compiles every form.
#[derive(Debug, Clone)]
pub struct Matcher {
    forms: Vec<(FormSpec, Lazy)>,
    /// Lower-case literals of which every match contains one.
    literals: Vec<String>,
    /// First names (with nicknames) per identifier, to corroborate a lone
    /// surname: their lower-case alternatives, and the pattern of them all.
    first_names: Vec<(usize, Vec<String>, Lazy)>,
    /// What corroborates a lone surname, per identifier: the first name or
    /// a nickname that is not a common word, capitalised, as a name is
    /// written (`Will Hill` is William Hill; "will" and "don't" are not).
    corroborators: Vec<(usize, Lazy)>,
}

/// A case-insensitive pattern, compiled on first use (None: it does not
/// compile, which cannot happen for escaped input).
#[derive(Debug, Clone)]
struct Lazy {
    pattern: String,
    case_insensitive: bool,
    re: OnceLock<Option<Regex>>,
}

impl Lazy {
    fn new(pattern: String) -> Self {
        Self { pattern, case_insensitive: true, re: OnceLock::new() }
    }

    /// A pattern matched as written (case included).
    fn exact(pattern: String) -> Self {
        Self { pattern, case_insensitive: false, re: OnceLock::new() }
    }

    /// `regex`'s engine without its full DFA, which for these small
    /// patterns costs more to build than it saves: 12 forms of a person took
    /// 5.7 ms to compile, 3.6 without it, and search the same (the literal
    /// prefilters stay: without them a 30 KB text took 9× as long).
    fn get(&self) -> Option<&Regex> {
        self.re
            .get_or_init(|| {
                meta::Builder::new()
                    .configure(meta::Config::new().dfa(false).nfa_size_limit(Some(1 << 24)))
                    .syntax(syntax::Config::new().case_insensitive(self.case_insensitive))
                    .build(&self.pattern)
                    .ok()
            })
            .as_ref()
    }

    /// `text` with every match replaced by `with`.
    fn replace_all(&self, text: &str, with: &str) -> String {
        let Some(re) = self.get() else { return text.to_owned() };
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for m in re.find_iter(text) {
            out.push_str(&text[at..m.start()]);
            out.push_str(with);
            at = m.end();
        }
        out.push_str(&text[at..]);
        out
    }
}

/// Lexical score at or above which a chunk is a candidate on its own.
pub const MIN_SCORE: f32 = 0.5;

/// Matches a hit keeps (the strongest, then the first): its evidence. A
/// chunk of 32 KiB can hold thousands of occurrences of a common name; the
/// score is taken over all of them, and the rest are not kept.
pub const MAX_MATCHES: usize = 8;

/// Score of a lone surname when a first name of the same person is near it.
const SURNAME_WITH_FIRST_NAME: f32 = 0.55;

/// How near (bytes either side of the surname) a first name corroborates it.
const NEAR: usize = 48;

/// Lone surnames of one identifier looked at for a first name near them,
/// at most: a chunk can hold thousands.
const MAX_NEAR_CHECKS: usize = 64;

/// Nicknames that are common words: they corroborate nothing.
const COMMON_WORD_NICKNAMES: &[&str] = &[
    "al", "art", "bill", "bob", "chuck", "dick", "don", "frank", "grant", "jack", "jay", "mark", "max", "pat", "ray",
    "rich", "rob", "sue", "will", "woody",
];

impl Matcher {
    /// The forms of every identifier (compiled when first needed).
    pub fn new(identifiers: &[Identifier]) -> Self {
        let forms: Vec<(FormSpec, Lazy)> = names::all_forms(identifiers)
            .into_iter()
            .map(|s| {
                let re = Lazy::new(s.pattern.clone());
                (s, re)
            })
            .collect();
        // Per name identifier: its first name with nicknames (any case, for
        // stripping) and what corroborates its lone surname.
        let (first_names, corroborators): (Vec<_>, Vec<_>) = identifiers
            .iter()
            .enumerate()
            .filter(|(_, id)| id.kind == crate::domain::IdentifierKind::Name)
            .filter_map(|(i, id)| {
                let parts = names::parse_name(&id.value)?;
                let nicknames = super::nicknames::alternatives(&parts.first);
                let alts: Vec<&str> = nicknames.iter().copied().chain([parts.first.as_str()]).collect();
                let alt = alts.iter().map(|a| regex::escape(a)).collect::<Vec<_>>().join("|");
                let lower = alts.iter().map(|a| a.to_lowercase()).collect();
                let as_names: Vec<String> = nicknames
                    .iter()
                    .filter(|n| !COMMON_WORD_NICKNAMES.contains(n))
                    .map(|n| (*n).to_owned())
                    .chain([parts.first.to_lowercase()])
                    .flat_map(|n| [capitalised(&n), n.to_uppercase()])
                    .map(|n| regex::escape(&n))
                    .collect();
                let first = (i, lower, Lazy::new(format!(r"\b(?:{alt})\b")));
                Some((first, (i, Lazy::exact(format!(r"\b(?:{})\b", as_names.join("|"))))))
            })
            .unzip();
        let mut literals: Vec<String> =
            forms.iter().map(|(s, _)| s.literal.clone()).filter(|l| !l.is_empty()).collect();
        literals.sort_unstable();
        literals.dedup();
        Self { forms, literals, first_names, corroborators }
    }

    pub fn is_empty(&self) -> bool {
        self.forms.is_empty()
    }

    /// Lower-case literals of which every match contains one (for `ILIKE`).
    pub fn literals(&self) -> &[String] {
        &self.literals
    }

    /// What the residual index finds matches by: per form, the words every
    /// match of it contains whole (a chunk is proposed when it holds all the
    /// words of one form), and the literals of forms no word can find (the
    /// `ILIKE` fallback). A form's words that hold another form's words are
    /// left out: every chunk they propose, the other proposes too.
    ///
    /// All the words, not the longest one: `jennifer.kinwton@` was proposed
    /// by `jennifer` alone, every chunk with that first name (55,000 of 2M,
    /// 1.8 s); now by both words together, a group its middle-initial forms'
    /// `kinwton` holds, so by `kinwton`: a few dozen chunks.
    pub fn index_words(&self) -> (Vec<Vec<String>>, Vec<String>) {
        let mut groups: Vec<Vec<String>> = Vec::new();
        let mut unindexed: Vec<String> = Vec::new();
        for (spec, _) in &self.forms {
            match &spec.index_words {
                Some(words) => {
                    let mut words = words.clone();
                    words.sort_unstable();
                    words.dedup();
                    groups.push(words);
                }
                None if !spec.literal.is_empty() => unindexed.push(spec.literal.clone()),
                None => {}
            }
        }
        groups.sort_unstable();
        groups.dedup();
        let holds = |big: &[String], small: &[String]| small.iter().all(|w| big.binary_search(w).is_ok());
        let minimal: Vec<Vec<String>> = groups
            .iter()
            .filter(|g| !groups.iter().any(|other| other != *g && holds(g, other)))
            .cloned()
            .collect();
        unindexed.sort_unstable();
        unindexed.dedup();
        (minimal, unindexed)
    }

    /// The cheap necessary condition, on lower-cased text (as written, or
    /// unescaped: [`Self::find`]).
    pub fn may_match(&self, lower: &str) -> bool {
        let holds = |t: &str| self.literals.iter().any(|l| t.contains(l.as_str()));
        // `+` read as a space only changes what a literal with a space
        // finds, and an address spelled out keeps its words: a text is
        // read otherwise only when it has escapes (`%`, JSON's `\u`),
        // character references or soft line breaks (quoted-printable).
        let decoded_may_hold = lower.contains(['%', '&'])
            || lower.contains("\\u")
            || lower.contains("=\n")
            || lower.contains("=\r\n")
            || lower.contains('+') && self.literals.iter().any(|l| l.contains(' '));
        holds(lower) || decoded_may_hold && identity::text_readings(lower).iter().any(|r| holds(&r.text.to_lowercase()))
    }

    /// Every occurrence, overlapping ones of the same identifier reduced to
    /// the strongest (and then longest) form, in text order.
    pub fn find(&self, text: &str) -> Vec<Match> {
        self.find_in(text, Some(&text.to_lowercase()))
    }

    /// [`Self::find`]; with `lower` (the text lower-cased), only the forms
    /// whose literal it holds are tried (and compiled): no other can match.
    ///
    /// The text is read as written, unescaped and with an address written
    /// out read as one ([`identity::text_readings`]): a link's
    /// `?email=zk%40corp.example`, `?q=Zora+Kellerman` or a page's `zk [at]
    /// corp [dot] example` names the person as plainly as the address or the
    /// name, and a reading's match is the range of the text it was read from
    /// (what `redact` replaces).
    fn find_in(&self, text: &str, lower: Option<&str>) -> Vec<Match> {
        let mut all = self.find_as_written(text, lower);
        for r in identity::text_readings(text) {
            let lower = lower.map(|_| r.text.to_lowercase());
            for m in self.find_as_written(&r.text, lower.as_deref()) {
                let (start, end) = r.origin(m.start, m.end);
                // Never empty (a piece reads as one character, so a match
                // covers at least one piece): kept matches are not.
                if start < end {
                    all.push(Match { start, end, text: text[start..end].to_owned(), ..m });
                }
            }
        }
        all.sort_by(|a, b| b.form.weight().total_cmp(&a.form.weight()).then((b.end - b.start).cmp(&(a.end - a.start))));
        // Kept matches are disjoint (and never empty), by start: a match
        // overlaps one of them exactly when it overlaps the last one that
        // starts before its end. One lookup, not a pass over all kept ones: a
        // text of thousands of matches was quadratic.
        let mut kept: BTreeMap<usize, Match> = BTreeMap::new();
        for m in all {
            let overlaps = kept.range(..m.end).next_back().is_some_and(|(_, k)| m.start < k.end);
            if !overlaps && !kept.contains_key(&m.start) {
                kept.insert(m.start, m);
            }
        }
        kept.into_values().collect()
    }

    /// Every occurrence in the text as written, overlapping ones included.
    fn find_as_written(&self, text: &str, lower: Option<&str>) -> Vec<Match> {
        let mut all: Vec<Match> = Vec::new();
        for (spec, re) in &self.forms {
            if lower.is_some_and(|l| !spec.literal.is_empty() && !l.contains(spec.literal.as_str())) {
                continue;
            }
            let Some(re) = re.get() else { continue };
            for m in re.find_iter(text) {
                if spec.email_boundary && !email_boundary(text, m.start(), m.end()) {
                    continue;
                }
                if spec.word_edges && !word_edges(text, m.start(), m.end()) {
                    continue;
                }
                all.push(Match {
                    identifier: spec.identifier,
                    form: spec.form,
                    start: m.start(),
                    end: m.end(),
                    text: text[m.range()].to_owned(),
                });
            }
        }
        all
    }

    /// The chunk as a hit, when any form matches, with its `MAX_MATCHES`
    /// strongest matches; `lower` is the text lower-cased.
    pub fn hit(&self, collection_id: Uuid, point_id: Uuid, source_id: &str, text: &str, lower: &str) -> Option<Hit> {
        let mut matches = self.find_in(text, Some(lower));
        if matches.is_empty() {
            return None;
        }
        let score = self.score(text, &matches);
        matches.sort_by(|a, c| c.form.weight().total_cmp(&a.form.weight()).then(a.start.cmp(&c.start)));
        matches.truncate(MAX_MATCHES);
        Some(Hit { collection_id, point_id, source_id: source_id.to_owned(), score, matches })
    }

    /// A chunk's lexical score: the strongest match, a lone surname raised
    /// when the person's first name (or a nickname) is written near it, as a
    /// name: capitalised, within [`NEAR`] bytes.
    pub fn score(&self, text: &str, matches: &[Match]) -> f32 {
        // Looked for near the first lone surnames of each identifier only
        // (a chunk can hold thousands of them).
        let mut checked: HashMap<usize, usize> = HashMap::new();
        matches
            .iter()
            .map(|m| {
                let w = m.form.weight();
                if m.form != Form::LastOnly {
                    return w;
                }
                let tried = checked.entry(m.identifier).or_insert(0);
                if *tried >= MAX_NEAR_CHECKS {
                    return w;
                }
                *tried += 1;
                let window = around(text, m.start, m.end, NEAR);
                let corroborated =
                    self.corroborators.iter().any(|(i, re)| *i == m.identifier && re.get().is_some_and(|re| re.is_match(window)));
                if corroborated { w.max(SURNAME_WITH_FIRST_NAME) } else { w }
            })
            .fold(0.0, f32::max)
    }

    /// Replaces every match with `[redacted]`, until none is left (so that
    /// redacting a redacted text changes nothing).
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for _ in 0..4 {
            let matches = self.find_in(&out, None);
            if matches.is_empty() {
                break;
            }
            out = replace(&out, &matches, REDACTED);
        }
        out
    }

    /// The text with every match and every first name (or nickname) left
    /// out: how a pipeline strips a person from an excerpt of their words.
    pub fn strip(&self, text: &str) -> String {
        let lower = text.to_lowercase();
        let mut out = replace(text, &self.find_in(text, Some(&lower)), " ");
        // Leaving matches out only puts spaces in: a name the text did not
        // hold, it does not hold after.
        for (_, alts, re) in &self.first_names {
            if alts.iter().any(|a| lower.contains(a.as_str())) {
                out = re.replace_all(&out, " ");
            }
        }
        out
    }
}

/// `word` with its first letter in capitals.
fn capitalised(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The slice of `text` from `near` bytes before `start` to `near` after
/// `end`, on character boundaries.
fn around(text: &str, start: usize, end: usize, near: usize) -> &str {
    let mut from = start.saturating_sub(near);
    while !text.is_char_boundary(from) {
        from -= 1;
    }
    let mut to = end.saturating_add(near).min(text.len());
    while !text.is_char_boundary(to) {
        to += 1;
    }
    &text[from..to]
}

/// `text` with each (ordered, disjoint) match replaced by `with`.
fn replace(text: &str, matches: &[Match], with: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for m in matches {
        out.push_str(&text[at..m.start]);
        out.push_str(with);
        at = m.end;
    }
    out.push_str(&text[at..]);
    out
}

/// What a redacted identifier becomes.
pub const REDACTED: &str = "[redacted]";

/// A literal must not be part of a longer word: no word character just
/// before or after it (what `\b` says for a literal that starts and ends
/// with word characters, also for `@ann` and `+44 20 …`).
fn word_edges(text: &str, start: usize, end: usize) -> bool {
    let word = |c: char| c.is_alphanumeric() || c == '_';
    text[..start].chars().next_back().is_none_or(|c| !word(c)) && text[end..].chars().next().is_none_or(|c| !word(c))
}

/// An address or local part must not be part of a longer one: no address
/// character before it, and no word character, `-`, or `.` + word character after.
fn email_boundary(text: &str, start: usize, end: usize) -> bool {
    let is_addr = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-');
    let before_ok = text[..start].chars().next_back().is_none_or(|c| !is_addr(c));
    let mut after = text[end..].chars();
    let after_ok = match after.next() {
        None => true,
        Some(c) if c.is_alphanumeric() || c == '_' || c == '-' => false,
        Some('.') => after.next().is_none_or(|c| !c.is_alphanumeric()),
        Some(_) => true,
    };
    before_ok && after_ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::IdentifierKind;

    fn person(email: &str, name: &str) -> Matcher {
        Matcher::new(&[
            Identifier { kind: IdentifierKind::Email, value: email.into() },
            Identifier { kind: IdentifierKind::Name, value: name.into() },
        ])
    }

    fn forms(m: &Matcher, text: &str) -> Vec<&'static str> {
        m.find(text).iter().map(|x| x.form.as_str()).collect()
    }

    #[test]
    fn addresses_match_in_any_case_inside_brackets_and_mailto() {
        let m = person("jeff.dasovich@enron.com", "Jeff Dasovich");
        assert_eq!(forms(&m, "To: JEFF.DASOVICH@ENRON.COM"), ["email"]);
        assert_eq!(forms(&m, "Jeff <jeff.dasovich@enron.com>"), ["email"]);
        assert_eq!(forms(&m, "[mailto:Jeff.Dasovich@ENRON.com]"), ["email"]);
        assert_eq!(forms(&m, "write to jeff.dasovich@enron.com."), ["email"]);
        assert_eq!(forms(&m, "jeff.dasovich@ees.enron.com"), ["email_other_domain"]);
        assert_eq!(forms(&m, "Jeff Dasovich/NA/Enron@ENRON"), ["first_last"]);
        assert_eq!(forms(&m, "cc: jeff.dasovich"), ["local_part"]);
        // Longer addresses that contain the address are someone else's.
        assert!(m.find("xjeff.dasovich@enron.com").is_empty());
        assert!(m.find("jeff.dasovich.old@enron.com").is_empty());
        assert!(person("mary.cook@enron.com", "Mary Cook").find("rosemary.cook@enron.com").is_empty());
        assert!(person("mary.cook@enron.com", "Mary Cook").find("audrey.cook@enron.com").is_empty());
    }

    #[test]
    fn names_match_in_the_forms_people_write() {
        let m = person("jeff.dasovich@enron.com", "Jeff Dasovich");
        assert_eq!(forms(&m, "talked to jeff dasovich"), ["first_last"]);
        assert_eq!(forms(&m, "Jeff\n Dasovich said"), ["first_last"]);
        assert_eq!(forms(&m, "Jeff J. Dasovich"), ["first_middle_last"]);
        assert_eq!(forms(&m, "Jeff J Dasovich"), ["first_middle_last"]);
        assert_eq!(forms(&m, "From: Dasovich, Jeff [mailto:x@y.com]"), ["last_comma_first"]);
        assert_eq!(forms(&m, "To: Mara, Sue; Dasovich, Jeff J.; Kean, Steve"), ["last_comma_first"]);
        assert_eq!(m.find("Dasovich, Jeff J.; Kean")[0].text, "Dasovich, Jeff J.");
        assert_eq!(forms(&m, "\"Dasovich, Jeff\" <jeff.dasovich@enron.com>"), ["last_comma_first", "email"]);
        assert_eq!(forms(&m, "Jeffrey Dasovich"), ["nickname_last"]);
        assert_eq!(forms(&m, "J. Dasovich"), ["initial_last"]);
        // Enron's middle initial: k..allen@ for Phillip K. Allen.
        let p = person("phillip.allen@enron.com", "Phillip K. Allen");
        assert_eq!(forms(&p, "k..allen@enron.com"), ["email_middle_initial"]);
        assert_eq!(forms(&p, "pallen@enron.com"), ["email_initial"]);
        assert_eq!(forms(&p, "Allen, Phillip K."), ["last_comma_first"]);
        assert_eq!(forms(&p, "Phillip Keith Allen"), ["first_middle_last"]);
    }

    #[test]
    fn near_misses_do_not_match_or_only_weakly() {
        let m = person("jeff.dasovich@enron.com", "Jeff Dasovich");
        assert!(m.find("Jeff Smith and the Dasovichs").is_empty());
        let cook = person("mary.cook@enron.com", "Mary Cook");
        assert!(cook.find("cooking class; cook the books").is_empty());
        // A namesake with another first name, or the surname alone: weak, not a candidate.
        let peter = cook.find("Peter Cook, EnergyNews");
        assert_eq!(peter.iter().map(|x| x.form).collect::<Vec<_>>(), [Form::LastOnly]);
        assert!(cook.score("Peter Cook, EnergyNews", &peter) < MIN_SCORE);
        let blair = person("lynn.blair@enron.com", "Lynn Blair");
        assert!(blair.find("jean.blair@enron.com").is_empty());
        let other = blair.find("Cc: Lichtenwalter, Blair");
        assert!(blair.score("Cc: Lichtenwalter, Blair", &other) < MIN_SCORE);
        // A lone surname with the first name nearby is corroborated.
        let text = "Blair will call. Thanks, Lynn";
        assert!(blair.score(text, &blair.find(text)) >= MIN_SCORE);
    }

    #[test]
    fn a_lone_surname_is_corroborated_by_a_first_name_written_as_a_name_near_it() {
        let hill = person("william.hill@ex.com", "William Hill");
        let score = |text: &str| hill.score(text, &hill.find(text));
        assert!(score("Will Hill called about the bid") >= MIN_SCORE, "a nickname, capitalised");
        assert!(score("WILLIAM: HILL TO CALL") >= MIN_SCORE, "in capitals");
        // "will" is a nickname of William, and a verb; "don't" holds Don.
        assert!(score("I will ask Hill about it") < MIN_SCORE, "the verb");
        assert!(score("We will see. Hill said no.") < MIN_SCORE);
        assert!(score("Hill said the memo is with William's team, in the annex, page 40 of the long report") >= MIN_SCORE);
        let far = format!("William sent it. {} Hill agreed.", "The weather was fine all week and nothing else happened. ".repeat(2));
        assert!(score(&far) < MIN_SCORE, "a first name far from the surname");
        let don = person("donald.lee@ex.com", "Donald Lee");
        let text = "don't tell Lee";
        assert!(don.score(text, &don.find(text)) < MIN_SCORE);
    }

    #[test]
    fn numbers_and_initials_are_not_taken_for_the_person_on_their_own() {
        let id = |kind, value: &str| Matcher::new(&[Identifier { kind, value: value.into() }]);
        let score = |m: &Matcher, text: &str| m.score(text, &m.find(text));
        let user = id(IdentifierKind::AnonymousId, "1042");
        assert_eq!(forms(&user, "invoice 1042 is paid"), ["short_number"]);
        assert!(score(&user, "invoice 1042 is paid") < MIN_SCORE);
        assert!(score(&id(IdentifierKind::AnonymousId, "u-1042"), "user u-1042 logged in") >= MIN_SCORE);
        assert!(score(&id(IdentifierKind::AnonymousId, "8812345"), "account 8812345") >= MIN_SCORE, "seven digits");
        let year = id(IdentifierKind::Handle, "2020");
        assert!(year.find("the 2020 budget").is_empty(), "a bare handle of digits");
        assert_eq!(forms(&year, "ping @2020"), ["literal"]);
        let version = id(IdentifierKind::Email, "1.2@x.com");
        assert!(version.find("release 1.2 ships").is_empty(), "a local part of digits");
        assert_eq!(forms(&version, "write to 1.2@x.com"), ["email"]);
        let allen = id(IdentifierKind::Email, "k..allen@enron.com");
        assert_eq!(forms(&allen, "From: k..allen"), ["local_part"], "a local part with a word stays");
    }

    #[test]
    fn handles_phones_and_literals_match_on_the_edges_they_have() {
        let id = |kind, value: &str| Matcher::new(&[Identifier { kind, value: value.into() }]);
        let ann = id(IdentifierKind::Handle, "@ann");
        assert_eq!(forms(&ann, "ping @ann about it"), ["literal"]);
        assert_eq!(forms(&ann, "(@ann)"), ["literal"]);
        assert!(ann.find("mail x@ann.com or @anna").is_empty());
        assert!(ann.find("Ann said").is_empty(), "a short bare handle is not the person");
        assert_eq!(forms(&id(IdentifierKind::Handle, "ann_b42"), "cc ann_b42, @ann_b42"), ["literal", "literal"]);
        let uk = id(IdentifierKind::Phone, "+44 20 7946 0958");
        assert_eq!(forms(&uk, "call +44 20 7946 0958 today"), ["literal"]);
        // National, international and `(0)` forms are one number, and a
        // match takes the country code and trunk prefix with it.
        for text in ["ring 020 7946 0958.", "ring +44 (0)20 7946 0958.", "ring 0044 20-7946-0958."] {
            let found = uk.find(text);
            assert_eq!(found.len(), 1, "{text}");
            assert_eq!(&text[found[0].start..found[0].end], text[5..text.len() - 1].trim(), "{text}");
        }
        assert!(uk.find("ring 020 7946 0959 or 2079460957").is_empty());
        let us = id(IdentifierKind::Phone, "(713) 853-6000");
        assert_eq!(forms(&us, "+1 713 853 6000 and 1-713-853-6000"), ["literal", "literal"]);
        assert!(us.find("813-853-6000").is_empty(), "another area code");
        // An IDN domain as mail sends it and as a text writes it.
        let idn = id(IdentifierKind::Email, "ann.b@bücher.de");
        assert_eq!(forms(&idn, "to ann.b@xn--bcher-kva.de and ann.b@Bücher.de"), ["email", "email"]);
        let short = id(IdentifierKind::Phone, "+4512");
        assert_eq!(forms(&short, "ext +4512."), ["short_number"]);
        assert!(short.find("x+45123").is_empty());
        // Under another kind, an address is still an address and a name a name.
        assert_eq!(forms(&id(IdentifierKind::Other, "mailto:xavier@ex.com"), "to <Xavier@EX.com>"), ["email"]);
        assert_eq!(forms(&id(IdentifierKind::Name, "Xu, Xavier"), "from Xavier Xu"), ["first_last"]);
    }

    #[test]
    fn a_form_is_compiled_only_for_a_text_holding_its_literal_and_finds_what_every_form_finds() {
        let compiled = |m: &Matcher| m.forms.iter().filter(|(_, re)| re.re.get().is_some()).count();
        // The address holds the surname, so a text with the address tries the name's forms too.
        let ann = person("ann.t@example.com", "Ann Tremaine");
        assert!(ann.find("Lunch on Friday? The numbers are attached.").is_empty());
        assert_eq!(compiled(&ann), 0, "a text without any literal compiles nothing");
        assert_eq!(forms(&ann, "To: ANN.T@EXAMPLE.COM"), ["email"]);
        let some = compiled(&ann);
        assert!(some > 0 && some < ann.forms.len(), "the address's forms only: {some} of {}", ann.forms.len());
        let m = person("jeff.dasovich@enron.com", "Jeff Dasovich");
        let texts = [
            "To: JEFF.DASOVICH@ENRON.COM",
            "Dasovich, Jeff J.; Kean, Steven",
            "Jeff Dasovich/NA/Enron@ENRON wrote: see J. Dasovich's note",
            "cc: jeff.dasovich; [mailto:Jeff.Dasovich@ees.enron.com]",
            "Jeff Smith and the Dasovichs",
            "Call Dasovich (Jeff) tomorrow; jdasovich@aol.com",
        ];
        for t in texts {
            let all = m.find_in(t, None);
            assert_eq!(m.find(t), all, "{t}");
            let strong = m.hit(Uuid::nil(), Uuid::nil(), "s", t, &t.to_lowercase()).map(|h| h.score);
            let every = (!all.is_empty()).then(|| m.score(t, &all));
            assert_eq!(strong, every, "{t}");
        }
        // Stripping leaves out the first name only where the text holds it.
        assert_eq!(m.strip("Jeff wrote"), "  wrote");
        assert_eq!(m.strip("Nobody wrote"), "Nobody wrote");
    }

    #[test]
    fn redaction_removes_every_occurrence_and_is_idempotent() {
        let m = person("jeff.dasovich@enron.com", "Jeff Dasovich");
        let text =
            "From: \"Dasovich, Jeff\" <JEFF.DASOVICH@enron.com>\nJeff Dasovich said Dasovich would call Jeff Smith.";
        let once = m.redact(text);
        assert_eq!(once, "From: \"[redacted]\" <[redacted]>\n[redacted] said [redacted] would call Jeff Smith.");
        assert_eq!(m.redact(&once), once);
        assert!(m.find(&once).is_empty());
        assert_eq!(m.redact("nothing here"), "nothing here");
    }

    #[test]
    fn escaped_links_name_the_person_where_they_are_written() {
        let m = person("zk@corp.example", "Zora Kéllerman");
        let text = "Unsubscribe: https://lists.example/u?email=zk%40corp.example&who=Zora+K%C3%A9llerman \
                    or mailto%3Azk%40corp.example; not zk%40corp.example.org nor 100%25 of Zora+Kay.";
        let lower = text.to_lowercase();
        assert!(m.may_match(&lower));
        let found: Vec<(&str, Form)> = m.find(text).iter().map(|f| (&text[f.start..f.end], f.form)).collect();
        assert_eq!(
            found,
            [("zk%40corp.example", Form::Email), ("Zora+K%C3%A9llerman", Form::FirstLast), ("zk%40corp.example", Form::Email)],
            "each found where it is written; a longer address and another Zora are not her"
        );
        assert!(m.hit(Uuid::nil(), Uuid::nil(), "s", text, &lower).is_some_and(|h| h.score >= MIN_SCORE));
        let redacted = m.redact(text);
        assert!(!redacted.contains("zk%40corp") || redacted.contains("zk%40corp.example.org"), "{redacted}");
        assert_eq!(redacted.matches(REDACTED).count(), 3, "{redacted}");
        assert!(m.find(&redacted).is_empty());
        assert_eq!(m.redact(&redacted), redacted);
        // Nothing escaped, nothing read twice: as before.
        assert!(!m.may_match("zora+kay wrote 50% of it"));
        // An address spelled out so that scrapers miss it, a name with a reference.
        let page = "Contact Zora&nbsp;K&#233;llerman: zk [at] corp [dot] example (not zkk at corp dot example).";
        assert!(m.may_match(&page.to_lowercase()));
        let found: Vec<&str> = m.find(page).iter().map(|f| &page[f.start..f.end]).collect();
        assert_eq!(found, ["Zora&nbsp;K&#233;llerman", "zk [at] corp [dot] example"]);
        assert_eq!(m.redact(page), "Contact [redacted]: [redacted] (not zkk at corp dot example).");
    }

    #[test]
    fn stripping_leaves_out_identifiers_and_first_names() {
        let m = person("jeff.dasovich@enron.com", "Jeff Dasovich");
        let s = m.strip("Ask Jeff to call Dasovich, Jeff or jeff.dasovich@enron.com today");
        assert_eq!(s.split_whitespace().collect::<Vec<_>>(), ["Ask", "to", "call", "or", "today"]);
    }

    #[test]
    fn a_text_of_thousands_of_matches_keeps_a_few_with_the_score_of_all() {
        let m = person("ann.lee@example.com", "Ann Lee");
        let text = "Lee said. ".repeat(3000) + "Mail ann.lee@example.com or Ann Lee.";
        let started = std::time::Instant::now();
        let found = m.find(&text);
        assert_eq!(found.len(), 3002);
        assert!(found.windows(2).all(|w| w[0].end <= w[1].start), "disjoint, in text order");
        let hit = m.hit(Uuid::nil(), Uuid::nil(), "s", &text, &text.to_lowercase()).unwrap();
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
        assert_eq!(hit.matches.len(), MAX_MATCHES);
        assert_eq!(hit.matches[0].form, Form::Email);
        assert!(hit.score >= MIN_SCORE);
    }

    #[test]
    fn prefilter_literals_are_surnames_and_local_parts() {
        let m = person("jeff.dasovich@enron.com", "Jeff Dasovich");
        assert_eq!(m.literals(), ["dasovich", "jeff.dasovich"]);
        let words = |w: &[&[&str]]| w.iter().map(|g| g.iter().map(|s| (*s).to_owned()).collect()).collect::<Vec<Vec<String>>>();
        // `jeff.dasovich` holds `dasovich` (the surname forms'): left out.
        assert_eq!(m.index_words(), (words(&[&["dasovich"], &["jdasovich"]]), vec![]));
        // An address alone: `jennifer.kinwton` is found by `kinwton` (the
        // middle-initial forms' word); a local part of three words by all
        // three together, never by its longest (often a first name) alone.
        let email = |v: &str| Matcher::new(&[Identifier { kind: IdentifierKind::Email, value: v.into() }]);
        assert_eq!(
            email("jennifer.kinwton@enron.com").index_words(),
            (words(&[&["com", "enron", "kinwton"], &["jennifer", "kinwton"], &["jkinwton"]]), vec![])
        );
        assert_eq!(email("jennifer.k.lee@example.com").index_words(), (words(&[&["jennifer", "k", "lee"]]), vec![]));
        // A surname that is any word (digits, here) is never asked for alone:
        // with the first word, or with the domain.
        assert_eq!(
            email("funnymoney.10@reply.pm0.net").index_words(),
            (words(&[&["10", "funnymoney"], &["10", "net", "pm0", "reply"], &["f10"]]), vec![])
        );
        assert_eq!(like_escape("a_b%c"), "a\\_b\\%c");
    }
}
