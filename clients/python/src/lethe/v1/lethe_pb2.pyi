from google.protobuf import timestamp_pb2 as _timestamp_pb2
from lethe.v1 import types_pb2 as _types_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExportSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class ExportRecord(_message.Message):
    __slots__ = ("part", "json")
    PART_FIELD_NUMBER: _ClassVar[int]
    JSON_FIELD_NUMBER: _ClassVar[int]
    part: str
    json: str
    def __init__(self, part: _Optional[str] = ..., json: _Optional[str] = ...) -> None: ...

class AttachRequest(_message.Message):
    __slots__ = ("name", "backend", "preset", "target", "tag_key", "mapping", "create_indexes", "distance", "embedding_model", "screening")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    PRESET_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TAG_KEY_FIELD_NUMBER: _ClassVar[int]
    MAPPING_FIELD_NUMBER: _ClassVar[int]
    CREATE_INDEXES_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    SCREENING_FIELD_NUMBER: _ClassVar[int]
    name: str
    backend: _types_pb2.Backend
    preset: str
    target: str
    tag_key: str
    mapping: AttachMapping
    create_indexes: bool
    distance: _types_pb2.Distance
    embedding_model: str
    screening: _types_pb2.Screening
    def __init__(self, name: _Optional[str] = ..., backend: _Optional[_Union[_types_pb2.Backend, str]] = ..., preset: _Optional[str] = ..., target: _Optional[str] = ..., tag_key: _Optional[str] = ..., mapping: _Optional[_Union[AttachMapping, _Mapping]] = ..., create_indexes: bool = ..., distance: _Optional[_Union[_types_pb2.Distance, str]] = ..., embedding_model: _Optional[str] = ..., screening: _Optional[_Union[_types_pb2.Screening, str]] = ...) -> None: ...

class AttachMapping(_message.Message):
    __slots__ = ("id", "vector", "text", "source", "tags", "scope", "scope_value", "timestamp")
    ID_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SCOPE_VALUE_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    id: str
    vector: str
    text: FieldPath
    source: FieldPath
    tags: FieldPath
    scope: FieldPath
    scope_value: str
    timestamp: FieldPath
    def __init__(self, id: _Optional[str] = ..., vector: _Optional[str] = ..., text: _Optional[_Union[FieldPath, _Mapping]] = ..., source: _Optional[_Union[FieldPath, _Mapping]] = ..., tags: _Optional[_Union[FieldPath, _Mapping]] = ..., scope: _Optional[_Union[FieldPath, _Mapping]] = ..., scope_value: _Optional[str] = ..., timestamp: _Optional[_Union[FieldPath, _Mapping]] = ...) -> None: ...

class FieldPath(_message.Message):
    __slots__ = ("column", "path", "json_text_path")
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    JSON_TEXT_PATH_FIELD_NUMBER: _ClassVar[int]
    column: str
    path: _containers.RepeatedScalarFieldContainer[str]
    json_text_path: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, column: _Optional[str] = ..., path: _Optional[_Iterable[str]] = ..., json_text_path: _Optional[_Iterable[str]] = ...) -> None: ...

class AttachResponse(_message.Message):
    __slots__ = ("collection", "job", "warnings", "indexes_created", "already_attached")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    WARNINGS_FIELD_NUMBER: _ClassVar[int]
    INDEXES_CREATED_FIELD_NUMBER: _ClassVar[int]
    ALREADY_ATTACHED_FIELD_NUMBER: _ClassVar[int]
    collection: _types_pb2.Collection
    job: _types_pb2.AttachJob
    warnings: _containers.RepeatedScalarFieldContainer[str]
    indexes_created: _containers.RepeatedScalarFieldContainer[str]
    already_attached: bool
    def __init__(self, collection: _Optional[_Union[_types_pb2.Collection, _Mapping]] = ..., job: _Optional[_Union[_types_pb2.AttachJob, _Mapping]] = ..., warnings: _Optional[_Iterable[str]] = ..., indexes_created: _Optional[_Iterable[str]] = ..., already_attached: bool = ...) -> None: ...

class GetAttachRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class ReindexRequest(_message.Message):
    __slots__ = ("collection", "mode")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    mode: _types_pb2.ReindexMode
    def __init__(self, collection: _Optional[str] = ..., mode: _Optional[_Union[_types_pb2.ReindexMode, str]] = ...) -> None: ...

class GetReindexRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListReindexesRequest(_message.Message):
    __slots__ = ("limit",)
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    limit: int
    def __init__(self, limit: _Optional[int] = ...) -> None: ...

class ListReindexesResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_types_pb2.ReindexJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_types_pb2.ReindexJob, _Mapping]]] = ...) -> None: ...

class CreateCollectionRequest(_message.Message):
    __slots__ = ("name", "backend", "dimension", "distance", "store_text", "retention_days", "screening")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    STORE_TEXT_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    SCREENING_FIELD_NUMBER: _ClassVar[int]
    name: str
    backend: _types_pb2.Backend
    dimension: int
    distance: _types_pb2.Distance
    store_text: bool
    retention_days: int
    screening: _types_pb2.Screening
    def __init__(self, name: _Optional[str] = ..., backend: _Optional[_Union[_types_pb2.Backend, str]] = ..., dimension: _Optional[int] = ..., distance: _Optional[_Union[_types_pb2.Distance, str]] = ..., store_text: bool = ..., retention_days: _Optional[int] = ..., screening: _Optional[_Union[_types_pb2.Screening, str]] = ...) -> None: ...

class ListCollectionsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListCollectionsResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[_types_pb2.Collection]
    def __init__(self, collections: _Optional[_Iterable[_Union[_types_pb2.Collection, _Mapping]]] = ...) -> None: ...

class PutSubjectRequest(_message.Message):
    __slots__ = ("subject",)
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    subject: _types_pb2.SubjectRef
    def __init__(self, subject: _Optional[_Union[_types_pb2.SubjectRef, _Mapping]] = ...) -> None: ...

class SetLegalHoldRequest(_message.Message):
    __slots__ = ("subject_id", "hold", "reason")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    HOLD_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    hold: bool
    reason: str
    def __init__(self, subject_id: _Optional[str] = ..., hold: bool = ..., reason: _Optional[str] = ...) -> None: ...

class IngestRequest(_message.Message):
    __slots__ = ("collection", "chunks", "subjects")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    chunks: _containers.RepeatedCompositeFieldContainer[IngestChunk]
    subjects: _containers.RepeatedCompositeFieldContainer[_types_pb2.SubjectRef]
    def __init__(self, collection: _Optional[str] = ..., chunks: _Optional[_Iterable[_Union[IngestChunk, _Mapping]]] = ..., subjects: _Optional[_Iterable[_Union[_types_pb2.SubjectRef, _Mapping]]] = ...) -> None: ...

class IngestChunk(_message.Message):
    __slots__ = ("source_id", "source_uri", "source_kind", "text", "tags", "point_id", "ordinal")
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    POINT_ID_FIELD_NUMBER: _ClassVar[int]
    ORDINAL_FIELD_NUMBER: _ClassVar[int]
    source_id: str
    source_uri: str
    source_kind: str
    text: str
    tags: _containers.RepeatedCompositeFieldContainer[_types_pb2.SubjectTag]
    point_id: str
    ordinal: int
    def __init__(self, source_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., source_kind: _Optional[str] = ..., text: _Optional[str] = ..., tags: _Optional[_Iterable[_Union[_types_pb2.SubjectTag, _Mapping]]] = ..., point_id: _Optional[str] = ..., ordinal: _Optional[int] = ...) -> None: ...

class TrackRequest(_message.Message):
    __slots__ = ("collection", "points", "subjects", "verify_points")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    VERIFY_POINTS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    points: _containers.RepeatedCompositeFieldContainer[TrackedPoint]
    subjects: _containers.RepeatedCompositeFieldContainer[_types_pb2.SubjectRef]
    verify_points: bool
    def __init__(self, collection: _Optional[str] = ..., points: _Optional[_Iterable[_Union[TrackedPoint, _Mapping]]] = ..., subjects: _Optional[_Iterable[_Union[_types_pb2.SubjectRef, _Mapping]]] = ..., verify_points: bool = ...) -> None: ...

class TrackedPoint(_message.Message):
    __slots__ = ("point_id", "source_id", "source_uri", "source_kind", "text", "tags", "vector")
    POINT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    TEXT_FIELD_NUMBER: _ClassVar[int]
    TAGS_FIELD_NUMBER: _ClassVar[int]
    VECTOR_FIELD_NUMBER: _ClassVar[int]
    point_id: str
    source_id: str
    source_uri: str
    source_kind: str
    text: str
    tags: _containers.RepeatedCompositeFieldContainer[_types_pb2.SubjectTag]
    vector: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, point_id: _Optional[str] = ..., source_id: _Optional[str] = ..., source_uri: _Optional[str] = ..., source_kind: _Optional[str] = ..., text: _Optional[str] = ..., tags: _Optional[_Iterable[_Union[_types_pb2.SubjectTag, _Mapping]]] = ..., vector: _Optional[_Iterable[float]] = ...) -> None: ...

class DeletePointsRequest(_message.Message):
    __slots__ = ("collection", "point_ids", "source_ids")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    POINT_IDS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_IDS_FIELD_NUMBER: _ClassVar[int]
    collection: str
    point_ids: _containers.RepeatedScalarFieldContainer[str]
    source_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, collection: _Optional[str] = ..., point_ids: _Optional[_Iterable[str]] = ..., source_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DeletePointsResponse(_message.Message):
    __slots__ = ("deleted", "forgotten", "kept", "held")
    DELETED_FIELD_NUMBER: _ClassVar[int]
    FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    KEPT_FIELD_NUMBER: _ClassVar[int]
    HELD_FIELD_NUMBER: _ClassVar[int]
    deleted: int
    forgotten: int
    kept: int
    held: int
    def __init__(self, deleted: _Optional[int] = ..., forgotten: _Optional[int] = ..., kept: _Optional[int] = ..., held: _Optional[int] = ...) -> None: ...

class WriteResponse(_message.Message):
    __slots__ = ("accepted", "suppressed", "point_ids", "suppressed_deleted", "screened")
    ACCEPTED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    POINT_IDS_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_DELETED_FIELD_NUMBER: _ClassVar[int]
    SCREENED_FIELD_NUMBER: _ClassVar[int]
    accepted: int
    suppressed: int
    point_ids: _containers.RepeatedScalarFieldContainer[str]
    suppressed_deleted: int
    screened: int
    def __init__(self, accepted: _Optional[int] = ..., suppressed: _Optional[int] = ..., point_ids: _Optional[_Iterable[str]] = ..., suppressed_deleted: _Optional[int] = ..., screened: _Optional[int] = ...) -> None: ...

class EraseRequest(_message.Message):
    __slots__ = ("subject", "requested_by", "reason", "residual_policy", "idempotency_key", "deadline_days", "guarantee_physical")
    SUBJECT_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESIDUAL_POLICY_FIELD_NUMBER: _ClassVar[int]
    IDEMPOTENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_DAYS_FIELD_NUMBER: _ClassVar[int]
    GUARANTEE_PHYSICAL_FIELD_NUMBER: _ClassVar[int]
    subject: _types_pb2.SubjectRef
    requested_by: str
    reason: str
    residual_policy: _types_pb2.ResidualPolicy
    idempotency_key: str
    deadline_days: int
    guarantee_physical: bool
    def __init__(self, subject: _Optional[_Union[_types_pb2.SubjectRef, _Mapping]] = ..., requested_by: _Optional[str] = ..., reason: _Optional[str] = ..., residual_policy: _Optional[_Union[_types_pb2.ResidualPolicy, str]] = ..., idempotency_key: _Optional[str] = ..., deadline_days: _Optional[int] = ..., guarantee_physical: bool = ...) -> None: ...

class GetErasureRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class ListErasuresRequest(_message.Message):
    __slots__ = ("overdue_only", "limit", "status")
    OVERDUE_ONLY_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    overdue_only: bool
    limit: int
    status: _types_pb2.JobStatus
    def __init__(self, overdue_only: bool = ..., limit: _Optional[int] = ..., status: _Optional[_Union[_types_pb2.JobStatus, str]] = ...) -> None: ...

class ListErasuresResponse(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[_types_pb2.ErasureJob]
    def __init__(self, jobs: _Optional[_Iterable[_Union[_types_pb2.ErasureJob, _Mapping]]] = ...) -> None: ...

class CountSubjectRequest(_message.Message):
    __slots__ = ("subject_id",)
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    def __init__(self, subject_id: _Optional[str] = ...) -> None: ...

class CountSubjectResponse(_message.Message):
    __slots__ = ("counts", "subject_state")
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_STATE_FIELD_NUMBER: _ClassVar[int]
    counts: _containers.RepeatedCompositeFieldContainer[_types_pb2.CollectionCount]
    subject_state: str
    def __init__(self, counts: _Optional[_Iterable[_Union[_types_pb2.CollectionCount, _Mapping]]] = ..., subject_state: _Optional[str] = ...) -> None: ...

class ListDeletionLogRequest(_message.Message):
    __slots__ = ("after_seq", "limit")
    AFTER_SEQ_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    after_seq: int
    limit: int
    def __init__(self, after_seq: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ListDeletionLogResponse(_message.Message):
    __slots__ = ("entries", "head")
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[_types_pb2.LogEntry]
    head: _types_pb2.SignedLogHead
    def __init__(self, entries: _Optional[_Iterable[_Union[_types_pb2.LogEntry, _Mapping]]] = ..., head: _Optional[_Union[_types_pb2.SignedLogHead, _Mapping]] = ...) -> None: ...

class VerifyDeletionLogRequest(_message.Message):
    __slots__ = ("pinned_size", "pinned_head_hash")
    PINNED_SIZE_FIELD_NUMBER: _ClassVar[int]
    PINNED_HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    pinned_size: int
    pinned_head_hash: str
    def __init__(self, pinned_size: _Optional[int] = ..., pinned_head_hash: _Optional[str] = ...) -> None: ...

class VerifyDeletionLogResponse(_message.Message):
    __slots__ = ("valid", "entries_checked", "first_bad_seq", "problem", "head_hash", "head")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_CHECKED_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAD_SEQ_FIELD_NUMBER: _ClassVar[int]
    PROBLEM_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    entries_checked: int
    first_bad_seq: int
    problem: str
    head_hash: str
    head: _types_pb2.SignedLogHead
    def __init__(self, valid: bool = ..., entries_checked: _Optional[int] = ..., first_bad_seq: _Optional[int] = ..., problem: _Optional[str] = ..., head_hash: _Optional[str] = ..., head: _Optional[_Union[_types_pb2.SignedLogHead, _Mapping]] = ...) -> None: ...

class GetCertificateRequest(_message.Message):
    __slots__ = ("job_id",)
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    def __init__(self, job_id: _Optional[str] = ...) -> None: ...

class SearchResidualsRequest(_message.Message):
    __slots__ = ("identifiers", "limit")
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    identifiers: _containers.RepeatedCompositeFieldContainer[_types_pb2.Identifier]
    limit: int
    def __init__(self, identifiers: _Optional[_Iterable[_Union[_types_pb2.Identifier, _Mapping]]] = ..., limit: _Optional[int] = ...) -> None: ...

class SearchResidualsResponse(_message.Message):
    __slots__ = ("candidates",)
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    candidates: _containers.RepeatedCompositeFieldContainer[_types_pb2.ResidualCandidate]
    def __init__(self, candidates: _Optional[_Iterable[_Union[_types_pb2.ResidualCandidate, _Mapping]]] = ...) -> None: ...

class ReconcileRequest(_message.Message):
    __slots__ = ("requested_by",)
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    requested_by: str
    def __init__(self, requested_by: _Optional[str] = ...) -> None: ...

class GetReconcileRequest(_message.Message):
    __slots__ = ("run_id",)
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    def __init__(self, run_id: _Optional[str] = ...) -> None: ...

class ReconcileCollection(_message.Message):
    __slots__ = ("collection", "backend", "scanned", "found_by_tag", "found_by_lineage", "found_by_ledger", "before", "deleted", "after", "lineage_forgotten", "withheld", "log_seq", "done")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    SCANNED_FIELD_NUMBER: _ClassVar[int]
    FOUND_BY_TAG_FIELD_NUMBER: _ClassVar[int]
    FOUND_BY_LINEAGE_FIELD_NUMBER: _ClassVar[int]
    FOUND_BY_LEDGER_FIELD_NUMBER: _ClassVar[int]
    BEFORE_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    AFTER_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    DONE_FIELD_NUMBER: _ClassVar[int]
    collection: str
    backend: _types_pb2.Backend
    scanned: int
    found_by_tag: int
    found_by_lineage: int
    found_by_ledger: int
    before: int
    deleted: int
    after: int
    lineage_forgotten: int
    withheld: int
    log_seq: int
    done: bool
    def __init__(self, collection: _Optional[str] = ..., backend: _Optional[_Union[_types_pb2.Backend, str]] = ..., scanned: _Optional[int] = ..., found_by_tag: _Optional[int] = ..., found_by_lineage: _Optional[int] = ..., found_by_ledger: _Optional[int] = ..., before: _Optional[int] = ..., deleted: _Optional[int] = ..., after: _Optional[int] = ..., lineage_forgotten: _Optional[int] = ..., withheld: _Optional[int] = ..., log_seq: _Optional[int] = ..., done: bool = ...) -> None: ...

class ReconcileRun(_message.Message):
    __slots__ = ("run_id", "status", "trigger", "requested_by", "collections", "came_back", "lineage_forgotten", "held_subject_hashes", "subjects_scrubbed", "error", "attempts", "received_at", "started_at", "completed_at", "already_running")
    RUN_ID_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    CAME_BACK_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_FORGOTTEN_FIELD_NUMBER: _ClassVar[int]
    HELD_SUBJECT_HASHES_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_SCRUBBED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    ALREADY_RUNNING_FIELD_NUMBER: _ClassVar[int]
    run_id: str
    status: _types_pb2.JobStatus
    trigger: str
    requested_by: str
    collections: _containers.RepeatedCompositeFieldContainer[ReconcileCollection]
    came_back: int
    lineage_forgotten: int
    held_subject_hashes: _containers.RepeatedScalarFieldContainer[str]
    subjects_scrubbed: int
    error: str
    attempts: int
    received_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    already_running: bool
    def __init__(self, run_id: _Optional[str] = ..., status: _Optional[_Union[_types_pb2.JobStatus, str]] = ..., trigger: _Optional[str] = ..., requested_by: _Optional[str] = ..., collections: _Optional[_Iterable[_Union[ReconcileCollection, _Mapping]]] = ..., came_back: _Optional[int] = ..., lineage_forgotten: _Optional[int] = ..., held_subject_hashes: _Optional[_Iterable[str]] = ..., subjects_scrubbed: _Optional[int] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., received_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., already_running: bool = ...) -> None: ...

class ExportLedgerRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class LedgerChunk(_message.Message):
    __slots__ = ("data",)
    DATA_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    def __init__(self, data: _Optional[bytes] = ...) -> None: ...

class ImportLedgerResponse(_message.Message):
    __slots__ = ("subjects", "tombstones_created", "subjects_re_erased", "subjects_known", "held_subject_hashes", "points", "points_added", "log_seq")
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    TOMBSTONES_CREATED_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_RE_ERASED_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_KNOWN_FIELD_NUMBER: _ClassVar[int]
    HELD_SUBJECT_HASHES_FIELD_NUMBER: _ClassVar[int]
    POINTS_FIELD_NUMBER: _ClassVar[int]
    POINTS_ADDED_FIELD_NUMBER: _ClassVar[int]
    LOG_SEQ_FIELD_NUMBER: _ClassVar[int]
    subjects: int
    tombstones_created: int
    subjects_re_erased: int
    subjects_known: int
    held_subject_hashes: _containers.RepeatedScalarFieldContainer[str]
    points: int
    points_added: int
    log_seq: int
    def __init__(self, subjects: _Optional[int] = ..., tombstones_created: _Optional[int] = ..., subjects_re_erased: _Optional[int] = ..., subjects_known: _Optional[int] = ..., held_subject_hashes: _Optional[_Iterable[str]] = ..., points: _Optional[int] = ..., points_added: _Optional[int] = ..., log_seq: _Optional[int] = ...) -> None: ...

class SetRetentionRequest(_message.Message):
    __slots__ = ("collection", "days", "source_kind", "clear")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    CLEAR_FIELD_NUMBER: _ClassVar[int]
    collection: str
    days: int
    source_kind: str
    clear: bool
    def __init__(self, collection: _Optional[str] = ..., days: _Optional[int] = ..., source_kind: _Optional[str] = ..., clear: bool = ...) -> None: ...

class ListRetentionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListRetentionResponse(_message.Message):
    __slots__ = ("collections", "scheduler_enabled", "interval_secs")
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    SCHEDULER_ENABLED_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_SECS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[_types_pb2.CollectionRetention]
    scheduler_enabled: bool
    interval_secs: int
    def __init__(self, collections: _Optional[_Iterable[_Union[_types_pb2.CollectionRetention, _Mapping]]] = ..., scheduler_enabled: bool = ..., interval_secs: _Optional[int] = ...) -> None: ...

class PreviewRetentionRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class PreviewRetentionResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[_types_pb2.RetentionSweep]
    def __init__(self, collections: _Optional[_Iterable[_Union[_types_pb2.RetentionSweep, _Mapping]]] = ...) -> None: ...

class SweepRetentionRequest(_message.Message):
    __slots__ = ("collection",)
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    def __init__(self, collection: _Optional[str] = ...) -> None: ...

class SweepRetentionResponse(_message.Message):
    __slots__ = ("collections",)
    COLLECTIONS_FIELD_NUMBER: _ClassVar[int]
    collections: _containers.RepeatedCompositeFieldContainer[_types_pb2.RetentionSweep]
    def __init__(self, collections: _Optional[_Iterable[_Union[_types_pb2.RetentionSweep, _Mapping]]] = ...) -> None: ...
