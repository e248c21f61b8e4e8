"""Fetch stage: retrieve feed bodies concurrently, politely and within limits.

Every outcome — including DNS, TLS, timeout, HTTP errors and "this is an HTML page" —
becomes a ``FetchResult``; nothing here raises for one bad feed, so a pass goes on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from bot.errors import FetchError
from bot.http import HostLimiter, Page, get_page
from bot.records import FailureKind, FeedToFetch, FetchLimits, FetchResult

log = logging.getLogger(__name__)

ACCEPT = (
    "application/rss+xml, application/atom+xml, application/rdf+xml, "
    "application/xml;q=0.9, text/xml;q=0.9, */*;q=0.5"
)
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
_HTML_START = re.compile(rb"^\s*(?:<!--.*?-->\s*)*<(?:!doctype\s+html|html[\s>])", re.IGNORECASE | re.DOTALL)


def content_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After is delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def parse_max_age(cache_control: str | None) -> float | None:
    if not cache_control:
        return None
    match = re.search(r"(?:^|[,\s])max-age\s*=\s*\"?(\d+)", cache_control, re.IGNORECASE)
    return float(match.group(1)) if match else None


def looks_like_html(body: bytes) -> bool:
    """A Cloudflare challenge or 'Document moved' page served in place of the feed."""
    return bool(_HTML_START.match(body[:2048].lstrip(b"\xef\xbb\xbf")))


def conditional_headers(feed: FeedToFetch) -> dict[str, str]:
    headers = {"Accept": PAGE_ACCEPT if feed.listing else ACCEPT}
    if feed.etag:
        headers["If-None-Match"] = feed.etag
    if feed.last_modified:
        headers["If-Modified-Since"] = feed.last_modified
    return headers


def result_from_page(feed: FeedToFetch, page: Page, now: datetime) -> FetchResult:
    """Interpret a response for a feed: 304, errors, HTML instead of XML, unchanged bytes."""
    base = FetchResult(
        feed_id=feed.feed_id,
        url=feed.url,
        final_url=page.final_url,
        permanent_url=page.permanent_url,
        status=page.status,
        retry_after_seconds=parse_retry_after(page.headers.get("retry-after"), now),
        max_age_seconds=parse_max_age(page.headers.get("cache-control")),
        listing=feed.listing,
    )
    if page.status == 304:
        # A 304 may carry fresher validators (RFC 9111 §4.3.4): keep those.
        return replace(
            base,
            not_modified=True,
            etag=page.headers.get("etag") or feed.etag,
            last_modified=page.headers.get("last-modified") or feed.last_modified,
        )
    if not 200 <= page.status < 300 or page.status in (204, 205):
        return replace(base, error=f"HTTP {page.status}", error_kind=FailureKind.HTTP_STATUS, gone=page.status == 410)
    if not page.body.strip():
        return replace(base, error="empty body", error_kind=FailureKind.NOT_A_FEED)
    if looks_like_html(page.body) and feed.listing is None:
        return replace(base, error="not a feed: the server sent an HTML page", error_kind=FailureKind.NOT_A_FEED)
    base = replace(
        base,
        etag=page.headers.get("etag"),
        last_modified=page.headers.get("last-modified"),
        content_hash=content_hash(page.body),
    )
    if base.content_hash == feed.content_hash:
        # The server ignored our conditional request; the bytes are the same, so parsing
        # them again would only cost time.
        return replace(base, not_modified=True)
    return replace(base, body=page.body, content_type=page.headers.get("content-type"))


async def fetch_feed(
    client: httpx.AsyncClient,
    feed: FeedToFetch,
    limits: FetchLimits,
    host_limiter: HostLimiter,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> FetchResult:
    try:
        page = await get_page(
            client,
            feed.url,
            max_bytes=limits.max_bytes,
            allow_private=limits.allow_private,
            max_redirects=limits.max_redirects,
            host_limiter=host_limiter,
            headers=conditional_headers(feed),
            deadline_seconds=limits.deadline_seconds,
        )
    except FetchError as exc:
        return FetchResult(
            feed_id=feed.feed_id, url=feed.url, error=str(exc), error_kind=FailureKind.FETCH, listing=feed.listing
        )
    return result_from_page(feed, page, clock())


async def fetch_feeds(
    client: httpx.AsyncClient,
    feeds: Sequence[FeedToFetch],
    limits: FetchLimits,
    on_result: Callable[[FetchResult], None] | None = None,
) -> list[FetchResult]:
    """Fetch all ``feeds`` with at most ``limits.concurrency`` in flight (and per-host limits)."""
    host_limiter = HostLimiter(limits.per_host)
    gate = asyncio.Semaphore(limits.concurrency)

    async def one(feed: FeedToFetch) -> FetchResult:
        async with gate:
            result = await fetch_feed(client, feed, limits, host_limiter)
        if on_result:
            on_result(result)
        return result

    return list(await asyncio.gather(*(one(feed) for feed in feeds)))
