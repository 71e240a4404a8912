use lethe::grpc::pb;

use crate::helpers::*;

fn total(r: &pb::CountSubjectResponse) -> u64 {
    r.counts.iter().map(|c| c.before_total).sum()
}

/// Ingests three people into every given backend, erases one, and checks the
/// backends' own counts, lineage, the job's counts, the log and the certificate.
async fn erase_one_of_three(backends: &[pb::Backend]) {
    let app = spawn_app().await;
    let mut collections = Vec::new();
    for (i, b) in backends.iter().enumerate() {
        let c = app.create_collection(&format!("mail{i}"), *b).await;
        app.ingest_people(&c.name, &[("ann", 5), ("bob", 3), ("cyd", 2)]).await;
        collections.push(c);
    }
    let n = backends.len() as u64;
    assert_eq!(total(&app.count_subject("ann").await), 5 * n);

    let job = app.erase("ann").await;
    assert_eq!(job.status, pb::JobStatus::Queued as i32);
    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts.len(), backends.len());
    for c in &done.counts {
        assert_eq!((c.before_by_tag, c.before_by_ids, c.before_total), (5, 5, 5), "{}", c.collection);
        assert_eq!((c.deleted, c.after_by_tag, c.after_by_ids, c.after_total), (5, 0, 0, 0));
    }

    // The backends' own counts: ann gone, the others untouched.
    let ann = app.count_subject("ann").await;
    assert_eq!(total(&ann), 0);
    assert_eq!(ann.subject_state, "erased");
    assert_eq!(total(&app.count_subject("bob").await), 3 * n);
    assert_eq!(total(&app.count_subject("cyd").await), 2 * n);
    for c in collections.iter().filter(|c| c.backend == pb::Backend::Pgvector as i32) {
        assert_eq!(app.pg_rows_tagged(c, "ann").await, 0);
        assert_eq!(app.pg_rows_tagged(c, "bob").await, 3);
    }

    // Lineage forgotten; the subject is a tombstone without its id.
    assert_eq!(app.lineage_chunks_of("ann").await, 0);
    assert_eq!(app.lineage_chunks_of("bob").await, 3 * i64::try_from(n).unwrap());
    app.assert_lineage_consistent().await;
    let kept_plan: i64 = sqlx::query_scalar("SELECT count(*) FROM erasure_counts WHERE cardinality(plan_points) > 0")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(kept_plan, 0, "the plan's point ids are forgotten when the job is logged");
    let clear: i64 = sqlx::query_scalar("SELECT count(*) FROM subjects WHERE external_id = 'ann'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(clear, 0);
    assert!(done.subject_id.is_empty(), "the job no longer names the subject");

    // The log entry and the certificate.
    let mut client = app.client.clone();
    let log = client
        .list_deletion_log(req(&app.keys.ak, pb::ListDeletionLogRequest { after_seq: 0, limit: 10 }))
        .await
        .unwrap()
        .into_inner()
        .entries;
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].job_id, job.job_id);
    assert!(!log[0].body.contains("\"ann\""), "the log must not name the person");
    let body: serde_json::Value = serde_json::from_str(&log[0].body).unwrap();
    assert_eq!(body["subject_hash"], serde_json::json!(done.subject_hash));
    assert_eq!(body["collections"].as_array().unwrap().len(), backends.len());
    assert_eq!(body["collections"][0]["before_total"], 5);
    assert_eq!(body["collections"][0]["after_total"], 0);
    let cert = client
        .get_certificate(req(&app.keys.ak, pb::GetCertificateRequest { job_id: job.job_id.clone() }))
        .await
        .unwrap()
        .into_inner();
    assert!(lethe::audit::verify_certificate(&cert.body, &cert.signature, &cert.public_key));
    let cert_body: serde_json::Value = serde_json::from_str(&cert.body).unwrap();
    assert_eq!(cert_body["log_entry_hash"], serde_json::json!(log[0].entry_hash));
    let tampered = cert.body.replace("\"deleted\":5", "\"deleted\":4");
    assert!(!lethe::audit::verify_certificate(&tampered, &cert.signature, &cert.public_key));
    let v = client.verify_deletion_log(req(&app.keys.ak, pb::VerifyDeletionLogRequest::default())).await.unwrap().into_inner();
    assert!(v.valid, "{}", v.problem);
    assert_eq!(v.entries_checked, 1);
}

#[tokio::test]
async fn erasure_on_pgvector_deletes_one_person_and_keeps_the_others() {
    erase_one_of_three(&[pb::Backend::Pgvector]).await;
}

#[tokio::test]
async fn erasure_on_qdrant_deletes_one_person_and_keeps_the_others() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    erase_one_of_three(&[pb::Backend::Qdrant]).await;
}

#[tokio::test]
async fn one_job_erases_a_tenant_with_collections_on_both_backends() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    erase_one_of_three(&[pb::Backend::Pgvector, pb::Backend::Qdrant]).await;
}

/// The benchmark's `Timed` stores (the workers' stores wrapped) record each
/// call of a job with its backend, and change nothing of what the job does:
/// the same counts, deletes and outcome as without them. Each backend's
/// own `count_tag_and_ids` is what runs (once in plan, once in verify),
/// not the trait's default of three `count`s.
#[tokio::test]
async fn timed_stores_record_a_jobs_calls_and_change_nothing() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let backends = [pb::Backend::Pgvector, pb::Backend::Qdrant];
    for (i, b) in backends.iter().enumerate() {
        let c = app.create_collection(&format!("mail{i}"), *b).await;
        app.ingest_people(&c.name, &[("ann", 5), ("bob", 3)]).await;
    }
    let job = app.erase("ann").await;
    let log = std::sync::Arc::new(lethe::vector_store::CallLog::default());
    let mut ctx = app.ctx.clone();
    ctx.stores = ctx.stores.timed(&log);
    let (from, owner) = (std::time::SystemTime::now(), uuid::Uuid::new_v4());
    let done = tokio::time::timeout(std::time::Duration::from_secs(60), async {
        loop {
            lethe::erasure::try_execute_job(&ctx, owner).await.expect("queue");
            let j = app.job(&job.job_id).await;
            if j.status != pb::JobStatus::Queued as i32 && j.status != pb::JobStatus::InProgress as i32 {
                return j;
            }
        }
    })
    .await
    .expect("the job ends");
    let to = std::time::SystemTime::now();
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts.len(), 2);
    for c in &done.counts {
        assert_eq!((c.before_by_tag, c.before_by_ids, c.before_total), (5, 5, 5), "{}", c.collection);
        assert_eq!((c.deleted, c.after_by_tag, c.after_by_ids, c.after_total), (5, 0, 0, 0), "{}", c.collection);
    }
    assert_eq!(total(&app.count_subject("ann").await), 0);
    assert_eq!(total(&app.count_subject("bob").await), 6);

    let calls = log.take();
    assert!(log.take().is_empty(), "take starts afresh");
    for backend in [lethe::domain::Backend::Pgvector, lethe::domain::Backend::Qdrant] {
        let of = |method: &str| calls.iter().filter(|c| c.backend == backend && c.method == method).count();
        assert_eq!(of("count_tag_and_ids"), 2, "{backend:?}: {calls:?}");
        assert_eq!(of("count"), 0, "{backend:?}: {calls:?}");
        assert_eq!(of("delete"), 1, "{backend:?}: {calls:?}");
    }
    for c in &calls {
        assert!(from <= c.started && c.started + c.elapsed <= to, "{c:?} outside the job's run");
        assert!(c.elapsed > std::time::Duration::ZERO, "{c:?}");
    }
}

#[tokio::test]
async fn the_same_idempotency_key_returns_the_same_job() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2)]).await;
    let r = pb::EraseRequest { subject: Some(person("ann")), idempotency_key: "req-42".into(), ..Default::default() };
    let a = app.erase_with(r.clone()).await.unwrap();
    let b = app.erase_with(r).await.unwrap();
    assert_eq!(a.job_id, b.job_id);
    let done = app.wait_for_job(&a.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32);
    let jobs: i64 = sqlx::query_scalar("SELECT count(*) FROM erasure_jobs").fetch_one(&app.pool).await.unwrap();
    assert_eq!(jobs, 1);
}

#[tokio::test]
async fn tracked_vectors_written_by_the_pipeline_are_erased_by_lineage_ids() {
    let app = spawn_app().await;
    let c = app.create_collection("ext", pb::Backend::Pgvector).await;
    let dim = app.settings.embedding.dimension;
    let point = |i: usize, who: &str| pb::TrackedPoint {
        point_id: uuid::Uuid::new_v4().to_string(),
        source_id: format!("{who}-{i}"),
        tags: vec![pb::SubjectTag { subject_id: who.into(), role: pb::TagRole::Author as i32 }],
        vector: (0..dim).map(|d| if d == i { 1.0 } else { 0.0 }).collect(),
        ..Default::default()
    };
    let points = vec![point(0, "dee"), point(1, "dee"), point(2, "eve")];
    let mut client = app.client.clone();
    let w = client
        .track(req(&app.keys.pk, pb::TrackRequest { collection: c.name.clone(), points, ..Default::default() }))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(w.accepted, 3);
    // The pipeline re-tags one of dee's points without her tag: only lineage knows it now.
    sqlx::query(&format!("UPDATE \"{}\" SET subjects = '{{}}' WHERE point_id = $1", c.backend_name))
        .bind(uuid::Uuid::parse_str(&w.point_ids[0]).unwrap())
        .execute(&app.pool)
        .await
        .unwrap();
    let done = app.wait_for_job(&app.erase("dee").await.job_id).await;
    let counts = &done.counts[0];
    assert_eq!((counts.before_by_tag, counts.before_by_ids, counts.before_total), (1, 2, 2));
    assert_eq!((counts.deleted, counts.after_total), (2, 0));
    assert_eq!(total(&app.count_subject("eve").await), 1);
}

#[tokio::test]
async fn guaranteed_physical_erasure_rewrites_the_pgvector_table() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 3), ("bob", 2)]).await;
    let r = pb::EraseRequest { subject: Some(person("ann")), guarantee_physical: true, ..Default::default() };
    let job = app.erase_with(r).await.unwrap();
    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.counts[0].physical_status, "confirmed", "{}", done.counts[0].physical_detail);
    let plain = app.wait_for_job(&app.erase("bob").await.job_id).await;
    assert_eq!(plain.counts[0].physical_status, "pending");
}

#[tokio::test]
async fn forgetting_a_subject_removes_other_subjects_tags_on_its_chunks() {
    let app = spawn_app().await;
    let c = app.create_collection("shared", pb::Backend::Pgvector).await;
    app.ingest_people(&c.name, &[("ann", 2), ("bob", 2)]).await;
    // One chunk tagged with both at once, and one of ann's chunks that gains
    // bob on a later write of the same chunk (same source and ordinal).
    let both = chunk("meeting", 0, "ann and bob met about the budget", &["ann", "bob"]);
    app.ingest(&c.name, vec![both]).await.expect("ingest shared chunk");
    let again = chunk("ann-doc-0", 0, "note 0 written by ann about topic 0, forwarded to bob", &["ann", "bob"]);
    app.ingest(&c.name, vec![again]).await.expect("re-ingest with a second subject");
    assert_eq!(app.lineage_chunks_of("ann").await, 3);
    assert_eq!(app.lineage_chunks_of("bob").await, 4);

    let done = app.wait_for_job(&app.erase("ann").await.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts[0].before_total, 3);

    // ann's chunks are gone with every tag on them; bob keeps only his own two.
    assert_eq!(app.lineage_chunks_of("ann").await, 0);
    assert_eq!(app.lineage_chunks_of("bob").await, 2);
    assert_eq!(app.pg_rows_tagged(&c, "bob").await, 2);
    app.assert_lineage_consistent().await;
}
