"""TLS: the service speaks plaintext gRPC, so a TLS-terminating proxy (as in front of
any deployment) sits between the client and the real server, with a certificate from a
private CA that only `root_certificates` makes trusted."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import ssl
import threading
from pathlib import Path
from typing import Iterator

import pytest
from conftest import Server
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import lethe


def _self_signed(tmp: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lethe-test-ca")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp / "cert.pem", tmp / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class TlsProxy:
    """TLS (ALPN h2) on a free port, forwarded byte for byte to the plaintext server."""

    def __init__(self, upstream_port: int, cert: Path, key: Path) -> None:
        self.upstream_port = upstream_port
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.ctx.set_alpn_protocols(["h2"])
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.port = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        self.writers += [client_w, up_w]
        await asyncio.gather(self._pipe(client_r, up_w), self._pipe(up_r, client_w))

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ctx))
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()
        # close every connection, so that the server's graceful shutdown does not wait for them
        server.close()
        for w in self.writers:
            w.transport.abort()
        self.loop.run_until_complete(asyncio.sleep(0))
        self.loop.close()

    def __enter__(self) -> "TlsProxy":
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


@pytest.fixture(scope="module")
def tls(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TlsProxy, Path]]:
    cert, key = _self_signed(tmp_path_factory.mktemp("tls"))
    with TlsProxy(server.port, cert, key) as proxy:
        yield proxy, cert


def test_tls_with_a_private_ca(tls: tuple[TlsProxy, Path], server: Server) -> None:
    proxy, cert = tls
    with lethe.Lethe(f"https://localhost:{proxy.port}", api_key=server.ak, root_certificates=cert) as c:
        assert c.health()
        assert isinstance(c.list_collections(), list)
    # PEM bytes, and host:port with tls=True and an IP address in the certificate
    with lethe.Lethe(f"127.0.0.1:{proxy.port}", api_key=server.ak, tls=True, root_certificates=cert.read_bytes()) as c:
        assert isinstance(c.list_deletion_log(limit=1), lethe.DeletionLogPage)


async def test_async_tls(tls: tuple[TlsProxy, Path], server: Server) -> None:
    proxy, cert = tls
    async with lethe.AsyncLethe(f"https://localhost:{proxy.port}", api_key=server.ak, root_certificates=str(cert)) as c:
        assert await c.health()
        assert isinstance(await c.list_erasures(limit=1), list)


def test_tls_refuses_an_untrusted_certificate(tls: tuple[TlsProxy, Path], server: Server) -> None:
    proxy, _ = tls
    # system roots do not know the private CA
    with lethe.Lethe(f"https://localhost:{proxy.port}", api_key=server.ak, retries=0, timeout=5) as c:
        with pytest.raises(lethe.Unavailable):
            c.list_collections()
    # and plaintext to a TLS port does not work either
    with lethe.Lethe(f"http://localhost:{proxy.port}", api_key=server.ak, retries=0, timeout=5) as c:
        with pytest.raises(lethe.LetheError):
            c.list_collections()


def test_a_bare_address_is_plaintext_only_on_this_machine() -> None:
    from lethe._transport import RetryPolicy, resolve

    def secure(url: str, **kw: object) -> bool:
        return resolve(url, "sk_x", kw.get("tls"), None, None, RetryPolicy()).credentials is not None  # type: ignore[arg-type]

    for local in ["127.0.0.1:50051", "127.0.0.2:50051", "localhost:50051", "[::1]:50051", "[::1]", "::1", "ipv4:127.0.0.1:50051", "unix:/tmp/lethe.sock", "http://lethe.example:50051"]:
        assert not secure(local), local
    for remote in ["lethe.example:50051", "10.0.0.7:50051", "https://lethe.example"]:
        assert secure(remote), remote
    assert not secure("lethe.example:50051", tls=False)


def test_a_tls_failure_against_a_plaintext_server_says_why_when_tls_was_not_asked_for(server: Server) -> None:
    from lethe._transport import RetryPolicy, resolve, with_tls_hint

    assert resolve("lethe.example:50051", "sk_x", None, None, None, RetryPolicy()).tls_hint
    assert resolve("https://lethe.example", "sk_x", None, None, None, RetryPolicy()).tls_hint is None
    assert resolve("lethe.example:50051", "sk_x", True, None, None, RetryPolicy()).tls_hint is None
    # What a TLS client gets from this (plaintext) server, with the hint a
    # defaulted one adds.
    with lethe.Lethe(f"127.0.0.1:{server.port}", api_key=server.ak, tls=True, retries=0, timeout=10) as c:
        with pytest.raises(lethe.LetheError) as e:
            c.list_collections()
    hinted = with_tls_hint(e.value, "say http://")
    assert "say http://" in str(hinted), str(e.value)
    plain = with_tls_hint(lethe.errors.NotFound("not_found: job"), "say http://")
    assert "say http://" not in str(plain)
