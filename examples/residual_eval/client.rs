//! The few Lethe calls the evaluation makes, as a pipeline and a backend
//! would make them over gRPC.

use std::time::{Duration, Instant};

use lethe::grpc::pb::{self, lethe_client::LetheClient};
use tonic::Request;
use tonic::transport::Channel;

/// A connected client with the tenant's keys.
#[derive(Clone)]
pub struct Lethe {
    client: LetheClient<Channel>,
    sk: String,
    ak: String,
}

/// One chunk to ingest: source, ordinal, text, owner tag.
pub struct Chunk {
    pub source_id: String,
    pub ordinal: u32,
    pub text: String,
    pub owner: String,
}

/// A finished erasure and how long it took.
pub struct Finished {
    pub job: pb::ErasureJob,
    pub total: Duration,
    /// Time of the residual stage, from the job's events.
    pub residual: Duration,
}

fn with_key<T>(key: &str, msg: T) -> anyhow::Result<Request<T>> {
    let mut req = Request::new(msg);
    req.metadata_mut().insert("authorization", format!("Bearer {key}").parse()?);
    Ok(req)
}

impl Lethe {
    pub async fn connect(url: &str, sk: String, ak: String) -> anyhow::Result<Self> {
        let channel = tonic::transport::Endpoint::from_shared(url.to_owned())?.connect().await?;
        let client = LetheClient::new(channel).max_decoding_message_size(256 << 20);
        Ok(Self { client, sk, ak })
    }

    /// Registers the collection unless it exists; returns whether it existed.
    pub async fn ensure_collection(&self, name: &str, backend: pb::Backend) -> anyhow::Result<bool> {
        let list = self.client.clone().list_collections(with_key(&self.ak, pb::ListCollectionsRequest {})?).await?;
        if list.into_inner().collections.iter().any(|c| c.name == name) {
            return Ok(true);
        }
        let req = pb::CreateCollectionRequest {
            name: name.into(),
            backend: backend as i32,
            dimension: 384,
            distance: pb::Distance::Cosine as i32,
            ..Default::default()
        };
        self.client.clone().create_collection(with_key(&self.sk, req)?).await?;
        Ok(false)
    }

    /// Ingests chunks in requests of at most `batch`; returns (accepted, suppressed).
    pub async fn ingest(&self, collection: &str, chunks: Vec<Chunk>, batch: usize) -> anyhow::Result<(u64, u64)> {
        let (mut accepted, mut suppressed) = (0, 0);
        let mut chunks = chunks.into_iter().peekable();
        while chunks.peek().is_some() {
            let part: Vec<pb::IngestChunk> = chunks
                .by_ref()
                .take(batch)
                .map(|c| pb::IngestChunk {
                    source_id: c.source_id,
                    source_kind: "email".into(),
                    text: c.text,
                    ordinal: c.ordinal,
                    tags: vec![pb::SubjectTag { subject_id: c.owner, role: pb::TagRole::Owner as i32 }],
                    ..Default::default()
                })
                .collect();
            let req = pb::IngestRequest { collection: collection.into(), chunks: part, subjects: vec![] };
            let w = self.client.clone().ingest(with_key(&self.sk, req)?).await?.into_inner();
            accepted += u64::from(w.accepted);
            suppressed += u64::from(w.suppressed);
        }
        Ok((accepted, suppressed))
    }

    /// The subject's state and its live vector count over all collections.
    pub async fn subject(&self, id: &str) -> anyhow::Result<(String, u64)> {
        let req = pb::CountSubjectRequest { subject_id: id.into() };
        let r = self.client.clone().count_subject(with_key(&self.ak, req)?).await?.into_inner();
        Ok((r.subject_state, r.counts.iter().map(|c| c.before_total).sum()))
    }

    /// Erases a subject with policy `report` and waits for the job to end.
    pub async fn erase_and_wait(&self, tag: &str, address: &str, name: &str) -> anyhow::Result<Finished> {
        let ident = |kind: pb::IdentifierKind, value: &str| pb::Identifier { kind: kind as i32, value: value.into() };
        let req = pb::EraseRequest {
            subject: Some(pb::SubjectRef {
                id: tag.into(),
                identifiers: vec![ident(pb::IdentifierKind::Email, address), ident(pb::IdentifierKind::Name, name)],
            }),
            requested_by: "residual_eval".into(),
            reason: "residual-search evaluation".into(),
            residual_policy: pb::ResidualPolicy::Report as i32,
            ..Default::default()
        };
        let start = Instant::now();
        let job = self.client.clone().erase(with_key(&self.sk, req)?).await?.into_inner();
        let done = loop {
            let req = pb::GetErasureRequest { job_id: job.job_id.clone() };
            let j = self.client.clone().get_erasure(with_key(&self.ak, req)?).await?.into_inner();
            if [pb::JobStatus::Completed, pb::JobStatus::Failed, pb::JobStatus::Refused]
                .iter()
                .any(|s| *s as i32 == j.status)
            {
                break j;
            }
            anyhow::ensure!(
                start.elapsed() < Duration::from_secs(3600),
                "job {} did not finish in an hour",
                job.job_id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let total = start.elapsed();
        anyhow::ensure!(done.status == pb::JobStatus::Completed as i32, "job {} ended: {}", done.job_id, done.error);
        let residual = self.stage_time(&done.job_id, pb::Stage::Residual).await?;
        Ok(Finished { job: done, total, residual })
    }

    /// How long a stage took: from the event before it to its own event.
    async fn stage_time(&self, job_id: &str, stage: pb::Stage) -> anyhow::Result<Duration> {
        let req = pb::GetErasureRequest { job_id: job_id.into() };
        let mut stream = self.client.clone().watch_erasure(with_key(&self.ak, req)?).await?.into_inner();
        let mut events = Vec::new();
        while let Some(e) = stream.message().await? {
            events.push(e);
        }
        let secs = |e: &pb::ErasureEvent| e.at.as_ref().map_or(0.0, |t| t.seconds as f64 + f64::from(t.nanos) / 1e9);
        let at = events.iter().position(|e| e.stage == stage as i32);
        Ok(match at {
            Some(i) if i > 0 => Duration::from_secs_f64((secs(&events[i]) - secs(&events[i - 1])).max(0.0)),
            _ => Duration::ZERO,
        })
    }
}
