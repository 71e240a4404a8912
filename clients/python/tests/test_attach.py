"""Attach, GetAttach, WatchAttach: the request the client builds, and a hand-made
pgvector table attached and adopted by the session's server."""

from __future__ import annotations

import secrets

import pytest

import lethe
from conftest import Server, _sql, left_to_the_loop
from lethe import _calls as calls
from lethe import _convert as cv
from lethe.v1 import lethe_pb2 as pb
from lethe.v1 import types_pb2 as tpb


def test_a_preset_attach_names_its_backend_and_sends_the_mapping_it_is_given() -> None:
    c = calls.attach(
        "lc", None, "langchain-qdrant", "docs", "metadata.user_id",
        lethe.AttachMapping(vector="dense", tags=lethe.FieldPath(path=["meta", "owner"])),
        True, "dot", "bge-small", "reject",
    )
    r = c.request
    assert c.method == "Attach"
    assert (r.name, r.preset, r.target, r.tag_key, r.create_indexes) == ("lc", "langchain-qdrant", "docs", "metadata.user_id", True)
    assert r.backend == tpb.BACKEND_QDRANT
    assert (r.distance, r.screening, r.embedding_model) == (tpb.DISTANCE_DOT, tpb.SCREENING_REJECT, "bge-small")
    assert r.mapping.vector == "dense"
    assert list(r.mapping.tags.path) == ["meta", "owner"]
    assert not r.mapping.HasField("text")
    assert calls.attach("x", None, "llamaindex-pgvector", "t", "k", None, False, None, "", None).request.backend == tpb.BACKEND_PGVECTOR
    assert not calls.attach("x", None, "llamaindex-pgvector", "t", "k", None, False, None, "", None).request.HasField("mapping")


def test_a_mapping_may_be_a_dict_and_needs_a_backend_without_a_preset() -> None:
    m = {"id": "k", "vector": "v", "text": {"column": "body"}, "tags": {"column": "meta", "path": ["a", "b"]},
         "scope": {"column": "tenant"}, "scope_value": "t1"}
    r = calls.attach("x", "pgvector", "", "t", "", m, False, None, "", None).request
    assert (r.mapping.id, r.mapping.vector, r.mapping.text.column, r.mapping.scope_value) == ("k", "v", "body", "t1")
    assert (r.mapping.tags.column, list(r.mapping.tags.path)) == ("meta", ["a", "b"])
    with pytest.raises(ValueError, match="backend"):
        calls.attach("x", None, "", "t", "", m, False, None, "", None)
    with pytest.raises(TypeError, match="sequence of keys"):
        cv.field_path(lethe.FieldPath(path="a.b"))  # type: ignore[arg-type]


def test_an_attach_job_and_response_convert() -> None:
    m = pb.AttachResponse(
        collection=tpb.Collection(name="lc", backend=tpb.BACKEND_PGVECTOR, mapping_json='{"id_column": "id"}'),
        job=tpb.AttachJob(collection="lc", status="in_progress", total=10, scanned=4, tracked=3, untagged=1),
        warnings=["CREATE INDEX …"],
        already_attached=True,
    )
    r = cv.attach_result(m)
    assert r.collection.attached and r.collection.mapping() == {"id_column": "id"}
    assert r.job is not None and (r.job.total, r.job.scanned, r.job.tracked, r.job.untagged) == (10, 4, 3, 1)
    assert not r.job.done
    assert (r.warnings, r.already_attached) == (["CREATE INDEX …"], True)
    assert cv.attach_result(pb.AttachResponse()).job is None


def _hand_made_table(server: Server) -> str:
    table = f"notes_{secrets.token_hex(4)}"
    _sql(server.db_url, f"""
        CREATE TABLE {table} (k text PRIMARY KEY, who text[], body text, emb vector(3));
        INSERT INTO {table} VALUES
          ('{table}-1', ARRAY['ann-{table}'], 'one', '[1,0,0]'),
          ('{table}-2', ARRAY['ann-{table}', 'bo-{table}'], 'two', '[0,1,0]'),
          ('{table}-3', ARRAY[]::text[], 'three', '[0,0,1]');
    """)
    return table


def _mapping() -> lethe.AttachMapping:
    return lethe.AttachMapping(id="k", vector="emb", text=lethe.FieldPath(column="body"), tags=lethe.FieldPath(column="who"))


def test_a_hand_made_table_is_attached_and_adopted(server: Server, client: lethe.Lethe) -> None:
    table = _hand_made_table(server)
    r = client.attach(table, backend="pgvector", target=table, mapping=_mapping(), wait=True, wait_timeout=60)
    assert not r.already_attached and r.collection.attached and r.collection.dimension == 3
    assert r.job is not None and r.job.status == "completed", r.job
    assert (r.job.total, r.job.tracked, r.job.untagged, r.job.subjects) == (3, 2, 1, 2)
    assert client.get_attach(table) == r.job
    watched = list(client.watch_attach(table, timeout=30))
    assert watched and watched[-1].done
    again = client.attach(table, backend="pgvector", target=table, mapping=_mapping())
    assert again.already_attached


def test_a_missing_column_is_invalid_argument_naming_it(server: Server, client: lethe.Lethe) -> None:
    table = _hand_made_table(server)
    with pytest.raises(lethe.InvalidArgument) as e:
        client.attach(table, backend="pgvector", target=table, mapping=lethe.AttachMapping(id="k", vector="emb", tags=lethe.FieldPath(column="nobody")))
    assert e.value.field.startswith("mapping.tags"), e.value
    assert table not in {c.name for c in client.list_collections()}


async def test_the_async_client_attaches_and_follows_the_adoption(server: Server) -> None:
    table = _hand_made_table(server)
    async with lethe.AsyncLethe(server.url, api_key=server.sk) as c:
        with left_to_the_loop() as left:
            r = await c.attach(table, backend="pgvector", target=table, mapping=_mapping(), wait=True, wait_timeout=60)
        assert left == [], "the wait closes the watch it leaves"
        assert r.job is not None and r.job.status == "completed", r.job
        assert (await c.get_attach(table)).tracked == 2
        assert [j async for j in c.watch_attach(table, timeout=30)][-1].done


def test_a_timestamp_mapping_is_sent_and_makes_retention_available(server: Server, client: lethe.Lethe) -> None:
    """An attached store dates its points by the mapping's ``timestamp``: retention
    takes a rule for it (and refuses one for a store attached without), and measures
    the age of each source from the store's own times."""
    r = calls.attach("x", "pgvector", "", "t", "", lethe.AttachMapping(id="k", timestamp={"column": "written"}), False, None, "", None).request
    assert r.mapping.timestamp.column == "written"
    table = f"dated_{secrets.token_hex(4)}"
    _sql(server.db_url, f"""
        CREATE TABLE {table} (k text PRIMARY KEY, who text[], body text, emb vector(3), written timestamptz);
        INSERT INTO {table} VALUES
          ('{table}-1', ARRAY['ann-{table}'], 'one', '[1,0,0]', now() - interval '40 days'),
          ('{table}-2', ARRAY['bo-{table}'], 'two', '[0,1,0]', now() - interval '50 days'),
          ('{table}-3', ARRAY['ann-{table}'], 'three', '[0,0,1]', now());
    """)
    dated = lethe.AttachMapping(
        id="k", vector="emb", text=lethe.FieldPath(column="body"), tags=lethe.FieldPath(column="who"),
        timestamp=lethe.FieldPath(column="written"),
    )
    a = client.attach(table, backend="pgvector", target=table, mapping=dated, wait=True, wait_timeout=60)
    assert a.job is not None and a.job.status == "completed", a.job
    mapping = a.collection.mapping()
    assert mapping is not None and mapping["timestamp"]["column"] == "written", mapping
    rule = client.set_retention(table, days=30)
    assert (rule.days, rule.supported) == (30, True)
    [preview] = client.preview_retention(table)
    assert (preview.sources, preview.chunks) == (2, 2), preview
    client.set_retention(table, days=0)  # nothing for the other tests' sweeps

    undated = _hand_made_table(server)
    client.attach(undated, backend="pgvector", target=undated, mapping=_mapping(), wait=True, wait_timeout=60)
    with pytest.raises(lethe.LetheError) as e:
        client.set_retention(undated, days=30)
    assert e.value.reason == "retention_needs_timestamp", e.value
