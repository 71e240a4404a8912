//! Scores a report at the level of sources and prints the table.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;

use super::truth::Expected;

/// The scores of one person (or of all, summed).
#[derive(Debug, Default, Clone, Serialize)]
pub struct Score {
    pub person: String,
    pub must: usize,
    pub must_found: usize,
    pub derived: usize,
    pub derived_found: usize,
    /// The same excerpts stored as messages (header lines, then the text).
    pub derived_mail: usize,
    pub derived_mail_found: usize,
    pub candidates: usize,
    /// Candidates that are plausible or derived.
    pub correct: usize,
    pub seconds_total: f64,
    pub seconds_residual: f64,
    /// Must-find sources missed, and candidates that were neither plausible nor derived (for debugging).
    pub missed: Vec<String>,
    pub missed_derived: Vec<String>,
    pub false_positives: Vec<String>,
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 1.0 } else { a as f64 / b as f64 }
}

impl Score {
    pub fn new(person: &str, e: &Expected, found: &BTreeSet<String>, total: Duration, residual: Duration) -> Self {
        let correct: BTreeSet<&String> = found
            .iter()
            .filter(|s| {
                e.plausible.contains(*s) || e.derived.contains(*s) || e.derived_mail.contains(*s) || e.must.contains(*s)
            })
            .collect();
        Self {
            person: person.to_owned(),
            must: e.must.len(),
            must_found: e.must.intersection(found).count(),
            derived: e.derived.len(),
            derived_found: e.derived.intersection(found).count(),
            derived_mail: e.derived_mail.len(),
            derived_mail_found: e.derived_mail.intersection(found).count(),
            candidates: found.len(),
            correct: correct.len(),
            seconds_total: total.as_secs_f64(),
            seconds_residual: residual.as_secs_f64(),
            missed: e.must.difference(found).cloned().collect(),
            missed_derived: e.derived.union(&e.derived_mail).filter(|s| !found.contains(*s)).cloned().collect(),
            false_positives: found.iter().filter(|s| !correct.contains(s)).cloned().collect(),
        }
    }

    pub fn recall(&self) -> f64 {
        ratio(self.must_found, self.must)
    }

    pub fn recall_derived(&self) -> f64 {
        ratio(self.derived_found, self.derived)
    }

    pub fn recall_derived_mail(&self) -> f64 {
        ratio(self.derived_mail_found, self.derived_mail)
    }

    pub fn precision(&self) -> f64 {
        ratio(self.correct, self.candidates)
    }

    /// Sums counts and times (the overall row).
    pub fn total(all: &[Score]) -> Self {
        let mut t = Score { person: "overall".into(), ..Score::default() };
        for s in all {
            t.must += s.must;
            t.must_found += s.must_found;
            t.derived += s.derived;
            t.derived_found += s.derived_found;
            t.derived_mail += s.derived_mail;
            t.derived_mail_found += s.derived_mail_found;
            t.candidates += s.candidates;
            t.correct += s.correct;
            t.seconds_total += s.seconds_total;
            t.seconds_residual += s.seconds_residual;
        }
        // Times in the overall row are per person.
        let n = all.len().max(1) as f64;
        t.seconds_total /= n;
        t.seconds_residual /= n;
        t
    }
}

/// The table, in Markdown.
pub fn table(all: &[Score]) -> String {
    let mut out = String::from(
        "| person | must-find | recall (must-find) | derived | recall (derived, bare) | recall (derived, as mail) | candidates | precision | time (s) | residual stage (s) |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    let overall = Score::total(all);
    for s in all.iter().chain(std::iter::once(&overall)) {
        out.push_str(&format!(
            "| {} | {} | {:.3} | {} | {:.3} | {:.3} | {} | {:.3} | {:.1} | {:.1} |\n",
            s.person,
            s.must,
            s.recall(),
            s.derived,
            s.recall_derived(),
            s.recall_derived_mail(),
            s.candidates,
            s.precision(),
            s.seconds_total,
            s.seconds_residual
        ));
    }
    out
}
