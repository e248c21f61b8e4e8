"""The guarded HTTP client: address policy (SSRF), size cap, deadline, redirects.

No test here sends a packet anywhere but 127.0.0.1. Where a test needs a hostname
that "resolves publicly", the event loop's resolver is replaced (not our code), and
requests go through the local feed server acting as a forward proxy: httpx then
never connects to the target host itself, so even a broken guard could not reach
10.0.0.1 or 169.254.169.254. The proxy's request log proves where the guard stopped.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from bot.errors import FetchError
from bot.http import HostLimiter, Page, check_url, get_page, make_client
from tests.feedserver import FeedServer

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
PUBLIC_NAME = "press.example.org"
PUBLIC_ADDRESS = "93.184.215.14"  # a global unicast address; never contacted (see module doc)
NON_PUBLIC = ["127.0.0.1", "10.0.0.1", "169.254.169.254", "[::1]"]
NON_PUBLIC_IDS = ["loopback", "private", "cloud-metadata", "ipv6-loopback"]


class FakeResolver:
    """Answers for a few names; literal addresses resolve as the OS would (no DNS involved)."""

    def __init__(self, names: dict[str, list[str]]) -> None:
        self.names = names
        self.asked: list[str] = []

    async def getaddrinfo(self, _loop: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        self.asked.append(name)
        if name in self.names:
            return [self._info(address, int(port or 0)) for address in self.names[name]]
        try:
            ipaddress.ip_address(name)
        except ValueError:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)

    @staticmethod
    def _info(address: str, port: int) -> Any:
        if ipaddress.ip_address(address).version == 6:
            return (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (address, port, 0, 0))
        return (socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))


@pytest.fixture
def resolver(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeResolver]:
    fake = FakeResolver({PUBLIC_NAME: [PUBLIC_ADDRESS], "intranet.example.org": ["10.1.2.3"]})

    async def getaddrinfo(self: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return await fake.getaddrinfo(self, host, port, *args, **kwargs)

    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)
    yield fake


def through_proxy(server: FeedServer) -> httpx.AsyncClient:
    """Every request goes to the local server; plain-http targets are never connected to."""
    return httpx.AsyncClient(proxy=server.base, trust_env=False, follow_redirects=False, timeout=2.0)


def fetch(client: httpx.AsyncClient, url: str, **options: Any) -> Page:
    options = {"max_bytes": 1_000_000, "allow_private": False, "deadline_seconds": 5.0, **options}

    async def go() -> Page:
        async with client:
            return await get_page(client, url, **options)

    return asyncio.run(go())


def local_client() -> httpx.AsyncClient:
    return make_client(timeout=2.0, connect_timeout=2.0, concurrency=4, allow_private=True)


# --- address policy -------------------------------------------------------------------------------


@pytest.mark.parametrize("host", NON_PUBLIC, ids=NON_PUBLIC_IDS)
def test_url_at_a_non_public_address_is_refused_before_any_request(
    host: str, feed_server: FeedServer, resolver: FakeResolver
) -> None:
    with pytest.raises(FetchError, match=r"refused: .* non-public address"):
        fetch(through_proxy(feed_server), f"http://{host}/feed.xml")

    assert feed_server.requests == []


@pytest.mark.parametrize("host", NON_PUBLIC, ids=NON_PUBLIC_IDS)
def test_redirect_to_a_non_public_address_is_refused_before_following_it(
    host: str, feed_server: FeedServer, resolver: FakeResolver
) -> None:
    start = f"http://{PUBLIC_NAME}/feed.xml"
    feed_server.redirect(start, f"http://{host}/latest.xml", status=302)

    with pytest.raises(FetchError, match=r"refused: .* non-public address") as caught:
        fetch(through_proxy(feed_server), start)

    assert caught.value.url == f"http://{host}/latest.xml"
    assert [path for path, _headers in feed_server.requests] == [start]  # the first hop only


def test_each_hop_is_checked_by_its_resolved_address_not_its_name(
    feed_server: FeedServer, resolver: FakeResolver
) -> None:
    start = f"http://{PUBLIC_NAME}/feed.xml"
    feed_server.redirect(start, "http://intranet.example.org/feed.xml")

    with pytest.raises(FetchError, match=r"intranet\.example\.org resolves to non-public address 10\.1\.2\.3"):
        fetch(through_proxy(feed_server), start)

    assert resolver.asked.count("intranet.example.org") == 1
    assert len(feed_server.requests) == 1


def test_a_name_with_one_private_address_among_public_ones_is_refused(resolver: FakeResolver) -> None:
    resolver.names["mixed.example.org"] = [PUBLIC_ADDRESS, "192.168.0.7"]

    with pytest.raises(FetchError, match=r"non-public address 192\.168\.0\.7"):
        asyncio.run(check_url("http://mixed.example.org/", allow_private=False))


@pytest.mark.parametrize(
    "address",
    ["[::ffff:127.0.0.1]", "[fe80::1]", "224.0.0.1", "0.0.0.0", "100.64.0.1", "[fd00::1]"],
    ids=["ipv4-mapped-loopback", "ipv6-link-local", "multicast", "unspecified", "carrier-nat", "ipv6-ula"],
)
def test_other_non_public_ranges_are_refused(address: str, resolver: FakeResolver) -> None:
    with pytest.raises(FetchError, match="non-public address"):
        asyncio.run(check_url(f"http://{address}/", allow_private=False))


def test_a_public_address_passes_the_check(resolver: FakeResolver) -> None:
    asyncio.run(check_url(f"https://{PUBLIC_NAME}/rss.xml", allow_private=False))


def test_unresolvable_host_is_a_fetch_error(resolver: FakeResolver) -> None:
    with pytest.raises(FetchError, match=r"DNS lookup failed for nowhere\.invalid"):
        asyncio.run(check_url("http://nowhere.invalid/", allow_private=False))


@pytest.mark.parametrize("allow_private", [False, True], ids=["guarded", "private-allowed"])
@pytest.mark.parametrize(
    "url",
    ["file:///etc/passwd", "gopher://127.0.0.1:70/_GET", "ftp://example.org/feed.xml", "//example.org/x"],
    ids=["file", "gopher", "ftp", "no-scheme"],
)
def test_only_http_and_https_are_fetched_even_with_private_networks_allowed(url: str, allow_private: bool) -> None:
    with pytest.raises(FetchError, match=r"refused: .* scheme"):
        asyncio.run(check_url(url, allow_private=allow_private))


@pytest.mark.parametrize("target", ["file:///etc/passwd", "gopher://127.0.0.1:70/_x"], ids=["file", "gopher"])
def test_redirect_to_another_scheme_is_refused_even_when_private_networks_are_allowed(
    target: str, feed_server: FeedServer
) -> None:
    start = feed_server.redirect("/feed.xml", target)

    with pytest.raises(FetchError, match=r"refused: .* scheme"):
        fetch(local_client(), start, allow_private=True)


def test_loopback_is_fetched_when_private_networks_are_allowed(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", RSS)

    page = fetch(local_client(), url, allow_private=True)

    assert (page.status, page.body, page.final_url) == (200, RSS, url)
    assert page.headers["content-type"].startswith("application/rss+xml")


# --- limits ----------------------------------------------------------------------------------------


def test_declared_content_length_over_the_cap_is_refused_unread(feed_server: FeedServer) -> None:
    url = feed_server.add("/big.xml", b"x" * 5000)

    with pytest.raises(FetchError, match=r"body too large: 5000 bytes \(limit 1000\)"):
        fetch(local_client(), url, allow_private=True, max_bytes=1000)


def test_streamed_body_over_the_cap_is_cut_off(feed_server: FeedServer) -> None:
    url = feed_server.add("/endless.xml", huge=50_000_000)  # chunked: no Content-Length

    with pytest.raises(FetchError, match="body too large: over 200000 bytes"):
        fetch(local_client(), url, allow_private=True, max_bytes=200_000)


def test_a_body_at_the_cap_is_accepted(feed_server: FeedServer) -> None:
    url = feed_server.add("/exact.xml", RSS)

    page = fetch(local_client(), url, allow_private=True, max_bytes=len(RSS))

    assert page.body == RSS


def test_trickling_server_hits_the_deadline(feed_server: FeedServer) -> None:
    url = feed_server.add("/trickle.xml", trickle=True)  # a byte every 0.1 s: no read timeout fires

    started = time.monotonic()
    with pytest.raises(FetchError, match=r"timeout: no complete answer within 0\.5s"):
        fetch(local_client(), url, allow_private=True, deadline_seconds=0.5)

    assert time.monotonic() - started < 3


def test_silent_server_hits_the_read_timeout(feed_server: FeedServer) -> None:
    url = feed_server.add("/hang.xml", RSS, hang=3)
    client = make_client(timeout=0.3, connect_timeout=1.0, concurrency=1, allow_private=True)

    with pytest.raises(FetchError, match=r"timeout \(ReadTimeout\)"):
        fetch(client, url, allow_private=True)


def test_closed_port_is_a_fetch_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again when the block ends

    with pytest.raises(FetchError, match="ConnectError"):
        fetch(local_client(), f"http://127.0.0.1:{port}/feed.xml", allow_private=True)


# --- redirects -------------------------------------------------------------------------------------


def test_redirect_loop_stops_at_the_cap(feed_server: FeedServer) -> None:
    start = feed_server.redirect("/a", "/b", status=302)
    feed_server.redirect("/b", "/a", status=302)

    with pytest.raises(FetchError, match=r"too many redirects \(more than 3\)"):
        fetch(local_client(), start, allow_private=True, max_redirects=3)

    assert feed_server.hits["/a"] + feed_server.hits["/b"] == 4


@pytest.mark.parametrize(
    ("statuses", "permanent"),
    [((301,), True), ((308,), True), ((301, 308), True), ((302,), False), ((301, 307), False), ((303,), False)],
    ids=["301", "308", "301-308", "302", "301-307", "303"],
)
def test_only_an_all_permanent_chain_moves_the_feed(
    statuses: tuple[int, ...], permanent: bool, feed_server: FeedServer
) -> None:
    final = feed_server.add("/final.xml", RSS)
    for hop, status in enumerate(statuses):
        target = "/final.xml" if hop == len(statuses) - 1 else f"/hop{hop + 1}"
        feed_server.redirect(f"/hop{hop}", target, status=status)

    page = fetch(local_client(), feed_server.url("/hop0"), allow_private=True)

    assert (page.final_url, page.body) == (final, RSS)
    assert page.permanent_url == (final if permanent else None)


def test_no_redirect_means_no_permanent_url(feed_server: FeedServer) -> None:
    page = fetch(local_client(), feed_server.add("/feed.xml", RSS), allow_private=True)

    assert page.permanent_url is None


def test_relative_redirect_is_resolved_against_the_hop(feed_server: FeedServer) -> None:
    feed_server.add("/new/feed.xml", RSS)
    feed_server.redirect("/old/feed.xml", "../new/feed.xml")

    page = fetch(local_client(), feed_server.url("/old/feed.xml"), allow_private=True)

    assert page.final_url == feed_server.url("/new/feed.xml")


def test_error_statuses_are_returned_for_the_caller_to_judge(feed_server: FeedServer) -> None:
    url = feed_server.add("/gone.xml", b"gone", status=410, validators=False)

    page = fetch(local_client(), url, allow_private=True)

    assert (page.status, page.body) == (410, b"gone")


def test_requests_name_the_project(feed_server: FeedServer) -> None:
    fetch(local_client(), feed_server.add("/feed.xml", RSS), allow_private=True)

    headers = feed_server.requests[-1][1]
    assert headers["user-agent"].startswith("pressbot/")
    assert "gzip" in headers["accept-encoding"]


def test_host_limiter_shares_one_semaphore_per_host() -> None:
    limiter = HostLimiter(per_host=2)

    first = limiter.for_url("https://Press.UN.org/en/rss.xml")

    assert first is limiter.for_url("https://press.un.org/other")
    assert first is not limiter.for_url("https://news.un.org/feed")
