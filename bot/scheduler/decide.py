"""When each feed is polled next, and what operations hear about its health. Pure.

Given ``now`` and what the server said, these return intents, like lemon24/reader's
``Decider``: no database, no network, no clock of their own.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import MIN_INTERVAL, Settings
from bot.errors import ConfigError
from bot.records import FeedHealth, FeedStatus, FetchResult, HealthNotice, NoticeKind, SchedulePolicy

WARN_INTERVAL = 60.0  # below this, public servers may take the polling for abuse
# A server may ask us to wait, within reason: a misconfigured Retry-After of a week
# must not silence a feed, and a CDN's day-long max-age on a news feed would delay
# every alert by a day.
RETRY_AFTER_MAX = 24 * 3600.0
CACHE_HINT_MAX = 6 * 3600.0


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
