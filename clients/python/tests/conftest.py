"""A real Lethe for the whole session: a fresh database on DATABASE_URL's server, a tenant
made with the `lethe` binary, `lethe serve` on a free port; all removed at the end.

LETHE_BIN points at the binary (default: target/debug/lethe in the repository root).
"""

from __future__ import annotations

import contextlib
import gc
import os
import random
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

import lethe

REPO = Path(__file__).resolve().parents[3]
DEFAULT_DB = "postgres://postgres@127.0.0.1:55432/lethe"
# Every erasure pauses between stages, so that a job is still running when a test
# calls Erase again (erasure_in_progress) or watches it (progress, timeouts).
STAGE_PAUSE_MS = 100


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _psql() -> str:
    for candidate in (
        os.path.join(os.environ.get("LETHE_PG_BIN", ""), "psql"),
        str(REPO / ".lethe/pg/bin/psql"),
        shutil.which("psql") or "",
    ):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise RuntimeError("psql not found: set LETHE_PG_BIN (scripts/env.sh does)")


def _sql(admin_url: str, statement: str) -> None:
    subprocess.run([_psql(), admin_url, "-v", "ON_ERROR_STOP=1", "-qAtc", statement], check=True, capture_output=True)


@dataclass
class Server:
    """A running `lethe serve` and what the tests need to talk to it."""

    bin: Path
    env: dict[str, str]
    port: int
    log: Path
    #: the session's own database (framework tests write their stores there)
    db_url: str = ""
    sk: str = ""
    pk: str = ""
    ak: str = ""
    tenant_id: str = ""
    public_key: str = ""
    key_id: str = ""
    proc: Optional[subprocess.Popen[bytes]] = None
    extra: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def run(self, *args: str) -> str:
        out = subprocess.run([str(self.bin), *args], cwd=REPO, env=self.env, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"lethe {' '.join(args)} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def spawn(self, port: int, log: Path) -> subprocess.Popen[bytes]:
        """Starts another `lethe serve` on the same database (for the retry tests)."""
        env = dict(self.env, LETHE_APPLICATION__PORT=str(port))
        with open(log, "ab") as f:
            proc = subprocess.Popen([str(self.bin), "serve"], cwd=REPO, env=env, stdout=f, stderr=subprocess.STDOUT)
        self.extra.append(proc)
        return proc

    def wait_healthy(self, port: int, proc: subprocess.Popen[bytes], log: Path, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        with lethe.Lethe(f"http://127.0.0.1:{port}", api_key="health", retries=0) as c:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    raise RuntimeError(f"lethe serve exited with {proc.returncode}:\n{log.read_text()[-4000:]}")
                if c.health(timeout=1.0):
                    return
                time.sleep(0.1)
        raise RuntimeError(f"lethe serve did not become healthy within {within} s:\n{log.read_text()[-4000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def running_server(extra_env: Optional[Mapping[str, str]] = None) -> Iterator[Server]:
    """A fresh database, a tenant and `lethe serve` with the test settings plus
    `extra_env` (e.g. LETHE_QDRANT__URL); all removed on exit. Shared with the
    framework tests (tests/frameworks)."""
    binary = Path(os.environ.get("LETHE_BIN", REPO / "target/debug/lethe"))
    if not binary.is_absolute():
        binary = REPO / binary
    if not os.access(binary, os.X_OK):
        pytest.exit(f"no lethe binary at {binary}: `cargo build --bin lethe` or set LETHE_BIN", returncode=2)
    admin_url = os.environ.get("DATABASE_URL", DEFAULT_DB)
    name = "lethe_pytest_" + secrets.token_hex(4)
    parts = urlsplit(admin_url)
    db_url = urlunsplit(parts._replace(path="/" + name))
    _sql(admin_url, f'CREATE DATABASE "{name}"')
    tmp = Path(tempfile.mkdtemp(prefix="lethe-pytest-"))
    # Settings of the developer's own service (and the client's LETHE_URL/LETHE_API_KEY)
    # must not leak in; other LETHE_* variables pass through.
    leak = ("LETHE_URL", "LETHE_API_KEY", "LETHE_CONFIG_DIR", "LETHE_APPLICATION__", "LETHE_DATABASE__",
            "LETHE_QDRANT__", "LETHE_EMBEDDING__", "LETHE_ERASURE__", "LETHE_AUDIT__")
    env = {k: v for k, v in os.environ.items() if not k.startswith(leak)}
    env.update(
        LETHE_DATABASE__URL=db_url,
        LETHE_APPLICATION__HOST="127.0.0.1",
        LETHE_EMBEDDING__PROVIDER="hashing",  # meaning does not matter here; no model to load
        LETHE_ERASURE__STAGE_PAUSE_MS=str(STAGE_PAUSE_MS),
        LETHE_ERASURE__POLL_INTERVAL_MS="100",
        LETHE_AUDIT__SIGNING_KEY_FILE=str(tmp / "signing_key.pem"),  # the session's own key
        LETHE_AUDIT__CREATE_SIGNING_KEY="false",
        # The auditor's web view on a port of its own choosing: several servers
        # (a restarted one, a late one) run side by side in these tests.
        LETHE_WEB__PORT="0",
        # Retention sweeps run on request here (SweepRetention), not behind a test's back.
        LETHE_RETENTION__ENABLED="false",
        RUST_LOG=os.environ.get("LETHE_PYTEST_RUST_LOG", "warn"),
    )
    env.update(extra_env or {})
    srv = Server(bin=binary, env=env, port=free_port(), log=tmp / "lethe.log", db_url=db_url)
    try:
        srv.public_key = srv.run("signing-key", "--create").split()[-1]  # "<key id> <public key>"
        srv.key_id = lethe.key_id(srv.public_key)
        keys = dict(line.split("=", 1) for line in srv.run("tenant", "create", "pytest", "--format", "env").split())
        srv.sk, srv.pk, srv.ak, srv.tenant_id = keys["LETHE_SK"], keys["LETHE_PK"], keys["LETHE_AK"], keys["LETHE_TENANT_ID"]
        srv.env["LETHE_APPLICATION__PORT"] = str(srv.port)
        with open(srv.log, "ab") as f:
            srv.proc = subprocess.Popen([str(binary), "serve"], cwd=REPO, env=srv.env, stdout=f, stderr=subprocess.STDOUT)
        srv.wait_healthy(srv.port, srv.proc, srv.log)
        yield srv
    finally:
        for p in [srv.proc, *srv.extra]:
            if p is not None:
                stop(p)
        try:
            _sql(admin_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope="session")
def server() -> Iterator[Server]:
    with running_server() as srv:
        yield srv


@pytest.fixture(scope="session")
def client(server: Server) -> Iterator[lethe.Lethe]:
    """The tenant's secret key."""
    with lethe.Lethe(server.url, api_key=server.sk, timeout=30) as c:
        yield c


@pytest.fixture(scope="session")
def auditor(server: Server) -> Iterator[lethe.Lethe]:
    with lethe.Lethe(server.url, api_key=server.ak) as c:
        yield c


@pytest.fixture(scope="session")
def publishable(server: Server) -> Iterator[lethe.Lethe]:
    with lethe.Lethe(server.url, api_key=server.pk) as c:
        yield c


@pytest.fixture(scope="session")
def collection(client: lethe.Lethe) -> str:
    """A pgvector collection for the session (dimension of the hashing embedder)."""
    client.create_collection("docs", backend="pgvector", dimension=384)
    return "docs"


@dataclass(frozen=True)
class Person:
    id: str
    email: str
    name: str


@pytest.fixture
def person() -> Person:
    """A person no other test names (suppression matches identifiers across subjects)."""
    tag = secrets.token_hex(3)
    surname = "".join(random.choice(string.ascii_lowercase) for _ in range(9)).capitalize()
    first = random.choice(["Zelda", "Ingrid", "Oswin", "Petra", "Ulrich", "Vesna"])
    return Person(id=f"p-{tag}", email=f"{first.lower()}.{surname.lower()}@example.org", name=f"{first} {surname}")


def ingest_about(client: lethe.Lethe, collection: str, p: Person, n: int) -> list[str]:
    """n chunks tagged with p (owner), with p's identifiers; returns the point ids."""
    chunks = [
        lethe.Chunk(
            source_id=f"{p.id}-src-{i}",
            text=f"Note {i} written by {p.name} about the quarterly numbers",
            tags=[lethe.SubjectTag(p.id, role="owner")],
        )
        for i in range(n)
    ]
    result = client.ingest(collection, chunks, subjects={p.id: [p.email, lethe.Identifier(p.name, kind="name")]})
    assert result.accepted == n, result
    return result.point_ids


#: Where the installed client's code is (its async generators, not grpc's).
LETHE_PACKAGE = os.path.dirname(lethe.__file__)


@contextlib.contextmanager
def left_to_the_loop() -> Iterator[list[str]]:
    """Names the client's async generators (``watch_attach``, …) that were dropped
    unfinished while inside: the event loop closes those (and the streams they hold)
    later, when it gets round to it. The loop's own hooks still run."""
    hooks = sys.get_asyncgen_hooks()
    left: list[str] = []

    def finalizer(agen: Any) -> None:
        if agen.ag_code.co_filename.startswith(LETHE_PACKAGE):
            left.append(agen.ag_code.co_name)
        if hooks.finalizer is not None:
            hooks.finalizer(agen)

    sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=finalizer)
    try:
        yield left
    finally:
        gc.collect()
        sys.set_asyncgen_hooks(firstiter=hooks.firstiter, finalizer=hooks.finalizer)
