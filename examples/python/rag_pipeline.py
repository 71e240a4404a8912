"""A LangChain RAG pipeline that can forget a person (Lethe issue 14).

It loads five short documents, splits them with LangChain's text splitter, tags each
chunk with the people its document's metadata names, indexes the chunks with LangChain's
``index()`` into a pgvector collection through Lethe's integration, asks a question with
LangChain's own retriever, erases one person with the client, asks again, and prints
the erasure certificate and its offline verification.

Against a running Lethe (README "Using Lethe": ``lethe tenant create``, ``lethe serve``)::

    LETHE_URL=http://127.0.0.1:50051 LETHE_API_KEY=sk_... python examples/python/rag_pipeline.py

``LETHE_API_KEY`` (or ``LETHE_SK``) is the tenant's secret key (it creates the collection
and erases; a pipeline alone would use the publishable key). ``DATABASE_URL`` is Lethe's
database (LangChain's retriever reads the collection's table there; ``scripts/env.sh``
sets it). ``LETHE_SIGNING_PUBKEY`` (``lethe signing-key`` prints it) pins the service key
the certificate is checked against. Needs ``pip install './clients/python[langchain]'
langchain-postgres langchain-text-splitters`` (or ``.lethe/venv-frameworks``, which
``scripts/test.sh`` makes).

No model and no LLM are needed: the embeddings are a hashed bag of words (a stand-in
for a real embedding model; swap in yours), and "asking" prints the chunks the retriever
returns, which is what an LLM would be given.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import secrets
import sys
from typing import Any

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.indexing import InMemoryRecordManager, index
from langchain_text_splitters import RecursiveCharacterTextSplitter

import lethe
from lethe.integrations.langchain import LetheVectorStore

DIM = 64


STOP_WORDS = set(
    "a an and are at by for from had her his in is it its of on or she the their this to was were who will with".split()
)


class HashEmbeddings(Embeddings):
    """Offline embeddings: a hashed bag of words without stop words, normalised (shared
    words make texts similar)."""

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        v = [0.0] * DIM
        for word in re.findall(r"\w+", text.lower()):
            if word in STOP_WORDS:
                continue
            h = hashlib.sha256(word.encode()).digest()
            v[h[0] % DIM] += 1.0 if h[1] & 1 else -1.0
            v[h[2] % DIM] += 0.5
        v[0] += 0.01
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]


def documents(run: str) -> tuple[list[Document], dict[str, str]]:
    """Five documents; metadata ``people`` names who each is about (ids unique to this
    run: an erased id stays erased, and this example can be run again)."""
    ann, ben, cleo = f"ann-lee-{run}", f"ben-ortiz-{run}", f"cleo-park-{run}"
    names = {ann: "Ann Lee", ben: "Ben Ortiz", cleo: "Cleo Park"}
    docs = [
        Document(
            page_content=(
                "From: Ann Lee <ann.lee@harbour.example>\nSubject: ferry invoice\n\n"
                "Ann Lee disputes the ferry operator's invoice for March: the crossing on the 14th was cancelled.\n\n"
                "She asks the harbour office to refund the two tickets to her account before the end of April."
            ),
            metadata={"source": "mail-1", "people": ann},
        ),
        Document(
            page_content=(
                "Minutes of the harbour committee, 2 April.\n\n"
                "Ann Lee and Ben Ortiz reviewed the ferry timetable and the complaint about the cancelled crossing.\n\n"
                "Ben Ortiz will ask the ferry operator for the March logbook."
            ),
            metadata={"source": "minutes-2", "people": [ann, ben]},
        ),
        Document(
            page_content=(
                "Ben Ortiz runs the bicycle repair workshop on Saturdays at the old boathouse.\n\n"
                "Spare inner tubes and brake pads are ordered through the cooperative every month."
            ),
            metadata={"source": "note-3", "people": [ben]},
        ),
        Document(
            page_content=(
                "Cleo Park keeps the choir rehearsal attendance and the music library.\n\n"
                "The spring concert at the harbour church starts at seven; Ann Lee had offered to sell tickets."
            ),
            metadata={"source": "note-4", "people": [cleo]},
        ),
        Document(
            page_content=(
                "The museum loan agreement covers three paintings for the winter exhibition.\n\n"
                "The ferry company sponsors the exhibition's opening night."
            ),
            metadata={"source": "memo-5"},
        ),
    ]
    return docs, names


def show(title: str, hits: list[Document], reported: frozenset[str] = frozenset()) -> None:
    print(f"\n{title}")
    for i, d in enumerate(hits, 1):
        text = " ".join(d.page_content.split())
        mark = "  <- reported by residual search" if d.id in reported else ""
        print(f"  {i}. [{d.metadata.get('source_id', '?')}] {text[:100]}{mark}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default=os.environ.get("LETHE_URL"), help="Lethe's gRPC URL (LETHE_URL)")
    ap.add_argument(
        "--api-key",
        default=os.environ.get("LETHE_API_KEY") or os.environ.get("LETHE_SK"),
        help="the tenant's secret key (LETHE_API_KEY or LETHE_SK)",
    )
    ap.add_argument(
        "--database-url",
        default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:55432/lethe"),
        help="Lethe's database, where LangChain reads the collection (DATABASE_URL)",
    )
    ap.add_argument(
        "--public-key",
        default=os.environ.get("LETHE_SIGNING_PUBKEY"),
        help="the service's signing key to pin (LETHE_SIGNING_PUBKEY; `lethe signing-key` prints it)",
    )
    ap.add_argument("--question", default="Who disputed the ferry invoice for the cancelled crossing?")
    args = ap.parse_args()
    if not args.api_key:
        ap.error("give the tenant's secret key: --api-key or LETHE_API_KEY")

    run = secrets.token_hex(3)
    client = lethe.Lethe(args.url, api_key=args.api_key, timeout=60)
    docs, names = documents(run)
    ann = next(iter(names))

    # 1. Split, and tag: the splitter copies each document's metadata (and its people) to its chunks.
    chunks = RecursiveCharacterTextSplitter(chunk_size=160, chunk_overlap=0).split_documents(docs)
    print(f"{len(docs)} documents, {len(chunks)} chunks; people from metadata: {', '.join(names.values())}")

    # 2. A collection Lethe created; LangChain writes through Lethe and reads with its own PGVectorStore.
    collection = client.create_collection(f"rag_demo_{run}", backend="pgvector", dimension=DIM)
    store = LetheVectorStore.from_collection(
        client, collection, HashEmbeddings(), subjects="people", connection=args.database_url, k=3
    )
    record_manager = InMemoryRecordManager(namespace=collection.name)
    record_manager.create_schema()
    result = index(chunks, record_manager, store, cleanup="incremental", source_id_key="source", key_encoder="sha256")
    print(f"indexed with LangChain's index() into `{collection.name}`: {dict(result)}")
    counts = client.count_subject(ann)
    print(f"Lethe counts {names[ann]} ({ann}) in {sum(c.before_total for c in counts.counts)} chunks")

    # 3. Ask (the retriever is LangChain's; an LLM would be given these chunks).
    retriever = store.vectorstore.as_retriever(search_kwargs={"k": 3})
    before = retriever.invoke(args.question)
    show(f"Q: {args.question}", before)

    # 4. Erase Ann, with her address and name for residual search (what tags missed).
    print(f"\nerasing {names[ann]} ...")
    job = client.erase(
        ann,
        requested_by="dpo@harbour.example",
        reason="GDPR Art. 17 request, rag_pipeline example",
        identifiers=["ann.lee@harbour.example", lethe.Identifier("Ann Lee", kind="name")],
        residual_policy="report",
        wait_timeout=300,
    )
    print(f"erasure {job.status.value}: {job.deleted} chunks deleted, {job.remaining} remain")
    for r in job.residuals:
        print(f"  residual search: a chunk of {r.source_id} still names her ({r.action}, score {r.score:.2f})")

    # 5. Ask again.
    after = retriever.invoke(args.question)
    show(f"Q again: {args.question}", after, frozenset(r.point_id for r in job.residuals))
    everything = store.vectorstore.similarity_search(names[ann], k=len(chunks) + 10)
    left = [d for d in everything if ann in (d.metadata.get("subjects") or [])]
    print(f"chunks tagged with {ann} the retriever can still find: {len(left)}")

    # 6. The certificate, verified offline against the pinned key.
    cert = client.get_certificate(job.job_id)
    pinned = args.public_key
    if not pinned:
        print("\n(no LETHE_SIGNING_PUBKEY: checking against the key the certificate carries, which proves "
              "integrity but not who signed it; pin the key `lethe signing-key` prints)")
        pinned = cert.public_key
    claims: dict[str, Any] = lethe.verify_certificate(cert, pinned)
    print(f"\ncertificate {cert.key_id} for job {cert.job_id}:")
    print(json.dumps(claims, indent=2, sort_keys=True))
    print(f"verified offline: Ed25519 signature valid for key {lethe.key_id(pinned)}")
    client.close()
    ok = job.status == lethe.JobStatus.COMPLETED and job.remaining == 0 and not left
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
