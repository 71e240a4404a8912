//! The service connects as a least-privilege role (issue 12 item 8):
//! migrations run as the owner, and the service role can do Lethe's work but
//! cannot change, remove or unprotect the deletion log.

use lethe::grpc::pb;
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::helpers::*;

/// A login role with no privileges of its own, as a DBA would create it.
async fn create_role() -> String {
    let role = format!("lethe_test_svc_{}", &Uuid::new_v4().simple().to_string()[..12]);
    let mut conn = PgConnection::connect(&database_url()).await.expect("connect as the superuser");
    sqlx::raw_sql(&format!(
        "CREATE ROLE {role} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; GRANT pg_read_all_stats TO {role}"
    ))
    .execute(&mut conn)
    .await
    .expect("create role");
    role
}

async fn drop_role(owner_url: &str, role: &str) {
    if let Ok(mut conn) = PgConnection::connect(owner_url).await {
        let _ = sqlx::raw_sql(&format!("REASSIGN OWNED BY {role} TO CURRENT_USER; DROP OWNED BY {role}; DROP ROLE {role}"))
            .execute(&mut conn)
            .await;
    }
}

fn as_role(url: &str, role: &str) -> String {
    let replaced = url.replacen("://postgres@", &format!("://{role}@"), 1);
    assert_ne!(replaced, url, "DATABASE_URL names the postgres user");
    replaced
}

/// An app whose pool connects as `role` (migrations as the owner), with
/// `configure` applied too; and the owner's database url.
async fn spawn_as_service_role(role: &str, configure: impl FnOnce(&mut lethe::config::Settings)) -> (TestApp, String) {
    let mut owner_url = String::new();
    let app = spawn_app_configured(Options::default(), |s| {
        owner_url = secrecy::ExposeSecret::expose_secret(&s.database.url).to_owned();
        s.database.migration_url = s.database.url.clone();
        s.database.url = as_role(&owner_url, role).into();
        s.database.require_service_role = true;
        configure(s);
    })
    .await;
    (app, owner_url)
}

async fn relfilenode(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar("SELECT pg_relation_filenode($1::regclass)::bigint").bind(table).fetch_one(&app.pool).await.unwrap()
}

#[tokio::test]
async fn the_service_role_runs_lethe_but_cannot_touch_the_deletion_log() {
    let role = create_role().await;
    let (app, owner_url) = spawn_as_service_role(&role, |_| {}).await;
    let service_url = as_role(&owner_url, &role);
    let user: String = sqlx::query_scalar("SELECT current_user::text").fetch_one(&app.pool).await.unwrap();
    assert_eq!(user, role, "the app's pool is the service role's");

    // Lethe's work, end to end, as the service role.
    let mut backends = vec![pb::Backend::Pgvector];
    if qdrant_url().is_some() {
        backends.push(pb::Backend::Qdrant);
    }
    for (i, backend) in backends.iter().enumerate() {
        let c = app.create_collection(&format!("mail{i}"), *backend).await;
        app.ingest_people(&c.name, &[("ann", 3), ("bob", 2)]).await;
    }
    let chunks_file = relfilenode(&app, "chunks").await;
    let r = pb::EraseRequest { subject: Some(person("ann")), guarantee_physical: true, ..Default::default() };
    let done = app.wait_for_job(&app.erase_with(r).await.expect("erase").job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{done:?}");
    for c in &done.counts {
        assert_eq!(c.physical_status, "confirmed", "{}", c.physical_detail);
    }
    assert_ne!(relfilenode(&app, "chunks").await, chunks_file, "VACUUM FULL rewrote Lethe's own chunk table");
    let copy = crate::reindex::reindex(&app, "mail0", pb::ReindexMode::Copy).await;
    assert_eq!(copy.status, pb::JobStatus::Completed as i32, "{copy:?}");
    let mut client = app.client.clone();
    let v = client.verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default())).await.unwrap().into_inner();
    assert!(v.valid && v.entries_checked == 1, "{v:?}");
    let cert = pb::GetCertificateRequest { job_id: done.job_id.clone() };
    client.get_certificate(req(&app.keys.ak, cert)).await.expect("certificate");

    // What the service role must not do.
    let mut conn = PgConnection::connect(&service_url).await.expect("connect as the service role");
    for sql in [
        "UPDATE deletion_log SET body = '{}'",
        "DELETE FROM deletion_log",
        "TRUNCATE deletion_log",
        "ALTER TABLE deletion_log DISABLE TRIGGER ALL",
        "ALTER TABLE deletion_log DISABLE TRIGGER deletion_log_no_update",
        "DROP TRIGGER deletion_log_no_update ON deletion_log",
        "DROP FUNCTION deletion_log_append_only() CASCADE",
        "DROP TABLE deletion_log",
        "SET session_replication_role = replica",
        "UPDATE certificates SET body = '{}'",
        "DELETE FROM certificates",
        "DELETE FROM _sqlx_migrations",
        "CREATE ROLE lethe_test_escalation SUPERUSER",
    ] {
        let err = sqlx::raw_sql(sql).execute(&mut conn).await.expect_err(sql);
        let code = err.as_database_error().and_then(|e| e.code()).map(|c| c.into_owned());
        assert_eq!(code.as_deref(), Some("42501"), "{sql}: insufficient privilege expected, got {err}");
    }
    let v = client.verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default())).await.unwrap().into_inner();
    assert!(v.valid && v.entries_checked == 1, "the log is intact: {v:?}");

    drop(conn);
    drop(client);
    drop(app);
    drop_role(&owner_url, &role).await;
}

/// A table Lethe's role may not read or delete in is refused at Attach
/// (FAILED_PRECONDITION naming the privilege and the GRANT), not answered
/// INTERNAL, nor attached for every erasure to fail on later.
#[tokio::test]
async fn attach_refuses_a_table_the_service_role_may_not_read_and_delete_in() {
    let role = create_role().await;
    let (app, owner_url) = spawn_as_service_role(&role, |s| s.attach.allowed = vec!["pgvector:public.crm_*".into()]).await;
    let mut owner = PgConnection::connect(&owner_url).await.expect("connect as the owner");
    sqlx::raw_sql(
        "CREATE TABLE crm_private (doc_key text PRIMARY KEY, people text[], body text, origin text, emb vector(8));
         INSERT INTO crm_private VALUES ('a-1', '{ann}', 'ann on the budget', 'doc-1', '[1,0,0,0,0,0,0,0]')",
    )
    .execute(&mut owner)
    .await
    .expect("a table of someone else's");
    let attach = || {
        let mut client = app.client.clone();
        let r = req(&app.keys.sk, crate::attach::hand_made_request("crm", "crm_private"));
        async move { client.attach(r).await.map(tonic::Response::into_inner) }
    };
    for (grant, missing) in [("", "SELECT or DELETE"), ("GRANT SELECT ON crm_private TO {role}", "DELETE")] {
        if !grant.is_empty() {
            sqlx::raw_sql(&grant.replace("{role}", &role)).execute(&mut owner).await.expect("grant");
        }
        let e = attach().await.expect_err(missing);
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{missing}: {e:?}");
        assert!(e.message().contains(&format!("may not {missing} in")) && e.message().contains("GRANT"), "{e:?}");
        assert_eq!(rows(&app.pool, "collections").await, 0, "nothing attached");
    }
    sqlx::raw_sql(&format!("GRANT DELETE ON crm_private TO {role}")).execute(&mut owner).await.expect("grant");
    attach().await.expect("attached once it may read and delete");
    assert_eq!(rows(&app.pool, "collections").await, 1);

    sqlx::raw_sql("DROP TABLE crm_private").execute(&mut owner).await.expect("drop");
    drop(owner);
    drop(app);
    drop_role(&owner_url, &role).await;
}

#[tokio::test]
async fn a_service_that_could_alter_the_log_refuses_to_start_when_required() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = test_settings(&fresh_database().await, dir.path(), Options::default());
    settings.database.require_service_role = true;
    let embedder = lethe::startup::embedder(&settings).unwrap();
    let err = lethe::startup::Application::build_with_embedder(settings, embedder).await.err().expect("refused");
    assert!(format!("{err:#}").contains("could disable the log's append-only trigger"), "{err:#}");
}
