"""Exceptions, one per ``google.rpc.ErrorInfo`` reason the service sends.

Every error the client raises for a server response is a :class:`LetheError` with
``.reason`` (the ErrorInfo reason, e.g. ``"legal_hold"``), ``.code`` (the
``grpc.StatusCode``) and ``.metadata`` (the ErrorInfo metadata). A reason this
version of the client does not know still raises :class:`LetheError` itself, so
``except LetheError`` catches everything and ``err.reason`` tells them apart.

>>> try:
...     client.erase("ann", requested_by="dpo@acme.example")
... except ErasureInProgress as e:
...     client.wait_for_erasure(e.job_id)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Iterable, Mapping, Optional

import grpc
from google.rpc import error_details_pb2, status_pb2

from .types import SignedLogHead

__all__ = [
    "LetheError",
    "InvalidApiKey",
    "PermissionDenied",
    "RequiresSecretKey",
    "RequiresAuditorOrSecretKey",
    "RequiresSecretOrPublishableKey",
    "InvalidArgument",
    "FieldViolation",
    "NotFound",
    "AlreadyExists",
    "LegalHold",
    "SubjectSuppressed",
    "ErasureInProgress",
    "IdempotencyKeyReused",
    "PointNotFound",
    "PointTenantMismatch",
    "BackendNotConfigured",
    "Unavailable",
    "DeadlineExceeded",
    "InternalError",
    "InvalidSignature",
    "InvalidLog",
    "from_rpc_error",
]

DOMAIN = "lethe.dev"
_DETAILS_KEY = "grpc-status-details-bin"


class LetheError(Exception):
    """Base class of every error this package raises about the service or its documents.

    Attributes:
        reason: the ``google.rpc.ErrorInfo`` reason (``"not_found"``, …); for errors
            without ErrorInfo, the gRPC code in lower case (``"unavailable"``).
        code: the ``grpc.StatusCode``, or ``None`` for errors raised offline
            (:class:`InvalidSignature`).
        message: the server's message (it starts with the reason).
        metadata: the ErrorInfo metadata (``job_id``, …), empty when none.
    """

    #: the reason this class stands for (empty for the base class)
    REASON: ClassVar[str] = ""

    def __init__(
        self,
        message: str,
        *,
        reason: Optional[str] = None,
        code: Optional[grpc.StatusCode] = None,
        metadata: Optional[Mapping[str, str]] = None,
        domain: str = DOMAIN,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.reason: str = reason if reason is not None else self.REASON
        self.code = code
        self.metadata: dict[str, str] = dict(metadata or {})
        self.domain = domain

    def __repr__(self) -> str:
        code = self.code.name if self.code is not None else None
        return f"{type(self).__name__}(reason={self.reason!r}, code={code}, message={self.message!r})"


class InvalidApiKey(LetheError):
    """UNAUTHENTICATED: missing, unknown or revoked API key."""

    REASON = "invalid_api_key"


class PermissionDenied(LetheError):
    """PERMISSION_DENIED: the key is of the wrong kind for this rpc."""


class RequiresSecretKey(PermissionDenied):
    """The rpc needs an ``sk_`` key (e.g. Erase with a publishable key)."""

    REASON = "requires_secret_key"


class RequiresAuditorOrSecretKey(PermissionDenied):
    """The rpc needs an ``ak_`` or ``sk_`` key (e.g. GetErasure with a publishable key)."""

    REASON = "requires_auditor_or_secret_key"


class RequiresSecretOrPublishableKey(PermissionDenied):
    """The rpc writes (Ingest, Track, DeletePoints, PutSubject): an ``sk_`` or ``pk_`` key."""

    REASON = "requires_secret_or_publishable_key"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class InvalidArgument(LetheError):
    """INVALID_ARGUMENT; ``.field`` names the offending field (from ``google.rpc.BadRequest``)."""

    REASON = "invalid_argument"

    def __init__(self, message: str, *, violations: Iterable[FieldViolation] = (), **kw: Any) -> None:
        super().__init__(message, **kw)
        self.violations: list[FieldViolation] = list(violations)

    @property
    def field(self) -> str:
        """The first offending field (``"requested_by"``, ``"chunks[0].text"``, …), or ``""``."""
        return self.violations[0].field if self.violations else ""

    @property
    def description(self) -> str:
        return self.violations[0].description if self.violations else ""


class NotFound(LetheError):
    REASON = "not_found"


class AlreadyExists(LetheError):
    """E.g. a collection registered again with different settings."""

    REASON = "already_exists"


class LegalHold(LetheError):
    """The subject is under legal hold: the erasure was refused, and the refusal logged.

    Attributes:
        job_id: the refused job.
        log_head: the signed log head that covers the refusal (keep it; check it with
            :func:`lethe.verify_log_head` and pin it in ``verify_deletion_log``).
    """

    REASON = "legal_hold"

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.job_id: str = self.metadata.get("job_id", "")
        self.log_head: Optional[SignedLogHead] = _head_from_metadata(self.metadata)


class SubjectSuppressed(LetheError):
    """The subject (or a person its identifiers name) is being or has been erased."""

    REASON = "subject_suppressed"


class ErasureInProgress(LetheError):
    """The subject already has a queued or running erasure, ``.job_id``: watch it."""

    REASON = "erasure_in_progress"

    def __init__(self, message: str, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.job_id: str = self.metadata.get("job_id", "")


class IdempotencyKeyReused(LetheError):
    """The idempotency key was first used with a different request."""

    REASON = "idempotency_key_reused"


class PointNotFound(LetheError):
    """``track(verify_points=True)``: a point is missing from the backend."""

    REASON = "point_not_found"


class PointTenantMismatch(LetheError):
    """``track(verify_points=True)``: a point's payload names another tenant."""

    REASON = "point_tenant_mismatch"


class BackendNotConfigured(LetheError):
    """The collection's backend (e.g. Qdrant) is not configured on the server."""

    REASON = "backend_not_configured"


class Unavailable(LetheError):
    """The service or one of its backends is unavailable. Retried by default."""

    REASON = "unavailable"


class DeadlineExceeded(LetheError):
    """The call's timeout ran out: the client's (``timeout=``; code
    ``DEADLINE_EXCEEDED``), or the server's own request limit
    (``application.limits.request_timeout_secs``), which the server's gRPC library
    answers with code ``CANCELLED`` and the message ``Timeout expired``: that one is
    raised as this class too (``.code`` stays ``CANCELLED``, ``.reason`` is
    ``"deadline_exceeded"``). A call cancelled on the client side is not a timeout: it
    stays a :class:`LetheError` with reason ``"cancelled"``."""

    REASON = "deadline_exceeded"


class InternalError(LetheError):
    """An internal server error (the server never sends its cause)."""

    REASON = "internal"


class InvalidSignature(LetheError):
    """Raised offline by :func:`lethe.verify_certificate` / :func:`lethe.verify_log_head`:
    the document was not signed by any pinned key, or its parts disagree
    (:func:`lethe.verify_log` raises its subclass :class:`InvalidLog`)."""

    REASON = "invalid_signature"


class InvalidLog(InvalidSignature):
    """Raised offline by :func:`lethe.verify_log`: the deletion log's entries do not form
    an unbroken hash chain ending at a head signed by a pinned key, or a certificate's
    entry is not in it. An :class:`InvalidSignature` (``except InvalidSignature`` catches
    it) with the fields of the server's ``LogVerification``.

    Attributes:
        first_bad_seq: the first entry that does not verify (the head's or the pin's
            size when that head itself does not; 0 for a certificate that does not
            verify or whose entry is not in the chain, and for another tenant's head).
        problem: what is wrong, as the server's ``VerifyDeletionLog`` words it where it
            makes the same check (``"entry content does not match its hash"``, …).
    """

    REASON = "invalid_log"

    def __init__(self, first_bad_seq: int, problem: str) -> None:
        where = f" at entry {first_bad_seq}" if first_bad_seq > 0 else ""
        super().__init__(f"the deletion log does not verify{where}: {problem}")
        self.first_bad_seq = first_bad_seq
        self.problem = problem

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.first_bad_seq, self.problem))


_BY_REASON: dict[str, type[LetheError]] = {
    cls.REASON: cls
    for cls in (
        InvalidApiKey,
        RequiresSecretKey,
        RequiresAuditorOrSecretKey,
        RequiresSecretOrPublishableKey,
        InvalidArgument,
        NotFound,
        AlreadyExists,
        LegalHold,
        SubjectSuppressed,
        ErasureInProgress,
        IdempotencyKeyReused,
        PointNotFound,
        PointTenantMismatch,
        BackendNotConfigured,
        Unavailable,
        DeadlineExceeded,
    )
}

# Errors without ErrorInfo (transport, client-side deadline, a proxy's or an auth
# gateway's): by code, to the class of the code (its ``reason`` is then the code's name
# in lower case, e.g. ``"permission_denied"``).
_BY_CODE: dict[grpc.StatusCode, type[LetheError]] = {
    grpc.StatusCode.UNAUTHENTICATED: InvalidApiKey,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.INTERNAL: InternalError,
}

MetadataLike = Optional[Iterable[Any]]  # (key, value) pairs, sync or grpc.aio

#: What the server's gRPC library (tonic) says when its request timeout
#: (``Server::timeout``, Lethe's ``application.limits.request_timeout_secs``) ends a call:
#: ``Status::cancelled(TimeoutExpired.to_string())``, code CANCELLED. gRPC's own
#: client-side cancellation says "Locally cancelled by application!" instead.
_SERVER_TIMEOUT_MESSAGE = "Timeout expired"


def _is_server_timeout(code: grpc.StatusCode, message: str) -> bool:
    """A CANCELLED status that is the server's request timeout, not a cancellation."""
    return code == grpc.StatusCode.CANCELLED and message.strip() == _SERVER_TIMEOUT_MESSAGE


def _status_details(trailing: MetadataLike) -> Optional[status_pb2.Status]:
    for item in trailing or ():
        key, value = item[0], item[1]
        if key == _DETAILS_KEY and isinstance(value, bytes):
            status = status_pb2.Status()
            try:
                status.ParseFromString(value)
            except Exception:  # a malformed trailer must not hide the error itself
                return None
            return status
    return None


def from_status(
    code: grpc.StatusCode,
    message: str,
    trailing: MetadataLike = None,
) -> LetheError:
    """Builds the exception for a gRPC status (code, message, trailing metadata)."""
    info: Optional[error_details_pb2.ErrorInfo] = None
    violations: list[FieldViolation] = []
    status = _status_details(trailing)
    if status is not None:
        for any_ in status.details:
            if any_.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                any_.Unpack(info)
            elif any_.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                any_.Unpack(bad)
                violations.extend(FieldViolation(v.field, v.description) for v in bad.field_violations)
    kw: dict[str, Any] = {"code": code}
    if info is not None:
        cls = _BY_REASON.get(info.reason, LetheError) if info.domain in ("", DOMAIN) else LetheError
        kw.update(reason=info.reason, metadata=dict(info.metadata), domain=info.domain)
    elif _is_server_timeout(code, message):
        cls = DeadlineExceeded
        kw.update(reason=DeadlineExceeded.REASON, domain="")
    else:
        cls = _BY_CODE.get(code, LetheError)
        kw.update(reason=code.name.lower(), domain="")
    if issubclass(cls, InvalidArgument):
        return cls(message, violations=violations, **kw)
    return cls(message, **kw)


def from_rpc_error(err: grpc.RpcError) -> LetheError:
    """Maps a ``grpc.RpcError`` (sync or ``grpc.aio``) to its :class:`LetheError`."""
    code = err.code() if hasattr(err, "code") else grpc.StatusCode.UNKNOWN
    details = err.details() if hasattr(err, "details") else str(err)
    trailing = err.trailing_metadata() if hasattr(err, "trailing_metadata") else None
    mapped = from_status(code or grpc.StatusCode.UNKNOWN, details or "", trailing)
    mapped.__cause__ = err
    return mapped


def _head_from_metadata(md: Mapping[str, str]) -> Optional[SignedLogHead]:
    statement = md.get("log_head_statement")
    if not statement:
        return None
    from ._convert import head_from_statement  # local: _convert imports this module

    return head_from_statement(
        size=int(md.get("log_size", "0") or 0),
        head_hash=md.get("log_head_hash", ""),
        statement=statement,
        signature=md.get("log_head_signature", ""),
    )

