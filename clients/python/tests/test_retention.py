"""Retention from Python: a rule, a preview of what is past it, a sweep whose jobs
erase exactly the backdated sources, and the errors of bad rules."""

from __future__ import annotations

import uuid

import pytest
from conftest import Person, Server, _sql, ingest_about

import lethe


def test_a_sweep_erases_the_sources_past_the_rule_and_nothing_else(
    client: lethe.Lethe, auditor: lethe.Lethe, server: Server, person: Person
) -> None:
    name = f"ret_{uuid.uuid4().hex[:8]}"
    client.create_collection(name, backend="pgvector", dimension=384)
    ingest_about(client, name, person, 3)
    tag = uuid.uuid4().hex[:6]
    young = Person(id=f"young-{tag}", email=f"y{tag}@example.org", name=f"Yara Young{tag}")
    ingest_about(client, name, young, 2)
    # The person's sources were recorded 40 days ago.
    _sql(
        server.db_url,
        "UPDATE sources SET created_at = now() - interval '40 days' WHERE source_id IN ("
        "SELECT k.source_id FROM chunks k JOIN chunk_subjects cs USING (chunk_id) JOIN subjects s USING (subject_id) "
        f"WHERE s.external_id = '{person.id}')",
    )
    rule = client.set_retention(name, days=30)
    assert (rule.collection, rule.days, rule.supported) == (name, 30, True)
    assert any(r.collection == name and r.days == 30 for r in auditor.list_retention())

    [preview] = auditor.preview_retention(name)
    assert (preview.sources, preview.chunks, preview.job_ids) == (3, 3, [])
    assert auditor.count_subject(person.id).total == 3, "a preview changes nothing"

    [swept] = client.sweep_retention(name)
    assert swept.sources == 3 and swept.job_ids
    for job_id in swept.job_ids:
        assert client.wait_for_erasure(job_id, timeout=60).status == lethe.JobStatus.COMPLETED
    assert auditor.count_subject(person.id).total == 0
    assert auditor.count_subject(young.id).total == 2, "young sources are kept"
    kinds = [e.kind for e in auditor.iter_deletion_log()]
    assert "retention" in kinds


def test_bad_rules_are_refused(client: lethe.Lethe, auditor: lethe.Lethe, collection: str) -> None:
    with pytest.raises(lethe.InvalidArgument) as e:
        client.set_retention(collection, days=-1)
    assert e.value.field == "days"
    with pytest.raises(lethe.InvalidArgument):
        client.set_retention(collection, days=36_501)
    with pytest.raises(lethe.NotFound):
        client.set_retention("no-such-collection", days=5)
    with pytest.raises(lethe.RequiresSecretKey):
        auditor.sweep_retention(collection)


async def test_async_retention(server: Server, collection: str) -> None:
    async with lethe.AsyncLethe(server.url, api_key=server.sk) as c:
        rule = await c.set_retention(collection, days=0)
        assert rule.days == 0
        assert any(r.collection == collection for r in await c.list_retention())
        assert await c.preview_retention() == [] or all(s.sources == 0 for s in await c.preview_retention())
        assert await c.sweep_retention() is not None
