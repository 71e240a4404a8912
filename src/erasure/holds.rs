//! Legal holds at the erase job's destructive steps (delete, verify's
//! re-deletes, residual actions, forget lineage). Each step reads the holds
//! in its own transaction, under the tenant's hold lock held shared until
//! the step is done (`store::holds`), so a hold is seen by a step or placed
//! after it. What a hold protects:
//!
//! - the job's own subject: before anything is deleted the job is refused
//!   (`legal_hold`, logged as a refusal, the subject unfrozen); once the
//!   delete stage has begun, a deletion cannot be undone, so the job goes on
//!   without destroying anything more (no re-deletes, residual actions or
//!   forgetting of lineage) and its certificate says so;
//! - other subjects: the person's points that are shared with them (by
//!   lineage tag or payload tag) and residual candidates tagged with them
//!   are kept, counted per collection, and reported.

use std::collections::HashSet;

use sqlx::{Postgres, Transaction};
use uuid::Uuid;

use super::stages::StageError;
use crate::context::Context;
use crate::domain::{CollectionSpec, JobNote, Stage};
use crate::store::holds;
use crate::store::jobs::{JobRow, JobTarget};
use crate::vector_store::Keep;

/// The holds a destructive step must respect, as its transaction saw them.
pub(super) struct Holds {
    /// The job's own subject is on hold: the hold's reason (never for a
    /// retention job, which has no subject).
    pub own: Option<String>,
    /// Caller ids (payload tags) of the other subjects on hold.
    tags: Vec<String>,
    /// A retention job keeps a source whole when any chunk of it is held.
    whole_sources: bool,
    /// Another subject of the tenant is on hold: only then can a chunk be
    /// held by lineage (no query per collection otherwise).
    others: bool,
}

/// The subject a hold on the job's own subject is told apart from; the nil
/// id (no subject's) for a retention job, whose every held subject is "other".
fn own_subject(job: &JobRow) -> Uuid {
    match job.target() {
        JobTarget::Subject(subject_id) => subject_id,
        JobTarget::Retention { .. } => Uuid::nil(),
    }
}

impl Holds {
    /// Reads the holds under the tenant's hold lock, taken shared in `step`
    /// (the step's transaction): `SetLegalHold` waits until it ends.
    ///
    /// # Errors
    /// Database failures.
    pub async fn read(step: &mut Transaction<'_, Postgres>, job: &JobRow) -> Result<Self, StageError> {
        holds::lock_shared(step, job.tenant_id).await?;
        let state = holds::hold_state(&mut **step, job.tenant_id, own_subject(job)).await?;
        Ok(Self { own: state.own, tags: state.other_tags, whole_sources: job.is_retention(), others: state.others })
    }

    /// Whether another subject of the tenant is on hold (else nothing of
    /// the person can be held through lineage or a payload tag).
    pub fn others_on_hold(&self) -> bool {
        self.others
    }

    /// What a deletion of the person's `chunk_ids` (and tag) must leave:
    /// chunks that lineage shares with a subject on hold, and points whose
    /// payload carries such a subject's tag.
    pub async fn keep(&self, ctx: &Context, job: &JobRow, chunk_ids: &[Uuid]) -> Result<Keep, StageError> {
        let ids = if !self.others {
            Vec::new()
        } else if self.whole_sources {
            crate::store::retention::held_source_chunks(&ctx.pool, job.tenant_id, chunk_ids).await?.0
        } else {
            holds::held_chunks(&ctx.pool, job.tenant_id, None, chunk_ids, own_subject(job)).await?
        };
        Ok(Keep { tags: self.tags.clone(), ids })
    }

    /// Of a collection's points `ids`, those the holds protect (lineage or
    /// payload tags of a subject on hold).
    pub async fn held_among(
        &self,
        ctx: &Context,
        job: &JobRow,
        spec: &CollectionSpec,
        ids: &[Uuid],
    ) -> Result<HashSet<Uuid>, StageError> {
        if !self.others {
            return Ok(HashSet::new());
        }
        let mut held: HashSet<Uuid> = holds::held_chunks(&ctx.pool, job.tenant_id, None, ids, own_subject(job)).await?.into_iter().collect();
        if !self.tags.is_empty() && !ids.is_empty() {
            let tags: HashSet<&str> = self.tags.iter().map(String::as_str).collect();
            for p in ctx.stores.get(spec)?.retrieve(spec, ids, false).await? {
                if p.payload.subjects.iter().any(|s| tags.contains(s.as_str())) {
                    held.insert(p.id);
                }
            }
        }
        Ok(held)
    }
}

/// The note of a step that destroyed nothing because the job's own subject
/// was placed under legal hold after its deletion had begun.
pub(super) fn own_hold_note(stage: Stage, withheld: &str) -> JobNote {
    JobNote::new(
        "legal_hold",
        stage,
        format!(
            "The subject was placed under legal hold after the deletion of its vectors had begun; what was \
             deleted cannot be undone. {withheld} while the hold lasts: erase the subject again once it is lifted."
        ),
    )
}

/// The note of a step that kept data shared with other subjects on hold.
pub(super) fn withheld_note(stage: Stage, what: String) -> JobNote {
    JobNote::new(
        "legal_hold_withheld",
        stage,
        format!("{what}, because they are shared with subjects under legal hold; erase the subject again once the holds are lifted."),
    )
}
