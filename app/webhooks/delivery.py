"""One HTTP POST to a client's endpoint, safe against server-side request forgery.

Clients choose the URLs we call, so a URL must not reach into our own network: http(s) only, and
every address its host resolves to must be public (not private, loopback, link-local, shared,
reserved or multicast) unless it lies in TESSERA_WEBHOOK_ALLOWED_NETWORKS. The check runs when
an endpoint is registered (a clear 422) and again at connect time, inside httpx's transport: the
network backend resolves the name itself, refuses the connection if any address is not allowed,
and connects to an address it has just checked. So a DNS answer that changes after registration
(DNS rebinding) gains nothing, and TLS still verifies the certificate against the host name.
Redirects are never followed (a 3xx is a failed attempt: the client should update the URL), the
environment's proxy settings are ignored (a proxy would hide the destination), at most
TESSERA_WEBHOOK_MAX_RESPONSE_BYTES of a response are read, and each attempt has a timeout for
connecting and for every read, plus a deadline for reading the body.
"""

from __future__ import annotations

import functools
import ipaddress
import socket
import ssl
import time
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Final
from urllib.parse import urlsplit

import httpcore
import httpx

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]

EXCERPT_CHARS: Final = 1000
USER_AGENT: Final = "Tessera-Webhooks/1"


class DestinationRefused(Exception):
    """The URL may not be called: wrong scheme, or its host resolves to a non-public address."""


class DestinationUnresolvable(Exception):
    """The URL's host name does not resolve."""


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to, in the resolver's order, without duplicates."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise DestinationUnresolvable(f"{host} does not resolve: {exc.strerror}") from None
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def is_public(address: IPAddress) -> bool:
    """Whether an address is on the public internet (an IPv4-mapped IPv6 address is judged by
    its IPv4 address)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


@dataclass(frozen=True)
class AddressPolicy:
    """Which addresses webhook requests may connect to."""

    allowed_networks: tuple[IPNetwork, ...] = ()
    resolve: Resolver = field(default=system_resolver, compare=False)

    @classmethod
    def of(cls, networks: Iterable[str], resolve: Resolver = system_resolver) -> AddressPolicy:
        return cls(tuple(ipaddress.ip_network(n, strict=False) for n in networks), resolve)

    def permits(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])  # drop an IPv6 zone id
        if any(ip in network for network in self.allowed_networks):
            return True
        return is_public(ip)

    def checked_addresses(self, host: str, port: int) -> list[str]:
        """The addresses of `host`, all permitted; `DestinationRefused` if any is not (a name
        with one private address among public ones is refused too), `DestinationUnresolvable`
        if there are none."""
        addresses = self.resolve(host, port)
        if not addresses:
            raise DestinationUnresolvable(f"{host} does not resolve")
        refused = [a for a in addresses if not self.permits(a)]
        if refused:
            raise DestinationRefused(
                f"{host} resolves to {', '.join(refused)}: private, loopback and link-local "
                "addresses are not allowed"
            )
        return addresses


def check_url(url: str, policy: AddressPolicy) -> None:
    """Refuse a URL we would not call (scheme, missing host, credentials, address)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused("only http and https URLs can receive webhooks")
    if not parts.hostname:
        raise DestinationRefused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused("put no credentials in the URL; verify our signature instead")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise DestinationRefused("the URL's port is not a number from 0 to 65535") from None
    policy.checked_addresses(parts.hostname, port)


class _CheckedBackend(httpcore.SyncBackend):
    """Resolves, checks and connects to a checked address: the check at connect time."""

    def __init__(self, policy: AddressPolicy) -> None:
        self.policy = policy

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: typing.Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        failure: httpcore.ConnectError | httpcore.ConnectTimeout | None = None
        for address in self.policy.checked_addresses(host, port):
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        assert failure is not None
        raise failure


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context of every https:// attempt, built on first use and shared (building
    one loads the CA bundle: ~24 ms, once paid twice per attempt, even for http://)."""
    return httpx.create_ssl_context(trust_env=False)


#: What an http:// attempt's transport is given instead: a bare context, never used for a
#: handshake, so no CA bundle is loaded for plain HTTP.
_PLAIN = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class CheckedTransport(httpx.HTTPTransport):
    """httpx's transport over a connection pool whose network backend checks every address it
    connects to (httpx does not expose the backend, so the pool is replaced)."""

    def __init__(self, policy: AddressPolicy, *, tls: bool = True) -> None:
        context = tls_context() if tls else _PLAIN
        super().__init__(verify=context, trust_env=False)
        self._pool = httpcore.ConnectionPool(
            ssl_context=context,
            max_connections=1,
            network_backend=_CheckedBackend(policy),
        )


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt got: a status code, or an error (timeout, refused address, …)."""

    status_code: int | None
    latency_ms: int
    error: str | None = None
    excerpt: str | None = None
    retry_after: str | None = None


def post(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    policy: AddressPolicy,
    timeout: float,
    max_response_bytes: int,
) -> AttemptResult:
    """POST `body` to `url` once. Never raises for anything the receiver or the network does."""
    started = time.monotonic()

    def elapsed() -> int:
        return round((time.monotonic() - started) * 1000)

    try:
        check_url(url, policy)  # the scheme and credentials; addresses again at connect time
        with (
            httpx.Client(
                transport=CheckedTransport(policy, tls=url.lower().startswith("https:")),
                timeout=httpx.Timeout(timeout),
                follow_redirects=False,
                trust_env=False,
            ) as client,
            client.stream(
                "POST",
                url,
                content=body,
                headers={
                    "content-type": "application/json",
                    "user-agent": USER_AGENT,
                    **headers,
                },
            ) as response,
        ):
            content = read_capped(response.iter_raw(), max_response_bytes, started + timeout)
            return AttemptResult(
                status_code=response.status_code,
                latency_ms=elapsed(),
                error=_status_error(response),
                excerpt=content.decode("utf-8", "replace")[:EXCERPT_CHARS] or None,
                retry_after=response.headers.get("retry-after"),
            )
    except (DestinationRefused, DestinationUnresolvable) as exc:
        return AttemptResult(None, elapsed(), f"refused: {exc}")
    except httpx.TimeoutException:
        return AttemptResult(None, elapsed(), f"timed out after {timeout:g} s")
    except httpx.HTTPError as exc:
        return AttemptResult(None, elapsed(), f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS])


def read_capped(chunks: Iterable[bytes], limit: int, deadline: float) -> bytes:
    """At most `limit` bytes of the body, read until `deadline` (monotonic); the rest is left
    unread (the connection is closed, not reused)."""
    received: list[bytes] = []
    size = 0
    for chunk in chunks:
        received.append(chunk[: limit - size])
        size += len(received[-1])
        if size >= limit or time.monotonic() > deadline:
            break
    return b"".join(received)


def _status_error(response: httpx.Response) -> str | None:
    if 200 <= response.status_code < 300:
        return None
    if response.is_redirect:
        location = response.headers.get("location", "")
        return f"redirect to {location[:200]!r} not followed: update the endpoint's URL"
    return f"HTTP {response.status_code}"
