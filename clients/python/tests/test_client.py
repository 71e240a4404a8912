"""Every method of the sync client against the real service."""

from __future__ import annotations

import uuid

import pytest
from conftest import Person, Server, ingest_about

import lethe
from lethe import Backend, JobStatus, Stage


def test_health_and_context_manager(server: Server) -> None:
    with lethe.Lethe(server.url, api_key=server.sk) as c:
        assert c.health()
        assert isinstance(c.list_collections(), list)
    # closed with the block
    with pytest.raises(ValueError):
        c.list_collections()


def test_api_key_and_url_from_environment(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LETHE_URL", server.url)
    monkeypatch.setenv("LETHE_API_KEY", server.ak)
    with lethe.Lethe() as c:
        assert c.address == f"127.0.0.1:{server.port}"
        assert c.list_collections() is not None
    monkeypatch.delenv("LETHE_API_KEY")
    with pytest.raises(ValueError, match="API key"):
        lethe.Lethe()


def test_collections(client: lethe.Lethe, auditor: lethe.Lethe) -> None:
    name = f"c_{uuid.uuid4().hex[:8]}"
    col = client.create_collection(name, backend=Backend.PGVECTOR, dimension=384, store_text=True, screening="reject")
    assert (col.name, col.backend, col.dimension, col.store_text) == (name, Backend.PGVECTOR, 384, True)
    assert col.distance == lethe.Distance.COSINE
    assert col.screening == lethe.Screening.REJECT
    assert col.created_at is not None and col.created_at.tzinfo is not None
    assert col.backend_name
    # the same settings again: a no-op returning the same collection
    assert client.create_collection(name, backend="pgvector", dimension=384, store_text=True, screening="reject").name == name
    names = [c.name for c in auditor.list_collections()]
    assert name in names


def test_subjects_and_legal_hold(client: lethe.Lethe, person: Person) -> None:
    s = client.put_subject(person.id, identifiers=[person.email])
    assert (s.id, s.state, s.legal_hold, s.identifier_count) == (person.id, "active", False, 1)
    s = client.put_subject(person.id, identifiers=[lethe.Identifier(person.name, kind="name")])
    assert s.identifier_count == 2  # added, never removed
    assert client.set_legal_hold(person.id, hold=True, reason="case 7").legal_hold is True
    assert client.set_legal_hold(person.id, hold=False).legal_hold is False


def test_ingest_count_and_residual_search(client: lethe.Lethe, auditor: lethe.Lethe, collection: str, person: Person) -> None:
    ids = ingest_about(client, collection, person, 3)
    assert len(ids) == 3 and len(set(ids)) == 3
    # a chunk that names the person without a tag: only residual search finds it
    untagged = client.ingest(
        collection, [{"source_id": f"{person.id}-cc", "text": f"Forwarded by {person.email} yesterday"}]
    )
    assert untagged.accepted == 1 and untagged.suppressed == 0
    counts = auditor.count_subject(person.id)
    assert counts.subject_state == "active"
    by_collection = {c.collection: c for c in counts.counts}
    assert by_collection[collection].before_by_tag == 3
    assert by_collection[collection].before_total == 3
    found = auditor.search_residuals([person.email], limit=50)
    assert f"{person.id}-cc" in {c.source_id for c in found}
    assert all(c.collection == collection for c in found if c.source_id.startswith(person.id))
    hit = next(c for c in found if c.source_id == f"{person.id}-cc")
    assert any(e.kind == "lexical" and person.email in e.matched for e in hit.evidence)


def test_track_with_vectors(client: lethe.Lethe, auditor: lethe.Lethe, collection: str, person: Person) -> None:
    points = [
        lethe.TrackedPoint(
            point_id=str(uuid.uuid4()), source_id=f"{person.id}-t{i}", tags=[person.id], vector=[0.1 * (i + 1)] * 384
        )
        for i in range(2)
    ]
    result = client.track(collection, points, verify_points=False)
    assert result.accepted == 2
    assert sorted(result.point_ids) == sorted(p.point_id for p in points)
    # the points exist now, so verification passes
    again = client.track(collection, [{"point_id": points[0].point_id, "source_id": f"{person.id}-t0", "tags": [person.id]}], verify_points=True)
    assert again.accepted == 1
    assert auditor.count_subject(person.id).total == 2


def test_delete_points_by_id_and_by_source(
    client: lethe.Lethe, publishable: lethe.Lethe, auditor: lethe.Lethe, collection: str, person: Person
) -> None:
    chunks = [
        lethe.Chunk(source_id=f"{person.id}-doc-{i // 2}", text=f"note {i} by {person.name}", tags=[person.id], ordinal=i % 2)
        for i in range(4)
    ]
    ids = client.ingest(collection, chunks).point_ids
    assert auditor.count_subject(person.id).total == 4
    # With the pipeline's key: one point by id, then every chunk of a source.
    r = publishable.delete_points(collection, point_ids=[ids[0]])
    assert (r.deleted, r.forgotten, r.kept, r.held) == (1, 1, 0, 0)
    r = publishable.delete_points(collection, source_ids=[f"{person.id}-doc-1"])
    assert (r.deleted, r.forgotten) == (2, 2)
    assert auditor.count_subject(person.id).total == 1
    # One str is not a list of ids: its characters would be (source "a" deleted for "chat").
    with pytest.raises(TypeError):
        client.delete_points(collection, source_ids=f"{person.id}-doc-0")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        client.delete_points(collection, point_ids=str(ids[1]))  # type: ignore[arg-type]
    assert auditor.count_subject(person.id).total == 1
    with pytest.raises(lethe.InvalidArgument) as bad:
        client.delete_points(collection, point_ids=["not-a-uuid"])
    assert bad.value.field == "point_ids[0]"
    with pytest.raises(lethe.InvalidArgument) as none:
        client.delete_points(collection)
    assert none.value.field == "point_ids"
    with pytest.raises(lethe.RequiresSecretOrPublishableKey) as denied:
        auditor.delete_points(collection, point_ids=[ids[1]])
    assert isinstance(denied.value, lethe.PermissionDenied)


def test_erase_waits_with_progress_and_certifies(
    client: lethe.Lethe, auditor: lethe.Lethe, collection: str, person: Person, server: Server
) -> None:
    ingest_about(client, collection, person, 4)
    events: list[lethe.ErasureEvent] = []
    job = client.erase(
        person.id,
        requested_by="dpo@example.org",
        reason="Art. 17 test",
        identifiers=[person.email],
        residual_policy="report",
        progress=events.append,
    )
    assert job.status == JobStatus.COMPLETED and job.done
    assert job.stage == Stage.DONE
    assert (job.deleted, job.remaining) == (4, 0)
    [count] = [c for c in job.counts if c.collection == collection]
    assert (count.before_by_tag, count.before_total, count.deleted, count.after_total) == (4, 4, 4, 0)
    assert job.requested_by == "dpo@example.org" and job.reason == "Art. 17 test"
    assert job.residual_policy == lethe.ResidualPolicy.REPORT
    assert job.completed_at is not None and job.received_at is not None and job.deadline is not None
    # every stage was shown, in order, ending with the completed event
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    stages = [e.stage for e in events]
    for s in (Stage.FREEZE, Stage.PLAN, Stage.DELETE, Stage.VERIFY, Stage.LOG):
        assert s in stages
    assert stages.index(Stage.PLAN) < stages.index(Stage.DELETE) < stages.index(Stage.VERIFY)
    assert events[-1].status == JobStatus.COMPLETED
    assert all(e.job_id == job.job_id for e in events)
    # the auditor reads the same job, the live count is zero, the subject is gone
    assert auditor.get_erasure(job.job_id).status == JobStatus.COMPLETED
    assert auditor.count_subject(person.id).total == 0
    cert = auditor.get_certificate(job.job_id)
    claims = lethe.verify_certificate(cert, server.public_key)
    assert claims["job_id"] == job.job_id
    assert claims["key_id"] == server.key_id == cert.key_id
    assert [c["deleted"] for c in claims["collections"] if c["collection"] == collection] == [4]


def test_erase_without_wait_then_watch(client: lethe.Lethe, auditor: lethe.Lethe, collection: str, person: Person) -> None:
    ingest_about(client, collection, person, 2)
    queued = client.erase(person.id, requested_by="dpo@example.org", wait=False)
    assert queued.status in (JobStatus.QUEUED, JobStatus.IN_PROGRESS)
    assert queued.subject_id == person.id
    events = list(auditor.watch_erasure(queued.job_id))
    assert events and events[-1].status == JobStatus.COMPLETED
    assert [e.seq for e in events] == sorted({e.seq for e in events})
    assert auditor.get_erasure(queued.job_id).deleted == 2


def test_erase_progress_bar(client: lethe.Lethe, person: Person, capsys: pytest.CaptureFixture[str]) -> None:
    job = client.erase(person.id, requested_by="dpo@example.org", progress=True)
    assert job.status == JobStatus.COMPLETED
    err = capsys.readouterr().err
    # tqdm's bar or, without tqdm, one line per stage; both name the job and the last stage
    assert job.job_id[:8] in err
    assert "log" in err or "done" in err or "completed" in err


def test_list_and_iter_erasures(client: lethe.Lethe, auditor: lethe.Lethe, person: Person) -> None:
    job = client.erase(person.id, requested_by="dpo@example.org")
    listed = auditor.list_erasures(limit=500)
    assert job.job_id in [j.job_id for j in listed]
    assert [j.received_at for j in listed] == sorted((j.received_at for j in listed), reverse=True)  # newest first
    completed = list(auditor.iter_erasures(status="completed"))
    assert job.job_id in {j.job_id for j in completed}
    assert all(j.status == JobStatus.COMPLETED for j in completed)
    assert all(not j.overdue for j in auditor.list_erasures(overdue_only=True))
    assert len(auditor.list_erasures(limit=1)) == 1


def test_iterate_and_verify_the_deletion_log(client: lethe.Lethe, auditor: lethe.Lethe, server: Server) -> None:
    # enough entries for several pages of 2
    for _ in range(3):
        client.erase(f"log-{uuid.uuid4().hex[:8]}", requested_by="dpo@example.org")
    first = auditor.list_deletion_log(limit=1000)
    assert first.head is not None
    assert first.head.size == len(first.entries) >= 3
    assert first.head.head_hash == first.entries[-1].entry_hash
    lethe.verify_log_head(first.head, server.public_key)
    paged = list(auditor.iter_deletion_log(page_size=2))
    assert [e.seq for e in paged] == [e.seq for e in first.entries] == list(range(1, len(paged) + 1))
    for prev, e in zip(paged, paged[1:]):
        assert e.prev_hash == prev.entry_hash
    assert [e.seq for e in auditor.iter_deletion_log(after_seq=2, page_size=2)] == [e.seq for e in paged[2:]]
    assert paged[0].claims()["kind"] in ("erasure", "refusal", "follow_up") or paged[0].kind
    ok = auditor.verify_deletion_log(pin=first.head)
    assert ok.valid and ok.first_bad_seq == 0 and ok.entries_checked >= first.head.size
    assert ok.head is not None and ok.head.size >= first.head.size
    # a pin the log never had does not verify
    bad = auditor.verify_deletion_log(pinned_size=first.head.size, pinned_head_hash="00" * 32)
    assert not bad.valid and bad.problem


def test_reindex(client: lethe.Lethe, auditor: lethe.Lethe, person: Person) -> None:
    name = f"r_{uuid.uuid4().hex[:8]}"
    client.create_collection(name, dimension=384)
    ingest_about(client, name, person, 3)
    job = client.reindex(name, mode="copy", wait=True, wait_timeout=120)
    assert job.status == JobStatus.COMPLETED, job.error
    assert (job.collection, job.mode, job.total, job.copied, job.final_count) == (name, lethe.ReindexMode.COPY, 3, 3, 3)
    assert auditor.get_reindex(job.job_id).status == JobStatus.COMPLETED
    assert job.job_id in [j.job_id for j in auditor.list_reindexes(limit=10)]
    watched = list(auditor.watch_reindex(job.job_id, timeout=30))
    assert watched and watched[-1].status == JobStatus.COMPLETED


def test_export_subject(client: lethe.Lethe, auditor: lethe.Lethe, collection: str, person: Person) -> None:
    ingest_about(client, collection, person, 2)
    records = list(client.export_subject(person.id))
    parts = [r.part for r in records]
    assert parts[0] == "subject" and parts[-1] == "manifest", parts
    assert parts.count("chunks") == 2
    assert records[0].data()["subject_id"] == person.id
    manifest = records[-1].data()
    assert manifest["log_seq"] > 0
    # The auditor sees what Lethe did, never the texts.
    seen = {r.part for r in auditor.export_subject(person.id)}
    assert "chunks" not in seen and "manifest" in seen, seen
