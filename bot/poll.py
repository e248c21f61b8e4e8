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
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, fields, replace
from datetime import datetime, timedelta
from typing import Any, Protocol

import httpx
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot import deliver, fetch, flag, group, pages, policy, prepare, update
from bot.config import Settings
from bot.errors import UnwritableError
from bot.http import HostLimiter, client_for
from bot.prepare import FeedWork, Lede, ParseListing
from bot.records import (
    ArticleText,
    FailureKind,
    FeedOutcome,
    FeedReport,
    FeedToFetch,
    FetchResult,
    FlagMatch,
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
WHITESPACE = re.compile(r"\s+")


class FetchArticles(Protocol):
    """``bot.fulltext.fetch_articles``: one feed's release pages, keyed by item key."""

    async def __call__(
        self,
        client: httpx.AsyncClient,
        items: Sequence[ParsedItem],
        *,
        max_bytes: int,
        allow_private: bool,
        concurrency: int,
        host_limiter: HostLimiter | None = None,
        max_redirects: int = 5,
        deadline_seconds: float = 60.0,
        gate: asyncio.Semaphore | None = None,
        metadata: bool = False,
        on_fetched: Callable[[], None] | None = None,
    ) -> dict[str, ArticleText]: ...


@dataclass(frozen=True, slots=True)
class PageStages:
    """The stages only some passes need: reading a changed listing, and a release's page.

    Their libraries (htmldate, trafilatura) cost +128 ms and 6 MB, more than a warm
    pass's own work, so ``run_pass`` is given a loader by its entry point
    (``bot.cli.stages.load_page_stages``) and calls it only when a listing or a page is
    to be read.
    """

    parse_listing: ParseListing  # bot.listing.releases.parse_listing
    fetch_articles: FetchArticles  # bot.fulltext.fetch_articles


LoadPageStages = Callable[[], PageStages]


def run_pass(
    settings: Settings,
    session_factory: sessionmaker[Session],
    claim: PassClaim,
    *,
    page_stages: LoadPageStages,
    slack: WebClient | None = None,
    dry_run: bool = False,
    on_fetched: Callable[[FetchResult], None] | None = None,
    on_pages: Callable[[int, int], None] | None = None,
    echo: Callable[[str], None] = print,
    clock: Callable[[], datetime] = utcnow,
) -> PassResult:
    """One pass over the claimed feeds, then alert delivery (``slack``: the pass's one WebClient).

    ``page_stages``: called when a listing or a release page is to be read (``PageStages``);
    ``on_fetched``: called as each feed is fetched; ``on_pages(done, total)``: called when
    the release-page phase starts (``done`` 0) and as each of its pages is fetched.
    """
    summary = PassSummary(started_at=clock())
    feeds = pages.with_listing_rules(claimed_feeds(session_factory, claim), settings.feeds)
    summary.feeds = len(feeds)
    works, articles, summary.interrupted = asyncio.run(
        fetch_parse_complete(settings, session_factory, feeds, page_stages, on_fetched, on_pages)
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
    page_stages: LoadPageStages,
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
        parse_listing = page_stages().parse_listing if prepare.needs_listing_parser(results) else None
        works = prepare.parse_all(
            results, settings.poll.parse_workers, settings.poll.max_entries, now=utcnow(), parse_listing=parse_listing
        )
        del results  # the bodies: parsed, they are not worth their memory
        if interrupted:
            return works, {}, True
        loop.set_default_executor(ThreadPoolExecutor(thread_name_prefix="pass-dns"))
        wanted = wanting_full_text(session_factory, works, settings) if settings.fulltext.enabled else {}
        # Page sources' release pages, whatever fulltext.enabled says: they are their text.
        listed = wanting_release_pages(session_factory, works, settings)
        on_page = _page_counter(on_pages, wanted, listed)
        try:
            articles = await read_release_pages(client, settings, wanted, listed, page_stages, on_page)
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
        and needs_full_text(item, feed_full_text=feed.full_text, teaser_chars=config.teaser_chars)
    ]


def needs_full_text(item: ParsedItem, *, feed_full_text: bool, teaser_chars: int) -> bool:
    """Whether the item's page should be fetched.

    Yes when the feed is configured ``full_text = true``, or when the feed's content is
    empty or shorter than ``teaser_chars`` characters of text (a teaser; 0 turns
    this rule off). Never without a link.
    """
    if not item.url:
        return False
    if feed_full_text:
        return True
    return len(WHITESPACE.sub(" ", item.content).strip()) < teaser_chars


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


async def read_release_pages(
    client: httpx.AsyncClient,
    settings: Settings,
    wanted: Mapping[int, list[ParsedItem]],
    listed: Mapping[int, list[ParsedItem]],
    page_stages: LoadPageStages,
    on_fetched: Callable[[], None] | None,
) -> Articles:
    """The pages of feeds' items wanting full text, then of page sources' releases (with
    what they say of themselves); the full-text stage is loaded only if there is one."""
    if not wanted and not listed:
        return {}
    read_pages = page_stages().fetch_articles
    articles = await fetch_articles(client, settings, wanted, read_pages, on_fetched=on_fetched) if wanted else {}
    if listed:
        articles.update(
            await fetch_articles(client, settings, listed, read_pages, metadata=True, on_fetched=on_fetched)
        )
    return articles


async def fetch_articles(
    client: httpx.AsyncClient,
    settings: Settings,
    wanted: Mapping[int, list[ParsedItem]],
    read_pages: FetchArticles,
    *,
    metadata: bool = False,
    on_fetched: Callable[[], None] | None = None,
) -> Articles:
    """Release pages for every feed at once; keys are unique per feed, so results stay per feed.

    ``read_pages``: the full-text stage (``PageStages.fetch_articles``). ``metadata``: a
    listing's releases, whose pages also give their identity, title and date.
    """
    config, limits = settings.fulltext, settings.fetch_limits
    host_limiter = HostLimiter(limits.per_host)
    # One gate for all feeds: a page's deadline starts when it gets through, not while
    # it waits behind other feeds' pages.
    gate = asyncio.Semaphore(config.concurrency)
    results = await asyncio.gather(
        *(
            read_pages(
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
        judged: dict[str, Judged] = {}
        first_write = _judge_new(session, settings, work.ledes, judged)
        upserted = item_store.upsert_items(session, feed, work.parsed.items, articles, now, first_write=first_write)
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
                session, feed, item, settings, report, is_new=is_new, now=now, ledes=work.ledes, previous=previous,
                judged=judged.get(item.key) if is_new else None,
            )  # fmt: skip
        change_store.queue_edits_of(session, joined, now)  # a copy of an alert already in Slack edits that message
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
    change_store.queue_edits_of(session, joined, now)  # a copy of an alert already in Slack edits that message
    feed_store.record_success(session, result, work.parsed, now)
    return report


def group_copies(
    session: Session,
    upserted: item_store.UpsertResult,
    settings: Settings,
    now: datetime,
    band_keys: Mapping[str, tuple[bytes, Sequence[int]]] | None = None,
) -> list[int]:
    """Each new release put in its copies' group, a changed one's band keys made anew (and, in no group
    yet, looked up as a new one); the ids that joined one.

    Feeds' and page sources' releases alike (issue 18); the caller took the grouping lock.
    """
    if settings.alerts.group_window <= timedelta(0):
        return []
    return group_store.group_new_items(
        session, upserted.new, window=settings.alerts.group_window, similarity=settings.alerts.group_similarity,
        now=now, band_keys=band_keys, changed=upserted.updated,
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class Judged:
    """What an item's text decides: its flag matches, and the language and summary it gets now."""

    matches: list[FlagMatch]
    language: str | None
    summary: str | None


def judge(
    session: Session, item: StoredItem, settings: Settings, ledes: Mapping[str, Lede], *, is_new: bool
) -> Judged:
    matches = flag.match_flags(
        settings.flag_rules, title=item.title, teaser=item.teaser, content=item.content, full_text=item.full_text
    )
    language, summary = language_and_summary(session, item, ledes, flagged=bool(matches), is_new=is_new)
    return Judged(matches, language, summary)


def _judge_new(
    session: Session, settings: Settings, ledes: Mapping[str, Lede], judged: dict[str, Judged]
) -> Callable[[StoredItem], item_store.FirstWrite]:
    """Each new item judged before its INSERT, which then carries its language, summary and
    flags (``item_store.FirstWrite``); ``judged`` keeps the verdicts for ``flag_and_alert``."""

    def first_write(item: StoredItem) -> item_store.FirstWrite:
        verdict = judged[item.key] = judge(session, item, settings, ledes, is_new=True)
        flags = tuple(sorted({match.flag for match in verdict.matches}))
        return item_store.FirstWrite(verdict.language, verdict.summary, flags)

    return first_write


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
    judged: Judged | None = None,
) -> None:
    """Flag an item just stored or changed, give it its language (and its summary when
    Slack shows it), and queue the alerts the policy decides.

    ``previous``: the title and texts it had before this change. A copy's new flag
    widens its group's alert; a material change of a flagged release (the head of its
    group) is a reply in the thread of the alert already posted. ``judged``: its matches,
    language and summary, worked out before the INSERT that wrote them (``_judge_new``).
    """
    if judged is None:
        judged = judge(session, item, settings, ledes, is_new=is_new)
    matches = judged.matches
    item_store.set_summary(session, item.item_id, judged.summary, judged.language)
    decisions = policy.decide_alerts(
        item,
        {match.flag for match in matches},
        feed,
        settings.alert_policy,
        now=now,
        first_pass=feed.first_pass,
        check_pruned=is_new,  # only a release stored as new can be one prune deleted
    )
    created = item_store.record_flags(session, item, matches, decisions, now=now, new=is_new)
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


def language_and_summary(
    session: Session, item: StoredItem, ledes: Mapping[str, Lede], *, flagged: bool, is_new: bool
) -> tuple[str | None, str | None]:
    """The language and the summary to store for an item just stored or changed.

    Summaries were most of a cold pass's CPU (issue 16): one is made now for what Slack
    shows (a flagged release; one with an alert, whose message an edit rebuilds), else
    it waits (``SUMMARY_PENDING``) for its first reader (bot.summaries). A changed
    text's old summary goes either way. The language is cheap and ``query --lang``
    filters on it: always now.
    """
    language = prepare.language_for(item, ledes)
    shown = flagged or (not is_new and summary_store.has_alert(session, item.item_id))
    return language, (prepare.summary_for(item, language) or None) if shown else SUMMARY_PENDING


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
