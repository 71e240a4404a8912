//! The residual index (`chunks.terms`, see `lethe::residual::index`) stays
//! consistent with lineage: written with every text, rewritten with it, and
//! gone with an erased person's chunks, so that it never keeps their words.

use lethe::grpc::pb;
use lethe::residual::index;
use secrecy::ExposeSecret;
use sqlx::Connection;

use crate::helpers::*;

/// Sources of the tenant's chunks the index finds by `word`.
async fn found_by(app: &TestApp, word: &str) -> Vec<String> {
    let keys = index::word_keys(app.keys.tenant_id, [word]);
    sqlx::query_scalar(
        "SELECT s.external_id FROM chunks c JOIN sources s USING (source_id) \
         WHERE c.tenant_id = $1 AND c.terms && $2 ORDER BY 1",
    )
    .bind(app.keys.tenant_id)
    .bind(&keys)
    .fetch_all(&app.pool)
    .await
    .expect("read the index")
}

async fn texts_without_keys(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM chunks WHERE text IS NOT NULL AND terms IS NULL")
        .fetch_one(&app.pool)
        .await
        .expect("count")
}

#[tokio::test]
async fn residual_index_is_written_with_the_text_and_goes_with_the_erased_chunks() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let corpus = vec![
        chunk("ann-1", 0, "From: ann.lee@example.com\n\nThe Palo Verde spread widened again on Tuesday.", &["ann"]),
        chunk("to-ann", 0, "To: Ann.Lee@example.com\n\nCall me about the hearing.", &["bob"]),
        chunk("other", 0, "The storage report is due on Thursday.", &["bob"]),
    ];
    app.ingest(&c.name, corpus).await.expect("ingest");
    assert_eq!(texts_without_keys(&app).await, 0);
    assert_eq!(found_by(&app, "palo").await, ["ann-1"]);
    assert_eq!(found_by(&app, "LEE").await, ["ann-1", "to-ann"], "words are found in any case");
    // A chunk written again is found by its new words only.
    app.ingest(&c.name, vec![chunk("other", 0, "The storage report moved to Friday.", &["bob"])]).await.expect("ingest");
    assert!(found_by(&app, "thursday").await.is_empty());
    assert_eq!(found_by(&app, "friday").await, ["other"]);

    let job = app.erase("ann").await;
    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    // The erased chunk's keys went with it; the residual (reported, kept) is still found.
    for word in ["palo", "verde", "widened"] {
        assert!(found_by(&app, word).await.is_empty(), "{word}");
    }
    assert_eq!(found_by(&app, "lee").await, ["to-ann"]);
    assert_eq!(texts_without_keys(&app).await, 0);
}

#[tokio::test]
async fn residual_search_finds_through_the_index_every_form_the_matcher_knows() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let named = [
        ("mailto", "Reply to [mailto:Phillip.Allen@ENRON.com] today."),
        ("brackets", "Phillip <phillip.allen@enron.com> wrote the memo."),
        ("middle-initial", "cc: k..allen@enron.com, john.arnold@enron.com"),
        ("initial-address", "Send it to pallen@enron.com please."),
        ("last-first", "From: Allen, Phillip K.\nSent: Monday"),
        ("nickname", "Phil Allen will join the call."),
    ];
    let mut corpus: Vec<pb::IngestChunk> =
        named.iter().map(|(source, text)| chunk(source, 0, text, &["someone"])).collect();
    corpus.push(chunk("unrelated", 0, "The Allenby report is late.", &["someone"]));
    app.ingest(&c.name, corpus).await.expect("ingest");
    let ident = |kind: pb::IdentifierKind, value: &str| pb::Identifier { kind: kind as i32, value: value.into() };
    let r = pb::SearchResidualsRequest {
        identifiers: vec![
            ident(pb::IdentifierKind::Email, "phillip.allen@enron.com"),
            ident(pb::IdentifierKind::Name, "Phillip K. Allen"),
        ],
        ..Default::default()
    };
    let found = app.client.clone().search_residuals(req(&app.keys.sk, r)).await.expect("search").into_inner();
    let mut sources: Vec<&str> = found.candidates.iter().map(|c| c.source_id.as_str()).collect();
    sources.sort_unstable();
    let mut want: Vec<&str> = named.iter().map(|(s, _)| *s).collect();
    want.sort_unstable();
    assert_eq!(sources, want);
}

/// Ann's own words (the digest copies the first sentence) and a newsletter
/// she pasted under them, which six other sources carry too.
const ANN_OWN: &str = "The Palo Verde spread widened again on Tuesday because the heat wave kept every unit in \
    Arizona running flat out. I want the desk to stop selling the spread until the Navajo line is back.";
const DIGEST: &str = "The Palo Verde spread widened again on Tuesday because the heat wave kept every unit in \
    Arizona running flat out.";
const NEWS: &str = "Energy Daily: regulators in Sacramento scheduled another hearing on the emergency purchases, \
    and the utilities asked the commission for a rate increase before the summer peak arrives.";

/// Ann's chunk, one source holding her sentence five times (a digest filed
/// in five chunks: more chunks than a sample of 3, but one source, so not
/// boilerplate), and the newsletter in ten other sources.
fn ann_corpus() -> Vec<pb::IngestChunk> {
    let mut corpus = vec![chunk("ann-1", 0, &format!("From: ann.lee@example.com\nSubject: desk\n\n{ANN_OWN}\n\n{NEWS}"), &["ann"])];
    corpus.extend((0..5).map(|i| chunk("digest", i, DIGEST, &["kb"])));
    corpus.extend((0..10).map(|i| chunk(&format!("news-{i}"), 0, NEWS, &["bob"])));
    corpus
}

/// Erases Ann with residual search on (report), the index reading at most
/// `sample` chunks per 5-gram at first (0: all): the residuals' sources.
async fn ann_residuals(sample: usize) -> Vec<String> {
    let app = spawn_app_configured(Options::default(), |s| s.residual.common_key_sample = sample).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest(&c.name, ann_corpus()).await.expect("ingest");
    let ident = |kind: pb::IdentifierKind, value: &str| pb::Identifier { kind: kind as i32, value: value.into() };
    let r = pb::EraseRequest {
        subject: Some(pb::SubjectRef {
            id: "ann".into(),
            identifiers: vec![ident(pb::IdentifierKind::Email, "ann.lee@example.com")],
        }),
        residual_policy: pb::ResidualPolicy::Report as i32,
        ..Default::default()
    };
    let job = app.erase_with(r).await.expect("erase");
    let done = app.wait_for_job(&job.job_id).await;
    assert_eq!(done.status, pb::JobStatus::Completed as i32, "{}", done.error);
    let mut sources: Vec<String> = done.residuals.iter().map(|c| c.source_id.clone()).collect();
    sources.sort_unstable();
    sources
}

#[tokio::test]
async fn five_grams_held_by_more_chunks_than_the_sample_are_read_in_full_unless_they_are_boilerplate() {
    let every_chunk = ann_residuals(0).await;
    // Each of her 5-grams is held by more chunks than a sample of 3: the
    // digest's sample shows one source only, so all five of its chunks are
    // read and found; the newsletter's shows three other sources.
    let sampled = ann_residuals(3).await;
    assert_eq!(every_chunk, ["digest"; 5], "the excerpts, not the newsletter");
    assert_eq!(sampled, every_chunk);
}

#[tokio::test]
async fn a_sample_that_shows_boilerplate_spares_reading_the_rest_and_finds_the_same() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest(&c.name, ann_corpus()).await.expect("ingest");
    // The search as Ann's erasure runs it: her chunk as the probe, excluded.
    let (own, text): (uuid::Uuid, String) = sqlx::query_as(
        "SELECT c.chunk_id, c.text FROM chunks c JOIN sources s USING (source_id) \
         WHERE c.tenant_id = $1 AND s.external_id = 'ann-1'",
    )
    .bind(app.keys.tenant_id)
    .fetch_one(&app.pool)
    .await
    .expect("her chunk");
    let vector = app.ctx.embedder.embed(vec![text.clone()]).await.expect("embed").remove(0);
    let query = lethe::residual::ResidualQuery {
        identifiers: vec![lethe::domain::Identifier {
            kind: lethe::domain::IdentifierKind::Email,
            value: "ann.lee@example.com".into(),
        }],
        probes: vec![lethe::residual::Probe { text: Some(text), vector }],
        exclude: [own].into_iter().collect(),
        limit: 100,
        deadline: None,
    };
    let search = |sample: usize| {
        let mut ctx = app.ctx.clone();
        let mut settings = (*ctx.settings).clone();
        settings.residual.common_key_sample = sample;
        ctx.settings = std::sync::Arc::new(settings);
        let query = query.clone();
        async move { lethe::residual::search_counted(&ctx, app.keys.tenant_id, &query).await.expect("search") }
    };
    let (all, sampled) = (search(0).await, search(3).await);
    let points = |s: &lethe::residual::Searched| {
        let mut p: Vec<uuid::Uuid> = s.candidates.iter().map(|c| c.point_id).collect();
        p.sort_unstable();
        p
    };
    assert_eq!(all.candidates.len(), 5, "the digest's five chunks");
    assert_eq!(points(&sampled), points(&all));
    // Everything: 5 digest chunks and 10 copies of the newsletter. Sampled:
    // the digest in full (one source), three copies of the newsletter.
    assert_eq!((all.read, sampled.read), (15, 8));
}

/// Bob's own words, which a note of someone else's copies.
const BOB_OWN: &str = "The Mohave outage moved the whole Four Corners strip twelve dollars above the index before \
    lunch, and nobody on the west desk saw the schedule change coming from the operator.";

/// The search an erasure runs for `person`: the identifiers, their chunks
/// as probes (text and vector), excluded.
async fn erasure_query(app: &TestApp, person: &str, identifiers: &[(lethe::domain::IdentifierKind, &str)]) -> lethe::residual::ResidualQuery {
    let own: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT c.chunk_id, c.text FROM chunks c JOIN chunk_subjects cs USING (chunk_id) JOIN subjects s USING (subject_id) \
         WHERE c.tenant_id = $1 AND s.subject_hash = $2 ORDER BY c.chunk_id",
    )
    .bind(app.keys.tenant_id)
    .bind(app.ctx.keyed_hash(app.keys.tenant_id, person).await.expect("hash"))
    .fetch_all(&app.pool)
    .await
    .expect("own chunks");
    let texts: Vec<String> = own.iter().map(|(_, t)| t.clone()).collect();
    let vectors = if texts.is_empty() { Vec::new() } else { app.ctx.embedder.embed(texts.clone()).await.expect("embed") };
    lethe::residual::ResidualQuery {
        identifiers: identifiers.iter().map(|(kind, value)| lethe::domain::Identifier { kind: *kind, value: (*value).into() }).collect(),
        probes: texts.into_iter().zip(vectors).map(|(text, vector)| lethe::residual::Probe { text: Some(text), vector }).collect(),
        exclude: own.into_iter().map(|(id, _)| id).collect(),
        limit: 100,
        deadline: None,
    }
}

#[tokio::test]
async fn searches_made_together_find_what_each_finds_alone() {
    // A batch of erase jobs searches together: one read of their own texts,
    // one transaction of index lookups, the proposed texts in shared pages.
    // Each must find, read and count what it finds alone, although one
    // person's own chunk (excluded from their search) is another's residual,
    // their 5-grams share keys with a sample of 3, and one has no own words.
    let app = spawn_app_configured(Options::default(), |s| s.residual.common_key_sample = 3).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let mut corpus = ann_corpus();
    corpus.push(chunk("bob-1", 0, &format!("From: bob.marsh@example.com\nTo: ann.lee@example.com\n\n{BOB_OWN}\n\n{DIGEST}"), &["bob-marsh"]));
    corpus.push(chunk("desk-notes", 0, &format!("Notes from the desk\n\n{BOB_OWN}"), &["kb"]));
    corpus.push(chunk("cc", 0, "cc: ann.lee@example.com, bob.marsh@example.com, Carol Diaz", &["kb"]));
    corpus.push(chunk("call", 0, "Carol Diaz called about the Mohave outage.", &["kb"]));
    app.ingest(&c.name, corpus).await.expect("ingest");
    use lethe::domain::IdentifierKind::{Email, Name};
    let queries = vec![
        erasure_query(&app, "ann", &[(Email, "ann.lee@example.com")]).await,
        erasure_query(&app, "bob-marsh", &[(Email, "bob.marsh@example.com"), (Name, "Bob Marsh")]).await,
        erasure_query(&app, "carol", &[(Name, "Carol Diaz")]).await,
    ];
    let t = app.keys.tenant_id;
    let mut alone = Vec::new();
    for q in &queries {
        alone.push(lethe::residual::search_counted(&app.ctx, t, q).await.expect("search alone"));
    }
    // Another tenant's search in the middle of the batch: each gets its own.
    let other = lethe::auth::create_tenant(&app.pool, "other-tenant").await.expect("tenant").tenant_id;
    let mut batch: Vec<(uuid::Uuid, lethe::residual::ResidualQuery)> = queries.iter().map(|q| (t, q.clone())).collect();
    batch.insert(1, (other, queries[0].clone()));
    let mut together = lethe::residual::search_many(&app.ctx, &batch).await.expect("search together");
    assert_eq!(together.len(), 4);
    let in_other = together.remove(1);
    assert_eq!((in_other.candidates.len(), in_other.read), (0, 0), "the other tenant has none of these chunks");
    for (a, b) in alone.iter().zip(&together) {
        assert_eq!(a.candidates, b.candidates);
        assert_eq!((a.qualified, a.read), (b.qualified, b.read));
    }
    // Ann: her address's chunks, the digest and three newsletter copies (a
    // sample of 3 showing boilerplate); Bob: his forms' and his 5-grams'
    // chunks; Carol: the two that hold her name.
    assert_eq!(together.iter().map(|s| s.read).collect::<Vec<_>>(), [10, 8, 2]);
    let sources = |s: &lethe::residual::Searched| {
        let mut v: Vec<String> = s.candidates.iter().map(|c| c.source_id.clone()).collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    // Bob's own chunk, to Ann, copies her words: hers to find, his to skip.
    assert_eq!(sources(&together[0]), ["bob-1", "cc", "digest"]);
    assert_eq!(sources(&together[1]), ["cc", "desk-notes", "digest"]);
    assert_eq!(sources(&together[2]), ["call", "cc"]);
}

#[tokio::test]
async fn the_samples_of_searches_made_together_each_leave_out_their_own_points_only() {
    // The lookup behind the 5-gram samples of a batch: each search's own
    // points are left out of its sample, and only of its own.
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest(&c.name, ann_corpus()).await.expect("ingest");
    let holders: Vec<(uuid::Uuid, String)> = sqlx::query_as(
        "SELECT c.chunk_id, s.external_id FROM chunks c JOIN sources s USING (source_id) \
         WHERE c.tenant_id = $1 AND c.text ILIKE '%sacramento%' ORDER BY c.chunk_id",
    )
    .bind(app.keys.tenant_id)
    .fetch_all(&app.pool)
    .await
    .expect("the newsletter's chunks");
    assert_eq!(holders.len(), 11, "Ann's chunk and ten copies");
    let key = index::word_keys(app.keys.tenant_id, ["sacramento"])[0];
    let (first, second) = (holders[0].0, holders[1].0);
    let mut tx = lethe::store::lineage::index_lookups(&app.pool).await.expect("begin");
    let found = lethe::store::lineage::chunk_ids_per_term(
        &mut tx,
        app.keys.tenant_id,
        &[(0, key), (1, key)],
        &[(0, first), (1, second)],
        100,
        1024,
    )
    .await
    .expect("samples");
    tx.commit().await.expect("commit");
    let of = |n: i32| {
        let mut ids: Vec<uuid::Uuid> = found.iter().filter(|(m, k, _)| *m == n && *k == key).map(|(_, _, id)| *id).collect();
        ids.sort_unstable();
        ids
    };
    let all_but = |skip: uuid::Uuid| holders.iter().map(|(id, _)| *id).filter(|id| *id != skip).collect::<Vec<_>>();
    assert_eq!(of(0), all_but(first));
    assert_eq!(of(1), all_but(second));
    // A sample of 3 is taken after the exclusion: still 3.
    let mut tx = lethe::store::lineage::index_lookups(&app.pool).await.expect("begin");
    let capped = lethe::store::lineage::chunk_ids_per_term(&mut tx, app.keys.tenant_id, &[(0, key)], &[(0, first)], 3, 1024)
        .await
        .expect("sample");
    tx.commit().await.expect("commit");
    assert_eq!(capped.len(), 3);
    assert!(capped.iter().all(|(_, _, id)| *id != first));
}

#[tokio::test]
async fn an_address_is_looked_up_by_all_the_words_of_its_local_part_not_by_its_longest() {
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    // Thirty chunks hold her first name (the local part's longest word),
    // one her address, one every word of it without being it.
    let mut corpus: Vec<pb::IngestChunk> =
        (0..30).map(|i| chunk(&format!("jen-{i}"), 0, "Jennifer sent the storage report.", &["bob"])).collect();
    corpus.push(chunk("named", 0, "Write to jennifer.k.kinwton@example.com today.", &["bob"]));
    corpus.push(chunk("all-words", 0, "Kinwton and Jennifer met; K was late.", &["bob"]));
    app.ingest(&c.name, corpus).await.expect("ingest");
    let query = lethe::residual::ResidualQuery {
        identifiers: vec![lethe::domain::Identifier {
            kind: lethe::domain::IdentifierKind::Email,
            value: "jennifer.k.kinwton@example.com".into(),
        }],
        limit: 100,
        ..Default::default()
    };
    let found = lethe::residual::search_counted(&app.ctx, app.keys.tenant_id, &query).await.expect("search");
    let sources: Vec<&str> = found.candidates.iter().map(|c| c.source_id.as_str()).collect();
    assert_eq!(sources, ["named"]);
    // Read: the two chunks holding all three words, not the thirty that
    // hold only `jennifer` (which the index proposed before: 32).
    assert_eq!(found.read, 2);
}

/// A mail with a link whose address is escaped (`zk%40corp.example`), ingested
/// beside `other` into a new collection of an app whose own re-key is off, with
/// no index keys at all (the most a row written before the readings can lack).
async fn link_with_stale_keys(other: &str) -> TestApp {
    let app = spawn_app_configured(Options::default(), |s| s.residual.rekey_listed = false).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    app.ingest(&c.name, vec![chunk("link", 0, STALE_LINK, &["bob"]), chunk("plain", 0, other, &["bob"])])
        .await
        .expect("ingest");
    let stale = sqlx::query(r"UPDATE chunks SET terms = '{}' WHERE text LIKE '%\%40%'").execute(&app.pool).await.expect("stale keys");
    assert_eq!(stale.rows_affected(), 1);
    app
}

const STALE_LINK: &str = "Manage your lists: https://lists.example/u?email=zk%40corp.example&list=desk";

/// A text with escapes written before texts were read unescaped carries
/// the keys of its words as written (here: none at all, the most a stale
/// row can lack); migration `20261204000010` lists it, residual searches
/// read it whole while it is listed, and the re-key (the service's, from
/// its start; the test's own here) gives it its keys, texts untouched.
#[tokio::test]
async fn texts_with_escapes_written_before_are_re_keyed_and_found_before_and_after() {
    // The test re-keys itself: the service's own re-key stays off.
    let app = link_with_stale_keys("zk wrote").await;
    let (tenant, link) = (app.keys.tenant_id, STALE_LINK);
    let query = lethe::residual::ResidualQuery {
        identifiers: vec![lethe::domain::Identifier { kind: lethe::domain::IdentifierKind::Email, value: "zk@corp.example".into() }],
        limit: 100,
        ..Default::default()
    };
    let sources = || async {
        let found = lethe::residual::search_counted(&app.ctx, tenant, &query).await.expect("search");
        found.candidates.iter().map(|c| c.source_id.clone()).collect::<Vec<_>>()
    };
    assert!(sources().await.is_empty(), "stale keys do not find it");
    sqlx::query("INSERT INTO chunks_rekey SELECT tenant_id, chunk_id FROM chunks WHERE text ~ '%[0-9A-Fa-f]{2}|&#[0-9xX]'")
        .execute(&app.pool)
        .await
        .expect("listed as the migration lists");
    assert_eq!(sources().await, ["link"], "read whole while listed");
    assert_eq!(lethe::residual::index::rekey_listed(&app.pool).await.expect("re-key"), 1);
    assert_eq!(sources().await, ["link"], "found by its new keys");
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks_rekey").fetch_one(&app.pool).await.expect("count");
    assert_eq!(left, 0);
    let text: String = sqlx::query_scalar(r"SELECT text FROM chunks WHERE text LIKE '%\%40%'").fetch_one(&app.pool).await.expect("text");
    assert_eq!(text, link);
    assert_eq!(lethe::residual::index::rekey_listed(&app.pool).await.expect("nothing left"), 0);
}

/// Texts written before named references, JSON's `\u` escapes and
/// quoted-printable were read (`Jos&eacute;`, `Jos\u00e9`, `N=C3=BA=` at a
/// line's end) carry the keys of their words as written; migrations
/// `20261205000010` and `…020` list them (and not a text whose references
/// spell no letter); residual searches read them whole while they are
/// listed, and the re-key makes them found by their keys.
#[tokio::test]
async fn texts_with_references_escapes_or_soft_breaks_written_before_are_listed_re_keyed_and_found() {
    let app = spawn_app_configured(Options::default(), |s| s.residual.rekey_listed = false).await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let texts = [
        ("html", "<p>Thanks, Jos&eacute; N&uacute;&ntilde;ez</p>"),
        ("json", r#"{"from": "Jos\u00e9 N\u00fa\u00f1ez"}"#),
        ("amp", "Smith &amp; Jones &lt;3"),
        ("quoted-printable", "Thanks, Jos=C3=A9 N=C3=BA=\n=C3=B1ez"),
    ];
    app.ingest(&c.name, texts.iter().map(|(s, t)| chunk(s, 0, t, &["bob"])).collect()).await.expect("ingest");
    let stale = sqlx::query("UPDATE chunks SET terms = '{}' WHERE text LIKE '%Jos%'").execute(&app.pool).await.expect("stale keys");
    assert_eq!(stale.rows_affected(), 3);
    let query = lethe::residual::ResidualQuery {
        identifiers: vec![lethe::domain::Identifier { kind: lethe::domain::IdentifierKind::Name, value: "José Núñez".into() }],
        limit: 100,
        ..Default::default()
    };
    let sources = || async {
        let found = lethe::residual::search_counted(&app.ctx, app.keys.tenant_id, &query).await.expect("search");
        let mut s = found.candidates.iter().map(|c| c.source_id.clone()).collect::<Vec<_>>();
        s.sort_unstable();
        s
    };
    assert!(sources().await.is_empty(), "stale keys do not find them");
    for listing in [
        include_str!("../../migrations/20261205000010_residual_index_named_references.sql"),
        include_str!("../../migrations/20261205000020_residual_index_quoted_printable.sql"),
    ] {
        sqlx::raw_sql(listing).execute(&app.pool).await.expect("the migrations' listing");
    }
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks_rekey").fetch_one(&app.pool).await.expect("count");
    assert_eq!(listed, 3, "the three texts, not the one with `&amp;`");
    assert_eq!(sources().await, ["html", "json", "quoted-printable"], "read whole while listed");
    assert_eq!(lethe::residual::index::rekey_listed(&app.pool).await.expect("re-key"), 3);
    assert_eq!(sources().await, ["html", "json", "quoted-printable"], "found by their new keys");
}

/// A start after an upgrade that listed texts does not wait for their
/// re-key: the service serves at once, re-keys in the background, and
/// residual searches find the listed texts meanwhile (read whole) and after
/// (by their keys). Here the re-key is held up by a lock on the listed
/// chunk while the new replica serves.
#[tokio::test]
async fn a_start_after_an_upgrade_serves_while_it_re_keys_and_finds_the_listed_texts_meanwhile() {
    // The first replica leaves the list alone (its re-key off), so that the
    // second one's is the re-key the test holds up.
    let app = link_with_stale_keys("ann wrote").await;
    sqlx::query(r"INSERT INTO chunks_rekey SELECT tenant_id, chunk_id FROM chunks WHERE text LIKE '%\%40%'")
        .execute(&app.pool)
        .await
        .expect("listed as an upgrade lists");
    // A write holding the listed chunk: the new replica's re-key waits for it.
    let mut write = app.pool.begin().await.expect("begin");
    sqlx::query(r"SELECT 1 FROM chunks WHERE text LIKE '%\%40%' FOR UPDATE").execute(&mut *write).await.expect("lock");
    let url = app.settings.database.url.expose_secret().to_owned();
    let (signing, master) = (app.settings.audit.signing_key_file.clone(), app.settings.keys.master_key_file.clone());
    let replica = spawn_app_on(&url, Options::default(), move |s| {
        s.audit.signing_key_file = signing;
        s.keys.master_key_file = master;
    })
    .await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE OF c%'",
        )
        .fetch_one(&app.pool)
        .await
        .expect("activity");
        if waiting > 0 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the replica's re-key never started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The replica serves while its re-key waits, and its searches read the
    // listed text whole.
    let r = pb::SearchResidualsRequest {
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: "zk@corp.example".into() }],
        limit: 100,
    };
    let search = || async {
        let found = replica.client.clone().search_residuals(req(&app.keys.ak, r.clone())).await.expect("search");
        found.into_inner().candidates.into_iter().map(|c| c.source_id).collect::<Vec<_>>()
    };
    assert_eq!(search().await, ["link"], "found while its re-key waits");
    let listed: i64 = sqlx::query_scalar("SELECT count(*) FROM chunks_rekey").fetch_one(&app.pool).await.expect("count");
    assert_eq!(listed, 1, "still listed");
    write.rollback().await.expect("the write ends");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while sqlx::query_scalar::<_, i64>("SELECT count(*) FROM chunks_rekey").fetch_one(&app.pool).await.expect("count") > 0 {
        assert!(std::time::Instant::now() < deadline, "the re-key did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(found_by(&app, "zk").await, ["link"], "the new keys");
    assert_eq!(search().await, ["link"], "found by its keys");
}

#[tokio::test]
async fn a_greek_surname_in_capitals_is_found_through_the_index() {
    // Lower case, a final sigma is `ς`; in capitals it is `Σ`, whose lower
    // case letter by letter is `σ`: the regexes fold them together, and
    // the index must propose the chunk too.
    let app = spawn_app().await;
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let corpus = vec![
        chunk("caps", 0, "ΥΠΟΓΡΑΦΗ: ΝΙΚΟΣ ΠΑΠΑΔΟΠΟΥΛΟΣ, ΛΟΓΙΣΤΗΡΙΟ", &["bob"]),
        chunk("mixed", 0, "Ο Νικος Παπαδοπουλος έστειλε την αναφορά.", &["bob"]),
        chunk("other", 0, "Η αναφορά αποθήκευσης καθυστερεί.", &["bob"]),
    ];
    app.ingest(&c.name, corpus).await.expect("ingest");
    let query = lethe::residual::ResidualQuery {
        identifiers: vec![lethe::domain::Identifier {
            kind: lethe::domain::IdentifierKind::Name,
            value: "Νικος Παπαδοπουλος".into(),
        }],
        limit: 100,
        ..Default::default()
    };
    let found = lethe::residual::search_counted(&app.ctx, app.keys.tenant_id, &query).await.expect("search");
    let mut sources: Vec<&str> = found.candidates.iter().map(|c| c.source_id.as_str()).collect();
    sources.sort_unstable();
    assert_eq!(sources, ["caps", "mixed"]);
    assert_eq!(found.read, 2, "the chunk without the name is not read");
}

/// Index pages a lookup of the residual index reads besides its own entries:
/// the pending list (every pending page) and the metapage. A key no chunk
/// holds, through the index (sequential scans off for the statement).
async fn pending_pages_read(app: &TestApp) -> i64 {
    let mut tx = app.pool.begin().await.unwrap();
    sqlx::raw_sql("SET LOCAL enable_seqscan = off").execute(&mut *tx).await.unwrap();
    let plan: serde_json::Value = sqlx::query_scalar(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) SELECT chunk_id FROM chunks WHERE terms && ARRAY[7]",
    )
    .fetch_one(&mut *tx)
    .await
    .unwrap();
    fn scan(node: &serde_json::Value) -> Option<&serde_json::Value> {
        if node["Node Type"] == "Bitmap Index Scan" && node["Index Name"] == "chunks_terms_idx" {
            return Some(node);
        }
        node["Plans"].as_array()?.iter().find_map(scan)
    }
    let node = scan(&plan[0]["Plan"]).unwrap_or_else(|| panic!("the lookup goes through the index: {plan}"));
    node["Shared Hit Blocks"].as_i64().unwrap() + node["Shared Read Blocks"].as_i64().unwrap()
}

/// Pages a lookup of a merged index of 150 chunks reads beyond the empty
/// index's (its entry tree is a level deeper); the pending list of those
/// chunks is ~25 pages.
const INDEX_GROWTH: i64 = 2;

/// Mail-like chunks for Ann: `n` of others' mail, the last `mentions` of
/// which name her.
fn pending_corpus(n: usize, mentions: usize) -> Vec<pb::IngestChunk> {
    (0..n)
        .map(|i| {
            let named = if i + mentions >= n { "Ann Lee asked for it." } else { "Nobody asked for it." };
            let text = format!(
                "From: desk{i}@example.com\nSubject: position report {i}\n\nThe west desk closed {i} lots of the \
                 Palo Verde spread at the index price, and the storage book rolled into the next month. {named}"
            );
            chunk(&format!("mail-{i}"), 0, &text, &["desk"])
        })
        .collect()
}

/// Written chunks' keys wait in GIN's pending list (cheap to write, read by
/// every lookup); the service merges it in the background
/// (`residual::merger`), and what is pending is found all the same.
#[tokio::test]
async fn the_residual_index_pending_list_is_merged_in_the_background_and_found_meanwhile() {
    // Without the merger, and with sequential scans off in the service's
    // sessions, so that its residual queries go through the index.
    let db = fresh_database().await;
    let mut admin = sqlx::PgConnection::connect(&database_url()).await.unwrap();
    let name = db.rsplit('/').next().unwrap();
    sqlx::raw_sql(&format!("ALTER DATABASE \"{name}\" SET enable_seqscan = off")).execute(&mut admin).await.unwrap();
    let app = spawn_app_on(&db, Options::default(), |s| s.residual.index_merge_interval_ms = 0).await;
    // Autovacuum merges the list too: not in this test.
    sqlx::raw_sql("ALTER TABLE chunks SET (autovacuum_enabled = false)").execute(&app.pool).await.unwrap();
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let idle = pending_pages_read(&app).await;
    app.ingest(&c.name, pending_corpus(150, 2)).await.expect("ingest");
    let pending = pending_pages_read(&app).await - idle;
    assert!(pending >= 10, "the keys wait in the pending list: {pending} pages");
    let r = pb::SearchResidualsRequest {
        identifiers: vec![pb::Identifier { kind: pb::IdentifierKind::Name as i32, value: "Ann Lee".into() }],
        limit: 100,
    };
    let search = || async {
        let found = app.client.clone().search_residuals(req(&app.keys.ak, r.clone())).await.expect("search");
        let mut sources: Vec<String> = found.into_inner().candidates.into_iter().map(|c| c.source_id).collect();
        sources.sort();
        sources
    };
    assert_eq!(search().await, ["mail-148", "mail-149"], "found while pending");
    assert!(lethe::store::lineage::merge_residual_index(&app.pool).await.unwrap() > 0);
    let merged = pending_pages_read(&app).await - idle;
    assert!(merged <= INDEX_GROWTH, "merged: {merged} pages more than the empty index's lookup");
    assert_eq!(search().await, ["mail-148", "mail-149"], "found once merged");

    // With the merger (as configured by default, here every 50 ms), the list
    // is emptied without anyone asking.
    let app = spawn_app_configured(Options::default(), |s| s.residual.index_merge_interval_ms = 50).await;
    sqlx::raw_sql("ALTER TABLE chunks SET (autovacuum_enabled = false)").execute(&app.pool).await.unwrap();
    let c = app.create_collection("mail", pb::Backend::Pgvector).await;
    let idle = pending_pages_read(&app).await;
    app.ingest(&c.name, pending_corpus(150, 0)).await.expect("ingest");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let read = pending_pages_read(&app).await - idle;
        if read <= INDEX_GROWTH {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the merger left the pending list: {read} pages read");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
