"""Restore guard from Python: a table restored from a copy taken before an erasure is
reconciled, and the erasure ledger goes out and comes back in (checked)."""

from __future__ import annotations

import uuid
from typing import Any

import grpc
import pytest
from conftest import Person, Server, _sql, ingest_about

import lethe


def test_reconcile_erases_again_what_a_restored_table_brought_back(
    client: lethe.Lethe, auditor: lethe.Lethe, server: Server, person: Person
) -> None:
    name = f"rg_{uuid.uuid4().hex[:8]}"
    table = client.create_collection(name, backend="pgvector", dimension=384).backend_name
    ingest_about(client, name, person, 3)
    _sql(server.db_url, f'CREATE TABLE backup_{name} AS SELECT * FROM "{table}"')
    job = client.erase(person.id, requested_by="dpo@example.org", reason="Art. 17")
    assert job.status == lethe.JobStatus.COMPLETED
    _sql(server.db_url, f'INSERT INTO "{table}" SELECT * FROM backup_{name}')
    assert auditor.count_subject(person.id).total == 3, "the restore brought the person back"

    run = client.reconcile(requested_by="restore drill", wait_timeout=60)
    assert run.status == lethe.JobStatus.COMPLETED and not run.already_running
    [mine] = [c for c in run.collections if c.collection == name]
    assert (mine.before, mine.deleted, mine.after, mine.found_by_tag, mine.done) == (3, 3, 0, 3, True)
    assert mine.backend == lethe.Backend.PGVECTOR and mine.log_seq > 0
    assert auditor.count_subject(person.id).total == 0
    assert auditor.get_reconcile(run.run_id) == run
    entries = [e for e in auditor.iter_deletion_log() if e.kind == "reconcile" and run.run_id in e.body]
    assert len(entries) == len(run.collections)
    assert all(person.id not in e.body for e in entries), "the log names people by keyed hash only"

    with pytest.raises(lethe.RequiresSecretKey):
        auditor.reconcile()


def test_the_ledger_goes_out_and_comes_back_checked(client: lethe.Lethe, auditor: lethe.Lethe) -> None:
    ledger = client.export_ledger()
    assert ledger.startswith(b'{"t":"header"') and ledger.rstrip().splitlines()[-1].startswith(b'{"t":"end"')
    again = client.import_ledger(ledger)
    assert (again.points_added, again.tombstones_created, again.log_seq) == (0, 0, 0), "idempotent"
    assert again.subjects == again.subjects_known
    with pytest.raises(lethe.InvalidArgument):
        client.import_ledger(ledger.replace(b'"t":"header"', b'"t":"header" ', 1))
    with pytest.raises(lethe.RequiresSecretKey):
        auditor.export_ledger()


async def test_async_reconcile_and_ledger(server: Server) -> None:
    async with lethe.AsyncLethe(server.url, api_key=server.sk) as c:
        run = await c.reconcile(wait_timeout=60)
        assert run.done and run.status == lethe.JobStatus.COMPLETED
        ledger = await c.export_ledger()
        assert (await c.import_ledger(ledger)).log_seq == 0


class Deadlines(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor, grpc.StreamUnaryClientInterceptor):  # type: ignore[misc]
    """Records the deadline (seconds, or None) each rpc of a channel is sent with."""

    def __init__(self) -> None:
        self.seen: dict[str, object] = {}

    def _record(self, continuation: Any, details: Any, request: Any) -> Any:
        self.seen[details.method.rsplit("/", 1)[-1]] = details.timeout
        return continuation(details, request)

    intercept_unary_unary = intercept_unary_stream = intercept_stream_unary = _record


def test_the_ledger_streams_have_no_deadline_of_a_unary_call(server: Server) -> None:
    """The client's per-call timeout is for unary calls: a ledger as long as a tenant's
    history streams for as long as it takes, unless the call itself gives a timeout."""
    from lethe.v1 import lethe_pb2_grpc

    with lethe.Lethe(server.url, api_key=server.sk, timeout=30) as c:
        deadlines = Deadlines()
        c._stub = lethe_pb2_grpc.LetheStub(grpc.intercept_channel(c._channel, deadlines))
        c.list_collections()
        ledger = c.export_ledger()
        assert c.import_ledger(ledger).log_seq == 0
        assert deadlines.seen == {"ListCollections": 30, "ExportLedger": None, "ImportLedger": None}
        c.export_ledger(timeout=600)
        c.import_ledger(ledger, timeout=600)
        assert (deadlines.seen["ExportLedger"], deadlines.seen["ImportLedger"]) == (600, 600)
