"""examples/python/rag_pipeline.py, run end to end against the session's Lethe as a
user runs it (environment variables, its own process), so that it cannot rot."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import lethe
from conftest import REPO


def test_the_rag_example_forgets_a_person_and_verifies_the_certificate(server: Any, client: lethe.Lethe) -> None:
    env = dict(
        os.environ,
        LETHE_URL=server.url,
        LETHE_API_KEY=server.sk,
        DATABASE_URL=server.db_url,
        LETHE_SIGNING_PUBKEY=server.public_key,
    )
    out = subprocess.run(
        [sys.executable, str(REPO / "examples/python/rag_pipeline.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, f"{out.stdout}\n{out.stderr}"
    text = out.stdout
    counted = re.search(r"Lethe counts Ann Lee \((ann-lee-\w+)\) in (\d+) chunks", text)
    assert counted, text
    ann, n = counted.group(1), int(counted.group(2))
    assert n >= 3, text
    assert f"erasure completed: {n} chunks deleted, 0 remain" in text, text
    before, after = text.split("Q again:")[0].split("\nQ: ")[1], text.split("Q again:")[1].split("certificate")[0]
    assert "[mail-1]" in before, "the question finds Ann's mail before the erasure"
    assert "[mail-1]" not in after and "[minutes-2]" not in after, after
    assert f"chunks tagged with {ann} the retriever can still find: 0" in text
    assert "verified offline: Ed25519 signature valid for key " + lethe.key_id(server.public_key) in text
    # The service agrees: the person counts nothing, and her erasure is in the log.
    counts = client.count_subject(ann)
    assert counts.subject_state == "erased" and sum(c.before_total for c in counts.counts) == 0, counts
    job_id = re.search(r"for job ([0-9a-f-]{36})", text)
    assert job_id, text
    assert job_id.group(1) in {e.job_id for e in client.iter_deletion_log()}
