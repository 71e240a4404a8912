"""The stores under test, each filled and read with its framework's own code.

One driver per store: it writes documents with the framework's writer, counts a
person's documents with the framework's filter (or SQL where the framework's
filter cannot match a tag that is sometimes a list), retrieves with the
framework's retriever, and says how Lethe attaches it. The hand-made stores have
no framework: they are written with SQL and qdrant-client.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import uuid
from dataclasses import dataclass
from typing import Any, Optional, Sequence
from urllib.parse import urlsplit

import psycopg
from qdrant_client import QdrantClient, models

from embed import DIM, HashEmbedding, HashEmbeddings, embed

# ------------------------------------------------------------------------ the documents


@dataclass(frozen=True)
class Doc:
    """One chunk. ``people`` are the person ids its metadata names; one person is
    written as a string unless ``as_list`` (frameworks write what the caller gave)."""

    key: str
    text: str
    people: tuple[str, ...]
    as_list: bool = False
    source: str = ""

    def tag(self) -> Any:
        if not self.people:
            return None
        if len(self.people) == 1 and not self.as_list:
            return self.people[0]
        return list(self.people)

    def metadata(self, key: str = "user_id") -> dict[str, Any]:
        m: dict[str, Any] = {"doc_key": self.key}
        if self.people:
            m[key] = self.tag()
        return m

    def names(self, person: str) -> bool:
        return person in self.people


TOPICS = [
    "harbour committee spring minutes", "invoice dispute with the ferry operator", "garden plot allocation",
    "quarterly numbers for the bakery", "bicycle repair workshop schedule", "library renovation estimate",
    "choir rehearsal attendance", "volunteer roster for the marathon", "solar panel maintenance log",
    "orchard harvest yields", "chess club tournament draw", "museum loan agreement", "river cleanup route",
    "school lunch menu draft", "parking permit renewals", "theatre lighting inventory",
]


@dataclass(frozen=True)
class People:
    alice: str
    bob: str
    carol: str

    @classmethod
    def fresh(cls) -> "People":
        """Ids no other store names: an erasure is tenant-wide."""
        tag = secrets.token_hex(3)
        return cls(alice=f"alice-{tag}", bob=f"bob-{tag}", carol=f"carol-{tag}")


def corpus(p: People) -> list[Doc]:
    """12 chunks of 6 source documents: alice alone (as a string and as a list),
    alice with bob or carol, bob, carol, bob with carol, and two naming no one."""
    rows: list[tuple[str, tuple[str, ...], bool, str]] = [
        ("a1", (p.alice,), False, "doc-a"),
        ("a2", (p.alice,), False, "doc-a"),
        ("a3", (p.alice,), True, "doc-b"),
        ("ab1", (p.alice, p.bob), False, "doc-b"),
        ("ac1", (p.alice, p.carol), False, "doc-c"),
        ("b1", (p.bob,), False, "doc-c"),
        ("b2", (p.bob,), True, "doc-d"),
        ("c1", (p.carol,), False, "doc-d"),
        ("c2", (p.carol,), False, "doc-e"),
        ("bc1", (p.bob, p.carol), False, "doc-e"),
        ("n1", (), False, "doc-f"),
        ("n2", (), False, "doc-f"),
    ]
    return [Doc(k, f"Record {k}: {TOPICS[i]}", people, as_list, src) for i, (k, people, as_list, src) in enumerate(rows)]


def later_docs(p: People) -> list[Doc]:
    """Written after the erasure: the framework must still take and find them."""
    return [
        Doc("late-b", f"Record late-b: {TOPICS[12]}", (p.bob,), False, "doc-g"),
        Doc("late-n", f"Record late-n: {TOPICS[13]}", (), False, "doc-g"),
    ]


# ----------------------------------------------------------------------------- backends


def sqlalchemy_url(db_url: str, driver: str = "psycopg") -> str:
    return db_url.replace("postgres://", f"postgresql+{driver}://", 1).replace("postgresql://", f"postgresql+{driver}://", 1)


def qdrant_client(url: str) -> QdrantClient:
    """qdrant-client over gRPC (the stand-in speaks only gRPC): the URL's port is
    the gRPC port."""
    u = urlsplit(url)
    return QdrantClient(
        host=u.hostname or "127.0.0.1",
        grpc_port=u.port or 6334,
        prefer_grpc=True,
        https=u.scheme == "https",
        timeout=30,
        check_compatibility=False,  # the version check asks the REST port
    )


def uniq(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


class Store:
    """A store, its documents and how Lethe attaches it."""

    #: Lethe's collection name
    name: str
    backend: str
    label: str
    #: the kind of id the store gives its points
    def __init__(self, db_url: str, qdrant_url: str, people: People) -> None:
        self.db_url = db_url
        self.qdrant_url = qdrant_url
        self.people = people

    # the framework side
    def fill(self, docs: Sequence[Doc]) -> None:
        raise NotImplementedError

    def count_person(self, person: str) -> int:
        raise NotImplementedError

    def count_all(self) -> int:
        raise NotImplementedError

    def search(self, text: str, k: int) -> list[str]:
        """The texts the framework's retriever returns for ``text``."""
        raise NotImplementedError

    # Lethe's side
    def attach_args(self) -> dict[str, Any]:
        raise NotImplementedError

    def wrong_attaches(self) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
        """(what is wrong, attach kwargs, the fields the error may name)."""
        raise NotImplementedError

    def sql(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            cur = conn.execute(statement, args or None)
            return cur.fetchall() if cur.description else []

    def sql_count(self, statement: str, *args: Any) -> int:
        return int(self.sql(statement, *args)[0][0])

    def close(self) -> None:
        pass


# -------------------------------------------------------------------- LangChain, pgvector


class LangchainPgvector(Store):
    """langchain-postgres ``PGVector``: the shared langchain_pg_embedding table. A
    second LangChain collection in the same table names alice too and is not
    attached: its rows must stay."""

    backend = "pgvector"
    label = "langchain-pgvector"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        from langchain_postgres import PGVector

        self.name = uniq("lc_pg")
        self.collection = uniq("lc collection")  # LangChain names are any text
        self.other_collection = uniq("lc other")
        url = sqlalchemy_url(self.db_url)
        self.vs = PGVector(embeddings=HashEmbeddings(), collection_name=self.collection, connection=url, use_jsonb=True)
        self.other = PGVector(embeddings=HashEmbeddings(), collection_name=self.other_collection, connection=url, use_jsonb=True)

    def fill(self, docs: Sequence[Doc]) -> None:
        # Ids are any string: some docs get one that names a person, the rest uuid4s.
        ids = [f"{d.people[0]}@example.com#{d.key}" if d.people and d.key.endswith("1") else None for d in docs]
        self.vs.add_texts([d.text for d in docs], metadatas=[d.metadata() for d in docs], ids=ids)  # type: ignore[arg-type]

    def fill_other(self, docs: Sequence[Doc]) -> None:
        self.other.add_texts([d.text for d in docs], metadatas=[d.metadata() for d in docs])

    def count_person(self, person: str) -> int:
        # PGVector's filter is jsonb_path_match('$.user_id == $value') in lax mode,
        # which unwraps arrays: it matches the tag as a string and inside a list.
        return len(self.vs.similarity_search("anything", k=1000, filter={"user_id": person}))

    def count_other(self, person: str) -> int:
        return len(self.other.similarity_search("anything", k=1000, filter={"user_id": person}))

    def count_all(self) -> int:
        return self.sql_count(
            "SELECT count(*) FROM langchain_pg_embedding e JOIN langchain_pg_collection c ON c.uuid = e.collection_id"
            " WHERE c.name = %s",
            self.collection,
        )

    def search(self, text: str, k: int) -> list[str]:
        return [d.page_content for d in self.vs.similarity_search(text, k=k)]

    def attach_args(self) -> dict[str, Any]:
        return dict(preset="langchain-pgvector", target=self.collection, tag_key="metadata.user_id")

    def wrong_attaches(self) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
        return [
            ("no such LangChain collection", dict(self.attach_args(), target="no such collection"), ("target",)),
            ("tag path not present", dict(self.attach_args(), tag_key="metadata.no_such_key"), ("tag_key", "mapping.tags")),
            ("missing column", dict(self.attach_args(), mapping={"vector": "no_such_column"}), ("mapping.vector",)),
            ("wrong type", dict(self.attach_args(), mapping={"vector": "document"}), ("mapping.vector",)),
        ]


class LangchainPgvectorStore(Store):
    """langchain-postgres ``PGVectorStore``: a table of its own (metadata in a json column)."""

    backend = "pgvector"
    label = "langchain-pgvector-store"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        from langchain_postgres import PGEngine, PGVectorStore

        self.name = uniq("lc_pgs")
        self.table = uniq("lc_store")
        self.engine = PGEngine.from_connection_string(url=sqlalchemy_url(self.db_url))
        self.engine.init_vectorstore_table(table_name=self.table, vector_size=DIM)
        self.vs = PGVectorStore.create_sync(engine=self.engine, table_name=self.table, embedding_service=HashEmbeddings())

    def fill(self, docs: Sequence[Doc]) -> None:
        self.vs.add_texts([d.text for d in docs], metadatas=[d.metadata() for d in docs])

    def count_person(self, person: str) -> int:
        # Its filter reads langchain_metadata->>'user_id' = …, a string only: a list
        # holding the person would not match, so count in SQL as the store holds it.
        return self.sql_count(
            f'SELECT count(*) FROM "{self.table}" WHERE langchain_metadata::jsonb -> \'user_id\' @> %s::jsonb',
            json.dumps(person),
        )

    def count_all(self) -> int:
        return self.sql_count(f'SELECT count(*) FROM "{self.table}"')

    def search(self, text: str, k: int) -> list[str]:
        return [d.page_content for d in self.vs.similarity_search(text, k=k)]

    def attach_args(self) -> dict[str, Any]:
        return dict(preset="langchain-pgvector-store", target=self.table, tag_key="metadata.user_id")

    def wrong_attaches(self) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
        return [
            ("no such table", dict(self.attach_args(), target="no_such_table"), ("target",)),
            ("tag path not present", dict(self.attach_args(), tag_key="no_such_key"), ("tag_key", "mapping.tags")),
            ("missing column", dict(self.attach_args(), mapping={"id": "no_such_column"}), ("mapping.id",)),
            ("wrong type", dict(self.attach_args(), mapping={"vector": "content"}), ("mapping.vector",)),
        ]

    def close(self) -> None:
        self.engine._run_as_sync(self.engine.close())  # its pool lives on the engine's own loop


# ------------------------------------------------------------------- LlamaIndex, pgvector


def llama_nodes(docs: Sequence[Doc], key: str = "user_id") -> list[Any]:
    from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode

    return [
        TextNode(
            text=d.text,
            metadata=d.metadata(key),
            relationships={NodeRelationship.SOURCE: RelatedNodeInfo(node_id=d.source)},
        )
        for d in docs
    ]


def llama_person_filter(person: str, key: str = "user_id") -> Any:
    """The person as a string (EQ) or inside a list (CONTAINS)."""
    from llama_index.core.vector_stores.types import FilterCondition, FilterOperator, MetadataFilter, MetadataFilters

    return MetadataFilters(
        filters=[
            MetadataFilter(key=key, value=person, operator=FilterOperator.EQ),
            MetadataFilter(key=key, value=person, operator=FilterOperator.CONTAINS),
        ],
        condition=FilterCondition.OR,
    )


class LlamaStore(Store):
    """What the LlamaIndex stores share: an index over the vector store."""

    vs: Any

    def _index(self) -> Any:
        from llama_index.core import StorageContext, VectorStoreIndex

        self.embed_model = HashEmbedding()
        self.index = VectorStoreIndex.from_vector_store(self.vs, embed_model=self.embed_model)
        self.storage = StorageContext.from_defaults(vector_store=self.vs)

    def fill(self, docs: Sequence[Doc]) -> None:
        self.index.insert_nodes(llama_nodes(docs))

    def search(self, text: str, k: int) -> list[str]:
        return [n.node.get_content() for n in self.index.as_retriever(similarity_top_k=k).retrieve(text)]

    def person_filter(self, person: str) -> Any:
        return llama_person_filter(person)

    def count_person(self, person: str) -> int:
        """The framework's own query with its metadata filter."""
        from llama_index.core.vector_stores.types import VectorStoreQuery

        q = VectorStoreQuery(query_embedding=embed("anything"), similarity_top_k=1000, filters=self.person_filter(person))
        return len(self.vs.query(q).nodes or [])


class LlamaindexPgvector(LlamaStore):
    """llama-index-vector-stores-postgres ``PGVectorStore``: table data_<name, lowercased>."""

    backend = "pgvector"
    label = "llamaindex-pgvector"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        from llama_index.vector_stores.postgres import PGVectorStore

        self.name = uniq("li_pg")
        self.table_name = uniq("Notes")  # LlamaIndex lowercases it and prefixes data_
        self.table = "data_" + self.table_name.lower()
        u = urlsplit(self.db_url)
        self.vs = PGVectorStore.from_params(
            host=u.hostname,
            port=str(u.port or 5432),
            database=u.path.lstrip("/"),
            user=u.username or "postgres",
            password=u.password or "",
            table_name=self.table_name,
            embed_dim=DIM,
        )
        self._index()

    def count_all(self) -> int:
        return self.sql_count(f"SELECT count(*) FROM {self.table}")

    def sql_count_person(self, person: str) -> int:
        return self.sql_count(
            f"SELECT count(*) FROM {self.table} WHERE metadata_::jsonb -> 'user_id' @> %s::jsonb", json.dumps(person)
        )

    def attach_args(self) -> dict[str, Any]:
        return dict(preset="llamaindex-pgvector", target=self.table_name, tag_key="user_id")

    def wrong_attaches(self) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
        return [
            ("no such table", dict(self.attach_args(), target="no_such_table"), ("target",)),
            ("tag path not present", dict(self.attach_args(), tag_key="no_such_key"), ("tag_key", "mapping.tags")),
            ("missing column", dict(self.attach_args(), mapping={"vector": "no_such_column"}), ("mapping.vector",)),
            ("wrong type", dict(self.attach_args(), mapping={"id": "embedding"}), ("mapping.id",)),
        ]

    def close(self) -> None:
        asyncio.run(self.vs.close())


# ---------------------------------------------------------------------------- Qdrant


class QdrantStore(Store):
    backend = "qdrant"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.client = qdrant_client(self.qdrant_url)
        self.collection = uniq("fw")

    def count_all(self) -> int:
        return self.client.count(self.collection, exact=True).count

    def count_key(self, key: str, person: str) -> int:
        # A keyword match in Qdrant matches the value and arrays holding it.
        f = models.Filter(must=[models.FieldCondition(key=key, match=models.MatchValue(value=person))])
        return self.client.count(self.collection, count_filter=f, exact=True).count

    def close(self) -> None:
        try:
            self.client.delete_collection(self.collection)
        finally:
            self.client.close()


class LangchainQdrant(QdrantStore):
    """langchain-qdrant ``QdrantVectorStore``: payload {page_content, metadata}."""

    label = "langchain-qdrant"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        from langchain_qdrant import QdrantVectorStore

        self.name = uniq("lc_qd")
        self.client.create_collection(
            self.collection, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        )
        self.vs = QdrantVectorStore(client=self.client, collection_name=self.collection, embedding=HashEmbeddings())

    def fill(self, docs: Sequence[Doc]) -> None:
        self.vs.add_texts([d.text for d in docs], metadatas=[d.metadata() for d in docs])

    def count_person(self, person: str) -> int:
        return self.count_key("metadata.user_id", person)

    def search(self, text: str, k: int) -> list[str]:
        return [d.page_content for d in self.vs.similarity_search(text, k=k)]

    def attach_args(self) -> dict[str, Any]:
        return dict(preset="langchain-qdrant", target=self.collection, tag_key="metadata.user_id")

    def wrong_attaches(self) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
        return [
            ("no such collection", dict(self.attach_args(), target=uniq("no_such")), ("target",)),
            ("tag path not present", dict(self.attach_args(), tag_key="metadata.no_such_key"), ("tag_key", "mapping.tags")),
            ("no such vector", dict(self.attach_args(), mapping={"vector": "no-such-vector"}), ("mapping.vector",)),
        ]


class LlamaindexQdrant(QdrantStore, LlamaStore):
    """llama-index-vector-stores-qdrant ``QdrantVectorStore``: metadata at the top of
    the payload, the text only inside _node_content."""

    label = "llamaindex-qdrant"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        from llama_index.vector_stores.qdrant import QdrantVectorStore

        self.name = uniq("li_qd")
        self.vs = QdrantVectorStore(collection_name=self.collection, client=self.client)
        self._index()

    def person_filter(self, person: str) -> Any:
        # Its Qdrant filter has no CONTAINS; EQ becomes a keyword match, which
        # matches arrays holding the value too.
        from llama_index.core.vector_stores.types import FilterOperator, MetadataFilter, MetadataFilters

        return MetadataFilters(filters=[MetadataFilter(key="user_id", value=person, operator=FilterOperator.EQ)])

    def count_person(self, person: str) -> int:
        return LlamaStore.count_person(self, person)

    def qdrant_count_person(self, person: str) -> int:
        return self.count_key("user_id", person)

    def attach_args(self) -> dict[str, Any]:
        return dict(preset="llamaindex-qdrant", target=self.collection, tag_key="user_id")

    def wrong_attaches(self) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
        return [
            ("no such collection", dict(self.attach_args(), target=uniq("no_such")), ("target",)),
            ("tag path not present", dict(self.attach_args(), tag_key="no_such_key"), ("tag_key", "mapping.tags")),
            ("no such vector", dict(self.attach_args(), mapping={"vector": "no-such-vector"}), ("mapping.vector",)),
        ]


# ------------------------------------------------------------------------- hand-made


class HandMadePgvector(Store):
    """A table a pipeline made: text ids, the people in a text[] column."""

    backend = "pgvector"
    label = "hand-made-pgvector"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.name = uniq("hm_pg")
        self.table = uniq("crm_notes")
        self.sql(
            f"CREATE TABLE {self.table} (doc_key text PRIMARY KEY, people text[] NOT NULL DEFAULT '{{}}',"
            f" body text, origin text, emb vector({DIM}), score integer)"
        )
        self.sql(f"CREATE INDEX ON {self.table} USING gin (people)")

    def fill(self, docs: Sequence[Doc]) -> None:
        with psycopg.connect(self.db_url, autocommit=True) as conn:
            for d in docs:
                key = f"{d.people[0]}@example.com#{d.key}" if d.people and d.key.endswith("1") else f"note-{d.key}"
                conn.execute(
                    f"INSERT INTO {self.table} (doc_key, people, body, origin, emb, score) VALUES (%s, %s, %s, %s, %s::vector, 1)",
                    (key, list(d.people), d.text, d.source, json.dumps(embed(d.text))),
                )

    def count_person(self, person: str) -> int:
        return self.sql_count(f"SELECT count(*) FROM {self.table} WHERE people @> ARRAY[%s]", person)

    def count_all(self) -> int:
        return self.sql_count(f"SELECT count(*) FROM {self.table}")

    def search(self, text: str, k: int) -> list[str]:
        rows = self.sql(f"SELECT body FROM {self.table} ORDER BY emb <=> %s::vector LIMIT %s", json.dumps(embed(text)), k)
        return [r[0] for r in rows]

    def mapping(self, **change: Any) -> dict[str, Any]:
        m: dict[str, Any] = dict(
            id="doc_key", vector="emb", text={"column": "body"}, source={"column": "origin"}, tags={"column": "people"}
        )
        m.update(change)
        return m

    def attach_args(self) -> dict[str, Any]:
        return dict(backend="pgvector", target=self.table, mapping=self.mapping())

    def wrong_attaches(self) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
        base = self.attach_args()
        return [
            ("missing column", dict(base, mapping=self.mapping(tags={"column": "no_such_column"})), ("mapping.tags",)),
            ("wrong type", dict(base, mapping=self.mapping(tags={"column": "score"})), ("mapping.tags",)),
            ("path in a text[] column", dict(base, mapping=self.mapping(tags={"column": "people", "path": ["x"]})), ("mapping.tags",)),
            ("wrong id type", dict(base, mapping=self.mapping(id="emb")), ("mapping.id",)),
        ]


class HandMadeQdrant(QdrantStore):
    """A collection a pipeline made: integer ids, the person at owner.person, a string
    in some points and a list in others."""

    label = "hand-made-qdrant"

    def __init__(self, *a: Any) -> None:
        super().__init__(*a)
        self.name = uniq("hm_qd")
        self.client.create_collection(
            self.collection, vectors_config=models.VectorParams(size=DIM, distance=models.Distance.COSINE)
        )
        self.next_id = 1000

    def fill(self, docs: Sequence[Doc]) -> None:
        points = []
        for d in docs:
            payload: dict[str, Any] = {"body": d.text, "doc": d.source, "kind": "note"}
            if d.people:
                payload["owner"] = {"person": d.tag(), "team": "ops"}
            points.append(models.PointStruct(id=self.next_id, vector=embed(d.text), payload=payload))
            self.next_id += 1
        self.client.upsert(self.collection, points=points, wait=True)

    def count_person(self, person: str) -> int:
        return self.count_key("owner.person", person)

    def search(self, text: str, k: int) -> list[str]:
        hits = self.client.query_points(self.collection, query=embed(text), limit=k, with_payload=True).points
        return [h.payload["body"] for h in hits if h.payload]

    def mapping(self, **change: Any) -> dict[str, Any]:
        m: dict[str, Any] = dict(text={"path": ["body"]}, source={"path": ["doc"]}, tags={"path": ["owner", "person"]})
        m.update(change)
        return m

    def attach_args(self) -> dict[str, Any]:
        return dict(backend="qdrant", target=self.collection, mapping=self.mapping())

    def wrong_attaches(self) -> list[tuple[str, dict[str, Any], tuple[str, ...]]]:
        base = self.attach_args()
        return [
            ("tag path not present", dict(base, mapping=self.mapping(tags={"path": ["owner", "nobody"]})), ("mapping.tags",)),
            ("tag path is an object", dict(base, mapping=self.mapping(tags={"path": ["owner"]})), ("mapping.tags",)),
            ("column on Qdrant", dict(base, mapping=self.mapping(tags={"column": "owner"})), ("mapping",)),
            ("no such vector", dict(base, mapping=self.mapping(vector="no-such-vector")), ("mapping.vector",)),
        ]


ALL: list[type[Store]] = [
    LangchainPgvector,
    LangchainPgvectorStore,
    LlamaindexPgvector,
    LangchainQdrant,
    LlamaindexQdrant,
    HandMadePgvector,
    HandMadeQdrant,
]
