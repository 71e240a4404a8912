//! What the report should contain, from the README's definitions and
//! independent of Lethe's own matcher: for a person, the sources that *must*
//! be found, those where a candidate is *plausible*, and the *derived*
//! sources built from the person's own sentences.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use regex::Regex;

/// A person under evaluation: `address=Display Name`.
#[derive(Debug, Clone)]
pub struct Person {
    pub address: String,
    pub name: String,
}

impl Person {
    pub fn parse(s: &str) -> anyhow::Result<Self> {
        let (a, n) = s.split_once('=').ok_or_else(|| anyhow::anyhow!("`{s}`: expected address=Display Name"))?;
        let (address, name) = (a.trim().to_lowercase(), n.split_whitespace().collect::<Vec<_>>().join(" "));
        anyhow::ensure!(address.contains('@') && name.contains(' '), "`{s}`: expected address=First Last");
        Ok(Self { address, name })
    }

    fn first(&self) -> &str {
        self.name.split(' ').next().unwrap_or_default()
    }

    fn last(&self) -> &str {
        self.name.rsplit(' ').next().unwrap_or_default()
    }

    pub fn local_part(&self) -> &str {
        self.address.split('@').next().unwrap_or_default()
    }

    /// A stable short id that does not reveal the person (derived-source owner, ids).
    pub fn token(&self) -> String {
        use sha2::Digest;
        hex::encode(&sha2::Sha256::digest(self.address.as_bytes())[..4])
    }
}

/// The README's tests for one person.
pub struct Truth {
    must: Regex,
    last: String,
    local: String,
}

impl Truth {
    pub fn new(p: &Person) -> Self {
        let (f, l) = (regex::escape(p.first()), regex::escape(p.last()));
        let must = format!(r"(?i){}|\b{f}\s+{l}\b|\b{f}\s+[a-z]\.?\s+{l}\b|\b{l},\s*{f}\b", regex::escape(&p.address));
        Self {
            must: Regex::new(&must).unwrap_or_else(|e| panic!("pattern for {}: {e}", p.name)),
            last: p.last().to_lowercase(),
            local: p.local_part().to_lowercase(),
        }
    }

    /// An address (any case) or `First Last`, `First M. Last`, `First M Last`, `Last, First`.
    pub fn must_find(&self, text: &str) -> bool {
        self.must.is_match(text)
    }

    /// The last name or the address's local part anywhere.
    pub fn plausible(&self, text: &str) -> bool {
        let t = text.to_lowercase();
        t.contains(&self.last) || t.contains(&self.local)
    }
}

/// Sources by id → text, for scoring.
pub type Sources = BTreeMap<String, String>;

/// The expected sets for one person.
#[derive(Debug, Default)]
pub struct Expected {
    pub must: BTreeSet<String>,
    pub plausible: BTreeSet<String>,
    pub derived: BTreeSet<String>,
    /// Derived excerpts stored as messages (header lines included).
    pub derived_mail: BTreeSet<String>,
}

/// Scores every held source except the person's own (deleted by lineage).
pub fn expected(p: &Person, held: &Sources, own: &BTreeSet<String>, derived: &[Derived]) -> Expected {
    let t = Truth::new(p);
    let (mail, bare): (Vec<&Derived>, Vec<&Derived>) = derived.iter().partition(|d| d.as_mail);
    let mut e = Expected {
        derived: bare.iter().map(|d| d.source_id.clone()).collect(),
        derived_mail: mail.iter().map(|d| d.source_id.clone()).collect(),
        ..Expected::default()
    };
    for (id, text) in
        held.iter().filter(|(id, _)| !own.contains(*id) && !e.derived.contains(*id) && !e.derived_mail.contains(*id))
    {
        if t.must_find(text) {
            e.must.insert(id.clone());
        }
        if t.plausible(text) {
            e.plausible.insert(id.clone());
        }
    }
    e
}

/// A derived source: an excerpt of the person's own sentences without any identifier.
#[derive(Debug, Clone)]
pub struct Derived {
    pub source_id: String,
    pub owner: String,
    pub text: String,
    /// Stored like every other message: header lines, then the excerpt,
    /// chunked as the corpus is (the other kind is the bare excerpt).
    pub as_mail: bool,
}

/// The same excerpts stored as a pipeline stores a message: `From:`, `To:`,
/// `Subject:` and `Date:` lines, an empty line, the text.
pub fn as_mail(p: &Person, bare: &[Derived]) -> Vec<Derived> {
    bare.iter()
        .enumerate()
        .map(|(i, d)| Derived {
            source_id: format!("derived-mail-{}-{i}", p.token()),
            owner: d.owner.clone(),
            text: format!(
                "From: notes.{t}@example.com\nTo: team.{i}@example.com, archive.{t}@example.com\n\
                 Subject: Summary {i} of the discussion for the regulatory team\nDate: Mon, 4 Jun 2001 09:{i:02}:00 -0700\n\n{}",
                d.text,
                t = p.token()
            ),
            as_mail: true,
        })
        .collect()
}

/// Where the sender's own text ends: a reply or forward marker, a quoted
/// line, a header line, or a Notes-style "Name 01/02/2001 10:00 AM" line.
static QUOTE_START: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?im)-{3,}\s*(original message|forwarded by)|^\s*(begin forwarded message|>)|^\s*(from|to|sent|cc|subject):|^[^\n]*\d{1,2}/\d{1,2}/\d{2,4}\s+\d{1,2}:\d{2}|^[^\n]*wrote:\s*$",
    )
    .unwrap_or_else(|e| panic!("{e}"))
});

static SENTENCE_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?:[.!?]\s+|\n\s*\n)").unwrap_or_else(|e| panic!("{e}")));

/// The part of a body the sender wrote.
fn authored(body: &str) -> &str {
    QUOTE_START.find(body).map_or(body, |m| &body[..m.start()])
}

/// Sentences of at least `min_words` words, on `.`/`!`/`?` or blank lines.
fn sentences(text: &str, min_words: usize) -> Vec<String> {
    let flat = text.replace("=20", " ").replace("=\n", "");
    let mut out = Vec::new();
    let mut start = 0;
    for m in SENTENCE_END.find_iter(&flat) {
        out.push(flat[start..m.end()].to_owned());
        start = m.end();
    }
    out.push(flat[start..].to_owned());
    out.into_iter()
        .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|s| s.split(' ').count() >= min_words && s.len() <= 400 && !s.contains('@') && !s.contains("http"))
        .collect()
}

/// Builds up to `per_person` derived sources from the person's own messages:
/// 1–3 consecutive authored sentences each, identifiers removed, tagged with
/// an owner that is not the person. Deterministic for a person and corpus.
pub fn derived_sources(p: &Person, own: &[&super::corpus::Message], per_person: usize) -> Vec<Derived> {
    let ident = Regex::new(&format!(
        r"(?i){}|{}|\b{}\b|\b{}\b",
        regex::escape(&p.address),
        regex::escape(p.local_part()),
        regex::escape(p.first()),
        regex::escape(p.last())
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let seed = u64::from_str_radix(&p.token(), 16).unwrap_or(7);
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut messages: Vec<&&super::corpus::Message> = own.iter().collect();
    messages.sort_by(|a, b| a.id.cmp(&b.id));
    messages.shuffle(&mut rng);
    let mut out = Vec::new();
    let mut used = BTreeSet::new();
    for m in messages {
        if out.len() >= per_person {
            break;
        }
        let s = sentences(authored(&m.body), 6);
        if s.is_empty() {
            continue;
        }
        let take = rng.gen_range(1..=3).min(s.len());
        let start = rng.gen_range(0..=s.len() - take);
        let excerpt =
            ident.replace_all(&s[start..start + take].join(" "), "").split_whitespace().collect::<Vec<_>>().join(" ");
        if excerpt.len() < 80 || !used.insert(excerpt.clone()) {
            continue;
        }
        out.push(Derived {
            source_id: format!("derived-{}-{}", p.token(), out.len()),
            owner: format!("notes-{}", p.token()),
            text: excerpt,
            as_mail: false,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn must_find_follows_the_readme_forms() {
        let t = Truth::new(&Person::parse("jeff.dasovich@enron.com=Jeff Dasovich").unwrap());
        for yes in ["JEFF.DASOVICH@ENRON.COM", "jeff dasovich", "Jeff J. Dasovich", "Jeff J Dasovich", "Dasovich, Jeff"]
        {
            assert!(t.must_find(yes), "{yes}");
        }
        for no in ["Dasovich", "Jeff Dasovichs", "Jeff Smith", "jeff.dasovich@enron"] {
            assert!(!t.must_find(no), "{no}");
        }
        assert!(t.plausible("asked Dasovich"));
    }
}
