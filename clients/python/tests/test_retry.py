"""UNAVAILABLE is retried with backoff; timeouts are per call."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import grpc
import pytest
from conftest import Person, Server, free_port, ingest_about, stop

import lethe

PATIENT = lethe.RetryPolicy(max_retries=30, initial_backoff=0.1, max_backoff=0.5)
#: three retries a second apart: a call retried takes at least 3 s
SLOW = lethe.RetryPolicy(max_retries=3, initial_backoff=1.0, max_backoff=1.0, jitter=0.0)


def test_no_retries_fails_fast(server: Server) -> None:
    with lethe.Lethe(f"http://127.0.0.1:{free_port()}", api_key=server.ak, retries=0) as c:
        t0 = time.monotonic()
        with pytest.raises(lethe.Unavailable) as e:
            c.list_collections()
        assert time.monotonic() - t0 < 5
        assert not c.health()
    assert (e.value.reason, e.value.code) == ("unavailable", grpc.StatusCode.UNAVAILABLE)


def test_reindex_is_not_retried(server: Server) -> None:
    """A Reindex whose answer was lost may have started its job: retrying would start a
    second one (with ``reembed``, the embedding cost twice). It fails at once where a read
    would be retried for the whole policy."""
    with lethe.Lethe(f"http://127.0.0.1:{free_port()}", api_key=server.sk, retries=SLOW, timeout=5) as c:
        t0 = time.monotonic()
        with pytest.raises(lethe.Unavailable):
            c.reindex("notes")
        assert time.monotonic() - t0 < 2, "retried"
        t0 = time.monotonic()
        with pytest.raises(lethe.Unavailable):
            c.list_collections()
        assert time.monotonic() - t0 >= 3, "a read is retried"


async def test_async_reindex_is_not_retried(server: Server) -> None:
    async with lethe.AsyncLethe(f"http://127.0.0.1:{free_port()}", api_key=server.sk, retries=SLOW, timeout=5) as c:
        t0 = time.monotonic()
        with pytest.raises(lethe.Unavailable):
            await c.reindex("notes")
        assert time.monotonic() - t0 < 2, "retried"


def test_call_waits_for_a_server_that_starts_listening_later(server: Server, tmp_path: Path) -> None:
    port = free_port()
    started: list[float] = []

    def start_later() -> None:
        time.sleep(1.0)
        started.append(time.monotonic())
        server.spawn(port, tmp_path / "late.log")

    with lethe.Lethe(f"http://127.0.0.1:{port}", api_key=server.ak, retries=PATIENT, timeout=5) as c:
        t = threading.Thread(target=start_later)
        t0 = time.monotonic()
        t.start()
        collections = c.list_collections()  # fails with UNAVAILABLE until the server is up
        done = time.monotonic()
        t.join()
    assert started and done > started[0] > t0
    assert isinstance(collections, list)
    stop(server.extra.pop())


async def test_async_call_waits_for_a_server_that_starts_listening_later(server: Server, tmp_path: Path) -> None:
    port = free_port()
    async with lethe.AsyncLethe(f"127.0.0.1:{port}", api_key=server.ak, retries=0) as fast:
        with pytest.raises(lethe.Unavailable):
            await fast.list_collections()
    async with lethe.AsyncLethe(f"127.0.0.1:{port}", api_key=server.ak, retries=PATIENT, timeout=5) as c:
        task = asyncio.ensure_future(c.list_collections())
        await asyncio.sleep(1.0)
        assert not task.done()
        server.spawn(port, tmp_path / "late-async.log")
        collections = await asyncio.wait_for(task, timeout=60)
    assert isinstance(collections, list)
    stop(server.extra.pop())


def test_watch_survives_a_server_restart(
    server: Server, client: lethe.Lethe, collection: str, person: Person, tmp_path: Path
) -> None:
    """A second `lethe serve` (same database) carries the watch; it is killed after the
    first event and restarted on the same port: the watch reconnects and finishes,
    without repeating an event."""
    port = free_port()
    log = tmp_path / "second.log"
    # its workers never poll during the test: the session's server runs the job
    server.env["LETHE_ERASURE__POLL_INTERVAL_MS"] = "600000"
    try:
        second = server.spawn(port, log)
        server.wait_healthy(port, second, log)
        ingest_about(client, collection, person, 2)
        job = client.erase(person.id, requested_by="dpo@example.org", wait=False)
        seen: list[lethe.ErasureEvent] = []
        with lethe.Lethe(f"http://127.0.0.1:{port}", api_key=server.ak, retries=PATIENT) as watcher:
            for ev in watcher.watch_erasure(job.job_id, timeout=120):
                seen.append(ev)
                if len(seen) == 1:
                    assert not ev.status.terminal
                    second.kill()
                    second.wait()
                    server.extra.remove(second)
                    second = server.spawn(port, log)
    finally:
        server.env["LETHE_ERASURE__POLL_INTERVAL_MS"] = "100"
    stop(server.extra.pop())
    assert seen[-1].status == lethe.JobStatus.COMPLETED
    full = list(client.watch_erasure(job.job_id))
    assert [e.seq for e in seen] == [e.seq for e in full]
    assert client.get_erasure(job.job_id).deleted == 2


def test_wait_timeout(client: lethe.Lethe, collection: str, person: Person) -> None:
    ingest_about(client, collection, person, 1)
    key = f"wait-{person.id}"
    t0 = time.monotonic()
    with pytest.raises(lethe.DeadlineExceeded) as e:
        client.erase(person.id, requested_by="dpo@example.org", idempotency_key=key, wait_timeout=0.3)
    assert time.monotonic() - t0 < 5
    assert e.value.reason == "deadline_exceeded"
    # the job itself goes on; the error names it, and replaying the request with its key finds it
    job = client.erase(person.id, requested_by="dpo@example.org", idempotency_key=key, wait=False)
    assert e.value.metadata["job_id"] == job.job_id
    assert client.wait_for_erasure(job.job_id, timeout=60).deleted == 1


def test_per_call_timeout(server: Server, client: lethe.Lethe, person: Person) -> None:
    # a peer that accepts connections and never answers: the call ends at its own
    # timeout, not the client's default of 30 s
    with socket.socket() as hole:
        hole.bind(("127.0.0.1", 0))
        hole.listen()
        with lethe.Lethe(f"http://127.0.0.1:{hole.getsockname()[1]}", api_key=server.ak, timeout=30) as c:
            t0 = time.monotonic()
            with pytest.raises(lethe.DeadlineExceeded) as e:
                c.list_collections(timeout=0.5)
            assert 0.4 < time.monotonic() - t0 < 10
            assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    # a stream from the real server, cut by its timeout while the job runs
    job = client.erase(person.id, requested_by="dpo@example.org", wait=False)
    with pytest.raises(lethe.DeadlineExceeded):
        for _ in client.watch_erasure(job.job_id, timeout=0.2):
            pass
    assert client.wait_for_erasure(job.job_id, timeout=60).status == lethe.JobStatus.COMPLETED


def test_the_servers_own_request_limit_is_a_deadline_and_a_cancel_is_not(tmp_path: Path) -> None:
    """The server cuts a call that takes longer than application.limits.request_timeout_secs:
    its gRPC library (tonic) answers CANCELLED "Timeout expired", which is a timeout to
    the caller (DeadlineExceeded, as the client's own timeout); a call the client
    cancels itself is not."""
    import subprocess

    from conftest import _psql, running_server

    from lethe.errors import from_rpc_error
    from lethe.v1 import lethe_pb2 as pb
    from lethe.v1 import lethe_pb2_grpc

    with running_server({"LETHE_APPLICATION__LIMITS__REQUEST_TIMEOUT_SECS": "1"}) as srv:
        # ListCollections reads the collections table: held locked, the call waits.
        locker = subprocess.Popen(
            [_psql(), srv.db_url, "-qAtc", "BEGIN; LOCK TABLE collections IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep(8); COMMIT;"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            held = "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation WHERE c.relname = 'collections' AND l.mode = 'AccessExclusiveLock' AND l.granted"
            deadline = time.monotonic() + 10
            while subprocess.run([_psql(), srv.db_url, "-qAtc", held], capture_output=True, text=True).stdout.strip() != "1":
                assert time.monotonic() < deadline, "the lock was not taken"
                time.sleep(0.05)
            with lethe.Lethe(srv.url, api_key=srv.sk, retries=0) as c:
                t0 = time.monotonic()
                with pytest.raises(lethe.DeadlineExceeded) as e:
                    c.list_collections(timeout=30)
                took = time.monotonic() - t0
            assert 0.8 < took < 6, took
            assert e.value.code == grpc.StatusCode.CANCELLED
            assert (e.value.reason, e.value.message) == ("deadline_exceeded", "Timeout expired")
            assert isinstance(e.value.__cause__, grpc.RpcError)

            # Cancelled by the client while the server is still at it: not a timeout.
            with grpc.insecure_channel(f"127.0.0.1:{srv.port}") as channel:
                stub = lethe_pb2_grpc.LetheStub(channel)
                call = stub.ListCollections.future(
                    pb.ListCollectionsRequest(), timeout=30, metadata=(("authorization", f"Bearer {srv.sk}"),)
                )
                time.sleep(0.2)
                assert call.cancel()
                err = from_rpc_error(call)
            assert type(err) is lethe.LetheError, err
            assert (err.code, err.reason) == (grpc.StatusCode.CANCELLED, "cancelled")
        finally:
            locker.kill()
            locker.wait()
