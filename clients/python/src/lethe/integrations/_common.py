"""What the LangChain and LlamaIndex integrations share: where a document's subjects
come from, where an attached store keeps them, which collection a store is, and the
Track and DeletePoints calls in batches."""

from __future__ import annotations

import uuid
import weakref
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, MutableMapping, Optional, Sequence, TypeVar, Union

from .. import _convert as cv
from .._client import Lethe
from ..errors import PermissionDenied
from ..types import Backend, Collection, DeleteResult, IdentifierLike, TrackedPoint

#: Where a document's subject ids come from: a metadata key (``"user_id"``; dots for
#: nested keys, ``"owner.id"``) or a callable that takes the document (LangChain
#: ``Document``, LlamaIndex node) and returns an id, a list of ids or None.
SubjectsFrom = Union[str, Callable[[Any], Any]]
#: Identifiers of the subjects a document names, for residual search and suppression:
#: a callable that takes the document and returns ``{subject_id: [identifier, ...]}``.
IdentifiersFrom = Callable[[Any], Optional[Mapping[str, Iterable[IdentifierLike]]]]

#: Ids per Track or DeletePoints request (the server takes up to 1,000).
ID_BATCH = 1000
#: Points with vectors per Track request, at most.
VECTOR_BATCH = 100
#: Encoded bytes per Track request, at most: well below 4 MiB, gRPC's usual bound on
#: a message (the server's ``max_message_bytes`` is 16 MiB by default, but an operator
#: or a proxy in front may keep 4 MiB). 100 points of 32 KiB of text and 4,096
#: dimensions would be 4.8 MiB: such points go in smaller batches.
TRACK_BYTES = 2 * 1024 * 1024

#: Presets whose tag path is a path inside the framework's metadata (LangChain on
#: Qdrant keeps metadata under the payload key ``metadata``).
_PRESET_METADATA_PREFIX = {
    "langchain-pgvector": 0,
    "langchain-pgvector-store": 0,
    "llamaindex-pgvector": 0,
    "llamaindex-qdrant": 0,
    "langchain-qdrant": 1,
}

T = TypeVar("T")


def batched(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def subject_ids(raw: Any, what: str = "subjects") -> list[str]:
    """A tag value as the list of subject ids it names: a string (or an integer, read as
    its decimal digits, as the server reads it) is one id, a list (tuple, set) holds ids,
    None or blank is none. Order kept, duplicates dropped."""
    if raw is None:
        return []
    if isinstance(raw, (str, int)) and not isinstance(raw, bool):
        values: Iterable[Any] = [raw]
    elif isinstance(raw, (list, tuple, set, frozenset)):
        values = raw
    else:
        raise TypeError(f"{what} must be a subject id, a list of ids or None, not {type(raw).__name__}")
    out: list[str] = []
    for v in values:
        if v is None:
            continue
        # An integer id is the id the server reads from `{"user_id": 42}`: "42".
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str):
            # The value is not echoed: it may be the person's address, and
            # exception texts end up in pipeline logs.
            raise TypeError(f"{what} holds a {type(v).__name__}: subject ids are strings or integers")
        if v.strip() and v not in out:
            out.append(v)
    return out


def tag_key_path(tag_key: str) -> tuple[str, ...]:
    """An attached store's ``tag_key`` as keys inside the framework's metadata, read as
    the server reads it in Attach: a leading ``metadata.`` removed (it names the
    metadata itself), then split on dots (``"metadata.user_id"`` and ``"user_id"`` are
    both ``("user_id",)``; ``"owner.id"`` is ``("owner", "id")``)."""
    if not isinstance(tag_key, str) or not tag_key.strip():
        raise ValueError("tag_key must be a metadata key, as `user_id` or `metadata.user_id`")
    rest = tag_key[len("metadata.") :] if tag_key.startswith("metadata.") else tag_key
    keys = tuple(rest.split("."))
    if any(not k for k in keys):
        raise ValueError(
            f"tag_key {tag_key!r} must be keys separated by single dots, as `user_id` or `metadata.user.id`"
        )
    return keys


def split_key(key: Union[str, Sequence[str]], metadata: Optional[Mapping[str, Any]] = None) -> tuple[str, ...]:
    """A metadata key as a path: a key present as it is stays whole, else dots nest."""
    if not isinstance(key, str):
        return tuple(key)
    if metadata is not None and key in metadata:
        return (key,)
    return tuple(key.split("."))


def get_path(metadata: Mapping[str, Any], path: Sequence[str]) -> Any:
    node: Any = metadata
    for k in path:
        if not isinstance(node, Mapping) or k not in node:
            return None
        node = node[k]
    return node


def with_path(metadata: Mapping[str, Any], path: Sequence[str], value: Any) -> dict[str, Any]:
    """A copy of ``metadata`` with ``value`` at ``path`` (the dicts on the way copied,
    the caller's left alone)."""
    out = dict(metadata)
    node: MutableMapping[str, Any] = out
    for k in path[:-1]:
        inner = node.get(k)
        inner = dict(inner) if isinstance(inner, Mapping) else {}
        node[k] = inner
        node = inner
    node[path[-1]] = value
    return out


class Subjects:
    """Reads a document's subject ids (and identifiers) the way the pipeline says."""

    def __init__(self, subjects: SubjectsFrom, identifiers: Optional[IdentifiersFrom] = None) -> None:
        if not callable(subjects) and not (isinstance(subjects, str) and subjects.strip()):
            raise TypeError("subjects must be a metadata key or a callable")
        self.source = subjects
        self.identifiers = identifiers

    def of(self, doc: Any, metadata: Mapping[str, Any]) -> list[str]:
        if callable(self.source):
            return subject_ids(self.source(doc), "the subjects callable's result")
        return subject_ids(get_path(metadata, split_key(self.source, metadata)), f"metadata {self.source!r}")

    def identifiers_of(self, docs: Iterable[Any]) -> dict[str, list[IdentifierLike]]:
        """Every identifier the ``identifiers`` callable gives for ``docs``, by subject."""
        out: dict[str, list[IdentifierLike]] = {}
        if self.identifiers is None:
            return out
        for doc in docs:
            for sid, idents in (self.identifiers(doc) or {}).items():
                have = out.setdefault(sid, [])
                for i in idents:
                    if i not in have:
                        have.append(i)
        return out


def tag_path(collection: Collection) -> Optional[tuple[str, ...]]:
    """Where an attached framework store keeps the tag inside the framework's metadata
    (from the collection's preset mapping); None for Lethe's own collections and for
    mappings without a preset."""
    mapping = collection.mapping()
    if not mapping:
        return None
    skip = _PRESET_METADATA_PREFIX.get(mapping.get("preset") or "")
    if skip is None:
        return None
    path = tuple((mapping.get("tags") or {}).get("path") or ())
    return path[skip:] or None


@dataclass(frozen=True)
class Target:
    """The Lethe collection a framework store is, as the integration needs it."""

    name: str
    attached: bool
    #: attached: where the tag goes in the framework's metadata
    tag_path: Optional[tuple[str, ...]]
    #: when known (looked up, or given)
    collection: Optional[Collection] = None


class OwnedClient:
    """A :class:`lethe.Lethe` client an integration made for itself (none was given):
    closed by :meth:`close`, or else when its owner is garbage collected."""

    def __init__(self, owner: object, client: Lethe) -> None:
        self.client = client
        self._finalizer = weakref.finalize(owner, client.close)

    def close(self) -> None:
        """Closes the client (once; later calls do nothing)."""
        self._finalizer()


def _lookup_collection(client: Lethe, name: str) -> Optional[Collection]:
    """The collection ``name``, or None when this key cannot list collections (a
    publishable key); ``ValueError`` when the tenant has no such collection."""
    try:
        collections = client.list_collections()
    except PermissionDenied:
        return None
    for c in collections:
        if c.name == name:
            return c
    raise ValueError(
        f"no collection {name!r} in this tenant: create it (Lethe.create_collection) "
        "or attach the framework's store (Lethe.attach)"
    )


def find_collection(client: Lethe, name: str) -> Collection:
    """The collection ``name`` (ListCollections: a secret or auditor key)."""
    found = _lookup_collection(client, name)
    if found is None:
        raise ValueError(
            f"this key cannot read collection {name!r} (ListCollections needs a secret or auditor key): "
            "pass the Collection itself (from create_collection, attach or list_collections), "
            "or say attached=True/False and, for an attached store, tag_key"
        )
    return found


def resolve(
    client: Lethe,
    collection: Union[str, Collection],
    *,
    attached: Optional[bool],
    tag_key: Optional[str],
) -> Target:
    """The target of an integration: from the Collection given or looked up, or (for
    a publishable key, which cannot list collections) from ``attached`` and ``tag_key``.

    ``tag_key`` is read as Attach reads it (:func:`tag_key_path`); when the
    collection's preset mapping is known, it must name the key that mapping reads. An
    attached store whose key is not known (``attached=True`` without ``tag_key``, and a
    key that cannot look the collection up; or a mapping without a preset) is refused:
    the wrapper never guesses where the tag goes."""
    found: Optional[Collection] = collection if isinstance(collection, Collection) else None
    name = collection.name if isinstance(collection, Collection) else collection
    if found is None and attached is None:
        found = find_collection(client, name)
    elif found is None and attached and not tag_key:
        # The key the mapping reads is needed: from its preset, when this key can look
        # the collection up (a secret or auditor key).
        found = _lookup_collection(client, name)
    is_attached = found.attached if found is not None else bool(attached)
    if attached is not None and found is not None and attached != found.attached:
        raise ValueError(f"collection {name!r} is {'attached' if found.attached else 'created by Lethe'}, not as said")
    path: Optional[tuple[str, ...]] = None
    if is_attached:
        mapped = tag_path(found) if found is not None else None
        if tag_key:
            path = tag_key_path(tag_key)
            if mapped is not None and path != mapped:
                raise ValueError(
                    f"tag_key {tag_key!r} is metadata key {'.'.join(path)!r}, but collection {name!r} was attached "
                    f"reading the person from metadata key {'.'.join(mapped)!r}: give tag_key={'.'.join(mapped)!r} "
                    "(or leave it out), or attach the store again with the key its documents use"
                )
        else:
            path = mapped
        # No guessing (not `subjects`, not any default key): a tag written under a key
        # the mapping does not read is invisible to the erasure's tag filter, and the
        # person's points would stay in the store.
        if path is None and found is None:
            raise ValueError(
                f"this key cannot look collection {name!r} up (a publishable key cannot list collections), so "
                "the metadata key its mapping reads the person from is not known: with attached=True give "
                "tag_key, the key given to Attach (`lethe attach --tag-key`, as `user_id` or "
                "`metadata.user_id`), or pass the Collection itself (from attach or list_collections)"
            )
        if path is None:
            raise ValueError(
                f"collection {name!r} is attached without a preset: give tag_key, the metadata key "
                "its mapping reads the person from"
            )
    return Target(name=name, attached=is_attached, tag_path=path, collection=found)


def track_ids(client: Lethe, collection: str, ids: Sequence[str], subjects: Mapping[str, Any]) -> set[str]:
    """Track of points an attached store's framework wrote (ids only: Lethe reads tags,
    source and text from the store); returns the accepted ids, normalised."""
    # A framework may list an id twice; the server refuses a repeated id.
    points = [TrackedPoint(point_id=i, source_id="") for i in dict.fromkeys(ids)]
    return _track(client, collection, points, subjects, ID_BATCH)


def track_points(client: Lethe, collection: str, points: Sequence[TrackedPoint], subjects: Mapping[str, Any]) -> set[str]:
    """Track with vectors (Lethe writes the points into its own collection); returns
    the accepted ids, normalised."""
    return _track(client, collection, points, subjects, VECTOR_BATCH)


def _track(
    client: Lethe, collection: str, points: Sequence[TrackedPoint], subjects: Mapping[str, Any], max_points: int
) -> set[str]:
    """Track in batches (the subjects with the first); returns the accepted ids, normalised."""
    accepted: set[str] = set()
    first = True
    for batch in track_batches(points, subjects, max_points):
        r = client.track(collection, batch, subjects=subjects if first else None)
        first = False
        accepted.update(norm_id(i) for i in r.point_ids)
    return accepted


def _field_bytes(size: int) -> int:
    """Bytes of a length-delimited field of ``size`` bytes in a message: its tag, its
    length (a varint) and its content."""
    return 1 + max(1, (size.bit_length() + 6) // 7) + size


def track_batches(
    points: Sequence[TrackedPoint],
    subjects: Optional[Mapping[str, Any]] = None,
    max_points: int = VECTOR_BATCH,
    max_bytes: int = TRACK_BYTES,
) -> Iterator[list[TrackedPoint]]:
    """``points`` in order, in batches of at most ``max_points`` whose Track request
    (the first one with ``subjects``) encodes to at most ``max_bytes``; a point larger
    than that on its own goes alone (the server says why it refuses it)."""
    budget = max_bytes - sum(_field_bytes(r.ByteSize()) for r in cv.subject_refs(subjects))
    batch: list[TrackedPoint] = []
    size = 0
    for p in points:
        n = _field_bytes(cv.tracked_point(p).ByteSize())
        if batch and (len(batch) >= max_points or size + n > budget):
            yield batch
            batch, size, budget = [], 0, max_bytes
        batch.append(p)
        size += n
    if batch:
        yield batch


def delete_points(
    client: Lethe, collection: str, *, point_ids: Sequence[Any] = (), source_ids: Sequence[str] = ()
) -> DeleteResult:
    """DeletePoints in batches; the results summed."""
    total = DeleteResult(deleted=0, forgotten=0, kept=0, held=0)
    # A framework's delete list may repeat an id; the server refuses a repeated id.
    # A str is iterable: its characters would be ids (and other points deleted).
    if isinstance(point_ids, (str, bytes)) or isinstance(source_ids, (str, bytes)):
        raise TypeError("point_ids and source_ids are lists of ids, not one str (write ['…'])")
    unique_points = dict.fromkeys(str(p) for p in point_ids)
    unique_sources = dict.fromkeys(source_ids)
    items: list[tuple[str, str]] = [("p", p) for p in unique_points] + [("s", s) for s in unique_sources]
    for batch in batched(items, ID_BATCH):
        r = client.delete_points(
            collection,
            point_ids=[v for k, v in batch if k == "p"],
            source_ids=[v for k, v in batch if k == "s"],
        )
        total = DeleteResult(
            deleted=total.deleted + r.deleted,
            forgotten=total.forgotten + r.forgotten,
            kept=total.kept + r.kept,
            held=total.held + r.held,
        )
    return total


def norm_id(point_id: Any) -> str:
    """A point id as Lethe shows it: UUIDs hyphenated in lower case (LangChain's Qdrant
    store writes ``uuid4().hex``), anything else as its text."""
    s = str(point_id)
    try:
        return str(uuid.UUID(s))
    except ValueError:
        return s


def new_point_id() -> str:
    return str(uuid.uuid4())


#: Namespace of the point ids that documents' ids are stored under in a collection
#: Lethe created (a UUIDv5 of the collection and the id).
POINT_ID_NAMESPACE = uuid.UUID("6c657468-652d-7069-6400-000000000001")


def _doc_id_text(doc_id: Any) -> tuple[str, Optional[str]]:
    """A document id as the text its point id is derived from, and its UUID (hyphenated,
    lower case) when it is one: a UUID's forms (``hex``, upper case) are one id."""
    s = str(doc_id)
    try:
        u = str(uuid.UUID(s))
    except ValueError:
        return s, None
    return u, u


def point_id_for(doc_id: Any, collection: str) -> str:
    """The point id in a collection Lethe created (UUIDs only) of a document id: a UUIDv5
    of the collection and the id, the same every time, so that a later delete or get by
    that id finds the point.

    Every id is derived, UUIDs too: point ids are unique in a tenant (Lethe refuses an
    id another collection or source holds), and the same document has the same id in
    every collection a pipeline writes (LangChain's ``index()`` with its default key
    encoder gives a UUIDv5 of the content; a LlamaIndex node id is kept across stores),
    so it gets one point per collection. An id that is not a UUID (``index()`` with a
    ``sha256`` key encoder, a node id of your own) is derived as before; a UUID in any of
    its forms (``hex``, upper case) is read as the one UUID it is."""
    text, _ = _doc_id_text(doc_id)
    return str(uuid.uuid5(POINT_ID_NAMESPACE, f"{collection}\n{text}"))


def lookup_point_ids(doc_ids: Iterable[Any], collection: str) -> tuple[list[str], dict[str, str]]:
    """The point ids to delete or read for document ids in a collection Lethe created,
    and which document id each point id answers for (keys normalised, :func:`norm_id`).

    Every id is looked up under :func:`point_id_for`; a UUID also as it is. Why both
    (a decision, kept on purpose):

    - Compatibility: earlier versions of this client stored a document whose id is a
      UUID under that UUID itself. Those points must stay reachable: ``index()``
      cleanup and ``delete``/``delete_nodes`` must delete them (else they stay in the
      store and in lineage until the person's erasure) and ``get_by_ids``/``get_nodes``
      must find them.
    - A document read back with the framework's own retriever carries its point id
      (Lethe's layout keeps no other), and a LangChain document written without an id
      has its fresh UUID as its point id: deleting or getting by that id finds the point.

    It costs nothing else: a point id names at most one point of the collection, and
    one the collection does not hold is not an error (DeletePoints counts what it
    deleted). It cannot reach another document: a UUID names, in this collection, the
    point an earlier client wrote for that document id, or the point whose id it is.

    Not handled: writing again (``add_documents`` with the same id) a document an earlier
    client wrote under its UUID writes the derived point beside the old one (both tagged,
    both erased with their people); ``index()`` never does this (an unchanged document is
    skipped, a changed one gets a new id and the old is deleted), and a delete by the id
    removes both.
    """
    points: list[str] = []
    answers: dict[str, str] = {}
    for d in doc_ids:
        doc = str(d)
        _, as_uuid = _doc_id_text(doc)
        for p in (point_id_for(doc, collection), as_uuid):
            if p is not None and p not in answers:
                answers[p] = doc
                points.append(p)
    return points, answers


def require_text_collection(c: Collection) -> None:
    if not c.store_text:
        raise ValueError(
            f"collection {c.name!r} keeps no text (store_text false): a framework retriever over it "
            "would return documents without content; create it with store_text=True"
        )


def backend_of(c: Collection) -> Backend:
    if c.backend is None:
        raise ValueError(f"collection {c.name!r} has a backend this client does not know")
    return c.backend
