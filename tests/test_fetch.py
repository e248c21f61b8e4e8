"""Fetch stage: how responses become FetchResults, and fetching against a real local server."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest

from bot.fetch import (
    FetchLimits,
    conditional_headers,
    content_hash,
    fetch_feed,
    fetch_feeds,
    looks_like_html,
    parse_max_age,
    parse_retry_after,
    result_from_page,
)
from bot.http import HostLimiter, Page, make_client
from bot.prepare import parse_result
from bot.records import FailureKind, FeedToFetch, FetchResult
from tests.feedserver import FeedServer

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Rights</title><link>https://example.org/</link>
<item><title>One</title><link>https://example.org/1</link><guid>1</guid></item>
</channel></rss>"""
FEED = FeedToFetch(feed_id=7, name="Rights", url="https://example.org/feed.xml")
LIMITS = FetchLimits(
    max_bytes=1_000_000, max_redirects=5, concurrency=16, per_host=4, deadline_seconds=5.0, allow_private=True
)


def page(status: int = 200, body: bytes = RSS, **headers: str) -> Page:
    return Page(
        final_url=FEED.url,
        status=status,
        headers={name.replace("_", "-"): value for name, value in headers.items()},
        body=body,
    )


def assert_one_outcome(result: FetchResult) -> None:
    """FetchResult's contract: an error, or not modified, or a body to parse."""
    outcomes = [result.error is not None, result.not_modified, result.body is not None]
    assert outcomes.count(True) == 1, result


# --- result_from_page ------------------------------------------------------------------------------


def test_new_body_is_handed_on_with_its_validators() -> None:
    result = result_from_page(
        FEED,
        page(body=RSS, etag='"v2"', last_modified="Mon, 02 Nov 2026 10:00:00 GMT", content_type="text/xml"),
        NOW,
    )

    assert_one_outcome(result)
    assert (result.body, result.content_type, result.status) == (RSS, "text/xml", 200)
    assert (result.etag, result.last_modified) == ('"v2"', "Mon, 02 Nov 2026 10:00:00 GMT")
    assert result.content_hash == content_hash(RSS)


def test_304_keeps_the_stored_validators_and_parses_nothing() -> None:
    feed = FeedToFetch(7, "Rights", FEED.url, etag='"v1"', last_modified="Sun, 01 Nov 2026 10:00:00 GMT")

    result = result_from_page(feed, page(304, b""), NOW)

    assert_one_outcome(result)
    assert result.not_modified and result.body is None
    assert (result.etag, result.last_modified) == ('"v1"', "Sun, 01 Nov 2026 10:00:00 GMT")



def test_304_with_fresh_validators_replaces_the_stored_ones() -> None:
    feed = FeedToFetch(7, "Rights", FEED.url, etag='"v1"', last_modified="Sun, 01 Nov 2026 10:00:00 GMT")

    result = result_from_page(feed, page(304, b"", etag='"v2"'), NOW)

    assert result.not_modified and result.etag == '"v2"'
    assert result.last_modified == "Sun, 01 Nov 2026 10:00:00 GMT"

def test_same_bytes_from_a_server_ignoring_conditional_get_are_not_modified() -> None:
    feed = FeedToFetch(7, "Rights", FEED.url, content_hash=content_hash(RSS))

    result = result_from_page(feed, page(body=RSS, etag='"new"'), NOW)

    assert_one_outcome(result)
    assert result.not_modified and result.body is None
    assert (result.etag, result.content_hash) == ('"new"', content_hash(RSS))


def test_410_marks_the_feed_gone() -> None:
    result = result_from_page(FEED, page(410, b"Gone"), NOW)

    assert_one_outcome(result)
    assert (result.error, result.gone, result.status) == ("HTTP 410", True, 410)


@pytest.mark.parametrize("status", [204, 403, 404, 500, 503], ids=str)
def test_other_non_success_statuses_are_errors_not_gone(status: int) -> None:
    result = result_from_page(FEED, page(status, b"nope"), NOW)

    assert_one_outcome(result)
    assert (result.error, result.gone) == (f"HTTP {status}", False)


def test_429_with_retry_after_seconds() -> None:
    result = result_from_page(FEED, page(429, b"slow down", retry_after="120"), NOW)

    assert (result.error, result.retry_after_seconds) == ("HTTP 429", 120.0)


def test_429_with_retry_after_http_date() -> None:
    result = result_from_page(FEED, page(429, b"", retry_after="Mon, 02 Nov 2026 12:30:00 GMT"), NOW)

    assert result.retry_after_seconds == 1800.0


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (" 90 ", 90.0),
        ("Mon, 02 Nov 2026 11:00:00 GMT", 0.0),  # already past
        ("Mon, 02 Nov 2026 13:00:00 +0100", 0.0),  # 12:00 UTC: now
        ("Monday, 02-Nov-26 12:01:00 GMT", 60.0),  # RFC 850, still an HTTP-date
        ("soon", None),
        ("-5", None),
        ("", None),
        (None, None),
    ],
    ids=["padded", "past", "offset", "rfc850", "garbage", "negative", "empty", "absent"],
)
def test_retry_after_forms(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value, NOW) == seconds


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("public, max-age=600", 600.0),
        ("max-age=0, must-revalidate", 0.0),
        ('max-age="60"', 60.0),
        ("s-maxage=30", None),
        ("no-cache", None),
        (None, None),
    ],
    ids=["public", "zero", "quoted", "s-maxage-only", "no-max-age", "absent"],
)
def test_max_age_is_read_from_cache_control(header: str | None, seconds: float | None) -> None:
    assert parse_max_age(header) == seconds
    if header:
        assert result_from_page(FEED, page(cache_control=header), NOW).max_age_seconds == seconds


CHALLENGE = b"""<!DOCTYPE html><html lang="en-US"><head><title>Just a moment...</title>
<meta http-equiv="refresh" content="35"></head><body>Checking your browser</body></html>"""


@pytest.mark.parametrize(
    "body",
    [
        CHALLENGE,
        b"\xef\xbb\xbf\n  <!-- cdn --><html><body>Document moved</body></html>",
        b"<HTML><HEAD><TITLE>302 Found</TITLE></HEAD></HTML>",
    ],
    ids=["challenge", "bom-and-comment", "upper-case"],
)
def test_an_html_page_instead_of_a_feed_is_an_error(body: bytes) -> None:
    result = result_from_page(FEED, page(body=body, content_type="text/html"), NOW)

    assert_one_outcome(result)
    assert result.error == "not a feed: the server sent an HTML page"


@pytest.mark.parametrize(
    "body",
    [RSS, b'<?xml version="1.0"?>\n<!-- html inside a comment --><feed xmlns="http://www.w3.org/2005/Atom"/>'],
    ids=["rss", "atom-with-comment"],
)
def test_a_feed_is_not_mistaken_for_html(body: bytes) -> None:
    assert not looks_like_html(body)


@pytest.mark.parametrize("body", [b"", b" \r\n\t "], ids=["empty", "whitespace"])
def test_an_empty_body_is_an_error(body: bytes) -> None:
    result = result_from_page(FEED, page(body=body), NOW)

    assert_one_outcome(result)
    assert result.error == "empty body"


def test_conditional_headers_carry_the_stored_validators() -> None:
    feed = FeedToFetch(7, "Rights", FEED.url, etag='W/"abc"', last_modified="Sun, 01 Nov 2026 10:00:00 GMT")

    headers = conditional_headers(feed)

    assert headers["If-None-Match"] == 'W/"abc"'
    assert headers["If-Modified-Since"] == "Sun, 01 Nov 2026 10:00:00 GMT"
    assert "application/rss+xml" in headers["Accept"]
    assert set(conditional_headers(FEED)) == {"Accept"}


# --- against a local server ------------------------------------------------------------------------


def run_fetch(feed: FeedToFetch, limits: FetchLimits = LIMITS) -> FetchResult:
    async def go() -> FetchResult:
        async with make_client(timeout=2, connect_timeout=2, concurrency=limits.concurrency,
                               allow_private=limits.allow_private) as client:
            return await fetch_feed(client, feed, limits, HostLimiter(limits.per_host))

    return asyncio.run(go())


def run_fetch_all(feeds: Sequence[FeedToFetch], limits: FetchLimits) -> tuple[list[FetchResult], list[int]]:
    seen: list[int] = []

    async def go() -> list[FetchResult]:
        async with make_client(timeout=2, connect_timeout=2, concurrency=limits.concurrency,
                               allow_private=limits.allow_private) as client:
            return await fetch_feeds(client, feeds, limits, lambda result: seen.append(result.feed_id))

    return asyncio.run(go()), seen


def test_second_fetch_sends_the_validators_and_gets_304(feed_server: FeedServer) -> None:
    url = feed_server.add("/feed.xml", RSS)
    first = run_fetch(FeedToFetch(1, "f", url))

    second = run_fetch(
        FeedToFetch(1, "f", url, etag=first.etag, last_modified=first.last_modified, content_hash=first.content_hash)
    )

    assert first.body == RSS and first.etag
    first_headers, second_headers = (headers for _path, headers in feed_server.requests)
    assert "if-none-match" not in first_headers
    assert second_headers["if-none-match"] == first.etag
    assert second_headers["if-modified-since"] == first.last_modified
    assert second.not_modified and second.status == 304 and second.body is None
    assert feed_server.not_modified["/feed.xml"] == 1


def test_server_without_validators_sending_the_same_bytes_is_not_modified(feed_server: FeedServer) -> None:
    url = feed_server.add("/plain.xml", RSS, validators=False)

    result = run_fetch(FeedToFetch(1, "f", url, content_hash=content_hash(RSS)))

    assert (result.status, result.not_modified, result.body) == (200, True, None)


def test_gzip_body_is_decoded_before_hashing(feed_server: FeedServer) -> None:
    url = feed_server.add("/gz.xml", RSS, gzip=True)

    result = run_fetch(FeedToFetch(1, "f", url))

    assert result.body == RSS
    assert result.content_hash == content_hash(RSS) != content_hash(gzip.compress(RSS))


def test_permanent_redirect_is_reported_for_the_store(feed_server: FeedServer) -> None:
    new = feed_server.add("/new.xml", RSS)
    old = feed_server.redirect("/old.xml", new, status=301)

    result = run_fetch(FeedToFetch(1, "f", old))

    assert (result.url, result.final_url, result.permanent_url, result.body) == (old, new, new, RSS)


@pytest.mark.parametrize(
    ("route", "error"),
    [
        ({"body": b"oops", "status": 500}, "HTTP 500"),
        ({"body": CHALLENGE, "content_type": "text/html"}, "not a feed: the server sent an HTML page"),
        ({"huge": 5_000_000}, "body too large: over 1000000 bytes"),
    ],
    ids=["500", "html", "too-large"],
)
def test_a_failing_feed_becomes_an_error_result(feed_server: FeedServer, route: dict[str, Any], error: str) -> None:
    url = feed_server.add("/bad.xml", **route)

    result = run_fetch(FeedToFetch(1, "f", url))

    assert_one_outcome(result)
    assert result.error == error


@pytest.mark.parametrize(
    ("route", "kind"),
    [({"body": b"oops", "status": 503}, FailureKind.HTTP_STATUS), ({"body": b"  "}, FailureKind.NOT_A_FEED),
     ({"huge": 5_000_000}, FailureKind.FETCH), ({"body": b"<rss><channel><item>"}, FailureKind.PARSE)],
    ids=["status", "empty", "too-large", "not-xml"],
)
def test_a_failure_keeps_its_kind_through_the_parse(feed_server: FeedServer, route: dict[str, Any],
                                                    kind: FailureKind) -> None:
    work = parse_result(run_fetch(FeedToFetch(1, "f", feed_server.add("/bad.xml", **route))))
    assert work.error and work.error_kind == kind and work.parsed is None


def test_guarded_fetch_of_loopback_is_an_error_result(feed_server: FeedServer) -> None:
    limits = FetchLimits(1000, 5, 4, 2, 5.0, allow_private=False)

    result = run_fetch(FeedToFetch(1, "f", feed_server.add("/feed.xml", RSS)), limits)

    assert result.error is not None and "non-public address 127.0.0.1" in result.error
    assert feed_server.requests == []


def test_one_bad_feed_does_not_stop_the_others(feed_server: FeedServer) -> None:
    feeds = [
        FeedToFetch(1, "good", feed_server.add("/good.xml", RSS)),
        FeedToFetch(2, "missing", feed_server.url("/missing.xml")),
        FeedToFetch(3, "scheme", "ftp://example.org/feed.xml"),
    ]

    results, seen = run_fetch_all(feeds, LIMITS)

    assert [result.feed_id for result in results] == [1, 2, 3]
    assert [result.error for result in results] == [
        None,
        "HTTP 404",
        "refused: ftp scheme (only http and https)",
    ]
    assert sorted(seen) == [1, 2, 3]


def slow_feeds(server: FeedServer, count: int) -> list[FeedToFetch]:
    """Feeds that each take 0.15 s to answer, so concurrent requests overlap at the server."""
    urls = [server.add(f"/feed{n}.xml", RSS, hang=0.15, validators=False) for n in range(count)]
    return [FeedToFetch(n, f"f{n}", url) for n, url in enumerate(urls)]


def test_per_host_limit_is_respected(feed_server: FeedServer) -> None:
    limits = FetchLimits(1_000_000, 5, concurrency=16, per_host=2, deadline_seconds=5.0, allow_private=True)

    results, _seen = run_fetch_all(slow_feeds(feed_server, 8), limits)

    assert all(result.body == RSS for result in results)
    assert feed_server.peak == 2


def test_global_limit_is_respected(feed_server: FeedServer) -> None:
    limits = FetchLimits(1_000_000, 5, concurrency=3, per_host=16, deadline_seconds=5.0, allow_private=True)

    results, _seen = run_fetch_all(slow_feeds(feed_server, 9), limits)

    assert all(result.ok for result in results)
    assert feed_server.peak == 3
