"""One builder per rpc: the request message and how to read the response.

Shared by the sync and async clients, which only differ in how they send.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any, Callable, Generic, Iterable, Mapping, Optional, Sequence, TypeVar, Union

from . import _convert as cv
from .types import (
    CollectionRetention,
    RetentionList,
    RetentionSweep,
    ReconcileRun,
    AttachJob,
    AttachMapping,
    AttachResult,
    Backend,
    Certificate,
    Chunk,
    Collection,
    DeleteResult,
    DeletionLogPage,
    Distance,
    ErasureJob,
    ExportRecord,
    IdentifierLike,
    JobStatus,
    LogVerification,
    ReindexJob,
    ReindexMode,
    ResidualCandidate,
    ResidualPolicy,
    Screening,
    SignedLogHead,
    Subject,
    SubjectCounts,
    TrackedPoint,
    WriteResult,
)
from .v1 import lethe_pb2 as pb

T = TypeVar("T")


@dataclass(frozen=True)
class Call(Generic[T]):
    #: attribute of the generated ``LetheStub``
    method: str
    request: Any
    convert: Callable[[Any], T]
    #: retried on UNAVAILABLE; False for a call whose lost answer may have started work
    #: that a second call would start again (``Reindex``: a second job)
    retry: bool = True


def auto_idempotency_key() -> str:
    """A fresh key, so that retrying an Erase after a lost response cannot start a second job."""
    return f"lethe-py-{uuid.uuid4().hex}"


def create_collection(
    name: str,
    backend: Union[Backend, str],
    dimension: int,
    distance: Union[Distance, str, None],
    store_text: Optional[bool],
    retention_days: int,
    screening: Union[Screening, str, None],
) -> Call[Collection]:
    req = pb.CreateCollectionRequest(
        name=name,
        backend=cv.backend_in(backend),  # type: ignore[arg-type]
        dimension=dimension,
        distance=cv.distance_in(distance),  # type: ignore[arg-type]
        retention_days=retention_days,
        screening=cv.screening_in(screening),  # type: ignore[arg-type]
    )
    if store_text is not None:
        req.store_text = store_text
    return Call("CreateCollection", req, cv.collection)


def list_collections() -> Call[list[Collection]]:
    return Call("ListCollections", pb.ListCollectionsRequest(), lambda r: [cv.collection(c) for c in r.collections])


def put_subject(subject_id: str, identifiers: Iterable[IdentifierLike]) -> Call[Subject]:
    return Call("PutSubject", pb.PutSubjectRequest(subject=cv.subject_ref(subject_id, identifiers)), cv.subject)


def set_legal_hold(subject_id: str, hold: bool, reason: str) -> Call[Subject]:
    return Call("SetLegalHold", pb.SetLegalHoldRequest(subject_id=subject_id, hold=hold, reason=reason), cv.subject)


def ingest(
    collection: str, chunks: Iterable[Union[Chunk, Mapping[str, Any]]], subjects: cv.SubjectsLike
) -> Call[WriteResult]:
    req = pb.IngestRequest(
        collection=collection, chunks=[cv.chunk(c) for c in chunks], subjects=cv.subject_refs(subjects)
    )
    return Call("Ingest", req, cv.write_result)


def track(
    collection: str,
    points: Iterable[Union[TrackedPoint, Mapping[str, Any]]],
    subjects: cv.SubjectsLike,
    verify_points: bool,
) -> Call[WriteResult]:
    req = pb.TrackRequest(
        collection=collection,
        points=[cv.tracked_point(p) for p in points],
        subjects=cv.subject_refs(subjects),
        verify_points=verify_points,
    )
    return Call("Track", req, cv.write_result)


def delete_points(collection: str, point_ids: Iterable[Union[str, int]], source_ids: Iterable[str]) -> Call[DeleteResult]:
    # A str is iterable: its characters would be ids (and other sources deleted).
    if isinstance(point_ids, (str, bytes)) or isinstance(source_ids, (str, bytes)):
        raise TypeError("point_ids and source_ids are lists of ids, not one str (write ['…'])")
    req = pb.DeletePointsRequest(
        collection=collection, point_ids=[str(p) for p in point_ids], source_ids=list(source_ids)
    )
    return Call("DeletePoints", req, cv.delete_result)


def export_subject(subject_id: str) -> Call[ExportRecord]:
    """A server stream: the call's ``convert`` reads one record."""
    return Call("ExportSubject", pb.ExportSubjectRequest(subject_id=subject_id), cv.export_record)


def erase(
    subject: str,
    identifiers: Iterable[IdentifierLike],
    requested_by: str,
    reason: str,
    residual_policy: Union[ResidualPolicy, str, None],
    idempotency_key: str,
    deadline_days: Optional[int],
    guarantee_physical: bool,
) -> Call[ErasureJob]:
    req = pb.EraseRequest(
        subject=cv.subject_ref(subject, identifiers),
        requested_by=requested_by,
        reason=reason,
        residual_policy=cv.policy_in(residual_policy),  # type: ignore[arg-type]
        idempotency_key=idempotency_key,
        deadline_days=deadline_days or 0,
        guarantee_physical=guarantee_physical,
    )
    return Call("Erase", req, cv.erasure_job)


def get_erasure(job_id: str) -> Call[ErasureJob]:
    return Call("GetErasure", pb.GetErasureRequest(job_id=job_id), cv.erasure_job)


def watch_erasure_request(job_id: str) -> Any:
    return pb.GetErasureRequest(job_id=job_id)


def list_erasures(overdue_only: bool, status: Union[JobStatus, str, None], limit: int) -> Call[list[ErasureJob]]:
    req = pb.ListErasuresRequest(overdue_only=overdue_only, limit=limit, status=cv.status_in(status))  # type: ignore[arg-type]
    return Call("ListErasures", req, lambda r: [cv.erasure_job(j) for j in r.jobs])


def count_subject(subject_id: str) -> Call[SubjectCounts]:
    return Call("CountSubject", pb.CountSubjectRequest(subject_id=subject_id), cv.subject_counts)


def list_deletion_log(after_seq: int, limit: int) -> Call[DeletionLogPage]:
    return Call("ListDeletionLog", pb.ListDeletionLogRequest(after_seq=after_seq, limit=limit), cv.log_page)


def verify_deletion_log(
    pin: Optional[SignedLogHead], pinned_size: Optional[int], pinned_head_hash: Optional[str]
) -> Call[LogVerification]:
    if pin is not None:
        if pinned_size is not None or pinned_head_hash is not None:
            raise ValueError("give either pin= or pinned_size=/pinned_head_hash=, not both")
        pinned_size, pinned_head_hash = pin.size, pin.head_hash
    req = pb.VerifyDeletionLogRequest(pinned_size=pinned_size or 0, pinned_head_hash=pinned_head_hash or "")
    return Call("VerifyDeletionLog", req, cv.log_verification)


def get_certificate(job_id: str) -> Call[Certificate]:
    return Call("GetCertificate", pb.GetCertificateRequest(job_id=job_id), cv.certificate)


def search_residuals(identifiers: Sequence[IdentifierLike], limit: int) -> Call[list[ResidualCandidate]]:
    req = pb.SearchResidualsRequest(identifiers=cv.identifiers(identifiers), limit=limit)
    return Call("SearchResiduals", req, lambda r: [cv.residual(c) for c in r.candidates])


def reindex(collection: str, mode: Union[ReindexMode, str, None]) -> Call[ReindexJob]:
    req = pb.ReindexRequest(collection=collection, mode=cv.mode_in(mode))  # type: ignore[arg-type]
    return Call("Reindex", req, cv.reindex_job, retry=False)


def get_reindex(job_id: str) -> Call[ReindexJob]:
    return Call("GetReindex", pb.GetReindexRequest(job_id=job_id), cv.reindex_job)


def list_reindexes(limit: int) -> Call[list[ReindexJob]]:
    return Call("ListReindexes", pb.ListReindexesRequest(limit=limit), lambda r: [cv.reindex_job(j) for j in r.jobs])


def _preset_backend(preset: str) -> Backend:
    """The backend a preset's store lives in (``langchain-qdrant`` → qdrant)."""
    return Backend.QDRANT if preset.endswith("-qdrant") else Backend.PGVECTOR


def attach(
    name: str,
    backend: Union[Backend, str, None],
    preset: str,
    target: str,
    tag_key: str,
    mapping: Union[AttachMapping, Mapping[str, Any], None],
    create_indexes: bool,
    distance: Union[Distance, str, None],
    embedding_model: str,
    screening: Union[Screening, str, None],
) -> Call[AttachResult]:
    if backend is None:
        if not preset:
            raise ValueError("backend is required without a preset")
        backend = _preset_backend(preset)
    req = pb.AttachRequest(
        name=name,
        backend=cv.backend_in(backend),  # type: ignore[arg-type]
        preset=preset,
        target=target,
        tag_key=tag_key,
        create_indexes=create_indexes,
        distance=cv.distance_in(distance),  # type: ignore[arg-type]
        embedding_model=embedding_model,
        screening=cv.screening_in(screening),  # type: ignore[arg-type]
    )
    m = cv.attach_mapping(mapping)
    if m is not None:
        req.mapping.CopyFrom(m)
    return Call("Attach", req, cv.attach_result)


def get_attach(collection: str) -> Call[AttachJob]:
    return Call("GetAttach", pb.GetAttachRequest(collection=collection), cv.attach_job)


# grpc.health.v1.Health/Check, without a dependency on grpcio-health-checking:
# HealthCheckRequest{service: ""} is empty; HealthCheckResponse{status = 1} is SERVING.
HEALTH_METHOD = "/grpc.health.v1.Health/Check"


def health_serving(response: bytes) -> bool:
    return response == b"\x08\x01"


def reconcile(requested_by: str) -> Call[ReconcileRun]:
    return Call("Reconcile", pb.ReconcileRequest(requested_by=requested_by), cv.reconcile_run)


def get_reconcile(run_id: str) -> Call[ReconcileRun]:
    return Call("GetReconcile", pb.GetReconcileRequest(run_id=run_id), cv.reconcile_run)


def export_ledger_request() -> Any:
    """ExportLedger's request (a server stream of LedgerChunks)."""
    return pb.ExportLedgerRequest()


#: Bytes per LedgerChunk that ImportLedger is sent in (the server takes up to 4 MiB).
LEDGER_CHUNK = 1 << 20


def ledger_chunks(ledger: bytes) -> list[Any]:
    """The LedgerChunk messages of a ledger, in order."""
    return [pb.LedgerChunk(data=ledger[i : i + LEDGER_CHUNK]) for i in range(0, len(ledger), LEDGER_CHUNK)]


def set_retention(collection: str, days: int, source_kind: str, clear: bool) -> Call[CollectionRetention]:
    request = pb.SetRetentionRequest(collection=collection, days=days, source_kind=source_kind, clear=clear)
    return Call("SetRetention", request, cv.collection_retention)


def list_retention() -> Call[RetentionList]:
    return Call("ListRetention", pb.ListRetentionRequest(), cv.retention_list)


def preview_retention(collection: str) -> Call[list[RetentionSweep]]:
    request = pb.PreviewRetentionRequest(collection=collection)
    return Call("PreviewRetention", request, lambda m: [cv.retention_sweep(c) for c in m.collections])


def sweep_retention(collection: str) -> Call[list[RetentionSweep]]:
    request = pb.SweepRetentionRequest(collection=collection)
    return Call("SweepRetention", request, lambda m: [cv.retention_sweep(c) for c in m.collections])
