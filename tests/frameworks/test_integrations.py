"""The LangChain and LlamaIndex integrations (``lethe.integrations``, issue 14): a
pipeline written with the framework's own ingestion code indexes six documents
naming three people, through Lethe's wrapper of its store; one person is erased with
the client; the framework's own retriever then finds none of her chunks and every
other chunk, and Lethe's counts and lineage agree with the store.

Per framework, backend and kind of collection (see ``pipelines.py``): LangChain on
pgvector and Qdrant, attached and Lethe-created; LlamaIndex on pgvector attached and
on Qdrant attached and Lethe-created (LlamaIndex cannot read a pgvector table Lethe
created: tested as a clear refusal). And LangChain's ``index()`` run again with changed
documents (``cleanup="incremental"``): lineage stays equal to the store.
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any, Iterator, Optional

import psycopg
import pytest

import lethe
from conftest import QDRANT_URL
from embed import DIM, HashEmbedding, HashEmbeddings
from pipelines import (
    ALL,
    Chunk,
    Context,
    LangChainPgvectorAttached,
    LangChainPgvectorCreated,
    LangChainQdrantAttached,
    LangChainQdrantCreated,
    LlamaIndexPgvectorAttached,
    LlamaIndexQdrantAttached,
    LlamaIndexQdrantCreated,
    Pipeline,
    Source,
    fresh_people,
    lc_chunks,
    lc_split,
    li_chunks,
    li_documents,
    li_splitter,
    people_of,
    sources,
)
from stores import People, qdrant_client, uniq

ERASURE_TIMEOUT = 180.0


@pytest.fixture(scope="session")
def ctx(server: Any, client: lethe.Lethe, cleanup: list[Any]) -> Iterator[Context]:
    with lethe.Lethe(server.url, api_key=server.pk, timeout=60) as publishable:
        c = Context(server=server, client=client, publishable=publishable, qdrant_url=QDRANT_URL)
        yield c
        cleanup.extend(c.cleanup)


def _skip_without_qdrant(cls: type[Pipeline], qdrant_problem: Optional[str]) -> None:
    if cls.backend == "qdrant" and qdrant_problem:
        pytest.skip(qdrant_problem)


def lineage_rows(ctx: Context, collection: str) -> list[str]:
    """Lethe's lineage of the collection: its chunks' ids (the points' keys)."""
    with psycopg.connect(ctx.server.db_url) as db:
        rows = db.execute(
            "SELECT c.chunk_id::text FROM chunks c JOIN collections k USING (collection_id) WHERE k.name = %s",
            (collection,),
        ).fetchall()
    return [r[0] for r in rows]


def lineage_point_ids(ctx: Context, collection: str) -> set[str]:
    """The store's own ids of the points lineage names: a key of a text id that is not
    a UUID maps back through ``attached_point_ids``; UUIDs are themselves."""
    with psycopg.connect(ctx.server.db_url) as db:
        rows = db.execute(
            "SELECT COALESCE(a.native_id, c.chunk_id::text) FROM chunks c JOIN collections k USING (collection_id)"
            " LEFT JOIN attached_point_ids a ON a.collection_id = c.collection_id AND a.point_key = c.chunk_id"
            " WHERE k.name = %s",
            (collection,),
        ).fetchall()
    return {norm(r[0]) for r in rows}


def norm(point_id: str) -> str:
    """A UUID in its hyphenated form (LangChain's Qdrant store writes hex), the key of an
    integer id (a marker, the collection, the id) as the integer; anything else as it is."""
    try:
        u = uuid.UUID(point_id)
    except ValueError:
        return point_id
    if u.bytes[:4] == b"lt#n":
        return str(int.from_bytes(u.bytes[8:], "big", signed=True))
    return str(u)


def lineage_tags(ctx: Context, collection: str, person: str) -> int:
    """Chunks of the collection that lineage tags with the person."""
    with psycopg.connect(ctx.server.db_url) as db:
        row = db.execute(
            "SELECT count(*) FROM chunk_subjects cs JOIN subjects s USING (subject_id)"
            " JOIN collections k ON k.collection_id = cs.collection_id WHERE k.name = %s AND s.external_id = %s",
            (collection, person),
        ).fetchone()
    assert row is not None
    return int(row[0])


def count_in(counts: list[lethe.CollectionCount], collection: str) -> lethe.CollectionCount:
    mine = [c for c in counts if c.collection == collection]
    assert len(mine) == 1, f"no count for {collection} in {counts}"
    return mine[0]


def naming(chunks: list[Chunk], person: str) -> list[Chunk]:
    return [c for c in chunks if person in c.people]


@dataclasses.dataclass
class Erased:
    """A pipeline after: indexing the corpus, counting, erasing alice."""

    pipeline: Pipeline
    people: People
    names: dict[str, str]
    docs: list[Source]
    chunks: list[Chunk]
    before: dict[str, lethe.CollectionCount]
    lineage_before: int
    job: lethe.ErasureJob
    after: dict[str, lethe.CollectionCount]

    @property
    def others(self) -> set[str]:
        """Every text that does not name alice (the seed of an attached store too)."""
        return {c.text for c in self.chunks if self.people.alice not in c.people} | set(self.pipeline.extra_texts)

    @property
    def hers(self) -> set[str]:
        return {c.text for c in naming(self.chunks, self.people.alice)}

    @property
    def everything(self) -> int:
        return len(self.chunks) + len(self.pipeline.extra_texts)


@pytest.fixture(scope="module", params=ALL, ids=lambda c: f"{c.framework}-{c.backend}-{c.kind}")
def erased(request: Any, ctx: Context, qdrant_problem: Optional[str]) -> Erased:
    cls: type[Pipeline] = request.param
    _skip_without_qdrant(cls, qdrant_problem)
    people, names = fresh_people()
    pipeline = cls(ctx)
    docs = sources(people, names)
    chunks = pipeline.index(docs)
    # The framework's splitter made more than one chunk of some documents (else the
    # test would not be about chunks), and every chunk text is its own.
    assert len(chunks) > len(docs), chunks
    assert len({c.text for c in chunks}) == len(chunks)
    everyone = (people.alice, people.bob, people.carol)
    before = {who: count_in(ctx.client.count_subject(who).counts, pipeline.name) for who in everyone}
    lineage_before = len(lineage_rows(ctx, pipeline.name))
    job = ctx.client.erase(
        people.alice, requested_by="tests/frameworks", reason="issue 14 integration test", wait_timeout=ERASURE_TIMEOUT
    )
    after = {who: count_in(ctx.client.count_subject(who).counts, pipeline.name) for who in everyone}
    return Erased(pipeline, people, names, docs, chunks, before, lineage_before, job, after)


def test_lethe_counts_every_chunk_the_framework_wrote_with_its_subjects(erased: Erased) -> None:
    """Tags (in the store: the tag filter) and lineage (Track) agree with the corpus."""
    p = erased.people
    for who in (p.alice, p.bob, p.carol):
        n = len(naming(erased.chunks, who))
        c = erased.before[who]
        assert (c.before_by_tag, c.before_by_ids, c.before_total) == (n, n, n), f"{who}: {c}"
    # Lineage holds every chunk (and the seed the framework wrote before attaching).
    assert erased.lineage_before == erased.everything


def test_the_erasure_completes_with_counts_equal_to_the_corpus(erased: Erased) -> None:
    job = erased.job
    assert job.status == lethe.JobStatus.COMPLETED, job
    c = count_in(job.counts, erased.pipeline.name)
    n = len(naming(erased.chunks, erased.people.alice))
    assert (c.before_total, c.deleted, c.after_total) == (n, n, 0), c


def test_the_frameworks_retriever_returns_none_of_her_chunks_and_every_other(erased: Erased) -> None:
    k = erased.everything + 10
    for text in sorted(erased.hers):
        found = set(erased.pipeline.search(text, k=k))
        assert not found & erased.hers, f"searching {text!r} still finds {sorted(found & erased.hers)}"
        assert erased.others <= found, f"searching {text!r} misses {sorted(erased.others - found)}"
    assert len(found) == erased.everything - len(erased.hers)


def test_other_people_keep_their_chunks_and_lineage_follows(erased: Erased) -> None:
    p = erased.people
    assert erased.after[p.alice].before_total == 0
    for who in (p.bob, p.carol):
        left = len([c for c in naming(erased.chunks, who) if p.alice not in c.people])
        assert erased.after[who].before_total == left, f"{who}: {erased.after[who]}"
    ctx = erased.pipeline.ctx
    assert len(lineage_rows(ctx, erased.pipeline.name)) == erased.everything - len(erased.hers)


def test_the_pipeline_keeps_working_and_her_new_chunks_are_suppressed(erased: Erased) -> None:
    """After the erasure the pipeline indexes a document of bob's and one of alice's:
    bob's is found, alice's is never retrievable (not written, or deleted by Lethe)."""
    p, names = erased.people, erased.names
    late = [
        Source("late-bob", (p.bob,), (f"{names[p.bob]} booked the theatre lighting inventory for the spring.",)),
        Source("late-alice", (p.alice,), (f"{names[p.alice]} renewed the parking permit renewals online.",)),
    ]
    pipeline = erased.pipeline
    chunks = pipeline.index(late)
    k = erased.everything + 10
    bob_text = next(c.text for c in chunks if c.source == "late-bob")
    alice_text = next(c.text for c in chunks if c.source == "late-alice")
    found = pipeline.search(bob_text, k=k)
    assert bob_text in found
    assert alice_text not in pipeline.search(alice_text, k=k)
    assert count_in(pipeline.ctx.client.count_subject(p.alice).counts, pipeline.name).before_total == 0


# ------------------------------------------------------------ index() with cleanup


def _index_twice(cls: type[Pipeline], ctx: Context) -> tuple[Any, People, list[Chunk], list[Chunk], dict[str, int]]:
    people, names = fresh_people()
    pipeline: Any = cls(ctx)
    v1 = pipeline.index(sources(people, names, version=1))
    first = pipeline.last_index
    assert first is not None and first["num_added"] == len(v1), first
    v2 = pipeline.index(sources(people, names, version=2))
    second = pipeline.last_index
    assert second is not None
    return pipeline, people, v1, v2, second


@pytest.mark.parametrize("cls", [LangChainPgvectorAttached, LangChainQdrantCreated], ids=lambda c: f"{c.backend}-{c.kind}")
def test_index_with_incremental_cleanup_keeps_lineage_equal_to_the_store(
    cls: type[Pipeline], ctx: Context, qdrant_problem: Optional[str]
) -> None:
    _skip_without_qdrant(cls, qdrant_problem)
    pipeline, people, v1, v2, second = _index_twice(cls, ctx)
    changed = {"doc-alice-bob", "doc-carol"}
    old = [c for c in v1 if c.source in changed]
    new = [c for c in v2 if c.source in changed]
    assert (second["num_added"], second["num_deleted"], second["num_skipped"]) == (
        len(new),
        len(old),
        len(v2) - len(new),
    ), second

    # The store holds v2 (and the seed); Lethe's lineage names exactly its points.
    store = {norm(i) for i in pipeline.store_ids()}
    assert len(store) == len(v2) + len(pipeline.extra_texts)
    assert lineage_point_ids(ctx, pipeline.name) == store
    # Tags follow: alice left doc-alice-bob.
    for who in (people.alice, people.bob, people.carol):
        n = len(naming(v2, who))
        c = count_in(ctx.client.count_subject(who).counts, pipeline.name)
        assert (c.before_by_tag, c.before_by_ids) == (n, n), f"{who}: {c}"
        assert lineage_tags(ctx, pipeline.name, who) == n, who

    job = ctx.client.erase(people.alice, requested_by="tests/frameworks", wait_timeout=ERASURE_TIMEOUT)
    assert job.status == lethe.JobStatus.COMPLETED, job
    c = count_in(job.counts, pipeline.name)
    hers = naming(v2, people.alice)
    assert (c.before_total, c.deleted, c.after_total) == (len(hers), len(hers), 0), c
    k = len(v2) + 10
    others = {x.text for x in v2 if people.alice not in x.people}
    found = set(pipeline.search(hers[0].text, k=k))
    assert not found & {x.text for x in hers}
    assert others <= found


@pytest.mark.parametrize("cls", [LlamaIndexPgvectorAttached, LlamaIndexQdrantCreated], ids=lambda c: f"{c.backend}-{c.kind}")
def test_ingestion_pipeline_upserts_keep_lineage_equal_to_the_store(
    cls: type[Pipeline], ctx: Context, qdrant_problem: Optional[str]
) -> None:
    """An IngestionPipeline with a docstore deletes a changed document from the vector
    store by ref_doc_id and writes it again: Lethe's lineage follows."""
    _skip_without_qdrant(cls, qdrant_problem)
    people, names = fresh_people()
    pipeline: Any = cls(ctx)
    pipeline.index(sources(people, names, version=1))
    rewritten = pipeline.index(sources(people, names, version=2))
    assert {c.source for c in rewritten} == {"doc-alice-bob", "doc-carol"}, rewritten
    v2 = li_chunks(li_splitter().get_nodes_from_documents(li_documents(sources(people, names, version=2))), sources(people, names, version=2))
    store = {norm(i) for i in pipeline.store_ids()}
    assert len(store) == len(v2) + len(pipeline.extra_texts)
    assert lineage_point_ids(ctx, pipeline.name) == store
    for who in (people.alice, people.bob, people.carol):
        n = len(naming(v2, who))
        c = count_in(ctx.client.count_subject(who).counts, pipeline.name)
        assert (c.before_by_tag, c.before_by_ids) == (n, n), f"{who}: {c}"
        assert lineage_tags(ctx, pipeline.name, who) == n, who
    assert {t for t in pipeline.search(v2[0].text, k=len(v2) + 10)} == {c.text for c in v2} | set(pipeline.extra_texts)


# ------------------------------------------------------------------- what is refused


def test_llamaindex_refuses_a_pgvector_collection_lethe_created_and_says_why(ctx: Context) -> None:
    from lethe.integrations.llamaindex import LetheVectorStore, collection_store

    name = f"li_pg_cr_{People.fresh().alice.split('-')[1]}"
    collection = ctx.client.create_collection(name, backend="pgvector", dimension=16)
    with pytest.raises(ValueError, match="attach"):
        collection_store(ctx.client, collection, qdrant_client=None)
    from llama_index.core.vector_stores import SimpleVectorStore

    with pytest.raises(ValueError, match="llamaindex-pgvector"):
        LetheVectorStore(SimpleVectorStore(), client=ctx.client, collection=name, subjects="people")


def test_a_publishable_key_must_say_what_it_cannot_look_up(ctx: Context) -> None:
    from langchain_core.vectorstores import InMemoryVectorStore

    from embed import HashEmbeddings
    from lethe.integrations.langchain import LetheVectorStore

    name = f"lc_pk_{People.fresh().alice.split('-')[1]}"
    ctx.client.create_collection(name, backend="pgvector", dimension=16)
    with pytest.raises(ValueError, match="secret or auditor key"):
        LetheVectorStore(InMemoryVectorStore(HashEmbeddings()), client=ctx.publishable, collection=name, subjects="people")


def test_the_subject_tagger_keeps_tags_out_of_the_embedded_text() -> None:
    from llama_index.core.schema import MetadataMode, TextNode

    from lethe.integrations.llamaindex import SubjectTagger

    node = TextNode(text="minutes of the meeting", metadata={"people": ["alice-x", "bob-x"], "topic": "harbour"})
    before = node.get_content(metadata_mode=MetadataMode.EMBED)
    [tagged] = SubjectTagger("people", tag_key="user_id")([node])
    assert tagged.metadata["user_id"] == ["alice-x", "bob-x"]
    assert tagged.get_content(metadata_mode=MetadataMode.EMBED).count("alice-x") == before.count("alice-x")
    assert "user_id" not in tagged.get_content(metadata_mode=MetadataMode.EMBED)
    assert "user_id" not in tagged.get_content(metadata_mode=MetadataMode.LLM)


# ------------------------------------------------------------- tag_key as Attach takes it

ATTACHED = [LangChainPgvectorAttached, LangChainQdrantAttached, LlamaIndexPgvectorAttached, LlamaIndexQdrantAttached]


def _wrap(pipeline: Pipeline, client: lethe.Lethe, **kwargs: Any) -> Any:
    """The framework's wrapper of the pipeline's store."""
    if pipeline.framework == "langchain":
        from lethe.integrations.langchain import LetheVectorStore

        return LetheVectorStore(pipeline.reader, client=client, collection=pipeline.name, subjects="people", **kwargs)
    from lethe.integrations.llamaindex import LetheVectorStore as LlamaStore

    return LlamaStore(pipeline.reader, client=client, collection=pipeline.name, subjects=people_of, **kwargs)


def _add_through(pipeline: Pipeline, store: Any, docs: list[Source]) -> list[Chunk]:
    """The documents split by the framework and written through ``store``."""
    if pipeline.framework == "langchain":
        split = lc_split(docs)
        store.add_documents(split)
        return lc_chunks(split, docs)
    from llama_index.core import StorageContext, VectorStoreIndex

    nodes = li_splitter().get_nodes_from_documents(li_documents(docs))
    VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=HashEmbedding())
    return li_chunks(nodes, docs)


@pytest.mark.parametrize("cls", ATTACHED, ids=lambda c: f"{c.framework}-{c.backend}")
def test_a_tag_key_with_the_metadata_prefix_tags_where_the_mapping_reads_and_the_person_is_erased(
    cls: type[Pipeline], ctx: Context, qdrant_problem: Optional[str]
) -> None:
    """``tag_key="metadata.user_id"``, as Attach takes it (and the README writes it), with
    the pipeline's publishable key (it cannot look the mapping up): the ids go to the
    metadata key ``user_id`` that the mapping reads, so the erasure finds every chunk
    of the person in the framework's own store and leaves none of them there."""
    _skip_without_qdrant(cls, qdrant_problem)
    pipeline: Any = cls(ctx)  # attached with tag_key "user_id": the same key to the server
    store = _wrap(pipeline, ctx.publishable, attached=True, tag_key="metadata.user_id")
    people, names = fresh_people()
    chunks = _add_through(pipeline, store, sources(people, names))
    hers = {c.text for c in naming(chunks, people.alice)}
    n = len(hers)
    everything = len(chunks) + len(pipeline.extra_texts)
    assert n > 0
    assert len(set(pipeline.search(next(iter(hers)), k=everything + 10))) == everything, "the framework wrote it all"
    counted = count_in(ctx.client.count_subject(people.alice).counts, pipeline.name)
    assert (counted.before_by_tag, counted.before_total) == (n, n), counted

    job = ctx.client.erase(people.alice, requested_by="tests/frameworks", reason="tag_key", wait_timeout=ERASURE_TIMEOUT)
    assert job.status == lethe.JobStatus.COMPLETED, job
    c = count_in(job.counts, pipeline.name)
    assert (c.before_total, c.deleted, c.after_total) == (n, n, 0), c
    claims = lethe.verify_certificate(ctx.client.get_certificate(job.job_id), ctx.server.public_key)
    [certified] = [x for x in claims["collections"] if x["collection"] == pipeline.name]
    assert (certified["before_total"], certified["deleted"], certified["after_total"]) == (n, n, 0), certified
    # The framework's own store, read back whole with its own retriever: none of hers.
    left = pipeline.search(next(iter(hers)), k=everything + 10)
    assert not set(left) & hers, sorted(set(left) & hers)
    assert len(left) == everything - n
    # With the secret key the mapping is known: the same key is taken, another refused.
    assert _wrap(pipeline, ctx.client, tag_key="metadata.user_id")
    with pytest.raises(ValueError, match="user_id"):
        _wrap(pipeline, ctx.client, tag_key="metadata.owner_id")


def test_the_subject_taggers_read_tag_key_as_attach_does() -> None:
    from langchain_core.documents import Document
    from llama_index.core.schema import TextNode

    from lethe.integrations.langchain import SubjectTagger as LangChainTagger
    from lethe.integrations.llamaindex import SubjectTagger as LlamaTagger

    [doc] = LangChainTagger("people", tag_key="metadata.user_id").transform_documents(
        [Document(page_content="minutes", metadata={"people": ["ann-x", "bo-x"]})]
    )
    assert doc.metadata == {"people": ["ann-x", "bo-x"], "user_id": ["ann-x", "bo-x"]}
    [node] = LlamaTagger("people", tag_key="metadata.owner.id")([TextNode(text="minutes", metadata={"people": "ann-x"})])
    assert node.metadata == {"people": "ann-x", "owner": {"id": ["ann-x"]}}
    for wrong in ("metadata.", "a..b", " "):
        with pytest.raises(ValueError, match="tag_key"):
            LangChainTagger("people", tag_key=wrong)
        with pytest.raises(ValueError, match="tag_key"):
            LlamaTagger("people", tag_key=wrong)


# ------------------------------------------------------------------ LlamaIndex add() ids


@pytest.mark.parametrize("cls", [LlamaIndexPgvectorAttached, LlamaIndexQdrantCreated], ids=lambda c: f"{c.backend}-{c.kind}")
def test_llamaindex_add_returns_one_id_per_node_in_order_when_a_node_is_suppressed(
    cls: type[Pipeline], ctx: Context, qdrant_problem: Optional[str]
) -> None:
    """LlamaIndex pairs the nodes it adds with the ids ``add`` returns (``zip``): one per
    node, in order, as its own stores return, even when a node names an erased person
    and is not kept."""
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    from embed import embed

    _skip_without_qdrant(cls, qdrant_problem)
    pipeline: Any = cls(ctx)
    people, names = fresh_people()
    erased = ctx.client.erase(people.alice, requested_by="tests/frameworks", identifiers=[names[people.alice]])
    assert erased.status == lethe.JobStatus.COMPLETED, erased

    def nodes(run: str) -> list[Any]:
        out = []
        for who in (people.bob, people.alice, people.carol):
            text = f"{run}: {names[who]} signed the {run} orchard ledger."
            n = TextNode(
                text=text, metadata={"people": who}, relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=f"{run}-{who}")}
            )
            n.embedding = embed(text)
            out.append(n)
        return out

    first = nodes("first")
    assert pipeline.store.add(first) == [n.node_id for n in first]
    assert pipeline.store.last_write == [first[0].node_id, first[2].node_id]
    # An index that keeps its nodes records each under its own id.
    second = nodes("second")
    index = VectorStoreIndex(
        second,
        storage_context=StorageContext.from_defaults(vector_store=pipeline.store),
        embed_model=HashEmbedding(),
        store_nodes_override=True,
    )
    assert index.index_struct.nodes_dict == {n.node_id: n.node_id for n in second}
    found = set(pipeline.search("orchard ledger", k=50))
    assert {n.text for n in first + second if names[people.alice] not in n.text} <= found
    assert not {n.text for n in first + second if names[people.alice] in n.text} & found


# ------------------------------------------------------------- Track below the message limit


def test_large_documents_are_tracked_in_requests_below_the_servers_message_limit(
    ctx: Context, qdrant_problem: Optional[str]
) -> None:
    """Documents of 32,000 bytes with vectors of 4,096 dimensions: 100 of them (as many
    points as one Track with vectors takes) would be a 4.8 MiB request, over the 4 MiB
    the server takes here; the wrapper sends them in smaller batches."""
    if qdrant_problem:
        pytest.skip(qdrant_problem)
    from langchain_core.documents import Document

    from conftest import MAX_MESSAGE_BYTES
    from lethe.integrations.langchain import LetheVectorStore

    dim, count, size = 4096, 120, 32_000
    assert 100 * (size + 4 * dim) > MAX_MESSAGE_BYTES
    qc = qdrant_client(ctx.qdrant_url)
    ctx.cleanup.append(qc.close)
    collection = ctx.client.create_collection(uniq("lc_big"), backend="qdrant", dimension=dim)
    store = LetheVectorStore.from_collection(ctx.client, collection, HashEmbeddings(dim), subjects="people", qdrant_client=qc)
    people, _ = fresh_people()

    def text(i: int) -> str:
        words = " ".join(f"w{i}x{j}" for j in range(size // 8))
        return f"Record {i} {words}"[:size]

    docs = [
        Document(page_content=text(i), metadata={"people": people.alice if i % 2 else people.bob, "source": f"big-{i}"})
        for i in range(count)
    ]
    ids = store.add_documents(docs)
    assert len(ids) == count == len(store.last_write)
    assert qc.count(collection.backend_name, exact=True).count == count
    for who in (people.alice, people.bob):
        c = count_in(ctx.client.count_subject(who).counts, collection.name)
        assert (c.before_by_tag, c.before_by_ids) == (count // 2, count // 2), c


# ------------------------------------------------------------------ the clients they make


def test_the_wrappers_close_the_client_they_made_and_not_one_given(ctx: Context, monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from langchain_core.vectorstores import InMemoryVectorStore
    from llama_index.core.vector_stores import SimpleVectorStore

    from lethe.integrations.langchain import LetheVectorStore
    from lethe.integrations.llamaindex import LetheVectorStore as LlamaStore

    monkeypatch.setenv("LETHE_URL", ctx.server.url)
    monkeypatch.setenv("LETHE_API_KEY", ctx.server.sk)
    name = uniq("lc_own")
    ctx.client.create_collection(name, backend="pgvector", dimension=DIM)

    def closed(client: lethe.Lethe) -> bool:
        try:
            client.list_collections()
        except ValueError:  # grpc: "Cannot invoke RPC on closed channel!"
            return True
        return False

    with LetheVectorStore(InMemoryVectorStore(HashEmbeddings()), collection=name, subjects="people") as made:
        assert not closed(made.client)
    assert closed(made.client)
    llama = LlamaStore(SimpleVectorStore(), collection="li_own", attached=True, tag_key="user_id")
    owned = llama._client
    assert not closed(owned)
    llama.close()
    assert closed(owned)
    # Dropped without close(): closed with the store.
    dropped = LetheVectorStore(InMemoryVectorStore(HashEmbeddings()), collection=name, subjects="people")
    owned = dropped.client
    del dropped
    gc.collect()
    assert closed(owned)
    # A client given is the caller's: left open.
    LetheVectorStore(InMemoryVectorStore(HashEmbeddings()), client=ctx.client, collection=name, subjects="people").close()
    LlamaStore(SimpleVectorStore(), client=ctx.client, collection="li_own", attached=True, tag_key="user_id").close()
    assert not closed(ctx.client)


# ---------------------------------------------- point ids in collections Lethe created


def created_point_ids(ctx: Context, pipeline: Any) -> set[str]:
    """The point ids in the pgvector table of a collection Lethe created."""
    table = pipeline.store.target.collection.backend_name
    with psycopg.connect(ctx.server.db_url) as db:
        rows = db.execute(f'SELECT point_id::text FROM "{table}"').fetchall()
    return {r[0] for r in rows}


@pytest.mark.filterwarnings("ignore:Using SHA-1:UserWarning")  # the default key encoder, on purpose
def test_index_with_its_default_key_encoder_puts_the_same_documents_into_two_collections(ctx: Context) -> None:
    """``index()``'s default key encoder gives a document a UUIDv5 of its content: the
    same id in every collection. Point ids are unique in a tenant, so the wrapper stores
    it under an id of its own per collection; get, delete and ``index()`` cleanup find
    the points by the document ids in each."""
    from langchain_core.indexing import index

    people, names = fresh_people()
    docs = sources(people, names)
    split = lc_split(docs)
    chunks = lc_chunks(split, docs)
    first, second = LangChainPgvectorCreated(ctx), LangChainPgvectorCreated(ctx)
    for p in (first, second):
        r = index(split, p.record_manager, p.store, cleanup="incremental", source_id_key="source")
        assert (r["num_added"], r["num_skipped"]) == (len(split), 0), r
    keys = set(first.record_manager.list_keys())
    assert keys == set(second.record_manager.list_keys()) and len(keys) == len(split)
    assert all(uuid.UUID(k) for k in keys)
    stored = {}
    for p in (first, second):
        store = created_point_ids(ctx, p)
        assert len(store) == len(split) and not store & keys, "stored under ids of the collection"
        assert lineage_point_ids(ctx, p.name) == store
        stored[p.name] = store
        got = p.store.get_by_ids(sorted(keys))
        assert {d.id for d in got} == keys, "returned with the ids asked for"
        assert sorted(d.page_content for d in got) == sorted(c.page_content for c in split)
    assert not stored[first.name] & stored[second.name]
    for who in (people.alice, people.bob, people.carol):
        n = len(naming(chunks, who))
        counts = ctx.client.count_subject(who).counts
        for p in (first, second):
            c = count_in(counts, p.name)
            assert (c.before_by_tag, c.before_by_ids) == (n, n), f"{who} in {p.name}: {c}"

    # Changed documents: index() deletes the old ones by their ids, in each collection.
    v2_docs = sources(people, names, version=2)
    v2 = lc_split(v2_docs)
    changed = {"doc-alice-bob", "doc-carol"}
    old = [c for c in split if c.metadata["source"] in changed]
    new = [c for c in v2 if c.metadata["source"] in changed]
    for p in (first, second):
        r = index(v2, p.record_manager, p.store, cleanup="incremental", source_id_key="source")
        assert (r["num_added"], r["num_deleted"]) == (len(new), len(old)), r
        store = created_point_ids(ctx, p)
        assert len(store) == len(v2)
        assert lineage_point_ids(ctx, p.name) == store
        c = count_in(ctx.client.count_subject(people.alice).counts, p.name)
        assert c.before_total == len(naming(lc_chunks(v2, v2_docs), people.alice)), c

    # A document the framework's retriever returns carries its point id: deleting by it works.
    [found] = first.reader.similarity_search(v2[0].page_content, k=1)
    assert found.id in created_point_ids(ctx, first)
    # One id as a str, not a list: refused (its characters would be ids), nothing deleted.
    before = created_point_ids(ctx, first)
    with pytest.raises(TypeError):
        first.store.delete(found.id)  # type: ignore[arg-type]
    assert created_point_ids(ctx, first) == before
    first.store.delete([found.id])
    assert first.store.last_delete is not None and first.store.last_delete.deleted == 1
    assert found.id not in created_point_ids(ctx, first)


def test_a_point_an_earlier_client_wrote_under_its_uuid_is_found_and_deleted_by_that_id(ctx: Context) -> None:
    """The previous client stored a document whose id is a UUID under that UUID: the
    wrapper still gets and deletes it by the document's id. (A guard of that decision:
    the previous client passed it too.)"""
    pipeline = LangChainPgvectorCreated(ctx)
    people, _ = fresh_people()
    legacy = str(uuid.uuid4())
    text = f"An old note about the ferry timetable {people.alice}."
    ctx.client.track(
        pipeline.name,
        [lethe.TrackedPoint(point_id=legacy, source_id="old-note", tags=[people.alice], text=text, vector=HashEmbeddings().embed_query(text))],
    )
    assert created_point_ids(ctx, pipeline) == {legacy}
    [doc] = pipeline.store.get_by_ids([legacy])
    assert (doc.id, doc.page_content) == (legacy, text)
    pipeline.store.delete([legacy])
    assert pipeline.store.last_delete is not None
    assert (pipeline.store.last_delete.deleted, pipeline.store.last_delete.forgotten) == (1, 1)
    assert created_point_ids(ctx, pipeline) == set()
    assert count_in(ctx.client.count_subject(people.alice).counts, pipeline.name).before_total == 0

    # A document written without an id: its fresh UUID is its point id, so the id
    # add_documents returns is the one the framework's retriever shows.
    from langchain_core.documents import Document

    text = f"A new note about the bridge repairs {people.bob}."
    [new_id] = pipeline.store.add_documents([Document(page_content=text, metadata={"people": people.bob, "source": "new-note"})])
    assert created_point_ids(ctx, pipeline) == {new_id}
    [found] = pipeline.reader.similarity_search(text, k=1)
    assert found.id == new_id
    [doc] = pipeline.store.get_by_ids([new_id])
    assert (doc.id, doc.page_content) == (new_id, text)
    pipeline.store.delete([new_id])
    assert pipeline.store.last_delete is not None and pipeline.store.last_delete.deleted == 1
    assert created_point_ids(ctx, pipeline) == set()


def test_the_same_llamaindex_nodes_go_into_two_collections_lethe_created(ctx: Context, qdrant_problem: Optional[str]) -> None:
    """A node keeps its id in every store it is added to: in two collections Lethe
    created it gets a point id of each; get_nodes and delete_nodes find it by node id
    (and by the point id a query returns)."""
    from llama_index.core.vector_stores import VectorStoreQuery

    from embed import embed

    if qdrant_problem:
        pytest.skip(qdrant_problem)
    people, names = fresh_people()
    docs = sources(people, names)
    nodes = li_splitter().get_nodes_from_documents(li_documents(docs))
    for n in nodes:
        n.embedding = embed(n.get_content())
    ids = [n.node_id for n in nodes]
    first, second = LlamaIndexQdrantCreated(ctx), LlamaIndexQdrantCreated(ctx)
    for p in (first, second):
        assert p.store.add(nodes) == ids
        assert p.store.last_write == ids
    stored = {p.name: {norm(i) for i in p.store_ids()} for p in (first, second)}
    for p in (first, second):
        store = stored[p.name]
        assert len(store) == len(nodes) and not store & set(ids)
        assert lineage_point_ids(ctx, p.name) == store
        got = p.store.get_nodes(node_ids=ids)
        assert sorted(n.node_id for n in got) == sorted(ids)
        assert sorted(n.get_content() for n in got) == sorted(n.get_content() for n in nodes)
    assert not stored[first.name] & stored[second.name]
    hers = naming(li_chunks(nodes, docs), people.alice)
    assert hers
    for p in (first, second):
        c = count_in(ctx.client.count_subject(people.alice).counts, p.name)
        assert (c.before_by_tag, c.before_by_ids) == (len(hers), len(hers)), c

    half = ids[: len(ids) // 2]
    with pytest.raises(TypeError):
        first.store.delete_nodes(node_ids=half[0])  # type: ignore[arg-type]
    assert len(first.store_ids()) == len(ids), "a str of one id deletes nothing"
    first.store.delete_nodes(node_ids=half)
    assert first.store.last_delete is not None and first.store.last_delete.deleted == len(half)
    assert len(first.store_ids()) == len(ids) - len(half)
    assert lineage_point_ids(ctx, first.name) == {norm(i) for i in first.store_ids()}
    assert len(second.store_ids()) == len(ids), "the other collection keeps its points"
    # A query returns point ids: they delete too.
    result = second.store.query(VectorStoreQuery(query_embedding=nodes[0].embedding, similarity_top_k=1))
    assert result.ids and result.ids[0] in {str(i) for i in second.store_ids()}
    second.store.delete_nodes(node_ids=[result.ids[0]])
    assert second.store.last_delete is not None and second.store.last_delete.deleted == 1


# ------------------------------------------- attached=True without tag_key: no guessing


@pytest.mark.parametrize("cls", [LangChainPgvectorAttached, LlamaIndexQdrantAttached], ids=lambda c: f"{c.framework}-{c.backend}")
def test_attached_without_tag_key_is_refused_unless_the_key_can_read_the_mapping(
    cls: type[Pipeline], ctx: Context, qdrant_problem: Optional[str]
) -> None:
    """The store was attached reading the person from ``user_id``; the pipeline's
    subjects are in ``people``. With a publishable key and no tag_key the wrapper cannot
    know ``user_id``: it refuses (tags written under ``people`` would escape the
    erasure). A secret key reads it from the preset: every chunk is counted by tag."""
    _skip_without_qdrant(cls, qdrant_problem)
    pipeline: Any = cls(ctx)
    with pytest.raises(ValueError, match="tag_key"):
        _wrap(pipeline, ctx.publishable, attached=True)
    store = _wrap(pipeline, ctx.client, attached=True)
    target = store.target if pipeline.framework == "langchain" else store._target
    assert target.tag_path == ("user_id",)
    people, names = fresh_people()
    chunks = _add_through(pipeline, store, sources(people, names))
    for who in (people.alice, people.bob, people.carol):
        n = len(naming(chunks, who))
        c = count_in(ctx.client.count_subject(who).counts, pipeline.name)
        assert (c.before_by_tag, c.before_by_ids) == (n, n), f"{who}: {c}"
