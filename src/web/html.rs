//! HTML by hand: one escaping function every dynamic value goes through,
//! and the page frame. No templating crate: a dozen small pages do not pay
//! for one's compile time, and `esc` is easy to audit.

use std::fmt::Display;

/// Escapes text for element content and quoted attribute values.
pub fn esc(s: impl Display) -> String {
    let s = s.to_string();
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page. `title` and `signed_in_as` are escaped here; `body` is
/// HTML the caller built with [`esc`].
pub fn page(title: &str, signed_in_as: Option<&str>, body: &str) -> String {
    let nav = match signed_in_as {
        Some(who) => format!(
            r#"<nav><a href="/log">Deletion log</a> <a href="/verify">Verify chain</a> <a href="/subject">Subject counts</a> <a href="/jobs">Jobs</a>
<form method="post" action="/logout" class="inline"><span class="who">{}</span> <button type="submit">Sign out</button></form></nav>"#,
            esc(who)
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{} · Lethe</title><link rel="stylesheet" href="/static/style.css"></head>
<body><header><strong>Lethe</strong> · auditor's view (read-only)</header>
{nav}
<main><h1>{}</h1>
{body}
</main></body></html>"#,
        esc(title),
        esc(title)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_in_user_text_is_escaped() {
        assert_eq!(esc("<script>alert('x')</script>&\""), "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;");
    }

    #[test]
    fn a_page_escapes_its_title_and_user() {
        let p = page("<b>", Some("<i>"), "");
        assert!(p.contains("&lt;b&gt;") && p.contains("&lt;i&gt;") && !p.contains("<b>") && !p.contains("<i>"));
    }
}
