//! `LetheService`: each rpc validates, authorises, converts, calls the
//! domain and converts back.

use std::pin::Pin;
use std::time::Duration;

use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert;
use super::pb::{self, lethe_server::Lethe};
use crate::auth::{Action, Authenticator, Principal};
use crate::context::Context;
use crate::domain::{ExternalId, JobStatus};
use crate::error::{LetheError, Result};
use crate::ingest::{SubjectInput, WriteMode, WriteOutcome};
use crate::{attach, audit, catalog, erasure, export, ingest, reindex, residual, retention};

/// The Lethe gRPC service.
pub struct LetheService {
    ctx: Context,
    auth: Authenticator,
}

impl LetheService {
    pub fn new(ctx: Context) -> Self {
        let auth = Authenticator::new(ctx.pool.clone());
        Self { ctx, auth }
    }

    /// The caller; for `Manage` actions, with a turn at the pool held until
    /// the handler returns (`Context::slot`). A unary request's message has
    /// arrived by then, so a slow upload holds no turn. Writes (`Write`)
    /// take theirs where their lock-holding transaction begins, after
    /// embedding (`ingest::write`, `ingest::delete_points`, `put_subject_or_refuse`);
    /// reads (`Audit`) take one connection at a time and no turn, so a
    /// status poll never queues behind long writes.
    async fn authorize<T>(&self, req: &Request<T>, action: Action) -> Result<Caller> {
        let principal = self.auth.authorize(req.metadata(), action).await?;
        let turn = match action {
            Action::Audit | Action::Write => None,
            Action::Manage => self.ctx.slot().await,
        };
        Ok(Caller { principal, _turn: turn })
    }
}

/// An authorised caller, with its turn at the pool if it writes.
struct Caller {
    principal: Principal,
    _turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

impl std::ops::Deref for Caller {
    type Target = Principal;

    fn deref(&self) -> &Principal {
        &self.principal
    }
}

fn write_response(o: WriteOutcome) -> pb::WriteResponse {
    pb::WriteResponse {
        accepted: o.accepted,
        suppressed: o.suppressed,
        suppressed_deleted: o.suppressed_deleted,
        screened: o.screened,
        point_ids: o.point_ids.iter().map(ToString::to_string).collect(),
    }
}

/// Waits `period` before a watch polls again; false when the client went
/// away meanwhile (its stream was dropped), so the watch stops polling at once
/// instead of when the job ends.
async fn wait_or_closed<T>(tx: &tokio::sync::mpsc::Sender<T>, period: Duration) -> bool {
    tokio::select! {
        () = tokio::time::sleep(period) => !tx.is_closed(),
        () = tx.closed() => false,
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<pb::ErasureEvent, Status>> + Send>>;
type ReindexStream = Pin<Box<dyn Stream<Item = Result<pb::ReindexJob, Status>> + Send>>;

impl LetheService {
    /// A re-index job on the wire, with its collection's name.
    async fn reindex_view(&self, tenant_id: uuid::Uuid, job_id: uuid::Uuid) -> Result<pb::ReindexJob> {
        let row = reindex::get(&self.ctx, tenant_id, job_id).await?;
        let names = catalog::list_collections(&self.ctx, tenant_id).await?;
        let name = names.iter().find(|c| c.collection_id == row.collection_id).map(|c| c.name.to_string());
        Ok(convert::reindex_job(&row, &name.unwrap_or_default()))
    }
}

#[tonic::async_trait]
impl Lethe for LetheService {
    async fn create_collection(&self, req: Request<pb::CreateCollectionRequest>) -> Result<Response<pb::Collection>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let new = convert::new_collection(req.into_inner()).map_err(LetheError::from)?;
        let spec = catalog::create_collection(&self.ctx, p.tenant_id, new).await?;
        Ok(Response::new(convert::collection(&spec)))
    }

    async fn list_collections(
        &self,
        req: Request<pb::ListCollectionsRequest>,
    ) -> Result<Response<pb::ListCollectionsResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let list = catalog::list_collections(&self.ctx, p.tenant_id).await?;
        Ok(Response::new(pb::ListCollectionsResponse { collections: list.iter().map(convert::collection).collect() }))
    }

    async fn put_subject(&self, req: Request<pb::PutSubjectRequest>) -> Result<Response<pb::Subject>, Status> {
        let p = self.authorize(&req, Action::Write).await?;
        let _turn = self.ctx.slot().await;
        let subject = convert::subject("subject", req.into_inner().subject).map_err(LetheError::from)?;
        let row = ingest::put_subject_or_refuse(&self.ctx, p.tenant_id, &subject).await?;
        let n = crate::store::lineage::count_identifiers(&self.ctx.pool, row.subject_id).await.map_err(LetheError::from)?;
        Ok(Response::new(convert::subject_out(&row, n)))
    }

    async fn set_legal_hold(&self, req: Request<pb::SetLegalHoldRequest>) -> Result<Response<pb::Subject>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let (id, hold, reason) = convert::legal_hold(req.into_inner()).map_err(LetheError::from)?;
        let row = ingest::set_legal_hold(&self.ctx, p.tenant_id, &id, hold, reason.as_deref()).await?;
        let n = crate::store::lineage::count_identifiers(&self.ctx.pool, row.subject_id).await.map_err(LetheError::from)?;
        Ok(Response::new(convert::subject_out(&row, n)))
    }

    async fn ingest(&self, req: Request<pb::IngestRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let p = self.authorize(&req, Action::Write).await?;
        let r = req.into_inner();
        let collection = convert::collection_name("collection", &r.collection).map_err(LetheError::from)?;
        let chunks = convert::ingest_chunks(r.chunks).map_err(LetheError::from)?;
        let subjects: Vec<SubjectInput> = convert::subjects(r.subjects).map_err(LetheError::from)?;
        let spec = catalog::collection(&self.ctx, p.tenant_id, &collection).await?;
        let out = ingest::write(&self.ctx, &spec, chunks, &subjects, WriteMode::Embed).await?;
        Ok(Response::new(write_response(out)))
    }

    async fn track(&self, req: Request<pb::TrackRequest>) -> Result<Response<pb::WriteResponse>, Status> {
        let p = self.authorize(&req, Action::Write).await?;
        let r = req.into_inner();
        let collection = convert::collection_name("collection", &r.collection).map_err(LetheError::from)?;
        let subjects = convert::subjects(r.subjects).map_err(LetheError::from)?;
        let spec = catalog::collection(&self.ctx, p.tenant_id, &collection).await?;
        if spec.is_attached() {
            let ids = convert::attached_point_ids(r.points).map_err(LetheError::from)?;
            let (out, shown) = attach::track(&self.ctx, &spec, &ids, &subjects).await?;
            return Ok(Response::new(pb::WriteResponse { point_ids: shown, ..write_response(out) }));
        }
        let chunks = convert::tracked_points(r.points).map_err(LetheError::from)?;
        let mode = WriteMode::Track { verify_points: r.verify_points };
        let out = ingest::write(&self.ctx, &spec, chunks, &subjects, mode).await?;
        Ok(Response::new(write_response(out)))
    }

    async fn delete_points(
        &self,
        req: Request<pb::DeletePointsRequest>,
    ) -> Result<Response<pb::DeletePointsResponse>, Status> {
        let p = self.authorize(&req, Action::Write).await?;
        let r = req.into_inner();
        let collection = convert::collection_name("collection", &r.collection).map_err(LetheError::from)?;
        let input = convert::delete_points(r).map_err(LetheError::from)?;
        let spec = catalog::collection(&self.ctx, p.tenant_id, &collection).await?;
        let out = ingest::delete_points(&self.ctx, &spec, &input).await?;
        Ok(Response::new(pb::DeletePointsResponse {
            deleted: out.deleted,
            forgotten: out.forgotten,
            kept: out.kept,
            held: out.held,
        }))
    }

    async fn erase(&self, req: Request<pb::EraseRequest>) -> Result<Response<pb::ErasureJob>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let input = convert::erase(req.into_inner()).map_err(LetheError::from)?;
        let job = erasure::submit(&self.ctx, p.tenant_id, input).await?;
        Ok(Response::new(convert::job(&job)))
    }

    async fn get_erasure(&self, req: Request<pb::GetErasureRequest>) -> Result<Response<pb::ErasureJob>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let id = convert::uuid("job_id", &req.get_ref().job_id).map_err(LetheError::from)?;
        let job = erasure::get(&self.ctx, p.tenant_id, id).await?;
        Ok(Response::new(convert::job(&job)))
    }

    type WatchErasureStream = EventStream;

    async fn watch_erasure(&self, req: Request<pb::GetErasureRequest>) -> Result<Response<Self::WatchErasureStream>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let id = convert::uuid("job_id", &req.get_ref().job_id).map_err(LetheError::from)?;
        erasure::get(&self.ctx, p.tenant_id, id).await?;
        let ctx = self.ctx.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(32);
        let watch = ctx.watches.open();
        tokio::spawn(async move {
            let _watch = watch;
            let mut last = 0;
            loop {
                let events = match erasure::events_after(&ctx, id, last).await {
                    Ok(e) => e,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
                let mut ended = false;
                for e in &events {
                    last = e.event_id;
                    ended |= e.status.parse::<JobStatus>().is_ok_and(JobStatus::is_terminal);
                    if tx.send(Ok(convert::event(e))).await.is_err() {
                        return;
                    }
                }
                if ended || !wait_or_closed(&tx, Duration::from_millis(100)).await {
                    return;
                }
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn list_erasures(&self, req: Request<pb::ListErasuresRequest>) -> Result<Response<pb::ListErasuresResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let r = req.into_inner();
        let limit = convert::limit("limit", r.limit, 100, 500).map_err(LetheError::from)?;
        let status = convert::status_filter(r.status).map_err(LetheError::from)?;
        let jobs = erasure::list(&self.ctx, p.tenant_id, r.overdue_only, status, limit).await?;
        Ok(Response::new(pb::ListErasuresResponse { jobs: jobs.iter().map(convert::job).collect() }))
    }

    async fn count_subject(&self, req: Request<pb::CountSubjectRequest>) -> Result<Response<pb::CountSubjectResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let id = ExternalId::parse("subject_id", &req.get_ref().subject_id).map_err(LetheError::from)?;
        let (state, counts) = erasure::count_subject(&self.ctx, p.tenant_id, &id).await?;
        Ok(Response::new(pb::CountSubjectResponse {
            counts: counts.iter().map(convert::live_count).collect(),
            subject_state: state,
        }))
    }

    async fn list_deletion_log(
        &self,
        req: Request<pb::ListDeletionLogRequest>,
    ) -> Result<Response<pb::ListDeletionLogResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let r = req.into_inner();
        let limit = convert::limit("limit", r.limit, 100, 1000).map_err(LetheError::from)?;
        let after = i64::try_from(r.after_seq).map_err(|_| LetheError::invalid("after_seq", "too large"))?;
        let rows = crate::store::log::entries(&self.ctx.pool, p.tenant_id, after, i64::from(limit))
            .await
            .map_err(LetheError::from)?;
        // Read after the entries: the head covers every entry listed.
        let head = audit::current_head(&self.ctx.pool, p.tenant_id).await.map_err(LetheError::from)?;
        Ok(Response::new(pb::ListDeletionLogResponse {
            entries: rows.iter().map(convert::log_entry).collect(),
            head: head.as_ref().map(convert::signed_head),
        }))
    }

    async fn verify_deletion_log(
        &self,
        req: Request<pb::VerifyDeletionLogRequest>,
    ) -> Result<Response<pb::VerifyDeletionLogResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let r = req.into_inner();
        let pinned = convert::pinned_head(r.pinned_size, &r.pinned_head_hash).map_err(LetheError::from)?;
        let v = audit::verify(&self.ctx.pool, &self.ctx.signer, p.tenant_id, pinned.as_ref()).await.map_err(LetheError::from)?;
        Ok(Response::new(pb::VerifyDeletionLogResponse {
            valid: v.valid,
            entries_checked: v.entries_checked,
            first_bad_seq: v.first_bad_seq,
            problem: v.problem,
            head_hash: v.head_hash,
            head: v.head.as_ref().map(convert::signed_head),
        }))
    }

    async fn get_certificate(&self, req: Request<pb::GetCertificateRequest>) -> Result<Response<pb::Certificate>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let id = convert::uuid("job_id", &req.get_ref().job_id).map_err(LetheError::from)?;
        let cert = crate::store::log::certificate(&self.ctx.pool, p.tenant_id, id)
            .await
            .map_err(LetheError::from)?
            .ok_or_else(|| LetheError::NotFound(format!("certificate of job {id}")))?;
        Ok(Response::new(pb::Certificate {
            job_id: cert.job_id.to_string(),
            body: cert.body,
            signature: crate::erasure::b64(&cert.signature),
            public_key: crate::erasure::b64(&cert.public_key),
            algorithm: "Ed25519".into(),
            key_id: cert.key_id.unwrap_or_else(|| audit::key_id(&cert.public_key.try_into().unwrap_or([0; 32]))),
        }))
    }

    async fn search_residuals(
        &self,
        req: Request<pb::SearchResidualsRequest>,
    ) -> Result<Response<pb::SearchResidualsResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let (identifiers, limit) = convert::residual_search(req.into_inner()).map_err(LetheError::from)?;
        let timeout = Duration::from_millis(self.ctx.settings.residual.search_timeout_ms);
        let query = residual::ResidualQuery {
            identifiers,
            limit: limit as usize,
            deadline: Some(std::time::Instant::now() + timeout),
            ..Default::default()
        };
        let found = residual::search(&self.ctx, p.tenant_id, &query).await?;
        Ok(Response::new(pb::SearchResidualsResponse { candidates: found.iter().map(convert::candidate).collect() }))
    }

    async fn reindex(&self, req: Request<pb::ReindexRequest>) -> Result<Response<pb::ReindexJob>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let r = req.into_inner();
        let collection = convert::collection_name("collection", &r.collection).map_err(LetheError::from)?;
        let mode = convert::reindex_mode(r.mode).map_err(LetheError::from)?;
        let row = reindex::submit(&self.ctx, p.tenant_id, &collection, mode).await?;
        Ok(Response::new(self.reindex_view(p.tenant_id, row.job_id).await?))
    }

    async fn get_reindex(&self, req: Request<pb::GetReindexRequest>) -> Result<Response<pb::ReindexJob>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let id = convert::uuid("job_id", &req.get_ref().job_id).map_err(LetheError::from)?;
        Ok(Response::new(self.reindex_view(p.tenant_id, id).await?))
    }

    type WatchReindexStream = ReindexStream;

    async fn watch_reindex(&self, req: Request<pb::GetReindexRequest>) -> Result<Response<Self::WatchReindexStream>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let id = convert::uuid("job_id", &req.get_ref().job_id).map_err(LetheError::from)?;
        let first = self.reindex_view(p.tenant_id, id).await?;
        let service = LetheService { ctx: self.ctx.clone(), auth: self.auth.clone() };
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let watch = self.ctx.watches.open();
        tokio::spawn(async move {
            let _watch = watch;
            let mut job = first;
            loop {
                let ended = [pb::JobStatus::Completed as i32, pb::JobStatus::Failed as i32].contains(&job.status);
                if tx.send(Ok(job)).await.is_err() || ended || !wait_or_closed(&tx, Duration::from_millis(500)).await {
                    return;
                }
                job = match service.reindex_view(p.tenant_id, id).await {
                    Ok(j) => j,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn list_reindexes(
        &self,
        req: Request<pb::ListReindexesRequest>,
    ) -> Result<Response<pb::ListReindexesResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let limit = convert::limit("limit", req.get_ref().limit, 100, 500).map_err(LetheError::from)?;
        let names = catalog::list_collections(&self.ctx, p.tenant_id).await?;
        let rows = reindex::list(&self.ctx, p.tenant_id, limit).await?;
        let name = |id| names.iter().find(|c| c.collection_id == id).map(|c| c.name.to_string()).unwrap_or_default();
        Ok(Response::new(pb::ListReindexesResponse {
            jobs: rows.iter().map(|r| convert::reindex_job(r, &name(r.collection_id))).collect(),
        }))
    }

    async fn attach(&self, req: Request<pb::AttachRequest>) -> Result<Response<pb::AttachResponse>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let input = convert::attach_input(req.into_inner()).map_err(LetheError::from)?;
        let done = attach::attach(&self.ctx, p.tenant_id, input).await?;
        Ok(Response::new(pb::AttachResponse {
            collection: Some(convert::collection(&done.spec)),
            job: Some(convert::attach_job(&done.job, done.spec.name.as_str())),
            warnings: done.warnings,
            indexes_created: done.created,
            already_attached: done.already_attached,
        }))
    }

    async fn get_attach(&self, req: Request<pb::GetAttachRequest>) -> Result<Response<pb::AttachJob>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let name = convert::collection_name("collection", &req.get_ref().collection).map_err(LetheError::from)?;
        let (spec, job) = attach::job(&self.ctx, p.tenant_id, &name).await?;
        Ok(Response::new(convert::attach_job(&job, spec.name.as_str())))
    }

    type WatchAttachStream = Pin<Box<dyn Stream<Item = Result<pb::AttachJob, Status>> + Send>>;

    async fn watch_attach(&self, req: Request<pb::GetAttachRequest>) -> Result<Response<Self::WatchAttachStream>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let name = convert::collection_name("collection", &req.get_ref().collection).map_err(LetheError::from)?;
        let (spec, first) = attach::job(&self.ctx, p.tenant_id, &name).await?;
        let ctx = self.ctx.clone();
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let watch = self.ctx.watches.open();
        tokio::spawn(async move {
            let _watch = watch;
            let mut job = first;
            loop {
                // A scan ends in completed (rescans follow on their own) or failed.
                let ended = job.status == "completed" || job.status == "failed";
                let view = convert::attach_job(&job, spec.name.as_str());
                if tx.send(Ok(view)).await.is_err() || ended || !wait_or_closed(&tx, Duration::from_millis(500)).await {
                    return;
                }
                job = match attach::job(&ctx, p.tenant_id, &spec.name).await {
                    Ok((_, j)) => j,
                    Err(e) => {
                        let _ = tx.send(Err(Status::from(e))).await;
                        return;
                    }
                };
            }
        });
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    type ExportSubjectStream = Pin<Box<dyn Stream<Item = Result<pb::ExportRecord, Status>> + Send>>;

    async fn export_subject(&self, req: Request<pb::ExportSubjectRequest>) -> Result<Response<Self::ExportSubjectStream>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let id = ExternalId::parse("subject_id", &req.get_ref().subject_id).map_err(LetheError::from)?;
        // One record in flight: the export's `complete` is as near to "the
        // client read every record" as a server can know (a record counts
        // once gRPC has taken it; a client gone midway stops the export).
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tokio::spawn(export::run(self.ctx.clone(), *p, id, tx));
        let records = tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), |r| {
            r.map(|rec| pb::ExportRecord { part: rec.part.to_owned(), json: rec.json }).map_err(Status::from)
        });
        Ok(Response::new(Box::pin(records)))
    }

    async fn reconcile(&self, req: Request<pb::ReconcileRequest>) -> Result<Response<pb::ReconcileRun>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let requested_by = super::restore::requested_by(req.get_ref()).map_err(LetheError::from)?;
        let (run, new) = crate::restore::request(&self.ctx, p.tenant_id, &requested_by).await?;
        Ok(Response::new(super::restore::run(&run, !new)))
    }

    async fn get_reconcile(&self, req: Request<pb::GetReconcileRequest>) -> Result<Response<pb::ReconcileRun>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let id = convert::uuid("run_id", &req.get_ref().run_id).map_err(LetheError::from)?;
        let run = crate::restore::get(&self.ctx, p.tenant_id, id).await?;
        Ok(Response::new(super::restore::run(&run, false)))
    }

    type ExportLedgerStream = Pin<Box<dyn Stream<Item = Result<pb::LedgerChunk, Status>> + Send>>;

    async fn export_ledger(&self, req: Request<pb::ExportLedgerRequest>) -> Result<Response<Self::ExportLedgerStream>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let rx = super::restore::export_stream(self.ctx.clone(), p.tenant_id);
        Ok(Response::new(Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))))
    }

    async fn import_ledger(
        &self,
        req: Request<tonic::Streaming<pb::LedgerChunk>>,
    ) -> Result<Response<pb::ImportLedgerResponse>, Status> {
        // The turn once the ledger has arrived: a slow upload holds none.
        let p = self.auth.authorize(req.metadata(), Action::Manage).await?;
        let max = self.ctx.settings.restore_guard.max_ledger_bytes;
        let (bytes, _import) = super::restore::read_ledger(req.into_inner(), max).await?;
        let _turn = self.ctx.slot().await;
        let out = crate::restore::ledger::import(&self.ctx, p.tenant_id, &bytes).await?;
        Ok(Response::new(super::restore::import_response(&out)))
    }

    async fn set_retention(&self, req: Request<pb::SetRetentionRequest>) -> Result<Response<pb::CollectionRetention>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let rule = convert::set_retention(req.into_inner()).map_err(LetheError::from)?;
        let c = retention::set(&self.ctx, p.tenant_id, rule).await?;
        Ok(Response::new(convert::collection_retention(&c)))
    }

    async fn list_retention(&self, req: Request<pb::ListRetentionRequest>) -> Result<Response<pb::ListRetentionResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let list = retention::list(&self.ctx, p.tenant_id).await?;
        let r = &self.ctx.settings.retention;
        Ok(Response::new(pb::ListRetentionResponse {
            collections: list.iter().map(convert::collection_retention).collect(),
            scheduler_enabled: r.enabled,
            interval_secs: r.interval_secs,
        }))
    }

    async fn preview_retention(
        &self,
        req: Request<pb::PreviewRetentionRequest>,
    ) -> Result<Response<pb::PreviewRetentionResponse>, Status> {
        let p = self.authorize(&req, Action::Audit).await?;
        let name = convert::retention_collection(&req.get_ref().collection).map_err(LetheError::from)?;
        let found = retention::preview(&self.ctx, p.tenant_id, name.as_ref()).await?;
        Ok(Response::new(pb::PreviewRetentionResponse { collections: found.iter().map(convert::retention_sweep).collect() }))
    }

    async fn sweep_retention(&self, req: Request<pb::SweepRetentionRequest>) -> Result<Response<pb::SweepRetentionResponse>, Status> {
        let p = self.authorize(&req, Action::Manage).await?;
        let name = convert::retention_collection(&req.get_ref().collection).map_err(LetheError::from)?;
        let done = retention::sweep(&self.ctx, p.tenant_id, name.as_ref()).await?;
        Ok(Response::new(pb::SweepRetentionResponse { collections: done.iter().map(convert::retention_sweep).collect() }))
    }
}
