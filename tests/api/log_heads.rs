//! What a certificate and the log say can be checked by someone who does not
//! trust Lethe's database: every column shown is under the entry hash, every
//! head is signed, a pinned head catches a shortened log, certificates are
//! append-only and checked against a pinned key only.

use base64::Engine;
use lethe::grpc::pb;
use tonic::Code;

use crate::helpers::*;

fn pinned_key(app: &TestApp) -> String {
    let signer = lethe::audit::Signer::load(&app.settings.audit.signing_key_file, false, &[]).expect("the app's key");
    base64::engine::general_purpose::STANDARD.encode(signer.public_key())
}

async fn verify(app: &TestApp, pin: Option<(u64, &str)>) -> pb::VerifyDeletionLogResponse {
    let (pinned_size, pinned_head_hash) = pin.map_or((0, String::new()), |(s, h)| (s, h.to_owned()));
    app.client
        .clone()
        .verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest { pinned_size, pinned_head_hash }))
        .await
        .unwrap()
        .into_inner()
}

/// Tampering as someone with the database's superuser would.
async fn as_superuser(app: &TestApp, sql: &str) {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::query("ALTER TABLE deletion_log DISABLE TRIGGER deletion_log_no_update").execute(&mut *tx).await.unwrap();
    sqlx::raw_sql(sql).execute(&mut *tx).await.unwrap();
    sqlx::query("ALTER TABLE deletion_log ENABLE TRIGGER deletion_log_no_update").execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
}

async fn erase(app: &TestApp, who: &str) -> pb::ErasureJob {
    let done = app.wait_for_job(&app.erase(who).await.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    done
}

#[tokio::test]
async fn a_removed_refusal_is_caught_by_the_head_its_requester_kept() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 1)]).await;
    erase(&app, "bob").await;
    // What a careful tamperer saves: the signed head of the log before the refusal.
    sqlx::query("CREATE TABLE saved_head AS SELECT * FROM deletion_log_heads").execute(&app.pool).await.unwrap();
    let mut client = app.client.clone();
    let hold = pb::SetLegalHoldRequest { subject_id: "ann".into(), hold: true, reason: "case 7".into() };
    client.set_legal_hold(req(&app.keys.sk, hold)).await.unwrap();
    let refused = app.erase_with(pb::EraseRequest { subject: Some(person("ann")), ..Default::default() }).await.unwrap_err();
    assert_eq!((refused.code(), reason(&refused)), (Code::FailedPrecondition, "legal_hold".into()));
    // The refusal comes with the signed head that covers it, verifiable offline.
    let statement = error_metadata(&refused, "log_head_statement").expect("signed head in the refusal");
    let signature = error_metadata(&refused, "log_head_signature").expect("signature");
    lethe::audit::verify_pinned(&statement, &signature, &[pinned_key(&app)]).expect("signed by the pinned key");
    let size: u64 = error_metadata(&refused, "log_size").unwrap().parse().unwrap();
    let hash = error_metadata(&refused, "log_head_hash").unwrap();
    assert_eq!(size, 2);
    assert!(verify(&app, Some((size, &hash))).await.valid);

    // Someone removes the refusal and moves the stored head back to entry 1,
    // unsigned: the head's signature gives it away.
    as_superuser(
        &app,
        "DELETE FROM deletion_log WHERE kind = 'refusal';
         UPDATE deletion_log_heads h SET seq = 1, entry_hash = l.entry_hash FROM deletion_log l WHERE l.seq = 1",
    )
    .await;
    let unpinned = verify(&app, None).await;
    assert!(!unpinned.valid && unpinned.problem.contains("not signed"), "{unpinned:?}");
    // With the head saved before the refusal put back, the log is consistent
    // and signed again: only the head the requester kept shows what is missing.
    sqlx::query("UPDATE deletion_log_heads h SET signed_at = s.signed_at, key_id = s.key_id, signature = s.signature FROM saved_head s")
        .execute(&app.pool)
        .await
        .unwrap();
    assert!(verify(&app, None).await.valid, "indistinguishable without a pin");
    let pinned = verify(&app, Some((size, &hash))).await;
    assert!(!pinned.valid);
    assert!(pinned.problem.contains("shortened"), "{}", pinned.problem);
}

#[tokio::test]
async fn every_column_shown_is_covered_by_the_entry_hash() {
    for sql in [
        "UPDATE deletion_log SET kind = 'refusal' WHERE seq = 1",
        "UPDATE deletion_log SET created_at = created_at - interval '1 day' WHERE seq = 1",
        "UPDATE deletion_log SET job_id = gen_random_uuid() WHERE seq = 1",
        "UPDATE deletion_log SET subject_hash = sha256(subject_hash) WHERE seq = 1",
        "UPDATE deletion_log SET hash_version = 1 WHERE seq = 1",
    ] {
        let app = spawn_app().await;
        let c = app.create_collection("mail", pb::Backend::Pgvector).await;
        app.ingest_people(&c.name, &[("ann", 1), ("bob", 1)]).await;
        erase(&app, "ann").await;
        erase(&app, "bob").await;
        assert!(verify(&app, None).await.valid);
        as_superuser(&app, sql).await;
        let v = verify(&app, None).await;
        assert!(!v.valid, "{sql}");
        assert_eq!(v.first_bad_seq, 1, "{sql}: {}", v.problem);
    }
}

#[tokio::test]
async fn heads_are_signed_and_listed_with_the_entries() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 1)]).await;
    erase(&app, "ann").await;
    let log = app
        .client
        .clone()
        .list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest::default()))
        .await
        .unwrap()
        .into_inner();
    let head = log.head.expect("a signed head");
    assert_eq!((head.size, head.head_hash.as_str()), (1, log.entries[0].entry_hash.as_str()));
    assert_eq!(log.entries[0].hash_version, 2);
    lethe::audit::verify_pinned(&head.statement, &head.signature, &[pinned_key(&app)]).expect("signed");
    // A forged signature on the stored head is caught.
    sqlx::query("UPDATE deletion_log_heads SET signature = sha256(signature) || sha256(signature)")
        .execute(&app.pool)
        .await
        .unwrap();
    let v = verify(&app, None).await;
    assert!(!v.valid && v.problem.contains("not signed"), "{v:?}");
    // A pin that is not in the chain is caught.
    let bad = verify(&app, Some((1, &"ab".repeat(32)))).await;
    assert!(!bad.valid);
    let err = app
        .client
        .clone()
        .verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest { pinned_size: 1, pinned_head_hash: "xyz".into() }))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}

#[tokio::test]
async fn certificates_are_append_only_and_checked_against_a_pinned_key() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 1)]).await;
    let job = erase(&app, "ann").await;
    let cert = app
        .client
        .clone()
        .get_certificate(req(&app.keys.ak, pb::GetCertificateRequest { job_id: job.job_id.clone() }))
        .await
        .unwrap()
        .into_inner();
    let body: serde_json::Value = serde_json::from_str(&cert.body).unwrap();
    assert_eq!(body["key_id"].as_str(), Some(cert.key_id.as_str()));
    let json = serde_json::json!({ "body": cert.body, "signature": cert.signature, "public_key": cert.public_key }).to_string();
    let pin = pinned_key(&app);
    assert_eq!(lethe::cli::verify_certificate_json(&json, std::slice::from_ref(&pin)).unwrap(), cert.key_id);
    assert!(lethe::cli::verify_certificate_json(&json, &[]).is_err(), "no pin, no verdict");
    // The file's job must be the body's; and a log head, signed by the same
    // key, is no certificate.
    let other = serde_json::json!({ "job_id": uuid::Uuid::new_v4().to_string(), "body": cert.body, "signature": cert.signature });
    let err = lethe::cli::verify_certificate_json(&other.to_string(), std::slice::from_ref(&pin)).unwrap_err();
    assert!(err.to_string().contains("is for job"), "{err}");
    let log = app.client.clone().list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest::default())).await.unwrap();
    let head = log.into_inner().head.expect("a signed head");
    let head_as_cert = serde_json::json!({ "body": head.statement, "signature": head.signature }).to_string();
    let err = lethe::cli::verify_certificate_json(&head_as_cert, std::slice::from_ref(&pin)).unwrap_err();
    assert!(err.to_string().contains("not an erasure certificate"), "{err}");

    // A self-made key pair signs a forged body "validly": the pin refuses it.
    let dir = tempfile::tempdir().unwrap();
    let forger = lethe::audit::Signer::load(&dir.path().join("k.pem"), true, &[]).unwrap();
    let forged_body = cert.body.replace("\"deleted\":1", "\"deleted\":100");
    let b64 = base64::engine::general_purpose::STANDARD;
    let forged = serde_json::json!({
        "body": forged_body,
        "signature": b64.encode(forger.sign(&forged_body)),
        "public_key": b64.encode(forger.public_key()),
    })
    .to_string();
    assert!(lethe::cli::verify_certificate_json(&forged, &[pin]).is_err());

    for sql in ["UPDATE certificates SET body = '{}'", "DELETE FROM certificates"] {
        let err = sqlx::query(sql).execute(&app.pool).await.unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
}

/// A log rewritten as hash version 1 (which covers only the predecessor and
/// the body) with its head's signature removed and its certificates gone was
/// verified as valid: version-1 heads were not required to be signed. Heads
/// of logs that ended before signing began are signed once, at the upgrade;
/// a head unsigned after that is never signed again by a restart.
#[tokio::test]
async fn a_log_rewritten_as_version_1_with_an_unsigned_head_is_not_valid() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 1)]).await;
    erase(&app, "ann").await;
    assert!(verify(&app, None).await.valid);
    let unsign = "UPDATE deletion_log_heads SET signature = NULL, key_id = NULL, signed_at = NULL";
    as_superuser(
        &app,
        &format!(
            "UPDATE deletion_log SET body = replace(body, '\"deleted\":1', '\"deleted\":100'), hash_version = 1 WHERE seq = 1;
             UPDATE deletion_log SET entry_hash = sha256(convert_to(encode(prev_hash, 'hex') || E'\\n' || body, 'UTF8')) WHERE seq = 1;
             UPDATE deletion_log_heads h SET entry_hash = l.entry_hash FROM deletion_log l WHERE l.seq = 1 AND l.tenant_id = h.tenant_id;
             {unsign};
             ALTER TABLE certificates DISABLE TRIGGER certificates_no_update;
             DELETE FROM certificates;
             ALTER TABLE certificates ENABLE TRIGGER certificates_no_update;"
        ),
    )
    .await;
    let v = verify(&app, None).await;
    assert!(!v.valid && v.problem.contains("not signed"), "{v:?}");
    // The upgrade was done when the service started: a restart signs nothing.
    assert_eq!(lethe::audit::sign_unsigned_heads_once(&app.pool, &app.ctx.signer).await.unwrap(), 0);
    assert!(!verify(&app, None).await.valid);

    // A database from before signed heads (no upgrade recorded, an unsigned
    // head of a version-1 log): the first start signs it, once.
    as_superuser(
        &app,
        "ALTER TABLE audit_upgrades DISABLE TRIGGER audit_upgrades_no_update; DELETE FROM audit_upgrades;
         ALTER TABLE audit_upgrades ENABLE TRIGGER audit_upgrades_no_update;",
    )
    .await;
    // A version-2 log's head without its signature is not one from before
    // signing: the upgrade leaves it unsigned.
    let other = spawn_app().await;
    let c = other.create_collection("mail", pb::Backend::Pgvector).await;
    other.ingest_people(&c.name, &[("bob", 1)]).await;
    erase(&other, "bob").await;
    as_superuser(&other, unsign).await;
    as_superuser(
        &other,
        "ALTER TABLE audit_upgrades DISABLE TRIGGER audit_upgrades_no_update; DELETE FROM audit_upgrades;
         ALTER TABLE audit_upgrades ENABLE TRIGGER audit_upgrades_no_update;",
    )
    .await;
    assert_eq!(lethe::audit::sign_unsigned_heads_once(&other.pool, &other.ctx.signer).await.unwrap(), 0);
    assert!(!verify(&other, None).await.valid);
    assert_eq!(lethe::audit::sign_unsigned_heads_once(&app.pool, &app.ctx.signer).await.unwrap(), 1);
    assert!(verify(&app, None).await.valid, "a version-1 log with its head signed at the upgrade");
    as_superuser(&app, unsign).await;
    assert_eq!(lethe::audit::sign_unsigned_heads_once(&app.pool, &app.ctx.signer).await.unwrap(), 0);
    assert!(!verify(&app, None).await.valid);
}

/// Every certificate claims the chain's head at its job's completion; a
/// certificate whose claimed entry is not in the tenant's log (rewritten to
/// another hash, or a body that is no JSON at all) makes the log invalid,
/// naming the oldest such job, and is reported, not an error of the service.
#[tokio::test]
async fn a_certificate_claiming_an_entry_off_the_log_makes_it_invalid() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 1), ("bob", 1)]).await;
    let ann = erase(&app, "ann").await;
    let bob = erase(&app, "bob").await;
    assert!(verify(&app, None).await.valid);
    let rewrite = |job: &str, body: &str| {
        format!(
            "ALTER TABLE certificates DISABLE TRIGGER certificates_no_update;
             UPDATE certificates SET body = {body} WHERE job_id = '{job}';
             ALTER TABLE certificates ENABLE TRIGGER certificates_no_update;"
        )
    };
    let zeros = format!("replace(body, (body::jsonb ->> 'log_entry_hash'), '{}')", "0".repeat(64));
    as_superuser(&app, &rewrite(&bob.job_id, &zeros)).await;
    let v = verify(&app, None).await;
    assert!(!v.valid && v.problem == format!("the log entry certified for job {} is not in the chain", bob.job_id), "{v:?}");
    assert_eq!(v.entries_checked, 2, "the chain itself is whole");
    as_superuser(&app, &rewrite(&ann.job_id, "'not json'")).await;
    let v = verify(&app, None).await;
    assert!(!v.valid && v.problem.contains(&ann.job_id), "the older of the two: {v:?}");
}
