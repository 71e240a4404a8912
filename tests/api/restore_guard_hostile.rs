//! Restore guard against a hostile or careless caller: altered, truncated
//! or foreign ledgers change nothing; keys of the wrong kind are refused;
//! a reconcile with nothing to find still logs its zeros.

use lethe::grpc::pb;
use tonic::Code;

use crate::helpers::*;
use crate::restore_guard::{counts, entries, erase_completed, import_ledger, reconcile};

async fn export(app: &TestApp) -> Vec<u8> {
    let mut stream = app.client.clone().export_ledger(req(&app.keys.sk, pb::ExportLedgerRequest {})).await.expect("export").into_inner();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.message().await.expect("chunk") {
        bytes.extend(chunk.data);
    }
    bytes
}

/// (erased points, erased subjects, log entries) of the app's tenant.
async fn state(app: &TestApp) -> (i64, i64, i64) {
    sqlx::query_as(
        "SELECT (SELECT count(*) FROM erased_points WHERE tenant_id = $1), \
                (SELECT count(*) FROM subjects WHERE tenant_id = $1 AND state = 'erased'), \
                (SELECT count(*) FROM deletion_log WHERE tenant_id = $1)",
    )
    .bind(app.keys.tenant_id)
    .fetch_one(&app.pool)
    .await
    .expect("state")
}

fn refused(r: Result<pb::ImportLedgerResponse, tonic::Status>) -> (Code, String) {
    let e = r.expect_err("the ledger must be refused");
    assert!(!e.message().to_lowercase().contains("alice"), "{e:?}");
    (e.code(), reason(&e))
}

#[tokio::test]
async fn altered_truncated_and_foreign_ledgers_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("alice", 3), ("bob", 1)]).await;
    erase_completed(&app, "alice").await;
    let ledger = export(&app).await;
    // As if a restore had lost them: the ledger's points are what an import would add.
    sqlx::query("DELETE FROM erased_point_sets WHERE tenant_id = $1").bind(app.keys.tenant_id).execute(&app.pool).await.unwrap();
    let before = state(&app).await;
    assert_eq!(before.0, 0);

    let text = String::from_utf8(ledger.clone()).unwrap();
    let points_line = text.lines().find(|l| l.contains("\"t\":\"points\"")).expect("a points line");
    let hash = points_line.split("\"points\":[\"").nth(1).expect("a hash")[..32].to_owned();
    let flipped = format!("{}{}", if hash.starts_with('0') { '1' } else { '0' }, &hash[1..]);
    let altered = text.replacen(&hash, &flipped, 1).into_bytes();
    let truncated: String = text.lines().take(text.lines().count() - 1).map(|l| format!("{l}\n")).collect();
    let without_points: String = text.lines().filter(|l| *l != points_line).map(|l| format!("{l}\n")).collect();
    for bad in [altered, truncated.into_bytes(), without_points.into_bytes(), b"{\"t\":\"header\"}\n".to_vec(), Vec::new()] {
        assert_eq!(refused(import_ledger(&app, &app.keys.sk, &bad).await), (Code::InvalidArgument, "invalid_argument".into()));
    }
    // Another tenant's secret key: its ledger is not this one.
    let other = new_tenant(&app.pool).await;
    let theirs = refused(import_ledger(&app, &other.sk, &ledger).await);
    assert_eq!(theirs, (Code::FailedPrecondition, "ledger_of_another_tenant".into()));
    // Another service (another signing key), whatever its tenant.
    let elsewhere = spawn_app().await;
    elsewhere.create_collection("mail", pb::Backend::Pgvector).await;
    let foreign = export(&elsewhere).await;
    assert_eq!(refused(import_ledger(&app, &app.keys.sk, &foreign).await), (Code::FailedPrecondition, "ledger_signed_by_another_key".into()));
    assert_eq!(state(&app).await, before, "nothing was written");

    // The intact ledger: its points come back once, and once only.
    let first = import_ledger(&app, &app.keys.sk, &ledger).await.expect("import");
    assert_eq!((first.subjects_known, first.points, first.points_added), (1, 3, 3), "{first:?}");
    assert!(first.log_seq > 0);
    let second = import_ledger(&app, &app.keys.sk, &ledger).await.expect("import again");
    assert_eq!((second.points_added, second.log_seq), (0, 0), "{second:?}");
    assert_eq!(state(&app).await, (3, 1, before.2 + 1), "one ledger_import entry");
}

#[tokio::test]
async fn only_a_secret_key_reconciles_exports_or_imports() {
    let app = spawn_app().await;
    let mut client = app.client.clone();
    for key in [&app.keys.ak, &app.keys.pk] {
        let e = client.reconcile(req(key, pb::ReconcileRequest::default())).await.expect_err("reconcile");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = client.export_ledger(req(key, pb::ExportLedgerRequest {})).await.expect_err("export");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
        let e = import_ledger(&app, key, b"{}").await.expect_err("import");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    let e = client.reconcile(req("sk_not_a_key", pb::ReconcileRequest::default())).await.expect_err("bad key");
    assert_eq!(e.code(), Code::Unauthenticated);
    let runs: i64 = sqlx::query_scalar("SELECT count(*) FROM reconcile_runs").fetch_one(&app.pool).await.unwrap();
    assert_eq!(runs, 0, "no run was queued");

    let long = pb::ReconcileRequest { requested_by: "x".repeat(300) };
    let e = client.reconcile(req(&app.keys.sk, long)).await.expect_err("too long");
    assert_eq!(e.code(), Code::InvalidArgument);
    let get = |id: &str| pb::GetReconcileRequest { run_id: id.into() };
    let e = client.get_reconcile(req(&app.keys.ak, get("not-a-uuid"))).await.expect_err("bad id");
    assert_eq!(e.code(), Code::InvalidArgument);
    let e = client.get_reconcile(req(&app.keys.ak, get(&uuid::Uuid::new_v4().to_string()))).await.expect_err("unknown");
    assert_eq!(e.code(), Code::NotFound);
    // Another tenant's run is not found either.
    let run = client.reconcile(req(&app.keys.sk, pb::ReconcileRequest::default())).await.expect("reconcile").into_inner();
    let other = new_tenant(&app.pool).await;
    let e = client.get_reconcile(req(&other.ak, get(&run.run_id))).await.expect_err("another tenant's run");
    assert_eq!(e.code(), Code::NotFound);
}

#[tokio::test]
async fn a_reconcile_with_nothing_to_find_logs_zeros_per_collection() {
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    app.create_collection("notes", pb::Backend::Qdrant).await;
    app.ingest_people("mail", &[("bob", 2)]).await;
    let run = reconcile(&app).await;
    assert_eq!((counts(&run, "mail"), counts(&run, "notes")), ((0, 0, 0), (0, 0, 0)));
    assert!(run.held_subject_hashes.is_empty() && run.error.is_empty());
    let logged = entries(&app, "reconcile").await;
    assert_eq!(logged.len(), 2, "one entry per collection");
    for (_, body) in logged {
        assert_eq!((body["came_back"].as_u64(), body["deleted"].as_u64(), body["after"].as_u64()), (Some(0), Some(0), Some(0)), "{body}");
    }
    assert_eq!(app.count_subject("bob").await.counts.iter().map(|c| c.before_total).sum::<u64>(), 2);
}

async fn lethe(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_lethe"))
        .args(args)
        .env("LETHE_URL", format!("http://{}", app.addr))
        .env("LETHE_SK", &app.keys.sk)
        .output()
        .await
        .expect("lethe runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[tokio::test]
async fn the_cli_reconciles_and_moves_the_ledger() {
    use crate::restore_guard::{back_up, by_tag, restore};
    let app = spawn_app().await;
    let mail = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("alice", 3), ("bob", 1)]).await;
    back_up(&app, &mail.backend_name, "backup_mail").await;
    erase_completed(&app, "alice").await;
    restore(&app, &mail.backend_name, "backup_mail").await;

    let (ok, stdout, stderr) = lethe(&app, &["reconcile", "--requested-by", "restore of the 30th"]).await;
    assert!(ok, "{stdout}\n{stderr}");
    println!("{stdout}");
    assert!(stdout.contains("came back      3 (tag 3, lineage 0, ledger 3)"), "{stdout}");
    assert!(stdout.contains("3 points came back and were deleted"), "{stdout}");
    assert!(!stdout.to_lowercase().contains("alice"), "{stdout}");
    assert_eq!(by_tag(&app, "alice", "mail").await, 0);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ledger.jsonl");
    let (ok, _, stderr) = lethe(&app, &["ledger", "export", "--out", file.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    assert!(std::fs::read_to_string(&file).unwrap().lines().count() >= 4);
    let (ok, stdout, stderr) = lethe(&app, &["ledger", "import", file.to_str().unwrap()]).await;
    assert!(ok, "{stderr}");
    assert!(stdout.contains("1 subjects (0 new tombstones, 0 restored subjects erased again, 1 known"), "{stdout}");
    assert!(stdout.contains("nothing changed"), "{stdout}");
    std::fs::write(&file, std::fs::read_to_string(&file).unwrap().replacen("\"t\":\"subject\"", "\"t\":\"subject\" ", 1)).unwrap();
    let (ok, _, stderr) = lethe(&app, &["ledger", "import", file.to_str().unwrap()]).await;
    assert!(!ok && stderr.contains("InvalidArgument"), "{stderr}");
}

#[tokio::test]
async fn one_run_at_a_time_per_tenant_and_ledgers_over_the_limit_are_refused() {
    fn small(s: &mut lethe::config::Settings) {
        s.restore_guard.max_ledger_bytes = 64;
    }
    // No workers: the run stays queued, as while another replica works on it.
    let app = spawn_app_with(Options { no_workers: true, settings: Some(small), ..Options::default() }).await;
    let mut client = app.client.clone();
    let first = client.reconcile(req(&app.keys.sk, pb::ReconcileRequest::default())).await.expect("reconcile").into_inner();
    let second = client.reconcile(req(&app.keys.sk, pb::ReconcileRequest::default())).await.expect("again").into_inner();
    assert_eq!((first.already_running, second.already_running), (false, true));
    assert_eq!(first.run_id, second.run_id, "the queued run is returned, not a second one");
    assert_eq!(second.status, pb::JobStatus::Queued as i32);

    let ledger = export(&app).await;
    assert!(ledger.len() > 64);
    let e = import_ledger(&app, &app.keys.sk, &ledger).await.expect_err("too large");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("max_ledger_bytes"), "{e:?}");
}

/// A ledger set: (collection, job, cause, points).
type Set<P> = (uuid::Uuid, Option<uuid::Uuid>, String, P);

/// The ledger's sets of one tenant with their sizes, each set's points
/// checked sorted and distinct.
async fn sets(app: &TestApp) -> Vec<Set<usize>> {
    let rows: Vec<Set<Vec<Vec<u8>>>> = sqlx::query_as(
        "SELECT collection_id, job_id, cause, points FROM erased_point_sets WHERE tenant_id = $1 \
         ORDER BY collection_id, job_id NULLS FIRST, cause",
    )
    .bind(app.keys.tenant_id)
    .fetch_all(&app.pool)
    .await
    .expect("sets");
    rows.into_iter()
        .map(|(c, j, k, points)| {
            assert!(points.windows(2).all(|w| w[0] < w[1]), "sorted and distinct");
            assert!(points.iter().all(|p| p.len() == 16), "16-byte keyed hashes");
            (c, j, k, points.len())
        })
        .collect()
}

#[tokio::test]
async fn an_erasure_is_recorded_as_one_set_per_collection_and_a_point_once_per_group() {
    use lethe::store::ledger::{self, ErasedPoint};
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    app.create_collection("notes", pb::Backend::Pgvector).await;
    app.ingest_people("mail", &[("alice", 3), ("bob", 1)]).await;
    app.ingest_people("notes", &[("alice", 2)]).await;
    let job = erase_completed(&app, "alice").await;
    let job_id: uuid::Uuid = job.job_id.parse().unwrap();
    let id = |name: &'static str| {
        sqlx::query_scalar::<_, uuid::Uuid>("SELECT collection_id FROM collections WHERE tenant_id = $1 AND name = $2")
            .bind(app.keys.tenant_id)
            .bind(name)
            .fetch_one(&app.pool)
    };
    let (mail_id, notes_id) = (id("mail").await.unwrap(), id("notes").await.unwrap());
    let mut want = vec![(mail_id, Some(job_id), "erasure".to_owned(), 3), (notes_id, Some(job_id), "erasure".to_owned(), 2)];
    want.sort();
    assert_eq!(sets(&app).await, want, "one row per collection and cause");
    assert_eq!(state(&app).await.0, 5, "the view unnests them");

    // The same points again in their group add nothing; one new point is added to the set.
    let (hashes, subject): (Vec<Vec<u8>>, Vec<u8>) = sqlx::query_as(
        "SELECT points, subject_hash FROM erased_point_sets WHERE tenant_id = $1 AND collection_id = $2",
    )
    .bind(app.keys.tenant_id)
    .bind(mail_id)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let point = |h: &[u8], job_id: Option<uuid::Uuid>, cause: &str| ErasedPoint {
        collection_id: mail_id,
        point_hash: h.to_vec(),
        subject_hash: subject.clone(),
        job_id,
        cause: cause.into(),
    };
    let again: Vec<ErasedPoint> = hashes.iter().map(|h| point(h, Some(job_id), "erasure")).collect();
    assert_eq!(ledger::record_points(&app.pool, app.keys.tenant_id, &again).await.unwrap(), 0);
    let mut more: Vec<ErasedPoint> = again.clone();
    more.push(point(&[0xab; 16], Some(job_id), "erasure"));
    more.push(point(&[0xab; 16], Some(job_id), "erasure"));
    assert_eq!(ledger::record_points(&app.pool, app.keys.tenant_id, &more).await.unwrap(), 1, "given twice, new once");
    // A point deleted again by a reconcile (no job) is recorded in that group too.
    let reconciled = vec![point(&hashes[0], None, "reconcile")];
    assert_eq!(ledger::record_points(&app.pool, app.keys.tenant_id, &reconciled).await.unwrap(), 1);
    assert_eq!(ledger::record_points(&app.pool, app.keys.tenant_id, &reconciled).await.unwrap(), 0, "no job is one group");
    want.push((mail_id, None, "reconcile".to_owned(), 1));
    want[usize::from(mail_id > notes_id)].3 = 4;
    want.sort_by_key(|w| (w.0, w.1.is_some(), w.1, w.2.clone()));
    assert_eq!(sets(&app).await, want);
    assert_eq!(state(&app).await.0, 7);
}
