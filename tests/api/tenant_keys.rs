//! The tenants' HMAC keys live outside the database (issue 12 item 9): a dump
//! of every table cannot give the key or recompute a subject's keyed hash,
//! and master key rotation (and moving an earlier version's in-database key
//! out) keeps erased people suppressed.

use base64::Engine;
use hmac::{Hmac, Mac};
use lethe::grpc::pb::{self, lethe_client::LetheClient};
use sha2::Sha256;

use crate::helpers::*;

fn hmac(key: &[u8], value: &str) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    mac.update(value.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// Runs of at least `min` characters of `alphabet` in `text`.
fn runs(text: &str, min: usize, alphabet: impl Fn(char) -> bool) -> Vec<&str> {
    text.split(|c: char| !alphabet(c)).filter(|r| r.len() >= min).collect()
}

/// Every byte string a dump shows or encodes: bytea values, text, and what
/// hex or base64 inside any text decodes to.
fn decoded_values(json: &serde_json::Value, out: &mut Vec<Vec<u8>>) {
    match json {
        serde_json::Value::String(s) => {
            out.push(s.as_bytes().to_vec());
            for r in runs(s, 32, |c| c.is_ascii_hexdigit()) {
                let even = &r[..r.len() - r.len() % 2];
                out.extend(hex::decode(even));
            }
            for r in runs(s, 43, |c| c.is_ascii_alphanumeric() || "+/-_=".contains(c)) {
                let r = r.trim_end_matches('=');
                out.extend(base64::engine::general_purpose::STANDARD_NO_PAD.decode(r));
                out.extend(base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(r));
            }
            if let Ok(inner) = serde_json::from_str::<serde_json::Value>(s)
                && !inner.is_string()
            {
                decoded_values(&inner, out);
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| decoded_values(v, out)),
        serde_json::Value::Object(o) => o.values().for_each(|v| decoded_values(v, out)),
        _ => {}
    }
}

/// Every row of every table of the app's database, as JSON.
async fn dump(app: &TestApp) -> Vec<serde_json::Value> {
    let tables: Vec<String> = sqlx::query_scalar("SELECT tablename::text FROM pg_tables WHERE schemaname = 'public'")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert!(tables.len() > 15, "{tables:?}");
    let mut rows = Vec::new();
    for t in tables {
        let q = format!("SELECT to_jsonb(t) FROM \"{t}\" t");
        rows.extend(sqlx::query_scalar::<_, serde_json::Value>(&q).fetch_all(&app.pool).await.unwrap());
    }
    rows
}

async fn erase_ann(app: &TestApp) -> pb::Collection {
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let ann = pb::SubjectRef {
        id: "ann".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "ann@example.com".into() }],
    };
    app.client.clone().put_subject(req(&app.keys.sk, pb::PutSubjectRequest { subject: Some(ann) })).await.unwrap();
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 2)]).await;
    let done = app.wait_for_job(&app.erase("ann").await.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{done:?}");
    c
}

#[tokio::test]
async fn a_dump_of_every_table_gives_neither_the_hmac_key_nor_a_subject_hash() {
    let app = spawn_app().await;
    erase_ann(&app).await;
    let key = app.ctx.tenant_secret(app.keys.tenant_id).await.unwrap();
    let tombstone: Vec<u8> =
        sqlx::query_scalar("SELECT subject_hash FROM subjects WHERE tenant_id = $1 AND state = 'erased'")
            .bind(app.keys.tenant_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(hmac(&key, "ann"), tombstone, "the tombstone is the keyed hash under the tenant's key");

    let mut values = Vec::new();
    for row in dump(&app).await {
        decoded_values(&row, &mut values);
    }
    let (hex_key, b64_key) = (hex::encode(&**key), base64::engine::general_purpose::STANDARD_NO_PAD.encode(&**key));
    for v in &values {
        assert!(!v.windows(key.len()).any(|w| w == key.as_slice()), "the key's bytes are in the dump");
        let text = String::from_utf8_lossy(v);
        assert!(!text.contains(&hex_key) && !text.contains(&b64_key), "the key is in the dump, encoded");
    }
    // Whatever in the dump is taken for the key, ann's tombstone cannot be
    // recomputed: every value, and every 32-byte piece of every value.
    let mut tried = 0;
    for v in &values {
        let pieces = if (32..=4096).contains(&v.len()) { v.windows(32).collect() } else { Vec::new() };
        for candidate in std::iter::once(v.as_slice()).chain(pieces) {
            assert_ne!(hmac(candidate, "ann"), tombstone, "a value of the dump is the HMAC key");
            tried += 1;
        }
    }
    assert!(tried > 1000, "the dump was searched ({tried} candidates)");
}

/// A second Lethe on the app's database, with `settings` (a restart).
async fn restart(settings: lethe::config::Settings) -> (LetheClient<tonic::transport::Channel>, lethe::context::Context, tokio::sync::oneshot::Sender<()>) {
    let embedder = lethe::startup::embedder(&settings).unwrap();
    let app = lethe::startup::Application::build_with_embedder(settings, embedder).await.expect("restarts");
    let (addr, ctx) = (app.addr(), app.context().clone());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    (LetheClient::connect(format!("http://{addr}")).await.unwrap(), ctx, stop)
}

/// ann is still suppressed and bob is not, through `client`.
async fn assert_ann_suppressed(client: &mut LetheClient<tonic::transport::Channel>, app: &TestApp, collection: &str) {
    let chunks = vec![chunk("late-ann", 0, "a late note by ann", &["ann"]), chunk("late-bob", 0, "a late note by bob", &["bob"])];
    let r = pb::IngestRequest { collection: collection.into(), chunks, subjects: vec![] };
    let w = client.ingest(req(&app.keys.sk, r)).await.expect("ingest").into_inner();
    assert_eq!((w.accepted, w.suppressed), (1, 1), "{w:?}");
    let again = pb::SubjectRef {
        id: "ann-2".into(),
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "ann@example.com".into() }],
    };
    let err = client.put_subject(req(&app.keys.sk, pb::PutSubjectRequest { subject: Some(again) })).await.unwrap_err();
    assert_eq!(reason(&err), "subject_suppressed", "her e-mail under a new id: {err:?}");
}

#[tokio::test]
async fn after_master_key_rotation_an_erased_subject_is_still_suppressed() {
    let app = spawn_app().await;
    let c = erase_ann(&app).await;
    let key = app.ctx.tenant_secret(app.keys.tenant_id).await.unwrap();

    let (version, rewrapped) = lethe::keys::rotate(&app.pool, &app.settings.keys).await.unwrap();
    assert_eq!((version, rewrapped), (2, 1));
    let (removed, kept) = lethe::keys::retire(&app.pool, &app.settings.keys).await.unwrap();
    assert_eq!(removed, vec![1]);
    let kept: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(kept.expect("kept beside it")).unwrap()).unwrap();
    assert!(kept["keys"].get("1").is_some(), "version 1 is kept apart until the operator deletes it: {kept}");
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&app.settings.keys.master_key_file).unwrap()).unwrap();
    assert_eq!(file["current"], 2);
    assert!(file["keys"].get("1").is_none(), "version 1 is gone: {file}");
    let stored: i32 = sqlx::query_scalar("SELECT hmac_key_version FROM tenants WHERE tenant_id = $1")
        .bind(app.keys.tenant_id)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored, 2);

    // A server started now knows only version 2.
    let (mut client, ctx, _stop) = restart(app.settings.clone()).await;
    assert_eq!(ctx.tenant_secret(app.keys.tenant_id).await.unwrap(), key, "the tenant key itself did not change");
    assert_ann_suppressed(&mut client, &app, &c.name).await;
}

#[tokio::test]
async fn a_key_stored_in_the_database_by_an_earlier_version_is_moved_out_and_keeps_working() {
    let app = spawn_app().await;
    let c = erase_ann(&app).await;
    let key = app.ctx.tenant_secret(app.keys.tenant_id).await.unwrap();
    // How earlier versions kept it: in clear, nothing wrapped.
    sqlx::query("UPDATE tenants SET hmac_secret = $2, hmac_key_wrapped = NULL, hmac_key_version = NULL WHERE tenant_id = $1")
        .bind(app.keys.tenant_id)
        .bind(&**key)
        .execute(&app.pool)
        .await
        .unwrap();

    // The upgraded server, with a master key file of its own.
    let dir = tempfile::tempdir().unwrap();
    let mut settings = app.settings.clone();
    settings.keys.master_key_file = dir.path().join("master_keys.json");
    let (mut client, ctx, _stop) = restart(settings).await;
    let (legacy, wrapped): (Option<Vec<u8>>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT hmac_secret, hmac_key_wrapped FROM tenants WHERE tenant_id = $1")
            .bind(app.keys.tenant_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(legacy.is_none(), "the plaintext key left the database at start");
    assert!(wrapped.is_some_and(|w| !w.windows(32).any(|x| x == key.as_slice())));
    assert_eq!(ctx.tenant_secret(app.keys.tenant_id).await.unwrap(), key);
    assert_ann_suppressed(&mut client, &app, &c.name).await;
}

/// A master key file that is not the one the tenant keys were wrapped with
/// stops the service at start, with a message naming the setting: a missing
/// file is not made for a database whose keys are wrapped (a wrong path made
/// a new key, and every call that needed a tenant key failed as INTERNAL
/// behind a healthy service), and another file is refused. Rotation refuses
/// them too, and writes no file.
#[tokio::test]
async fn a_wrong_master_key_file_stops_the_service_at_start() {
    let app = spawn_app().await;
    erase_ann(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let mut missing = app.settings.clone();
    missing.keys.master_key_file = dir.path().join("wrong-mount/master.json");
    let err = lethe::keys::checked_provider(&app.pool, &missing.keys).await.err().expect("a missing file");
    let text = format!("{err:#}");
    assert!(text.contains("master_key_file") && text.contains("does not exist"), "{text}");
    assert!(!missing.keys.master_key_file.exists(), "no new key was made");
    assert!(lethe::keys::rotate(&app.pool, &missing.keys).await.is_err());
    assert!(!missing.keys.master_key_file.exists(), "rotate made no file either");

    let mut other = app.settings.clone();
    other.keys.master_key_file = dir.path().join("other.json");
    lethe::keys::provider(&other.keys).unwrap();
    let err = lethe::keys::checked_provider(&app.pool, &other.keys).await.err().expect("another file");
    let text = format!("{err:#}");
    assert!(text.contains("does not open this database's tenant keys"), "{text}");
    let started = lethe::startup::Application::build_with_embedder(other, app.ctx.embedder.clone()).await;
    assert!(started.is_err(), "the service does not start");
    lethe::keys::checked_provider(&app.pool, &app.settings.keys).await.expect("the right file opens them");
}
