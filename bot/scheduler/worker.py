"""``pressbot run``'s jobs and their APScheduler 3.x wiring.

A due-feeds job claims feeds whose ``next_check_at`` has come and runs
``bot.poll.run_pass`` on them; a delivery job retries pending alerts and posts health
notices; a renew job keeps a long pass's claims alive; a heartbeat job logs that the
worker lives. The schedule is in the database, so the jobs only poll it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.config import Settings
from bot.scheduler import make_worker_id, send_health_notices
from bot.store import feeds as feed_store
from bot.store import schedule as schedule_store
from bot.tables import utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)


class Worker:
    """The jobs of ``pressbot run``; each is safe to call directly (tests drive ``clock``)."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        *,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = utcnow,
        echo: Callable[[str], None] = print,
    ) -> None:
        self.settings = settings
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
        try:
            polled = 0
            while not self.stopping.is_set():
                batch = self._claim_batch()
                if not batch:
                    break
                self._poll(batch)
                polled += len(batch)
            return polled
        finally:
            self._busy.release()

    def _claim_batch(self) -> list[int]:
        with self.session_factory.begin() as session:
            return schedule_store.claim_due_feeds(
                session, worker=self.id, now=self.clock(), lease_seconds=self.policy.lease, limit=self.batch_size
            )

    def _poll(self, feed_ids: list[int]) -> None:
        from bot.poll import run_pass

        self._in_pass.set()
        try:
            summary = run_pass(
                self.settings, self.session_factory, feed_ids=feed_ids, worker=self.id, clock=self.clock, echo=self.echo
            )
        finally:
            self._in_pass.clear()
            with self.session_factory.begin() as session:
                schedule_store.release_claims(session, self.id)
        self.passes += 1
        busy = summary.new_items or summary.failed or summary.alerts_sent or summary.flagged
        log.log(logging.INFO if busy else logging.DEBUG,
                "pass: %d feeds, %d fetched, %d not modified, %d failed; %d new items, %d flagged; "
                "alerts %d sent, %d pending", summary.feeds, summary.fetched, summary.not_modified, summary.failed,
                summary.new_items, summary.flagged, summary.alerts_sent, summary.alerts_pending)

    def deliver(self) -> None:
        """Retry pending alerts (a pass delivers too) and post health notices."""
        if not self._busy.acquire(blocking=False):
            return  # a pass is running and delivers when it ends
        try:
            if self.settings.slack_token:  # without one, every pass prints the pending alerts already
                from bot.poll import deliver_alerts

                deliver_alerts(self.session_factory, self.settings, now=self.clock(), dry_run=False,
                               echo=self.echo, worker=self.id)
            send_health_notices(self.settings, self.session_factory, now=self.clock(), echo=self.echo)
        finally:
            self._busy.release()

    def renew(self) -> None:
        if self._in_pass.is_set():
            with self.session_factory.begin() as session:
                schedule_store.renew_claims(session, worker=self.id, now=self.clock(), lease_seconds=self.policy.lease)

    def heartbeat(self) -> None:
        from bot.store import outbox

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
        with self.session_factory.begin() as session:
            released = schedule_store.release_claims(session, self.id)
        log.info("worker %s stopped (%s); %d feed claims released", self.id,
                 "clean" if finished else "in-flight pass abandoned", released)
        return finished


def _tick(feed_intervals: Iterable[float]) -> float:
    """How often to look for due feeds: a fifth of the shortest interval, 1–30 s."""
    return min(30.0, max(1.0, min(feed_intervals, default=900.0) / 5))


def _guarded(name: str, job: Callable[[], object]) -> Callable[[], None]:
    """Keep going through every fault: a failed run is logged, the next one runs as usual."""

    def run() -> None:
        try:
            job()
        except Exception:
            log.exception("job %s failed; it runs again at its next tick", name)

    return run


class _SkipNoticeFilter(logging.Filter):
    """Drops APScheduler's warning that a tick was skipped because the job still runs.

    With a 1 s tick that is every second of a long pass, and it is the intended effect
    of max_instances=1, not a fault.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return "maximum number of running instances reached" not in str(record.msg)


def build_scheduler(worker: Worker) -> BackgroundScheduler:
    """The APScheduler jobs of ``pressbot run`` (started by the caller)."""
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.interval import IntervalTrigger

    scheduler_log = logging.getLogger("apscheduler.scheduler")
    if not any(isinstance(existing, _SkipNoticeFilter) for existing in scheduler_log.filters):
        scheduler_log.addFilter(_SkipNoticeFilter())
    policy = worker.policy
    intervals = [float(feed.interval_seconds or policy.default_interval) for feed in worker.settings.feeds]
    tick = _tick(intervals or [policy.default_interval])
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
        scheduler.add_job(_guarded(name, job), IntervalTrigger(seconds=seconds), id=name, name=name, **options)
    log.info("scheduler: due feeds checked every %gs, delivery every %gs, heartbeat every %gs",
             tick, max(tick, 15.0), policy.heartbeat)
    return scheduler
