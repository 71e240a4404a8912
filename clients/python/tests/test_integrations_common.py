"""What the LangChain and LlamaIndex integrations share (``lethe.integrations._common``,
which imports no framework): the point ids of documents in collections Lethe created,
and which collection an integration writes and where its tags go. Against the session's
server; the frameworks themselves are exercised in tests/frameworks."""

from __future__ import annotations

import secrets
import uuid

import pytest
from conftest import Server, _sql

import lethe
from lethe.integrations._common import POINT_ID_NAMESPACE, lookup_point_ids, point_id_for, resolve, subject_ids

DIM = 3


def _collection(client: lethe.Lethe, prefix: str) -> str:
    name = f"{prefix}_{secrets.token_hex(4)}"
    client.create_collection(name, backend="pgvector", dimension=DIM)
    return name


def _point(point_id: str, source: str, person: str) -> lethe.TrackedPoint:
    return lethe.TrackedPoint(point_id=point_id, source_id=source, tags=[person], text="the same note", vector=[1.0, 0.0, 0.0])


# ----------------------------------------------------------------------- point ids


def test_a_uuid_document_id_gets_a_point_id_of_its_collection() -> None:
    doc = "2b1c3a9e-7f60-4a8e-9d0c-5e6f7a8b9c0d"
    a, b = point_id_for(doc, "docs"), point_id_for(doc, "notes")
    assert a != doc and b != doc and a != b
    assert a == "09ee7c05-c29a-54b4-9540-1733d98174e4" == str(uuid.uuid5(POINT_ID_NAMESPACE, f"docs\n{doc}"))
    # The forms of one UUID are one document id.
    assert point_id_for(uuid.UUID(doc).hex, "docs") == point_id_for(doc.upper(), "docs") == a
    assert point_id_for(uuid.UUID(doc), "docs") == a


def test_an_id_that_is_not_a_uuid_keeps_the_point_id_earlier_clients_gave_it() -> None:
    # Pinned: the value the previous client computed, so its points are found again.
    assert point_id_for("sha256:0f1e2d", "docs") == "1df650d2-3de5-54d0-baeb-1527a53584f9"


def test_lookups_try_a_uuid_as_it_is_too_and_say_which_id_each_answers_for() -> None:
    doc = "2b1c3a9e-7f60-4a8e-9d0c-5e6f7a8b9c0d"
    points, answers = lookup_point_ids([doc, "sha256:0f1e2d", uuid.UUID(doc).hex], "docs")
    # derived, as given (an earlier client's point, or a point id the retriever showed); no repeats
    assert points == [point_id_for(doc, "docs"), doc, "1df650d2-3de5-54d0-baeb-1527a53584f9"]
    assert answers == {points[0]: doc, doc: doc, points[2]: "sha256:0f1e2d"}


def test_the_same_uuid_document_goes_into_two_collections(client: lethe.Lethe) -> None:
    """Point ids are unique in a tenant: a UUID document id used as the point id in two
    collections is refused by the server; the derived ids are not."""
    first, second = _collection(client, "ids_a"), _collection(client, "ids_b")
    doc, person = str(uuid.uuid4()), f"p-{secrets.token_hex(3)}"
    for c in (first, second):
        r = client.track(c, [_point(point_id_for(doc, c), f"src-{doc}", person)])
        assert (r.accepted, r.point_ids) == (1, [point_id_for(doc, c)])
    counts = {c.collection: c.before_by_ids for c in client.count_subject(person).counts}
    assert (counts[first], counts[second]) == (1, 1)
    # What the previous client did, refused: the raw UUID in two collections.
    raw = str(uuid.uuid4())
    client.track(first, [_point(raw, f"src-{raw}", person)])
    with pytest.raises(lethe.InvalidArgument, match="already used by another collection"):
        client.track(second, [_point(raw, f"src-{raw}", person)])


def test_a_point_an_earlier_client_wrote_under_a_uuid_is_deleted_by_the_documents_id(client: lethe.Lethe) -> None:
    c = _collection(client, "ids_old")
    person = f"p-{secrets.token_hex(3)}"
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    client.track(c, [_point(old, "src-old", person)])  # as the previous client stored it
    client.track(c, [_point(point_id_for(new, c), "src-new", person)])
    for doc in (old, new):
        points, _ = lookup_point_ids([doc], c)
        r = client.delete_points(c, point_ids=points)
        assert (r.deleted, r.forgotten) == (1, 1), (doc, r)
    assert sum(x.before_total for x in client.count_subject(person).counts) == 0


# ----------------------------------------------------------------- where tags go


def test_attached_without_tag_key_is_refused_when_the_key_cannot_look_the_collection_up(
    publishable: lethe.Lethe,
) -> None:
    """A publishable key cannot read the mapping: the wrapper must be told the key the
    mapping reads, not guess it (a tag under another key escapes the erasure)."""
    with pytest.raises(ValueError, match="tag_key") as e:
        resolve(publishable, "pipeline_store", attached=True, tag_key=None)
    assert "publishable" in str(e.value)
    t = resolve(publishable, "pipeline_store", attached=True, tag_key="metadata.user_id")
    assert (t.attached, t.tag_path, t.collection) == (True, ("user_id",), None)


def test_attached_without_tag_key_is_looked_up_with_a_key_that_can(server: Server, client: lethe.Lethe) -> None:
    """A secret key reads the collection: a mapping without a preset does not say which
    metadata key the framework writes (refused); a collection Lethe created is not
    attached (refused as not as said)."""
    table = f"notes_{secrets.token_hex(4)}"
    _sql(server.db_url, f"""
        CREATE TABLE {table} (k text PRIMARY KEY, who text[], body text, emb vector(3));
        INSERT INTO {table} VALUES ('{table}-1', ARRAY['ann-{table}'], 'one', '[1,0,0]');
    """)
    mapping = lethe.AttachMapping(id="k", vector="emb", text=lethe.FieldPath(column="body"), tags=lethe.FieldPath(column="who"))
    client.attach(table, backend="pgvector", target=table, mapping=mapping, wait=True, wait_timeout=60)
    with pytest.raises(ValueError, match="without a preset: give tag_key"):
        resolve(client, table, attached=True, tag_key=None)
    with pytest.raises(ValueError, match="without a preset: give tag_key"):
        resolve(client, table, attached=None, tag_key=None)
    assert resolve(client, table, attached=True, tag_key="who").tag_path == ("who",)
    created = _collection(client, "ids_created")
    with pytest.raises(ValueError, match="created by Lethe, not as said"):
        resolve(client, created, attached=True, tag_key=None)
    with pytest.raises(ValueError, match="no collection"):
        resolve(client, f"missing_{secrets.token_hex(4)}", attached=True, tag_key=None)


# ----------------------------------------------------------------------- tag values


def test_an_integer_tag_is_the_id_the_server_reads_and_a_bad_one_is_not_echoed() -> None:
    assert subject_ids(42) == ["42"]
    assert subject_ids([42, "ann", 42, None, " "]) == ["42", "ann"]
    with pytest.raises(TypeError) as e:
        subject_ids([{"email": "ann@example.com"}])
    assert "ann@example.com" not in str(e.value)
    with pytest.raises(TypeError):
        subject_ids(True)
