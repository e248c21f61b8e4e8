"""Issue 14, item 4: the connection goes to the very address the guard checked (DNS rebinding)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from bot.errors import FetchError
from bot.http import Page, get_page, make_client
from tests.feedserver import FeedServer

RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title></channel></rss>'
NAME = "rebind.example.org"
PUBLIC_ADDRESS = "93.184.215.14"  # what the attacker's DNS answers first; never connected to


class RebindingResolver:
    """Answers ``answers`` in turn for NAME (the last one from then on), like an attacker's DNS."""

    def __init__(self, answers: list[str]) -> None:
        self.answers = answers
        self.asked = 0

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        name = host.decode() if isinstance(host, bytes) else str(host)
        if name != NAME:
            return socket.getaddrinfo(name, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
        address = self.answers[min(self.asked, len(self.answers) - 1)]
        self.asked += 1
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, int(port or 0)))]


@pytest.fixture
def rebinding(monkeypatch: pytest.MonkeyPatch) -> Iterator[RebindingResolver]:
    fake = RebindingResolver([PUBLIC_ADDRESS, "127.0.0.1"])

    async def getaddrinfo(_loop: Any, host: Any, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        return await fake.getaddrinfo(host, port, *args, **kwargs)

    # The event loop's resolver is what httpx (through anyio) and the guard both ask.
    monkeypatch.setattr(asyncio.base_events.BaseEventLoop, "getaddrinfo", getaddrinfo)
    yield fake


def fetch(url: str, *, allow_private: bool) -> Page:
    async def go() -> Page:
        async with make_client(timeout=2.0, connect_timeout=2.0, concurrency=2, allow_private=allow_private) as client:
            return await get_page(client, url, max_bytes=100_000, allow_private=allow_private, deadline_seconds=5)

    return asyncio.run(go())


def test_a_name_that_rebinds_to_loopback_after_the_check_is_never_connected_to(
    feed_server: FeedServer, rebinding: RebindingResolver
) -> None:
    feed_server.add("/feed.xml", RSS)
    port = feed_server.base.rsplit(":", 1)[1]

    with pytest.raises(FetchError, match=r"non-public address 127\.0\.0\.1"):
        fetch(f"http://{NAME}:{port}/feed.xml", allow_private=False)

    assert feed_server.requests == []


def test_the_vetted_address_is_connected_to_with_the_original_host_header(
    feed_server: FeedServer, rebinding: RebindingResolver
) -> None:
    rebinding.answers = ["127.0.0.1"]
    feed_server.add("/feed.xml", RSS)
    port = feed_server.base.rsplit(":", 1)[1]

    page = fetch(f"http://{NAME}:{port}/feed.xml", allow_private=True)

    assert page.body == RSS
    assert feed_server.requests[-1][1]["host"] == f"{NAME}:{port}"
