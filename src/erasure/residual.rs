//! The residual stage of an erase job: search once, store the candidates
//! with the actions the policy will take, then apply them collection by
//! collection. What a collection's actions did is recorded with the
//! collection marked done, in one transaction; the points to delete are
//! stored before the first delete. So a retry, or a crash anywhere in the
//! stage, neither searches again (the deleted candidates would not be found,
//! and their counts lost) nor counts anything twice.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::holds::{Holds, own_hold_note, withheld_note};
use super::stages::{StageError, StageResult, guard_collections, held, planned};
use crate::context::Context;
use crate::domain::{CollectionSpec, Identifier, JobNote, ResidualPolicy, Stage};
use crate::error::LetheError;
use crate::ingest::Mentioned;
use crate::residual::{self, Candidate, Probe, ResidualQuery, TooCommon, action};
use crate::store::jobs::{self, JobRow, Lease, ProbeRow};
use crate::store::progress::{self, ResidualCounts};
use crate::store::{StoreError, holds, lineage};

pub(super) async fn run(ctx: &Context, job: &JobRow, lease: Lease, subject_id: Uuid) -> StageResult {
    let policy: ResidualPolicy = job.residual_policy.parse().map_err(StageError::Fatal)?;
    let member = Member { job, lease, subject_id, policy };
    if job.residual_searched_at.is_none() && searching(ctx) {
        // Searched as a batch's jobs are, as a batch of one.
        return search_and_apply(ctx, &[member]).await?.remove(&job.job_id).unwrap_or(Err(StageError::LeaseLost));
    }
    let (requested, own) = jobs::residual_identifiers(&ctx.pool, job.job_id, subject_id).await?;
    let had_requested = !requested.is_empty();
    if !searching(ctx) {
        // Probes of a job planned before the searches were switched off.
        forget_inputs(ctx, job, lease, had_requested).await?;
        return Ok("residual search is switched off (residual.lexical and residual.semantic)".into());
    }
    let candidates: Vec<Candidate> = serde_json::from_value(job.residuals.clone()).map_err(|e| StageError::Fatal(e.to_string()))?;
    apply(ctx, &member, &identifiers(own, requested), had_requested, candidates, false).await
}

/// The residual stage of several subject jobs of a batch that have not
/// searched yet ([`search_and_apply`]). The others of the batch (searched
/// already, as a retry) run alone.
///
/// # Errors
/// Any failure before the searches are recorded: then every job runs the
/// stage alone, searching again.
pub(super) async fn run_many(ctx: &Context, batch: &[(&JobRow, Lease)]) -> Result<HashMap<Uuid, StageResult>, StageError> {
    let members: Vec<Member<'_>> = batch
        .iter()
        .filter(|(job, _)| job.residual_searched_at.is_none())
        .filter_map(|(job, lease)| {
            Some(Member { job, lease: *lease, subject_id: job.subject_id?, policy: job.residual_policy.parse().ok()? })
        })
        .collect();
    if members.len() < 2 || !searching(ctx) {
        return Ok(HashMap::new());
    }
    search_and_apply(ctx, &members).await
}

/// A job whose residual stage runs.
struct Member<'a> {
    job: &'a JobRow,
    lease: Lease,
    subject_id: Uuid,
    policy: ResidualPolicy,
}

/// Searches for the jobs (one alone, or a batch's) and applies what each
/// found: their inputs read at once, each tenant's collections read once
/// for all of their searches, and every search recorded in one
/// transaction; then each job applies its candidates (nothing to do and no
/// statement under `report`, the default policy). Each job's search and
/// record are the ones it would make alone; a job whose lease no longer
/// holds it gets `LeaseLost` and nothing is written for it.
///
/// # Errors
/// Any failure before the searches are recorded.
async fn search_and_apply(ctx: &Context, members: &[Member<'_>]) -> Result<HashMap<Uuid, StageResult>, StageError> {
    let ids: Vec<Uuid> = members.iter().map(|m| m.job.job_id).collect();
    let pairs: Vec<(Uuid, Uuid)> = members.iter().map(|m| (m.job.job_id, m.subject_id)).collect();
    let mut given = jobs::residual_identifiers_many(&ctx.pool, &pairs).await?;
    let mut probes = jobs::probes_many(&ctx.pool, &ids).await?;
    let mut own_points = jobs::all_plan_points_many(&ctx.pool, &ids).await?;
    let mut queries = Vec::with_capacity(members.len());
    let mut inputs = Vec::with_capacity(members.len());
    for m in members {
        let id = m.job.job_id;
        let (requested, own) = given.remove(&id).unwrap_or_default();
        let had_requested = !requested.is_empty();
        let identifiers = identifiers(own, requested);
        let (probes, own_points) = (probes.remove(&id).unwrap_or_default(), own_points.remove(&id).unwrap_or_default());
        queries.push((m.job.tenant_id, query(ctx, &identifiers, probes, own_points)));
        inputs.push((identifiers, had_requested));
    }
    let mut searches = Vec::with_capacity(members.len());
    for ((m, (identifiers, requested)), searched) in members.iter().zip(inputs).zip(residual::search_many(ctx, &queries).await?) {
        searches.push(Search::plan(ctx, m.policy, identifiers, requested, searched)?);
    }
    let mut tx = ctx.pool.begin().await.map_err(StoreError::from)?;
    // A candidate's source named after the person is listed, and kept in
    // lineage, under its alias (see `ingest::sources`); not while the
    // person's own legal hold keeps everything of theirs as it is. Holds
    // are read under the hold locks of the tenants with candidates, held
    // until the renames commit.
    let tenants: Vec<Uuid> = members.iter().zip(&searches).filter(|(_, s)| !s.candidates.is_empty()).map(|(m, _)| m.job.tenant_id).collect();
    if !tenants.is_empty() {
        holds::lock_shared_many(&mut tx, &tenants).await?;
    }
    let subjects: Vec<Uuid> = members.iter().map(|m| m.subject_id).collect();
    let on_hold = holds::own_holds(&mut *tx, &subjects).await?;
    let mut mentioned: Vec<Mentioned<'_>> = members
        .iter()
        .zip(searches.iter_mut())
        .map(|(m, s)| Mentioned {
            tenant_id: m.job.tenant_id,
            tag: m.job.subject_tag.as_deref().unwrap_or_default(),
            identifiers: &s.identifiers,
            candidates: &mut s.candidates,
            held: on_hold.contains_key(&m.subject_id),
        })
        .collect();
    let renames = crate::ingest::list_candidate_sources(ctx, &mut tx, &mut mentioned).await?;
    for s in &mut searches {
        s.stored = stored_residuals(&s.candidates)?;
    }
    let recorded = record(&mut tx, members, &searches).await?;
    let renamed = |i: usize| recorded.contains(&members[i].job.job_id);
    let relabel = crate::ingest::rename_candidate_sources(&mut tx, &renames, renamed).await?;
    if !relabel.is_empty() {
        // The renamed rows' old versions hold the ids: rewritten with the job's other tables.
        let jobs: Vec<(Uuid, Lease, Vec<&str>)> = renames
            .iter()
            .map(|r| r.0)
            .filter(|&i| renamed(i))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .map(|i| (members[i].job.job_id, members[i].lease, vec!["sources"]))
            .collect();
        progress::add_rewrite_tables_many(&mut *tx, &jobs).await?;
    }
    tx.commit().await.map_err(StoreError::from)?;
    crate::ingest::relabel_points_after_rename(ctx, &relabel).await;
    let mut results = HashMap::with_capacity(members.len());
    for (m, search) in members.iter().zip(searches) {
        let result = if recorded.contains(&m.job.job_id) {
            apply(ctx, m, &search.identifiers, search.requested, search.candidates, true).await
        } else {
            Err(StageError::LeaseLost)
        };
        results.insert(m.job.job_id, result);
    }
    Ok(results)
}

/// Whether residual search is switched on at all.
fn searching(ctx: &Context) -> bool {
    ctx.settings.residual.lexical || ctx.settings.residual.semantic
}

/// Applies a search's candidates collection by collection (see the module
/// comment), then notes what was withheld and forgets the stage's inputs
/// (`had_requested`: whether the request gave identifiers) unless the
/// search's record did (`searched_now` with nothing to act on).
async fn apply(
    ctx: &Context,
    m: &Member<'_>,
    identifiers: &[Identifier],
    had_requested: bool,
    mut candidates: Vec<Candidate>,
    searched_now: bool,
) -> StageResult {
    let Member { job, lease, subject_id, policy } = *m;
    let mut total = ResidualCounts::default();
    // Without candidates no collection has residual counts to add up; nor,
    // just searched, without one to act on (`report`, the default policy:
    // the search marked every collection applied with zero counts).
    let acting = candidates.iter().any(is_pending);
    let done_with_search = searched_now && !acting;
    let mut collections = if candidates.is_empty() || done_with_search { Vec::new() } else { planned(ctx, job, false).await? };
    // One order for every attempt.
    collections.sort_by_key(|p| p.spec.collection_id);
    for p in collections {
        let idx: Vec<usize> = (0..candidates.len()).filter(|&i| candidates[i].collection_id == p.spec.collection_id).collect();
        let counts = if p.counts.residual_applied || idx.is_empty() {
            let c = &p.counts;
            ResidualCounts {
                deleted: c.residual_deleted,
                redacted: c.residual_redacted,
                withheld: c.residual_withheld,
                rewritten: c.residual_rewritten,
            }
        } else {
            // Like deletes, residual actions hold the collection's lock: a
            // re-index switches generations before them or after them,
            // never in between (its copy would keep an unredacted or
            // deleted point). And the legal holds, read under it.
            let mut guard = guard_collections(ctx, &[p.spec.collection_id]).await?;
            let holds = Holds::read(&mut guard, job).await?;
            let counts = apply_in(ctx, &mut guard, job, lease, &holds, &p.spec, identifiers, &mut candidates, &idx).await?;
            let json = stored_residuals(&candidates)?;
            held(progress::record_residual_applied(&mut guard, job.job_id, lease, p.spec.collection_id, counts, &json).await?)?;
            guard.commit().await.map_err(StoreError::from)?;
            counts
        };
        total = ResidualCounts {
            deleted: total.deleted + counts.deleted,
            redacted: total.redacted + counts.redacted,
            withheld: total.withheld + counts.withheld,
            rewritten: total.rewritten + counts.rewritten,
        };
    }
    if total.withheld > 0 {
        let what = format!("{} residual candidates were reported, neither deleted nor redacted", total.withheld);
        let note = if holds::own_hold(&ctx.pool, subject_id).await?.is_some() {
            own_hold_note(Stage::Residual, &what)
        } else {
            withheld_note(Stage::Residual, what)
        };
        held(progress::set_note(&ctx.pool, job.job_id, lease, &note).await?)?;
    }
    // Forgotten with the search's record when there was nothing to act on.
    if !done_with_search {
        forget_inputs(ctx, job, lease, had_requested).await?;
    }
    let too_common = candidates.iter().filter(|c| c.action == action::WITHHELD_TOO_COMMON).count();
    Ok(format!(
        "{} residual candidates ({}): {} deleted, {} redacted, {} withheld under legal hold, {too_common} withheld as \
         found only through too common identifiers",
        candidates.len(),
        policy.as_str(),
        total.deleted,
        total.redacted,
        total.withheld
    ))
}

/// The probes (the person's own vectors and texts) and the request's
/// identifiers (`requested`: whether it gave any) are needed no longer.
async fn forget_inputs(ctx: &Context, job: &JobRow, lease: Lease, requested: bool) -> Result<(), StageError> {
    let held_by_lease = jobs::forget_residual_inputs(&ctx.pool, job.job_id, lease, requested).await?;
    // As before the fold: only a request's identifiers make a lost lease an error.
    if requested { held(held_by_lease) } else { Ok(()) }
}

/// The subject's identifiers and those the request gave (`requested`): a
/// follow-up erasure of an erased subject (whose identifiers are hashes
/// only) is searched for what it names.
fn identifiers(mut stored: Vec<(String, String)>, requested: Vec<(String, String)>) -> Vec<Identifier> {
    stored.extend(requested);
    stored.sort_unstable();
    stored.dedup();
    stored.into_iter().filter_map(Identifier::from_row).collect()
}

/// What the stage searches for: the identifiers, and the person's own
/// chunks (probes), never reported themselves (`own_points`).
fn query(ctx: &Context, identifiers: &[Identifier], probes: Vec<ProbeRow>, own_points: Vec<Uuid>) -> ResidualQuery {
    ResidualQuery {
        identifiers: identifiers.to_vec(),
        probes: probes.into_iter().map(|p| Probe { text: p.text, vector: p.vector }).collect(),
        exclude: own_points.into_iter().collect::<HashSet<_>>(),
        limit: ctx.settings.residual.max_candidates,
        deadline: None,
    }
}

/// A search's candidates, each marked with its planned action, and what
/// the job records of it before anything is changed.
struct Search {
    /// What was searched for.
    identifiers: Vec<Identifier>,
    /// Whether the request gave identifiers.
    requested: bool,
    candidates: Vec<Candidate>,
    /// Per collection with candidates: id, name, backend, how many, and
    /// whether none of them is to be deleted or redacted.
    found: Vec<(Uuid, String, String, i64, bool)>,
    /// The candidates as stored (see [`stored_residuals`]), set before the record.
    stored: serde_json::Value,
    notes: Vec<JobNote>,
}

impl Search {
    fn plan(
        ctx: &Context,
        policy: ResidualPolicy,
        identifiers: Vec<Identifier>,
        requested: bool,
        searched: residual::Searched,
    ) -> Result<Self, StageError> {
        let limit = ctx.settings.residual.max_candidates;
        let mut candidates = searched.candidates;
        residual::plan(policy, &mut candidates);
        let max_per_identifier = ctx.settings.residual.max_destructive_per_identifier;
        let common = residual::hold_back_too_common(&mut candidates, &identifiers, max_per_identifier);
        let specs = &searched.collections;
        // A chunk is rewritten only where Lethe's model made its vector: an
        // attached store's framework owns text and vector, and a collection of
        // another dimension or model (vectors a pipeline computed, given with
        // Track) would get a vector of another model, or none at all (the
        // job then failed after its deletes). A candidate there that redaction
        // would rewrite is reported.
        let (model, dimension) = (ctx.embedder.model_name(), ctx.embedder.dimension());
        let kept: HashSet<Uuid> = specs
            .iter()
            .filter(|s| s.is_attached() || s.dimension != dimension || s.embedding_model != model)
            .map(|s| s.collection_id)
            .collect();
        let mut not_rewritten = 0;
        for c in candidates.iter_mut().filter(|c| kept.contains(&c.collection_id) && c.action == action::PENDING_REDACT) {
            c.action = action::REPORTED.to_owned();
            not_rewritten += 1;
        }
        // A collection none of whose candidates is to be deleted or redacted is
        // applied as it is recorded: there is nothing to hold back, lock or count.
        let found = specs
            .iter()
            .filter_map(|s| {
                let here: Vec<&Candidate> = candidates.iter().filter(|c| c.collection_id == s.collection_id).collect();
                let nothing_to_do = !here.iter().any(|c| is_pending(c));
                (!here.is_empty()).then(|| {
                    (s.collection_id, s.name.to_string(), s.backend.to_string(), i64::try_from(here.len()).unwrap_or(i64::MAX), nothing_to_do)
                })
            })
            .collect();
        let mut notes = Vec::new();
        if searched.qualified > candidates.len() {
            notes.push(capped_note(searched.qualified, candidates.len(), limit, ctx.settings.residual.max_semantic));
        }
        if !common.is_empty() {
            notes.push(too_common_note(&common, max_per_identifier));
        }
        if not_rewritten > 0 {
            notes.push(JobNote::new(
                "residual_not_redacted",
                Stage::Residual,
                format!(
                    "{not_rewritten} residual candidates were reported, not redacted: their collections' vectors were not \
                     made by Lethe's model ({model}, dimension {dimension}); rewrite them through the pipeline that made them, \
                     or erase the subject again with residual policy `delete`"
                ),
            ));
        }
        // Stored once their sources are unnamed (`search_and_apply`).
        Ok(Self { identifiers, requested, stored: serde_json::Value::Null, candidates, found, notes })
    }
}

/// Records each member's search in the caller's transaction: candidates
/// and counts found, its notes, and, when nothing is to be deleted or
/// redacted, the stage's inputs forgotten with it (one durable commit, not
/// two). The jobs whose lease still holds them, of which all this was written.
async fn record(
    tx: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    members: &[Member<'_>],
    searches: &[Search],
) -> Result<HashSet<Uuid>, StageError> {
    let rows: Vec<progress::ResidualSearch<'_>> = members
        .iter()
        .zip(searches)
        .map(|(m, s)| progress::ResidualSearch { job_id: m.job.job_id, lease: m.lease, residuals: &s.stored, found: &s.found })
        .collect();
    let recorded: HashSet<Uuid> = progress::record_residual_searches(tx, &rows).await?.into_iter().collect();
    let mut done = Vec::new();
    for (m, search) in members.iter().zip(searches).filter(|(m, _)| recorded.contains(&m.job.job_id)) {
        // The lease holds: the record above was fenced by it, and its row stays locked.
        for note in &search.notes {
            held(progress::set_note(&mut **tx, m.job.job_id, m.lease, note).await?)?;
        }
        if !search.candidates.iter().any(is_pending) {
            done.push((m.job.job_id, m.lease, search.requested));
        }
    }
    if !done.is_empty() {
        jobs::forget_residual_inputs_many(&mut **tx, &done).await?;
    }
    Ok(recorded)
}

fn capped_note(qualified: usize, kept: usize, max_candidates: usize, max_semantic: usize) -> JobNote {
    JobNote::new(
        "residual_candidates_capped",
        Stage::Residual,
        format!(
            "{qualified} residual candidates qualified; the {kept} best were kept (residual.max_candidates = \
             {max_candidates}, residual.max_semantic = {max_semantic} found by meaning alone). The other {} were \
             neither reported nor deleted nor redacted: raise the limits and erase the subject again to act on them",
            qualified - kept
        ),
    )
}

fn too_common_note(common: &[TooCommon], max: usize) -> JobNote {
    let each: Vec<String> = common
        .iter()
        .map(|c| {
            format!(
                "identifier #{} ({}) matched {} chunks; the {} candidates found only through it were reported, neither \
                 deleted nor redacted",
                c.identifier, c.kind, c.matched, c.withheld
            )
        })
        .collect();
    JobNote::new(
        "residual_identifier_too_common",
        Stage::Residual,
        format!(
            "{} (residual.max_destructive_per_identifier = {max}): review them (action withheld_too_common) and \
             delete what is the person's",
            each.join("; ")
        ),
    )
}

/// Applies the planned actions to one collection's candidates (`idx`) and
/// marks them done; candidates the legal holds protect are withheld. The
/// deleted candidates' chunks are locked and deleted in `guard`, which the
/// caller commits with the collection's applied counts.
#[allow(clippy::too_many_arguments)]
async fn apply_in(
    ctx: &Context,
    guard: &mut sqlx::Transaction<'_, sqlx::Postgres>,
    job: &JobRow,
    lease: Lease,
    holds: &Holds,
    spec: &CollectionSpec,
    identifiers: &[Identifier],
    candidates: &mut [Candidate],
    idx: &[usize],
) -> Result<ResidualCounts, StageError> {
    let pending: Vec<usize> = idx.iter().copied().filter(|&i| is_pending(&candidates[i])).collect();
    let pending_ids: Vec<Uuid> = pending.iter().map(|&i| candidates[i].point_id).collect();
    let protected: HashSet<Uuid> = match holds.own {
        Some(_) => pending_ids.iter().copied().collect(),
        None => holds.held_among(ctx, job, spec, &pending_ids).await?,
    };
    let (kept, acting): (Vec<usize>, Vec<usize>) = pending.iter().partition(|&&i| protected.contains(&candidates[i].point_id));
    let with = |a: &str| -> Vec<usize> { acting.iter().copied().filter(|&i| candidates[i].action == a).collect() };
    let (to_delete, to_redact) = (with(action::PENDING_DELETE), with(action::PENDING_REDACT));
    let mut counts = ResidualCounts { withheld: i64::try_from(kept.len()).unwrap_or(i64::MAX), ..ResidualCounts::default() };
    mark(candidates, &kept, action::WITHHELD_LEGAL_HOLD);
    // Before anything changes: lineage rows of other people that name the
    // person are deleted or rewritten, leaving dead rows with the old text.
    let touched: &[&str] = match (to_delete.is_empty(), to_redact.is_empty()) {
        (true, true) => &[],
        (false, _) => &["chunks", "sources", "chunk_subjects"],
        (true, false) => &["chunks"],
    };
    if !touched.is_empty() {
        held(progress::add_rewrite_tables(&ctx.pool, job.job_id, lease, touched).await?)?;
    }
    if !to_delete.is_empty() {
        let ids: Vec<Uuid> = to_delete.iter().map(|&i| candidates[i].point_id).collect();
        // Locked before anything is read (as writes and redactions take
        // them) until the guard commits: no write or redaction of one of
        // them lands between the look below, the delete, its count and the
        // chunks' delete (`residual::delete_points`).
        lineage::lock_chunks(guard, spec.tenant_id, &ids).await?;
        let progress::ResidualTargets { points: targets, stored_at } = targets(ctx, job, lease, spec, &ids).await?;
        // A target placed under hold since the targets were stored stays.
        let now: Vec<Uuid> = targets.iter().copied().filter(|t| !protected.contains(t)).collect();
        // A candidate that was not a target (no vector when the targets were
        // stored, or under hold then) but is in the backend now is not deleted
        // by this attempt: it keeps its lineage, and is reported.
        let untargeted: Vec<Uuid> = ids.iter().copied().filter(|id| !targets.contains(id)).collect();
        let back: HashSet<Uuid> = if untargeted.is_empty() {
            HashSet::new()
        } else {
            ctx.stores.get(spec)?.retrieve(spec, &untargeted, false).await?.into_iter().map(|p| p.id).collect()
        };
        let forget: Vec<Uuid> = ids.iter().copied().filter(|id| !back.contains(id)).collect();
        let remaining = residual::delete_points(ctx, guard, spec, &now, &forget).await?;
        if remaining != 0 {
            return Err(StageError::Transient(LetheError::Unexpected(anyhow::anyhow!(
                "{remaining} residual points remain in `{}` after deletion",
                spec.name
            ))));
        }
        // The targets gone now (those under hold since may still be there)
        // are this job's deletion unless another job has been credited with
        // one since they were stored: that job deleted the point this one saw.
        let still: HashSet<Uuid> = if now.len() < targets.len() {
            let held_back: Vec<Uuid> = targets.iter().copied().filter(|t| !now.contains(t)).collect();
            ctx.stores.get(spec)?.retrieve(spec, &held_back, false).await?.into_iter().map(|p| p.id).collect()
        } else {
            HashSet::new()
        };
        let gone_targets: Vec<Uuid> = targets.iter().copied().filter(|t| !still.contains(t)).collect();
        let credited: HashSet<Uuid> =
            crate::store::plans::credit_residual_points(guard, job.job_id, spec.tenant_id, spec.collection_id, stored_at, &gone_targets)
                .await?
                .into_iter()
                .collect();
        counts.deleted = i64::try_from(credited.len()).unwrap_or(i64::MAX);
        let (came_back, gone): (Vec<usize>, Vec<usize>) = to_delete.iter().partition(|&&i| back.contains(&candidates[i].point_id));
        let (elsewhere, gone): (Vec<usize>, Vec<usize>) = gone.iter().partition(|&&i| {
            let p = candidates[i].point_id;
            gone_targets.contains(&p) && !credited.contains(&p)
        });
        mark(candidates, &gone, action::DELETED);
        mark(candidates, &elsewhere, action::DELETED_ELSEWHERE);
        mark(candidates, &came_back, action::REPORTED);
    }
    if !to_redact.is_empty() {
        let ids: Vec<Uuid> = to_redact.iter().map(|&i| candidates[i].point_id).collect();
        let residual::Redaction { clean, rewritten } = residual::redact_points(ctx, spec, &ids, identifiers).await?;
        counts.redacted = i64::try_from(clean.len()).unwrap_or(i64::MAX);
        counts.rewritten = i64::try_from(rewritten).unwrap_or(i64::MAX);
        // A candidate not redacted (gone since its search, tagged with a
        // subject being erased, or still naming the person) is reported.
        let (redacted, left): (Vec<usize>, Vec<usize>) = to_redact.iter().partition(|&&i| clean.contains(&candidates[i].point_id));
        mark(candidates, &redacted, action::REDACTED);
        mark(candidates, &left, action::REPORTED);
    }
    Ok(counts)
}

/// The candidate points present in the backend when the collection's
/// deletes began: stored before the first of them, so that the number
/// deleted is the same however often the stage runs.
async fn targets(
    ctx: &Context,
    job: &JobRow,
    lease: Lease,
    spec: &CollectionSpec,
    ids: &[Uuid],
) -> Result<progress::ResidualTargets, StageError> {
    if let Some(stored) = progress::residual_targets(&ctx.pool, job.job_id, spec.collection_id).await? {
        return Ok(stored);
    }
    let read_at = progress::clock(&ctx.pool).await?;
    let present: Vec<Uuid> = ctx.stores.get(spec)?.retrieve(spec, ids, false).await?.into_iter().map(|p| p.id).collect();
    held(progress::set_residual_targets(&ctx.pool, job.job_id, lease, spec.collection_id, &present, read_at).await?)?;
    // Read back for the time it was stored at.
    progress::residual_targets(&ctx.pool, job.job_id, spec.collection_id)
        .await?
        .ok_or_else(|| StageError::Transient(LetheError::Unexpected(anyhow::anyhow!("residual targets not stored"))))
}

/// Whether the candidate is still to be deleted or redacted.
fn is_pending(c: &Candidate) -> bool {
    [action::PENDING_DELETE, action::PENDING_REDACT].contains(&c.action.as_str())
}

fn mark(candidates: &mut [Candidate], idx: &[usize], action: &str) {
    for &i in idx {
        candidates[i].action = action.to_owned();
    }
}

/// The candidates as the job stores them: without the matched texts (how
/// the person was written), which no table keeps, not even while the job
/// runs (a row version written now would outlive a later scrub in the
/// table's files). Form, identifier index and position stay.
fn stored_residuals(candidates: &[residual::Candidate]) -> std::result::Result<serde_json::Value, StageError> {
    let mut stored = candidates.to_vec();
    for e in stored.iter_mut().flat_map(|c| c.evidence.iter_mut()) {
        e.matched.clear();
    }
    serde_json::to_value(&stored).map_err(|e| StageError::Fatal(e.to_string()))
}
