"""Offline verification of the deletion log's hash chain (``lethe.verify_log``): a real
log, made by real erasures and a refusal, verifies against the pinned key alone; copies of
its entries and head, tampered with in each way, fail with the first bad entry named."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import pickle
from datetime import datetime, timedelta, timezone
from typing import Any, Optional, Sequence

import pytest
from conftest import Person, Server, ingest_about
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

import lethe

ZERO = "0" * 64


@dataclasses.dataclass(frozen=True)
class Made:
    """What the module's erasures left: their certificates, and the head a refusal returned."""

    certificates: list[lethe.Certificate]
    refusal_head: lethe.SignedLogHead


@pytest.fixture(scope="module")
def made(client: lethe.Lethe, collection: str) -> Made:
    certificates = []
    for i, (first, last) in enumerate((("Ingrid", "Qwoplerth"), ("Ulrich", "Zavbrimnol"), ("Petra", "Kyxundelph"))):
        p = Person(id=f"chain-{i}", email=f"{first.lower()}.{last.lower()}@example.org", name=f"{first} {last}")
        ingest_about(client, collection, p, 2)
        job = client.erase(p.id, requested_by="dpo@example.org", reason=f"chain test {i}")
        assert job.status == lethe.JobStatus.COMPLETED
        certificates.append(client.get_certificate(job.job_id))
    held = Person(id="chain-held", email="vesna.plorquinth@example.org", name="Vesna Plorquinth")
    ingest_about(client, collection, held, 1)
    client.set_legal_hold(held.id, hold=True, reason="litigation")
    with pytest.raises(lethe.LegalHold) as refused:
        client.erase(held.id, requested_by="dpo@example.org", reason="chain test held")
    client.set_legal_hold(held.id, hold=False)
    assert refused.value.log_head is not None
    return Made(certificates=certificates, refusal_head=refused.value.log_head)


def snapshot(c: lethe.Lethe) -> tuple[list[lethe.LogEntry], lethe.SignedLogHead]:
    """Every entry the head of the first page signs, and that head (later entries, of jobs
    other tests left running, are left out)."""
    page = c.list_deletion_log(limit=1000)
    head = page.head
    assert head is not None
    entries = [e for e in page.entries if e.seq <= head.size]
    while len(entries) < head.size:
        more = c.list_deletion_log(after_seq=entries[-1].seq, limit=1000).entries
        assert more
        entries += [e for e in more if e.seq <= head.size]
    return entries, head


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def public(key: Ed25519PrivateKey) -> str:
    return _b64(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


def signed_head(key: Ed25519PrivateKey, tenant_id: str, size: int, head_hash: str) -> lethe.SignedLogHead:
    """A head as the service signs it (the same canonical statement), by ``key``."""
    kid = lethe.key_id(public(key))
    statement = json.dumps(
        {
            "log": "lethe.dev/deletion-log/v1",
            "tenant_id": tenant_id,
            "size": size,
            "head_hash": head_hash,
            "signed_at": "2026-12-02T05:20:20.123456Z",
            "key_id": kid,
        },
        separators=(",", ":"),
    )
    return lethe.SignedLogHead(
        size=size, head_hash=head_hash, statement=statement, signature=_b64(key.sign(statement.encode())), key_id=kid
    )


def rechain(entries: Sequence[lethe.LogEntry], tenant_id: str, start: int) -> list[lethe.LogEntry]:
    """``entries`` with every hash from index ``start`` on recomputed (as someone who
    rewrites the log, but cannot sign, would)."""
    out = list(entries[:start])
    prev = out[-1].entry_hash if out else ZERO
    for e in entries[start:]:
        e = dataclasses.replace(e, prev_hash=prev)
        e = dataclasses.replace(e, entry_hash=lethe.log_entry_hash(e, tenant_id))
        out.append(e)
        prev = e.entry_hash
    return out


def fails(
    entries: Sequence[Any], head: Optional[Any], key: Any, *, match: str, seq: Optional[int] = None, **kw: Any
) -> lethe.InvalidLog:
    with pytest.raises(lethe.InvalidLog, match=match) as e:
        lethe.verify_log(entries, head, key, **kw)
    if seq is not None:
        assert e.value.first_bad_seq == seq, e.value
    assert isinstance(e.value, lethe.InvalidSignature)
    assert e.value.problem in str(e.value)
    return e.value


# ---------------------------------------------------------------------------- a real log


def test_a_real_log_verifies_offline(auditor: lethe.Lethe, made: Made, server: Server) -> None:
    entries, head = snapshot(auditor)
    result = lethe.verify_log(
        entries, head, server.public_key, certificates=made.certificates, pin=made.refusal_head, tenant_id=server.tenant_id
    )
    assert result.entries_checked == head.size == len(entries) >= 4
    assert result.head_hash == head.head_hash == entries[-1].entry_hash
    assert result.tenant_id == server.tenant_id == result.statement["tenant_id"]
    assert result.head == head and result.statement["size"] == head.size
    assert [c["job_id"] for c in result.certificates] == [c.job_id for c in made.certificates]
    kinds = {e.kind for e in entries}
    assert {"erasure", "refusal"} <= kinds, kinds
    # every entry's hash, recomputed here from what the server shows, is the server's
    assert all(e.hash_version == 2 and lethe.log_entry_hash(e, server.tenant_id) == e.entry_hash for e in entries)
    assert any(e.job_id and e.subject_hash for e in entries)
    # the server's own check agrees
    online = auditor.verify_deletion_log(pin=head)
    assert online.valid and online.entries_checked >= head.size
    # a retired key listed before the current one; one certificate alone
    other = public(Ed25519PrivateKey.generate())
    assert lethe.verify_log(entries, head, [other, server.public_key], certificates=made.certificates[0]).entries_checked == head.size
    # saved and read back: entries and head as mappings (created_at as RFC 3339 text too)
    as_dicts = [dataclasses.asdict(e) for e in entries]
    assert lethe.verify_log(as_dicts, dataclasses.asdict(head), server.public_key).entries_checked == head.size
    as_json = json.loads(json.dumps(as_dicts, default=lambda d: d.isoformat().replace("+00:00", "Z")))
    assert lethe.verify_log(iter(as_json), head, server.public_key).entries_checked == head.size
    # a prefix verifies against the head it had then (the refusal's)
    pinned = made.refusal_head
    assert lethe.verify_log(entries[: pinned.size], pinned, server.public_key).head_hash == pinned.head_hash


def test_the_clients_fetch_and_verify(client: lethe.Lethe, auditor: lethe.Lethe, made: Made, server: Server) -> None:
    for c in (client, auditor):
        result = c.verify_log_offline(server.public_key, certificates=made.certificates, pin=made.refusal_head, page_size=3)
        assert result.head is not None and result.entries_checked == result.head.size
        assert result.entries_checked >= len(made.certificates) + 1
        assert result.tenant_id == server.tenant_id
    with pytest.raises(lethe.InvalidLog, match="not by any pinned key") as e:
        auditor.verify_log_offline(public(Ed25519PrivateKey.generate()))
    assert e.value.first_bad_seq >= 4


async def test_the_async_client_fetches_and_verifies(made: Made, server: Server) -> None:
    async with lethe.AsyncLethe(server.url, api_key=server.ak) as c:
        result = await c.verify_log_offline(server.public_key, certificates=made.certificates, page_size=2)
        assert result.head is not None and result.entries_checked == result.head.size >= 4
        with pytest.raises(lethe.InvalidLog, match="'s log, not tenant 00000000-0000-0000-0000-000000000000's"):
            await c.verify_log_offline(server.public_key, tenant_id="00000000-0000-0000-0000-000000000000")


def test_entries_appended_after_the_head(client: lethe.Lethe, auditor: lethe.Lethe, collection: str, made: Made, server: Server) -> None:
    """A later erasure: its entry is beyond the old head (which does not sign it), its
    certificate's entry is not in the old chain, the old head pinned still verifies the new
    log, and the new log pinned against the old chain is a shortened log."""
    entries, head = snapshot(auditor)
    p = Person(id="chain-late", email="oswin.brqtelmaw@example.org", name="Oswin Brqtelmaw")
    ingest_about(client, collection, p, 1)
    job = client.erase(p.id, requested_by="dpo@example.org", reason="chain test late")
    late_cert = client.get_certificate(job.job_id)
    later, new_head = snapshot(auditor)
    assert new_head.size > head.size and later[: head.size] == entries
    extra = later[head.size]
    assert extra.seq == head.size + 1 and extra.prev_hash == head.head_hash
    fails([*entries, extra], head, server.public_key, seq=head.size + 1,
          match=rf"entry {head.size + 1} is beyond the signed head \(size {head.size}\)")
    fails(entries, head, server.public_key, certificates=[*made.certificates, late_cert], seq=0,
          match=f"the log entry certified for job {late_cert.job_id} is not in the chain")
    # the new log verifies with the certificate and the old head pinned
    result = lethe.verify_log(later, new_head, server.public_key, certificates=late_cert, pin=head)
    assert result.entries_checked == new_head.size
    assert result.certificates[0]["log_entry_hash"] in {e.entry_hash for e in later[head.size:]}
    # the old (genuine, signed) head put back over a pin of the new one
    fails(entries, head, server.public_key, pin=new_head, seq=head.size + 1,
          match=f"the log was shortened: the pinned head has {new_head.size} entries, the chain ends at {head.size}")


# ---------------------------------------------------------------------------- tampering


def test_a_changed_body_fails(auditor: lethe.Lethe, server: Server) -> None:
    entries, head = snapshot(auditor)
    k = 2
    e = entries[k - 1]
    changed = dataclasses.replace(e, body=e.body.replace('"', "'", 1))
    fails([*entries[: k - 1], changed, *entries[k:]], head, server.public_key, seq=k, match="entry content does not match its hash")
    # every other column the entry shows is covered too (version 2)
    for field, value in (
        ("kind", e.kind + "-x"),
        ("job_id", "00000000-0000-0000-0000-000000000000"),
        ("subject_hash", "ab" * 32),
        ("created_at", (e.created_at or datetime.now(timezone.utc)) + timedelta(microseconds=1)),
    ):
        forged = dataclasses.replace(e, **{field: value})
        fails([*entries[: k - 1], forged, *entries[k:]], head, server.public_key, seq=k, match="entry content does not match its hash")
    # rehashed to match, the next entry's link breaks
    rehashed = dataclasses.replace(changed, entry_hash=lethe.log_entry_hash(changed, server.tenant_id))
    fails([*entries[: k - 1], rehashed, *entries[k:]], head, server.public_key, seq=k + 1, match="link to the previous entry is broken")
    # and the whole chain rehashed after it ends in another hash than the signed head
    rewritten = rechain([*entries[: k - 1], changed, *entries[k:]], server.tenant_id, k - 1)
    assert rewritten[-1].entry_hash != head.head_hash
    fails(rewritten, head, server.public_key, seq=head.size, match="the chain ends in another hash than its signed head")
    # ... which a head signed by someone else's key cannot make good
    forger = Ed25519PrivateKey.generate()
    forged_head = signed_head(forger, server.tenant_id, head.size, rewritten[-1].entry_hash)
    lethe.verify_log(rewritten, forged_head, public(forger))  # consistent, but not the service's
    fails(rewritten, forged_head, server.public_key, seq=head.size, match="the head does not verify: the signature is not by any pinned key")


def test_a_dropped_entry_fails(auditor: lethe.Lethe, server: Server) -> None:
    entries, head = snapshot(auditor)
    fails(entries[:1] + entries[2:], head, server.public_key, seq=2, match="entry 2 is missing")
    fails(entries[1:], head, server.public_key, seq=1, match="entry 1 is missing")
    # the last one: the chain ends before its head
    fails(entries[:-1], head, server.public_key, seq=head.size, match=rf"the chain ends before its recorded head \(entry {head.size}\)")
    # renumbered to close the gap: the link breaks
    renumbered = entries[:1] + [dataclasses.replace(e, seq=e.seq - 1) for e in entries[2:]]
    fails(renumbered, head, server.public_key, seq=2, match="link to the previous entry is broken")


def test_swapped_entries_fail(auditor: lethe.Lethe, server: Server) -> None:
    entries, head = snapshot(auditor)
    swapped = [entries[0], entries[2], entries[1], *entries[3:]]
    fails(swapped, head, server.public_key, seq=2, match="entry 2 is missing")
    # a repeated entry
    fails([entries[0], entries[1], entries[1], *entries[2:]], head, server.public_key, seq=3,
          match=r"entry 2 is out of order \(expected entry 3\)")
    # their contents swapped under the original numbers
    a, b = entries[1], entries[2]
    contents = [entries[0], dataclasses.replace(b, seq=2), dataclasses.replace(a, seq=3), *entries[3:]]
    fails(contents, head, server.public_key, seq=2, match="link to the previous entry is broken")


def test_a_changed_prev_hash_fails(auditor: lethe.Lethe, server: Server) -> None:
    entries, head = snapshot(auditor)
    for k, prev in ((1, "11" * 32), (3, "22" * 32), (3, entries[0].entry_hash)):
        changed = dataclasses.replace(entries[k - 1], prev_hash=prev)
        fails([*entries[: k - 1], changed, *entries[k:]], head, server.public_key, seq=k, match="link to the previous entry is broken")
    # an upper-case copy of the same hash is the same link
    upper = dataclasses.replace(entries[2], prev_hash=entries[2].prev_hash.upper(), entry_hash=entries[2].entry_hash.upper())
    assert lethe.verify_log([*entries[:2], upper, *entries[3:]], head, server.public_key).entries_checked == head.size


def test_a_changed_head_fails(auditor: lethe.Lethe, server: Server) -> None:
    entries, head = snapshot(auditor)
    fails(entries, dataclasses.replace(head, head_hash=entries[-2].entry_hash), server.public_key, seq=head.size,
          match="the head does not verify: the statement signs another head hash than the head carries")
    fails(entries[:-1], dataclasses.replace(head, size=head.size - 1, head_hash=entries[-2].entry_hash), server.public_key,
          seq=head.size - 1, match=f"the head does not verify: the statement signs size {head.size}, the head says {head.size - 1}")
    bigger = head.statement.replace(f'"size":{head.size}', f'"size":{head.size + 1}')
    fails(entries, dataclasses.replace(head, statement=bigger, size=head.size + 1), server.public_key, seq=head.size + 1,
          match="the head does not verify: the signature is not by any pinned key")
    # no head at all for a log with entries
    fails(entries, None, server.public_key, seq=1, match="the log has entries but no signed head")
    # an empty log without a head is an empty log
    empty = lethe.verify_log([], None, server.public_key)
    assert (empty.entries_checked, empty.head, empty.head_hash) == (0, None, "")


def test_a_head_signed_by_another_key_fails(auditor: lethe.Lethe, server: Server) -> None:
    entries, head = snapshot(auditor)
    forger = Ed25519PrivateKey.generate()
    # the genuine statement re-signed by the forger
    resigned = dataclasses.replace(head, signature=_b64(forger.sign(head.statement.encode())))
    fails(entries, resigned, server.public_key, seq=head.size, match="the head does not verify: the signature is not by any pinned key")
    # a genuine head checked against another pin
    fails(entries, head, public(forger), seq=head.size, match="not by any pinned key")
    # another tenant's head (signed by a key the auditor pinned): not this tenant's log
    other_tenant = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890"
    fails(entries, signed_head(forger, other_tenant, head.size, head.head_hash), public(forger), seq=1,
          match="entry content does not match its hash")
    fails(entries, head, server.public_key, tenant_id=other_tenant, seq=0,
          match=f"the head is tenant {server.tenant_id}'s log, not tenant {other_tenant}'s")


def test_a_lowered_hash_version_fails(auditor: lethe.Lethe, server: Server) -> None:
    """Version 1 hashes cover the body only: an entry made to claim it, so that its other
    columns can be changed, fails, rehashed or not."""
    entries, head = snapshot(auditor)
    k = 3
    lowered = dataclasses.replace(entries[k - 1], hash_version=1)
    fails([*entries[: k - 1], lowered, *entries[k:]], head, server.public_key, seq=k, match="entry content does not match its hash")
    # rehashed as version 1 with a changed subject, and the rest of the chain rehashed
    forged = dataclasses.replace(lowered, subject_hash="ab" * 32)
    rewritten = rechain([*entries[: k - 1], forged, *entries[k:]], server.tenant_id, k - 1)
    assert rewritten[k - 1].entry_hash == hashlib.sha256(f"{entries[k - 2].entry_hash}\n{forged.body}".encode()).hexdigest()
    fails(rewritten, head, server.public_key, seq=k, match="entry claims an older hash version than its predecessor")
    forger = Ed25519PrivateKey.generate()
    fails(rewritten, signed_head(forger, server.tenant_id, head.size, rewritten[-1].entry_hash), public(forger), seq=k,
          match="entry claims an older hash version than its predecessor")


@pytest.mark.parametrize("version", [0, 3, 7, -1])
def test_an_unknown_hash_version_fails(auditor: lethe.Lethe, server: Server, version: int) -> None:
    """A version this verifier does not know is refused, not checked by another version's rules."""
    entries, head = snapshot(auditor)
    k = len(entries)
    changed = dataclasses.replace(entries[k - 1], hash_version=version)
    fails([*entries[: k - 1], changed], head, server.public_key, seq=k, match=f"hash version {version}, which this verifier does not know")


def test_certificates_must_be_signed_and_in_the_chain(auditor: lethe.Lethe, made: Made, server: Server) -> None:
    entries, head = snapshot(auditor)
    cert = made.certificates[0]
    claims = cert.claims()
    tampered = dataclasses.replace(cert, body=cert.body.replace(claims["log_entry_hash"], "ab" * 32))
    fails(entries, head, server.public_key, certificates=[tampered], seq=0,
          match=f"the certificate for job {cert.job_id} does not verify: the signature is not by any pinned key")
    # signed by a key the auditor pinned, naming an entry that is not in the chain ...
    forger = Ed25519PrivateKey.generate()
    pins = [server.public_key, public(forger)]

    def forged(**changes: Any) -> lethe.Certificate:
        body = json.dumps(dict(claims, key_id=lethe.key_id(public(forger)), **changes), separators=(",", ":"))
        return dataclasses.replace(cert, body=body, signature=_b64(forger.sign(body.encode())), key_id=lethe.key_id(public(forger)))

    fails(entries, head, pins, certificates=[forged(log_entry_hash="ab" * 32)], seq=0,
          match=f"the log entry certified for job {cert.job_id} is not in the chain")
    # ... or another job's entry
    other = next(e for e in entries if e.kind == "erasure" and e.job_id != cert.job_id)
    fails(entries, head, pins, certificates=[forged(log_entry_hash=other.entry_hash, log_seq=other.seq)], seq=other.seq,
          match=f"the log entry certified for job {cert.job_id} is entry {other.seq}, of job {other.job_id}")
    # ... or its own entry at another seq
    fails(entries, head, pins, certificates=[forged(log_seq=claims["log_seq"] + 1)], seq=claims["log_seq"],
          match=f"the certificate for job {cert.job_id} names entry {claims['log_seq'] + 1}")
    fails(entries, head, pins, certificates=[forged(log_entry_hash=None)], seq=0,
          match=f"the certificate for job {cert.job_id} names no log entry")
    # the genuine certificate, forged ones aside, passes with the same pins
    assert lethe.verify_log(entries, head, pins, certificates=cert.to_json()).certificates == [claims]


def test_a_pin_the_chain_does_not_reach_fails(auditor: lethe.Lethe, made: Made, server: Server) -> None:
    entries, head = snapshot(auditor)
    pinned = made.refusal_head
    forger = Ed25519PrivateKey.generate()
    wrong_pin = signed_head(forger, server.tenant_id, pinned.size, "cd" * 32)
    pins = [server.public_key, public(forger)]
    fails(entries, head, pins, pin=wrong_pin, seq=pinned.size, match=f"entry {pinned.size} differs from the pinned head")
    fails(entries, head, server.public_key, pin=wrong_pin, seq=pinned.size, match="the pinned head does not verify")
    fails(entries, head, pins, pin=signed_head(forger, "6f1c2d3e-4a5b-4c6d-8e7f-901234567890", pinned.size, pinned.head_hash), seq=0,
          match="the pinned head is tenant 6f1c2d3e-4a5b-4c6d-8e7f-901234567890's log")


# ---------------------------------------------------------------------------- the hashes


def test_version_1_hash_fixed_example() -> None:
    first = lethe.LogEntry(seq=1, kind="erasure", job_id="", subject_hash="", body='{"a":1}', prev_hash=ZERO,
                           entry_hash="", created_at=None, hash_version=1)
    assert lethe.log_entry_hash(first) == "f21735afd2cd6af4fc5804b0045cebfd545aef8396d29d030c39cb8880b45b7f"
    # SHA-256(hex(prev_hash) "\n" body): nothing else is covered
    assert lethe.log_entry_hash(dataclasses.replace(first, seq=9, kind="x", job_id="y", subject_hash="ab")) == lethe.log_entry_hash(first)
    second = dataclasses.replace(first, seq=2, body='{"a":2}', prev_hash=lethe.log_entry_hash(first))
    assert lethe.log_entry_hash(second) == "74860491e228ca61080512f45d5e8f90d3f673c11f490f722840205e845beb41"


def test_version_2_hash_fixed_example() -> None:
    tenant = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890"
    e = lethe.LogEntry(
        seq=3,
        kind="erasure",
        job_id="0b6c7d8e-9f10-4a11-8b12-c13d14e15f16",
        subject_hash="ab" * 32,
        body='{"x":"ü"}',
        prev_hash="cd" * 32,
        entry_hash="",
        # microseconds always six digits, UTC with Z, whatever the datetime's zone
        created_at=datetime(2026, 12, 2, 6, 20, 20, 42, tzinfo=timezone(timedelta(hours=1))),
        hash_version=2,
    )
    expected = "cc4deece59d6930979272bbecba0731b637c902417d74c8684527c8c7091c0da"
    preimage = f"lethe-log/2\n{tenant}\n3\nerasure\n{e.job_id}\n{'ab' * 32}\n2026-12-02T05:20:20.000042Z\n{'cd' * 32}\n" + e.body
    assert hashlib.sha256(preimage.encode()).hexdigest() == expected
    assert lethe.log_entry_hash(e, tenant) == expected
    assert lethe.log_entry_hash(e, tenant.upper()) == expected  # the same tenant
    assert lethe.log_entry_hash(dataclasses.asdict(e), tenant) == expected
    assert lethe.log_entry_hash(dict(dataclasses.asdict(e), created_at="2026-12-02T05:20:20.000042Z"), tenant) == expected
    with pytest.raises(ValueError, match="tenant"):
        lethe.log_entry_hash(e)
    with pytest.raises(ValueError, match="created_at"):
        lethe.log_entry_hash(dataclasses.replace(e, created_at=None), tenant)
    with pytest.raises(ValueError, match="hash_version"):
        lethe.log_entry_hash({k: v for k, v in dataclasses.asdict(e).items() if k != "hash_version"}, tenant)


def test_a_version_1_log_upgraded_to_version_2_verifies() -> None:
    """Entries written before version 2 keep version 1; the chain continues with version 2."""
    key = Ed25519PrivateKey.generate()
    tenant = "6f1c2d3e-4a5b-4c6d-8e7f-901234567890"
    at = datetime(2026, 12, 2, 5, 20, 20, 123456, tzinfo=timezone.utc)
    plan = [(1, '{"a":1}'), (1, '{"a":2}'), (2, '{"a":3}'), (2, '{"a":4}')]
    entries = rechain(
        [lethe.LogEntry(seq=i + 1, kind="erasure", job_id="", subject_hash="", body=body, prev_hash="", entry_hash="",
                        created_at=at, hash_version=v) for i, (v, body) in enumerate(plan)],
        tenant,
        0,
    )
    assert entries[0].entry_hash == "f21735afd2cd6af4fc5804b0045cebfd545aef8396d29d030c39cb8880b45b7f"
    head = signed_head(key, tenant, 4, entries[-1].entry_hash)
    assert lethe.verify_log(entries, head, public(key)).entries_checked == 4
    # a version 1 entry's metadata is not covered ...
    assert lethe.verify_log([dataclasses.replace(entries[0], kind="other"), *entries[1:]], head, public(key)).entries_checked == 4
    # ... a version 2 entry's is
    fails([*entries[:2], dataclasses.replace(entries[2], kind="other"), entries[3]], head, public(key), seq=3,
          match="entry content does not match its hash")
    # back to version 1 after version 2
    down = rechain([*entries[:3], dataclasses.replace(entries[3], hash_version=1)], tenant, 3)
    fails(down, signed_head(key, tenant, 4, down[-1].entry_hash), public(key), seq=4,
          match="entry claims an older hash version than its predecessor")


def test_invalid_log_is_an_invalid_signature_and_pickles() -> None:
    e = lethe.InvalidLog(7, "link to the previous entry is broken")
    assert isinstance(e, lethe.InvalidSignature) and isinstance(e, lethe.LetheError)
    assert str(e) == "the deletion log does not verify at entry 7: link to the previous entry is broken"
    assert (e.first_bad_seq, e.problem, e.reason, e.code) == (7, "link to the previous entry is broken", "invalid_log", None)
    back = pickle.loads(pickle.dumps(e))
    assert (type(back), back.first_bad_seq, back.problem) == (lethe.InvalidLog, 7, e.problem)
    assert str(lethe.InvalidLog(0, "x")) == "the deletion log does not verify: x"


@pytest.mark.parametrize("page_size", [0, -1, 1001, True])
def test_verify_log_offline_refuses_a_page_size_the_server_would_not_honour(
    auditor: lethe.Lethe, server: Server, page_size: int
) -> None:
    # 0 would be the server's default page (100), after which a short page no longer
    # tells the end of the log and the client would ask for the same page for ever.
    with pytest.raises(ValueError, match="page_size"):
        auditor.verify_log_offline(server.public_key, page_size=page_size)
