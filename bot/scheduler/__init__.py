"""The scheduler, above the pass: claims in, the pass run, decisions out.

``poll_once`` is one pass as ``pressbot poll`` and the worker (``bot.scheduler.worker``,
APScheduler 3.x) run it: claim the feeds, hand them to ``bot.poll.run_pass``, apply
each feed's next check (``bot.scheduler.decide``, pure), post due health notices and
keep the pass's record. The schedule lives in the database, so any number of workers
share it.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable, Collection, Sequence
from datetime import datetime

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot import deliver
from bot.config import Settings
from bot.deliver.digest import send_due_digests
from bot.poll import LoadPageStages, run_pass, summary_json
from bot.records import FeedHealth, FeedOutcome, FeedStatus, FetchResult, PassClaim, PassSummary
from bot.scheduler.decide import (
    CACHE_HINT_MAX,
    RETRY_AFTER_MAX,
    WARN_INTERVAL,
    Decision,
    backoff_delay,
    decide,
    health_notice_text,
    interval_warnings,
    next_check,
)
from bot.store import feeds as feed_store
from bot.store import schedule as schedule_store
from bot.tables import utcnow

__all__ = [
    "CACHE_HINT_MAX",
    "RETRY_AFTER_MAX",
    "WARN_INTERVAL",
    "Decision",
    "backoff_delay",
    "claim_for_pass",
    "decide",
    "health_notice_text",
    "interval_warnings",
    "make_worker_id",
    "next_check",
    "poll_once",
    "reschedule",
    "reschedule_all",
    "send_health_notices",
]

log = logging.getLogger(__name__)


def poll_once(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    page_stages: LoadPageStages,
    feed_ids: Collection[int] | None = None,
    dry_run: bool = False,
    on_fetched: Callable[[FetchResult], None] | None = None,
    on_pages: Callable[[int, int], None] | None = None,
    echo: Callable[[str], None] = print,
    worker: str | None = None,
    clock: Callable[[], datetime] = utcnow,
) -> PassSummary:
    """One pass over the enabled feeds (or ``feed_ids``): claim, run, reschedule, notify, record.

    Feeds are claimed first, so a one-off poll skips what a running worker holds;
    ``worker`` names the claimer and must be unique per process. One Slack client
    serves the pass's alerts and health notices. ``page_stages``: see ``bot.poll.PageStages``.
    """
    worker = worker or make_worker_id("poll")
    with session_factory.begin() as session:
        claim = claim_for_pass(session, settings, worker=worker, now=clock(), feed_ids=feed_ids)
    slack = deliver.slack_client(settings)
    try:
        result = run_pass(
            settings, session_factory, claim, page_stages=page_stages, slack=slack, dry_run=dry_run,
            on_fetched=on_fetched, on_pages=on_pages, echo=echo, clock=clock,
        )
        # From when they were stored, not after the delivery; one transaction for them all.
        reschedule_all(session_factory, result.outcomes, settings, now=result.stored_at, worker=worker,
                       failing=claim.failing)
    except BaseException:
        # Ctrl-C or SIGTERM: the claims go back now, as `run` gives them back, or the
        # next poll skipped every feed until the lease ran out (issue 14).
        _release_claims(session_factory, worker)
        raise
    summary = result.summary
    if summary.interrupted:
        _release_claims(session_factory, worker)  # the feeds not stored: the next poll takes them at once
    elif not dry_run:
        send_health_notices(settings, session_factory, now=clock(), echo=echo, client=slack)
        # Here, not only in `run`'s jobs: a cron deployment's digests come with its passes (issue 19).
        send_due_digests(session_factory, settings, now=clock(), worker=worker, client=slack)
    summary.finished_at = clock()
    with session_factory.begin() as session:
        schedule_store.record_pass(session, started_at=summary.started_at, finished_at=summary.finished_at,
                                   worker=worker, summary=summary_json(summary))
    return summary


def _release_claims(session_factory: sessionmaker[Session], worker: str) -> None:
    with session_factory.begin() as session:
        schedule_store.release_claims(session, worker)


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
    failing = schedule_store.failing_feed_ids(session, claimed)
    return PassClaim(worker=worker, feed_ids=tuple(claimed), failing=frozenset(failing))


def reschedule(
    session_factory: sessionmaker[Session],
    outcome: FeedOutcome,
    settings: Settings,
    *,
    now: datetime,
    worker: str,
    was_failing: bool,
) -> Decision:
    """Record the feed's next check (or disable it), release its claim, log a status change."""
    with session_factory.begin() as session:
        health = schedule_store.feed_health(session, outcome.result.feed_id)
        decision = _set_schedule(session, outcome, health, settings, now=now, worker=worker)
    _log_status_change(health, decision, was_failing=was_failing)
    return decision


def reschedule_all(
    session_factory: sessionmaker[Session],
    outcomes: Sequence[FeedOutcome],
    settings: Settings,
    *,
    now: datetime,
    worker: str,
    failing: Collection[int],
) -> list[Decision]:
    """``reschedule`` for every feed of a pass, in one transaction (300 feeds: one commit, not 300)."""
    if not outcomes:
        return []
    with session_factory.begin() as session:
        healths = schedule_store.feed_healths(session, [outcome.result.feed_id for outcome in outcomes])
        decided = [
            (healths[outcome.result.feed_id],
             _set_schedule(session, outcome, healths[outcome.result.feed_id], settings, now=now, worker=worker))
            for outcome in outcomes
        ]
    for health, decision in decided:
        _log_status_change(health, decision, was_failing=health.feed_id in failing)
    return [decision for _health, decision in decided]


def _set_schedule(
    session: Session, outcome: FeedOutcome, health: FeedHealth, settings: Settings, *, now: datetime, worker: str
) -> Decision:
    decision = decide(now, health, outcome.result, outcome.ttl_seconds, settings.schedule)
    schedule_store.set_schedule(
        session, health.feed_id, worker=worker,
        next_check_at=decision.next_check_at, disabled_reason=decision.disabled_reason,
    )
    return decision


def _log_status_change(health: FeedHealth, decision: Decision, *, was_failing: bool) -> None:
    never_fetched = health.last_success_at is None and health.consecutive_failures <= 1 and not was_failing
    before = FeedStatus.FAILING if was_failing else FeedStatus.NEW if never_fetched else FeedStatus.OK
    if decision.status != before:
        detail = decision.disabled_reason or health.last_error or "fetched normally"
        # INFO: `pressbot run` shows it; `pressbot poll` says the same in its summary.
        level = logging.WARNING if decision.status == FeedStatus.DISABLED else logging.INFO
        log.log(level, "feed %s: %s → %s (%s)", health.name, before, decision.status, detail,
                extra={"feed": health.name, "status": decision.status, "previous_status": before})


def send_health_notices(
    settings: Settings,
    session_factory: sessionmaker[Session],
    *,
    now: datetime,
    echo: Callable[[str], None] = print,
    client: WebClient | None = None,
) -> int:
    """Post each due notice once to the ops channel (printed without a client); returns how many."""
    with session_factory() as session:
        notices = schedule_store.due_health_notices(
            session, now=now, notice_after=settings.schedule.health_notice_after
        )
    channel = settings.slack.ops_channel or settings.slack.channel
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
