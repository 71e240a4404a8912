"""Plain data types that the client takes and returns (never protobuf messages).

Enumerations are ``str`` enums: pass either the member (``Backend.PGVECTOR``) or its
value (``"pgvector"``). Timestamps are timezone-aware ``datetime`` objects in UTC, or
``None`` when the server left them unset.
"""

from __future__ import annotations

import dataclasses
import json
import json as _json
from dataclasses import dataclass
from datetime import datetime
from enum import Enum
from typing import Any, Iterable, Mapping, Optional, Sequence, Union

__all__ = [
    "Backend",
    "Distance",
    "Screening",
    "IdentifierKind",
    "TagRole",
    "ResidualPolicy",
    "JobStatus",
    "Stage",
    "ReindexMode",
    "Identifier",
    "SubjectTag",
    "Chunk",
    "TrackedPoint",
    "Collection",
    "Subject",
    "WriteResult",
    "CollectionCount",
    "JobNote",
    "RetentionTarget",
    "ResidualEvidence",
    "ResidualCandidate",
    "ErasureJob",
    "ErasureEvent",
    "SubjectCounts",
    "LogEntry",
    "SignedLogHead",
    "DeletionLogPage",
    "LogVerification",
    "VerifiedLog",
    "Certificate",
    "ReindexJob",
    "RetentionList",
    "FieldPath",
    "AttachMapping",
    "AttachJob",
    "AttachResult",
    "IdentifierLike",
    "TagLike",
]


class _StrEnum(str, Enum):
    def __str__(self) -> str:
        return str(self.value)


class Backend(_StrEnum):
    """Where a collection's vectors live."""

    PGVECTOR = "pgvector"
    QDRANT = "qdrant"


class Distance(_StrEnum):
    COSINE = "cosine"
    DOT = "dot"
    EUCLID = "euclid"


class Screening(_StrEnum):
    """What Ingest/Track do with a chunk whose text names an erased person."""

    ACCEPT = "accept"
    REPORT = "report"
    REDACT = "redact"
    REJECT = "reject"


class IdentifierKind(_StrEnum):
    """A hint only: the server reads an identifier by its shape."""

    UNSPECIFIED = "unspecified"
    EMAIL = "email"
    NAME = "name"
    PHONE = "phone"
    HANDLE = "handle"
    ANONYMOUS_ID = "anonymous_id"
    OTHER = "other"


class TagRole(_StrEnum):
    OWNER = "owner"
    AUTHOR = "author"
    MENTIONED = "mentioned"


class ResidualPolicy(_StrEnum):
    """What an erasure does with residual candidates."""

    REPORT = "report"
    DELETE = "delete"
    REDACT = "redact"


class JobStatus(_StrEnum):
    UNSPECIFIED = "unspecified"
    QUEUED = "queued"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    REFUSED = "refused"

    @property
    def terminal(self) -> bool:
        """Whether a job in this status has ended (completed, failed or refused)."""
        return self in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.REFUSED)


class Stage(_StrEnum):
    """The stages of an erasure job, in order."""

    UNSPECIFIED = "unspecified"
    FREEZE = "freeze"
    PLAN = "plan"
    DELETE = "delete"
    VERIFY = "verify"
    RESIDUAL = "residual"
    FORGET_LINEAGE = "forget_lineage"
    PHYSICAL = "physical"
    LOG = "log"
    DONE = "done"


class ReindexMode(_StrEnum):
    COPY = "copy"
    REEMBED = "reembed"


# ---------------------------------------------------------------------------- inputs


@dataclass
class Identifier:
    """One way of naming a person. ``kind`` is a hint; a plain ``str`` works too."""

    value: str
    kind: Union[IdentifierKind, str] = IdentifierKind.UNSPECIFIED


@dataclass
class SubjectTag:
    """A chunk's link to a subject. A plain ``str`` subject id means ``mentioned``."""

    subject_id: str
    role: Union[TagRole, str] = TagRole.MENTIONED


IdentifierLike = Union[str, Identifier]
TagLike = Union[str, SubjectTag]


@dataclass
class Chunk:
    """A text chunk for :meth:`lethe.Lethe.ingest`; Lethe embeds it."""

    source_id: str
    text: str
    tags: Sequence[TagLike] = ()
    source_uri: str = ""
    source_kind: str = ""
    point_id: str = ""
    ordinal: int = 0


@dataclass
class TrackedPoint:
    """A vector the pipeline wrote itself, for :meth:`lethe.Lethe.track`.

    Give ``vector`` to have Lethe write the point (with the tags in its payload).
    """

    point_id: str
    source_id: str
    tags: Sequence[TagLike] = ()
    text: str = ""
    source_uri: str = ""
    source_kind: str = ""
    vector: Sequence[float] = ()


@dataclass
class FieldPath:
    """A place in an attached store's point: a pgvector ``column`` (empty for Qdrant),
    ``path`` keys inside that column's JSON or the Qdrant payload, and
    ``json_text_path`` keys inside a JSON document stored as a string there
    (LlamaIndex's ``_node_content``)."""

    column: str = ""
    path: Sequence[str] = ()
    json_text_path: Sequence[str] = ()


@dataclass
class AttachMapping:
    """Where an attached store keeps what erasure needs (:meth:`lethe.Lethe.attach`).

    Without a preset, ``tags`` is required (and, for pgvector, ``id`` and ``vector``);
    with one, the fields given here replace the preset's. Fields are a
    :class:`FieldPath` or a mapping of its fields.

    ``timestamp`` is where the time a point was written is (a timestamp or date
    column, or RFC 3339 / ISO 8601 text or seconds since the epoch): retention
    measures a source's age from its oldest point's, and refuses an attached
    collection without one."""

    id: str = ""
    vector: str = ""
    text: Optional[FieldPath] = None
    source: Optional[FieldPath] = None
    tags: Optional[FieldPath] = None
    scope: Optional[FieldPath] = None
    scope_value: str = ""
    timestamp: Optional[FieldPath] = None


# --------------------------------------------------------------------------- outputs


@dataclass(frozen=True)
class Collection:
    name: str
    backend: Optional[Backend]
    backend_name: str
    dimension: int
    distance: Distance
    embedding_model: str
    store_text: bool
    retention_days: int
    screening: Optional[Screening]
    created_at: Optional[datetime]
    #: attached collections (:meth:`lethe.Lethe.attach`): the mapping as JSON; else empty
    mapping_json: str = ""

    @property
    def attached(self) -> bool:
        """Whether the collection is a store Lethe attached rather than created."""
        return bool(self.mapping_json)

    def mapping(self) -> Optional[dict[str, Any]]:
        """An attached collection's mapping, parsed (JSON); ``None`` for Lethe's own."""
        if not self.mapping_json:
            return None
        parsed: dict[str, Any] = json.loads(self.mapping_json)
        return parsed


@dataclass(frozen=True)
class Subject:
    id: str
    #: active, pending_erasure, erased or suppressed
    state: str
    legal_hold: bool
    identifier_count: int


@dataclass(frozen=True)
class WriteResult:
    """What Ingest or Track did."""

    accepted: int
    suppressed: int
    point_ids: list[str]
    suppressed_deleted: int
    screened: int


@dataclass(frozen=True)
class DeleteResult:
    """What DeletePoints did."""

    #: points Lethe deleted from the backend (collections Lethe created)
    deleted: int
    #: chunks removed from lineage
    forgotten: int
    #: attached collections: points still in the store (their lineage kept)
    kept: int
    #: points kept with their lineage because it tags a subject on legal hold
    held: int


@dataclass(frozen=True)
class ExportRecord:
    """One record of an access export (:meth:`lethe.Lethe.export_subject`): the part it
    belongs to (``subject``, ``collections``, ``chunks``, ``sources``, ``jobs``, ``log``,
    then one ``manifest``) and one JSON document."""

    part: str
    #: the JSON document as sent (the manifest's SHA-256 covers these texts, each followed by a newline)
    json: str

    def data(self) -> Any:
        """The document, parsed."""
        return _json.loads(self.json)


@dataclass(frozen=True)
class CollectionCount:
    """Counts for one collection: ``before_*`` from the plan stage, ``after_*`` from verify."""

    collection: str
    backend: Optional[Backend]
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
    #: points of the subject left in place (counted in ``after_total``) because they
    #: are shared with subjects under legal hold
    withheld: int = 0
    #: residual candidates reported but neither deleted nor redacted because of a
    #: legal hold (action ``withheld_legal_hold``)
    residual_withheld: int = 0


@dataclass(frozen=True)
class JobNote:
    """What an erasure's certificate says beyond its counts (never plaintext of the
    person): candidates capped, identifiers too common, data withheld under legal
    hold, physical erasure pending."""

    #: stable: ``residual_candidates_capped``, ``residual_identifier_too_common``,
    #: ``legal_hold_withheld``, ``legal_hold``, ``lineage_physical_pending``, …
    code: str
    #: the stage that wrote it (``freeze``, ``delete``, ``verify``, ``residual``, …)
    stage: str
    message: str


@dataclass(frozen=True)
class RetentionTarget:
    """What a retention job erases: sources of one collection."""

    collection: str
    #: sources the sweep gave the job
    sources: int
    #: of those, sources kept whole because a chunk of theirs is tagged with a
    #: subject under legal hold (their points are counted in ``withheld``)
    withheld_sources: int


@dataclass(frozen=True)
class ResidualEvidence:
    kind: str
    detail: str
    matched: str
    score: float


@dataclass(frozen=True)
class ResidualCandidate:
    collection: str
    point_id: str
    source_id: str
    score: float
    evidence: list[ResidualEvidence]
    #: reported, deleted, redacted (or empty for SearchResiduals)
    action: str


@dataclass(frozen=True)
class ErasureJob:
    job_id: str
    #: empty once the subject is erased
    subject_id: str
    subject_hash: str
    status: JobStatus
    stage: Stage
    requested_by: str
    reason: str
    residual_policy: Optional[ResidualPolicy]
    received_at: Optional[datetime]
    started_at: Optional[datetime]
    completed_at: Optional[datetime]
    deadline: Optional[datetime]
    overdue: bool
    counts: list[CollectionCount]
    error: str
    attempts: int
    residuals: list[ResidualCandidate]
    guarantee_physical: bool
    #: what the certificate says beyond the counts (the same notes are in the log
    #: entry and the certificate)
    notes: list[JobNote] = dataclasses.field(default_factory=list)
    #: physical erasure in Lethe's own tables (lineage texts, identifiers, probes):
    #: ``confirmed``, ``pending`` (with the reason in the detail) or ``not_requested``
    lineage_physical_status: str = ""
    lineage_physical_detail: str = ""
    #: ``subject`` (:meth:`lethe.Lethe.erase`) or ``retention`` (a retention sweep's:
    #: no subject; see ``retention``)
    kind: str = ""
    #: a retention job's target; None for a subject's erasure
    retention: Optional[RetentionTarget] = None

    @property
    def done(self) -> bool:
        """Whether the job has ended (completed, failed or refused)."""
        return self.status.terminal

    @property
    def deleted(self) -> int:
        """Vectors deleted over every collection."""
        return sum(c.deleted for c in self.counts)

    @property
    def remaining(self) -> int:
        """Vectors still matching after the verify stage, over every collection."""
        return sum(c.after_total for c in self.counts)


@dataclass(frozen=True)
class ErasureEvent:
    job_id: str
    seq: int
    stage: Stage
    status: JobStatus
    message: str
    at: Optional[datetime]


@dataclass(frozen=True)
class SubjectCounts:
    """Live counts of a subject's vectors (CountSubject)."""

    #: active, pending_erasure, erased or unknown
    subject_state: str
    counts: list[CollectionCount]

    @property
    def total(self) -> int:
        return sum(c.before_total for c in self.counts)


@dataclass(frozen=True)
class LogEntry:
    seq: int
    kind: str
    job_id: str
    subject_hash: str
    body: str
    prev_hash: str
    entry_hash: str
    created_at: Optional[datetime]
    hash_version: int

    def claims(self) -> dict[str, Any]:
        """The entry's body, parsed (JSON)."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass(frozen=True)
class SignedLogHead:
    """The service's Ed25519 signature over "the log has ``size`` entries ending in
    ``head_hash``"; check it with :func:`lethe.verify_log_head`, keep it, and pin it in
    :meth:`lethe.Lethe.verify_deletion_log`."""

    size: int
    head_hash: str
    statement: str
    #: base64
    signature: str
    key_id: str = ""
    signed_at: Optional[datetime] = None


@dataclass(frozen=True)
class DeletionLogPage:
    entries: list[LogEntry]
    head: Optional[SignedLogHead]


@dataclass(frozen=True)
class LogVerification:
    valid: bool
    entries_checked: int
    #: the first entry whose hash or link does not verify, 0 when valid
    first_bad_seq: int
    problem: str
    head_hash: str
    head: Optional[SignedLogHead]


@dataclass(frozen=True)
class VerifiedLog:
    """What :func:`lethe.verify_log` checked offline, against the pinned key only: the
    entries form an unbroken hash chain from entry 1 that ends exactly at ``head``."""

    #: how many entries were recomputed (the head's size)
    entries_checked: int
    #: the last entry's hash (the head's), ``""`` for an empty log without a head
    head_hash: str
    #: the tenant the signed head names (every version 2 hash covers it)
    tenant_id: str
    #: the verified head (``None`` only for an empty log without one)
    head: Optional[SignedLogHead]
    #: the head's signed statement, parsed (empty without a head)
    statement: dict[str, Any]
    #: the bodies of the certificates checked, parsed, in the order given
    certificates: list[dict[str, Any]]


@dataclass(frozen=True)
class Certificate:
    """A signed erasure certificate. Verify it offline with
    :func:`lethe.verify_certificate` against the key you pinned."""

    job_id: str
    #: canonical JSON; the signature covers its UTF-8 bytes
    body: str
    #: base64
    signature: str
    #: the key the certificate carries (base64): informative only, never trusted
    public_key: str
    algorithm: str
    key_id: str

    def claims(self) -> dict[str, Any]:
        """The body, parsed (JSON). Verify first: this does not check anything."""
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def to_json(self) -> str:
        """The certificate as ``lethe verify-certificate`` reads it."""
        return json.dumps(
            {
                "job_id": self.job_id,
                "body": self.body,
                "signature": self.signature,
                "public_key": self.public_key,
                "algorithm": self.algorithm,
                "key_id": self.key_id,
            }
        )

    @classmethod
    def from_json(cls, text: Union[str, bytes, Mapping[str, Any]]) -> "Certificate":
        """Reads a certificate saved with :meth:`to_json` (or any JSON object with
        ``body`` and ``signature``).

        Raises:
            ValueError: not JSON, not an object, or without a text ``body`` and ``signature``.
        """
        data = text if isinstance(text, Mapping) else json.loads(text)  # JSONDecodeError is a ValueError
        if not isinstance(data, Mapping):
            raise ValueError(f"a certificate is a JSON object, not {type(data).__name__}")
        for field in ("body", "signature"):
            if not isinstance(data.get(field), str):
                raise ValueError(f"a certificate has a text {field!r}")
        return cls(
            job_id=str(data.get("job_id", "")),
            body=data["body"],
            signature=data["signature"],
            public_key=str(data.get("public_key", "")),
            algorithm=str(data.get("algorithm", "")),
            key_id=str(data.get("key_id", "")),
        )


@dataclass(frozen=True)
class ReindexJob:
    job_id: str
    collection: str
    mode: ReindexMode
    status: JobStatus
    #: prepare, copy, switch, drop or done
    stage: str
    total: int
    copied: int
    missing: int
    excluded: int
    final_count: int
    error: str
    received_at: Optional[datetime]
    started_at: Optional[datetime]
    completed_at: Optional[datetime]
    #: generations of the collection readers did not see (left by an interrupted
    #: re-index, or this one's old generation when its switch was cut off after
    #: promoting) that the drop stage found and dropped
    orphans_dropped: int = 0
    #: what the new generation holds of the points its switch left out (copied before
    #: their person was erased, or deleted since): rewritten on pgvector, soft-deleted
    #: copies on Qdrant; empty when nothing was left out
    physical_detail: str = ""

    @property
    def done(self) -> bool:
        return self.status.terminal


@dataclass(frozen=True)
class AttachJob:
    """The adoption job of an attached collection: a scan that builds lineage from
    the mapping, then rescans that learn the points written since."""

    collection: str
    #: queued, in_progress, completed (lineage built; rescans follow) or failed
    status: str
    #: points in the store when the scan started
    total: int
    scanned: int
    #: points recorded with at least one subject tag
    tracked: int
    #: points without a subject tag (recorded, linked to no one)
    untagged: int
    #: points deleted because their tag names a person already erased
    suppressed: int
    subjects: int
    rescans: int
    error: str
    received_at: Optional[datetime]
    completed_at: Optional[datetime]

    @property
    def done(self) -> bool:
        """Whether the scan has ended (completed or failed; rescans may follow)."""
        return self.status in ("completed", "failed")


@dataclass(frozen=True)
class AttachResult:
    """What :meth:`lethe.Lethe.attach` did."""

    collection: Collection
    job: Optional[AttachJob]
    #: what an operator should act on, each with the exact statement or payload index
    warnings: list[str]
    #: indexes created because ``create_indexes`` was set
    indexes_created: list[str]
    #: the store was attached with this mapping before: nothing new was done
    already_attached: bool


@dataclass(frozen=True)
class ReconcileCollection:
    """What a reconcile run did in one collection; counts are of points, from the
    backend. ``found_by_*`` count how points were recognised (a point may be found
    several ways)."""

    collection: str
    backend: Optional[Backend]
    #: points read back from the store (0 when there is no erased subject to look for)
    scanned: int
    found_by_tag: int
    found_by_lineage: int
    found_by_ledger: int
    #: points of erased subjects that came back (counted before the deletion)
    before: int
    deleted: int
    #: counted after the deletion; 0 when done
    after: int
    #: lineage chunks forgotten (restored tags, lineage of the deleted points)
    lineage_forgotten: int
    #: points left in place because they are shared with a subject under legal hold
    withheld: int
    #: the collection's ``reconcile`` entry in the deletion log (0 until done)
    log_seq: int
    done: bool


@dataclass(frozen=True)
class ReconcileRun:
    """A reconcile run: what a restore brought back, deleted again, per collection."""

    run_id: str
    status: JobStatus
    #: ``manual`` or ``schedule``
    trigger: str
    requested_by: str
    collections: list[ReconcileCollection]
    came_back: int
    lineage_forgotten: int
    #: keyed hashes (hex) of erased subjects under legal hold now: not reconciled
    held_subject_hashes: list[str]
    subjects_scrubbed: int
    error: str
    attempts: int
    received_at: Optional[datetime]
    started_at: Optional[datetime]
    completed_at: Optional[datetime]
    #: :meth:`lethe.Lethe.reconcile` returned a run already queued or running
    already_running: bool

    @property
    def done(self) -> bool:
        return self.status.terminal


@dataclass(frozen=True)
class LedgerImport:
    """What :meth:`lethe.Lethe.import_ledger` did."""

    subjects: int
    #: tombstones made for subjects the database did not know
    tombstones_created: int
    #: subjects a restore had brought back, tombstones again
    subjects_re_erased: int
    subjects_known: int
    #: keyed hashes (hex) of subjects under legal hold now, left as they are
    held_subject_hashes: list[str]
    points: int
    points_added: int
    #: the ``ledger_import`` log entry; 0 when nothing changed
    log_seq: int


@dataclass(frozen=True)
class SourceKindRule:
    """A retention rule for the sources of one kind; ``days == 0`` keeps them for ever."""

    source_kind: str
    days: int


@dataclass(frozen=True)
class CollectionRetention:
    """A collection's retention rules (``days == 0``: off) and its sweeps."""

    collection: str
    backend: Optional[Backend]
    days: int
    source_kinds: list[SourceKindRule]
    #: False for an attached collection without a ``timestamp`` in its mapping
    supported: bool
    last_swept_at: Optional[datetime]
    #: when this server's scheduler sweeps it next; None without a rule
    next_sweep_at: Optional[datetime]


class RetentionList(list[CollectionRetention]):
    """What :meth:`lethe.Lethe.list_retention` returns: every collection's
    :class:`CollectionRetention` (a list), and whether this server sweeps on its own."""

    #: whether the server that answered runs the retention scheduler
    scheduler_enabled: bool
    #: seconds between the scheduler's sweeps
    interval_secs: int

    def __init__(
        self, collections: Iterable[CollectionRetention] = (), *, scheduler_enabled: bool = False, interval_secs: int = 0
    ) -> None:
        super().__init__(collections)
        self.scheduler_enabled = scheduler_enabled
        self.interval_secs = interval_secs

    def __repr__(self) -> str:
        return (
            f"RetentionList({list.__repr__(self)}, scheduler_enabled={self.scheduler_enabled!r}, "
            f"interval_secs={self.interval_secs!r})"
        )


@dataclass(frozen=True)
class RetentionSweep:
    """What a sweep of one collection would erase (preview) or queued (sweep), from lineage."""

    collection: str
    sources: int
    chunks: int
    #: kept because a chunk of theirs is tagged with a subject under legal hold
    withheld_sources: int
    withheld_chunks: int
    #: already in a queued or running retention job
    in_flight_sources: int
    #: past their rule beyond one sweep's limit: the next sweep's
    deferred_sources: int
    oldest: Optional[datetime]
    #: the retention jobs queued (follow them with :meth:`lethe.Lethe.wait_for_erasure`)
    job_ids: list[str]
    #: their retention job failed recently: queued again after ``retention.retry_failed_after_secs``
    failed_sources: int
