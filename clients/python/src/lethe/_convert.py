"""Between the plain types of :mod:`lethe.types` and the generated protobuf messages."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from enum import Enum
from typing import Any, Iterable, Mapping, Optional, Sequence, TypeVar, Union

from .types import (
    CollectionRetention,
    JobNote,
    RetentionList,
    RetentionSweep,
    RetentionTarget,
    SourceKindRule,
    LedgerImport,
    ReconcileCollection,
    ReconcileRun,
    AttachJob,
    AttachMapping,
    AttachResult,
    Backend,
    Certificate,
    Chunk,
    Collection,
    CollectionCount,
    DeleteResult,
    DeletionLogPage,
    Distance,
    ErasureEvent,
    FieldPath,
    ErasureJob,
    ExportRecord,
    Identifier,
    IdentifierKind,
    IdentifierLike,
    JobStatus,
    LogEntry,
    LogVerification,
    ReindexJob,
    ReindexMode,
    ResidualCandidate,
    ResidualEvidence,
    ResidualPolicy,
    Screening,
    SignedLogHead,
    Stage,
    Subject,
    SubjectCounts,
    SubjectTag,
    TagLike,
    TagRole,
    TrackedPoint,
    WriteResult,
)
from .v1 import lethe_pb2 as pb
from .v1 import types_pb2 as tpb

E = TypeVar("E", bound=Enum)

# ------------------------------------------------------------------------------ enums


def _enum_in(enum_cls: type[E], value: Union[E, str], prefix: str, pb_enum: Any, what: str) -> int:
    try:
        member = enum_cls(value.lower() if isinstance(value, str) else value)
    except ValueError:
        allowed = ", ".join(repr(m.value) for m in enum_cls if m.value != "unspecified")
        raise ValueError(f"{what} must be one of {allowed}, not {value!r}") from None
    if member.value == "unspecified":
        return 0
    return int(pb_enum.Value(prefix + member.value.upper()))


def _enum_out(enum_cls: type[E], number: int, prefix: str, pb_enum: Any) -> Optional[E]:
    try:
        name = pb_enum.Name(number)
    except ValueError:  # a value newer than this client
        return None
    value = name[len(prefix) :].lower()
    if value == "unspecified" and "unspecified" not in {m.value for m in enum_cls}:
        return None
    try:
        return enum_cls(value)
    except ValueError:
        return None


def backend_in(v: Union[Backend, str]) -> int:
    return _enum_in(Backend, v, "BACKEND_", tpb.Backend, "backend")


def distance_in(v: Union[Distance, str, None]) -> int:
    return 0 if v is None else _enum_in(Distance, v, "DISTANCE_", tpb.Distance, "distance")


def screening_in(v: Union[Screening, str, None]) -> int:
    return 0 if v is None else _enum_in(Screening, v, "SCREENING_", tpb.Screening, "screening")


def policy_in(v: Union[ResidualPolicy, str, None]) -> int:
    return 0 if v is None else _enum_in(ResidualPolicy, v, "RESIDUAL_POLICY_", tpb.ResidualPolicy, "residual_policy")


def status_in(v: Union[JobStatus, str, None]) -> int:
    return 0 if v is None else _enum_in(JobStatus, v, "JOB_STATUS_", tpb.JobStatus, "status")


def mode_in(v: Union[ReindexMode, str, None]) -> int:
    return 0 if v is None else _enum_in(ReindexMode, v, "REINDEX_MODE_", tpb.ReindexMode, "mode")


def _status_out(n: int) -> JobStatus:
    return _enum_out(JobStatus, n, "JOB_STATUS_", tpb.JobStatus) or JobStatus.UNSPECIFIED


def _stage_out(n: int) -> Stage:
    return _enum_out(Stage, n, "STAGE_", tpb.Stage) or Stage.UNSPECIFIED


def _backend_out(n: int) -> Optional[Backend]:
    return _enum_out(Backend, n, "BACKEND_", tpb.Backend)


# ----------------------------------------------------------------------------- inputs


def identifier(v: IdentifierLike) -> tpb.Identifier:
    if isinstance(v, str):
        return tpb.Identifier(value=v)
    if isinstance(v, Identifier):
        kind = _enum_in(IdentifierKind, v.kind, "IDENTIFIER_KIND_", tpb.IdentifierKind, "identifier kind")
        return tpb.Identifier(kind=kind, value=v.value)  # type: ignore[arg-type]
    raise TypeError(f"an identifier is a str or lethe.Identifier, not {type(v).__name__}")


def identifiers(vs: Iterable[IdentifierLike]) -> list[tpb.Identifier]:
    if isinstance(vs, (str, Identifier)):
        vs = [vs]
    return [identifier(v) for v in vs]


def subject_ref(subject_id: str, ids: Iterable[IdentifierLike] = ()) -> tpb.SubjectRef:
    return tpb.SubjectRef(id=subject_id, identifiers=identifiers(ids))


SubjectsLike = Union[None, Mapping[str, Iterable[IdentifierLike]]]


def subject_refs(subjects: SubjectsLike) -> list[tpb.SubjectRef]:
    """``{"ann": ["ann@example.com", "Ann Lee"], …}`` → SubjectRefs."""
    return [subject_ref(sid, ids) for sid, ids in (subjects or {}).items()]


def tag(v: TagLike) -> tpb.SubjectTag:
    if isinstance(v, str):
        return tpb.SubjectTag(subject_id=v)
    if isinstance(v, SubjectTag):
        role = _enum_in(TagRole, v.role, "TAG_ROLE_", tpb.TagRole, "tag role")
        return tpb.SubjectTag(subject_id=v.subject_id, role=role)  # type: ignore[arg-type]
    raise TypeError(f"a tag is a subject id (str) or lethe.SubjectTag, not {type(v).__name__}")


def _tags(vs: Sequence[TagLike]) -> list[tpb.SubjectTag]:
    if isinstance(vs, (str, SubjectTag)):
        vs = [vs]
    return [tag(v) for v in vs]


def _coerce(v: Any, cls: type[Any]) -> Any:
    if isinstance(v, cls):
        return v
    if isinstance(v, Mapping):
        return cls(**v)
    raise TypeError(f"expected {cls.__name__} or a mapping of its fields, not {type(v).__name__}")


def chunk(v: Union[Chunk, Mapping[str, Any]]) -> pb.IngestChunk:
    c: Chunk = _coerce(v, Chunk)
    return pb.IngestChunk(
        source_id=c.source_id,
        source_uri=c.source_uri,
        source_kind=c.source_kind,
        text=c.text,
        tags=_tags(c.tags),
        point_id=c.point_id,
        ordinal=c.ordinal,
    )


def tracked_point(v: Union[TrackedPoint, Mapping[str, Any]]) -> pb.TrackedPoint:
    p: TrackedPoint = _coerce(v, TrackedPoint)
    return pb.TrackedPoint(
        point_id=p.point_id,
        source_id=p.source_id,
        source_uri=p.source_uri,
        source_kind=p.source_kind,
        text=p.text,
        tags=_tags(p.tags),
        vector=list(p.vector),
    )


def _keys(v: Union[str, Sequence[str]], what: str) -> list[str]:
    if isinstance(v, str):
        raise TypeError(f"{what} is a sequence of keys, not a str (write [{v!r}])")
    return list(v)


def field_path(v: Union[FieldPath, Mapping[str, Any], None]) -> Optional[pb.FieldPath]:
    if v is None:
        return None
    f: FieldPath = _coerce(v, FieldPath)
    return pb.FieldPath(
        column=f.column, path=_keys(f.path, "path"), json_text_path=_keys(f.json_text_path, "json_text_path")
    )


def attach_mapping(v: Union[AttachMapping, Mapping[str, Any], None]) -> Optional[pb.AttachMapping]:
    if v is None:
        return None
    m: AttachMapping = _coerce(v, AttachMapping)
    out = pb.AttachMapping(id=m.id, vector=m.vector, scope_value=m.scope_value)
    for name in ("text", "source", "tags", "scope", "timestamp"):
        f = field_path(getattr(m, name))
        if f is not None:
            getattr(out, name).CopyFrom(f)
    return out


# ---------------------------------------------------------------------------- outputs


def _ts(msg: Any, name: str) -> Optional[datetime]:
    if not msg.HasField(name):
        return None
    ts = getattr(msg, name)
    return datetime.fromtimestamp(ts.seconds, tz=timezone.utc).replace(microsecond=ts.nanos // 1000)


def parse_time(text: str) -> Optional[datetime]:
    """RFC 3339 (``…Z`` or ``+00:00``) → aware datetime; ``None`` if it does not parse."""
    if not text:
        return None
    t = text.strip()
    if t.endswith(("Z", "z")):
        t = t[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(t)
    except ValueError:
        return None


def collection(m: tpb.Collection) -> Collection:
    return Collection(
        name=m.name,
        backend=_backend_out(m.backend),
        backend_name=m.backend_name,
        dimension=m.dimension,
        distance=_enum_out(Distance, m.distance, "DISTANCE_", tpb.Distance) or Distance.COSINE,
        embedding_model=m.embedding_model,
        store_text=m.store_text,
        retention_days=m.retention_days,
        screening=_enum_out(Screening, m.screening, "SCREENING_", tpb.Screening),
        created_at=_ts(m, "created_at"),
        mapping_json=m.mapping_json,
    )


def subject(m: tpb.Subject) -> Subject:
    return Subject(id=m.id, state=m.state, legal_hold=m.legal_hold, identifier_count=m.identifier_count)


def write_result(m: pb.WriteResponse) -> WriteResult:
    return WriteResult(
        accepted=m.accepted,
        suppressed=m.suppressed,
        point_ids=list(m.point_ids),
        suppressed_deleted=m.suppressed_deleted,
        screened=m.screened,
    )


def export_record(m: pb.ExportRecord) -> ExportRecord:
    return ExportRecord(part=m.part, json=m.json)


def delete_result(m: pb.DeletePointsResponse) -> DeleteResult:
    return DeleteResult(deleted=m.deleted, forgotten=m.forgotten, kept=m.kept, held=m.held)


def collection_count(m: tpb.CollectionCount) -> CollectionCount:
    return CollectionCount(
        collection=m.collection,
        backend=_backend_out(m.backend),
        before_by_tag=m.before_by_tag,
        before_by_ids=m.before_by_ids,
        before_total=m.before_total,
        deleted=m.deleted,
        after_by_tag=m.after_by_tag,
        after_by_ids=m.after_by_ids,
        after_total=m.after_total,
        residual_found=m.residual_found,
        residual_deleted=m.residual_deleted,
        residual_redacted=m.residual_redacted,
        physical_status=m.physical_status,
        physical_detail=m.physical_detail,
        withheld=m.withheld,
        residual_withheld=m.residual_withheld,
    )


def residual(m: tpb.ResidualCandidate) -> ResidualCandidate:
    return ResidualCandidate(
        collection=m.collection,
        point_id=m.point_id,
        source_id=m.source_id,
        score=m.score,
        evidence=[ResidualEvidence(kind=e.kind, detail=e.detail, matched=e.matched, score=e.score) for e in m.evidence],
        action=m.action,
    )


def erasure_job(m: tpb.ErasureJob) -> ErasureJob:
    return ErasureJob(
        job_id=m.job_id,
        subject_id=m.subject_id,
        subject_hash=m.subject_hash,
        status=_status_out(m.status),
        stage=_stage_out(m.stage),
        requested_by=m.requested_by,
        reason=m.reason,
        residual_policy=_enum_out(ResidualPolicy, m.residual_policy, "RESIDUAL_POLICY_", tpb.ResidualPolicy),
        received_at=_ts(m, "received_at"),
        started_at=_ts(m, "started_at"),
        completed_at=_ts(m, "completed_at"),
        deadline=_ts(m, "deadline"),
        overdue=m.overdue,
        counts=[collection_count(c) for c in m.counts],
        error=m.error,
        attempts=m.attempts,
        residuals=[residual(r) for r in m.residuals],
        guarantee_physical=m.guarantee_physical,
        notes=[JobNote(code=n.code, stage=n.stage, message=n.message) for n in m.notes],
        lineage_physical_status=m.lineage_physical_status,
        lineage_physical_detail=m.lineage_physical_detail,
        kind=m.kind,
        retention=retention_target(m.retention) if m.HasField("retention") else None,
    )


def retention_target(m: tpb.RetentionTarget) -> RetentionTarget:
    return RetentionTarget(collection=m.collection, sources=m.sources, withheld_sources=m.withheld_sources)


def erasure_event(m: tpb.ErasureEvent) -> ErasureEvent:
    return ErasureEvent(
        job_id=m.job_id,
        seq=m.seq,
        stage=_stage_out(m.stage),
        status=_status_out(m.status),
        message=m.message,
        at=_ts(m, "at"),
    )


def subject_counts(m: pb.CountSubjectResponse) -> SubjectCounts:
    return SubjectCounts(subject_state=m.subject_state, counts=[collection_count(c) for c in m.counts])


def log_entry(m: tpb.LogEntry) -> LogEntry:
    return LogEntry(
        seq=m.seq,
        kind=m.kind,
        job_id=m.job_id,
        subject_hash=m.subject_hash,
        body=m.body,
        prev_hash=m.prev_hash,
        entry_hash=m.entry_hash,
        created_at=_ts(m, "created_at"),
        hash_version=m.hash_version,
    )


def head_from_statement(*, size: int, head_hash: str, statement: str, signature: str) -> SignedLogHead:
    """A head rebuilt from its parts (a legal-hold refusal's ErrorInfo metadata)."""
    try:
        claims = json.loads(statement)
    except ValueError:
        claims = {}
    if not isinstance(claims, dict):
        claims = {}
    return SignedLogHead(
        size=size,
        head_hash=head_hash,
        statement=statement,
        signature=signature,
        key_id=str(claims.get("key_id", "")),
        signed_at=parse_time(str(claims.get("signed_at", ""))),
    )


def signed_head(m: tpb.SignedLogHead) -> SignedLogHead:
    return SignedLogHead(
        size=m.size,
        head_hash=m.head_hash,
        statement=m.statement,
        signature=m.signature,
        key_id=m.key_id,
        signed_at=_ts(m, "signed_at"),
    )


def _head_or_none(m: Any) -> Optional[SignedLogHead]:
    return signed_head(m.head) if m.HasField("head") else None


def log_page(m: pb.ListDeletionLogResponse) -> DeletionLogPage:
    return DeletionLogPage(entries=[log_entry(e) for e in m.entries], head=_head_or_none(m))


def log_verification(m: pb.VerifyDeletionLogResponse) -> LogVerification:
    return LogVerification(
        valid=m.valid,
        entries_checked=m.entries_checked,
        first_bad_seq=m.first_bad_seq,
        problem=m.problem,
        head_hash=m.head_hash,
        head=_head_or_none(m),
    )


def certificate(m: tpb.Certificate) -> Certificate:
    return Certificate(
        job_id=m.job_id,
        body=m.body,
        signature=m.signature,
        public_key=m.public_key,
        algorithm=m.algorithm,
        key_id=m.key_id,
    )


def reindex_job(m: tpb.ReindexJob) -> ReindexJob:
    return ReindexJob(
        job_id=m.job_id,
        collection=m.collection,
        mode=_enum_out(ReindexMode, m.mode, "REINDEX_MODE_", tpb.ReindexMode) or ReindexMode.COPY,
        status=_status_out(m.status),
        stage=m.stage,
        total=m.total,
        copied=m.copied,
        missing=m.missing,
        excluded=m.excluded,
        final_count=m.final_count,
        error=m.error,
        received_at=_ts(m, "received_at"),
        started_at=_ts(m, "started_at"),
        completed_at=_ts(m, "completed_at"),
        orphans_dropped=m.orphans_dropped,
        physical_detail=m.physical_detail,
    )


def attach_job(m: tpb.AttachJob) -> AttachJob:
    return AttachJob(
        collection=m.collection,
        status=m.status,
        total=m.total,
        scanned=m.scanned,
        tracked=m.tracked,
        untagged=m.untagged,
        suppressed=m.suppressed,
        subjects=m.subjects,
        rescans=m.rescans,
        error=m.error,
        received_at=_ts(m, "received_at"),
        completed_at=_ts(m, "completed_at"),
    )


def attach_result(m: pb.AttachResponse) -> AttachResult:
    return AttachResult(
        collection=collection(m.collection),
        job=attach_job(m.job) if m.HasField("job") else None,
        warnings=list(m.warnings),
        indexes_created=list(m.indexes_created),
        already_attached=m.already_attached,
    )


def reconcile_run(m: pb.ReconcileRun) -> ReconcileRun:
    return ReconcileRun(
        run_id=m.run_id,
        status=_status_out(m.status),
        trigger=m.trigger,
        requested_by=m.requested_by,
        collections=[
            ReconcileCollection(
                collection=c.collection,
                backend=_backend_out(c.backend),
                scanned=c.scanned,
                found_by_tag=c.found_by_tag,
                found_by_lineage=c.found_by_lineage,
                found_by_ledger=c.found_by_ledger,
                before=c.before,
                deleted=c.deleted,
                after=c.after,
                lineage_forgotten=c.lineage_forgotten,
                withheld=c.withheld,
                log_seq=c.log_seq,
                done=c.done,
            )
            for c in m.collections
        ],
        came_back=m.came_back,
        lineage_forgotten=m.lineage_forgotten,
        held_subject_hashes=list(m.held_subject_hashes),
        subjects_scrubbed=m.subjects_scrubbed,
        error=m.error,
        attempts=m.attempts,
        received_at=_ts(m, "received_at"),
        started_at=_ts(m, "started_at"),
        completed_at=_ts(m, "completed_at"),
        already_running=m.already_running,
    )


def ledger_import(m: pb.ImportLedgerResponse) -> LedgerImport:
    return LedgerImport(
        subjects=m.subjects,
        tombstones_created=m.tombstones_created,
        subjects_re_erased=m.subjects_re_erased,
        subjects_known=m.subjects_known,
        held_subject_hashes=list(m.held_subject_hashes),
        points=m.points,
        points_added=m.points_added,
        log_seq=m.log_seq,
    )


def collection_retention(m: tpb.CollectionRetention) -> CollectionRetention:
    return CollectionRetention(
        collection=m.collection,
        backend=_backend_out(m.backend),
        days=m.days,
        source_kinds=[SourceKindRule(source_kind=r.source_kind, days=r.days) for r in m.source_kinds],
        supported=m.supported,
        last_swept_at=_ts(m, "last_swept_at"),
        next_sweep_at=_ts(m, "next_sweep_at"),
    )


def retention_list(m: pb.ListRetentionResponse) -> RetentionList:
    return RetentionList(
        [collection_retention(c) for c in m.collections],
        scheduler_enabled=m.scheduler_enabled,
        interval_secs=m.interval_secs,
    )


def retention_sweep(m: tpb.RetentionSweep) -> RetentionSweep:
    return RetentionSweep(
        collection=m.collection,
        sources=m.sources,
        chunks=m.chunks,
        withheld_sources=m.withheld_sources,
        withheld_chunks=m.withheld_chunks,
        in_flight_sources=m.in_flight_sources,
        failed_sources=m.failed_sources,
        deferred_sources=m.deferred_sources,
        oldest=_ts(m, "oldest"),
        job_ids=list(m.job_ids),
    )
