from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Backend(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BACKEND_UNSPECIFIED: _ClassVar[Backend]
    BACKEND_PGVECTOR: _ClassVar[Backend]
    BACKEND_QDRANT: _ClassVar[Backend]

class Distance(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DISTANCE_UNSPECIFIED: _ClassVar[Distance]
    DISTANCE_COSINE: _ClassVar[Distance]
    DISTANCE_DOT: _ClassVar[Distance]
    DISTANCE_EUCLID: _ClassVar[Distance]

class Screening(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCREENING_UNSPECIFIED: _ClassVar[Screening]
    SCREENING_ACCEPT: _ClassVar[Screening]
    SCREENING_REPORT: _ClassVar[Screening]
    SCREENING_REDACT: _ClassVar[Screening]
    SCREENING_REJECT: _ClassVar[Screening]

class IdentifierKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IDENTIFIER_KIND_UNSPECIFIED: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_EMAIL: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_NAME: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_PHONE: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_HANDLE: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_ANONYMOUS_ID: _ClassVar[IdentifierKind]
    IDENTIFIER_KIND_OTHER: _ClassVar[IdentifierKind]

class TagRole(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TAG_ROLE_UNSPECIFIED: _ClassVar[TagRole]
    TAG_ROLE_OWNER: _ClassVar[TagRole]
    TAG_ROLE_AUTHOR: _ClassVar[TagRole]
    TAG_ROLE_MENTIONED: _ClassVar[TagRole]

class ResidualPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RESIDUAL_POLICY_UNSPECIFIED: _ClassVar[ResidualPolicy]
    RESIDUAL_POLICY_REPORT: _ClassVar[ResidualPolicy]
    RESIDUAL_POLICY_DELETE: _ClassVar[ResidualPolicy]
    RESIDUAL_POLICY_REDACT: _ClassVar[ResidualPolicy]

class JobStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    JOB_STATUS_UNSPECIFIED: _ClassVar[JobStatus]
    JOB_STATUS_QUEUED: _ClassVar[JobStatus]
    JOB_STATUS_IN_PROGRESS: _ClassVar[JobStatus]
    JOB_STATUS_COMPLETED: _ClassVar[JobStatus]
    JOB_STATUS_FAILED: _ClassVar[JobStatus]
    JOB_STATUS_REFUSED: _ClassVar[JobStatus]

class Stage(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STAGE_UNSPECIFIED: _ClassVar[Stage]
    STAGE_FREEZE: _ClassVar[Stage]
    STAGE_PLAN: _ClassVar[Stage]
    STAGE_DELETE: _ClassVar[Stage]
    STAGE_VERIFY: _ClassVar[Stage]
    STAGE_RESIDUAL: _ClassVar[Stage]
    STAGE_FORGET_LINEAGE: _ClassVar[Stage]
    STAGE_PHYSICAL: _ClassVar[Stage]
    STAGE_LOG: _ClassVar[Stage]
    STAGE_DONE: _ClassVar[Stage]

class ReindexMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    REINDEX_MODE_UNSPECIFIED: _ClassVar[ReindexMode]
    REINDEX_MODE_COPY: _ClassVar[ReindexMode]
    REINDEX_MODE_REEMBED: _ClassVar[ReindexMode]
BACKEND_UNSPECIFIED: Backend
BACKEND_PGVECTOR: Backend
BACKEND_QDRANT: Backend
DISTANCE_UNSPECIFIED: Distance
DISTANCE_COSINE: Distance
DISTANCE_DOT: Distance
DISTANCE_EUCLID: Distance
SCREENING_UNSPECIFIED: Screening
SCREENING_ACCEPT: Screening
SCREENING_REPORT: Screening
SCREENING_REDACT: Screening
SCREENING_REJECT: Screening
IDENTIFIER_KIND_UNSPECIFIED: IdentifierKind
IDENTIFIER_KIND_EMAIL: IdentifierKind
IDENTIFIER_KIND_NAME: IdentifierKind
IDENTIFIER_KIND_PHONE: IdentifierKind
IDENTIFIER_KIND_HANDLE: IdentifierKind
IDENTIFIER_KIND_ANONYMOUS_ID: IdentifierKind
IDENTIFIER_KIND_OTHER: IdentifierKind
TAG_ROLE_UNSPECIFIED: TagRole
TAG_ROLE_OWNER: TagRole
TAG_ROLE_AUTHOR: TagRole
TAG_ROLE_MENTIONED: TagRole
RESIDUAL_POLICY_UNSPECIFIED: ResidualPolicy
RESIDUAL_POLICY_REPORT: ResidualPolicy
RESIDUAL_POLICY_DELETE: ResidualPolicy
RESIDUAL_POLICY_REDACT: ResidualPolicy
JOB_STATUS_UNSPECIFIED: JobStatus
JOB_STATUS_QUEUED: JobStatus
JOB_STATUS_IN_PROGRESS: JobStatus
JOB_STATUS_COMPLETED: JobStatus
JOB_STATUS_FAILED: JobStatus
JOB_STATUS_REFUSED: JobStatus
STAGE_UNSPECIFIED: Stage
STAGE_FREEZE: Stage
STAGE_PLAN: Stage
STAGE_DELETE: Stage
STAGE_VERIFY: Stage
STAGE_RESIDUAL: Stage
STAGE_FORGET_LINEAGE: Stage
STAGE_PHYSICAL: Stage
STAGE_LOG: Stage
STAGE_DONE: Stage
REINDEX_MODE_UNSPECIFIED: ReindexMode
REINDEX_MODE_COPY: ReindexMode
REINDEX_MODE_REEMBED: ReindexMode

class Collection(_message.Message):
    __slots__ = ("name", "backend", "backend_name", "dimension", "distance", "embedding_model", "store_text", "retention_days", "created_at", "screening", "mapping_json")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    BACKEND_NAME_FIELD_NUMBER: _ClassVar[int]
    DIMENSION_FIELD_NUMBER: _ClassVar[int]
    DISTANCE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_MODEL_FIELD_NUMBER: _ClassVar[int]
    STORE_TEXT_FIELD_NUMBER: _ClassVar[int]
    RETENTION_DAYS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    SCREENING_FIELD_NUMBER: _ClassVar[int]
    MAPPING_JSON_FIELD_NUMBER: _ClassVar[int]
    name: str
    backend: Backend
    backend_name: str
    dimension: int
    distance: Distance
    embedding_model: str
    store_text: bool
    retention_days: int
    created_at: _timestamp_pb2.Timestamp
    screening: Screening
    mapping_json: str
    def __init__(self, name: _Optional[str] = ..., backend: _Optional[_Union[Backend, str]] = ..., backend_name: _Optional[str] = ..., dimension: _Optional[int] = ..., distance: _Optional[_Union[Distance, str]] = ..., embedding_model: _Optional[str] = ..., store_text: bool = ..., retention_days: _Optional[int] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., screening: _Optional[_Union[Screening, str]] = ..., mapping_json: _Optional[str] = ...) -> None: ...

class AttachJob(_message.Message):
    __slots__ = ("collection", "status", "total", "scanned", "tracked", "untagged", "suppressed", "subjects", "rescans", "error", "received_at", "completed_at")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    SCANNED_FIELD_NUMBER: _ClassVar[int]
    TRACKED_FIELD_NUMBER: _ClassVar[int]
    UNTAGGED_FIELD_NUMBER: _ClassVar[int]
    SUPPRESSED_FIELD_NUMBER: _ClassVar[int]
    SUBJECTS_FIELD_NUMBER: _ClassVar[int]
    RESCANS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    status: str
    total: int
    scanned: int
    tracked: int
    untagged: int
    suppressed: int
    subjects: int
    rescans: int
    error: str
    received_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    def __init__(self, collection: _Optional[str] = ..., status: _Optional[str] = ..., total: _Optional[int] = ..., scanned: _Optional[int] = ..., tracked: _Optional[int] = ..., untagged: _Optional[int] = ..., suppressed: _Optional[int] = ..., subjects: _Optional[int] = ..., rescans: _Optional[int] = ..., error: _Optional[str] = ..., received_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class Identifier(_message.Message):
    __slots__ = ("kind", "value")
    KIND_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    kind: IdentifierKind
    value: str
    def __init__(self, kind: _Optional[_Union[IdentifierKind, str]] = ..., value: _Optional[str] = ...) -> None: ...

class SubjectRef(_message.Message):
    __slots__ = ("id", "identifiers")
    ID_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIERS_FIELD_NUMBER: _ClassVar[int]
    id: str
    identifiers: _containers.RepeatedCompositeFieldContainer[Identifier]
    def __init__(self, id: _Optional[str] = ..., identifiers: _Optional[_Iterable[_Union[Identifier, _Mapping]]] = ...) -> None: ...

class Subject(_message.Message):
    __slots__ = ("id", "state", "legal_hold", "identifier_count")
    ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    LEGAL_HOLD_FIELD_NUMBER: _ClassVar[int]
    IDENTIFIER_COUNT_FIELD_NUMBER: _ClassVar[int]
    id: str
    state: str
    legal_hold: bool
    identifier_count: int
    def __init__(self, id: _Optional[str] = ..., state: _Optional[str] = ..., legal_hold: bool = ..., identifier_count: _Optional[int] = ...) -> None: ...

class SubjectTag(_message.Message):
    __slots__ = ("subject_id", "role")
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    subject_id: str
    role: TagRole
    def __init__(self, subject_id: _Optional[str] = ..., role: _Optional[_Union[TagRole, str]] = ...) -> None: ...

class CollectionCount(_message.Message):
    __slots__ = ("collection", "backend", "before_by_tag", "before_by_ids", "before_total", "deleted", "after_by_tag", "after_by_ids", "after_total", "residual_found", "residual_deleted", "residual_redacted", "physical_status", "physical_detail", "withheld", "residual_withheld")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    BEFORE_BY_TAG_FIELD_NUMBER: _ClassVar[int]
    BEFORE_BY_IDS_FIELD_NUMBER: _ClassVar[int]
    BEFORE_TOTAL_FIELD_NUMBER: _ClassVar[int]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    AFTER_BY_TAG_FIELD_NUMBER: _ClassVar[int]
    AFTER_BY_IDS_FIELD_NUMBER: _ClassVar[int]
    AFTER_TOTAL_FIELD_NUMBER: _ClassVar[int]
    RESIDUAL_FOUND_FIELD_NUMBER: _ClassVar[int]
    RESIDUAL_DELETED_FIELD_NUMBER: _ClassVar[int]
    RESIDUAL_REDACTED_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_DETAIL_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_FIELD_NUMBER: _ClassVar[int]
    RESIDUAL_WITHHELD_FIELD_NUMBER: _ClassVar[int]
    collection: str
    backend: Backend
    before_by_tag: int
    before_by_ids: int
    before_total: int
    deleted: int
    after_by_tag: int
    after_by_ids: int
    after_total: int
    residual_found: int
    residual_deleted: int
    residual_redacted: int
    physical_status: str
    physical_detail: str
    withheld: int
    residual_withheld: int
    def __init__(self, collection: _Optional[str] = ..., backend: _Optional[_Union[Backend, str]] = ..., before_by_tag: _Optional[int] = ..., before_by_ids: _Optional[int] = ..., before_total: _Optional[int] = ..., deleted: _Optional[int] = ..., after_by_tag: _Optional[int] = ..., after_by_ids: _Optional[int] = ..., after_total: _Optional[int] = ..., residual_found: _Optional[int] = ..., residual_deleted: _Optional[int] = ..., residual_redacted: _Optional[int] = ..., physical_status: _Optional[str] = ..., physical_detail: _Optional[str] = ..., withheld: _Optional[int] = ..., residual_withheld: _Optional[int] = ...) -> None: ...

class ErasureJob(_message.Message):
    __slots__ = ("job_id", "subject_id", "subject_hash", "status", "stage", "requested_by", "reason", "residual_policy", "received_at", "started_at", "completed_at", "deadline", "overdue", "counts", "error", "attempts", "residuals", "guarantee_physical", "notes", "lineage_physical_status", "lineage_physical_detail", "kind", "retention")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_HASH_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    REQUESTED_BY_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    RESIDUAL_POLICY_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    DEADLINE_FIELD_NUMBER: _ClassVar[int]
    OVERDUE_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    RESIDUALS_FIELD_NUMBER: _ClassVar[int]
    GUARANTEE_PHYSICAL_FIELD_NUMBER: _ClassVar[int]
    NOTES_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_PHYSICAL_STATUS_FIELD_NUMBER: _ClassVar[int]
    LINEAGE_PHYSICAL_DETAIL_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    RETENTION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    subject_id: str
    subject_hash: str
    status: JobStatus
    stage: Stage
    requested_by: str
    reason: str
    residual_policy: ResidualPolicy
    received_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    deadline: _timestamp_pb2.Timestamp
    overdue: bool
    counts: _containers.RepeatedCompositeFieldContainer[CollectionCount]
    error: str
    attempts: int
    residuals: _containers.RepeatedCompositeFieldContainer[ResidualCandidate]
    guarantee_physical: bool
    notes: _containers.RepeatedCompositeFieldContainer[JobNote]
    lineage_physical_status: str
    lineage_physical_detail: str
    kind: str
    retention: RetentionTarget
    def __init__(self, job_id: _Optional[str] = ..., subject_id: _Optional[str] = ..., subject_hash: _Optional[str] = ..., status: _Optional[_Union[JobStatus, str]] = ..., stage: _Optional[_Union[Stage, str]] = ..., requested_by: _Optional[str] = ..., reason: _Optional[str] = ..., residual_policy: _Optional[_Union[ResidualPolicy, str]] = ..., received_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., deadline: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., overdue: bool = ..., counts: _Optional[_Iterable[_Union[CollectionCount, _Mapping]]] = ..., error: _Optional[str] = ..., attempts: _Optional[int] = ..., residuals: _Optional[_Iterable[_Union[ResidualCandidate, _Mapping]]] = ..., guarantee_physical: bool = ..., notes: _Optional[_Iterable[_Union[JobNote, _Mapping]]] = ..., lineage_physical_status: _Optional[str] = ..., lineage_physical_detail: _Optional[str] = ..., kind: _Optional[str] = ..., retention: _Optional[_Union[RetentionTarget, _Mapping]] = ...) -> None: ...

class RetentionTarget(_message.Message):
    __slots__ = ("collection", "sources", "withheld_sources")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_SOURCES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    sources: int
    withheld_sources: int
    def __init__(self, collection: _Optional[str] = ..., sources: _Optional[int] = ..., withheld_sources: _Optional[int] = ...) -> None: ...

class JobNote(_message.Message):
    __slots__ = ("code", "stage", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    stage: str
    message: str
    def __init__(self, code: _Optional[str] = ..., stage: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class ErasureEvent(_message.Message):
    __slots__ = ("job_id", "seq", "stage", "status", "message", "at")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    AT_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    seq: int
    stage: Stage
    status: JobStatus
    message: str
    at: _timestamp_pb2.Timestamp
    def __init__(self, job_id: _Optional[str] = ..., seq: _Optional[int] = ..., stage: _Optional[_Union[Stage, str]] = ..., status: _Optional[_Union[JobStatus, str]] = ..., message: _Optional[str] = ..., at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class LogEntry(_message.Message):
    __slots__ = ("seq", "kind", "job_id", "subject_hash", "body", "prev_hash", "entry_hash", "created_at", "hash_version")
    SEQ_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    SUBJECT_HASH_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    PREV_HASH_FIELD_NUMBER: _ClassVar[int]
    ENTRY_HASH_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    HASH_VERSION_FIELD_NUMBER: _ClassVar[int]
    seq: int
    kind: str
    job_id: str
    subject_hash: str
    body: str
    prev_hash: str
    entry_hash: str
    created_at: _timestamp_pb2.Timestamp
    hash_version: int
    def __init__(self, seq: _Optional[int] = ..., kind: _Optional[str] = ..., job_id: _Optional[str] = ..., subject_hash: _Optional[str] = ..., body: _Optional[str] = ..., prev_hash: _Optional[str] = ..., entry_hash: _Optional[str] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., hash_version: _Optional[int] = ...) -> None: ...

class SignedLogHead(_message.Message):
    __slots__ = ("size", "head_hash", "signed_at", "key_id", "statement", "signature")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    HEAD_HASH_FIELD_NUMBER: _ClassVar[int]
    SIGNED_AT_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    STATEMENT_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    size: int
    head_hash: str
    signed_at: _timestamp_pb2.Timestamp
    key_id: str
    statement: str
    signature: str
    def __init__(self, size: _Optional[int] = ..., head_hash: _Optional[str] = ..., signed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., key_id: _Optional[str] = ..., statement: _Optional[str] = ..., signature: _Optional[str] = ...) -> None: ...

class Certificate(_message.Message):
    __slots__ = ("job_id", "body", "signature", "public_key", "algorithm", "key_id")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    BODY_FIELD_NUMBER: _ClassVar[int]
    SIGNATURE_FIELD_NUMBER: _ClassVar[int]
    PUBLIC_KEY_FIELD_NUMBER: _ClassVar[int]
    ALGORITHM_FIELD_NUMBER: _ClassVar[int]
    KEY_ID_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    body: str
    signature: str
    public_key: str
    algorithm: str
    key_id: str
    def __init__(self, job_id: _Optional[str] = ..., body: _Optional[str] = ..., signature: _Optional[str] = ..., public_key: _Optional[str] = ..., algorithm: _Optional[str] = ..., key_id: _Optional[str] = ...) -> None: ...

class ResidualEvidence(_message.Message):
    __slots__ = ("kind", "detail", "matched", "score")
    KIND_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    kind: str
    detail: str
    matched: str
    score: float
    def __init__(self, kind: _Optional[str] = ..., detail: _Optional[str] = ..., matched: _Optional[str] = ..., score: _Optional[float] = ...) -> None: ...

class ResidualCandidate(_message.Message):
    __slots__ = ("collection", "point_id", "source_id", "score", "evidence", "action")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    POINT_ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_ID_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    collection: str
    point_id: str
    source_id: str
    score: float
    evidence: _containers.RepeatedCompositeFieldContainer[ResidualEvidence]
    action: str
    def __init__(self, collection: _Optional[str] = ..., point_id: _Optional[str] = ..., source_id: _Optional[str] = ..., score: _Optional[float] = ..., evidence: _Optional[_Iterable[_Union[ResidualEvidence, _Mapping]]] = ..., action: _Optional[str] = ...) -> None: ...

class ReindexJob(_message.Message):
    __slots__ = ("job_id", "collection", "mode", "status", "stage", "total", "copied", "missing", "excluded", "final_count", "error", "received_at", "started_at", "completed_at", "orphans_dropped", "physical_detail")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    STAGE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    COPIED_FIELD_NUMBER: _ClassVar[int]
    MISSING_FIELD_NUMBER: _ClassVar[int]
    EXCLUDED_FIELD_NUMBER: _ClassVar[int]
    FINAL_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    RECEIVED_AT_FIELD_NUMBER: _ClassVar[int]
    STARTED_AT_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_AT_FIELD_NUMBER: _ClassVar[int]
    ORPHANS_DROPPED_FIELD_NUMBER: _ClassVar[int]
    PHYSICAL_DETAIL_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    collection: str
    mode: ReindexMode
    status: JobStatus
    stage: str
    total: int
    copied: int
    missing: int
    excluded: int
    final_count: int
    error: str
    received_at: _timestamp_pb2.Timestamp
    started_at: _timestamp_pb2.Timestamp
    completed_at: _timestamp_pb2.Timestamp
    orphans_dropped: int
    physical_detail: str
    def __init__(self, job_id: _Optional[str] = ..., collection: _Optional[str] = ..., mode: _Optional[_Union[ReindexMode, str]] = ..., status: _Optional[_Union[JobStatus, str]] = ..., stage: _Optional[str] = ..., total: _Optional[int] = ..., copied: _Optional[int] = ..., missing: _Optional[int] = ..., excluded: _Optional[int] = ..., final_count: _Optional[int] = ..., error: _Optional[str] = ..., received_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., started_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., completed_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., orphans_dropped: _Optional[int] = ..., physical_detail: _Optional[str] = ...) -> None: ...

class SourceKindRule(_message.Message):
    __slots__ = ("source_kind", "days")
    SOURCE_KIND_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    source_kind: str
    days: int
    def __init__(self, source_kind: _Optional[str] = ..., days: _Optional[int] = ...) -> None: ...

class CollectionRetention(_message.Message):
    __slots__ = ("collection", "backend", "days", "source_kinds", "supported", "last_swept_at", "next_sweep_at")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    DAYS_FIELD_NUMBER: _ClassVar[int]
    SOURCE_KINDS_FIELD_NUMBER: _ClassVar[int]
    SUPPORTED_FIELD_NUMBER: _ClassVar[int]
    LAST_SWEPT_AT_FIELD_NUMBER: _ClassVar[int]
    NEXT_SWEEP_AT_FIELD_NUMBER: _ClassVar[int]
    collection: str
    backend: Backend
    days: int
    source_kinds: _containers.RepeatedCompositeFieldContainer[SourceKindRule]
    supported: bool
    last_swept_at: _timestamp_pb2.Timestamp
    next_sweep_at: _timestamp_pb2.Timestamp
    def __init__(self, collection: _Optional[str] = ..., backend: _Optional[_Union[Backend, str]] = ..., days: _Optional[int] = ..., source_kinds: _Optional[_Iterable[_Union[SourceKindRule, _Mapping]]] = ..., supported: bool = ..., last_swept_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., next_sweep_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class RetentionSweep(_message.Message):
    __slots__ = ("collection", "sources", "chunks", "withheld_sources", "withheld_chunks", "in_flight_sources", "deferred_sources", "oldest", "job_ids", "failed_sources")
    COLLECTION_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    CHUNKS_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_SOURCES_FIELD_NUMBER: _ClassVar[int]
    WITHHELD_CHUNKS_FIELD_NUMBER: _ClassVar[int]
    IN_FLIGHT_SOURCES_FIELD_NUMBER: _ClassVar[int]
    DEFERRED_SOURCES_FIELD_NUMBER: _ClassVar[int]
    OLDEST_FIELD_NUMBER: _ClassVar[int]
    JOB_IDS_FIELD_NUMBER: _ClassVar[int]
    FAILED_SOURCES_FIELD_NUMBER: _ClassVar[int]
    collection: str
    sources: int
    chunks: int
    withheld_sources: int
    withheld_chunks: int
    in_flight_sources: int
    deferred_sources: int
    oldest: _timestamp_pb2.Timestamp
    job_ids: _containers.RepeatedScalarFieldContainer[str]
    failed_sources: int
    def __init__(self, collection: _Optional[str] = ..., sources: _Optional[int] = ..., chunks: _Optional[int] = ..., withheld_sources: _Optional[int] = ..., withheld_chunks: _Optional[int] = ..., in_flight_sources: _Optional[int] = ..., deferred_sources: _Optional[int] = ..., oldest: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., job_ids: _Optional[_Iterable[str]] = ..., failed_sources: _Optional[int] = ...) -> None: ...
