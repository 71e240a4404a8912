"""AsyncLethe (grpc.aio) against the real service."""

from __future__ import annotations

import uuid

import grpc
import pytest
from conftest import Person, Server, left_to_the_loop

import lethe


async def test_async_round_trip(server: Server, collection: str, person: Person) -> None:
    async with lethe.AsyncLethe(server.url, api_key=server.sk) as c:
        assert await c.health()
        assert collection in [x.name for x in await c.list_collections()]
        s = await c.put_subject(person.id, identifiers=[person.email])
        assert s.identifier_count == 1
        w = await c.ingest(
            collection,
            [{"source_id": f"{person.id}-a{i}", "text": f"async note {i}", "tags": [person.id]} for i in range(3)],
        )
        assert w.accepted == 3
        pid = str(uuid.uuid4())
        t = await c.track(collection, [lethe.TrackedPoint(pid, f"{person.id}-v", tags=[person.id], vector=[0.5] * 384)])
        assert t.point_ids == [pid]
        assert (await c.count_subject(person.id)).total == 4
        gone = await c.delete_points(collection, source_ids=[f"{person.id}-a0"])
        assert (gone.deleted, gone.forgotten) == (1, 1)
        assert (await c.count_subject(person.id)).total == 3
        assert (await c.set_legal_hold(person.id, hold=True, reason="hold")).legal_hold
        with pytest.raises(lethe.LegalHold) as held:
            await c.erase(person.id, requested_by="dpo@example.org")
        assert held.value.log_head is not None
        lethe.verify_log_head(held.value.log_head, server.public_key)
        await c.set_legal_hold(person.id, hold=False)

        events: list[lethe.ErasureEvent] = []
        job = await c.erase(person.id, requested_by="dpo@example.org", reason="async", progress=events.append)
        assert job.status == lethe.JobStatus.COMPLETED and (job.deleted, job.remaining) == (3, 0)
        assert events[-1].status == lethe.JobStatus.COMPLETED
        assert [e.seq for e in events] == [e.seq async for e in c.watch_erasure(job.job_id)]
        assert (await c.get_erasure(job.job_id)).job_id == job.job_id
        assert job.job_id in [j.job_id for j in await c.list_erasures()]
        assert job.job_id in [j.job_id async for j in c.iter_erasures(status="completed")]
        cert = await c.get_certificate(job.job_id)
        assert lethe.verify_certificate(cert, server.public_key)["job_id"] == job.job_id

        page = await c.list_deletion_log(limit=1000)
        entries = [e async for e in c.iter_deletion_log(page_size=1)]
        assert [e.seq for e in entries] == [e.seq for e in page.entries]
        assert job.job_id in {e.job_id for e in entries}
        assert (await c.verify_deletion_log(pin=page.head)).valid
        exported = [r.part async for r in c.export_subject(person.id)]
        assert exported[0] == "subject" and exported[-1] == "manifest", exported
        found = await c.search_residuals([person.email])
        assert isinstance(found, list)


async def test_async_errors(server: Server, person: Person, collection: str) -> None:
    async with lethe.AsyncLethe(server.url, api_key="ak_wrong") as bad:
        with pytest.raises(lethe.InvalidApiKey):
            await bad.list_collections()
    async with lethe.AsyncLethe(server.url, api_key=server.pk) as pk:
        with pytest.raises(lethe.RequiresSecretKey):
            await pk.erase(person.id, requested_by="dpo@example.org")
    async with lethe.AsyncLethe(server.url, api_key=server.sk) as c:
        with pytest.raises(lethe.NotFound):
            await c.get_erasure(str(uuid.uuid4()))
        with pytest.raises(lethe.InvalidArgument) as e:
            await c.erase(person.id, requested_by="")
        assert e.value.field == "requested_by" and e.value.code == grpc.StatusCode.INVALID_ARGUMENT
        await c.ingest(collection, [lethe.Chunk(f"{person.id}-x", "text", tags=[person.id])])
        first = await c.erase(person.id, requested_by="dpo@example.org", wait=False)
        with pytest.raises(lethe.ErasureInProgress) as running:
            await c.erase(person.id, requested_by="dpo@example.org", wait=False)
        assert running.value.job_id == first.job_id
        with pytest.raises(lethe.DeadlineExceeded):
            await c.wait_for_erasure(first.job_id, timeout=0.2)
        assert (await c.wait_for_erasure(first.job_id, progress=True)).deleted == 1
        with pytest.raises(lethe.SubjectSuppressed):
            await c.put_subject(person.id, identifiers=["x.y.z@example.org"])


async def test_async_reindex(server: Server, person: Person) -> None:
    async with lethe.AsyncLethe(server.url, api_key=server.sk) as c:
        name = f"ar_{uuid.uuid4().hex[:8]}"
        await c.create_collection(name, dimension=384)
        await c.ingest(name, [lethe.Chunk(f"{person.id}-r{i}", f"reindex me {i}", tags=[person.id]) for i in range(2)])
        job = await c.reindex(name, wait=True, wait_timeout=120)
        assert job.status == lethe.JobStatus.COMPLETED and job.final_count == 2
        assert (await c.get_reindex(job.job_id)).final_count == 2
        assert job.job_id in [j.job_id for j in await c.list_reindexes()]
        assert [j.status async for j in c.watch_reindex(job.job_id)][-1] == lethe.JobStatus.COMPLETED




async def test_waits_close_the_streams_they_follow(server: Server, person: Person) -> None:
    """A wait leaves its watch with ``break`` when the job ends: the watch (and its
    stream) is closed then, not left for the event loop to close some time later."""
    async with lethe.AsyncLethe(server.url, api_key=server.sk) as c:
        name = f"aw_{uuid.uuid4().hex[:8]}"
        await c.create_collection(name, dimension=384)
        await c.ingest(name, [lethe.Chunk(f"{person.id}-w{i}", f"watch me {i}", tags=[person.id]) for i in range(2)])
        with left_to_the_loop() as left:
            job = await c.reindex(name, wait=True, wait_timeout=120)
            erased = await c.erase(person.id, requested_by="dpo@example.org", wait_timeout=120)
        assert job.status == lethe.JobStatus.COMPLETED and erased.status == lethe.JobStatus.COMPLETED
        assert left == []
