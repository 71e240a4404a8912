//! The pages. Each: who is signed in → the library call the matching rpc
//! makes → HTML, every dynamic value through [`esc`].

use std::fmt::Write as _;

use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{Html, IntoResponse, Response};
use chrono::{NaiveDate, SecondsFormat};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use super::html::{esc, page};
use super::session::describe;
use super::{Web, WebError};
use crate::auth::Principal;
use crate::domain::{ExternalId, JobStatus};
use crate::error::LetheError;
use crate::grpc::{convert, pb};
use crate::store::log::{self, LogRow};
use crate::{audit, erasure};

const PAGE: usize = 50;
/// Entries a filtered page reads at most, so a filter that matches nothing
/// in a long log answers quickly; the page then offers to read further.
const SCAN: i64 = 5000;

type PageResult = Result<Html<String>, WebError>;

fn render(title: &str, p: &Principal, body: &str) -> Html<String> {
    Html(page(title, Some(&describe(p)), body))
}

/// The deletion log's filters (all optional) and page position.
#[derive(Deserialize, Default)]
pub(super) struct LogQuery {
    #[serde(default)]
    kind: String,
    #[serde(default)]
    status: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    /// Show entries before this sequence number (the next page).
    before: Option<i64>,
}

fn date(field: &str, s: &str) -> Result<Option<NaiveDate>, LetheError> {
    if s.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map(Some).map_err(|_| LetheError::invalid(field, "must be a date YYYY-MM-DD"))
}

fn body_of(e: &LogRow) -> Value {
    serde_json::from_str(&e.body).unwrap_or(Value::Null)
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn num(v: &Value, key: &str) -> i64 {
    v.get(key).and_then(Value::as_i64).unwrap_or(0)
}

fn statuses(body: &Value) -> Vec<&str> {
    body.get("collections").and_then(Value::as_array).map(|cs| cs.iter().map(|c| text(c, "physical_status")).collect()).unwrap_or_default()
}

impl LogQuery {
    fn matches(&self, e: &LogRow, from: Option<NaiveDate>, to: Option<NaiveDate>) -> bool {
        let day = e.created_at.date_naive();
        (self.kind.is_empty() || e.kind == self.kind)
            && from.is_none_or(|f| day >= f)
            && to.is_none_or(|t| day <= t)
            && (self.status.is_empty() || statuses(&body_of(e)).contains(&self.status.as_str()))
    }

    fn filters(&self) -> String {
        let opt = |v: &str, cur: &str, label: &str| {
            format!("<option value=\"{}\"{}>{}</option>", esc(v), if v == cur { " selected" } else { "" }, esc(label))
        };
        // Every kind the log holds, and every physical status a collection of an entry can have.
        let kinds: String = [
            ("", "any"),
            ("erasure", "erasure"),
            ("retention", "retention"),
            ("refusal", "refusal"),
            ("failure", "failure"),
            ("follow_up", "follow-up"),
            ("reconcile", "reconcile"),
            ("ledger_import", "ledger import"),
            ("export", "export"),
        ]
        .iter()
        .map(|(v, l)| opt(v, &self.kind, l))
        .collect();
        let sts: String = [("", "any"), ("confirmed", "confirmed"), ("pending", "pending"), ("not_requested", "not requested")]
            .iter()
            .map(|(v, l)| opt(v, &self.status, l))
            .collect();
        format!(
            r#"<form class="filters" method="get" action="/log"><label>Kind <select name="kind">{kinds}</select></label>
<label>Physical status <select name="status">{sts}</select></label>
<label>From <input type="date" name="from" value="{}"></label><label>To <input type="date" name="to" value="{}"></label>
<button type="submit">Filter</button></form>"#,
            esc(&self.from),
            esc(&self.to)
        )
    }

    fn next_link(&self, before: i64) -> String {
        format!(
            "<p class=\"noprint\"><a id=\"older\" href=\"/log?kind={}&amp;status={}&amp;from={}&amp;to={}&amp;before={before}\">Older entries</a></p>",
            esc(urlencode(&self.kind)),
            esc(urlencode(&self.status)),
            esc(urlencode(&self.from)),
            esc(urlencode(&self.to))
        )
    }
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| if b.is_ascii_alphanumeric() || b"-_.".contains(&b) { (b as char).to_string() } else { format!("%{b:02X}") })
        .collect()
}

/// One log entry as table rows: the entry, then one row per collection.
fn entry_rows(e: &LogRow) -> String {
    let b = body_of(e);
    let job = e.job_id.map(|j| format!("<a href=\"/jobs/{j}\" class=\"mono\">{j}</a>")).unwrap_or_default();
    let mut out = format!(
        "<tr class=\"entry\" data-seq=\"{seq}\" data-job=\"{}\" data-kind=\"{}\"><td><a href=\"/log/{seq}\">{seq}</a></td><td>{}</td><td>{}</td><td>{job}</td><td class=\"requester\">{}</td><td class=\"reason\">{}</td><td>{}</td></tr>",
        e.job_id.map(|j| j.to_string()).unwrap_or_default(),
        esc(&e.kind),
        esc(e.created_at.to_rfc3339_opts(SecondsFormat::Secs, true)),
        esc(&e.kind),
        esc(text(&b, "requested_by")),
        esc(text(&b, "reason")),
        esc(text(&b, "refused_because")),
        seq = e.seq,
    );
    // An erasure's, retention's or failure's collections; a follow-up's or
    // reconcile's one collection is the body itself.
    let rows: Vec<&Value> = match b.get("collections").and_then(Value::as_array) {
        Some(cs) => cs.iter().collect(),
        None if b.get("collection").is_some() => vec![&b],
        None => Vec::new(),
    };
    for c in rows {
        // What the entry does not count (a failure's deleted and after) is
        // shown as not counted, never as 0.
        let n = |keys: &[&str]| keys.iter().find_map(|k| c.get(*k).and_then(Value::as_i64)).map_or_else(|| "—".to_owned(), |n| n.to_string());
        let residual = if c.get("residual_found").is_some() {
            format!(
                "<span class=\"residual\">residual found {} · deleted {} · redacted {}</span> · ",
                num(c, "residual_found"),
                num(c, "residual_deleted"),
                num(c, "residual_redacted")
            )
        } else {
            String::new()
        };
        let physical = text(c, "physical_status");
        let physical = if physical.is_empty() { String::new() } else { format!("physical <span class=\"physical\">{}</span>", esc(physical)) };
        let _ = write!(
            out,
            "<tr class=\"count\" data-seq=\"{}\" data-collection=\"{}\"><td></td><td colspan=\"2\">{} <span class=\"note\">{}</span></td><td class=\"n before\">{}</td><td class=\"n deleted\">{}</td><td class=\"n after\">{}</td><td>{residual}{physical}</td></tr>",
            e.seq,
            esc(text(c, "collection")),
            esc(text(c, "collection")),
            esc(text(c, "backend")),
            n(&["before_total", "before"]),
            n(&["deleted"]),
            n(&["after_total", "after"]),
        );
    }
    out
}

/// The deletion log, newest first, filtered and paged.
pub(super) async fn log(State(web): State<Web>, headers: HeaderMap, Query(q): Query<LogQuery>) -> PageResult {
    let p = web.principal(&headers).await?;
    let (from, to) = (date("from", &q.from)?, date("to", &q.to)?);
    let head = log::head(&web.ctx.pool, p.tenant_id).await?.map_or(0, |h| h.seq);
    let mut top = q.before.map_or(head, |b| b.saturating_sub(1).min(head));
    let mut shown = Vec::new();
    let mut read = 0;
    while top > 0 && shown.len() < PAGE && read < SCAN {
        let start = (top - 200).max(0);
        let mut rows = log::entries(&web.ctx.pool, p.tenant_id, start, top - start).await?;
        rows.reverse();
        read += top - start;
        for e in rows {
            top = e.seq - 1;
            if q.matches(&e, from, to) {
                shown.push(e);
                if shown.len() == PAGE {
                    break;
                }
            }
        }
    }
    let mut body = format!("<p>{head} entries in this tenant's log, newest first.</p>{}", q.filters());
    body.push_str("<table id=\"log\"><thead><tr><th>Seq</th><th>Logged</th><th>Kind</th><th>Job</th><th>Requested by</th><th>Reason</th><th>Refused because</th></tr>\
        <tr><th></th><th colspan=\"2\">Collection</th><th>Before</th><th>Deleted</th><th>After</th><th>Residuals, physical status</th></tr></thead><tbody>");
    for e in &shown {
        body.push_str(&entry_rows(e));
    }
    body.push_str("</tbody></table>");
    if shown.is_empty() {
        body.push_str("<p id=\"empty\">No entries match.</p>");
    }
    if top > 0 {
        body.push_str(&q.next_link(top + 1));
    }
    Ok(render("Deletion log", &p, &body))
}

async fn find_entry(web: &Web, p: &Principal, seq: i64) -> Result<LogRow, WebError> {
    if seq < 1 {
        return Err(LetheError::NotFound(format!("log entry {seq}")).into());
    }
    let rows = log::entries(&web.ctx.pool, p.tenant_id, seq.saturating_sub(1), 1).await?;
    Ok(rows.into_iter().find(|e| e.seq == seq).ok_or_else(|| LetheError::NotFound(format!("log entry {seq}")))?)
}

/// The certificate of entry `e`, if it has one: a `follow_up` entry names
/// the erasure it follows, whose certificate is another entry's.
async fn certificate_of(web: &Web, p: &Principal, e: &LogRow) -> Result<Option<log::CertificateRow>, WebError> {
    let Some(job) = e.job_id else { return Ok(None) };
    let of_this_entry = |c: &log::CertificateRow| {
        serde_json::from_str::<serde_json::Value>(&c.body).ok().and_then(|b| b["log_seq"].as_i64()) == Some(e.seq)
    };
    Ok(log::certificate(&web.ctx.pool, p.tenant_id, job).await?.filter(of_this_entry))
}

/// One entry, its certificate, and the in-browser check (`verify.js`).
pub(super) async fn entry(State(web): State<Web>, headers: HeaderMap, Path(seq): Path<i64>) -> PageResult {
    let p = web.principal(&headers).await?;
    let e = find_entry(&web, &p, seq).await?;
    let wire = convert::log_entry(&e);
    let mut body = format!(
        "<table><tbody><tr><th>Seq</th><td>{}</td></tr><tr><th>Kind</th><td>{}</td></tr><tr><th>Logged</th><td>{}</td></tr>\
         <tr><th>Job</th><td class=\"mono\">{}</td></tr><tr><th>Subject (keyed hash)</th><td class=\"mono\">{}</td></tr>\
         <tr><th>Previous hash</th><td class=\"mono\">{}</td></tr><tr><th>Entry hash</th><td class=\"mono\">{}</td></tr>\
         <tr><th>Hash version</th><td>{}</td></tr></tbody></table><h2>Entry body</h2><pre id=\"entry-body\">{}</pre>",
        wire.seq,
        esc(&wire.kind),
        esc(e.created_at.to_rfc3339_opts(SecondsFormat::Micros, true)),
        esc(&wire.job_id),
        esc(&wire.subject_hash),
        esc(&wire.prev_hash),
        esc(&wire.entry_hash),
        wire.hash_version,
        esc(&e.body),
    );
    let Some(cert) = certificate_of(&web, &p, &e).await? else {
        body.push_str("<p class=\"note\">No certificate: refusals and other entries are covered by the chain verification.</p>");
        return Ok(render(&format!("Log entry {seq}"), &p, &body));
    };
    // The service's own key that signed it: the current one, or one rotated
    // out (`audit.retired_public_keys`); never the key the certificate carries.
    let claimed = cert.key_id.clone().unwrap_or_else(|| audit::key_id(&cert.public_key.clone().try_into().unwrap_or([0; 32])));
    let (pinned, pin_note) = match web.ctx.signer.own_public_key(&claimed) {
        Some((key, false)) => (key, "This service's signing key, pinned in this page; the key the certificate carries is not used.".to_owned()),
        Some((key, true)) => (
            key,
            "A signing key this service has rotated out (audit.retired_public_keys), pinned in this page; \
             the key the certificate carries is not used."
                .to_owned(),
        ),
        None => (
            web.ctx.signer.public_key(),
            format!(
                "The certificate names the key {claimed}, which is not one of this service's keys: the page checks it \
                 against the current key, and it cannot be valid."
            ),
        ),
    };
    let _ = write!(
        body,
        r#"<h2>Certificate</h2>
<p class="noprint"><a id="download" href="/log/{seq}/certificate.json">Download the certificate (JSON)</a></p>
<div id="verify-data" data-pinned-key="{}" data-signature="{}" data-tenant="{}" data-seq="{}" data-kind="{}" data-job="{}" data-subject-hash="{}" data-created-at="{}" data-prev-hash="{}" data-entry-hash="{}" data-hash-version="{}"></div>
<table><tbody>
<tr><th>Checked in this browser</th><td id="verdict">checking…</td></tr>
<tr><th>Ed25519 signature</th><td id="sig-status">checking…</td></tr>
<tr><th>Entry matches the certificate</th><td id="entry-status">checking…</td></tr>
<tr><th>Pinned service key</th><td class="mono">{} (key id {})<br><span class="note" id="pin-note">{}</span></td></tr>
<tr><th>Signature</th><td class="mono">{}</td></tr>
</tbody></table>
<pre id="cert-body">{}</pre>
<script src="/static/verify.js"></script>"#,
        esc(erasure::b64(&pinned)),
        esc(erasure::b64(&cert.signature)),
        p.tenant_id,
        e.seq,
        esc(&e.kind),
        esc(&wire.job_id),
        esc(&wire.subject_hash),
        esc(e.created_at.to_rfc3339_opts(SecondsFormat::Micros, true)),
        esc(&wire.prev_hash),
        esc(&wire.entry_hash),
        e.hash_version,
        esc(erasure::b64(&pinned)),
        esc(audit::key_id(&pinned)),
        esc(pin_note),
        esc(erasure::b64(&cert.signature)),
        esc(&cert.body),
    );
    Ok(render(&format!("Log entry {seq}"), &p, &body))
}

/// The certificate as GetCertificate returns it, to keep and verify offline.
pub(super) async fn certificate_json(State(web): State<Web>, headers: HeaderMap, Path(seq): Path<i64>) -> Result<Response, WebError> {
    let p = web.principal(&headers).await?;
    let e = find_entry(&web, &p, seq).await?;
    let cert = certificate_of(&web, &p, &e).await?.ok_or_else(|| LetheError::NotFound(format!("certificate of entry {seq}")))?;
    let job = cert.job_id;
    let json = serde_json::json!({
        "job_id": cert.job_id.to_string(),
        "body": cert.body,
        "signature": erasure::b64(&cert.signature),
        "public_key": erasure::b64(&cert.public_key),
        "algorithm": "Ed25519",
        "key_id": cert.key_id.unwrap_or_else(|| audit::key_id(&cert.public_key.try_into().unwrap_or([0; 32]))),
    });
    let disposition = format!("attachment; filename=\"certificate-{job}.json\"");
    Ok((
        [(header::CONTENT_TYPE, "application/json".to_owned()), (header::CONTENT_DISPOSITION, disposition)],
        serde_json::to_string_pretty(&json).unwrap_or_default(),
    )
        .into_response())
}

/// The whole chain, recomputed (VerifyDeletionLog's check).
pub(super) async fn verify(State(web): State<Web>, headers: HeaderMap) -> PageResult {
    let p = web.principal(&headers).await?;
    let v = audit::verify(&web.ctx.pool, &web.ctx.signer, p.tenant_id, None).await?;
    let body = if v.valid {
        let statement = v.head.as_ref().map(|h| h.statement()).unwrap_or_default();
        format!(
            "<p id=\"chain\" class=\"ok\">valid</p><p>{} entries checked: every hash, every link, the signed head.</p>\
             <table><tbody><tr><th>Head hash</th><td class=\"mono\">{}</td></tr><tr><th>Signed head</th><td class=\"mono\">{}</td></tr></tbody></table>\
             <p class=\"note\">Keep the head hash and size: VerifyDeletionLog with them as a pin fails if the log is later shortened or rewritten.</p>",
            v.entries_checked,
            esc(&v.head_hash),
            esc(statement)
        )
    } else {
        let first = if v.first_bad_seq > 0 {
            format!("<a id=\"first-bad\" href=\"/log/{0}\">entry {0}</a>", v.first_bad_seq)
        } else {
            "a certificate's entry".into()
        };
        format!(
            "<p id=\"chain\" class=\"bad\">invalid</p><p>First bad: {first}: <span id=\"problem\">{}</span></p><p>{} entries checked before it.</p>",
            esc(&v.problem),
            v.entries_checked
        )
    };
    Ok(render("Chain verification", &p, &body))
}

const SUBJECT_FORM: &str = r#"<form method="post" action="/subject" class="filters"><label>Subject id <input type="text" name="id" required size="40"></label><button type="submit">Count</button></form>
<p class="note">Posted, not put in the address: subject ids stay out of browser history and access logs.</p>"#;

pub(super) async fn subject_form(State(web): State<Web>, headers: HeaderMap) -> PageResult {
    let p = web.principal(&headers).await?;
    Ok(render("Subject counts", &p, SUBJECT_FORM))
}

#[derive(Deserialize)]
pub(super) struct SubjectQuery {
    id: String,
}

/// A subject's live counts, from the backends (CountSubject's check).
pub(super) async fn subject(State(web): State<Web>, headers: HeaderMap, Form(q): Form<SubjectQuery>) -> PageResult {
    let p = web.principal(&headers).await?;
    let id = ExternalId::parse("subject_id", &q.id).map_err(LetheError::from)?;
    let (state, counts) = erasure::count_subject(&web.ctx, p.tenant_id, &id).await?;
    let mut body = format!(
        "{SUBJECT_FORM}<p>Subject <strong id=\"subject-id\">{}</strong>: state <span id=\"subject-state\">{}</span></p>\
         <table id=\"counts\"><thead><tr><th>Collection</th><th>Backend</th><th>By tag</th><th>By lineage ids</th><th>Total</th></tr></thead><tbody>",
        esc(id.as_str()),
        esc(if state.is_empty() { "unknown" } else { &state })
    );
    for c in counts.iter().map(convert::live_count) {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n total\">{}</td></tr>",
            esc(&c.collection),
            esc(pb::Backend::try_from(c.backend).map(|b| b.as_str_name()).unwrap_or("")),
            c.before_by_tag,
            c.before_by_ids,
            c.before_total
        );
    }
    body.push_str("</tbody></table>");
    Ok(render("Subject counts", &p, &body))
}

fn job_rows(jobs: &[erasure::JobView]) -> String {
    let mut out = String::from(
        "<table><thead><tr><th>Job</th><th>Subject</th><th>Status</th><th>Stage</th><th>Requested by</th><th>Reason</th><th>Received</th><th>Deadline</th><th>Error</th></tr></thead><tbody>",
    );
    for j in jobs.iter().map(convert::job) {
        // A retention job has no subject: it names its collection instead.
        let subject = match &j.retention {
            Some(r) => format!("retention of {} sources in {}", r.sources, r.collection),
            None => j.subject_id.clone(),
        };
        let _ = write!(
            out,
            "<tr data-job=\"{id}\"><td><a class=\"mono\" href=\"/jobs/{id}\">{id}</a></td><td class=\"subject\">{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"reason\">{}</td><td>{}</td><td{}>{}</td><td>{}</td></tr>",
            esc(&subject),
            esc(j.status().as_str_name()),
            esc(j.stage().as_str_name()),
            esc(&j.requested_by),
            esc(&j.reason),
            esc(ts(j.received_at.as_ref())),
            if j.overdue { " class=\"bad\"" } else { "" },
            esc(ts(j.deadline.as_ref())) + if j.overdue { " (overdue)" } else { "" },
            esc(&j.error),
            id = esc(&j.job_id),
        );
    }
    out.push_str("</tbody></table>");
    if jobs.is_empty() {
        out.push_str("<p class=\"note\">None.</p>");
    }
    out
}

fn ts(t: Option<&prost_types::Timestamp>) -> String {
    t.and_then(|t| chrono::DateTime::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0)))
        .map(|d| d.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// Running, failed and overdue erasure jobs (ListErasures).
pub(super) async fn jobs(State(web): State<Web>, headers: HeaderMap) -> PageResult {
    let p = web.principal(&headers).await?;
    let list = |overdue, status| erasure::list(&web.ctx, p.tenant_id, overdue, status, 100);
    let mut body = String::from("<h2>Running</h2>");
    body.push_str(&job_rows(&list(false, Some(JobStatus::InProgress)).await?));
    body.push_str("<h2>Queued</h2>");
    body.push_str(&job_rows(&list(false, Some(JobStatus::Queued)).await?));
    body.push_str("<h2>Failed</h2>");
    body.push_str(&job_rows(&list(false, Some(JobStatus::Failed)).await?));
    body.push_str("<h2>Overdue</h2>");
    body.push_str(&job_rows(&list(true, None).await?));
    body.push_str("<h2>Recent</h2>");
    body.push_str(&job_rows(&list(false, None).await?));
    Ok(render("Jobs", &p, &body))
}

/// One job as GetErasure shows it, with its stage timeline.
pub(super) async fn job(State(web): State<Web>, headers: HeaderMap, Path(id): Path<String>) -> PageResult {
    let p = web.principal(&headers).await?;
    let id = Uuid::parse_str(&id).map_err(|_| LetheError::invalid("job_id", "must be a UUID"))?;
    let view = erasure::get(&web.ctx, p.tenant_id, id).await?;
    let events = erasure::events_after(&web.ctx, id, 0).await?;
    let j = convert::job(&view);
    let mut body = job_rows(std::slice::from_ref(&view));
    body.push_str("<h2>Counts</h2><table id=\"job-counts\"><thead><tr><th>Collection</th><th>Before</th><th>Deleted</th><th>After</th><th>Residual found</th><th>Residual deleted</th><th>Residual redacted</th><th>Physical</th></tr></thead><tbody>");
    for c in &j.counts {
        let _ = write!(
            body,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{} <span class=\"note\">{}</span></td></tr>",
            esc(&c.collection),
            c.before_total,
            c.deleted,
            c.after_total,
            c.residual_found,
            c.residual_deleted,
            c.residual_redacted,
            esc(&c.physical_status),
            esc(&c.physical_detail)
        );
    }
    body.push_str("</tbody></table><h2>Stage timeline</h2><table id=\"timeline\"><thead><tr><th>At</th><th>Stage</th><th>Status</th><th>Message</th></tr></thead><tbody>");
    for e in &events {
        let _ = write!(
            body,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(e.at.to_rfc3339_opts(SecondsFormat::Millis, true)),
            esc(&e.stage),
            esc(&e.status),
            esc(&e.message)
        );
    }
    body.push_str("</tbody></table>");
    Ok(render(&format!("Erasure job {id}"), &p, &body))
}
