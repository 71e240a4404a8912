//! An auditor's residual search is bounded: by the matches and candidates it
//! keeps (the best `limit`, a few matches each, however many chunks name the
//! person and however often), and by `residual.search_timeout_ms`, after
//! which it fails with DEADLINE_EXCEEDED instead of running on.

use std::time::{Duration, Instant};

use lethe::grpc::pb;
use tonic::Code;

use crate::helpers::*;

/// Chunks of 32 KiB, each naming Lee 6,553 times.
const CHUNKS: usize = 400;

async fn app_with_common_name(opts: Options) -> TestApp {
    let app = spawn_app_with(opts).await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    let text = "Lee. ".repeat(6553);
    for batch in 0..CHUNKS / 100 {
        let chunks =
            (0..100).map(|i| chunk(&format!("doc-{batch}-{i}"), 0, &text, &[&format!("p{}", i % 7)])).collect();
        app.ingest("mail", chunks).await.expect("ingest");
    }
    app
}

fn search(limit: u32) -> pb::SearchResidualsRequest {
    let ident = |kind: pb::IdentifierKind, v: &str| pb::Identifier { kind: kind as i32, value: v.into() };
    pb::SearchResidualsRequest {
        identifiers: vec![ident(pb::IdentifierKind::Name, "Ann Lee"), ident(pb::IdentifierKind::Email, "ann.lee@x.com")],
        limit,
    }
}

#[tokio::test]
async fn a_name_thousands_of_times_on_every_chunk_is_searched_quickly_keeping_a_few_matches_each() {
    let app = app_with_common_name(Options::default()).await;
    let started = Instant::now();
    let mut client = app.client.clone();
    let call = client.search_residuals(req(&app.keys.ak, search(10)));
    let found = tokio::time::timeout(Duration::from_secs(20), call)
        .await
        .expect("the search keeps a few matches per chunk and ends in time")
        .expect("search")
        .into_inner();
    eprintln!("searched {CHUNKS} chunks in {:?}", started.elapsed());
    // A lone surname is weak evidence: nothing here names Ann Lee.
    assert!(found.candidates.len() <= 10, "{}", found.candidates.len());
    for c in &found.candidates {
        assert!(c.evidence.iter().filter(|e| e.kind == "lexical").count() <= 8, "{c:?}");
    }
}

#[tokio::test]
async fn a_search_past_its_deadline_fails_with_deadline_exceeded() {
    let app = app_with_common_name(Options { search_timeout_ms: 1, ..Default::default() }).await;
    let err = app.client.clone().search_residuals(req(&app.keys.ak, search(10))).await.expect_err("deadline");
    assert_eq!(err.code(), Code::DeadlineExceeded, "{err:?}");
    assert_eq!(reason(&err), "deadline_exceeded");
}

/// Thirty words each written two ways (a final sigma) made 2^30 key sets
/// for the index: the process ran out of memory, out of reach of the
/// deadline, and an erasure of a subject with that identifier took every
/// worker that claimed it down with it.
#[tokio::test]
async fn an_identifier_of_many_two_way_words_is_searched_and_erased_in_time() {
    let app = spawn_app().await;
    app.create_collection("mail", pb::Backend::Pgvector).await;
    let words: Vec<String> = (0..30).map(|i| format!("λογ{}ς", char::from(b'a' + (i % 26) as u8))).collect();
    let long = words.join(" ");
    let text = format!("minutes: {}", long.to_uppercase());
    app.ingest("mail", vec![chunk("doc-1", 0, &text, &["someone"]), chunk("doc-2", 0, "unrelated", &["sigma"])])
        .await
        .expect("ingest");
    let other = || pb::Identifier { kind: pb::IdentifierKind::Other as i32, value: long.clone() };
    let mut client = app.client.clone();
    let call = client.search_residuals(req(&app.keys.ak, pb::SearchResidualsRequest { identifiers: vec![other()], limit: 10 }));
    let found = tokio::time::timeout(Duration::from_secs(20), call).await.expect("in time").expect("search").into_inner();
    assert_eq!(found.candidates.len(), 1, "the chunk that holds the words in capitals: {found:?}");
    let subject = pb::SubjectRef { id: "sigma".into(), identifiers: vec![other()] };
    app.client.clone().put_subject(req(&app.keys.pk, pb::PutSubjectRequest { subject: Some(subject) })).await.expect("put");
    let job = app.erase("sigma").await;
    let done = tokio::time::timeout(Duration::from_secs(30), app.wait_for_job(&job.job_id)).await.expect("in time");
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let after: u64 = done.counts.iter().map(|c| c.after_total).sum();
    assert_eq!(after, 0, "{done:?}");
}
