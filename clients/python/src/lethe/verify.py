"""Offline checks of certificates and signed log heads (Ed25519, RFC 8032).

Always verify against the service's public key that you pinned (``lethe signing-key``
prints it), never against the key a document carries: anyone can make a key pair and
sign a body with it. Give several pins (the current key and retired ones) as a list.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any, Iterable, Mapping, Union

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .errors import InvalidSignature
from .types import Certificate, SignedLogHead

__all__ = ["verify_certificate", "verify_log_head", "key_id", "PublicKeyLike"]

PublicKeyLike = Union[str, bytes, Ed25519PublicKey]
PinsLike = Union[PublicKeyLike, Iterable[PublicKeyLike]]

LOG_HEAD_DOMAIN = "lethe.dev/deletion-log/v1"


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


def verify_log_head(head: Union[SignedLogHead, Mapping[str, Any]], public_key: PinsLike) -> dict[str, Any]:
    """Checks a signed log head offline; returns the signed statement (parsed) when valid.

    The statement must be signed by a pinned key and say what the head says (``size``,
    ``head_hash``, ``key_id``). Keep a verified head and pin it later in
    ``verify_deletion_log(pin=head)``: a log shortened or rewritten before it fails.

    Raises:
        lethe.InvalidSignature: not signed by a pinned key, or the statement disagrees.
    """
    if isinstance(head, Mapping):
        head = SignedLogHead(
            size=int(head.get("size", head.get("log_size", 0))),
            head_hash=str(head.get("head_hash", head.get("log_head_hash", ""))),
            statement=str(head.get("statement", head.get("log_head_statement", ""))),
            signature=str(head.get("signature", head.get("log_head_signature", ""))),
            key_id=str(head.get("key_id", "")),
        )
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
