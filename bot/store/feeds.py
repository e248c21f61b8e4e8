"""Feeds in the database: configured sources, cache validators and health."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.records import FeedSource, FeedToFetch, FetchResult, ParsedFeed, StoredFeed
from bot.schema import Feed


def sync_feeds(session: Session, sources: Sequence[FeedSource]) -> None:
    """Make the feeds table match the configuration; feeds no longer configured are disabled.

    A feed whose configured URL changed starts afresh (new validators); a URL changed by
    a permanent redirect is kept while the configuration still names the old one.
    """
    existing = {feed.name: feed for feed in session.scalars(select(Feed))}
    for source in sources:
        feed = existing.pop(source.name, None)
        if feed is None:
            session.add(
                Feed(
                    name=source.name,
                    url=source.url,
                    configured_url=source.url,
                    tags=list(source.tags),
                    full_text=source.full_text,
                    channel=source.channel,
                    interval_seconds=source.interval_seconds,
                    consecutive_failures=0,
                )
            )
            continue
        if feed.configured_url != source.url:
            # A new URL in the configuration is the operator's fix: start the feed afresh,
            # re-enabling it if it had been disabled (410 Gone, failing for days).
            feed.url = feed.configured_url = source.url
            feed.etag = feed.last_modified = feed.content_hash = None
            feed.enabled, feed.disabled_reason = True, None
            feed.consecutive_failures, feed.failing_since, feed.next_check_at = 0, None, None
        if feed.disabled_reason == "removed from configuration":
            feed.enabled, feed.disabled_reason = True, None
        feed.tags = list(source.tags)
        feed.full_text = source.full_text
        feed.channel = source.channel
        feed.interval_seconds = source.interval_seconds
    for feed in existing.values():
        if feed.enabled:
            feed.enabled, feed.disabled_reason = False, "removed from configuration"


def _to_fetch(feed: Feed) -> FeedToFetch:
    return FeedToFetch(
        feed_id=feed.id,
        name=feed.name,
        url=feed.url,
        etag=feed.etag,
        last_modified=feed.last_modified,
        content_hash=feed.content_hash,
    )


def feeds_to_fetch(session: Session, ids: Sequence[int] | None = None) -> list[FeedToFetch]:
    """Enabled feeds (or the given ones), in name order."""
    query = select(Feed).where(Feed.enabled.is_(True)).order_by(Feed.name)
    if ids is not None:
        query = query.where(Feed.id.in_(ids))
    return [_to_fetch(feed) for feed in session.scalars(query)]


def _stored(feed: Feed) -> StoredFeed:
    return StoredFeed(
        feed_id=feed.id,
        name=feed.name,
        channel=feed.channel,
        full_text=feed.full_text,
        first_pass=feed.first_polled_at is None,
        pruned_before=feed.pruned_before,
        first_polled_at=feed.first_polled_at,
        muted_until=feed.muted_until,
    )


def stored_feed(session: Session, feed_id: int) -> StoredFeed:
    return _stored(session.get_one(Feed, feed_id))


def stored_feeds(session: Session, feed_ids: Collection[int]) -> dict[int, StoredFeed]:
    """The given feeds, by id (one query)."""
    if not feed_ids:
        return {}
    return {feed.id: _stored(feed) for feed in session.scalars(select(Feed).where(Feed.id.in_(list(feed_ids))))}


def record_success(session: Session, result: FetchResult, parsed: ParsedFeed | None, now: datetime) -> None:
    """A 2xx or 304: store the validators, clear the failure streak."""
    _record_success(session.get_one(Feed, result.feed_id), result, parsed, now)


def record_not_modified(session: Session, results: Sequence[FetchResult], now: datetime) -> dict[int, str]:
    """``record_success`` for feeds that answered 304, their rows read in one query; their names by id."""
    ids = [result.feed_id for result in results]
    feeds: dict[int, Feed] = {}
    for start in range(0, len(ids), 500):  # bound parameters per IN list (SQLite's 999 before 3.32)
        chunk = select(Feed).where(Feed.id.in_(ids[start : start + 500]))
        feeds.update((feed.id, feed) for feed in session.scalars(chunk))
    for result in results:
        _record_success(feeds[result.feed_id], result, None, now)
    return {feed_id: feed.name for feed_id, feed in feeds.items()}


def _record_success(feed: Feed, result: FetchResult, parsed: ParsedFeed | None, now: datetime) -> None:
    if result.permanent_url:
        feed.url = result.permanent_url
    feed.etag = result.etag
    feed.last_modified = result.last_modified
    if result.content_hash:
        feed.content_hash = result.content_hash
    if parsed is not None:
        feed.title = parsed.title or feed.title
        feed.language = parsed.language or feed.language
    feed.last_checked_at = feed.last_success_at = now
    feed.last_status = result.status
    feed.consecutive_failures = 0
    feed.failing_since = None
    feed.last_error = None
    if feed.first_polled_at is None:
        feed.first_polled_at = now


def record_failure(session: Session, feed_id: int, error: str, status: int | None, now: datetime) -> None:
    """A failed fetch or parse: keep the validators, extend the failure streak."""
    feed = session.get_one(Feed, feed_id)
    feed.last_checked_at = feed.last_error_at = now
    feed.last_status = status
    feed.last_error = error
    feed.consecutive_failures = (feed.consecutive_failures or 0) + 1
    if feed.failing_since is None:
        feed.failing_since = now


def feed_names(session: Session) -> dict[int, str]:
    return {feed_id: name for feed_id, name in session.execute(select(Feed.id, Feed.name))}
