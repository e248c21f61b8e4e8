"""The one way pressbot makes HTTP requests: httpx, guarded.

Feed URLs and, worse, item links come from third parties, so every hop of a request
is checked: only http/https, and (unless private networks are allowed) the host's
*resolved* addresses must be public — no loopback, private, link-local (cloud
metadata at 169.254.169.254), multicast or reserved ranges. Redirects are followed
here hop by hop so that each hop is checked and permanent moves are noticed.
Bodies are streamed and cut at ``max_bytes``.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from bot import USER_AGENT
from bot.errors import FetchError
from bot.httpbody import decoded_chunks
from bot.records import FetchLimits
from bot.urls import http_url_parts

PERMANENT_REDIRECTS = frozenset({301, 308})
REDIRECTS = frozenset({301, 302, 303, 307, 308})
# A header or request line cannot carry these; httpx raises InvalidURL (or worse, h11
# a LocalProtocolError) only once the request is being built.
_URL_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f]")
# What each step of building a request raises for a URL it cannot use: urlsplit's
# .port (ValueError), httpx.URL (InvalidURL), socket.getaddrinfo on a port > 65535
# (OverflowError).
URL_ERRORS = (httpx.InvalidURL, ValueError, OverflowError, UnicodeError)
NOT_HTTP = "is not an http(s) URL"


@dataclass(frozen=True, slots=True)
class Page:
    """A response body read within the limits."""

    final_url: str
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    permanent_url: str | None = None  # set when every redirect on the way was permanent


@dataclass
class HostLimiter:
    """At most ``per_host`` requests in flight to one host (politeness, RFC 9110 §9.2.1)."""

    per_host: int
    _semaphores: dict[str, asyncio.Semaphore] = field(default_factory=dict)

    def for_url(self, url: str) -> asyncio.Semaphore:
        host = (urlsplit(url).hostname or "").lower()
        if host not in self._semaphores:
            self._semaphores[host] = asyncio.Semaphore(self.per_host)
        return self._semaphores[host]


def make_client(
    *, timeout: float, connect_timeout: float, concurrency: int, allow_private: bool = False
) -> httpx.AsyncClient:
    """One client per pass (httpx docs: share a client; don't make one per request).

    Its connections go only to addresses checked at connect time (``_VettedBackend``).
    """
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout, connect=connect_timeout, pool=None),
        limits=limits,
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
        http2=False,
        transport=_vetted_transport(limits, allow_private),
    )


class _VettedBackend(httpcore.AsyncNetworkBackend):
    """Resolves the host once, checks those addresses and connects to one of them.

    ``check_url`` alone resolved the name, then httpx resolved it again to connect:
    a DNS server answering a public address, then 127.0.0.1, got through (DNS
    rebinding, issue 14). httpcore still sends the original name as Host and as the
    TLS server name (its ``start_tls(server_hostname=origin.host)``), so virtual hosts
    and certificates work as before. The same approach as reqwest's ``dns_resolver``.
    """

    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            addresses = await resolve_vetted(host, port, allow_private=self._allow_private)
        except FetchError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout=timeout, local_address=local_address, socket_options=socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                failure = exc
        raise failure or httpcore.ConnectError(f"no address for {host}")

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("refused: no Unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # Loading the CA bundle costs ~30-90 ms, twice per client when httpx made its own:
    # a worker made one client per batch of feeds. The context holds no per-connection state.
    return httpx.create_ssl_context()


def _vetted_transport(limits: httpx.Limits, allow_private: bool) -> httpx.AsyncHTTPTransport:
    transport = httpx.AsyncHTTPTransport(verify=_ssl_context(), limits=limits, http2=False)
    # httpx has no network-backend option (encode/httpx#1319, #1444): its pool is
    # replaced by the same pool with our backend.
    transport._pool = httpcore.AsyncConnectionPool(
        ssl_context=_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=limits.keepalive_expiry,
        http1=True,
        http2=False,
        network_backend=_VettedBackend(allow_private),
    )
    return transport


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot be fetched (one phrase), or None when it can.

    Config and OPML import ask this so that such a feed is refused before a pass
    starts; a redirect or item link is checked by ``get_page`` at fetch time.
    """
    if _URL_CONTROL_OR_SPACE.search(url):
        return "is not an http(s) URL (a space or control character in it)"
    try:
        parts = urlsplit(url)
        port = parts.port
        httpx.URL(url)
    except URL_ERRORS as exc:
        return f"is not an http(s) URL ({exc})"
    if http_url_parts(url) is None:
        return NOT_HTTP
    if port == 0:
        return "is not an http(s) URL (port 0)"
    return None


def client_for(limits: FetchLimits) -> httpx.AsyncClient:
    """The pass's client, with the configured timeouts, connection limits and address policy."""
    return make_client(
        timeout=limits.timeout_seconds,
        connect_timeout=limits.connect_timeout_seconds,
        concurrency=limits.concurrency,
        allow_private=limits.allow_private,
    )


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


async def check_url(url: str, *, allow_private: bool) -> None:
    """Raise FetchError unless ``url`` is http(s) and (if required) resolves to public addresses."""
    problem = url_problem(url)
    parts = urlsplit(url) if problem is None or problem == NOT_HTTP else None
    if parts is None:
        raise FetchError(url, f"refused: the URL {problem}")
    if parts.scheme not in ("http", "https"):
        raise FetchError(url, f"refused: {parts.scheme or 'no'} scheme (only http and https)")
    host = parts.hostname
    if not host:
        raise FetchError(url, "refused: no host in URL")
    if allow_private:
        return
    try:
        await resolve_vetted(host, parts.port or (443 if parts.scheme == "https" else 80), allow_private=False)
    except FetchError as exc:
        raise FetchError(url, str(exc)) from None


async def resolve_vetted(host: str, port: int, *, allow_private: bool) -> list[str]:
    """The addresses of ``host``; FetchError when any is non-public (unless allowed) or none is found."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise FetchError(host, f"DNS lookup failed for {host}: {exc.strerror}") from exc
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        if not allow_private and not _is_public(address):
            raise FetchError(host, f"refused: {host} resolves to non-public address {address}")
    if not addresses:
        raise FetchError(host, f"DNS lookup failed for {host}: no address")
    return addresses


async def _read_limited(response: httpx.Response, url: str, max_bytes: int) -> bytes:
    declared = response.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes:
        raise FetchError(url, f"body too large: {int(declared)} bytes (limit {max_bytes})")
    chunks: list[bytes] = []
    size = 0
    encoding = response.headers.get("content-encoding")
    async for chunk in decoded_chunks(response.aiter_raw(), encoding, url, max_bytes):
        size += len(chunk)
        if size > max_bytes:
            raise FetchError(url, f"body too large: over {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def describe_error(exc: httpx.HTTPError) -> str:
    """One line for an httpx failure, naming what happened (httpx's own class names)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"timeout ({type(exc).__name__})"
    detail = str(exc).splitlines()[0] if str(exc) else ""
    if "CERTIFICATE_VERIFY_FAILED" in detail or "SSL" in detail:
        return f"TLS error: {detail}"
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


async def get_page(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int,
    allow_private: bool,
    max_redirects: int = 5,
    host_limiter: HostLimiter | None = None,
    headers: Mapping[str, str] | None = None,
    deadline_seconds: float = 60.0,
) -> Page:
    """GET ``url``, following redirects hop by hop; raise FetchError on any failure.

    Non-2xx final statuses are returned as a Page, not raised: the caller decides
    what 304, 404, 410 or 429 mean for it. ``deadline_seconds`` bounds the whole
    exchange: httpx's read timeout alone never fires on a server that trickles.
    """
    try:
        async with asyncio.timeout(deadline_seconds):
            return await _follow(client, url, max_bytes, allow_private, max_redirects, host_limiter, headers)
    except TimeoutError:
        raise FetchError(url, f"timeout: no complete answer within {deadline_seconds:g}s") from None


async def _follow(
    client: httpx.AsyncClient,
    url: str,
    max_bytes: int,
    allow_private: bool,
    max_redirects: int,
    host_limiter: HostLimiter | None,
    headers: Mapping[str, str] | None,
) -> Page:
    current = url
    all_permanent = True
    for _hop in range(max_redirects + 1):
        await check_url(current, allow_private=allow_private)
        limiter = host_limiter.for_url(current) if host_limiter else None
        try:
            if limiter:
                await limiter.acquire()
            try:
                async with client.stream("GET", current, headers=dict(headers or {})) as response:
                    if response.status_code in REDIRECTS and "location" in response.headers:
                        all_permanent &= response.status_code in PERMANENT_REDIRECTS
                        current = urljoin(current, response.headers["location"])
                        continue
                    body = (
                        b""
                        if response.status_code == 304
                        else await _read_limited(response, current, max_bytes)
                    )
                    return Page(
                        final_url=current,
                        status=response.status_code,
                        headers={k.lower(): v for k, v in response.headers.items()},
                        body=body,
                        permanent_url=current if current != url and all_permanent else None,
                    )
            finally:
                if limiter:
                    limiter.release()
        except httpx.HTTPError as exc:
            raise FetchError(current, describe_error(exc)) from exc
        except URL_ERRORS as exc:
            # A Location that cannot be joined or requested is this fetch's failure only.
            raise FetchError(current, f"unusable URL: {type(exc).__name__}: {exc}") from exc
    raise FetchError(url, f"too many redirects (more than {max_redirects})")
