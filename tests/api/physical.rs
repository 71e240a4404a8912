//! Forensic proof of physical erasure: after an erasure with guaranteed
//! physical erasure, the raw float32 bytes of the erased person's vectors are
//! in none of the backend's data files, while a person not erased is found
//! (so the scan is known to work). WAL is outside (documented in the README).

use std::path::{Path, PathBuf};

use lethe::grpc::pb;

use crate::helpers::*;
use crate::reindex::track;

/// A 64-byte window of each vector (16 floats, little-endian as stored).
fn needles(vectors: &[Vec<f32>]) -> Vec<Vec<u8>> {
    vectors.iter().map(|v| v[100..116].iter().flat_map(|x| x.to_le_bytes()).collect()).collect()
}

fn files_under(dir: &Path, skip: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        let p = e.path();
        if skip.iter().any(|s| p.file_name().is_some_and(|n| n.to_string_lossy().contains(s))) {
            continue;
        }
        if p.is_dir() {
            out.extend(files_under(&p, skip));
        } else {
            out.push(p);
        }
    }
    out
}

/// How many of the needles occur somewhere in the files.
pub fn found(files: &[PathBuf], needles: &[Vec<u8>]) -> usize {
    where_found(files, needles).0
}

/// The count, and the files holding any needle (for the failure message).
fn where_found(files: &[PathBuf], needles: &[Vec<u8>]) -> (usize, Vec<PathBuf>) {
    let data: Vec<(PathBuf, Vec<u8>)> = files.iter().filter_map(|f| std::fs::read(f).ok().map(|d| (f.clone(), d))).collect();
    let hit = |d: &[u8], n: &[u8]| memchr::memmem::find(d, n).is_some();
    let count = needles.iter().filter(|n| data.iter().any(|(_, d)| hit(d, n))).count();
    let holders = data.iter().filter(|(_, d)| needles.iter().any(|n| hit(d, n))).map(|(f, _)| f.clone()).collect();
    (count, holders)
}

pub async fn pg_database_files(app: &TestApp) -> Vec<PathBuf> {
    sqlx::query("CHECKPOINT").execute(&app.pool).await.expect("checkpoint (superuser)");
    let dir: String = sqlx::query_scalar("SHOW data_directory").fetch_one(&app.pool).await.unwrap();
    let oid: i64 = sqlx::query_scalar("SELECT oid::bigint FROM pg_database WHERE datname = current_database()")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    files_under(&Path::new(&dir).join("base").join(oid.to_string()), &[])
}

#[tokio::test]
async fn guaranteed_physical_erasure_leaves_no_bytes_in_pgvector_files() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let ann = needles(&track(&app, &c.name, "ann", 40, 7).await);
    let bob = needles(&track(&app, &c.name, "bob", 40, 8).await);
    assert_eq!(found(&pg_database_files(&app).await, &ann), ann.len(), "the scan sees ann's vectors before");

    let r = pb::EraseRequest { subject: Some(person("ann")), guarantee_physical: true, ..Default::default() };
    let done = app.wait_for_job(&app.erase_with(r).await.unwrap().job_id).await;
    assert_eq!(done.counts[0].physical_status, "confirmed", "{}", done.counts[0].physical_detail);

    let files = pg_database_files(&app).await;
    let (count, holders) = where_found(&files, &ann);
    if count > 0 {
        let names: Vec<(String, String)> = sqlx::query_as(
            "SELECT relname::text, pg_relation_filepath(oid) FROM pg_class WHERE pg_relation_filepath(oid) IS NOT NULL",
        )
        .fetch_all(&app.pool)
        .await
        .unwrap();
        let named: Vec<String> = holders
            .iter()
            .map(|h| {
                let file = h.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
                let rel = names.iter().find(|(_, p)| p.ends_with(&format!("/{file}"))).map(|(n, _)| n.clone());
                format!("{file} ({})", rel.unwrap_or_else(|| "unknown".into()))
            })
            .collect();
        panic!("{count} of ann's vectors remain in {named:?}");
    }
    assert_eq!(found(&files, &bob), bob.len(), "bob's vectors are still found");
}

#[tokio::test]
async fn guaranteed_physical_erasure_leaves_no_bytes_in_qdrant_segments() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    // The storage directory of the Qdrant under test (`<storage>/collections/…`,
    // the same layout for a real server and the stand-in). A test that cannot
    // read it cannot check its claim: it fails here rather than pass, and
    // scripts/test.sh skips it by name, saying so, for a real Qdrant whose
    // storage path was not given.
    let Some(data) = std::env::var_os("QDRANT_STORAGE_DIR").or_else(|| std::env::var_os("QDRANT_STANDIN_DATA_DIR")) else {
        panic!("QDRANT_STORAGE_DIR is not set: the forensic scan needs the Qdrant server's storage directory");
    };
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Qdrant).await;
    let ann = track(&app, &c.name, "ann", 40, 17).await;
    let bob = track(&app, &c.name, "bob", 40, 18).await;
    // Qdrant stores cosine vectors normalised: read back what it stored.
    let spec = lethe::store::lineage::collection_by_name(&app.pool, app.keys.tenant_id, &c.name).await.unwrap().unwrap();
    let store = lethe::vector_store::QdrantStore::connect(&qdrant_url().unwrap(), None, std::time::Duration::from_secs(30))
        .await
        .unwrap();
    let ids = sqlx::query_scalar::<_, uuid::Uuid>("SELECT chunk_id FROM chunks").fetch_all(&app.pool).await.unwrap();
    let points = lethe::vector_store::VectorStore::retrieve(&store, &spec, &ids, true).await.unwrap();
    let stored = |vs: Vec<Vec<f32>>| -> Vec<Vec<f32>> {
        vs.iter()
            .filter_map(|v| {
                points.iter().filter_map(|p| p.vector.clone()).find(|s| {
                    s.iter().zip(v).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) < 1e-4
                })
            })
            .collect()
    };
    let (ann, bob) = (needles(&stored(ann)), needles(&stored(bob)));
    assert_eq!((ann.len(), bob.len()), (40, 40));
    // This collection's directories only (every generation of it): the
    // stand-in's data directory is shared with other tests and may be large.
    let dir = PathBuf::from(data);
    let id = spec.collection_id.simple().to_string();
    let collection_files = |skip: &[&str]| -> Vec<PathBuf> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir.join("collections")).into_iter().flatten().flatten() {
            if e.file_name().to_string_lossy().contains(&id) {
                out.extend(files_under(&e.path(), skip));
            }
        }
        out
    };
    assert!(found(&collection_files(&[]), &ann) > 0, "the scan sees ann's vectors before");

    let r = pb::EraseRequest { subject: Some(person("ann")), guarantee_physical: true, ..Default::default() };
    let done = app.wait_for_job(&app.erase_with(r).await.unwrap().job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts[0].physical_status, "confirmed", "{}", done.counts[0].physical_detail);
    // Segment files only: the WAL is documented as outside the guarantee.
    let files = collection_files(&["wal"]);
    assert_eq!(found(&files, &ann), 0, "no byte of ann's vectors in the segments");
    assert_eq!(found(&files, &bob), bob.len(), "bob's vectors are still found");
}

/// A re-index that copied a person's points before their erasure (one
/// without the guarantee) leaves them out of the new generation at its
/// switch. The delete would leave their bytes in the new table as dead rows:
/// the switch rewrites it before promoting it, and says so. With the old
/// table dropped, none of their bytes is in any file of the database.
async fn reindex_overlapping_an_erasure(backend: pb::Backend) -> (TestApp, pb::ReindexJob, Vec<Vec<u8>>, Vec<Vec<u8>>) {
    let app = spawn_app_with(Options { no_workers: true, ..Default::default() }).await;
    let c = app.create_collection("mail", backend).await;
    let ann = needles(&track(&app, &c.name, "ann", 40, 7).await);
    let bob = needles(&track(&app, &c.name, "bob", 40, 8).await);
    let r = pb::ReindexRequest { collection: c.name.clone(), mode: pb::ReindexMode::Copy as i32 };
    let reindex: uuid::Uuid = app.client.clone().reindex(req(&app.keys.sk, r)).await.unwrap().into_inner().job_id.parse().unwrap();
    let step = || lethe::reindex::step(&app.ctx, app.keys.tenant_id, reindex);
    step().await.unwrap();
    assert_eq!(step().await.unwrap().stage, "switch", "the new generation holds copies of ann's points");
    let done = crate::residual_progress::run_to_end(&app, &app.erase("ann").await.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    assert_eq!(done.counts[0].physical_status, "pending", "no guarantee asked");
    step().await.unwrap();
    assert_eq!(step().await.unwrap().stage, "done");
    let r = pb::GetReindexRequest { job_id: reindex.to_string() };
    let job = app.client.clone().get_reindex(req(&app.keys.ak, r)).await.unwrap().into_inner();
    assert_eq!((job.excluded, job.final_count), (40, 40), "{job:?}");
    (app, job, ann, bob)
}

#[tokio::test]
async fn a_reindex_switch_rewrites_the_new_table_after_leaving_an_erased_persons_points_out() {
    let (app, job, ann, bob) = reindex_overlapping_an_erasure(pb::Backend::Pgvector).await;
    assert!(job.physical_detail.contains("rewritten"), "{}", job.physical_detail);
    // The collection's files: its table (the new generation), indexes and TOAST.
    // (Lethe's own tables keep their dead rows: no guarantee was asked.)
    let all = pg_database_files(&app).await;
    let table: String = sqlx::query_scalar("SELECT backend_name FROM collections WHERE name = 'mail'").fetch_one(&app.pool).await.unwrap();
    let nodes: Vec<String> = sqlx::query_scalar(
        r#"
        SELECT pg_relation_filepath(c.oid) FROM pg_class c, (SELECT format('%I', $1::text)::regclass AS t) r
        WHERE c.oid = r.t OR c.oid IN (SELECT indexrelid FROM pg_index WHERE indrelid = r.t)
           OR c.oid = (SELECT reltoastrelid FROM pg_class WHERE oid = r.t)
        "#,
    )
    .bind(&table)
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let node = |p: &PathBuf| p.file_name().map(|f| f.to_string_lossy().split(['.', '_']).next().unwrap_or_default().to_owned());
    let files: Vec<PathBuf> =
        all.into_iter().filter(|f| nodes.iter().any(|n| node(f).is_some_and(|x| n.ends_with(&format!("/{x}"))))).collect();
    assert!(files.len() >= 2, "the table and its indexes: {files:?}");
    assert_eq!(found(&files, &bob), bob.len(), "bob's vectors are found in them");
    assert_eq!(found(&files, &ann), 0, "no byte of ann's vectors in the collection's files");
}

#[tokio::test]
async fn a_reindex_switch_on_qdrant_says_the_left_out_copies_stay_in_the_segments() {
    assert!(qdrant_url().is_some(), "QDRANT_URL is not set: run scripts/test.sh, which starts the Qdrant stand-in");
    let (_app, job, _, _) = reindex_overlapping_an_erasure(pb::Backend::Qdrant).await;
    assert!(job.physical_detail.starts_with("40 points left out") && job.physical_detail.contains("soft"), "{}", job.physical_detail);
}
