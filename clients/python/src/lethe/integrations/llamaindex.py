"""LlamaIndex: lineage and subject tags in Lethe for an ``IngestionPipeline`` or a
``VectorStoreIndex``, without a change to how it retrieves.

``pip install 'lethe-client[llamaindex]'`` (llama-index-core; add the store's own
package: llama-index-vector-stores-postgres, -qdrant).

Usage, a store LlamaIndex writes (attached to Lethe with a preset)::

    from lethe import Lethe
    from lethe.integrations.llamaindex import LetheVectorStore, SubjectTagger

    store = LetheVectorStore(PGVectorStore.from_params(...), client=Lethe(), collection="docs",
                             subjects="user_id")
    pipeline = IngestionPipeline(transformations=[SentenceSplitter(), embed_model], vector_store=store)
    pipeline.run(documents=docs)
    index = VectorStoreIndex.from_vector_store(store, embed_model=embed_model)
    index.as_retriever().retrieve("...")        # the wrapped store's own query

and a collection Lethe created on Qdrant (Lethe writes the points, LlamaIndex reads them)::

    store = LetheVectorStore.from_collection(lethe, "notes", qdrant_client=qc, subjects="people")

Why this shape. A LlamaIndex pipeline writes through one extension point, the vector
store: ``IngestionPipeline`` and ``VectorStoreIndex`` call ``add(nodes)`` with embedded
nodes and get the store's ids back, and ``delete(ref_doc_id)`` / ``delete_nodes`` when a
document changes (the pipeline's docstore strategies, ``delete_ref_doc``). Lineage needs
the nodes' subjects, the ids the store gave them and those deletions, so:

- :class:`LetheVectorStore` wraps the store. ``add`` puts the subjects (from a metadata
  key or a callable) into the metadata key the attached store's mapping reads, lets the
  store write, then calls ``Track`` with the written ids (LlamaIndex's Postgres table
  keys rows by a ``bigint`` it does not return: the wrapper reads them back by node id
  and ``ref_doc_id``, which LlamaIndex indexes). ``delete`` and ``delete_nodes`` let the
  store delete, then ``DeletePoints`` (by source: the ``ref_doc_id``; or by id) makes
  Lethe forget the lineage of what is gone. ``query`` is the store's own.
- :class:`SubjectTagger` is a ``TransformComponent`` for the pipeline's
  ``transformations``: it puts the subjects into node metadata early (docstore,
  metadata filters) and keeps the tag key out of the text LlamaIndex embeds and shows
  the LLM, so tagging does not change retrieval. The store wrapper tags as well, so
  the tagger is optional.

A collection Lethe created has Lethe's layout and Lethe rewrites its points itself
(re-index, redaction), so LlamaIndex does not write there: the wrapper sends the nodes'
embeddings, text, ``ref_doc_id`` (as the source) and subjects through ``Track``, and
deletes through ``DeletePoints``. Reading is LlamaIndex's own ``QdrantVectorStore`` on the
collection's alias with ``text_key="text"`` (its reader falls back to a plain payload
when there is no ``_node_content``): nodes come back with their text, and Lethe's
``source_id``, ``subjects`` and ``tenant_id`` as metadata. LlamaIndex's Postgres store
has a fixed schema (``data_<name>``: ``id``, ``text``, ``metadata_``, ``node_id``,
``embedding``) and no column mapping, so it cannot read a table Lethe created: a
LlamaIndex pipeline on pgvector writes its own table and attaches it (preset
``llamaindex-pgvector``), which this wrapper then keeps in step.
"""

from __future__ import annotations

import asyncio
from typing import Any, Mapping, Optional, Sequence, Union

try:
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.schema import BaseNode, MetadataMode, TransformComponent
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryResult,
    )
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("lethe.integrations.llamaindex needs LlamaIndex: pip install 'lethe-client[llamaindex]'") from e

from .._client import Lethe
from ..types import Backend, Collection, DeleteResult, TrackedPoint
from ._common import (
    ID_BATCH,
    IdentifiersFrom,
    OwnedClient,
    Subjects,
    SubjectsFrom,
    Target,
    backend_of,
    batched,
    delete_points,
    find_collection,
    get_path,
    lookup_point_ids,
    norm_id,
    point_id_for,
    require_text_collection,
    resolve,
    subject_ids,
    tag_key_path,
    track_ids,
    track_points,
)

__all__ = ["LetheVectorStore", "SubjectTagger", "collection_store", "tag_node"]


def tag_node(node: BaseNode, ids: Sequence[str], path: Sequence[str]) -> None:
    """Puts ``ids`` at ``path`` in the node's metadata (in place, as LlamaIndex's
    transformations do) unless it already names exactly those subjects there, and keeps
    the key out of the embedded and LLM text."""
    current = get_path(node.metadata, path)
    try:
        same = subject_ids(current) == list(ids)
    except TypeError:
        same = False
    if not same and not (not ids and current is None):
        holder: Any = node.metadata
        for k in path[:-1]:
            if not isinstance(holder.get(k), dict):
                holder[k] = {}
            holder = holder[k]
        holder[path[-1]] = list(ids)
    key = path[0]
    if key not in node.excluded_embed_metadata_keys:
        node.excluded_embed_metadata_keys.append(key)
    if key not in node.excluded_llm_metadata_keys:
        node.excluded_llm_metadata_keys.append(key)


class SubjectTagger(TransformComponent):
    """An ``IngestionPipeline`` transformation: each node's subject ids, from a metadata
    key or a callable taking the node, go into its metadata at ``tag_key`` (a list),
    excluded from the text LlamaIndex embeds. ``tag_key`` is the attached store's, read
    as Attach reads it: ``"user_id"`` and ``"metadata.user_id"`` are both the metadata
    key ``user_id``; dots nest."""

    tag_key: str
    _subjects: Subjects = PrivateAttr()
    _tag_path: tuple[str, ...] = PrivateAttr()

    def __init__(self, subjects: SubjectsFrom, tag_key: str, **kwargs: Any) -> None:
        super().__init__(tag_key=tag_key, **kwargs)  # type: ignore[call-arg]  # a pydantic field
        self._subjects = Subjects(subjects)
        self._tag_path = tag_key_path(tag_key)

    @classmethod
    def class_name(cls) -> str:
        return "LetheSubjectTagger"

    def __call__(self, nodes: Sequence[BaseNode], **kwargs: Any) -> Sequence[BaseNode]:
        for n in nodes:
            tag_node(n, self._subjects.of(n, n.metadata), self._tag_path)
        return nodes


def _with_node_ids(nodes: Sequence[BaseNode], answers: Mapping[str, str]) -> list[BaseNode]:
    """Nodes read from a collection Lethe created by point id, each with the node id
    it was asked for (``answers``: point id to node id)."""
    out = []
    for n in nodes:
        asked = answers.get(norm_id(n.node_id))
        if asked is not None and asked != n.node_id:
            n.id_ = asked
        out.append(n)
    return out


def _is_llama_pg(store: Any) -> bool:
    return type(store).__module__.startswith("llama_index.vector_stores.postgres")


def _pg_row_ids(store: Any, node_ids: Sequence[str], ref_doc_ids: Sequence[Optional[str]] = ()) -> dict[str, list[str]]:
    """LlamaIndex's Postgres table keys rows by a bigint it does not return: read them
    back by node id (narrowed by ``ref_doc_id``, which LlamaIndex indexes, when every
    node has one). Uses the store's own session and table class (pinned version)."""
    from sqlalchemy import select

    store._initialize()
    table = store._table_class
    refs = sorted({r for r in ref_doc_ids if r})
    out: dict[str, list[str]] = {}
    with store._session() as session:
        for batch in batched(list(node_ids), ID_BATCH):
            q = select(table.id, table.node_id).where(table.node_id.in_(list(batch)))
            if refs and len(refs) <= ID_BATCH and all(ref_doc_ids):
                q = q.where(table.metadata_["ref_doc_id"].astext.in_(refs))
            for row_id, node_id in session.execute(q):
                out.setdefault(str(node_id), []).append(str(row_id))
    return out


def collection_store(client: Lethe, collection: Union[str, Collection], *, qdrant_client: Any) -> BasePydanticVectorStore:
    """LlamaIndex's own ``QdrantVectorStore`` reading a Qdrant collection Lethe created
    (its alias), for retrieval; write through :class:`LetheVectorStore`. A pgvector
    collection Lethe created cannot be read by LlamaIndex (see the module docstring)."""
    c = collection if isinstance(collection, Collection) else find_collection(client, collection)
    if c.attached:
        raise ValueError(f"collection {c.name!r} is an attached store: read it with the LlamaIndex store that wrote it")
    require_text_collection(c)
    if backend_of(c) != Backend.QDRANT:
        raise ValueError(
            f"collection {c.name!r} is a pgvector table Lethe created: LlamaIndex's PGVectorStore reads only its "
            "own schema (data_<name>). Let LlamaIndex write its table and attach it (preset llamaindex-pgvector)"
        )
    from llama_index.vector_stores.qdrant import QdrantVectorStore

    return QdrantVectorStore(collection_name=c.backend_name, client=qdrant_client, text_key="text")


class LetheVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store that keeps Lethe's lineage of what it writes and deletes.

    Args:
        vector_store: the store the pipeline writes (an attached ``PGVectorStore`` or
            ``QdrantVectorStore``), or a reader of a Qdrant collection Lethe created
            (:func:`collection_store`; or use :meth:`from_collection`).
        client: a :class:`lethe.Lethe` with a publishable or secret key (default: one
            from ``LETHE_URL``/``LETHE_API_KEY``, which :meth:`close` closes; a client
            given here is the caller's to close).
        collection: the Lethe collection (name or :class:`lethe.Collection`).
        subjects: a metadata key (dots nest) or a callable taking the node. Default for an
            attached preset store: the key its mapping reads; required otherwise.
        tag_key, attached: as in the LangChain integration (``tag_key`` as given to
            Attach: ``user_id`` or ``metadata.user_id``; a publishable key cannot look
            the collection up: say ``attached=`` and, for attached stores, ``tag_key``,
            without which ``attached=True`` is refused).
        identifiers: a callable giving ``{subject_id: [identifiers]}`` for a node.

    In a collection Lethe created a node is stored under a UUIDv5 of the collection and
    its node id (point ids are unique in the tenant: the same node may go into several
    collections); ``delete_nodes`` and ``get_nodes`` take node ids (and also find a
    point by its own id, as a query result shows it, or as an earlier client wrote it).

    ``add`` returns one id per node, in order, as LlamaIndex's own stores do (an index
    pairs them with the nodes), including nodes that were not kept because they name
    a person who is being or has been erased (suppressed; in an attached store Lethe
    deletes what the framework wrote): ``last_write`` holds the ids of the nodes kept.
    Call :meth:`close` to close the client it made (the wrapped store stays open).
    """

    stores_text: bool = True
    flat_metadata: bool = False

    _store: Any = PrivateAttr()
    _client: Lethe = PrivateAttr()
    _target: Target = PrivateAttr()
    _subjects: Subjects = PrivateAttr()
    _pg: bool = PrivateAttr()
    _owned: Optional[OwnedClient] = PrivateAttr(default=None)
    _last_write: list[str] = PrivateAttr(default_factory=list)
    _last_delete: Optional[DeleteResult] = PrivateAttr(default=None)

    def __init__(
        self,
        vector_store: BasePydanticVectorStore,
        *,
        collection: Union[str, Collection],
        client: Optional[Lethe] = None,
        subjects: Optional[SubjectsFrom] = None,
        tag_key: Optional[str] = None,
        attached: Optional[bool] = None,
        identifiers: Optional[IdentifiersFrom] = None,
    ) -> None:
        super().__init__(stores_text=True, is_embedding_query=getattr(vector_store, "is_embedding_query", True))
        self._store = vector_store
        if client is None:
            self._owned = OwnedClient(self, Lethe())
            client = self._owned.client
        self._client = client
        try:
            self._target = resolve(client, collection, attached=attached, tag_key=tag_key)
            if subjects is None:
                if not self._target.attached or self._target.tag_path is None:
                    raise ValueError("subjects is required: the metadata key or callable that gives a node's subject ids")
                subjects = ".".join(self._target.tag_path)
            self._pg = _is_llama_pg(vector_store)
            if not self._target.attached:
                c = self._target.collection
                if self._pg or (c is not None and c.backend == Backend.PGVECTOR):
                    raise ValueError(
                        "LlamaIndex cannot read a pgvector table Lethe created (its PGVectorStore has a fixed schema): "
                        "let it write its own table and attach it (preset llamaindex-pgvector)"
                    )
                if c is not None:
                    require_text_collection(c)
            self._subjects = Subjects(subjects, identifiers)
        except BaseException:
            self.close()
            raise

    @classmethod
    def from_collection(
        cls,
        client: Lethe,
        collection: Union[str, Collection],
        *,
        qdrant_client: Any,
        subjects: SubjectsFrom,
        identifiers: Optional[IdentifiersFrom] = None,
    ) -> "LetheVectorStore":
        """A Qdrant collection Lethe created, read with LlamaIndex's own Qdrant store
        (:func:`collection_store`) and written through Lethe."""
        c = collection if isinstance(collection, Collection) else find_collection(client, collection)
        reader = collection_store(client, c, qdrant_client=qdrant_client)
        return cls(reader, collection=c, client=client, subjects=subjects, identifiers=identifiers)

    @classmethod
    def class_name(cls) -> str:
        return "LetheVectorStore"

    @property
    def client(self) -> Any:
        return self._store.client

    @property
    def vector_store(self) -> BasePydanticVectorStore:
        """The wrapped store."""
        store: BasePydanticVectorStore = self._store
        return store

    @property
    def collection(self) -> str:
        return self._target.name

    @property
    def last_write(self) -> list[str]:
        """The ids, of those the last ``add`` returned, of the nodes kept (not suppressed)."""
        return list(self._last_write)

    @property
    def last_delete(self) -> Optional[DeleteResult]:
        return self._last_delete

    def close(self) -> None:
        """Closes the :class:`lethe.Lethe` client this store made (none was given);
        a client given to it, and the wrapped store, stay open."""
        if self._owned is not None:
            self._owned.close()

    # ------------------------------------------------------------------ writes

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        nodes = list(nodes)
        self._last_write = []
        if not nodes:
            return []
        idents = self._subjects.identifiers_of(nodes)
        if self._target.attached:
            return self._add_attached(nodes, add_kwargs, idents)
        return self._add_through_lethe(nodes, idents)

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    def _add_attached(self, nodes: list[BaseNode], kwargs: dict[str, Any], idents: dict[str, Any]) -> list[str]:
        assert self._target.tag_path is not None
        for n in nodes:
            tag_node(n, self._subjects.of(n, n.metadata), self._target.tag_path)
        # The store's ids, one per node in order (LlamaIndex's stores return the node ids).
        written = [str(i) for i in self._store.add(nodes, **kwargs)]
        if self._pg:
            rows = _pg_row_ids(self._store, written, [n.ref_doc_id for n in nodes])
            point_ids = [r for i in written for r in rows.get(i, [])]
            accepted = track_ids(self._client, self._target.name, point_ids, idents)
            self._last_write = [i for i in written if any(norm_id(r) in accepted for r in rows.get(i, []))]
        else:
            accepted = track_ids(self._client, self._target.name, written, idents)
            self._last_write = [i for i in written if norm_id(i) in accepted]
        return written

    def _add_through_lethe(self, nodes: list[BaseNode], idents: dict[str, Any]) -> list[str]:
        points = []
        for n in nodes:
            if n.embedding is None:
                raise ValueError(f"node {n.node_id} has no embedding: embed it first (an embed model in the pipeline)")
            points.append(
                TrackedPoint(
                    point_id=point_id_for(n.node_id, self._target.name),
                    source_id=n.ref_doc_id or n.node_id,
                    tags=self._subjects.of(n, n.metadata),
                    text=n.get_content(metadata_mode=MetadataMode.NONE),
                    vector=[float(x) for x in n.embedding],
                )
            )
        accepted = track_points(self._client, self._target.name, points, idents)
        self._last_write = [n.node_id for n in nodes if norm_id(point_id_for(n.node_id, self._target.name)) in accepted]
        return [n.node_id for n in nodes]

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Every node of the source document: the store deletes them (attached), then
        Lethe forgets (attached) or deletes (its own collection) them by source."""
        if self._target.attached:
            self._store.delete(ref_doc_id, **delete_kwargs)
        self._last_delete = delete_points(self._client, self._target.name, source_ids=[ref_doc_id])

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)

    def delete_nodes(
        self, node_ids: Optional[list[str]] = None, filters: Optional[MetadataFilters] = None, **delete_kwargs: Any
    ) -> None:
        if isinstance(node_ids, (str, bytes)):
            raise TypeError("node_ids is a list of ids, not one str (write ['…'])")
        if not node_ids and not filters:
            return
        if not self._target.attached:
            if filters:
                raise NotImplementedError("a collection Lethe created deletes by node id or ref_doc_id, not by filters")
            ids, _ = lookup_point_ids(node_ids or [], self._target.name)
            self._last_delete = delete_points(self._client, self._target.name, point_ids=ids)
            return
        ids = list(node_ids or [])
        if filters:
            ids = [n.node_id for n in self._store.get_nodes(node_ids=node_ids, filters=filters)]
        point_ids: list[str] = ids
        if self._pg:
            rows = _pg_row_ids(self._store, ids)
            point_ids = [r for i in ids for r in rows.get(i, [])]
        self._store.delete_nodes(node_ids=node_ids, filters=filters, **delete_kwargs)
        if point_ids:
            self._last_delete = delete_points(self._client, self._target.name, point_ids=point_ids)

    async def adelete_nodes(
        self, node_ids: Optional[list[str]] = None, filters: Optional[MetadataFilters] = None, **delete_kwargs: Any
    ) -> None:
        await asyncio.to_thread(self.delete_nodes, node_ids, filters, **delete_kwargs)

    def clear(self) -> None:
        raise NotImplementedError(
            "clear() would empty the store behind Lethe's lineage: delete documents by ref_doc_id, "
            "or drop the store and its Lethe collection"
        )

    async def aclear(self) -> None:
        self.clear()

    # ------------------------------------------------------------------ reads: the wrapped store's own

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        result: VectorStoreQueryResult = self._store.query(query, **kwargs)
        return result

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        result: VectorStoreQueryResult = await self._store.aquery(query, **kwargs)
        return result

    def get_nodes(
        self, node_ids: Optional[list[str]] = None, filters: Optional[MetadataFilters] = None
    ) -> list[BaseNode]:
        """The wrapped store's ``get_nodes``. Collections Lethe created: node ids are
        looked up by their point ids (as ``delete_nodes`` deletes them) and the nodes
        returned with the ids asked for."""
        if self._target.attached or not node_ids:
            nodes: list[BaseNode] = self._store.get_nodes(node_ids=node_ids, filters=filters)
            return nodes
        points, answers = lookup_point_ids(node_ids, self._target.name)
        return _with_node_ids(self._store.get_nodes(node_ids=points, filters=filters), answers)

    async def aget_nodes(
        self, node_ids: Optional[list[str]] = None, filters: Optional[MetadataFilters] = None
    ) -> list[BaseNode]:
        if self._target.attached or not node_ids:
            nodes: list[BaseNode] = await self._store.aget_nodes(node_ids=node_ids, filters=filters)
            return nodes
        points, answers = lookup_point_ids(node_ids, self._target.name)
        return _with_node_ids(await self._store.aget_nodes(node_ids=points, filters=filters), answers)
