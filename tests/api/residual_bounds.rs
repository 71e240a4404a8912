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
