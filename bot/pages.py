"""The pass's part for page sources: newsroom listing pages watched like feeds (issue 17).

A listing is fetched like a feed and read by ``bot.listing`` into items keyed by their
listed URL. This module decides which release pages a pass fetches (new links and
pages still owed, newest first, at most ``pages_per_pass``), and stores what they
gave (``bot.store.listed``); flagging, summaries and alerts are the feeds' own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.orm import Session

from bot.records import (
    ArticleText,
    FeedSource,
    FeedToFetch,
    ListingRule,
    ParsedFeed,
    ParsedItem,
    StoredFeed,
    StoredItem,
)
from bot.store import listed as listed_store
from bot.store.items import UpsertResult

_OLDEST = datetime.min.replace(tzinfo=UTC)


def with_listing_rules(feeds: Sequence[FeedToFetch], sources: Sequence[FeedSource]) -> list[FeedToFetch]:
    """The configured listing rule on each page source: how fetch and parse know one."""
    rules = {source.name: source.listing for source in sources if source.listing is not None}
    return [replace(feed, listing=rules[feed.name]) if feed.name in rules else feed for feed in feeds]


def _newest_first(items: Sequence[ParsedItem]) -> list[ParsedItem]:
    # Undated releases keep their place after the dated ones: a listing is newest first.
    return sorted(items, key=lambda item: (item.published is None, -(item.published or _OLDEST).timestamp()))


def pages_to_fetch(
    session: Session, feed_id: int, parsed: ParsedFeed | None, rule: ListingRule, max_attempts: int
) -> list[ParsedItem]:
    """Release pages this pass fetches: links not seen before and pages still owed.

    An unchanged listing (``parsed`` None) or one with no new link asks only for what is
    owed (beyond an earlier pass's cap, or failed before), so it asks for nothing once
    every page is read.
    """
    listed = list(parsed.items) if parsed is not None else []
    known = listed_store.known_urls(session, feed_id, (item.key for item in listed))
    new = [item for item in listed if item.key not in known]
    owed = [
        ParsedItem(key=page.key, url=page.url, title=page.title, teaser="", content="", published=page.published,
                   updated=None)
        for page in listed_store.owed_pages(session, feed_id, max_attempts)
    ]
    return _newest_first([*new, *owed])[: rule.pages_per_pass]


def store_page_source(
    session: Session,
    feed: StoredFeed,
    listing_url: str,
    parsed: ParsedFeed | None,
    articles: Mapping[str, ArticleText],
    now: datetime,
) -> UpsertResult:
    return listed_store.store_listed(
        session, feed.feed_id, feed.name, listing_url, parsed.items if parsed else (), articles, now
    )


def seen_on_first_pass(items: Sequence[StoredItem], first_polled_at: datetime | None) -> list[StoredItem]:
    """Releases a source's first pass stored from its listing alone: when a later pass reads
    their page, they are judged by the first pass's rule (``alerts.window``), not alerted
    as news, or a 300-link archive would be announced 20 pages a pass."""
    if first_polled_at is None:
        return []
    return [item for item in items if item.first_seen <= first_polled_at]
