//! Access export (GDPR Art. 15, portability): everything Lethe and the
//! backends hold about one subject, as a stream of records, each a part
//! name and one JSON document, closed by a manifest that gives every part's
//! record count and SHA-256, and recorded in the tenant's deletion log.
//!
//! Parts, in order: `subject` (id, state, legal hold, identifiers),
//! `collections` (live counts from the backends, `erasure::count_subject`),
//! `chunks` (lineage, a page at a time: a person can have 100k chunks),
//! `sources` (each source with its chunk count, summed while the chunks are
//! read), `jobs`, `log`, then `manifest`.
//!
//! A part's hash is the SHA-256 of its JSON lines: each record's `json`
//! followed by `\n`, which is also how the CLI writes `<part>.jsonl` into
//! its zip, so the manifest checks the files as they are.
//!
//! Who sees what: a secret key gets every part. An auditor key gets what
//! Lethe *did* (`collections`, `jobs`, `log`) and the manifest, with the
//! hashes of the parts it does not get, so the auditor can check the bundle
//! the person received without seeing its content.
//!
//! The export is logged (kind `export`) with who asked (key id and kind),
//! the parts' counts and their hashes keyed with the tenant's key, never
//! content, the id itself or a plain hash of either (the entry carries the
//! subject's keyed hash like every entry about a person). A
//! client that stops reading midway ends the export, which is logged with
//! `complete: false`.

pub mod bundle;

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::auth::{KeyKind, Principal};
use crate::context::Context;
use crate::domain::{CollectionSpec, ExternalId, NativeId};
use crate::error::Result;
use crate::store::export::{self as rows, ExportChunk};
use crate::store::lineage;

/// Chunks read per statement.
const PAGE: i64 = 1000;

/// One record of the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub part: &'static str,
    pub json: String,
}

/// A part as the manifest describes it.
struct Part {
    name: &'static str,
    records: u64,
    hash: Sha256,
    included: bool,
}

/// Emits records to the client and keeps each part's count and hash.
struct Writer {
    out: mpsc::Sender<Result<Record>>,
    parts: Vec<Part>,
    full: bool,
    /// False once the client stopped reading.
    open: bool,
}

impl Writer {
    fn new(out: mpsc::Sender<Result<Record>>, full: bool) -> Self {
        let part = |name, included| Part { name, records: 0, hash: Sha256::new(), included };
        let parts = vec![
            part("subject", full),
            part("collections", true),
            part("chunks", full),
            part("sources", full),
            part("jobs", true),
            part("log", true),
        ];
        Self { out, parts, full, open: true }
    }

    /// Counts and hashes `value` into `part`, and sends it when the key may
    /// see the part. False when the client has gone.
    async fn emit(&mut self, part: &'static str, value: &Value) -> bool {
        let json = value.to_string();
        let Some(p) = self.parts.iter_mut().find(|p| p.name == part) else { return self.open };
        p.records += 1;
        p.hash.update(json.as_bytes());
        p.hash.update(b"\n");
        // A reader that takes nothing for `STALL` (as a ledger export's) has
        // gone as far as the export is concerned: it ends, logged as
        // incomplete, rather than holding its connection for as long.
        if p.included {
            let sent = tokio::time::timeout(crate::restore::ledger::STALL, self.out.send(Ok(Record { part, json })));
            if !matches!(sent.await, Ok(Ok(()))) {
                self.open = false;
            }
        }
        self.open
    }

    fn summary(&self) -> Vec<Value> {
        self.parts
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "records": p.records,
                    "sha256": hex::encode(p.hash.clone().finalize()),
                    "included": p.included,
                })
            })
            .collect()
    }
}

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn kind_name(k: KeyKind) -> &'static str {
    match k {
        KeyKind::Secret => "secret",
        KeyKind::Publishable => "publishable",
        KeyKind::Auditor => "auditor",
    }
}

/// Streams the export of `subject` into `out`, then logs it and sends the
/// manifest. A failure is sent to `out` as the stream's last item (after
/// the export was logged as incomplete, when anything was read).
pub async fn run(ctx: Context, principal: Principal, subject: ExternalId, out: mpsc::Sender<Result<Record>>) {
    let mut w = Writer::new(out.clone(), principal.kind == KeyKind::Secret);
    if let Err(e) = export(&ctx, &principal, &subject, &mut w).await {
        tracing::warn!(error.cause_chain = ?e, "export failed");
        let _ = out.send(Err(e)).await;
    }
}

/// Emits every part but the manifest; whether the client read them all
/// (false when it stopped reading).
async fn emit_parts(
    ctx: &Context,
    (tenant_id, subject, hash): (Uuid, &ExternalId, &[u8]),
    row: Option<&lineage::SubjectRow>,
    collections: &[CollectionSpec],
    state: &str,
    w: &mut Writer,
) -> Result<bool> {
    let mut subject_doc = json!({ "subject_id": subject.as_str(), "state": state });
    if let Some(r) = &row {
        let detail = rows::subject_detail(&ctx.pool, r.subject_id).await?;
        let identifiers: Vec<Value> = rows::identifiers(&ctx.pool, r.subject_id)
            .await?
            .into_iter()
            .map(|(kind, value)| json!({ "kind": kind, "value": value }))
            .collect();
        subject_doc["legal_hold"] = json!(r.legal_hold);
        subject_doc["legal_hold_reason"] = json!(r.legal_hold_reason);
        subject_doc["created_at"] = json!(detail.as_ref().map(|d| time(d.created_at)));
        subject_doc["erased_at"] = json!(detail.as_ref().and_then(|d| d.erased_at).map(time));
        subject_doc["identifiers"] = Value::Array(identifiers);
    }
    let mut go = w.emit("subject", &subject_doc).await;

    if go {
        let (_, counts) = crate::erasure::count_subject(ctx, tenant_id, subject).await?;
        for c in &counts {
            let attached = collections.iter().any(|s| s.name.as_str() == c.collection && s.is_attached());
            let doc = json!({
                "collection": c.collection, "backend": c.backend, "attached": attached,
                "by_tag": c.by_tag, "by_lineage_ids": c.by_ids, "total": c.total,
            });
            if !w.emit("collections", &doc).await {
                go = false;
                break;
            }
        }
    }

    if let (true, Some(r)) = (go, row) {
        go = chunks_and_sources(ctx, r.subject_id, collections, w).await?;
        if go {
            for j in rows::jobs(&ctx.pool, r.subject_id).await? {
                let doc = json!({
                    "job_id": j.job_id, "status": j.status, "stage": j.stage, "requested_by": j.requested_by,
                    "reason": j.reason, "received_at": time(j.received_at), "completed_at": j.completed_at.map(time),
                    "deadline": time(j.deadline),
                });
                if !w.emit("jobs", &doc).await {
                    go = false;
                    break;
                }
            }
        }
    }
    if go {
        for e in rows::log_entries(&ctx.pool, tenant_id, hash).await? {
            let body: Value = serde_json::from_str(&e.body).unwrap_or(Value::String(e.body.clone()));
            let doc = json!({
                "seq": e.seq, "kind": e.kind, "job_id": e.job_id, "created_at": time(e.created_at),
                "entry_hash": hex::encode(&e.entry_hash), "body": body,
            });
            if !w.emit("log", &doc).await {
                go = false;
                break;
            }
        }
    }

    Ok(go)
}

async fn export(ctx: &Context, principal: &Principal, subject: &ExternalId, w: &mut Writer) -> Result<()> {
    let tenant_id = principal.tenant_id;
    let hash = ctx.keyed_hash(tenant_id, subject.as_str()).await?;
    let row = lineage::subject_by_hash(&ctx.pool, tenant_id, &hash).await?;
    let collections = lineage::list_collections(&ctx.pool, tenant_id).await?;

    let state = row.as_ref().map_or("unknown", |r| r.state().as_str());
    // A failure midway still logs the export: what was read left Lethe.
    let emitted = emit_parts(ctx, (tenant_id, subject, &hash), row.as_ref(), &collections, state, w).await;
    let go = matches!(emitted, Ok(true));

    // Logged whether or not the client read to the end: what was read left Lethe.
    // The log outlives the person: a plain hash of a part (the subject part of
    // an unknown id is two known fields) would let a reader of the log test a
    // guessed id, so the entry keeps the parts' hashes keyed with the tenant's
    // key (`sha256_keyed`: HMAC of the manifest's hex SHA-256).
    let parts = w.summary();
    let mut logged_parts = Vec::with_capacity(parts.len());
    for p in &parts {
        let plain = p["sha256"].as_str().unwrap_or_default();
        let keyed = hex::encode(ctx.keyed_hash(tenant_id, plain).await?);
        logged_parts.push(json!({
            "name": p["name"], "records": p["records"], "included": p["included"], "sha256_keyed": keyed,
        }));
    }
    let entry = json!({
        "requested_by": { "key_id": principal.key_id, "kind": kind_name(principal.kind) },
        "complete": go,
        "texts_included": w.full,
        "parts": logged_parts,
    });
    let mut tx = ctx.pool.begin().await.map_err(crate::store::StoreError::from)?;
    let (logged, _) = crate::audit::append(&mut tx, &ctx.signer, tenant_id, "export", None, Some(&hash), &entry).await?;
    tx.commit().await.map_err(crate::store::StoreError::from)?;
    emitted?;
    if !go {
        return Ok(());
    }
    let manifest = json!({
        "format": "lethe-export/1",
        "subject_id": subject.as_str(),
        "state": state,
        "generated_at": time(logged.created_at),
        "texts_included": w.full,
        "parts": parts,
        "log_seq": logged.seq,
        "log_entry_hash": hex::encode(&logged.entry_hash),
    });
    let _ = w.out.send(Ok(Record { part: "manifest", json: manifest.to_string() })).await;
    Ok(())
}

/// A source as the `sources` part shows it.
struct SourceDoc {
    collection: String,
    external_id: String,
    uri: String,
    kind: String,
    created_at: DateTime<Utc>,
    chunks: u64,
}

/// Emits the subject's chunks page by page, then their sources; false when
/// the client has gone.
async fn chunks_and_sources(ctx: &Context, subject_id: Uuid, collections: &[CollectionSpec], w: &mut Writer) -> Result<bool> {
    let by_id: BTreeMap<Uuid, &CollectionSpec> = collections.iter().map(|c| (c.collection_id, c)).collect();
    let mut sources: BTreeMap<(String, String), SourceDoc> = BTreeMap::new();
    let mut after = None;
    loop {
        let page = rows::chunks_after(&ctx.pool, subject_id, after, PAGE).await?;
        for c in &page {
            let Some(spec) = by_id.get(&c.collection_id) else { continue };
            if !w.emit("chunks", &chunk_doc(spec, c)).await {
                return Ok(false);
            }
            let key = (spec.name.to_string(), c.source_external_id.clone());
            sources
                .entry(key)
                .or_insert_with(|| SourceDoc {
                    collection: spec.name.to_string(),
                    external_id: c.source_external_id.clone(),
                    uri: c.source_uri.clone(),
                    kind: c.source_kind.clone(),
                    created_at: c.source_created_at,
                    chunks: 0,
                })
                .chunks += 1;
        }
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = Some((last.collection_id, last.chunk_id)),
            _ => break,
        }
    }
    for s in sources.values() {
        let doc = json!({
            "collection": s.collection, "source_id": s.external_id, "uri": s.uri, "kind": s.kind,
            "created_at": time(s.created_at), "chunks": s.chunks,
        });
        if !w.emit("sources", &doc).await {
            return Ok(false);
        }
    }
    Ok(true)
}

fn chunk_doc(spec: &CollectionSpec, c: &ExportChunk) -> Value {
    // The id the backend knows the point by: Lethe's own collections use the
    // chunk id; an attached store its own (a text id kept aside, or one
    // derived from the lineage key).
    let point_id = match &spec.mapping {
        Some(m) => c
            .native_id
            .clone()
            .or_else(|| NativeId::from_key(m.id_kind, c.chunk_id).map(|n| n.as_string()))
            .unwrap_or_else(|| c.chunk_id.to_string()),
        None => c.chunk_id.to_string(),
    };
    json!({
        "collection": spec.name.as_str(),
        "backend": spec.backend.to_string(),
        "source_id": c.source_external_id,
        "ordinal": c.ordinal,
        "point_id": point_id,
        "role": c.role,
        // Others' data may be in it: whoever hands the export over can
        // review those before they do (GDPR Art. 15(4)).
        "shared": c.shared,
        "text": c.text,
        "text_stored": c.text.is_some(),
        "created_at": time(c.created_at),
    })
}
