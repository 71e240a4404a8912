//! The residual stage at N chunks of realistic text (`--residual-chunks`,
//! default min(N, 100,000)): the dev corpus (`--corpus`, default
//! `../shared/data/enron-dev.jsonl`) repeated, each repetition with its people
//! renamed from a generated list (each address of the corpus becomes one
//! generated person per repetition, so a name is as frequent as the person it
//! replaces; names of 64 × 256 first and last names repeat past that, as
//! namesakes do), chunked as the evaluation chunks messages, one chunk per
//! vector, in collection `residual_text_2` (loaded once, kept; a load cut
//! short resumes where it stopped).
//!
//! For senders of 5–60 chunks: `residual::search` as the residual stage
//! calls it (their address and name, their own chunks as probes and
//! excluded), through the residual index and, for a few of them, the old way
//! (every chunk text of the tenant; `residual.use_index = false`) in the same
//! run, with the candidates of both compared.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use lethe::grpc::pb;
use lethe::vector_store::{PgVectorStore, VectorStore};
use regex::Regex;
use uuid::Uuid;

use crate::client::track;
use crate::corpus::{self, Message};
use crate::data::{DIM, Rng, vector};
use crate::report::{Row, Stats};
use crate::setup::{Env, req};
use crate::Args;

/// `_2`: people renamed from 65,536 surnames (see [`person`]).
const COLLECTION: &str = "residual_text_2";
const CHUNK_SIZE: usize = 1000;
const FIRST: [&str; 64] = [
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william", "elizabeth", "david",
    "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah", "charles", "karen", "daniel", "nancy",
    "matthew", "lisa", "anthony", "betty", "mark", "margaret", "donald", "sandra", "steven", "ashley", "paul",
    "kimberly", "andrew", "emily", "joshua", "donna", "kenneth", "michelle", "kevin", "carol", "brian", "amanda",
    "george", "melissa", "timothy", "deborah", "ronald", "stephanie", "edward", "rebecca", "jason", "sharon",
    "jeffrey", "laura", "ryan", "cynthia", "jacob", "kathleen", "gary", "amy", "nicholas", "shirley",
];
const LAST_STEMS: [&str; 32] = [
    "hal", "mor", "bren", "cas", "dun", "fer", "gil", "har", "kel", "lan", "mar", "nor", "pem", "ros", "sal", "tor",
    "wal", "ash", "bel", "cor", "dal", "eck", "fal", "gar", "hol", "ing", "jor", "kin", "lor", "mel", "ost", "quin",
];
const LAST_MIDDLES: [&str; 16] = ["", "a", "e", "i", "o", "u", "en", "er", "in", "on", "ar", "el", "is", "ol", "an", "ur"];
const LAST_SECOND: [&str; 16] =
    ["", "b", "d", "g", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "sh", "th"];
const LAST_ENDS: [&str; 8] = ["ford", "ton", "berg", "wick", "ley", "stein", "man", "ridge"];
/// Distinct surnames: 65,536.
const SURNAMES: usize = LAST_STEMS.len() * LAST_MIDDLES.len() * LAST_SECOND.len() * LAST_ENDS.len();

fn cap(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// The generated person `k`: (first, last, local part). Consecutive people
/// get different surnames (65,536 of them, then each comes back with the
/// next first name): at a million chunks (~150,000 people) a surname is
/// shared by two or three people, as at a company, and a first name by
/// thousands. (An earlier list of 256 surnames gave every surname to ~64
/// people, so a surname's index key proposed ~64 times the chunks a
/// person's does.)
fn person(k: usize) -> (String, String, String) {
    let l = k % SURNAMES;
    let first = FIRST[(k / SURNAMES) % FIRST.len()];
    let (stem, rest) = (l % LAST_STEMS.len(), l / LAST_STEMS.len());
    let (middle, rest) = (rest % LAST_MIDDLES.len(), rest / LAST_MIDDLES.len());
    let (second, end) = (rest % LAST_SECOND.len(), rest / LAST_SECOND.len());
    let last = format!("{}{}{}{}", LAST_STEMS[stem], LAST_MIDDLES[middle], LAST_SECOND[second], LAST_ENDS[end % LAST_ENDS.len()]);
    let round = k / (FIRST.len() * SURNAMES);
    let local = if round == 0 { format!("{first}.{last}") } else { format!("{first}.{last}{round}") };
    (cap(first), cap(&last), local)
}

/// How the corpus names one of its people: address `first.last@domain`.
struct Original {
    first: String,
    re: Regex,
}

/// Renames the corpus's people, one generated person per address and repetition.
struct Renamer {
    originals: HashMap<String, Option<Original>>,
    ids: HashMap<(String, usize), usize>,
}

impl Renamer {
    fn original(&mut self, address: &str) -> Option<&Original> {
        self.originals
            .entry(address.to_owned())
            .or_insert_with(|| {
                let (local, _) = address.split_once('@')?;
                let (first, last) = local.split_once('.')?;
                if first.len() < 2 || last.len() < 2 || !local.chars().all(|c| c.is_ascii_alphabetic() || c == '.') {
                    return None;
                }
                let (f, l, lo) = (regex::escape(first), regex::escape(last), regex::escape(local));
                let (cf, cl, ul) = (cap(first), cap(last), last.to_uppercase());
                let re = Regex::new(&format!(
                    r"(?i:\b{lo}\b|\b{f}\s+{l}\b|\b{l},\s*{f}\b)|\b{cf}\b|\b{cl}\b|\b{ul}\b",
                    cf = regex::escape(&cf),
                    cl = regex::escape(&cl),
                    ul = regex::escape(&ul)
                ))
                .ok()?;
                Some(Original { first: first.to_owned(), re })
            })
            .as_ref()
    }

    fn id(&mut self, address: &str, rep: usize) -> usize {
        let n = self.ids.len();
        *self.ids.entry((address.to_owned(), rep)).or_insert(n)
    }

    /// The message's text with every From/To/Cc person renamed, and the new sender.
    fn rename(&mut self, m: &Message, rep: usize) -> (String, String) {
        let mut text = m.text();
        let mut sender = m.from.clone();
        for address in std::iter::once(&m.from).chain(&m.to).chain(&m.cc) {
            let k = self.id(address, rep);
            let (nf, nl, nlocal) = person(k);
            let Some(o) = self.original(address) else { continue };
            let domain = address.split_once('@').map_or("example.com", |(_, d)| d);
            if *address == m.from {
                sender = format!("{nlocal}@{domain}");
            }
            let first = o.first.clone();
            text = o
                .re
                .replace_all(&text, |c: &regex::Captures| {
                    let s = c[0].to_lowercase();
                    if s.contains('.') {
                        nlocal.clone()
                    } else if s.contains(',') {
                        format!("{nl}, {nf}")
                    } else if s.split_whitespace().count() > 1 {
                        format!("{nf} {nl}")
                    } else if s == first {
                        nf.clone()
                    } else {
                        nl.clone()
                    }
                })
                .into_owned();
        }
        (text, sender)
    }
}

/// The data set's chunks in order, (point, sender's address), made as they
/// are read: a million points with their vectors and texts would hold
/// ~2.5 GB in this process, which Lethe's own memory is measured in.
struct Chunks<'a> {
    messages: &'a [Message],
    renamer: Renamer,
    n: usize,
    made: usize,
    /// (repetition, message) next to chunk.
    next: (usize, usize),
    pending: std::collections::VecDeque<(pb::TrackedPoint, String)>,
}

impl<'a> Chunks<'a> {
    fn new(messages: &'a [Message], n: usize) -> Self {
        let renamer = Renamer { originals: HashMap::new(), ids: HashMap::new() };
        Self { messages, renamer, n, made: 0, next: (0, 0), pending: std::collections::VecDeque::new() }
    }
}

impl Iterator for Chunks<'_> {
    type Item = (pb::TrackedPoint, String);

    fn next(&mut self) -> Option<Self::Item> {
        let mut empty_pass = 0;
        while self.pending.is_empty() && !self.messages.is_empty() && empty_pass <= self.messages.len() {
            empty_pass += 1;
            let (rep, k) = self.next;
            self.next = if k + 1 == self.messages.len() { (rep + 1, 0) } else { (rep, k + 1) };
            let m = &self.messages[k];
            let (text, sender) = self.renamer.rename(m, rep);
            for (i, chunk) in corpus::chunks(&text, CHUNK_SIZE).into_iter().enumerate() {
                let point = pb::TrackedPoint {
                    point_id: Uuid::new_v5(&Uuid::NAMESPACE_OID, format!("res~{}~{rep}~{i}", m.id).as_bytes()).to_string(),
                    source_id: format!("{}#{rep}", m.id),
                    source_uri: String::new(),
                    source_kind: "mail".into(),
                    text: chunk,
                    tags: vec![pb::SubjectTag { subject_id: sender.clone(), role: pb::TagRole::Owner as i32 }],
                    vector: Vec::new(),
                };
                self.pending.push_back((point, sender.clone()));
            }
        }
        if self.made == self.n {
            return None;
        }
        let (mut point, sender) = self.pending.pop_front()?;
        point.vector = vector(3, self.made as u64);
        self.made += 1;
        Some((point, sender))
    }
}

pub async fn residual(args: &Args, env: &mut Env, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let n = args.residual_chunks.unwrap_or(args.size.min(100_000));
    let path = args.corpus.clone().unwrap_or_else(|| "../shared/data/enron-dev.jsonl".into());
    if args.corpus.is_none() && !path.exists() {
        // The corpus is not part of the repository (a clean checkout has no
        // ../shared): the realistic-text rows need it.
        eprintln!("==> residual search over realistic text: SKIPPED (no corpus at {}; pass --corpus)", path.display());
        return Ok(());
    }
    let messages = corpus::read(&path, None)?;
    // Loaded once (marked in bench_meta: the throughput figure erases some
    // senders, so the chunk count falls below n afterwards).
    let marked: Option<i64> =
        sqlx::query_scalar("SELECT (value->>'n')::bigint FROM bench_meta WHERE key = 'residual_text_2'")
            .fetch_optional(&env.raw)
            .await?;
    let loaded: i64 = match marked {
        Some(m) => m,
        None => sqlx::query_scalar(
            "SELECT count(*) FROM chunks c JOIN collections k USING (collection_id) WHERE k.tenant_id = $1 AND k.name = $2",
        )
        .bind(env.tenant_id)
        .bind(COLLECTION)
        .fetch_one(&env.raw)
        .await?,
    };
    let load = usize::try_from(loaded).unwrap_or(0) < n;
    // A load cut short resumes (points are tracked in order, two requests
    // in flight: the last two thousand before the count are sent again).
    let from = if load { usize::try_from(loaded).unwrap_or(0).saturating_sub(2000) / 1000 * 1000 } else { n };
    if load {
        eprintln!("==> loading {n} chunks of renamed corpus text into {COLLECTION} (from {from})");
        let _ = env
            .client
            .clone()
            .create_collection(req(&env.sk, pb::CreateCollectionRequest {
                name: COLLECTION.into(),
                backend: pb::Backend::Pgvector as i32,
                dimension: DIM as u32,
                store_text: Some(true),
                ..Default::default()
            }))
            .await;
        // Without the HNSW index, as the main data set: its inserts would
        // dominate the load (an hour at a million), and the residual stage
        // does not use it (exact search, only where no text is stored).
        let spec = lethe::store::lineage::collection_by_name(&env.raw, env.tenant_id, COLLECTION)
            .await?
            .ok_or_else(|| anyhow::anyhow!("collection {COLLECTION} missing"))?;
        sqlx::raw_sql(&format!("DROP INDEX IF EXISTS \"{}_hnsw\"", spec.backend_name)).execute(&env.raw).await?;
    }
    let t = Instant::now();
    let mut by_sender: BTreeMap<String, Vec<Uuid>> = BTreeMap::new();
    let mut part: Vec<pb::TrackedPoint> = Vec::new();
    for (i, (p, sender)) in Chunks::new(&messages, n).enumerate() {
        by_sender.entry(sender).or_default().push(p.point_id.parse()?);
        if i >= from {
            part.push(p);
        }
        if part.len() == 50_000 || (i + 1 == n && !part.is_empty()) {
            track(env, &env.sk, COLLECTION, std::mem::take(&mut part), 2).await?;
            eprintln!("    tracked {} / {n} in {:.0} s", i + 1, t.elapsed().as_secs_f64());
        }
    }
    if load {
        let tracked = t.elapsed().as_secs_f64();
        crate::setup::settle_residual_index(&env.raw).await?;
        eprintln!("    loaded in {tracked:.0} s, its residual index merged after {:.0} s", t.elapsed().as_secs_f64());
        sqlx::raw_sql("ANALYZE").execute(&env.raw).await?;
    }
    sqlx::query(
        "INSERT INTO bench_meta (key, value) VALUES ('residual_text_2', jsonb_build_object('n', $1::bigint)) \
         ON CONFLICT (key) DO UPDATE SET value = jsonb_build_object('n', GREATEST((bench_meta.value->>'n')::bigint, $1))",
    )
    .bind(i64::try_from(n)?)
    .execute(&env.raw)
    .await?;
    let small: Vec<(String, usize)> =
        by_sender.iter().filter(|(_, c)| c.len() <= 10).map(|(s, c)| (s.clone(), c.len())).collect();
    // People an earlier run's throughput figure erased have nothing left to
    // search from (no own chunks): they would make the search look fast.
    let erased: std::collections::HashSet<String> = sqlx::query_scalar(
        "SELECT jsonb_array_elements_text(value) FROM bench_meta WHERE key = 'residual_erased_2'",
    )
    .fetch_all(&env.raw)
    .await?
    .into_iter()
    .collect();
    let mut senders: Vec<(&str, Vec<Uuid>)> = by_sender
        .iter()
        .filter(|(s, c)| (5..=60).contains(&c.len()) && !erased.contains(*s))
        .map(|(s, c)| (s.as_str(), c.clone()))
        .collect();
    let mut rng = Rng::new(n as u64);
    for i in (1..senders.len()).rev() {
        senders.swap(i, rng.below(i + 1));
    }
    let searches = (args.runs * 4).max(10).min(senders.len());
    let old_runs = if args.runs("residual-old") { args.runs.clamp(1, 5).min(searches) } else { 0 };
    let spec = lethe::store::lineage::collection_by_name(&env.raw, env.tenant_id, COLLECTION)
        .await?
        .ok_or_else(|| anyhow::anyhow!("collection {COLLECTION} missing"))?;
    let store = PgVectorStore::new(env.raw.clone());
    let (mut new_ms, mut old_ms, mut same_ms, mut differ) = (Vec::new(), Vec::new(), Vec::new(), 0);
    eprintln!("==> residual stage over {n} chunks of text: {searches} senders indexed, {old_runs} also the old way");
    for (k, (sender, own)) in senders.iter().take(searches).enumerate() {
        let name = name_of(sender);
        let t = Instant::now();
        let probes: Vec<lethe::residual::Probe> = store
            .retrieve(&spec, own, true)
            .await?
            .into_iter()
            .filter_map(|p| p.vector.map(|v| lethe::residual::Probe { text: p.payload.text, vector: v }))
            .collect();
        let query = lethe::residual::ResidualQuery {
            identifiers: vec![
                lethe::domain::Identifier { kind: lethe::domain::IdentifierKind::Email, value: (*sender).to_owned() },
                lethe::domain::Identifier { kind: lethe::domain::IdentifierKind::Name, value: name },
            ],
            probes,
            exclude: own.iter().copied().collect(),
            limit: env.settings.residual.max_candidates,
            deadline: None,
        };
        let setup = t.elapsed().as_secs_f64() * 1e3;
        let found = search(env, &query, true).await?;
        new_ms.push(found.0 + setup);
        let mut line = format!("    {sender} ({} own chunks): indexed {:.0} ms, {} candidates", own.len(), found.0 + setup, found.1.len());
        if k < old_runs {
            let old = search(env, &query, false).await?;
            old_ms.push(old.0 + setup);
            same_ms.push(found.0 + setup);
            differ += usize::from(old.1 != found.1);
            line.push_str(&format!("; old way {:.0} ms, {} candidates", old.0 + setup, old.1.len()));
        }
        eprintln!("{line}");
    }
    let (st, so, ss) = (Stats::of(&new_ms), Stats::of(&old_ms), Stats::of(&same_ms));
    rows.push(
        Row::new("pgvector", &format!("residual stage for one person over {n} chunks of text, indexed (p50; p95 {:.0} ms)", st.p95), "ms", &new_ms, None)
            .goal("p95 ≤ 500 ms")
            .note(format!(
                "residual::search as the stage calls it (address + name, own chunks as probes, lexical and derived on), \
                 {} senders of 5–60 chunks; old way (every chunk text read): p50 {:.0} ms, p95 {:.0} ms over {} of them, \
                 whose indexed p50 is {:.0} ms: ratio old/indexed {:.1} (p50, the same people); candidates differed for {differ} of {}",
                new_ms.len(),
                so.median,
                so.p95,
                old_ms.len(),
                ss.median,
                so.median / ss.median.max(1e-9),
                old_ms.len()
            )),
    );
    if !args.runs("residual-throughput") {
        return Ok(());
    }
    throughput(args, env, small, rows).await
}

/// The person a generated address names: "First Last".
fn name_of(sender: &str) -> String {
    let name = sender.split('@').next().unwrap_or_default().split('.').map(cap).collect::<Vec<_>>().join(" ");
    name.trim_end_matches(char::is_numeric).to_owned()
}

/// Erasure throughput of small senders (≤ 10 chunks of the realistic text)
/// with the residual stage off (the service as configured for the other
/// figures) and on (lexical and derived, the default policy `report`), each
/// run on senders not erased before (an erased sender stays erased: they are
/// remembered in bench_meta). Each job gives the sender's address and name.
async fn throughput(args: &Args, env: &mut Env, small: Vec<(String, usize)>, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let erased: Vec<String> = sqlx::query_scalar(
        "SELECT jsonb_array_elements_text(value) FROM bench_meta WHERE key = 'residual_erased_2'",
    )
    .fetch_all(&env.raw)
    .await?;
    let erased: std::collections::HashSet<String> = erased.into_iter().collect();
    let mut fresh: Vec<(String, usize)> = small.into_iter().filter(|(s, _)| !erased.contains(s)).collect();
    let mut rng = Rng::new(fresh.len() as u64 + 7);
    for i in (1..fresh.len()).rev() {
        fresh.swap(i, rng.below(i + 1));
    }
    let runs = args.runs.max(1);
    let workers = env.settings.erasure.workers;
    // Each of the three services: a warm-up, then `runs` runs of `jobs` senders.
    let per_service = fresh.len() / 3;
    let warm = crate::client::WARM_UP.min(per_service / (runs + 1));
    let jobs = args.jobs.unwrap_or(200).min((per_service - warm) / runs);
    if jobs < 10 {
        eprintln!("==> throughput with the residual stage: SKIPPED (only {} unerased senders of ≤ 10 chunks)", fresh.len());
        return Ok(());
    }
    let batch = env.settings.erasure.batch_size;
    eprintln!(
        "==> throughput, small senders of the realistic text: {jobs} at once, {workers} workers, residual off, then on one job at a time, then on in batches of {batch}, {runs} runs"
    );
    let (warm_senders, fresh) = fresh.split_at(3 * warm);
    let mut warm_senders = warm_senders.chunks(warm);
    let mut senders = fresh.chunks(jobs).take(3 * runs);
    // Residual off in batches, on one job at a time (batch_size 1), on in batches.
    let mut rates: [Vec<f64>; 3] = [Vec::new(), Vec::new(), Vec::new()];
    let mut residual_ms = Vec::new();
    let mut chunks = 0;
    let off = env.settings.clone();
    for (i, (on, batch_size)) in [(false, batch), (true, 1), (true, batch)].into_iter().enumerate() {
        let mut settings = off.clone();
        settings.residual.lexical = on;
        settings.residual.semantic = on;
        settings.erasure.batch_size = batch_size;
        env.restart(settings).await?;
        erase_senders(env, warm_senders.next().unwrap_or_default()).await?;
        for _ in 0..runs {
            let senders = senders.next().unwrap_or_default();
            chunks += senders.iter().map(|(_, n)| n).sum::<usize>();
            let (rate, ids) = erase_senders(env, senders).await?;
            eprintln!("    residual {}, batches of {batch_size}: {rate:.1} jobs/s", if on { "on" } else { "off" });
            rates[i].push(rate);
            // A batched job's events time its batch's round of a stage, not its own stage.
            if on && batch_size == 1 {
                for id in ids.iter().take(20) {
                    let stages = crate::client::stage_times(env, id).await?;
                    residual_ms.extend(stages.iter().filter(|(s, _)| s == "residual").map(|(_, ms)| *ms));
                }
            }
        }
    }
    env.restart(off).await?;
    let r = Stats::of(&residual_ms);
    rows.push(
        Row::new(
            "pgvector",
            &format!("erasure throughput with the residual stage on: {jobs} small senders (≤ 10 chunks) of the realistic text at once, {workers} workers, batches of {batch}"),
            "jobs/s",
            &rates[2],
            None,
        )
        .goal("≥ 300 jobs/s")
        .note(format!(
            "Erase with the sender's address and name (where the address gives one), policy report, lexical + derived through the residual index, \
             each service warmed up first by {warm} untimed erasures of other senders; \
             other senders of the same size, same run: one job at a time per worker (batch_size 1) {:.1} jobs/s, residual stage off {:.1} jobs/s (medians); \
             residual stage under this load p50 {:.0} ms, p95 {:.0} ms ({} jobs run one at a time); {chunks} chunks erased in all",
            Stats::of(&rates[1]).median,
            Stats::of(&rates[0]).median,
            r.median,
            r.p95,
            residual_ms.len()
        )),
    );
    Ok(())
}

/// The sender's address, and their name where the address gives one
/// (`first.last@`; Lethe refuses a name of fewer than 3 letters).
fn identifiers_of(sender: &str) -> Vec<pb::Identifier> {
    let mut out = vec![pb::Identifier { kind: pb::IdentifierKind::Email as i32, value: sender.to_owned() }];
    let name = name_of(sender);
    if name.split_whitespace().count() >= 2 && name.chars().filter(|c| c.is_alphanumeric()).count() >= 3 {
        out.push(pb::Identifier { kind: pb::IdentifierKind::Name as i32, value: name });
    }
    out
}

/// Erases every sender at once (address + name), drains the queue, checks
/// every job completed: (jobs/s, job ids). The senders are remembered as erased.
async fn erase_senders(env: &Env, batch: &[(String, usize)]) -> anyhow::Result<(f64, Vec<String>)> {
    use futures::StreamExt;
    let names: Vec<String> = batch.iter().map(|(s, _)| s.clone()).collect();
    sqlx::query(
        "INSERT INTO bench_meta (key, value) VALUES ('residual_erased_2', to_jsonb($1::text[])) \
         ON CONFLICT (key) DO UPDATE SET value = bench_meta.value || to_jsonb($1::text[])",
    )
    .bind(&names)
    .execute(&env.raw)
    .await?;
    let t = Instant::now();
    let ids: Vec<String> = futures::stream::iter(names.iter().map(|sender| {
        let mut c = env.client.clone();
        let r = req(&env.sk, pb::EraseRequest {
            subject: Some(pb::SubjectRef {
                id: sender.clone(),
                identifiers: identifiers_of(sender),
            }),
            requested_by: "bench".into(),
            reason: "benchmark".into(),
            residual_policy: pb::ResidualPolicy::Report as i32,
            ..Default::default()
        });
        async move { anyhow::Ok(c.erase(r).await?.into_inner().job_id) }
    }))
    .buffer_unordered(crate::client::IN_FLIGHT)
    .collect::<Vec<_>>()
    .await
    .into_iter()
    .collect::<Result<_, _>>()?;
    crate::client::drain(env).await?;
    let rate = names.len() as f64 / t.elapsed().as_secs_f64();
    for id in &ids {
        crate::client::wait(env, id, std::time::Duration::from_millis(5)).await?;
    }
    Ok((rate, ids))
}

/// One search with the index on or off: (ms, sorted candidate points).
async fn search(env: &Env, query: &lethe::residual::ResidualQuery, use_index: bool) -> anyhow::Result<(f64, Vec<Uuid>)> {
    let mut settings = env.settings.clone();
    settings.residual.lexical = true;
    settings.residual.semantic = true;
    settings.residual.use_index = use_index;
    let ctx = lethe::context::Context::new(
        env.raw.clone(),
        lethe::startup::vector_stores(&settings, env.raw.clone()).await?,
        lethe::startup::embedder(&settings)?,
        std::sync::Arc::new(lethe::audit::Signer::load(&settings.audit.signing_key_file, true, &[])?),
        lethe::keys::provider(&settings.keys)?,
        settings,
    );
    let t = Instant::now();
    let found = lethe::residual::search(&ctx, env.tenant_id, query).await?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    let mut ids: Vec<Uuid> = found.iter().map(|c| c.point_id).collect();
    ids.sort_unstable();
    Ok((ms, ids))
}

/// Ingest of realistic text: Track of M chunks of the renamed mail (about
/// 1,000 characters, ~180 residual index keys each) into a new collection of
/// a new tenant, against the raw upsert of the same rows into an identical
/// table (`measure::ingest_once`: Lethe's time runs until the residual
/// index's pending list is merged too, so that it is the whole cost).
pub async fn ingest_text(args: &Args, env: &Env, rows: &mut Vec<Row>) -> anyhow::Result<()> {
    let m = args.ingest_text_chunks.unwrap_or(args.size.min(20_000));
    let path = args.corpus.clone().unwrap_or_else(|| "../shared/data/enron-dev.jsonl".into());
    if m == 0 || (args.corpus.is_none() && !path.exists()) {
        eprintln!("==> ingest of realistic text: SKIPPED (no corpus at {}, or --ingest-text-chunks 0)", path.display());
        return Ok(());
    }
    let messages = corpus::read(&path, None)?;
    let runs = args.ingest_runs.unwrap_or(args.runs);
    eprintln!("==> ingest of realistic text: {m} chunks in batches of 1,000, {runs} runs");
    let points: Vec<pb::TrackedPoint> = Chunks::new(&messages, m).map(|(p, _)| p).collect();
    let batches = crate::measure::raw_batches(&points);
    let first = crate::client::generations(&env.raw, runs as u32).await?;
    let (mut lethe, mut tracked, mut raw, mut floor) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for r in 0..runs as u32 {
        let run = crate::measure::ingest_once(args, env, "ingest_text", points.clone(), &batches, first + r, r).await?;
        lethe.push(run.lethe);
        tracked.push(run.tracked);
        raw.push(run.raw);
        floor.push(run.floor);
    }
    let track_only = Stats::of(&tracked);
    rows.push(
        Row::new(
            "pgvector",
            &format!("ingest of mail text: Track of {m} chunks of ~1,000 characters with vectors, 1,000 per request"),
            "s",
            &lethe,
            Some(&raw),
        )
        .goal("ratio ≤ 1.3")
        .note(format!(
            "Lethe until its residual index's pending list is merged too (Track itself returned after {:.1} s, median); \
             the renamed Enron text in a tenant of its own, beside the data set's chunks; {}; \
             raw: the same rows with their text, INSERT … FROM UNNEST, into an identical table",
            track_only.median,
            if args.ingest_hnsw { "with the HNSW index" } else { "HNSW dropped on both sides" }
        )),
    );
    rows.push(crate::floor::ingest_row("pgvector", &format!("Track of {m} chunks of mail"), &lethe, &floor, &raw));
    Ok(())
}
