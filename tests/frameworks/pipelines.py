"""RAG pipelines written with each framework's own ingestion code and Lethe's
integrations (``lethe.integrations``): one driver per framework, backend and kind of
collection (a framework store attached to Lethe, or a collection Lethe created).

Each driver splits the source documents with its framework's splitter, indexes them
the way a pipeline of that framework does (LangChain: ``index()`` with a record manager
or ``add_documents``; LlamaIndex: ``IngestionPipeline`` or ``VectorStoreIndex``), and
retrieves with the framework's own retriever over the framework's own store.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any, Callable, Optional, Sequence
from urllib.parse import urlsplit

import lethe
from embed import DIM, HashEmbedding, HashEmbeddings
from stores import People, qdrant_client, sqlalchemy_url, uniq

ADOPTION_TIMEOUT = 120.0

# ------------------------------------------------------------------------ the documents


@dataclass(frozen=True)
class Source:
    """A source document: its id, the people its metadata names and its paragraphs."""

    key: str
    people: tuple[str, ...]
    paragraphs: tuple[str, ...]
    as_list: bool = False

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)

    def metadata(self) -> dict[str, Any]:
        m: dict[str, Any] = {"source": self.key}
        if self.people:
            m["people"] = self.people[0] if len(self.people) == 1 and not self.as_list else list(self.people)
        return m


def sources(p: People, names: dict[str, str], version: int = 1) -> list[Source]:
    """Six documents of two or three paragraphs: alice alone, alice with bob, bob,
    carol (her id as a list), bob with carol, and one naming no one. Version 2 changes
    two of them: alice leaves the one she shared with bob, carol's is rewritten."""
    a, b, c = names[p.alice], names[p.bob], names[p.carol]
    docs = [
        Source("doc-alice", (p.alice,), (
            f"{a} chaired the harbour committee spring meeting and read the minutes aloud.",
            f"The invoice dispute with the ferry operator was handled by {a} in person.",
            f"{a} asked the board to review the garden plot allocation before June.",
        )),
        Source("doc-alice-bob", (p.alice, p.bob), (
            f"{a} and {b} compared the quarterly numbers for the bakery on the pier.",
            f"{b} agreed to run the bicycle repair workshop schedule with {a}.",
        )),
        Source("doc-bob", (p.bob,), (
            f"{b} priced the library renovation estimate and sent it to the council.",
            f"The choir rehearsal attendance sheet was kept by {b} this season.",
        )),
        Source("doc-carol", (p.carol,), (
            f"{c} drew up the volunteer roster for the marathon along the river.",
            f"The solar panel maintenance log on the school roof is {c}'s work.",
        ), as_list=True),
        Source("doc-bob-carol", (p.bob, p.carol), (
            f"{b} and {c} weighed the orchard harvest yields at the cooperative.",
            f"The chess club tournament draw was made by {c} while {b} kept time.",
        )),
        # Its text names a run of its own: the same text in two stores would get the
        # same content-hash id from index() (see test_integrations).
        Source("doc-none", (), (
            f"The museum loan agreement {p.alice[-6:]} covers three paintings for the winter exhibition.",
            f"The river cleanup route {p.alice[-6:]} starts at the old mill and ends at the weir.",
        )),
    ]
    if version == 2:
        docs[1] = Source("doc-alice-bob", (p.bob,), (
            f"{b} alone compared the quarterly numbers for the bakery on the pier, revised.",
            f"{b} runs the bicycle repair workshop schedule by himself from now on.",
        ))
        docs[3] = Source("doc-carol", (p.carol,), (
            f"{c} rewrote the volunteer roster for the marathon with two new stations.",
            f"The solar panel maintenance log moved to the town hall, kept by {c}.",
        ), as_list=True)
    return docs


def fresh_people() -> tuple[People, dict[str, str]]:
    """Ids no other test names, and a full name for each (written in the text)."""
    p = People.fresh()
    surname = secrets.token_hex(2)
    names = {p.alice: f"Alice Moreau{surname}", p.bob: f"Bob Lindqvist{surname}", p.carol: f"Carol Nakamura{surname}"}
    return p, names


@dataclass(frozen=True)
class Chunk:
    """A chunk as the framework's splitter made it, with its source's people."""

    text: str
    source: str
    people: tuple[str, ...]


# ----------------------------------------------------------------------------- drivers


@dataclass
class Context:
    """What every driver needs: the server, its clients, Qdrant."""

    server: Any
    client: lethe.Lethe  # secret key
    publishable: lethe.Lethe
    qdrant_url: str
    cleanup: list[Callable[[], None]] = field(default_factory=list)


class Pipeline:
    """A pipeline of one framework on one backend, writing an attached framework store
    or a collection Lethe created."""

    framework: str
    backend: str
    kind: str  # "attached" or "created"
    #: how the pipeline indexes: "index", "add_documents", "ingestion_pipeline", "vector_store_index"
    how: str

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.name = uniq(f"{self.framework[:2]}_{self.backend[:2]}_{self.kind[:2]}")
        self.seed_person = f"dave-{secrets.token_hex(3)}"
        #: texts the framework wrote besides the corpus (the seed of an attached store)
        self.extra_texts: list[str] = []

    @property
    def label(self) -> str:
        return f"{self.framework}-{self.backend}-{self.kind}"

    def attach_and_adopt(self, **attach_args: Any) -> lethe.AttachJob:
        self.ctx.client.attach(self.name, **attach_args)
        job = self.ctx.client.wait_for_attach(self.name, timeout=ADOPTION_TIMEOUT)
        assert job.status == "completed", f"adoption {job.status}: {job.error!r}"
        return job

    def index(self, docs: Sequence[Source]) -> list[Chunk]:
        raise NotImplementedError

    def search(self, text: str, k: int) -> list[str]:
        raise NotImplementedError


# ------------------------------------------------------------------------------ LangChain


def lc_split(docs: Sequence[Source]) -> list[Any]:
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    splitter = RecursiveCharacterTextSplitter(chunk_size=100, chunk_overlap=0, separators=["\n\n", "\n", " "])
    return splitter.split_documents([Document(page_content=d.text, metadata=d.metadata()) for d in docs])


def lc_chunks(split: Sequence[Any], docs: Sequence[Source]) -> list[Chunk]:
    by_key = {d.key: d for d in docs}
    return [Chunk(c.page_content, c.metadata["source"], by_key[c.metadata["source"]].people) for c in split]


class LangChainPipeline(Pipeline):
    framework = "langchain"
    store: Any  # the LetheVectorStore
    reader: Any  # the framework's own store, for retrieval

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        from langchain_core.indexing import InMemoryRecordManager

        self.record_manager = InMemoryRecordManager(namespace=self.name)
        self.record_manager.create_schema()
        self.last_index: Optional[dict[str, int]] = None

    def index(self, docs: Sequence[Source], how: Optional[str] = None) -> list[Chunk]:
        from langchain_core.indexing import index

        split = lc_split(docs)
        if (how or self.how) == "index":
            self.last_index = dict(
                index(split, self.record_manager, self.store, cleanup="incremental", source_id_key="source", key_encoder="sha256")
            )
        else:
            self.store.add_documents(split)
        return lc_chunks(split, docs)

    def search(self, text: str, k: int) -> list[str]:
        return [d.page_content for d in self.reader.as_retriever(search_kwargs={"k": k}).invoke(text)]


class LangChainPgvectorAttached(LangChainPipeline):
    """langchain-postgres ``PGVector`` (the shared table), attached; ``index()``."""

    backend, kind, how = "pgvector", "attached", "index"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        from langchain_postgres import PGVector

        from lethe.integrations.langchain import LetheVectorStore

        self.lc_collection = uniq("lc docs")
        self.reader = PGVector(
            embeddings=HashEmbeddings(),
            collection_name=self.lc_collection,
            connection=sqlalchemy_url(ctx.server.db_url),
            use_jsonb=True,
        )
        seed = f"Seed note by the pipeline owner {self.seed_person}."
        self.reader.add_texts([seed], metadatas=[{"user_id": self.seed_person, "source": "seed"}])
        self.extra_texts.append(seed)
        self.attach_and_adopt(preset="langchain-pgvector", target=self.lc_collection, tag_key="user_id")
        self.store = LetheVectorStore(self.reader, client=ctx.client, collection=self.name, subjects="people")

    def store_ids(self) -> set[str]:
        import psycopg

        with psycopg.connect(self.ctx.server.db_url) as db:
            rows = db.execute(
                "SELECT e.id FROM langchain_pg_embedding e JOIN langchain_pg_collection c ON c.uuid = e.collection_id"
                " WHERE c.name = %s",
                (self.lc_collection,),
            ).fetchall()
        return {r[0] for r in rows}


class LangChainPgvectorCreated(LangChainPipeline):
    """A pgvector collection Lethe created, read by ``PGVectorStore``; ``add_documents``
    with the pipeline's publishable key."""

    backend, kind, how = "pgvector", "created", "add_documents"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        from lethe.integrations.langchain import LetheVectorStore

        from langchain_postgres import PGEngine

        collection = ctx.client.create_collection(self.name, backend="pgvector", dimension=DIM)
        self.engine = PGEngine.from_connection_string(url=sqlalchemy_url(ctx.server.db_url))
        ctx.cleanup.append(lambda: self.engine._run_as_sync(self.engine.close()))
        self.store = LetheVectorStore.from_collection(
            ctx.publishable, collection, HashEmbeddings(), subjects="people", connection=self.engine
        )
        self.reader = self.store.vectorstore


class LangChainQdrantAttached(LangChainPipeline):
    """langchain-qdrant ``QdrantVectorStore``, attached; ``add_documents``."""

    backend, kind, how = "qdrant", "attached", "add_documents"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        from langchain_qdrant import QdrantVectorStore
        from qdrant_client import models

        from lethe.integrations.langchain import LetheVectorStore

        self.qc = qdrant_client(ctx.qdrant_url)
        self.qdrant_collection = uniq("lcq")
        self.qc.create_collection(
            self.qdrant_collection, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        )
        ctx.cleanup.append(self.close)
        self.reader = QdrantVectorStore(client=self.qc, collection_name=self.qdrant_collection, embedding=HashEmbeddings())
        seed = f"Seed note by the pipeline owner {self.seed_person}."
        self.reader.add_texts([seed], metadatas=[{"user_id": self.seed_person, "source": "seed"}])
        self.extra_texts.append(seed)
        self.attach_and_adopt(preset="langchain-qdrant", target=self.qdrant_collection, tag_key="user_id")
        self.store = LetheVectorStore(self.reader, client=ctx.client, collection=self.name, subjects="people")

    def store_ids(self) -> set[str]:
        points, _ = self.qc.scroll(self.qdrant_collection, limit=10_000)
        return {str(p.id) for p in points}

    def close(self) -> None:
        try:
            self.qc.delete_collection(self.qdrant_collection)
        finally:
            self.qc.close()


class LangChainQdrantCreated(LangChainPipeline):
    """A Qdrant collection Lethe created, read by ``QdrantVectorStore``; ``index()``."""

    backend, kind, how = "qdrant", "created", "index"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        from lethe.integrations.langchain import LetheVectorStore

        self.qc = qdrant_client(ctx.qdrant_url)
        ctx.cleanup.append(self.qc.close)
        self.collection = ctx.client.create_collection(self.name, backend="qdrant", dimension=DIM)
        self.store = LetheVectorStore.from_collection(
            ctx.client, self.collection, HashEmbeddings(), subjects="people", qdrant_client=self.qc
        )
        self.reader = self.store.vectorstore

    def store_ids(self) -> set[str]:
        points, _ = self.qc.scroll(self.collection.backend_name, limit=10_000)
        return {str(p.id) for p in points}


# ----------------------------------------------------------------------------- LlamaIndex


def people_of(node: Any) -> Any:
    """The subjects callable of the LlamaIndex pipelines."""
    return node.metadata.get("people")


def li_documents(docs: Sequence[Source]) -> list[Any]:
    from llama_index.core import Document

    return [Document(text=d.text, metadata=d.metadata(), id_=d.key) for d in docs]


def li_splitter() -> Any:
    from llama_index.core.node_parser import SentenceSplitter

    return SentenceSplitter(chunk_size=24, chunk_overlap=0, tokenizer=str.split, paragraph_separator="\n\n")


def li_chunks(nodes: Sequence[Any], docs: Sequence[Source]) -> list[Chunk]:
    by_key = {d.key: d for d in docs}
    return [Chunk(n.get_content(), n.ref_doc_id, by_key[n.ref_doc_id].people) for n in nodes]


class LlamaIndexPipeline(Pipeline):
    framework = "llamaindex"
    store: Any  # the LetheVectorStore
    reader: Any  # the framework's own store
    ingestion: Any = None  # the IngestionPipeline, kept between runs (its docstore)

    def index(self, docs: Sequence[Source]) -> list[Chunk]:
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.ingestion import IngestionPipeline

        from lethe.integrations.llamaindex import SubjectTagger

        embed = HashEmbedding()
        tagger = SubjectTagger(people_of, tag_key="user_id")
        if self.how == "ingestion_pipeline":
            if self.ingestion is None:
                from llama_index.core.ingestion import DocstoreStrategy
                from llama_index.core.storage.docstore import SimpleDocumentStore

                # With a docstore: a document that changed is deleted from the vector
                # store (by ref_doc_id) and written again.
                self.ingestion = IngestionPipeline(
                    transformations=[li_splitter(), tagger, embed],
                    vector_store=self.store,
                    docstore=SimpleDocumentStore(),
                    docstore_strategy=DocstoreStrategy.UPSERTS,
                )
            nodes = self.ingestion.run(documents=li_documents(docs))
        else:
            nodes = li_splitter().get_nodes_from_documents(li_documents(docs))
            storage = StorageContext.from_defaults(vector_store=self.store)
            VectorStoreIndex(nodes, storage_context=storage, embed_model=embed)
        return li_chunks(nodes, docs)

    def search(self, text: str, k: int) -> list[str]:
        from llama_index.core import VectorStoreIndex

        index = VectorStoreIndex.from_vector_store(self.reader, embed_model=HashEmbedding())
        return [n.node.get_content() for n in index.as_retriever(similarity_top_k=k).retrieve(text)]


def li_seed_node(text: str, person: str) -> Any:
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    from embed import embed

    node = TextNode(text=text, metadata={"user_id": person}, relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id="seed")})
    node.embedding = embed(text)
    return node


class LlamaIndexPgvectorAttached(LlamaIndexPipeline):
    """llama-index ``PGVectorStore``, attached; ``IngestionPipeline``."""

    backend, kind, how = "pgvector", "attached", "ingestion_pipeline"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        from llama_index.vector_stores.postgres import PGVectorStore

        from lethe.integrations.llamaindex import LetheVectorStore

        u = urlsplit(ctx.server.db_url)
        self.table_name = uniq("Notes")
        self.reader = PGVectorStore.from_params(
            host=u.hostname,
            port=str(u.port or 5432),
            database=u.path.lstrip("/"),
            user=u.username or "postgres",
            password=u.password or "",
            table_name=self.table_name,
            embed_dim=DIM,
        )
        ctx.cleanup.append(self.close)
        seed = f"Seed note by the pipeline owner {self.seed_person}."
        self.reader.add([li_seed_node(seed, self.seed_person)])
        self.extra_texts.append(seed)
        self.attach_and_adopt(preset="llamaindex-pgvector", target=self.table_name, tag_key="user_id")
        self.store = LetheVectorStore(self.reader, client=ctx.client, collection=self.name, subjects=people_of)

    def store_ids(self) -> set[str]:
        import psycopg

        with psycopg.connect(self.ctx.server.db_url) as db:
            rows = db.execute(f"SELECT id FROM data_{self.table_name.lower()}").fetchall()
        return {str(r[0]) for r in rows}

    def close(self) -> None:
        import asyncio

        asyncio.run(self.reader.close())


class LlamaIndexQdrantAttached(LlamaIndexPipeline):
    """llama-index ``QdrantVectorStore``, attached; ``VectorStoreIndex``, with the
    pipeline's publishable key (it cannot look the collection up: ``attached`` and
    ``tag_key`` are given)."""

    backend, kind, how = "qdrant", "attached", "vector_store_index"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        from llama_index.vector_stores.qdrant import QdrantVectorStore

        from lethe.integrations.llamaindex import LetheVectorStore

        self.qc = qdrant_client(ctx.qdrant_url)
        self.qdrant_collection = uniq("liq")
        ctx.cleanup.append(self.close)
        self.reader = QdrantVectorStore(collection_name=self.qdrant_collection, client=self.qc)
        seed = f"Seed note by the pipeline owner {self.seed_person}."
        self.reader.add([li_seed_node(seed, self.seed_person)])
        self.extra_texts.append(seed)
        self.attach_and_adopt(preset="llamaindex-qdrant", target=self.qdrant_collection, tag_key="user_id")
        self.store = LetheVectorStore(
            self.reader, client=ctx.publishable, collection=self.name, subjects=people_of, attached=True, tag_key="user_id"
        )

    def close(self) -> None:
        try:
            self.qc.delete_collection(self.qdrant_collection)
        finally:
            self.qc.close()


class LlamaIndexQdrantCreated(LlamaIndexPipeline):
    """A Qdrant collection Lethe created, read by LlamaIndex's ``QdrantVectorStore``;
    ``IngestionPipeline``."""

    backend, kind, how = "qdrant", "created", "ingestion_pipeline"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        from lethe.integrations.llamaindex import LetheVectorStore

        self.qc = qdrant_client(ctx.qdrant_url)
        ctx.cleanup.append(self.qc.close)
        self.collection = ctx.client.create_collection(self.name, backend="qdrant", dimension=DIM)
        self.store = LetheVectorStore.from_collection(ctx.client, self.collection, qdrant_client=self.qc, subjects=people_of)
        self.reader = self.store.vector_store

    def store_ids(self) -> set[str]:
        points, _ = self.qc.scroll(self.collection.backend_name, limit=10_000)
        return {str(p.id) for p in points}


ALL: list[type[Pipeline]] = [
    LangChainPgvectorAttached,
    LangChainPgvectorCreated,
    LangChainQdrantAttached,
    LangChainQdrantCreated,
    LlamaIndexPgvectorAttached,
    LlamaIndexQdrantAttached,
    LlamaIndexQdrantCreated,
]
