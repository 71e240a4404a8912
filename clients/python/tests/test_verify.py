"""Offline verification of real certificates and log heads, and of forged ones."""

from __future__ import annotations

import base64
import dataclasses
import json
from pathlib import Path

import pytest
from conftest import Person, Server, ingest_about
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

import lethe


@pytest.fixture(scope="module")
def certificate(client: lethe.Lethe, collection: str, server: Server) -> lethe.Certificate:
    p = Person(id="verify-subject", email="oswin.qvxtrlmn@example.org", name="Oswin Qvxtrlmn")
    ingest_about(client, collection, p, 2)
    job = client.erase(p.id, requested_by="dpo@example.org", reason="certificate test")
    assert job.status == lethe.JobStatus.COMPLETED
    return client.get_certificate(job.job_id)


def _raw(key: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def test_a_real_certificate_verifies(certificate: lethe.Certificate, server: Server) -> None:
    claims = lethe.verify_certificate(certificate, server.public_key)
    assert claims["job_id"] == certificate.job_id
    assert claims["key_id"] == server.key_id == lethe.key_id(server.public_key)
    assert sum(c["deleted"] for c in claims["collections"]) == 2
    assert certificate.algorithm.lower() == "ed25519"
    # every form of the pinned key, and a list of pins with a retired key first
    raw = base64.b64decode(server.public_key)
    lethe.verify_certificate(certificate, raw)
    lethe.verify_certificate(certificate, Ed25519PublicKey.from_public_bytes(raw))
    other = base64.b64encode(_raw(Ed25519PrivateKey.generate().public_key())).decode()
    lethe.verify_certificate(certificate, [other, server.public_key])
    # saved and read back, as JSON text or a dict
    assert lethe.verify_certificate(certificate.to_json(), server.public_key) == claims
    assert lethe.verify_certificate(json.loads(certificate.to_json()), server.public_key) == claims


def test_the_service_cli_agrees_on_a_saved_certificate(certificate: lethe.Certificate, server: Server, tmp_path: Path) -> None:
    f = tmp_path / "cert.json"
    f.write_text(certificate.to_json())
    assert server.key_id in server.run("verify-certificate", str(f), "--pin", server.public_key)


def test_a_tampered_certificate_fails(certificate: lethe.Certificate, server: Server) -> None:
    claims = certificate.claims()
    claims["collections"][0]["after_total"] = 0
    claims["collections"][0]["deleted"] += 1
    forged_body = json.dumps(claims, separators=(",", ":"))
    assert forged_body != certificate.body
    with pytest.raises(lethe.InvalidSignature):
        lethe.verify_certificate(dataclasses.replace(certificate, body=forged_body), server.public_key)
    # one changed character is enough
    with pytest.raises(lethe.InvalidSignature):
        lethe.verify_certificate(dataclasses.replace(certificate, body=certificate.body.replace("dpo@", "dp0@")), server.public_key)
    with pytest.raises(lethe.InvalidSignature, match="base64"):
        lethe.verify_certificate(dataclasses.replace(certificate, signature="%%%"), server.public_key)
    # a valid body presented as another job's certificate
    with pytest.raises(lethe.InvalidSignature, match="job"):
        lethe.verify_certificate(dataclasses.replace(certificate, job_id="00000000-0000-0000-0000-000000000000"), server.public_key)


@pytest.mark.parametrize("text", ["[]", "null", "{}", '{"body": null, "signature": "x"}', '{"body": "{}"}', "not json", b"\xff"])
def test_a_malformed_certificate_is_a_value_error(text: str, server: Server) -> None:
    """Not a certificate at all: ValueError (JSON's own included), never AttributeError or KeyError."""
    with pytest.raises(ValueError):
        lethe.verify_certificate(text, server.public_key)
    with pytest.raises(ValueError):
        lethe.Certificate.from_json(text)


def test_a_certificate_signed_by_another_key_fails(certificate: lethe.Certificate, server: Server) -> None:
    forger = Ed25519PrivateKey.generate()
    forger_pub = base64.b64encode(_raw(forger.public_key())).decode()
    claims = certificate.claims()
    claims["key_id"] = lethe.key_id(forger_pub)
    body = json.dumps(claims, separators=(",", ":"))
    forged = dataclasses.replace(
        certificate,
        body=body,
        signature=base64.b64encode(forger.sign(body.encode())).decode(),
        public_key=forger_pub,  # carries its own key: never trusted
        key_id=lethe.key_id(forger_pub),
    )
    with pytest.raises(lethe.InvalidSignature, match="pinned"):
        lethe.verify_certificate(forged, server.public_key)
    # it is a well-formed signature: only the pin tells it apart
    assert lethe.verify_certificate(forged, forger_pub)["key_id"] == lethe.key_id(forger_pub)
    # the real body re-signed by the forger, still naming the service's key id
    resigned = dataclasses.replace(certificate, signature=base64.b64encode(forger.sign(certificate.body.encode())).decode())
    with pytest.raises(lethe.InvalidSignature):
        lethe.verify_certificate(resigned, server.public_key)
    with pytest.raises(lethe.InvalidSignature, match="names key"):
        lethe.verify_certificate(resigned, forger_pub)


def test_log_heads(auditor: lethe.Lethe, certificate: lethe.Certificate, server: Server) -> None:
    head = auditor.list_deletion_log(limit=1).head
    assert head is not None
    statement = lethe.verify_log_head(head, server.public_key)
    assert (statement["size"], statement["head_hash"], statement["key_id"]) == (head.size, head.head_hash, server.key_id)
    assert statement["tenant_id"] == server.tenant_id
    # the certificate names an entry that the head covers
    assert certificate.claims()["log_seq"] <= head.size
    for forged in (
        dataclasses.replace(head, size=head.size - 1),
        dataclasses.replace(head, head_hash="ab" * 32),
        dataclasses.replace(head, statement=head.statement.replace(f'"size":{head.size}', f'"size":{head.size + 1}')),
    ):
        with pytest.raises(lethe.InvalidSignature):
            lethe.verify_log_head(forged, server.public_key)
    other = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(lethe.InvalidSignature):
        lethe.verify_log_head(head, other)
    # as a dict of ErrorInfo metadata names
    md = {"log_size": str(head.size), "log_head_hash": head.head_hash, "log_head_statement": head.statement, "log_head_signature": head.signature}
    assert lethe.verify_log_head({k: (int(v) if k == "log_size" else v) for k, v in md.items()}, server.public_key) == statement


def test_bad_pins_are_refused(certificate: lethe.Certificate) -> None:
    with pytest.raises(ValueError):
        lethe.verify_certificate(certificate, "not base64!")
    with pytest.raises(ValueError):
        lethe.verify_certificate(certificate, b"short")
    with pytest.raises(ValueError):
        lethe.verify_certificate(certificate, [])


def test_a_log_head_statement_saved_as_a_certificate_is_refused(auditor: lethe.Lethe, certificate: lethe.Certificate, server: Server) -> None:
    """The service's key signs log heads too: a head's statement and signature in a
    certificate file (no job id outside) verify as a signature, but the body is not a
    certificate."""
    head = auditor.list_deletion_log(limit=1).head
    assert head is not None
    lethe.verify_log_head(head, server.public_key)  # a genuine signed statement
    as_cert = lethe.Certificate(
        job_id="", body=head.statement, signature=head.signature, public_key=server.public_key, algorithm="Ed25519", key_id=server.key_id
    )
    with pytest.raises(lethe.InvalidSignature, match="not an erasure certificate"):
        lethe.verify_certificate(as_cert, server.public_key)
    with pytest.raises(lethe.InvalidSignature, match="not an erasure certificate"):
        lethe.verify_certificate({"body": head.statement, "signature": head.signature}, server.public_key)
    with pytest.raises(lethe.InvalidSignature):
        lethe.verify_certificate(dataclasses.replace(as_cert, job_id=certificate.job_id), server.public_key)


def test_a_signed_body_is_a_certificate_only_with_a_version_and_a_job() -> None:
    """Bodies signed by the pinned key: each one without what makes it a certificate of
    one job is refused; the outer job id must be the body's."""
    signer = Ed25519PrivateKey.generate()
    pub = base64.b64encode(_raw(signer.public_key())).decode()
    job = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890"

    def signed(claims: dict[str, object], job_id: str = "") -> lethe.Certificate:
        body = json.dumps(dict(claims, key_id=lethe.key_id(pub)), separators=(",", ":"))
        sig = base64.b64encode(signer.sign(body.encode())).decode()
        return lethe.Certificate(job_id=job_id, body=body, signature=sig, public_key=pub, algorithm="Ed25519", key_id="")

    assert lethe.verify_certificate(signed({"certificate_version": 2, "job_id": job}), pub)["job_id"] == job
    assert lethe.verify_certificate(signed({"certificate_version": 2, "job_id": job}, job), pub)["job_id"] == job
    for claims in (
        {"job_id": job},  # no version
        {"certificate_version": 2},  # no job
        {"certificate_version": 2, "job_id": ""},
        {"certificate_version": 2, "job_id": 7},
        {"certificate_version": "2", "job_id": job},
        {"certificate_version": True, "job_id": job},
        {"certificate_version": 0, "job_id": job},
        {"log": "lethe.dev/deletion-log/v1", "size": 3, "head_hash": "ab" * 32},
    ):
        with pytest.raises(lethe.InvalidSignature, match="not an erasure certificate"):
            lethe.verify_certificate(signed(claims), pub)
    with pytest.raises(lethe.InvalidSignature, match="for job"):
        lethe.verify_certificate(signed({"certificate_version": 2, "job_id": job}, "00000000-0000-0000-0000-000000000000"), pub)
