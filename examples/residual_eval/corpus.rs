//! The corpus as a pipeline sees it (../shared/data/README.md): one message
//! per JSON line, rendered as `From:`/`To:`/`Cc:`/`Subject:` header lines and
//! the body, split into chunks of at most about 1,000 characters on paragraph
//! boundaries.

use std::io::BufRead;
use std::path::Path;

use anyhow::Context as _;
use serde::Deserialize;

/// One e-mail of the corpus.
#[derive(Debug, Clone, Deserialize)]
pub struct Message {
    pub id: String,
    pub from: String,
    #[serde(default)]
    pub to: Vec<String>,
    #[serde(default)]
    pub cc: Vec<String>,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub body: String,
}

impl Message {
    /// Header lines and body, as ingested.
    pub fn text(&self) -> String {
        format!(
            "From: {}\nTo: {}\nCc: {}\nSubject: {}\n\n{}",
            self.from,
            self.to.join(", "),
            self.cc.join(", "),
            self.subject,
            self.body
        )
    }
}

/// Reads at most `limit` messages (all when `None`), skipping duplicate ids.
pub fn read(path: &Path, limit: Option<usize>) -> anyhow::Result<Vec<Message>> {
    let file = std::fs::File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        if limit.is_some_and(|l| out.len() >= l) {
            break;
        }
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let m: Message = serde_json::from_str(&line).with_context(|| format!("{}:{}", path.display(), n + 1))?;
        if seen.insert(m.id.clone()) {
            out.push(m);
        }
    }
    Ok(out)
}

/// Splits text into chunks of at most `max` bytes: whole paragraphs packed
/// greedily; a longer paragraph is cut at line breaks, then at spaces.
pub fn chunks(text: &str, max: usize) -> Vec<String> {
    let mut pieces = Vec::new();
    for para in text.split("\n\n").map(str::trim_end).filter(|p| !p.trim().is_empty()) {
        if para.len() <= max {
            pieces.push(para.to_owned());
        } else {
            pieces.extend(split_long(para, max));
        }
    }
    let mut out: Vec<String> = Vec::new();
    for p in pieces {
        match out.last_mut() {
            Some(last) if last.len() + 2 + p.len() <= max => {
                last.push_str("\n\n");
                last.push_str(&p);
            }
            _ => out.push(p),
        }
    }
    out
}

/// Cuts one long paragraph at line breaks, and lines at spaces.
fn split_long(para: &str, max: usize) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut cur = String::new();
    let tokens = para
        .split_inclusive('\n')
        .flat_map(|line| if line.len() <= max { vec![line] } else { line.split_inclusive(' ').collect::<Vec<_>>() });
    for tok in tokens {
        if !cur.is_empty() && cur.len() + tok.len() > max {
            out.push(std::mem::take(&mut cur));
        }
        if tok.len() > max {
            // A single token longer than a chunk (a URL, base64): cut on a char boundary.
            let mut rest = tok;
            while rest.len() > max {
                let mut cut = max;
                while !rest.is_char_boundary(cut) {
                    cut -= 1;
                }
                out.push(rest[..cut].to_owned());
                rest = &rest[cut..];
            }
            cur.push_str(rest);
        } else {
            cur.push_str(tok);
        }
    }
    if !cur.trim().is_empty() {
        out.push(cur);
    }
    out.into_iter().map(|s| s.trim_end().to_owned()).filter(|s| !s.trim().is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_keep_every_word_and_respect_the_size() {
        let text = format!("From: a\nTo: {}\n\n{}\n\nshort", vec!["x@y.com"; 300].join(", "), "word ".repeat(500));
        let c = chunks(&text, 1000);
        assert!(c.iter().all(|c| c.len() <= 1000));
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(words(&c.join(" ")), words(&text));
    }
}
