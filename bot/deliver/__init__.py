"""The deliver stage: each due pending alert posted to Slack once, through the outbox.

    message.py  Block Kit and plain-text messages from records (pure)
    post.py     the Slack client, pacing, one run's exactly-once steps, Slack's answers (I/O)

``deliver_alerts`` runs the outbox: it claims a batch of due alerts, then takes each
through mark → post → record, every step its own committed transaction (see
bot.store.outbox for why that order gives exactly once). Without a token, or on a
dry run, it prints the pending alerts instead and changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.deliver.change import ChangeRun, deliver_changes
from bot.deliver.message import (
    EVENT_TYPE,
    build_message,
    escape_feed_text,
    escape_slack,
    escape_within,
    format_for_terminal,
    safe_url,
    shorten,
    slack_link,
    text_message,
)
from bot.deliver.post import (
    DeliveryRun,
    Pacer,
    classify_api_error,
    error_scope,
    find_posted,
    make_client,
    post_alert,
    post_test_message,
    post_text,
)
from bot.records import AlertStatus, AlertToSend, ChangeToSend, DeliveryOutcome, DeliveryStats
from bot.store import changes, outbox

if TYPE_CHECKING:
    from bot.config import Settings

__all__ = [
    "EVENT_TYPE",
    "DeliveryRun",
    "Pacer",
    "build_message",
    "classify_api_error",
    "deliver_alerts",
    "error_scope",
    "escape_feed_text",
    "escape_slack",
    "escape_within",
    "find_posted",
    "format_for_terminal",
    "make_client",
    "post_alert",
    "post_test_message",
    "post_text",
    "print_alerts",
    "safe_url",
    "shorten",
    "slack_client",
    "slack_link",
    "text_message",
]

BATCH = 10  # alerts claimed at once: a claim that outlives its run would only delay others


def slack_client(settings: Settings) -> WebClient | None:
    """The one WebClient of a pass or job; None without a token (alerts are printed then)."""
    return make_client(settings.slack_token, settings.slack_api_url) if settings.slack_token else None


def deliver_alerts(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime,
    dry_run: bool,
    echo: Callable[[str], None],
    worker: str,
    client: WebClient | None = None,
    pacer: Pacer | None = None,
) -> DeliveryStats:
    """Post each due pending alert once; without a token (or on a dry run) print them instead.

    ``client`` and ``pacer`` default to a WebClient from the settings and one post per
    second per channel.
    """
    client = client or slack_client(settings)
    if dry_run or client is None or not settings.slack_token:
        return print_alerts(session_factory, echo)
    run = DeliveryRun(client, pacer or Pacer())
    steps = _OutboxSteps(session_factory, worker=worker, lease=settings.schedule.lease, now=now)
    handled: set[int] = set()
    while not run.stopped:
        batch = steps.claim(exclude=handled)
        if not batch:
            break
        handled.update(alert.alert_id for alert in batch)
        run.deliver(batch, mark=steps.mark, record=steps.record, release=steps.release)
    changed = _deliver_changes(run, steps) if not run.stopped else ChangeRun()
    return DeliveryStats(
        sent=run.sent,
        pending=steps.pending(),
        failed=run.failed,
        edits=changed.edits,
        replies=changed.replies,
        changes_pending=steps.changes_pending(),
        changes_failed=changed.failed,
    )


def _deliver_changes(run: DeliveryRun, steps: _OutboxSteps) -> ChangeRun:
    """Edits and thread replies of alerts already in Slack, after the new alerts (issue 18)."""
    handled: set[int] = set()
    total = ChangeRun()
    while not total.stopped:
        batch = steps.claim_changes(exclude=handled)
        if not batch:
            break
        handled.update(change.change_id for change in batch)
        done = deliver_changes(
            run.client,
            batch,
            pacer=run.pacer,
            mark=steps.mark_change,
            record=steps.record_change,
            release=steps.release_changes,
        )
        total.edits += done.edits
        total.replies += done.replies
        total.failed += done.failed
        total.stopped = done.stopped
    return total


def print_alerts(session_factory: sessionmaker[Session], echo: Callable[[str], None]) -> DeliveryStats:
    """Every pending alert as text; they stay pending for a run with a token."""
    with session_factory() as session:
        alerts = outbox.pending_alerts(session)
        waiting = changes.change_counts(session)[AlertStatus.PENDING]
    for alert in alerts:
        echo(format_for_terminal(alert))
    return DeliveryStats(pending=len(alerts), printed=len(alerts), changes_pending=waiting)


class _OutboxSteps:
    """The outbox's steps for one run, each in its own committed transaction."""

    def __init__(self, session_factory: sessionmaker[Session], *, worker: str, lease: float, now: datetime) -> None:
        self._sessions = session_factory
        self._worker = worker
        self._lease = lease
        self._now = now
        self._started = time.monotonic()
        self._backoff = outbox.Backoff()

    def clock(self) -> datetime:
        """The pass's "now", moving on as this run takes time."""
        return self._now + timedelta(seconds=time.monotonic() - self._started)

    def claim(self, *, exclude: Collection[int]) -> list[AlertToSend]:
        with self._sessions.begin() as session:
            return outbox.claim_alerts(
                session, worker=self._worker, now=self.clock(), lease_seconds=self._lease, limit=BATCH,
                exclude=exclude,
            )

    def mark(self, alert_id: int) -> bool:
        with self._sessions.begin() as session:
            return outbox.mark_posting(session, alert_id, self.clock(), worker=self._worker, lease_seconds=self._lease)

    def record(self, outcome: DeliveryOutcome) -> None:
        with self._sessions.begin() as session:
            outbox.record_outcome(session, outcome, now=self.clock(), backoff=self._backoff)

    def claim_changes(self, *, exclude: Collection[int]) -> list[ChangeToSend]:
        with self._sessions.begin() as session:
            return changes.claim_changes(
                session, worker=self._worker, now=self.clock(), lease_seconds=self._lease, limit=BATCH,
                exclude=exclude,
            )

    def mark_change(self, change_id: int) -> bool:
        with self._sessions.begin() as session:
            return changes.mark_change(session, change_id, self.clock(), worker=self._worker, lease_seconds=self._lease)

    def record_change(self, outcome: DeliveryOutcome, channel_id: str | None) -> None:
        with self._sessions.begin() as session:
            changes.record_change(session, outcome, now=self.clock(), backoff=self._backoff, channel_id=channel_id)

    def release_changes(self, change_ids: list[int]) -> None:
        with self._sessions.begin() as session:
            changes.release_changes(session, change_ids)

    def release(self, alert_ids: list[int]) -> None:
        with self._sessions.begin() as session:
            outbox.release_claims(session, alert_ids)

    def pending(self) -> int:
        with self._sessions() as session:
            return outbox.alert_counts(session)[AlertStatus.PENDING]

    def changes_pending(self) -> int:
        with self._sessions() as session:
            return changes.change_counts(session)[AlertStatus.PENDING]
