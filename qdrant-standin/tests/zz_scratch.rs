use std::time::Duration;
use ::qdrant_client::qdrant::r#match::MatchValue;
use ::qdrant_client::qdrant::{CreateCollectionBuilder, VectorParamsBuilder, Distance, OptimizersConfigDiffBuilder, CreateFieldIndexCollectionBuilder, FieldType, PointStruct, UpsertPointsBuilder, DeletePointsBuilder, Filter, Condition, UpdateCollectionBuilder, CountPointsBuilder, PointId};
use ::qdrant_client::{Payload, Qdrant};
use serde_json::json;

fn files_with(dir: &std::path::Path, needle: &[u8], out: &mut Vec<String>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { files_with(&p, needle, out); continue; }
        let b = std::fs::read(&p).unwrap();
        let n = b.windows(needle.len()).filter(|w| *w == needle).count();
        if n > 0 { out.push(format!("{} x{}", p.display(), n)); }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forensic() {
    let dir = tempfile::tempdir().unwrap();
    let server = qdrant_standin::start(0, dir.path().to_path_buf()).await.unwrap();
    let c = Qdrant::from_url(&server.url()).timeout(Duration::from_secs(60)).build().unwrap();
    c.create_collection(CreateCollectionBuilder::new("f").vectors_config(VectorParamsBuilder::new(4, Distance::Dot))
        .optimizers_config(OptimizersConfigDiffBuilder::default().deleted_threshold(0.0).vacuum_min_vector_number(100))).await.unwrap();
    c.create_field_index(CreateFieldIndexCollectionBuilder::new("f", "s", FieldType::Keyword).wait(true)).await.unwrap();
    let marker: f32 = 12345.678;
    let mut pts = vec![];
    for i in 0..200u64 {
        let s = if i < 150 { "erase-me-secret" } else { "keep" };
        let v = if i < 150 { vec![marker, i as f32, 0.5, 0.25] } else { vec![1.0, i as f32, 0.5, 0.25] };
        pts.push(PointStruct::new(i, v, Payload::try_from(json!({"s": s, "txt": format!("SECRETTEXT{i}")})).unwrap()));
    }
    c.upsert_points(UpsertPointsBuilder::new("f", pts).wait(true)).await.unwrap();
    let mb = marker.to_le_bytes();
    let show = |label: &str| { let mut o = vec![]; files_with(dir.path(), &mb, &mut o); let mut t = vec![]; files_with(dir.path(), b"SECRETTEXT10", &mut t); println!("== {label}\n marker: {o:#?}\n text: {t:#?}"); };
    show("after upsert");
    c.delete_points(DeletePointsBuilder::new("f").points(Filter::must([Condition::matches("s", MatchValue::Keyword("erase-me-secret".into()))])).wait(true)).await.unwrap();
    show("after delete");
    let info = c.collection_info("f").await.unwrap().result.unwrap();
    println!("info before: segs {} points {:?}", info.segments_count, info.points_count);
    c.update_collection(UpdateCollectionBuilder::new("f").optimizers_config(OptimizersConfigDiffBuilder::default())).await.unwrap();
    show("after update_collection");
    let info = c.collection_info("f").await.unwrap().result.unwrap();
    println!("info after: segs {} points {:?} indexed {:?}", info.segments_count, info.points_count, info.indexed_vectors_count);
    println!("count {}", c.count(CountPointsBuilder::new("f").exact(true)).await.unwrap().result.unwrap().count);
    // list tree
    fn tree(d: &std::path::Path, depth: usize) { for e in std::fs::read_dir(d).unwrap() { let p = e.unwrap().path(); let md = std::fs::metadata(&p).unwrap(); println!("{}{} {}", "  ".repeat(depth), p.file_name().unwrap().to_string_lossy(), if md.is_dir() {String::new()} else {md.len().to_string()}); if p.is_dir() && depth < 3 { tree(&p, depth+1); } } }
    tree(dir.path(), 0);
    drop(c);
    server.stop().await;

    // kill -9 durability with the binary
    let d2 = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_qdrant-standin");
    let mut child = std::process::Command::new(bin).args(["--port", "0", "--data-dir"]).arg(d2.path()).stdout(std::process::Stdio::piped()).spawn().unwrap();
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let url = format!("http://{}", line.trim().rsplit(' ').next().unwrap());
    println!("bin said: {line}");
    let c = Qdrant::from_url(&url).build().unwrap();
    c.create_collection(CreateCollectionBuilder::new("k").vectors_config(VectorParamsBuilder::new(2, Distance::Cosine))).await.unwrap();
    c.upsert_points(UpsertPointsBuilder::new("k", vec![PointStruct::new(1u64, vec![1.0, 0.0], Payload::new()), PointStruct::new(2u64, vec![0.0, 1.0], Payload::new())]).wait(true)).await.unwrap();
    c.delete_points(DeletePointsBuilder::new("k").points(vec![PointId::from(2u64)]).wait(true)).await.unwrap();
    child.kill().unwrap(); child.wait().unwrap();
    drop(c);
    let server = qdrant_standin::start(0, d2.path().to_path_buf()).await.unwrap();
    let c = Qdrant::from_url(&server.url()).build().unwrap();
    println!("after kill -9: count {}", c.count(CountPointsBuilder::new("k").exact(true)).await.unwrap().result.unwrap().count);
    server.stop().await;
}
