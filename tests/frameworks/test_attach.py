"""Attach (issue 13) with the frameworks' own packages: each store is written by its
framework, attached with one Attach call, and one person erased from it; then the
framework itself must find nothing of her and everything else, and keep working.

Per store (LangChain PGVector and PGVectorStore, LlamaIndex PGVectorStore, LangChain
and LlamaIndex on Qdrant, a hand-made pgvector table and a hand-made Qdrant
collection), 12 chunks: alice alone (her id as a string and as a one-element list),
alice with bob, alice with carol, bob, carol, bob with carol, two naming no one.
"""

from __future__ import annotations

import dataclasses
import secrets
from typing import Any, Iterator, Optional

import pytest

import lethe
from conftest import QDRANT_URL
from stores import ALL, Doc, LangchainPgvector, People, Store, corpus, later_docs, uniq

ADOPTION_TIMEOUT = 120.0
ERASURE_TIMEOUT = 180.0


def _skip_without_qdrant(cls: type[Store], qdrant_problem: Optional[str]) -> None:
    if cls.backend == "qdrant" and qdrant_problem:
        pytest.skip(qdrant_problem)


@dataclasses.dataclass
class Erased:
    """A store after: fill, attach, adoption, erasure of alice."""

    store: Store
    people: People
    docs: list[Doc]
    attached: lethe.AttachResult
    adoption: lethe.AttachJob
    listed: list[str]
    before: dict[str, int]
    before_all: int
    before_other: int
    counted: lethe.SubjectCounts
    job: lethe.ErasureJob
    after: dict[str, int]
    after_all: int

    def count_of(self, counts: list[lethe.CollectionCount]) -> lethe.CollectionCount:
        mine = [c for c in counts if c.collection == self.store.name]
        assert len(mine) == 1, f"no count for {self.store.name} in {counts}"
        return mine[0]

    def by_person(self) -> dict[str, int]:
        return {who: self.store.count_person(who) for who in self.everyone()}

    def everyone(self) -> list[str]:
        return [self.people.alice, self.people.bob, self.people.carol]


@pytest.fixture(scope="module", params=ALL, ids=lambda c: c.label)
def erased(request: Any, server: Any, client: lethe.Lethe, qdrant_problem: Optional[str]) -> Iterator[Erased]:
    cls: type[Store] = request.param
    _skip_without_qdrant(cls, qdrant_problem)
    people = People.fresh()
    store = cls(server.db_url, QDRANT_URL, people)
    try:
        docs = corpus(people)
        store.fill(docs)
        if isinstance(store, LangchainPgvector):
            store.fill_other(docs)  # the same people in a LangChain collection not attached
        before = {who: store.count_person(who) for who in (people.alice, people.bob, people.carol)}
        # The framework wrote what the corpus says (else nothing below means anything).
        assert before == {people.alice: 5, people.bob: 4, people.carol: 4}, before
        before_all = store.count_all()
        assert before_all == 12
        before_other = store.count_other(people.alice) if isinstance(store, LangchainPgvector) else 0

        attached = client.attach(store.name, **store.attach_args())
        adoption = client.wait_for_attach(store.name, timeout=ADOPTION_TIMEOUT)
        listed = sorted(c.name for c in client.list_collections())
        counted = client.count_subject(people.alice)
        job = client.erase(
            people.alice, requested_by="tests/frameworks", reason="issue 13 framework test", wait_timeout=ERASURE_TIMEOUT
        )
        after = {who: store.count_person(who) for who in (people.alice, people.bob, people.carol)}
        yield Erased(
            store, people, docs, attached, adoption, listed, before, before_all, before_other, counted, job, after,
            store.count_all(),
        )
    finally:
        store.close()


def test_attach_registers_the_store_with_the_preset_mapping(erased: Erased) -> None:
    a = erased.attached
    assert not a.already_attached
    assert a.collection.name == erased.store.name
    assert a.collection.attached, a.collection
    assert erased.store.name in erased.listed


def test_adoption_scans_every_point_and_reports_the_untagged(erased: Erased) -> None:
    j = erased.adoption
    assert j.status == "completed", j
    assert (j.total, j.scanned, j.tracked, j.untagged, j.subjects) == (12, 12, 10, 2, 3), j


def test_lethe_counts_before_equal_the_frameworks(erased: Erased) -> None:
    c = erased.count_of(erased.counted.counts)
    assert (c.before_by_tag, c.before_total) == (5, 5), c


def test_erasure_completes_with_counts_equal_to_the_frameworks(erased: Erased) -> None:
    job = erased.job
    assert job.status == lethe.JobStatus.COMPLETED, job
    c = erased.count_of(job.counts)
    alice = erased.people.alice
    assert (c.before_by_tag, c.before_total) == (erased.before[alice], erased.before[alice]), c
    assert c.deleted == erased.before[alice] - erased.after[alice], c
    assert (c.after_by_tag, c.after_total) == (erased.after[alice], erased.after[alice]), c


def test_the_frameworks_own_query_finds_nothing_of_alice(erased: Erased) -> None:
    assert erased.after[erased.people.alice] == 0


def test_the_frameworks_retriever_returns_none_of_alices_documents_and_all_others(erased: Erased) -> None:
    alice = erased.people.alice
    hers = {d.text for d in erased.docs if d.names(alice)}
    others = {d.text for d in erased.docs if not d.names(alice)}
    for d in erased.docs:
        if not d.names(alice):
            continue
        found = set(erased.store.search(d.text, k=len(erased.docs) + 10))
        assert not found & hers, f"searching {d.key!r} still finds {sorted(found & hers)}"
        assert others <= found, f"searching {d.key!r} misses {sorted(others - found)}"


def test_other_people_and_untagged_documents_are_untouched(erased: Erased) -> None:
    p = erased.people
    remaining = {who: sum(1 for d in erased.docs if d.names(who) and not d.names(p.alice)) for who in (p.bob, p.carol)}
    assert {who: erased.after[who] for who in (p.bob, p.carol)} == remaining  # bob 3, carol 3
    untagged = [d.text for d in erased.docs if not d.people]
    for text in untagged:
        assert text in erased.store.search(text, k=3), f"untagged {text!r} is gone"
    assert erased.after_all == 12 - 5


def test_an_unattached_langchain_collection_in_the_same_table_is_untouched(erased: Erased) -> None:
    if not isinstance(erased.store, LangchainPgvector):
        pytest.skip("only LangChain's shared table holds other collections")
    assert erased.before_other == 3
    assert erased.store.count_other(erased.people.alice) == erased.before_other


def test_attaching_twice_is_a_no_op(erased: Erased, client: lethe.Lethe) -> None:
    again = client.attach(erased.store.name, **erased.store.attach_args())
    assert again.already_attached, again
    assert sorted(c.name for c in client.list_collections()) == erased.listed


def test_the_framework_keeps_working_after_the_erasure(erased: Erased) -> None:
    late = later_docs(erased.people)
    erased.store.fill(late)
    for d in late:
        assert d.text in erased.store.search(d.text, k=3), f"{d.key} written after the erasure is not found"
    assert erased.store.count_person(erased.people.bob) == erased.after[erased.people.bob] + 1
    assert erased.store.count_all() == erased.after_all + len(late)


# ------------------------------------------------------------------------ wrong mappings


@pytest.fixture(params=ALL, ids=lambda c: c.label)
def unattached(request: Any, server: Any, qdrant_problem: Optional[str]) -> Iterator[Store]:
    cls: type[Store] = request.param
    _skip_without_qdrant(cls, qdrant_problem)
    store = cls(server.db_url, QDRANT_URL, People.fresh())
    try:
        store.fill(corpus(store.people))
        yield store
    finally:
        store.close()


def test_a_wrong_mapping_is_invalid_argument_naming_the_field_and_registers_nothing(
    unattached: Store, client: lethe.Lethe
) -> None:
    listed = sorted(c.name for c in client.list_collections())
    before = unattached.count_all()
    for what, kwargs, fields in unattached.wrong_attaches():
        name = uniq("wrong")
        with pytest.raises(lethe.InvalidArgument) as e:
            client.attach(name, **kwargs)
        assert e.value.field.startswith(fields), f"{what}: {e.value!r} names {e.value.field!r}, not one of {fields}"
        with pytest.raises(lethe.NotFound):
            client.get_attach(name)
    assert sorted(c.name for c in client.list_collections()) == listed
    assert unattached.count_all() == before, "the store was written to"
