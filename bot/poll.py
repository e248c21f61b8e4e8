"""One pass: claim → fetch → parse → full text → store → flag → alert policy → deliver.

The scheduler (bot.scheduler) sits above: it claims the feeds, hands them to
``run_pass`` and decides each feed's next check from what the pass returns;
``pressbot poll`` and ``pressbot run`` share that code. This module alone calls
several stages, and each step takes and returns records. The network half (the
feeds, then the release pages) runs in one event loop with one httpx client; then
each feed's items are stored, flagged and given their alerts in one transaction of
their own, so one feed's failure loses nothing of the others'.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, fields, replace
from datetime import datetime, timedelta
from typing import Any

import httpx
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot import deliver, fetch, flag, fulltext, group, pages, policy, prepare, update
from bot.config import Settings
from bot.errors import UnwritableError
from bot.http import HostLimiter, client_for
from bot.prepare import FeedWork, Lede
from bot.records import (
    ArticleText,
    FailureKind,
    FeedOutcome,
    FeedReport,
    FeedToFetch,
    FetchResult,
    ParsedItem,
    PassClaim,
    PassCounts,
    PassResult,
    PassSummary,
    ReportStatus,
    StoredFeed,
    StoredItem,
)
from bot.store import changes as change_store
from bot.store import feeds as feed_store
from bot.store import groups as group_store
from bot.store import items as item_store
from bot.store import summaries as summary_store
from bot.tables import SUMMARY_PENDING, utcnow

log = logging.getLogger(__name__)

Articles = dict[int, dict[str, ArticleText]]  # feed id → item key → its page's text


def run_pass(
    settings: Settings,
    session_factory: sessionmaker[Session],
    claim: PassClaim,
    *,
    slack: WebClient | None = None,
    dry_run: bool = False,
    on_fetched: Callable[[FetchResult], None] | None = None,
    on_pages: Callable[[int, int], None] | None = None,
    echo: Callable[[str], None] = print,
    clock: Callable[[], datetime] = utcnow,
) -> PassResult:
    """One pass over the claimed feeds, then alert delivery (``slack``: the pass's one WebClient).

    ``on_fetched``: called as each feed is fetched; ``on_pages(done, total)``: called when
    the release-page phase starts (``done`` 0) and as each of its pages is fetched.
    """
    summary = PassSummary(started_at=clock())
    feeds = pages.with_listing_rules(claimed_feeds(session_factory, claim), settings.feeds)
    summary.feeds = len(feeds)
    works, articles, summary.interrupted = asyncio.run(
        fetch_parse_complete(settings, session_factory, feeds, on_fetched, on_pages)
    )
    now = clock()
    not_modified = store_not_modified(session_factory, works, now)
    stored: list[FeedWork] = []
    try:
        for work in works:
            report = not_modified.get(work.result.feed_id)
            if report is None:
                report = store_and_flag(session_factory, work, articles.get(work.result.feed_id, {}), settings, now)
            count_feed(summary, report)
            stored.append(work)
    except KeyboardInterrupt:
        # Ctrl-C while storing: the feeds stored so far are committed, each in its own
        # transaction; the one being stored was rolled back and goes back unclaimed.
        summary.interrupted = True
    if summary.interrupted:
        # Exit promptly: alerts stay pending for the next pass, nothing is posted twice.
        return PassResult(summary, _outcomes(stored), stored_at=now)
    stats = deliver.deliver_alerts(
        session_factory, settings, now=clock(), dry_run=dry_run, echo=echo, worker=claim.worker, client=slack
    )
    summary.count_delivery(stats)
    return PassResult(summary, _outcomes(works), stored_at=now)


def _outcomes(works: Sequence[FeedWork]) -> tuple[FeedOutcome, ...]:
    return tuple(FeedOutcome(work.result, work.parsed.ttl_seconds if work.parsed else None) for work in works)


# -- claim --------------------------------------------------------------------------------


def claimed_feeds(session_factory: sessionmaker[Session], claim: PassClaim) -> list[FeedToFetch]:
    with session_factory() as session:
        return feed_store.feeds_to_fetch(session, claim.feed_ids)


# -- fetch → parse → full text: one event loop, one client ---------------------------------


async def fetch_parse_complete(
    settings: Settings,
    session_factory: sessionmaker[Session],
    feeds: Sequence[FeedToFetch],
    on_fetched: Callable[[FetchResult], None] | None,
    on_pages: Callable[[int, int], None] | None = None,
) -> tuple[list[FeedWork], Articles, bool]:
    """The feeds fetched and parsed, the release pages their new items need, and whether
    the pass was interrupted.

    Interrupted (Ctrl-C or SIGTERM: ``asyncio.run`` cancels this task), the feeds fetched
    before it are kept, to be stored, and the others left for the next pass; an
    interrupted poll threw away all it had fetched (issue 14).
    """
    limits = settings.fetch_limits
    loop = asyncio.get_running_loop()
    resolver = ThreadPoolExecutor(thread_name_prefix="pass-dns")  # getaddrinfo runs in the loop's pool
    loop.set_default_executor(resolver)
    fetched: list[FetchResult] = []

    def on_result(result: FetchResult) -> None:
        fetched.append(result)
        if on_fetched is not None:
            on_fetched(result)

    async with client_for(limits) as client:
        interrupted = False
        try:
            results = await fetch.fetch_feeds(client, feeds, limits, on_result)
        except asyncio.CancelledError:
            results, interrupted = list(fetched), True
        fetched.clear()
        # Parse workers fork, and a fork copies every lock a thread holds: the resolver's
        # threads are joined first, and a fresh pool serves the release pages.
        resolver.shutdown(wait=True)
        works = prepare.parse_all(results, settings.poll.parse_workers, settings.poll.max_entries, now=utcnow())
        del results  # the bodies: parsed, they are not worth their memory
        if interrupted:
            return works, {}, True
        loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="pass-dns"))
        wanted = wanting_full_text(session_factory, works, settings) if settings.fulltext.enabled else {}
        # Page sources' release pages, whatever fulltext.enabled says: they are their text.
        listed = wanting_release_pages(session_factory, works, settings)
        on_page = _page_counter(on_pages, wanted, listed)
        try:
            articles = await fetch_articles(client, settings, wanted, on_fetched=on_page) if wanted else {}
            if listed:
                articles.update(await fetch_articles(client, settings, listed, metadata=True, on_fetched=on_page))
        except asyncio.CancelledError:
            # Stored without the pages they wait for, their items would never get them:
            # those feeds wait for the next pass, the others are stored.
            waiting = wanted.keys() | listed.keys()
            return [work for work in works if work.result.feed_id not in waiting], {}, True
    return works, articles, False


def _page_counter(
    on_pages: Callable[[int, int], None] | None, *wanted: Mapping[int, list[ParsedItem]]
) -> Callable[[], None] | None:
    """A per-page callback that reports ``on_pages(done, total)``; it reports ``(0, total)`` now."""
    if on_pages is None:
        return None
    total = sum(1 for items in wanted for feed_items in items.values() for item in feed_items if item.url)
    if not total:
        return None
    done = 0
    on_pages(done, total)

    def on_page() -> None:
        nonlocal done
        done += 1
        on_pages(done, total)

    return on_page


def wanting_full_text(
    session_factory: sessionmaker[Session], works: Sequence[FeedWork], settings: Settings
) -> dict[int, list[ParsedItem]]:
    """Per feed, the new or changed items whose page must be fetched, and earlier failures to retry."""
    parsed = [work for work in works if work.parsed is not None and work.result.listing is None]
    with session_factory() as session:
        feeds = feed_store.stored_feeds(session, [work.result.feed_id for work in parsed])
        wanted = {work.result.feed_id: _wanting(session, feeds[work.result.feed_id], work, settings) for work in parsed}
    return {feed_id: items for feed_id, items in wanted.items() if items}


def _wanting(session: Session, feed: StoredFeed, work: FeedWork, settings: Settings) -> list[ParsedItem]:
    assert work.parsed is not None
    config = settings.fulltext
    known = item_store.existing_hashes(session, feed.feed_id, (item.key for item in work.parsed.items))
    retry = item_store.keys_wanting_full_text(session, feed.feed_id, config.max_attempts)
    return [
        item
        for item in work.parsed.items
        if (known.get(item.key) != item_store.item_hash(item) or item.key in retry)
        and fulltext.needs_full_text(item, feed_full_text=feed.full_text, teaser_chars=config.teaser_chars)
    ]


def wanting_release_pages(
    session_factory: sessionmaker[Session], works: Sequence[FeedWork], settings: Settings
) -> dict[int, list[ParsedItem]]:
    """Per page source, the release pages this pass reads (bot.pages: new links, then owed pages)."""
    max_attempts = settings.fulltext.max_attempts
    with session_factory() as session:
        wanted = {
            work.result.feed_id: pages.pages_to_fetch(session, work.result.feed_id, work.parsed, rule, max_attempts)
            for work in works
            if (rule := work.result.listing) is not None and work.error is None
        }
    return {feed_id: items for feed_id, items in wanted.items() if items}


async def fetch_articles(
    client: httpx.AsyncClient,
    settings: Settings,
    wanted: Mapping[int, list[ParsedItem]],
    *,
    metadata: bool = False,
    on_fetched: Callable[[], None] | None = None,
) -> Articles:
    """Release pages for every feed at once; keys are unique per feed, so results stay per feed.

    ``metadata``: a listing's releases, whose pages also give their identity, title and date.
    """
    config, limits = settings.fulltext, settings.fetch_limits
    host_limiter = HostLimiter(limits.per_host)
    # One gate for all feeds: a page's deadline starts when it gets through, not while
    # it waits behind other feeds' pages.
    gate = asyncio.Semaphore(config.concurrency)
    results = await asyncio.gather(
        *(
            fulltext.fetch_articles(
                client,
                items,
                max_bytes=config.max_bytes,
                allow_private=limits.allow_private,
                concurrency=config.concurrency,
                host_limiter=host_limiter,
                max_redirects=limits.max_redirects,
                deadline_seconds=limits.deadline_seconds,
                gate=gate,
                metadata=metadata,
                on_fetched=on_fetched,
            )
            for items in wanted.values()
        )
    )
    return dict(zip(wanted, results, strict=True))


# -- store → flag → alert policy: one transaction per feed ---------------------------------


def store_not_modified(
    session_factory: sessionmaker[Session], works: Sequence[FeedWork], now: datetime
) -> dict[int, FeedReport]:
    """The feeds that answered 304 (most of a steady pass), recorded in one transaction.

    Each alone was a transaction of its own, 300 commits a pass; if the batch fails, the
    caller stores them one by one, as any other feed (an empty answer).
    """
    plain = [work for work in works if work.error is None and work.parsed is None and work.result.listing is None]
    if not plain:
        return {}
    try:
        with session_factory.begin() as session:
            names = feed_store.record_not_modified(session, [work.result for work in plain], now)
    except UnwritableError:
        raise
    except Exception:
        log.exception("recording %d unchanged feeds together failed; each is stored alone", len(plain))
        return {}
    return {
        work.result.feed_id: FeedReport(name=names[work.result.feed_id], status=ReportStatus.NOT_MODIFIED)
        for work in plain
    }


def store_and_flag(
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
        failed = replace(work, parsed=None, error=error, error_kind=FailureKind.STORE)
        return store_feed(session_factory, failed, {}, settings, now)


def store_feed(
    session_factory: sessionmaker[Session],
    work: FeedWork,
    articles: dict[str, ArticleText],
    settings: Settings,
    now: datetime,
) -> FeedReport:
    """Store one feed's outcome in its own transaction: its items, their flags and alerts."""
    result = work.result
    with session_factory.begin() as session:
        feed = feed_store.stored_feed(session, result.feed_id)
        if work.error is not None:
            feed_store.record_failure(session, feed.feed_id, work.error, result.status, now)
            return FeedReport(name=feed.name, status=ReportStatus.FAILED, error=work.error)
        if result.listing is None and work.parsed is None:
            feed_store.record_success(session, result, None, now)
            return FeedReport(name=feed.name, status=ReportStatus.NOT_MODIFIED)
        if settings.alerts.group_window > timedelta(0):
            group_store.lock_for_grouping(session)
        if result.listing is not None:
            return store_page_source(session, feed, work, articles, settings, now)
        assert work.parsed is not None
        upserted = item_store.upsert_items(session, feed, work.parsed.items, articles, now)
        joined = group_copies(session, upserted, settings, now, work.band_keys)
        stored = [*((item, True) for item in upserted.new), *((item, False) for item in upserted.updated)]
        report = FeedReport(
            name=feed.name,
            status=ReportStatus.OK,
            new_items=len(upserted.new),
            updated_items=len(upserted.updated),
            note=work.parsed.note,
        )
        for item, is_new in stored:
            previous = upserted.previous.get(item.item_id)
            flag_and_alert(
                session, feed, item, settings, report, is_new=is_new, now=now, ledes=work.ledes, previous=previous
            )
        for item_id in joined:  # a copy of an alert already in Slack edits that message
            change_store.queue_edits(session, item_id, now)
        feed_store.record_success(session, result, work.parsed, now)
        if work.parsed.note:
            log.warning("feed %s: %s", feed.name, work.parsed.note)
        return report


def store_page_source(
    session: Session,
    feed: StoredFeed,
    work: FeedWork,
    articles: dict[str, ArticleText],
    settings: Settings,
    now: datetime,
) -> FeedReport:
    """A listing's new releases and the owed pages read this pass (an unchanged listing may
    still have pages owed), flagged and alerted like a feed's items."""
    result = work.result
    upserted = pages.store_page_source(session, feed, result.final_url or result.url, work.parsed, articles, now)
    joined = group_copies(session, upserted, settings, now, work.band_keys)
    report = FeedReport(
        name=feed.name,
        status=ReportStatus.OK if work.parsed is not None else ReportStatus.NOT_MODIFIED,
        new_items=len(upserted.new),
        updated_items=len(upserted.updated),
    )
    backlog = pages.seen_on_first_pass(upserted.updated, feed.first_polled_at)
    for item, is_new in [*((item, True) for item in upserted.new), *((item, False) for item in upserted.updated)]:
        # A release the first pass stored from the listing alone is judged as on that pass.
        judged_as = replace(feed, first_pass=True) if item in backlog else feed
        flag_and_alert(session, judged_as, item, settings, report, is_new=is_new, now=now, ledes=work.ledes)
    for item_id in joined:  # a copy of an alert already in Slack edits that message
        change_store.queue_edits(session, item_id, now)
    feed_store.record_success(session, result, work.parsed, now)
    return report


def group_copies(
    session: Session,
    upserted: item_store.UpsertResult,
    settings: Settings,
    now: datetime,
    band_keys: Mapping[str, tuple[bytes, Sequence[int]]] | None = None,
) -> list[int]:
    """Each new release put in its copies' group, a changed one's band keys made anew; the ids that joined one.

    Feeds' and page sources' releases alike (issue 18); the caller took the grouping lock.
    """
    if settings.alerts.group_window <= timedelta(0):
        return []
    # An edit's copies elsewhere have its new text: its keys must be those of that text.
    group_store.refresh_bands(session, upserted.updated)
    return group_store.group_new_items(
        session, upserted.new, window=settings.alerts.group_window, similarity=settings.alerts.group_similarity,
        now=now, band_keys=band_keys,
    )  # fmt: skip


def flag_and_alert(
    session: Session,
    feed: StoredFeed,
    item: StoredItem,
    settings: Settings,
    report: FeedReport,
    *,
    is_new: bool,
    now: datetime,
    ledes: Mapping[str, Lede],
    previous: tuple[str, str, str, str | None] | None = None,
) -> None:
    """Flag an item just stored or changed, give it its language (and its summary when
    Slack shows it), and queue the alerts the policy decides.

    ``previous``: the title and texts it had before this change. A copy's new flag
    widens its group's alert; a material change of a flagged release (the head of its
    group) is a reply in the thread of the alert already posted.
    """
    matches = flag.match_flags(
        settings.flag_rules, title=item.title, teaser=item.teaser, content=item.content, full_text=item.full_text
    )
    language = prepare.language_for(item, ledes)
    # Summaries were most of a cold pass's CPU (issue 16): made now for what Slack shows
    # (a flagged release; one with an alert, whose message an edit rebuilds), else made
    # on first read (bot.summaries). A changed text's old one goes either way.
    shown = bool(matches) or (not is_new and summary_store.has_alert(session, item.item_id))
    summary = (prepare.summary_for(item, language) or None) if shown else SUMMARY_PENDING
    item_store.set_summary(session, item.item_id, summary, language)
    decisions = policy.decide_alerts(
        item,
        {match.flag for match in matches},
        feed,
        settings.alert_policy,
        now=now,
        first_pass=feed.first_pass,
        check_pruned=is_new,  # only a release stored as new can be one prune deleted
    )
    created = item_store.record_flags(session, item, matches, decisions, now=now)
    group_id = item_store.group_of(session, item.item_id)
    if group_id is not None and change_store.widen_group_alerts(session, item.item_id, decisions) and not is_new:
        change_store.queue_edits(session, item.item_id, now)
    if previous is not None and matches and group_id in (None, item.item_id):
        old_title, old_teaser, old_content, old_full_text = previous
        text = update.describe_change(
            old_title,
            group.main_text(old_teaser, old_content, old_full_text),
            item.title,
            group.main_text(item.teaser, item.content, item.full_text),
            matches,
        )
        if text is not None:
            change_store.queue_reply(session, item.item_id, text, now)
    report.flagged += bool(matches)
    report.held += sum(decision.held for decision in created)


# -- the summary ----------------------------------------------------------------------------


def count_feed(summary: PassSummary, report: FeedReport) -> None:
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


def summary_json(summary: PassSummary) -> dict[str, Any]:
    """The `pressbot poll --json` object (DESIGN.md fields first): the times, every count, each feed's line."""
    return {
        "started_at": summary.started_at.isoformat(),
        "finished_at": summary.finished_at.isoformat() if summary.finished_at else None,
        **{count.name: getattr(summary, count.name) for count in fields(PassCounts)},
        "feeds_report": [asdict(report) for report in summary.reports],
    }
