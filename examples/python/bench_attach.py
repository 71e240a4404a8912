"""Attach benchmark (issue 13): adoption speed of a LangChain PGVector store, and erasure
of one person's 10,000 chunks by Lethe next to LangChain's own delete of the same
documents (find their ids, then `PGVector.delete(ids)`), in the same run.

    . scripts/env.sh && cargo build --release --bin lethe
    LETHE_BIN=target/release/lethe .lethe/venv-frameworks/bin/python examples/python/bench_attach.py --rows 100000

The table is created by LangChain (`PGVector`, `use_jsonb=True`), then filled in bulk with
SQL in LangChain's own row format (`add_texts` would take hours at a million rows); the
10,000 rows of the measured person are written by LangChain's `add_texts`. Prints the
machine, the data size and the ratio to the baseline.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests/frameworks"))
sys.path.insert(0, str(REPO / "clients/python/tests"))

import psycopg  # noqa: E402
from langchain_postgres import PGVector  # noqa: E402

import lethe  # noqa: E402
from conftest import running_server  # type: ignore  # noqa: E402
from embed import HashEmbeddings  # type: ignore  # noqa: E402
from stores import sqlalchemy_url  # type: ignore  # noqa: E402

DIM = 16


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000, help="rows of other people in the table")
    ap.add_argument("--subject-rows", type=int, default=10_000)
    args = ap.parse_args()

    # No pause between stages (the test fixture adds one).
    with running_server({"LETHE_ERASURE__STAGE_PAUSE_MS": "0"}) as srv:
        url = sqlalchemy_url(srv.db_url)
        vs = PGVector(embeddings=HashEmbeddings(), collection_name="bench docs", connection=url, use_jsonb=True)
        with psycopg.connect(srv.db_url, autocommit=True) as db:
            (cid,) = db.execute("SELECT uuid FROM langchain_pg_collection WHERE name = 'bench docs'").fetchone()  # type: ignore[misc]
            t = time.perf_counter()
            db.execute(
                """
                INSERT INTO langchain_pg_embedding (id, collection_id, embedding, document, cmetadata)
                SELECT gen_random_uuid()::text, %s,
                       (SELECT array_agg(((g * 31 + d * 17) %% 101) / 101.0 + 0.01) FROM generate_series(1, %s) d)::vector,
                       'note ' || g || ' by person ' || (g %% 5000),
                       jsonb_build_object('user_id', 'person-' || (g %% 5000), 'source', 'doc-' || (g / 10))
                FROM generate_series(1, %s) g
                """,
                (cid, DIM, args.rows),
            )
            fill_s = time.perf_counter() - t
        texts = [f"alice's note {i} on the project" for i in range(args.subject_rows)]
        metas = [{"user_id": "alice", "source": f"alice-doc-{i // 10}"} for i in range(args.subject_rows)]
        vs.add_texts(texts, metadatas=metas)
        total = args.rows + args.subject_rows

        with lethe.Lethe(srv.url, api_key=srv.sk, timeout=600) as client:
            t = time.perf_counter()
            client.attach("docs", preset="langchain-pgvector", target="bench docs", tag_key="user_id", create_indexes=True)
            job = client.wait_for_attach("docs", timeout=3600)
            adopt_s = time.perf_counter() - t
            assert job.status == "completed", job

            t = time.perf_counter()
            erased = client.erase("alice", requested_by="bench", wait=True, wait_timeout=600)
            erase_s = time.perf_counter() - t
            assert erased.status == "completed", erased
            events = list(client.watch_erasure(erased.job_id, timeout=60))
        stage_times = []
        for a, b in zip(events, events[1:]):
            if a.at and b.at:
                stage_times.append(f"{b.stage.value if hasattr(b.stage, 'value') else b.stage}: {(b.at - a.at).total_seconds():.2f} s")

        # The framework's own way: find the person's ids, then delete(ids).
        vs.add_texts(texts, metadatas=metas)
        with psycopg.connect(srv.db_url, autocommit=True) as db:
            t = time.perf_counter()
            ids = [r[0] for r in db.execute(
                "SELECT id FROM langchain_pg_embedding WHERE collection_id = %s AND cmetadata @> %s::jsonb",
                (cid, '{"user_id": "alice"}'),
            )]
            vs.delete(ids)
            raw_s = time.perf_counter() - t
            (left,) = db.execute(
                "SELECT count(*) FROM langchain_pg_embedding WHERE cmetadata @> %s::jsonb", ('{"user_id": "alice"}',)
            ).fetchone()  # type: ignore[misc]
            assert left == 0

    print(f"machine: {platform.node()} {os.cpu_count()} cores, {platform.platform()}")
    print(f"table: langchain_pg_embedding, {total:,} rows ({args.subject_rows:,} of the erased person), dimension {DIM}")
    print(f"bulk fill by SQL: {fill_s:.1f} s")
    print(f"adoption (attach + scan, lineage of every row): {adopt_s:.1f} s = {total / adopt_s:,.0f} points/s")
    print(f"erase {args.subject_rows:,} chunks with Lethe (every stage, counts, log, certificate): {erase_s:.2f} s")
    print("  stages (time to reach each event): " + ", ".join(stage_times))
    print(f"LangChain: find ids + PGVector.delete(ids): {raw_s:.2f} s; ratio Lethe / LangChain = {erase_s / raw_s:.1f}x")


if __name__ == "__main__":
    main()
