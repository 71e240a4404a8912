"""The framework tests' Lethe: the Python client tests' server (a fresh database, a
tenant, `lethe serve`), with Qdrant. The stores are written into that server's
database (Lethe attaches tables in its own database) and into the Qdrant it uses.

QDRANT_URL: the Qdrant (gRPC) for Lethe and the frameworks; default the stand-in at
http://127.0.0.1:6334. When QDRANT_URL is not set and nothing answers there, the
Qdrant stores are skipped (they cannot check their claim); when it is set, an
unreachable Qdrant fails them. attach.allowed comes from configuration/local.yaml
(`["*"]`), which `lethe serve` reads in the default environment.

The server takes messages of at most 4 MiB (gRPC's usual bound, which a proxy in
front of Lethe or an operator may keep; Lethe's default is 16 MiB): the integrations
must batch their writes below it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

import pytest

import lethe

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(HERE))

_spec = importlib.util.spec_from_file_location("lethe_client_conftest", REPO / "clients/python/tests/conftest.py")
assert _spec is not None and _spec.loader is not None
client_conftest: Any = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = client_conftest  # its dataclasses look their module up
_spec.loader.exec_module(client_conftest)

DEFAULT_QDRANT = "http://127.0.0.1:6334"
#: The server's application.limits.max_message_bytes in these tests.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
QDRANT_URL = os.environ.get("QDRANT_URL") or DEFAULT_QDRANT


def _qdrant_problem() -> Optional[str]:
    """Why Qdrant cannot be used, or None."""
    from stores import qdrant_client

    try:
        c = qdrant_client(QDRANT_URL)
        try:
            c.get_collections()
        finally:
            c.close()
    except Exception as e:  # any failure means: no Qdrant to test against
        return f"no Qdrant at {QDRANT_URL}: {type(e).__name__}: {str(e)[:200]}"
    return None


@pytest.fixture(scope="session")
def qdrant_problem() -> Optional[str]:
    problem = _qdrant_problem()
    if problem and os.environ.get("QDRANT_URL"):
        pytest.fail(f"QDRANT_URL is set but unusable: {problem}")
    return problem


@pytest.fixture(scope="session")
def server(qdrant_problem: Optional[str]) -> Iterator[Any]:
    extra = {"LETHE_APPLICATION__LIMITS__MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES)}
    if not qdrant_problem:
        extra["LETHE_QDRANT__URL"] = QDRANT_URL
    with client_conftest.running_server(extra) as srv:
        yield srv


@pytest.fixture(scope="session")
def cleanup() -> Iterator[list[Callable[[], None]]]:
    """Closes the stores at the end of the session, not of their test: an attached
    store that disappears (a Qdrant collection deleted) is still in the tenant, and
    every later CountSubject and erasure would have to deal with it."""
    done: list[Callable[[], None]] = []
    yield done
    for close in reversed(done):
        close()


@pytest.fixture(scope="session")
def client(server: Any) -> Iterator[lethe.Lethe]:
    """The tenant's secret key."""
    with lethe.Lethe(server.url, api_key=server.sk, timeout=60) as c:
        yield c
