"""LangChain: lineage and subject tags in Lethe for a pipeline that writes with
``vectorstore.add_documents()`` or ``langchain_core.indexing.index()``, without a change
to how it retrieves.

``pip install 'lethe-client[langchain]'`` (langchain-core; add the store's own package:
langchain-postgres, langchain-qdrant).

Usage, a store LangChain writes (attached to Lethe with a preset)::

    from lethe import Lethe
    from lethe.integrations.langchain import LetheVectorStore

    lethe = Lethe()                                   # LETHE_URL, LETHE_API_KEY
    store = LetheVectorStore(PGVector(...), client=lethe, collection="docs", subjects="user_id")
    store.add_documents(chunks)                       # or index(chunks, record_manager, store, cleanup="incremental", source_id_key="source")
    store.as_retriever().invoke("...")                # or keep using PGVector(...) itself

and a collection Lethe created (Lethe writes the points, LangChain reads them)::

    store = LetheVectorStore.from_collection(lethe, "notes", embeddings, subjects="people",
                                             connection="postgresql+psycopg://...")   # or qdrant_client=...

Why this shape. LangChain has three extension points a pipeline passes through: the
vector store (``add_documents``/``delete``, which ``index()`` also calls with the
documents, their ids and, on cleanup, the ids it removes), the record manager (keys,
group ids and timestamps only) and document transformers (documents, before ids exist).
Lineage needs the documents' subjects and the ids the store gave them, and must follow
the deletions ``index()`` makes; only the vector store sees all three. So:

- :class:`LetheVectorStore` wraps the store the pipeline already has. Writes: the
  subjects (from a metadata key or a callable) go into the metadata key the attached
  store's mapping reads (so Lethe's tag filter finds them), the framework writes as
  before, then ``Track`` with the written ids makes Lethe read the points from the store
  at once (instead of at the next rescan). Deletes: the framework deletes, then
  ``DeletePoints`` makes Lethe forget the lineage of the points that are gone, so
  ``index(cleanup="incremental")`` keeps lineage equal to the store. Searches go to the
  wrapped store untouched: retrieval does not change, and the pipeline may keep using
  the store itself for it.
- A Lethe-backed ``RecordManager`` was not the shape: the record manager never sees
  metadata (no subjects) nor the store's ids, and it is a key/timestamp table that
  ``index()`` also asks "which keys are older than this run": Lethe has no such API and
  needs none. Keep the record manager you use (``SQLRecordManager`` in the same
  Postgres, ...); the wrapper makes its cleanups reach Lethe.
- :class:`SubjectTagger` (a document transformer) puts the subjects into metadata
  before ``index()`` hashes the documents, for pipelines whose subjects come from a
  callable: a change of subjects then changes the hash and re-indexes the document.

A collection Lethe created has Lethe's layout (pgvector: columns ``point_id``,
``source_id``, ``subjects``, ``text``, ``embedding``; Qdrant: payload ``text``,
``source_id``, ``subjects``, ``tenant_id``) and Lethe rewrites its points itself
(re-index, redaction, physical erasure), so the framework does not write there: the
wrapper embeds with the store's embeddings and writes through ``Track`` with the vectors
(Lethe applies suppression and screening before anything is written), and deletes
through ``DeletePoints``. Reading is LangChain's own: ``PGVectorStore`` with Lethe's
column names, or ``QdrantVectorStore`` with ``content_payload_key="text"`` (a subclass
that also shows Lethe's payload keys as metadata; :func:`collection_store` builds them).
Lethe's layout has no place for free metadata: documents read back carry their text,
id, ``source_id`` and ``subjects``. A pipeline that needs its metadata at retrieval time keeps writing its
framework's store and attaches it. LangChain's older ``PGVector`` (the shared
``langchain_pg_embedding`` table) has a fixed schema and cannot read Lethe's table.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Mapping, Optional, Sequence, Union

try:
    from langchain_core.documents import Document
    from langchain_core.documents.transformers import BaseDocumentTransformer
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("lethe.integrations.langchain needs LangChain: pip install 'lethe-client[langchain]'") from e

from .._client import Lethe
from ..types import Backend, Collection, DeleteResult, Distance, TrackedPoint
from ._common import (
    IdentifiersFrom,
    OwnedClient,
    Subjects,
    SubjectsFrom,
    Target,
    backend_of,
    delete_points,
    find_collection,
    get_path,
    lookup_point_ids,
    new_point_id,
    norm_id,
    point_id_for,
    require_text_collection,
    resolve,
    subject_ids,
    tag_key_path,
    track_ids,
    track_points,
    with_path,
)

__all__ = ["LetheVectorStore", "SubjectTagger", "collection_store", "tag_document"]

#: Lethe's pgvector columns that a LangChain reader shows as metadata.
PGVECTOR_METADATA_COLUMNS = ["source_id", "subjects"]


def tag_document(doc: Document, ids: Sequence[str], path: Sequence[str]) -> Document:
    """A copy of ``doc`` whose metadata holds ``ids`` at ``path`` (the document itself
    when it already names exactly those subjects there, as a string or a list)."""
    current = get_path(doc.metadata, path)
    try:
        same = subject_ids(current) == list(ids)
    except TypeError:
        same = False
    if same or (not ids and current is None):
        return doc
    return Document(page_content=doc.page_content, metadata=with_path(doc.metadata, path, list(ids)), id=doc.id)


def _with_doc_ids(docs: Sequence[Document], answers: Mapping[str, str]) -> list[Document]:
    """Documents read from a collection Lethe created by point id, each with the
    document id it was asked for (``answers``: point id to document id)."""
    out = []
    for d in docs:
        asked = answers.get(norm_id(d.id)) if d.id is not None else None
        out.append(d if asked is None or asked == d.id else d.model_copy(update={"id": asked}))
    return out


class SubjectTagger(BaseDocumentTransformer):
    """Puts each document's subject ids into its metadata at ``tag_key`` (a list).

    ``tag_key`` is the attached store's, read as Attach reads it: ``"user_id"`` and
    ``"metadata.user_id"`` are both the metadata key ``user_id``; dots nest.

    Run it before ``index()`` when the subjects come from a callable: the tags are then
    part of what ``index()`` hashes, so a document whose people change is indexed again.
    """

    def __init__(self, subjects: SubjectsFrom, tag_key: str) -> None:
        self.subjects = Subjects(subjects)
        self.tag_key = tag_key
        self.tag_path = tag_key_path(tag_key)

    def transform_documents(self, documents: Sequence[Document], **kwargs: Any) -> Sequence[Document]:
        return [tag_document(d, self.subjects.of(d, d.metadata), self.tag_path) for d in documents]

    async def atransform_documents(self, documents: Sequence[Document], **kwargs: Any) -> Sequence[Document]:
        return self.transform_documents(documents, **kwargs)


def _sqlalchemy_url(url: str) -> str:
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url[len(scheme) :]
    return url


def collection_store(
    client: Lethe,
    collection: Union[str, Collection],
    embedding: Embeddings,
    *,
    connection: Any = None,
    qdrant_client: Any = None,
    k: int = 4,
) -> VectorStore:
    """LangChain's own store reading a collection Lethe created, for retrieval.

    pgvector: ``langchain_postgres.PGVectorStore`` over Lethe's table (``connection``:
    a ``PGEngine`` or a database URL; the table lives in Lethe's database). Qdrant:
    ``langchain_qdrant.QdrantVectorStore`` over Lethe's collection alias
    (``qdrant_client``: a ``QdrantClient`` for the Qdrant Lethe uses). Write through
    :class:`LetheVectorStore`, not through this store: Lethe's table refuses rows
    without its tenant column, and Lethe would not know the points.
    """
    c = collection if isinstance(collection, Collection) else find_collection(client, collection)
    if c.attached:
        raise ValueError(f"collection {c.name!r} is an attached store: read it with the framework's store that wrote it")
    require_text_collection(c)
    backend = backend_of(c)
    if backend == Backend.PGVECTOR:
        if connection is None:
            raise ValueError("a pgvector collection needs connection= (a PGEngine or the database URL)")
        from langchain_postgres import PGEngine, PGVectorStore
        from langchain_postgres.v2.indexes import DistanceStrategy

        engine = connection if isinstance(connection, PGEngine) else PGEngine.from_connection_string(url=_sqlalchemy_url(str(connection)))
        schema, _, table = c.backend_name.rpartition(".")
        strategy = {
            Distance.COSINE: DistanceStrategy.COSINE_DISTANCE,
            Distance.DOT: DistanceStrategy.INNER_PRODUCT,
            Distance.EUCLID: DistanceStrategy.EUCLIDEAN,
        }[c.distance]
        return PGVectorStore.create_sync(
            engine=engine,
            embedding_service=embedding,
            table_name=table,
            schema_name=schema or "public",
            id_column="point_id",
            content_column="text",
            embedding_column="embedding",
            metadata_columns=list(PGVECTOR_METADATA_COLUMNS),
            distance_strategy=strategy,
            k=k,
        )
    if qdrant_client is None:
        raise ValueError("a Qdrant collection needs qdrant_client= (a QdrantClient for the Qdrant Lethe uses)")
    from qdrant_client import models

    distance = {
        Distance.COSINE: models.Distance.COSINE,
        Distance.DOT: models.Distance.DOT,
        Distance.EUCLID: models.Distance.EUCLID,
    }[c.distance]
    reader: VectorStore = _qdrant_reader()(
        client=qdrant_client,
        collection_name=c.backend_name,
        embedding=embedding,
        content_payload_key="text",
        metadata_payload_key="metadata",
        distance=distance,
    )
    return reader


@functools.lru_cache(maxsize=1)
def _qdrant_reader() -> Any:
    """LangChain's ``QdrantVectorStore`` with one change: a point of Lethe's layout keeps
    its ``source_id`` and ``subjects`` at the top of the payload (LangChain reads metadata
    from one payload key), so they are shown as metadata as on pgvector. Searching,
    filtering and retrieving are LangChain's own."""
    from langchain_qdrant import QdrantVectorStore

    class LetheQdrantReader(QdrantVectorStore):
        @classmethod
        def _document_from_point(
            cls, scored_point: Any, collection_name: str, content_payload_key: str, metadata_payload_key: str
        ) -> Document:
            doc = super()._document_from_point(scored_point, collection_name, content_payload_key, metadata_payload_key)
            payload = scored_point.payload or {}
            for key in ("source_id", "subjects"):
                if key in payload:
                    doc.metadata.setdefault(key, payload[key])
            return doc

    return LetheQdrantReader


class LetheVectorStore(VectorStore):
    """A LangChain vector store that keeps Lethe's lineage of what it writes and deletes.

    Args:
        vectorstore: the store the pipeline writes (an attached store: ``PGVector``,
            ``PGVectorStore``, ``QdrantVectorStore``), or a reader of a collection Lethe
            created (:func:`collection_store`; or use :meth:`from_collection`).
        client: a :class:`lethe.Lethe` with a publishable or secret key (default: one
            from ``LETHE_URL``/``LETHE_API_KEY``, which :meth:`close` closes; a client
            given here is the caller's to close).
        collection: the Lethe collection (its name, or the :class:`lethe.Collection`).
        subjects: where a document's subject ids come from: a metadata key (dots nest)
            or a callable taking the document. Default for an attached preset store: the
            key its mapping reads. Required for a collection Lethe created.
        tag_key: attached stores: the metadata key the mapping reads the person from,
            as given to Attach (``user_id`` or ``metadata.user_id``: a leading
            ``metadata.`` names the metadata itself; dots nest). Default: from the
            collection's preset; give it with a publishable key, which cannot read
            collections, together with ``attached=True`` (without it that is refused,
            ``ValueError``: a tag under another key than the mapping reads would escape
            the erasure). A key other than the one the collection's mapping reads is
            refused (``ValueError``).
        attached: say whether the collection is attached instead of looking it up
            (a publishable key cannot list collections).
        source_key: collections Lethe created: the metadata key of the document's
            source (LangChain loaders put the file in ``source``); a chunk without one is
            its own source.
        identifiers: a callable giving ``{subject_id: [identifiers]}`` for a document,
            sent with Track (residual search, suppression of erased people).
            Collections Lethe created take UUID point ids, unique in the tenant: a
            document is stored under a UUIDv5 of the collection and its id (a UUID too,
            so the same document may go into several collections); ``delete`` and
            ``get_by_ids`` take the document ids (and also find a point by its own id,
            as the framework's retriever shows it, or as an earlier client wrote it).
        embedding: collections Lethe created: the embeddings (default: the wrapped
            store's).

    ``add_documents`` returns the ids of the documents written; a document tagged with
    a person who is being or has been erased is not (suppressed; in an attached store
    Lethe deletes what the framework wrote). ``last_write`` holds the last Track's
    accepted ids and ``last_delete`` the last :class:`lethe.DeleteResult`.

    Use it as a context manager, or call :meth:`close`, to close the client it made
    (the wrapped store is left open: it is the pipeline's).
    """

    def __init__(
        self,
        vectorstore: VectorStore,
        *,
        collection: Union[str, Collection],
        client: Optional[Lethe] = None,
        subjects: Optional[SubjectsFrom] = None,
        tag_key: Optional[str] = None,
        attached: Optional[bool] = None,
        source_key: str = "source",
        identifiers: Optional[IdentifiersFrom] = None,
        embedding: Optional[Embeddings] = None,
    ) -> None:
        self.vectorstore = vectorstore
        self._owned: Optional[OwnedClient] = None
        if client is None:
            self._owned = OwnedClient(self, Lethe())
            client = self._owned.client
        self.client = client
        try:
            self.target: Target = resolve(client, collection, attached=attached, tag_key=tag_key)
            if subjects is None:
                if not self.target.attached or self.target.tag_path is None:
                    raise ValueError("subjects is required: the metadata key or callable that gives a document's subject ids")
                subjects = ".".join(self.target.tag_path)
            if not self.target.attached and self.target.collection is not None:
                require_text_collection(self.target.collection)
            self.subjects = Subjects(subjects, identifiers)
        except BaseException:
            self.close()
            raise
        self.source_key = source_key
        self._embedding = embedding
        self.last_write: set[str] = set()
        self.last_delete: Optional[DeleteResult] = None

    @classmethod
    def from_collection(
        cls,
        client: Lethe,
        collection: Union[str, Collection],
        embedding: Embeddings,
        *,
        subjects: SubjectsFrom,
        connection: Any = None,
        qdrant_client: Any = None,
        source_key: str = "source",
        identifiers: Optional[IdentifiersFrom] = None,
        k: int = 4,
    ) -> "LetheVectorStore":
        """A collection Lethe created, read with LangChain's own store
        (:func:`collection_store`) and written through Lethe."""
        c = collection if isinstance(collection, Collection) else find_collection(client, collection)
        reader = collection_store(client, c, embedding, connection=connection, qdrant_client=qdrant_client, k=k)
        return cls(
            reader,
            collection=c,
            client=client,
            subjects=subjects,
            source_key=source_key,
            identifiers=identifiers,
            embedding=embedding,
        )

    @classmethod
    def from_texts(
        cls, texts: list[str], embedding: Embeddings, metadatas: Optional[list[dict[str, Any]]] = None, **kwargs: Any
    ) -> "LetheVectorStore":
        raise NotImplementedError(
            "LetheVectorStore wraps a store that exists: LetheVectorStore(store, collection=..., subjects=...) "
            "or LetheVectorStore.from_collection(...)"
        )

    def close(self) -> None:
        """Closes the :class:`lethe.Lethe` client this store made (none was given);
        a client given to it, and the wrapped store, stay open."""
        if self._owned is not None:
            self._owned.close()

    def __enter__(self) -> "LetheVectorStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def embeddings(self) -> Optional[Embeddings]:
        return self._embedding if self._embedding is not None else self.vectorstore.embeddings

    @property
    def collection(self) -> str:
        return self.target.name

    # ------------------------------------------------------------------ writes

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: Optional[list[dict[str, Any]]] = None,
        *,
        ids: Optional[list[str]] = None,
        **kwargs: Any,
    ) -> list[str]:
        texts = list(texts)
        metas = metadatas or [{} for _ in texts]
        docs = [Document(page_content=t, metadata=dict(m or {})) for t, m in zip(texts, metas)]
        return self._add(docs, ids, kwargs)

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        ids = kwargs.pop("ids", None)
        if ids is None and any(d.id for d in documents):
            ids = [d.id for d in documents]
        return self._add(list(documents), ids, kwargs)

    def _add(self, docs: list[Document], ids: Optional[Sequence[Optional[str]]], kwargs: dict[str, Any]) -> list[str]:
        if not docs:
            return []
        if ids is not None and len(ids) != len(docs):
            raise ValueError(f"{len(ids)} ids for {len(docs)} documents")
        idents = self.subjects.identifiers_of(docs)
        if self.target.attached:
            return self._add_attached(docs, ids, kwargs, idents)
        return self._add_through_lethe(docs, ids, idents)

    def _add_attached(
        self, docs: list[Document], ids: Optional[Sequence[Optional[str]]], kwargs: dict[str, Any], idents: dict[str, Any]
    ) -> list[str]:
        assert self.target.tag_path is not None
        tagged = [tag_document(d, self.subjects.of(d, d.metadata), self.target.tag_path) for d in docs]
        if ids is not None:
            kwargs = dict(kwargs, ids=list(ids))
        written = list(self.vectorstore.add_documents(tagged, **kwargs))
        accepted = track_ids(self.client, self.target.name, [str(i) for i in written], idents)
        self.last_write = accepted
        return [i for i in written if norm_id(i) in accepted]

    def _add_through_lethe(
        self, docs: list[Document], ids: Optional[Sequence[Optional[str]]], idents: dict[str, Any]
    ) -> list[str]:
        embedding = self.embeddings
        if embedding is None:
            raise ValueError("a collection Lethe created needs embeddings: give embedding=, or a store that has them")
        # A document with an id is stored under the point id derived from it (unique in
        # the tenant, see point_id_for); one without gets a fresh random UUID that is its
        # id and its point id at once (unique as it is), so the id returned here is the
        # one the framework's retriever shows. delete and get_by_ids find either.
        given = list(ids or [None] * len(docs))
        doc_ids = [str(i) if i else new_point_id() for i in given]
        point_ids = [point_id_for(d, self.target.name) if i else d for i, d in zip(given, doc_ids)]
        vectors = embedding.embed_documents([d.page_content for d in docs])
        points = []
        for d, pid, vector in zip(docs, point_ids, vectors):
            source = d.metadata.get(self.source_key) if self.source_key else None
            points.append(
                TrackedPoint(
                    point_id=pid,
                    source_id=source if isinstance(source, str) and source.strip() else pid,
                    tags=self.subjects.of(d, d.metadata),
                    text=d.page_content,
                    vector=[float(x) for x in vector],
                )
            )
        accepted = track_points(self.client, self.target.name, points, idents)
        self.last_write = accepted
        return [i for i, pid in zip(doc_ids, point_ids) if norm_id(pid) in accepted]

    def delete(self, ids: Optional[list[str]] = None, **kwargs: Any) -> Optional[bool]:
        """Deletes by id. Attached stores: the framework deletes, then Lethe forgets the
        lineage of the points gone. Collections Lethe created: Lethe deletes."""
        if ids is None:
            raise ValueError("give the ids to delete (deleting everything would leave Lethe's lineage behind)")
        if isinstance(ids, (str, bytes)):
            raise TypeError("ids is a list of ids, not one str (write ['…'])")
        ids = [str(i) for i in ids]
        if not ids:
            return True
        ok: Optional[bool] = True
        if self.target.attached:
            ok = self.vectorstore.delete(ids, **kwargs)
        else:
            ids, _ = lookup_point_ids(ids, self.target.name)
        self.last_delete = delete_points(self.client, self.target.name, point_ids=ids)
        return ok

    # ------------------------------------------------------------------ reads: the wrapped store's own

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents of these ids. Collections Lethe created: looked up by their
        point ids (:func:`lethe.integrations._common.lookup_point_ids`) and returned
        with the ids asked for."""
        if self.target.attached:
            return self.vectorstore.get_by_ids(ids)
        points, answers = lookup_point_ids(ids, self.target.name)
        return _with_doc_ids(self.vectorstore.get_by_ids(points), answers)

    async def aget_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        if self.target.attached:
            return await self.vectorstore.aget_by_ids(ids)
        points, answers = lookup_point_ids(ids, self.target.name)
        return _with_doc_ids(await self.vectorstore.aget_by_ids(points), answers)

    def similarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return self.vectorstore.similarity_search(query, k=k, **kwargs)

    async def asimilarity_search(self, query: str, k: int = 4, **kwargs: Any) -> list[Document]:
        return await self.vectorstore.asimilarity_search(query, k=k, **kwargs)

    def similarity_search_with_score(self, *args: Any, **kwargs: Any) -> list[tuple[Document, float]]:
        return self.vectorstore.similarity_search_with_score(*args, **kwargs)

    async def asimilarity_search_with_score(self, *args: Any, **kwargs: Any) -> list[tuple[Document, float]]:
        return await self.vectorstore.asimilarity_search_with_score(*args, **kwargs)

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return self.vectorstore._similarity_search_with_relevance_scores(query, k=k, **kwargs)

    async def _asimilarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        return await self.vectorstore._asimilarity_search_with_relevance_scores(query, k=k, **kwargs)

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return self.vectorstore._select_relevance_score_fn()

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return self.vectorstore.similarity_search_by_vector(embedding, k=k, **kwargs)

    async def asimilarity_search_by_vector(self, embedding: list[float], k: int = 4, **kwargs: Any) -> list[Document]:
        return await self.vectorstore.asimilarity_search_by_vector(embedding, k=k, **kwargs)

    def max_marginal_relevance_search(self, query: str, *args: Any, **kwargs: Any) -> list[Document]:
        return self.vectorstore.max_marginal_relevance_search(query, *args, **kwargs)

    async def amax_marginal_relevance_search(self, query: str, *args: Any, **kwargs: Any) -> list[Document]:
        return await self.vectorstore.amax_marginal_relevance_search(query, *args, **kwargs)

    def max_marginal_relevance_search_by_vector(self, embedding: list[float], *args: Any, **kwargs: Any) -> list[Document]:
        return self.vectorstore.max_marginal_relevance_search_by_vector(embedding, *args, **kwargs)

    async def amax_marginal_relevance_search_by_vector(
        self, embedding: list[float], *args: Any, **kwargs: Any
    ) -> list[Document]:
        return await self.vectorstore.amax_marginal_relevance_search_by_vector(embedding, *args, **kwargs)
