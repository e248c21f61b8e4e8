"""``pressbot run``'s jobs and their APScheduler 3.x wiring.

A due-feeds job claims feeds whose ``next_check_at`` has come and runs
a pass (``bot.scheduler.poll_once``) on them; a delivery job retries pending alerts and posts health
notices; a renew job keeps a long pass's claims alive; a heartbeat job logs that the
worker lives. The schedule is in the database, so the jobs only poll it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from bot.config import Settings
from bot.deliver import deliver_alerts, slack_client
from bot.deliver.digest import send_due_digests
from bot.errors import StoreError
from bot.poll import LoadPageStages
from bot.scheduler import make_worker_id, poll_once, send_health_notices
from bot.store import feeds as feed_store
from bot.store import outbox
from bot.store import schedule as schedule_store
from bot.tables import utcnow

if TYPE_CHECKING:
    from bot.metrics import WorkerMetrics

log = logging.getLogger(__name__)

# What the database raises when it cannot be used: read-only, full, gone away.
DATABASE_ERRORS = (StoreError, DBAPIError)


def one_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


class DatabaseBackoff:
    """Passes after the database refused one: paused, then tried again after a doubling delay.

    From ``first`` seconds (the due-feeds tick) up to ``longest`` (``scheduler.backoff_max``),
    so a read-only or full database costs one log line per try, not one per tick.
    """

    def __init__(self, first: float, longest: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.first, self.longest, self.clock = first, max(first, longest), clock
        self.failures = 0
        self.retry_at = 0.0

    def ready(self) -> bool:
        return self.clock() >= self.retry_at

    def failed(self) -> float:
        """Record a failed try; the delay before the next."""
        self.failures += 1
        delay = min(self.first * 2.0 ** min(self.failures, 32), self.longest)
        self.retry_at = self.clock() + delay
        return delay

    def succeeded(self) -> bool:
        """Record a try that worked; True if it ends a failing spell."""
        was_failing, self.failures, self.retry_at = self.failures > 0, 0, 0.0
        return was_failing


class Worker:
    """The jobs of ``pressbot run``; each is safe to call directly (tests drive ``clock``)."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        page_stages: LoadPageStages,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        echo: Callable[[str], None] = print,
        metrics: WorkerMetrics | None = None,
    ) -> None:
        self.settings = settings
        self.page_stages = page_stages
        self.metrics = metrics
        self.backoff = DatabaseBackoff(_tick(feed_intervals(settings)), settings.schedule.backoff_max)
        self._synced = False
        self.session_factory = session_factory
        self.id = worker_id or make_worker_id()
        self.policy = settings.schedule
        self.clock = clock
        self.echo = echo
        self.passes = 0
        self.started_at = clock()
        # One pass or delivery at a time per process: both post alerts under this
        # worker's id, and the outbox treats claims by the same id as one owner.
        self._busy = threading.Lock()
        self._in_pass = threading.Event()
        self.stopping = threading.Event()

    @property
    def batch_size(self) -> int:
        # Small enough that a batch of slow feeds ends well inside the lease.
        return self.settings.poll.concurrency * 4

    def sync_feeds(self) -> None:
        with self.session_factory.begin() as session:
            schedule_store.lock_feed_list(session)
            feed_store.sync_feeds(session, self.settings.feeds)

    def run_due(self) -> int:
        """Poll every due feed, a claimed batch at a time; returns how many feeds were polled."""
        if not self._busy.acquire(blocking=False):
            return 0
        started = time.monotonic()
        try:
            if not self._synced:  # here, not at start-up: a database read-only then is retried like a pass
                self.sync_feeds()
                self._synced = True
            polled = 0
            while not self.stopping.is_set():
                batch = self._claim_batch()
                if not batch:
                    break
                self._poll(batch)
                polled += len(batch)
            if polled:
                self.observe_state()
        finally:
            self._busy.release()
        if self.metrics is not None:
            self.metrics.pass_finished(time.monotonic() - started)
        return polled

    def observe_state(self) -> None:
        """Feeds and alerts by status, for the metrics (read-only)."""
        if self.metrics is None:
            return
        with self.session_factory() as session:
            feeds = schedule_store.all_feed_health(session)
            alerts = outbox.alert_counts(session)
        self.metrics.record_state((str(feed.status) for feed in feeds), alerts)

    def run_job(self, name: str, job: Callable[[], object]) -> None:
        """One run of a scheduled job; a database that refuses is one line, then a pause that doubles.

        Every other fault is logged with its traceback and the job runs again at its next tick.
        """
        writes = name != "heartbeat"  # the heartbeat only reads: it goes on while passes pause
        if writes and not self.backoff.ready():
            return
        try:
            job()
        except DATABASE_ERRORS as exc:
            if not writes:
                log.warning("%s: %s", name, one_line(exc))
                return
            delay = self.backoff.failed()
            # Fresh connections for the next try: SQLite keeps a file it opened read-only
            # read-only, and a failed-over PostgreSQL has a new primary.
            engine = self.session_factory.kw.get("bind")
            if engine is not None:
                engine.dispose()
            if self.metrics is not None and name == "due-feeds":
                self.metrics.pass_failed()
            log.error("%s failed: %s; passes paused, next try in %gs", "pass" if name == "due-feeds" else name,
                      one_line(exc), delay, extra={"job": name, "retry_in": delay})
        except Exception:
            log.exception("job %s failed; it runs again at its next tick", name)
        else:
            if writes and self.backoff.succeeded():
                log.warning("database usable again: passes resumed")

    def _claim_batch(self) -> list[int]:
        with self.session_factory.begin() as session:
            return schedule_store.claim_due_feeds(
                session, worker=self.id, now=self.clock(), lease_seconds=self.policy.lease, limit=self.batch_size
            )

    def _poll(self, feed_ids: list[int]) -> None:
        self._in_pass.set()
        try:
            summary = poll_once(
                self.settings, self.session_factory, page_stages=self.page_stages, feed_ids=feed_ids, worker=self.id,
                clock=self.clock, echo=self.echo,
            )
        finally:
            self._in_pass.clear()
            with self.session_factory.begin() as session:
                schedule_store.release_claims(session, self.id)
        self.passes += 1
        if self.metrics is not None:
            self.metrics.record_summary(summary)
        busy = summary.new_items or summary.failed or summary.alerts_sent or summary.flagged
        log.log(logging.INFO if busy else logging.DEBUG,
                "pass: %d feeds, %d fetched, %d not modified, %d failed; %d new items, %d flagged; "
                "alerts %d sent, %d pending", summary.feeds, summary.fetched, summary.not_modified, summary.failed,
                summary.new_items, summary.flagged, summary.alerts_sent, summary.alerts_pending)

    def deliver(self) -> None:
        """Retry pending alerts (a pass delivers too), post health notices and due digests."""
        if not self._busy.acquire(blocking=False):
            return  # a pass is running and delivers when it ends
        try:
            slack = slack_client(self.settings)  # one client for this run's alerts and notices
            if slack is not None:  # without one, every pass prints the pending alerts already
                deliver_alerts(self.session_factory, self.settings, now=self.clock(), dry_run=False,
                               echo=self.echo, worker=self.id, client=slack)
            send_health_notices(self.settings, self.session_factory, now=self.clock(), echo=self.echo, client=slack)
            send_due_digests(self.session_factory, self.settings, now=self.clock(), worker=self.id, client=slack)
        finally:
            self._busy.release()

    def renew(self) -> None:
        if self._in_pass.is_set():
            with self.session_factory.begin() as session:
                schedule_store.renew_claims(session, worker=self.id, now=self.clock(), lease_seconds=self.policy.lease)

    def heartbeat(self) -> None:
        with self.session_factory() as session:
            feeds = schedule_store.all_feed_health(session)
            due = schedule_store.next_due_at(session)
            alerts = outbox.alert_counts(session)
        failing = sum(1 for feed in feeds if feed.enabled and feed.consecutive_failures)
        disabled = sum(1 for feed in feeds if not feed.enabled)
        log.info(
            "heartbeat: worker %s, %d passes; %d feeds (%d failing, %d disabled), next check %s; "
            "alerts %d pending, %d failed", self.id, self.passes, len(feeds), failing, disabled,
            f"{due:%H:%M:%S} UTC" if due else "now", alerts["pending"], alerts["failed"],
            extra={"worker": self.id, "passes": self.passes, "failing": failing, "disabled": disabled,
                   "alerts_pending": alerts["pending"], "alerts_failed": alerts["failed"]},
        )

    def stop(self, grace: float) -> bool:
        """Stop taking work, wait up to ``grace`` s for the job in flight, release claims.

        Returns False when the job did not finish in time: the caller then exits anyway
        (Procfile platforms kill at 30 s) and its feeds are polled again by whoever
        claims them next; nothing was recorded for them, so nothing is lost or doubled.
        """
        self.stopping.set()
        finished = self._busy.acquire(timeout=grace)
        try:
            with self.session_factory.begin() as session:
                released = schedule_store.release_claims(session, self.id)
        except DATABASE_ERRORS as exc:  # they expire after scheduler.lease
            log.warning("claims not released: %s", one_line(exc))
            released = 0
        log.info("worker %s stopped (%s); %d feed claims released", self.id,
                 "clean" if finished else "in-flight pass abandoned", released)
        return finished


def _tick(feed_intervals: Iterable[float]) -> float:
    """How often to look for due feeds: a fifth of the shortest interval, 1–30 s."""
    return min(30.0, max(1.0, min(feed_intervals, default=900.0) / 5))


def feed_intervals(settings: Settings) -> list[float]:
    """Each feed's poll interval in seconds (the default for feeds without one)."""
    policy = settings.schedule
    return [float(feed.interval_seconds or policy.default_interval) for feed in settings.feeds] or [
        policy.default_interval
    ]


class _SkipNoticeFilter(logging.Filter):
    """Drops APScheduler's warning that a tick was skipped because the job still runs.

    With a 1 s tick that is every second of a long pass, and it is the intended effect
    of max_instances=1, not a fault.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


def build_scheduler(worker: Worker) -> BackgroundScheduler:
    """The APScheduler jobs of ``pressbot run`` (started by the caller)."""
    scheduler_log = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(existing, _SkipNoticeFilter) for existing in scheduler_log.filters):
        scheduler_log.addFilter(_SkipNoticeFilter())
    policy = worker.policy
    tick = _tick(feed_intervals(worker.settings))
    scheduler = BackgroundScheduler(
        timezone=UTC,
        job_defaults={
            # A pass that outlasts its tick is not run twice at once, and ticks missed
            # meanwhile become one run.
            "max_instances": 1,
            "coalesce": True,
            # No grace limit: a run is never skipped for being late (after a suspended
            # VM, a long GC or a slow pass). Jobs only look at the database, where each
            # feed's next_check_at says what is due, so a late run is as good as one on
            # time, and skipping it would leave feeds unpolled for another tick.
            "misfire_grace_time": None,
        },
    )
    now = datetime.now(UTC)
    jobs = (
        ("due-feeds", worker.run_due, tick, now),
        ("delivery", worker.deliver, max(tick, 15.0), None),
        ("renew-claims", worker.renew, max(1.0, policy.lease / 3), None),
        ("heartbeat", worker.heartbeat, max(1.0, policy.heartbeat), now),
    )
    for name, job, seconds, first in jobs:
        options = {"next_run_time": first} if first else {}
        scheduler.add_job(worker.run_job, IntervalTrigger(seconds=seconds), args=(name, job), id=name, name=name,
                          **options)
    log.info("scheduler: due feeds checked every %gs, delivery every %gs, heartbeat every %gs",
             tick, max(tick, 15.0), policy.heartbeat)
    return scheduler
