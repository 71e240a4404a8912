"""Offline checks of certificates, signed log heads and the deletion log's hash chain
(Ed25519, RFC 8032; SHA-256).

Always verify against the service's public key that you pinned (``lethe signing-key``
prints it), never against the key a document carries: anyone can make a key pair and
sign a body with it. Give several pins (the current key and retired ones) as a list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping, Optional, Union

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ._convert import parse_time
from .errors import InvalidLog, InvalidSignature
from .types import Certificate, LogEntry, SignedLogHead, VerifiedLog

__all__ = ["verify_certificate", "verify_log_head", "verify_log", "log_entry_hash", "key_id", "PublicKeyLike"]

PublicKeyLike = Union[str, bytes, Ed25519PublicKey]
PinsLike = Union[PublicKeyLike, Iterable[PublicKeyLike]]
#: a :class:`lethe.LogEntry`, or a mapping of its fields (``dataclasses.asdict(entry)``,
#: ``created_at`` a ``datetime`` or RFC 3339 text)
EntryLike = Union[LogEntry, Mapping[str, Any]]
HeadLike = Union[SignedLogHead, Mapping[str, Any]]
CertificateLike = Union[Certificate, Mapping[str, Any], str, bytes]
CertificatesLike = Union[CertificateLike, Iterable[CertificateLike]]

LOG_HEAD_DOMAIN = "lethe.dev/deletion-log/v1"
#: the first line of what a version 2 entry hash covers
LOG_ENTRY_DOMAIN = "lethe-log/2"
#: the hash versions this verifier knows (1: before version 2; 2: every entry since)
HASH_VERSIONS = (1, 2)
#: the first entry's ``prev_hash``: 32 zero bytes
GENESIS_HASH = "0" * 64


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _public_key(v: PublicKeyLike) -> Ed25519PublicKey:
    if isinstance(v, Ed25519PublicKey):
        return v
    if isinstance(v, str):
        try:
            raw = base64.b64decode(v.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"not a base64 Ed25519 public key: {v!r}") from None
    elif isinstance(v, (bytes, bytearray)):
        raw = bytes(v)
    else:
        raise TypeError(f"a public key is base64 str, 32 raw bytes or Ed25519PublicKey, not {type(v).__name__}")
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key has 32 bytes, not {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def _pins(public_key: PinsLike) -> list[Ed25519PublicKey]:
    if isinstance(public_key, (str, bytes, bytearray, Ed25519PublicKey)):
        pins = [_public_key(public_key)]
    else:
        pins = [_public_key(k) for k in public_key]
    if not pins:
        raise ValueError("no pinned public key: give the service's key (`lethe signing-key`)")
    return pins


def key_id(public_key: PublicKeyLike) -> str:
    """A key's id as the service names it: 16 hex digits of SHA-256 of the raw key."""
    return hashlib.sha256(_raw(_public_key(public_key))).hexdigest()[:16]


def _signed_by(pins: list[Ed25519PublicKey], message: str, signature_b64: str) -> Ed25519PublicKey:
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidSignature("the signature is not base64") from None
    data = message.encode("utf-8")
    for pin in pins:
        try:
            pin.verify(signature, data)
        except _CryptoInvalidSignature:
            continue
        return pin
    raise InvalidSignature("the signature is not by any pinned key (or the signed text was changed)")


def _json_object(text: str, what: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        raise InvalidSignature(f"the {what} is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidSignature(f"the {what} is not a JSON object")
    return value


def verify_certificate(
    certificate: Union[Certificate, Mapping[str, Any], str, bytes], public_key: PinsLike
) -> dict[str, Any]:
    """Checks an erasure certificate offline; returns its body (parsed) when valid.

    Args:
        certificate: a :class:`lethe.Certificate`, or its JSON (``Certificate.to_json()``,
            or any object with ``body`` and ``signature``) as text or a dict.
        public_key: the service's pinned key (base64 as ``lethe signing-key`` prints it,
            32 raw bytes, or an ``Ed25519PublicKey``), or a list of them (retired keys).
            The certificate's own ``public_key`` is never used.

    Raises:
        lethe.InvalidSignature: the body was not signed by a pinned key (tampered with,
            or signed by another key), is not a certificate (no ``certificate_version``
            or ``job_id``: another statement the same key signs, as a log head), or
            the certificate's parts disagree with the body (``job_id``, ``key_id``).
    """
    cert = certificate if isinstance(certificate, Certificate) else Certificate.from_json(certificate)
    pin = _signed_by(_pins(public_key), cert.body, cert.signature)
    claims = _json_object(cert.body, "certificate body")
    # The same key signs other statements (deletion-log heads, restore-ledger
    # exports): a body is a certificate only when it says so, for one job.
    version = claims.get("certificate_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise InvalidSignature("the signed body is not an erasure certificate (it has no certificate_version)")
    body_job = claims.get("job_id")
    if not isinstance(body_job, str) or not body_job:
        raise InvalidSignature("the signed body is not an erasure certificate (it names no job_id)")
    if cert.job_id and body_job != cert.job_id:
        raise InvalidSignature(f"the certificate is for job {body_job!r}, not {cert.job_id!r}")
    signed_key_id = claims.get("key_id")
    if signed_key_id is not None and signed_key_id != key_id(pin):
        raise InvalidSignature(f"the body names key {signed_key_id!r}, but was verified by {key_id(pin)!r}")
    return claims


def _as_head(head: HeadLike) -> SignedLogHead:
    if isinstance(head, SignedLogHead):
        return head
    return SignedLogHead(
        size=int(head.get("size", head.get("log_size", 0))),
        head_hash=str(head.get("head_hash", head.get("log_head_hash", ""))),
        statement=str(head.get("statement", head.get("log_head_statement", ""))),
        signature=str(head.get("signature", head.get("log_head_signature", ""))),
        key_id=str(head.get("key_id", "")),
    )


def verify_log_head(head: HeadLike, public_key: PinsLike) -> dict[str, Any]:
    """Checks a signed log head offline; returns the signed statement (parsed) when valid.

    The statement must be signed by a pinned key and say what the head says (``size``,
    ``head_hash``, ``key_id``). Keep a verified head and pin it later in
    ``verify_deletion_log(pin=head)``: a log shortened or rewritten before it fails.

    Raises:
        lethe.InvalidSignature: not signed by a pinned key, or the statement disagrees.
    """
    head = _as_head(head)
    pin = _signed_by(_pins(public_key), head.statement, head.signature)
    claims = _json_object(head.statement, "head statement")
    if claims.get("log") != LOG_HEAD_DOMAIN:
        raise InvalidSignature(f"not a deletion-log head statement: log={claims.get('log')!r}")
    if claims.get("size") != head.size:
        raise InvalidSignature(f"the statement signs size {claims.get('size')!r}, the head says {head.size}")
    if claims.get("head_hash") != head.head_hash:
        raise InvalidSignature("the statement signs another head hash than the head carries")
    if claims.get("key_id") != key_id(pin) or (head.key_id and head.key_id != key_id(pin)):
        raise InvalidSignature("the head names another key than the one that verified it")
    return claims


# ---------------------------------------------------------------------------- the chain


def _uuid_text(value: str) -> str:
    """A UUID as the service writes it (lower case, hyphenated); other text as it is."""
    if not value:
        return ""
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return value


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _rfc3339_micros(at: datetime) -> str:
    """``created_at`` as the service hashes it: UTC, six fractional digits, ``Z``
    (chrono's ``to_rfc3339_opts(SecondsFormat::Micros, true)``). A naive datetime is UTC."""
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc)
    return (
        f"{at.year:04d}-{at.month:02d}-{at.day:02d}T{at.hour:02d}:{at.minute:02d}:{at.second:02d}"
        f".{at.microsecond:06d}Z"
    )


def _created_at(value: Any) -> Optional[datetime]:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    parsed = parse_time(str(value))
    if parsed is None:
        raise ValueError(f"created_at {value!r} is not an RFC 3339 time")
    return parsed


def _as_entry(entry: EntryLike) -> LogEntry:
    if isinstance(entry, LogEntry):
        return entry
    if not isinstance(entry, Mapping):
        raise TypeError(f"a log entry is a lethe.LogEntry or a mapping of its fields, not {type(entry).__name__}")
    try:
        return LogEntry(
            seq=int(entry["seq"]),
            kind=str(entry.get("kind") or ""),
            job_id=str(entry.get("job_id") or ""),
            subject_hash=str(entry.get("subject_hash") or ""),
            body=str(entry["body"]),
            prev_hash=str(entry["prev_hash"]),
            entry_hash=str(entry["entry_hash"]),
            created_at=_created_at(entry.get("created_at")),
            hash_version=int(entry["hash_version"]),
        )
    except KeyError as missing:
        raise ValueError(f"a log entry needs {missing.args[0]!r}") from None


def log_entry_hash(entry: EntryLike, tenant_id: str = "") -> str:
    """The hash (hex) an entry must have, recomputed from what it shows, by its
    ``hash_version`` as the service computes it.

    Version 2 (every entry written since): SHA-256 of ``"lethe-log/2\\n" tenant_id "\\n"
    seq "\\n" kind "\\n" job_id "\\n" subject_hash "\\n" created_at "\\n" prev_hash "\\n"``
    followed by the body (UTF-8), with ids as lower-case hyphenated UUIDs (empty when
    absent), hashes in lower-case hex and ``created_at`` in UTC with microseconds and
    ``Z``. Version 1 (entries written before it): SHA-256 of ``prev_hash "\\n" body``.

    Args:
        entry: a :class:`lethe.LogEntry` or a mapping of its fields.
        tenant_id: the log's tenant (a version 2 hash covers it): the ``tenant_id`` of
            the log's signed head statement.

    Raises:
        ValueError: a version 2 entry without ``tenant_id`` or ``created_at``.
    """
    e = _as_entry(entry)
    prev = e.prev_hash.lower()
    body = e.body.encode("utf-8")
    if e.hash_version < 2:
        return hashlib.sha256(prev.encode("utf-8") + b"\n" + body).hexdigest()
    if not tenant_id:
        raise ValueError("a version 2 entry's hash covers its tenant: give tenant_id")
    if e.created_at is None:
        raise ValueError(f"entry {e.seq} has no created_at, which its hash covers")
    text = (
        f"{LOG_ENTRY_DOMAIN}\n{_uuid_text(tenant_id)}\n{e.seq}\n{e.kind}\n{_uuid_text(e.job_id)}\n"
        f"{e.subject_hash.lower()}\n{_rfc3339_micros(e.created_at)}\n{prev}\n"
    )
    return hashlib.sha256(text.encode("utf-8") + body).hexdigest()


def _certificates(certificates: CertificatesLike) -> list[Certificate]:
    if isinstance(certificates, (Certificate, Mapping, str, bytes, bytearray)):
        certificates = [certificates]  # one certificate, not an iterable of them
    return [c if isinstance(c, Certificate) else Certificate.from_json(c) for c in certificates]


class _LogChain:
    """The offline check of one log, entry by entry (the clients feed it page by page)."""

    def __init__(
        self,
        head: Optional[HeadLike],
        public_key: PinsLike,
        *,
        certificates: CertificatesLike = (),
        pin: Optional[HeadLike] = None,
        tenant_id: Optional[str] = None,
    ) -> None:
        pins = _pins(public_key)
        self.head = _as_head(head) if head is not None else None
        self.statement: dict[str, Any] = {}
        self.tenant = ""
        if self.head is not None:
            try:
                self.statement = verify_log_head(self.head, pins)
            except InvalidSignature as e:
                raise InvalidLog(self.head.size, f"the head does not verify: {e.message}") from None
            tenant = self.statement.get("tenant_id")
            if not isinstance(tenant, str) or not _is_uuid(tenant):
                raise InvalidLog(self.head.size, "the head's statement names no tenant")
            self.tenant = tenant
            if tenant_id is not None and _uuid_text(tenant_id) != _uuid_text(tenant):
                raise InvalidLog(0, f"the head is tenant {tenant}'s log, not tenant {tenant_id}'s")
        self.pin: Optional[SignedLogHead] = None
        if pin is not None:
            p = _as_head(pin)
            try:
                pinned = verify_log_head(p, pins)
            except InvalidSignature as e:
                raise InvalidLog(p.size, f"the pinned head does not verify: {e.message}") from None
            if self.head is not None and pinned.get("tenant_id") != self.tenant:
                raise InvalidLog(0, f"the pinned head is tenant {pinned.get('tenant_id')}'s log, not tenant {self.tenant}'s")
            if p.size > 0:
                self.pin = p
        self.at_pin = ""
        # Certificates first: a forged one fails before a long log is read.
        self.certs: list[tuple[str, Any, str, dict[str, Any]]] = []
        for cert in _certificates(certificates):
            try:
                claims = verify_certificate(cert, pins)
            except InvalidSignature as e:
                of = f" for job {cert.job_id}" if cert.job_id else ""
                raise InvalidLog(0, f"the certificate{of} does not verify: {e.message}") from None
            job = str(claims["job_id"])
            certified = claims.get("log_entry_hash")
            if not isinstance(certified, str) or not certified:
                raise InvalidLog(0, f"the certificate for job {job} names no log entry")
            self.certs.append((job, claims.get("log_seq"), certified.lower(), claims))
        self.wanted = {c[2] for c in self.certs}
        self.found: dict[str, tuple[int, str]] = {}
        self.prev = GENESIS_HASH
        self.checked = 0
        self.version = 0

    def add(self, entry: EntryLike) -> None:
        """Checks the next entry: the server's checks, in its order."""
        e = _as_entry(entry)
        expected = self.checked + 1
        if e.seq != expected:
            if e.seq > expected:
                raise InvalidLog(expected, f"entry {expected} is missing")
            raise InvalidLog(expected, f"entry {e.seq} is out of order (expected entry {expected})")
        if self.head is None:
            raise InvalidLog(e.seq, "the log has entries but no signed head")
        if e.seq > self.head.size:
            raise InvalidLog(e.seq, f"entry {e.seq} is beyond the signed head (size {self.head.size})")
        if e.prev_hash.lower() != self.prev:
            raise InvalidLog(e.seq, "link to the previous entry is broken")
        if e.hash_version not in HASH_VERSIONS:
            raise InvalidLog(e.seq, f"entry claims hash version {e.hash_version}, which this verifier does not know")
        if e.hash_version >= 2 and e.created_at is None:
            raise InvalidLog(e.seq, "entry has no created_at, which its hash covers")
        entry_hash = e.entry_hash.lower()
        if log_entry_hash(e, self.tenant) != entry_hash:
            raise InvalidLog(e.seq, "entry content does not match its hash")
        if e.hash_version < self.version:
            raise InvalidLog(e.seq, "entry claims an older hash version than its predecessor")
        self.version = e.hash_version
        if self.pin is not None and e.seq == self.pin.size:
            self.at_pin = entry_hash
        if entry_hash in self.wanted:
            self.found[entry_hash] = (e.seq, e.job_id)
        self.prev = entry_hash
        self.checked = e.seq

    def feed(self, entries: Iterable[EntryLike], page_size: int) -> bool:
        """Checks one page of ``list_deletion_log``; whether the log is read up to the head
        (a short page, the head's size reached, or an entry appended after the head, which
        the head does not sign: a later check verifies it)."""
        size = self.head.size if self.head is not None else 0
        seen = 0
        for entry in entries:
            e = _as_entry(entry)
            if self.head is not None and e.seq > size:
                return True
            self.add(e)
            seen += 1
        return seen < page_size or self.checked >= size

    def end(self) -> VerifiedLog:
        """Checks that the chain ends at the head (and reaches the pin), and the certificates."""
        size = self.head.size if self.head is not None else 0
        if self.checked < size:
            raise InvalidLog(self.checked + 1, f"the chain ends before its recorded head (entry {size})")
        if self.head is not None and self.prev != self.head.head_hash.lower():
            raise InvalidLog(size, "the chain ends in another hash than its signed head")
        if self.pin is not None:
            if self.pin.size > self.checked:
                raise InvalidLog(
                    self.checked + 1,
                    f"the log was shortened: the pinned head has {self.pin.size} entries, the chain ends at {self.checked}",
                )
            if self.at_pin != self.pin.head_hash.lower():
                raise InvalidLog(self.pin.size, f"entry {self.pin.size} differs from the pinned head")
        for job, log_seq, certified, _ in self.certs:
            found = self.found.get(certified)
            if found is None:
                raise InvalidLog(0, f"the log entry certified for job {job} is not in the chain")
            seq, entry_job = found
            if _uuid_text(entry_job) != _uuid_text(job):
                of = f"job {entry_job}" if entry_job else "no job"
                raise InvalidLog(seq, f"the log entry certified for job {job} is entry {seq}, of {of}")
            if log_seq != seq:
                raise InvalidLog(seq, f"the certificate for job {job} names entry {log_seq!r}, its log entry hash is entry {seq}'s")
        return VerifiedLog(
            entries_checked=self.checked,
            head_hash=self.prev if self.head is not None else "",
            tenant_id=self.tenant,
            head=self.head,
            statement=self.statement,
            certificates=[c[3] for c in self.certs],
        )


def _check_page_size(page_size: int) -> None:
    """The server's page is 1–1000 (0 would mean its default, and a short page could no
    longer tell the end of the log)."""
    if isinstance(page_size, bool) or not isinstance(page_size, int) or not 1 <= page_size <= 1000:
        raise ValueError(f"page_size is 1–1000, not {page_size!r}")


def verify_log(
    entries: Iterable[EntryLike],
    head: Optional[HeadLike],
    public_key: PinsLike,
    *,
    certificates: CertificatesLike = (),
    pin: Optional[HeadLike] = None,
    tenant_id: Optional[str] = None,
) -> VerifiedLog:
    """Checks the deletion log offline, trusting only the pinned key: the head is signed
    by it, and the entries form an unbroken hash chain from entry 1 that ends exactly at
    the head; the same checks as the server's ``VerifyDeletionLog``, without trusting it.

    Every entry's hash is recomputed from what it shows (:func:`log_entry_hash`, version
    1 or 2, with the tenant of the head's signed statement); entries must be numbered 1,
    2, 3, … without a gap, in that order, each linking to the hash before it (the first
    to 32 zero bytes), with a hash version that never decreases; the last one must be the
    head's ``size`` and ``head_hash``. Entries beyond the head are refused (the head does
    not sign them: verify them with a later head). Use :meth:`lethe.Lethe.verify_log_offline`
    to fetch a consistent set, or give ``page.entries`` and ``page.head`` of
    :meth:`lethe.Lethe.list_deletion_log` (entries ``seq <= head.size``).

    Args:
        entries: the log's entries from the first, oldest first (:class:`lethe.LogEntry`
            or mappings of its fields); any iterable, read once.
        head: the signed head the entries must end at (``DeletionLogPage.head``);
            ``None`` only for an empty log.
        public_key: the service's pinned key(s), as for :func:`verify_log_head`.
        certificates: erasure certificates (or one) whose log entry must be in the chain:
            each is checked with :func:`verify_certificate`, and the entry whose hash
            its body signs (``log_entry_hash``) must be in the chain, at ``log_seq``,
            with the certificate's job.
        pin: a head you kept earlier (``LegalHold.log_head``, an older page's ``head``):
            the chain must still reach it (a log shortened or rewritten before it fails).
        tenant_id: when given, the head must be this tenant's log.

    Returns:
        :class:`lethe.VerifiedLog`: how many entries were checked, the head and its
        statement, the tenant, the certificates' bodies.

    Raises:
        lethe.InvalidLog: (an :class:`InvalidSignature`) naming ``first_bad_seq`` and the
            ``problem``: a head, pin or certificate not signed by a pinned key, or a
            broken chain.
    """
    chain = _LogChain(head, public_key, certificates=certificates, pin=pin, tenant_id=tenant_id)
    for entry in entries:
        chain.add(entry)
    return chain.end()
