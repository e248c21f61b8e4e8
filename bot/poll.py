"""One pass: fetch → parse → full text → store → flag → summarize, then deliver.

This module alone calls several stages; ``pressbot poll`` runs one pass and the
scheduler runs the same code for the feeds that are due. Each feed's items are
stored, flagged and given their alerts in one transaction of their own, so one
feed's failure loses nothing of the others'.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from bot import deliver, fetch, flag, fulltext, parse, policy, scheduler, summarize
from bot.config import Settings
from bot.errors import ParseError, UnwritableError
from bot.http import HostLimiter, client_for
from bot.records import (
    ArticleText,
    FeedReport,
    FeedToFetch,
    FetchResult,
    ParsedFeed,
    ParsedItem,
    PassSummary,
    ReportStatus,
    StoredFeed,
    StoredItem,
)
from bot.store import feeds as feed_store
from bot.store import items as item_store
from bot.store import schedule as schedule_store
from bot.tables import utcnow

log = logging.getLogger(__name__)

# Below this many bodies, starting worker processes costs more than it saves.
_PARALLEL_PARSE_MIN = 8


@dataclass(frozen=True, slots=True)
class Lede:
    """An item's language and summary, and the text they were worked out from."""

    basis: str  # digest of the title, text and declared language
    language: str | None
    summary: str | None


@dataclass(frozen=True, slots=True)
class FeedWork:
    """A fetched and parsed feed waiting to be stored."""

    result: FetchResult
    parsed: ParsedFeed | None
    error: str | None = None
    # Worked out beside the parse in a worker process, by item key: summaries and
    # language detection are most of a cold pass's CPU, and the main process has
    # one core. Used when the item's text is still what they were made from.
    ledes: Mapping[str, Lede] = field(default_factory=dict)


async def _fetch_all(
    settings: Settings, feeds: Sequence[FeedToFetch], on_result: Callable[[FetchResult], None] | None
) -> list[FetchResult]:
    async with client_for(settings.fetch_limits) as client:
        return await fetch.fetch_feeds(client, feeds, settings.fetch_limits, on_result)


def _basis(title: str, text: str, declared: str | None) -> str:
    return hashlib.blake2b(f"{title}\x00{text}\x00{declared or ''}".encode(), digest_size=16).hexdigest()


def make_lede(title: str, text: str, declared: str | None) -> Lede:
    language = fulltext.detect_language(f"{title}\n{text}", declared)
    summary = summarize.summarize(text, title=title, language=language) or None
    return Lede(_basis(title, text, declared), language, summary)


def _parse_one(result: FetchResult, with_ledes: bool = False) -> FeedWork:
    if result.error or result.body is None:
        return FeedWork(result, None, result.error)
    try:
        parsed = parse.parse_feed(
            result.body, url=result.final_url or result.url, content_type=result.content_type
        )
    except ParseError as exc:
        return FeedWork(result, None, str(exc))
    result = replace(result, body=None)  # parsed: not worth its memory, or its way back from a worker
    if not with_ledes:
        return FeedWork(result, parsed)
    ledes = {item.key: make_lede(item.title, item.content or item.teaser, item.language) for item in parsed.items}
    return FeedWork(result, parsed, ledes=ledes)


def parse_all(results: Sequence[FetchResult], workers: int) -> list[FeedWork]:
    """Parse every body; in worker processes when there are enough (parsing is the CPU cost)."""
    bodies = sum(1 for result in results if result.body is not None)
    if workers <= 0:
        workers = max(1, (os.cpu_count() or 1))
    if bodies < _PARALLEL_PARSE_MIN or workers == 1:
        return [_parse_one(result) for result in results]
    with ProcessPoolExecutor(max_workers=workers) as pool:
        # Ledes for every item, stored or not: the workers' cores would idle otherwise.
        return list(pool.map(partial(_parse_one, with_ledes=True), results, chunksize=4))


def _wanting_full_text(session: Session, feed: StoredFeed, work: FeedWork, settings: Settings) -> list[ParsedItem]:
    """New or changed items that need their page fetched, plus earlier failures to retry."""
    assert work.parsed is not None
    config = settings.fulltext
    known = item_store.existing_hashes(session, feed.feed_id, (item.key for item in work.parsed.items))
    retry = item_store.keys_wanting_full_text(session, feed.feed_id, config.max_attempts)
    wanted = []
    for item in work.parsed.items:
        fresh = known.get(item.key) != item_store.item_hash(item)
        if (fresh or item.key in retry) and fulltext.needs_full_text(
            item, feed_full_text=feed.full_text, teaser_chars=config.teaser_chars
        ):
            wanted.append(item)
    return wanted


def flag_and_summarize(
    session: Session,
    feed: StoredFeed,
    new: Sequence[StoredItem],
    updated: Sequence[StoredItem],
    settings: Settings,
    *,
    first_pass: bool,
    now: datetime,
    ledes: Mapping[str, Lede] | None = None,
) -> tuple[int, int, int]:
    """Flag, summarise and queue alerts for the items just stored (``new``) or changed
    (``updated``); returns (flagged, alerts, held)."""
    flagged = alerts = held = 0
    for item, is_new in [*((item, True) for item in new), *((item, False) for item in updated)]:
        text = item.full_text or item.content or item.teaser
        lede = (ledes or {}).get(item.key)
        if lede is None or lede.basis != _basis(item.title, text, item.language):
            lede = make_lede(item.title, text, item.language)
        item_store.set_summary(session, item.item_id, lede.summary, lede.language)
        matches = flag.match_flags(
            settings.flag_rules,
            title=item.title,
            teaser=item.teaser,
            content=item.content,
            full_text=item.full_text,
        )
        decisions = policy.decide_alerts(
            item,
            {match.flag for match in matches},
            feed,
            settings.alert_policy,
            now=now,
            first_pass=first_pass,
            check_pruned=is_new,
        )
        created = item_store.record_flags(session, item, matches, decisions, now=now)
        flagged += bool(matches)
        alerts += sum(not decision.held for decision in created)
        held += sum(decision.held for decision in created)
    return flagged, alerts, held


def store_feed(
    session_factory: sessionmaker[Session],
    work: FeedWork,
    articles: dict[str, ArticleText],
    settings: Settings,
    now: datetime,
) -> FeedReport:
    """Store one feed's outcome in its own transaction."""
    result = work.result
    with session_factory.begin() as session:
        feed = feed_store.stored_feed(session, result.feed_id)
        if work.error is not None:
            feed_store.record_failure(session, feed.feed_id, work.error, result.status, now)
            return FeedReport(name=feed.name, status=ReportStatus.FAILED, error=work.error)
        if work.parsed is None:
            feed_store.record_success(session, result, None, now)
            return FeedReport(name=feed.name, status=ReportStatus.NOT_MODIFIED)
        upserted = item_store.upsert_items(session, feed, work.parsed.items, articles, now)
        flagged, _alerts, held = flag_and_summarize(
            session,
            feed,
            upserted.new,
            upserted.updated,
            settings,
            first_pass=feed.first_pass,
            now=now,
            ledes=work.ledes,
        )
        feed_store.record_success(session, result, work.parsed, now)
        return FeedReport(
            name=feed.name,
            status=ReportStatus.OK,
            new_items=len(upserted.new),
            updated_items=len(upserted.updated),
            flagged=flagged,
            held=held,
        )


def _store_or_record_failure(
    session_factory: sessionmaker[Session],
    work: FeedWork,
    articles: dict[str, ArticleText],
    settings: Settings,
    now: datetime,
) -> FeedReport:
    """``store_feed``; a feed whose data the database refuses is a failed feed, not a failed pass."""
    try:
        return store_feed(session_factory, work, articles, settings, now)
    except UnwritableError:
        raise  # the whole database refuses, not this feed's data: reported once, by the caller
    except Exception as exc:  # its transaction is rolled back; the other feeds' are their own
        log.exception("feed %d: storing its items failed", work.result.feed_id)
        error = f"storing failed: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
        return store_feed(session_factory, replace(work, parsed=None, error=error), {}, settings, now)


def _summarize_pass(summary: PassSummary, report: FeedReport) -> None:
    summary.reports.append(report)
    if report.status == ReportStatus.FAILED:
        summary.failed += 1
    elif report.status == ReportStatus.NOT_MODIFIED:
        summary.not_modified += 1
    else:
        summary.fetched += 1
    summary.new_items += report.new_items
    summary.updated_items += report.updated_items
    summary.flagged += report.flagged
    summary.alerts_held_back += report.held


def run_pass(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    dry_run: bool = False,
    feed_ids: Sequence[int] | None = None,
    on_fetched: Callable[[FetchResult], None] | None = None,
    echo: Callable[[str], None] = print,
    worker: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> PassSummary:
    """One pass over the enabled feeds (or ``feed_ids``), then alert delivery.

    Feeds are claimed first (bot.scheduler), so a one-off poll skips what a running
    worker holds; ``worker`` names the claimer and must be unique per process.
    """
    worker = worker or scheduler.make_worker_id("poll")
    summary = PassSummary(started_at=clock())
    with session_factory.begin() as session:
        claim = scheduler.claim_for_pass(session, settings, worker=worker, now=summary.started_at, feed_ids=feed_ids)
        feeds = feed_store.feeds_to_fetch(session, claim.feed_ids)
    summary.feeds = len(feeds)
    results = asyncio.run(_fetch_all(settings, feeds, on_fetched))
    works = parse_all(results, settings.poll.parse_workers)
    articles = _gather_articles(session_factory, works, settings)
    now = clock()
    for work in works:
        report = _store_or_record_failure(session_factory, work, articles.get(work.result.feed_id, {}), settings, now)
        _summarize_pass(summary, report)
        scheduler.reschedule(session_factory, work.result, work.parsed, settings, now=now, worker=worker,
                             was_failing=work.result.feed_id in claim.failing)
    stats = deliver.deliver_alerts(session_factory, settings, now=clock(), dry_run=dry_run, echo=echo, worker=worker)
    if not dry_run:
        scheduler.send_health_notices(settings, session_factory, now=clock(), echo=echo)
    summary.alerts_sent, summary.alerts_pending, summary.alerts_failed = (
        stats.sent,
        stats.pending,
        stats.failed,
    )
    summary.finished_at = clock()
    with session_factory.begin() as session:
        schedule_store.record_pass(
            session,
            started_at=summary.started_at,
            finished_at=summary.finished_at,
            worker=worker,
            summary=summary_json(summary),
        )
    return summary


def _gather_articles(
    session_factory: sessionmaker[Session], works: Sequence[FeedWork], settings: Settings
) -> dict[int, dict[str, ArticleText]]:
    if not settings.fulltext.enabled:
        return {}
    wanted: dict[int, list[ParsedItem]] = {}
    with session_factory() as session:
        feeds = feed_store.stored_feeds(session, [work.result.feed_id for work in works if work.parsed is not None])
        for work in works:
            if work.parsed is not None:
                feed = feeds[work.result.feed_id]
                wanted[feed.feed_id] = _wanting_full_text(session, feed, work, settings)
    wanted = {feed_id: items for feed_id, items in wanted.items() if items}
    return asyncio.run(_fetch_articles(settings, wanted)) if wanted else {}


async def _fetch_articles(
    settings: Settings, wanted: dict[int, list[ParsedItem]]
) -> dict[int, dict[str, ArticleText]]:
    """Release pages for every feed at once; keys are unique per feed, so results stay per feed."""
    config = settings.fulltext
    host_limiter = HostLimiter(settings.poll.per_host)
    # One gate for all feeds: a page's deadline starts when it gets through, not while
    # it waits behind other feeds' pages.
    gate = asyncio.Semaphore(config.concurrency)
    async with client_for(settings.fetch_limits) as client:
        results = await asyncio.gather(
            *(
                fulltext.fetch_articles(
                    client,
                    items,
                    max_bytes=config.max_bytes,
                    allow_private=settings.allow_private_networks,
                    concurrency=config.concurrency,
                    host_limiter=host_limiter,
                    max_redirects=settings.fetch_limits.max_redirects,
                    deadline_seconds=settings.fetch_limits.deadline_seconds,
                    gate=gate,
                )
                for items in wanted.values()
            )
        )
    return dict(zip(wanted, results, strict=True))


def summary_json(summary: PassSummary) -> dict[str, Any]:
    """The `pressbot poll --json` object (DESIGN.md fields first)."""
    data = asdict(summary)
    data["started_at"] = summary.started_at.isoformat()
    data["finished_at"] = summary.finished_at.isoformat() if summary.finished_at else None
    data["feeds_report"] = data.pop("reports")
    return data
