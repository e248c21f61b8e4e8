"""When each feed is polled next, feed health notices, and the ``pressbot run`` worker.

The decisions are pure (``next_check``, ``decide``, ``health_notice_text``): given
``now`` and what the server said, they return intents, like lemon24/reader's
``Decider``. The glue below applies them to the store for ``bot.poll.run_pass``, which
``pressbot poll`` and the worker (``bot.scheduler.worker``, APScheduler 3.x) share. The
schedule lives in the database, so any number of workers share it.
"""

from __future__ import annotations

import logging
import os
import random
import secrets
import socket
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.config import MIN_INTERVAL, Settings
from bot.errors import ConfigError
from bot.records import FeedHealth, FeedStatus, FetchResult, HealthNotice, NoticeKind, ParsedFeed, SchedulePolicy
from bot.store import feeds as feed_store
from bot.store import schedule as schedule_store

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

WARN_INTERVAL = 60.0  # below this, public servers may take the polling for abuse
# A server may ask us to wait, within reason: a misconfigured Retry-After of a week
# must not silence a feed, and a CDN's day-long max-age on a news feed would delay
# every alert by a day.
RETRY_AFTER_MAX = 24 * 3600.0
CACHE_HINT_MAX = 6 * 3600.0


# --- Pure decisions -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Decision:
    """A feed's schedule after one poll."""

    status: FeedStatus  # never NEW: the feed was just polled
    next_check_at: datetime | None
    disabled_reason: str | None = None


def interval_warnings(settings: Settings) -> list[str]:
    """Intervals below a minute are allowed (tests, intranets) but worth a warning.

    Raises ConfigError for a default interval below the 5 s floor that feeds.toml
    entries already obey.
    """
    default = settings.schedule.default_interval
    floor = MIN_INTERVAL.total_seconds()
    if default < floor:
        raise ConfigError(f"{settings.config_path}: poll.interval: must be at least {floor:g}s")
    named = [(f"[poll] interval ({default:g}s)", default)]
    named += [(f'feed "{feed.name}" interval ({feed.interval_seconds}s)', float(feed.interval_seconds))
              for feed in settings.feeds if feed.interval_seconds is not None]
    return [f"{label} is below one minute: fine for tests, impolite to public servers"
            for label, seconds in named if seconds < WARN_INTERVAL]


def backoff_delay(interval: float, failures: int, backoff_max: float, rand: Callable[[], float]) -> float:
    """Doubling per failure from one interval up to ``backoff_max``, with "equal jitter".

    Jitter keeps feeds of one host that failed together (an outage) from being retried
    together; it never brings a retry below the feed's own interval.
    """
    ceiling = min(interval * 2.0 ** min(failures, 32), max(backoff_max, interval))
    return max(interval, ceiling / 2 + rand() * ceiling / 2)


def next_check(
    now: datetime,
    interval: float,
    *,
    retry_after: float | None = None,
    max_age: float | None = None,
    ttl: float | None = None,
    failures: int = 0,
    backoff_max: float = 6 * 3600.0,
    rand: Callable[[], float] = random.random,
) -> datetime:
    """When to poll again: never sooner than the interval, the backoff, or what the server asked."""
    delay = backoff_delay(interval, failures, backoff_max, rand) if failures else interval
    asked = min(retry_after or 0.0, RETRY_AFTER_MAX)
    cache_hint = min(max(max_age or 0.0, ttl or 0.0), CACHE_HINT_MAX)
    return now + timedelta(seconds=max(delay, asked, cache_hint))


def decide(
    now: datetime,
    health: FeedHealth,
    result: FetchResult,
    ttl: float | None,
    policy: SchedulePolicy,
    rand: Callable[[], float] = random.random,
) -> Decision:
    """The schedule after a poll whose outcome ``health`` already records."""
    if result.gone:
        # RFC 9110 §15.5.11: 410 is permanent; polling on would only hammer the server.
        return Decision(FeedStatus.DISABLED, None, "HTTP 410 Gone: the publisher removed this feed")
    failures = health.consecutive_failures
    if failures and health.failing_since and (now - health.failing_since).total_seconds() >= policy.disable_after:
        since = f"{health.failing_since:%Y-%m-%d %H:%M} UTC"
        return Decision(FeedStatus.DISABLED, None, f"failing since {since}: {health.last_error}")
    when = next_check(
        now,
        float(health.interval_seconds or policy.default_interval),
        retry_after=result.retry_after_seconds,
        # Cache hints of an error page say nothing about the feed.
        max_age=None if failures else result.max_age_seconds,
        ttl=None if failures else ttl,
        failures=failures,
        backoff_max=policy.backoff_max,
        rand=rand,
    )
    return Decision(FeedStatus.FAILING if failures else FeedStatus.OK, when)


def _span(seconds: float) -> str:
    hours = seconds / 3600
    if hours >= 48:
        return f"{hours / 24:.1f} days"
    return f"{hours:.0f} hours" if hours >= 2 else f"{seconds / 60:.0f} minutes"


def health_notice_text(notice: HealthNotice, now: datetime) -> str:
    """The operations-channel message for one notice (plain text; deliver escapes it)."""
    if notice.kind == NoticeKind.RECOVERED:
        return f"✅ pressbot: feed “{notice.name}” has recovered and is polled normally again."
    if notice.kind == NoticeKind.DISABLED:
        return (f"⛔ pressbot: feed “{notice.name}” is disabled and no longer polled: {notice.error}. "
                "Fix or remove it in the feed list; `pressbot status` shows every feed's health.")
    since = notice.failing_since or now
    return (f"⚠️ pressbot: feed “{notice.name}” has failed for {_span((now - since).total_seconds())} "
            f"(since {since:%Y-%m-%d %H:%M} UTC): {notice.error}. pressbot keeps retrying with backoff "
            "and will say when it recovers.")


# --- Glue between a pass and the store ------------------------------------------------


@dataclass(frozen=True, slots=True)
class PassClaim:
    feed_ids: list[int]
    failing: set[int]  # feeds failing before this pass: to log status changes


def make_worker_id(prefix: str | None = None) -> str:
    """host:pid:random — unique per process, and readable in ``pressbot status``."""
    parts = [prefix] if prefix else []
    parts += [socket.gethostname()[:60], str(os.getpid()), secrets.token_hex(3)]
    return ":".join(parts)[:100]


def claim_for_pass(
    session: Session, settings: Settings, *, worker: str, now: datetime, feed_ids: Collection[int] | None
) -> PassClaim:
    """Claim the pass's feeds; with no ``feed_ids`` (``pressbot poll``), sync the config and take all."""
    lease = settings.schedule.lease
    if feed_ids is None:
        schedule_store.lock_feed_list(session)
        feed_store.sync_feeds(session, settings.feeds)
    claimed = schedule_store.claim_feeds(session, worker=worker, now=now, lease_seconds=lease, feed_ids=feed_ids)
    if feed_ids is None:
        skipped = schedule_store.enabled_count(session) - len(claimed)
        if skipped:
            log.warning("%d feeds skipped: another worker is polling them", skipped)
    return PassClaim(claimed, schedule_store.failing_feed_ids(session, claimed))


def reschedule(
    session_factory: sessionmaker[Session],
    result: FetchResult,
    parsed: ParsedFeed | None,
    settings: Settings,
    *,
    now: datetime,
    worker: str,
    was_failing: bool,
) -> Decision:
    """Record the feed's next check (or disable it), release its claim, log a status change."""
    with session_factory.begin() as session:
        health = schedule_store.feed_health(session, result.feed_id)
        ttl = parsed.ttl_seconds if parsed else None
        decision = decide(now, health, result, ttl, settings.schedule)
        schedule_store.set_schedule(
            session, health.feed_id, worker=worker,
            next_check_at=decision.next_check_at, disabled_reason=decision.disabled_reason,
        )
    never_fetched = health.last_success_at is None and health.consecutive_failures <= 1 and not was_failing
    before = FeedStatus.FAILING if was_failing else FeedStatus.NEW if never_fetched else FeedStatus.OK
    if decision.status != before:
        detail = decision.disabled_reason or health.last_error or "fetched normally"
        # INFO: `pressbot run` shows it; `pressbot poll` says the same in its summary.
        level = logging.WARNING if decision.status == FeedStatus.DISABLED else logging.INFO
        log.log(level, "feed %s: %s → %s (%s)", health.name, before, decision.status, detail,
                extra={"feed": health.name, "status": decision.status, "previous_status": before})
    return decision


def send_health_notices(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    now: datetime,
    echo: Callable[[str], None] = print,
    client: Any = None,
) -> int:
    """Post each due notice once to the ops channel (printed without a token); returns how many."""
    with session_factory() as session:
        notices = schedule_store.due_health_notices(
            session, now=now, notice_after=settings.schedule.health_notice_after
        )
    if not notices:
        return 0
    from bot import deliver

    channel = settings.slack.ops_channel or settings.slack.channel
    if client is None and settings.slack_token:
        client = deliver.make_client(settings.slack_token, settings.slack_api_url)
    done = 0
    for notice in notices:
        with session_factory.begin() as session:
            if not schedule_store.claim_health_notice(session, notice, now):
                continue  # another worker is posting it
        text = health_notice_text(notice, now)
        if client is None:
            echo(text)
        else:
            outcome = deliver.post_text(client, channel, text)
            if not outcome.sent:
                with session_factory.begin() as session:
                    schedule_store.unclaim_health_notice(session, notice)
                log.warning("health notice for feed %s not posted to %s: %s", notice.name, channel, outcome.error)
                continue
        done += 1
        log.info("health notice (%s) for feed %s sent to %s", notice.kind, notice.name, channel,
                 extra={"feed": notice.name, "notice": notice.kind})
    return done
