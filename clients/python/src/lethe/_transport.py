"""Connection settings shared by both clients: address, TLS, retries, metadata."""

from __future__ import annotations

import ipaddress
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union
from urllib.parse import urlsplit

import grpc

from ._version import __version__

DEFAULT_URL = "http://127.0.0.1:50051"
DEFAULT_TIMEOUT = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter for calls that fail with ``UNAVAILABLE``.

    Attempt *n* (from 0) waits ``min(max_backoff, initial_backoff * multiplier**n)``,
    randomised by ±``jitter``. ``max_retries=0`` turns retrying off.
    """

    max_retries: int = 4
    initial_backoff: float = 0.25
    max_backoff: float = 8.0
    multiplier: float = 2.0
    jitter: float = 0.2

    def backoff(self, attempt: int) -> float:
        base = min(self.max_backoff, self.initial_backoff * self.multiplier**attempt)
        return max(0.0, base * (1 + random.uniform(-self.jitter, self.jitter)))


RetriesLike = Union[int, RetryPolicy, None]


def retry_policy(retries: RetriesLike) -> RetryPolicy:
    if isinstance(retries, RetryPolicy):
        return retries
    if retries is None:
        return RetryPolicy(max_retries=0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0 or a lethe.RetryPolicy, not {retries!r}")
    return RetryPolicy(max_retries=retries)


@dataclass(frozen=True)
class Target:
    address: str
    credentials: Optional[grpc.ChannelCredentials]
    options: list[tuple[str, Union[str, int]]]
    metadata: tuple[tuple[str, str], ...]
    #: Said with a TLS failure when TLS was chosen for a bare address (not
    #: asked for): the server may be plaintext.
    tls_hint: Optional[str] = None


def _read_pem(v: Union[bytes, str, os.PathLike[str], None]) -> Optional[bytes]:
    if v is None or isinstance(v, bytes):
        return v
    text = str(v)
    if "-----BEGIN" in text:
        return text.encode()
    return Path(text).read_bytes()


def _on_this_machine(address: str) -> bool:
    """Whether a bare gRPC target (``host:port``, ``[v6]:port``, ``ipv4:…``,
    ``unix:…``) is this machine: a loopback address, ``localhost`` or a Unix socket."""
    lower = address.strip().lower()
    if lower.startswith(("unix:", "unix-abstract:")):
        return True
    for scheme in ("ipv4:", "ipv6:", "dns:///", "dns:"):
        if lower.startswith(scheme):
            lower = lower[len(scheme) :]
            break
    if lower.startswith("["):
        host = lower[1 : lower.find("]")] if "]" in lower else lower[1:]
    elif lower.count(":") == 1:
        host = lower.split(":", 1)[0]
    else:
        host = lower  # no port, or a bare IPv6 address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def resolve(
    url: Optional[str],
    api_key: Optional[str],
    tls: Optional[bool],
    root_certificates: Union[bytes, str, os.PathLike[str], None],
    server_name: Optional[str],
    policy: RetryPolicy,
) -> Target:
    url = url or os.environ.get("LETHE_URL") or DEFAULT_URL
    tls_hint: Optional[str] = None
    api_key = api_key if api_key is not None else os.environ.get("LETHE_API_KEY")
    if not api_key:
        raise ValueError("an API key is needed: Lethe(url, api_key=…) or LETHE_API_KEY")
    # A key read from a file keeps its newline; gRPC would refuse the header as INTERNAL.
    api_key = api_key.strip()
    if not api_key or not all("!" <= ch <= "~" for ch in api_key):
        raise ValueError("the API key holds characters no API key has (keys are printable ASCII)")
    if "://" in url:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https", "grpc", "grpcs"):
            raise ValueError(f"unsupported URL scheme {parts.scheme!r} (http, https, grpc, grpcs)")
        secure_scheme = scheme in ("https", "grpcs")
        host = parts.hostname or "127.0.0.1"
        port = parts.port or (443 if secure_scheme else 50051)
        address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        if tls is None:
            tls = secure_scheme
    else:
        address = url
        if tls is None:
            # A bare host:port is plaintext only on this machine: elsewhere the
            # API key would cross the network in clear. Say `http://host:port`
            # (or tls=False) for a plaintext server on another host.
            tls = root_certificates is not None or not _on_this_machine(address)
            if tls and root_certificates is None:
                tls_hint = (
                    f"TLS was used because {address} is not this machine; for a plaintext server say "
                    f"'http://{address}' or tls=False"
                )
    creds = None
    if tls:
        creds = grpc.ssl_channel_credentials(root_certificates=_read_pem(root_certificates))
    elif root_certificates is not None:
        raise ValueError("root_certificates given but tls=False")
    # Reconnect as quickly as the retry policy retries, so that a retry after UNAVAILABLE
    # does not wait for the channel's own backoff (1 s and growing by default). Not
    # grpc.min_reconnect_backoff_ms: that is also the connect timeout (20 s by default).
    ms = max(50, int(policy.initial_backoff * 1000))
    options: list[tuple[str, Union[str, int]]] = [
        ("grpc.initial_reconnect_backoff_ms", ms),
        ("grpc.max_reconnect_backoff_ms", max(ms, int(policy.max_backoff * 1000))),
        ("grpc.max_receive_message_length", 64 * 1024 * 1024),
        ("grpc.primary_user_agent", f"lethe-python/{__version__}"),
        ("grpc.enable_retries", 0),
    ]
    if server_name:
        options.append(("grpc.ssl_target_name_override", server_name))
    return Target(address, creds, options, (("authorization", f"Bearer {api_key}"),), tls_hint)


def with_tls_hint(err: Exception, hint: Optional[str]) -> Exception:
    """``err`` with ``hint`` added to its message when it is a TLS handshake that
    failed (what a plaintext server gives a TLS client)."""
    message = getattr(err, "message", None)
    if hint and isinstance(message, str) and ("ssl" in message.lower() or "handshake" in message.lower()):
        err.message = f"{message} ({hint})"  # type: ignore[attr-defined]
        err.args = (err.message,)  # type: ignore[attr-defined]
    return err
