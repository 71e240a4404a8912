"""Every field the service sends reaches Python: each result type against its proto
message, and the fields that say what an erasure left and why (legal holds, retention
jobs, the retention scheduler), read from real responses."""

from __future__ import annotations

import dataclasses
import secrets
import uuid
from typing import Any

import pytest
from conftest import Person, Server, _sql, ingest_about

import lethe
from lethe import _convert as cv
from lethe.v1 import lethe_pb2 as pb
from lethe.v1 import types_pb2 as tpb

# Every message the client returns (or takes) as a plain type, with that type.
RESULTS: list[tuple[Any, type[Any]]] = [
    (tpb.Collection, lethe.Collection),
    (tpb.AttachJob, lethe.AttachJob),
    (tpb.Subject, lethe.Subject),
    (tpb.CollectionCount, lethe.CollectionCount),
    (tpb.ErasureJob, lethe.ErasureJob),
    (tpb.RetentionTarget, lethe.RetentionTarget),
    (tpb.JobNote, lethe.JobNote),
    (tpb.ErasureEvent, lethe.ErasureEvent),
    (tpb.LogEntry, lethe.LogEntry),
    (tpb.SignedLogHead, lethe.SignedLogHead),
    (tpb.Certificate, lethe.Certificate),
    (tpb.ResidualEvidence, lethe.ResidualEvidence),
    (tpb.ResidualCandidate, lethe.ResidualCandidate),
    (tpb.ReindexJob, lethe.ReindexJob),
    (tpb.SourceKindRule, lethe.SourceKindRule),
    (tpb.CollectionRetention, lethe.CollectionRetention),
    (tpb.RetentionSweep, lethe.RetentionSweep),
    (pb.ExportRecord, lethe.ExportRecord),
    (pb.AttachResponse, lethe.AttachResult),
    (pb.WriteResponse, lethe.WriteResult),
    (pb.DeletePointsResponse, lethe.DeleteResult),
    (pb.CountSubjectResponse, lethe.SubjectCounts),
    (pb.ListDeletionLogResponse, lethe.DeletionLogPage),
    (pb.VerifyDeletionLogResponse, lethe.LogVerification),
    (pb.ReconcileCollection, lethe.ReconcileCollection),
    (pb.ReconcileRun, lethe.ReconcileRun),
    (pb.ImportLedgerResponse, lethe.LedgerImport),
    (pb.AttachMapping, lethe.AttachMapping),
    (pb.FieldPath, lethe.FieldPath),
    (pb.TrackedPoint, lethe.TrackedPoint),
    (pb.IngestChunk, lethe.Chunk),
]


@pytest.mark.parametrize("message, cls", RESULTS, ids=lambda x: x.__name__)
def test_every_field_of_the_proto_has_a_field_of_the_same_name(message: Any, cls: type[Any]) -> None:
    names = {f.name for f in dataclasses.fields(cls)}
    missing = [f.name for f in message.DESCRIPTOR.fields if f.name not in names]
    assert not missing, f"{cls.__name__} lacks {missing} of {message.DESCRIPTOR.full_name}"


def test_list_retention_carries_the_scheduler_fields() -> None:
    listed = cv.retention_list(
        pb.ListRetentionResponse(collections=[tpb.CollectionRetention(collection="a", days=3)], scheduler_enabled=True, interval_secs=600)
    )
    assert [c.collection for c in listed] == ["a"]
    assert (listed.scheduler_enabled, listed.interval_secs) == (True, 600)
    assert {f.name for f in pb.ListRetentionResponse.DESCRIPTOR.fields} == {"collections", "scheduler_enabled", "interval_secs"}


def test_the_new_fields_convert() -> None:
    job = cv.erasure_job(
        tpb.ErasureJob(
            job_id="j",
            counts=[tpb.CollectionCount(collection="c", withheld=2, residual_withheld=1)],
            notes=[tpb.JobNote(code="legal_hold_withheld", stage="verify", message="kept")],
            lineage_physical_status="pending",
            lineage_physical_detail="vacuum later",
            kind="retention",
            retention=tpb.RetentionTarget(collection="c", sources=4, withheld_sources=1),
        )
    )
    assert (job.counts[0].withheld, job.counts[0].residual_withheld) == (2, 1)
    assert job.notes == [lethe.JobNote(code="legal_hold_withheld", stage="verify", message="kept")]
    assert (job.lineage_physical_status, job.lineage_physical_detail, job.kind) == ("pending", "vacuum later", "retention")
    assert job.retention == lethe.RetentionTarget(collection="c", sources=4, withheld_sources=1)
    assert cv.erasure_job(tpb.ErasureJob(job_id="j")).retention is None
    assert cv.reindex_job(tpb.ReindexJob(job_id="r", orphans_dropped=3)).orphans_dropped == 3


def test_a_point_shared_with_a_subject_on_hold_is_withheld_and_the_job_says_so(client: lethe.Lethe, person: Person) -> None:
    collection = f"hold_{uuid.uuid4().hex[:8]}"
    client.create_collection(collection, backend="pgvector", dimension=384)
    held = f"held-{secrets.token_hex(3)}"
    client.put_subject(held)
    client.set_legal_hold(held, hold=True, reason="litigation 2026-7")
    try:
        chunks = [
            lethe.Chunk(source_id=f"{person.id}-shared", text="minutes shared by two people", tags=[person.id, held]),
            lethe.Chunk(source_id=f"{person.id}-own", text="a note of one person", tags=[person.id]),
        ]
        assert client.ingest(collection, chunks).accepted == 2
        job = client.erase(person.id, requested_by="dpo@example.org", reason="Art. 17", wait_timeout=60)
    finally:
        client.set_legal_hold(held, hold=False)
    assert job.status == lethe.JobStatus.COMPLETED, job
    [c] = [c for c in job.counts if c.collection == collection]
    assert (c.before_total, c.deleted, c.after_total, c.withheld) == (2, 1, 1, 1), c
    assert c.residual_withheld == 0
    assert job.kind == "subject" and job.retention is None
    assert "legal_hold_withheld" in [n.code for n in job.notes], job.notes
    assert job.lineage_physical_status, job
    # GetErasure says the same.
    again = client.get_erasure(job.job_id)
    assert (again.notes, again.counts, again.kind) == (job.notes, job.counts, job.kind)


def test_a_retention_job_is_of_kind_retention_with_its_target(
    client: lethe.Lethe, auditor: lethe.Lethe, server: Server, person: Person
) -> None:
    name = f"retk_{uuid.uuid4().hex[:8]}"
    client.create_collection(name, backend="pgvector", dimension=384)
    ingest_about(client, name, person, 2)
    _sql(
        server.db_url,
        "UPDATE sources SET created_at = now() - interval '40 days' WHERE source_id IN ("
        "SELECT k.source_id FROM chunks k JOIN collections c USING (collection_id) "
        f"WHERE c.name = '{name}')",
    )
    client.set_retention(name, days=30)
    listed = auditor.list_retention()
    assert isinstance(listed, list) and any(r.collection == name for r in listed)
    assert listed.scheduler_enabled is False, "the test server runs no scheduler (LETHE_RETENTION__ENABLED=false)"
    [swept] = client.sweep_retention(name)
    assert swept.job_ids
    for job_id in swept.job_ids:
        job = client.wait_for_erasure(job_id, timeout=60)
        assert job.status == lethe.JobStatus.COMPLETED, job
        assert job.kind == "retention" and job.subject_id == ""
        assert job.retention is not None and job.retention.collection == name, job.retention
    assert sum(client.get_erasure(j).retention.sources for j in swept.job_ids) == 2  # type: ignore[union-attr]
