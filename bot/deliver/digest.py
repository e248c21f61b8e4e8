"""Sending digests (issue 19): due periods recorded, then posted exactly once, part by part.

``send_due_digests`` runs in every pass (``pressbot poll``, so a cron deployment gets
them, and ``pressbot run``'s passes and delivery job): for each configured digest it
records the period that is due (``bot.digest.due_period``) with its messages built
once, then takes every pending digest through the outbox's steps. ``send_digest_now``
is ``pressbot digest --send``: the period in progress, recorded as that period, so
neither a second ``--send`` nor the scheduled send at its end posts it again.

A part whose earlier attempt may have reached Slack is looked for first: the first part
in the channel's history, the others among its thread's replies, by the digest id and
part number in their metadata.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot.deliver.digestmessage import DIGEST_EVENT_TYPE, build_digest
from bot.deliver.post import Pacer, error_scope, find_tagged, find_tagged_reply, post_message
from bot.digest import due_period, period_so_far
from bot.errors import DeliveryError
from bot.records import AlertStatus, DeliveryOutcome, Digest, DigestPeriod, DigestSpec, DigestToSend, RecordedDigest
from bot.store import digests as digest_store
from bot.store.outbox import Backoff

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger(__name__)


def queue_due_digest(session_factory: sessionmaker[Session], spec: DigestSpec, now: datetime) -> int | None:
    """Record the digest's due period, if any, with its messages; its row id (None: nothing to post)."""
    with session_factory.begin() as session:
        period = due_period(spec, now, digest_store.newest_period_start(session, spec.name))
        if period is None:
            return None
        if period.baseline:
            digest_store.record_period(session, spec, period, now=now, messages=None, releases=0)
            return None
        return _record(session, spec, period, now)


def _record(session: Session, spec: DigestSpec, period: DigestPeriod, now: datetime) -> int | None:
    digest = digest_store.collect_digest(session, spec, period)
    digest_id = digest_store.record_period(
        session, spec, period, now=now, messages=build_digest(digest), releases=len(digest.releases)
    )
    if digest_id is not None:
        log.info("digest %s: %d releases from %s to %s%s", spec.name, len(digest.releases), period.start,
                 period.end, " (late)" if period.late else "", extra={"digest": spec.name})
    return digest_id


def preview_digest(session_factory: sessionmaker[Session], spec: DigestSpec, now: datetime) -> Digest:
    """The period in progress, read-only (`digest --preview`, `/pressbot digest`)."""
    with session_factory() as session:
        return digest_store.collect_digest(session, spec, period_so_far(spec, now))


def send_due_digests(
    session_factory: sessionmaker[Session],
    settings: Settings,
    *,
    now: datetime,
    worker: str,
    client: WebClient | None,
    pacer: Pacer | None = None,
) -> int:
    """Record and post every due digest; how many were completed. Nothing without a Slack client.

    Without a token nothing is recorded either: the first pass with one starts the digests.
    """
    if client is None or not settings.digests:
        return 0
    for spec in settings.digests:
        queue_due_digest(session_factory, spec, now)
    steps = _DigestSteps(session_factory, worker=worker, lease=settings.schedule.lease, now=now)
    return _deliver(client, steps, pacer or Pacer(), names=[spec.name for spec in settings.digests])


def send_digest_now(
    session_factory: sessionmaker[Session],
    settings: Settings,
    spec: DigestSpec,
    *,
    now: datetime,
    worker: str,
    client: WebClient,
    pacer: Pacer | None = None,
) -> tuple[RecordedDigest, bool]:
    """``digest --send``: the period in progress, once; (its row, whether this call recorded it)."""
    steps = _DigestSteps(session_factory, worker=worker, lease=settings.schedule.lease, now=now)
    # The period that just ended first: else recording this one would skip it for good.
    queue_due_digest(session_factory, spec, now)
    period = period_so_far(spec, now)
    with session_factory.begin() as session:
        fresh = digest_store.recorded_period(session, spec.name, period.start) is None
        if fresh:
            fresh = _record(session, spec, period, now) is not None
    _deliver(client, steps, pacer or Pacer(), names=[spec.name])
    with session_factory() as session:
        row = digest_store.recorded_period(session, spec.name, period.start)
    assert row is not None  # recorded above, by this call or an earlier one
    return row, fresh


def retry_digest(
    session_factory: sessionmaker[Session], settings: Settings, spec: DigestSpec, *, now: datetime, worker: str,
    client: WebClient,
) -> tuple[int, int]:
    """``digest --retry``: its failed periods posted again now; (how many were failed, how many are sent now)."""
    with session_factory.begin() as session:
        retried = digest_store.retry_failed_digests(session, spec.name)
    steps = _DigestSteps(session_factory, worker=worker, lease=settings.schedule.lease, now=now)
    return retried, _deliver(client, steps, Pacer(), names=[spec.name]) if retried else 0


class _DigestSteps:
    """The outbox's steps for digests, each in its own committed transaction."""

    def __init__(self, session_factory: sessionmaker[Session], *, worker: str, lease: float, now: datetime) -> None:
        self._sessions, self.worker, self._lease, self.now = session_factory, worker, lease, now
        self._backoff = Backoff()
        self._started = time.monotonic()

    def clock(self) -> datetime:
        """The pass's "now", moving on as this run takes time (pacing, Slack's answers)."""
        return self.now + timedelta(seconds=time.monotonic() - self._started)

    def claim(self, names: Sequence[str]) -> list[DigestToSend]:
        with self._sessions.begin() as session:
            return digest_store.claim_digests(
                session, worker=self.worker, now=self.clock(), lease_seconds=self._lease, names=names
            )

    def mark(self, digest_id: int) -> bool:
        with self._sessions.begin() as session:
            return digest_store.mark_digest_part(session, digest_id, self.clock(), worker=self.worker,
                                                 lease_seconds=self._lease)

    def record(self, outcome: DeliveryOutcome) -> str:
        with self._sessions.begin() as session:
            return digest_store.record_digest_part(session, outcome, now=self.clock(), backoff=self._backoff)

    def release(self, digest_ids: list[int]) -> None:
        with self._sessions.begin() as session:
            digest_store.release_digests(session, digest_ids)


def _deliver(client: WebClient, steps: _DigestSteps, pacer: Pacer, *, names: Sequence[str]) -> int:
    """Post each claimed digest's remaining parts in order; stop asking Slack once it fails."""
    done = 0
    claimed = steps.claim(names)
    for position, digest in enumerate(claimed):
        status = _send_parts(client, digest, steps, pacer)
        done += status == AlertStatus.SENT
        if status == "stop":
            steps.release([later.digest_id for later in claimed[position + 1 :]])
            break
    return done


def _send_parts(client: WebClient, digest: DigestToSend, steps: _DigestSteps, pacer: Pacer) -> str:
    """The digest's remaining parts; its status, or "stop" when Slack should not be asked again now."""
    thread_ts, channel_id = digest.slack_ts, digest.channel_id
    status = AlertStatus.PENDING.value
    for part in range(digest.parts_sent, len(digest.messages)):
        unknown = digest.outcome_unknown and part == digest.parts_sent
        outcome = _send_part(client, digest, part, thread_ts, channel_id, unknown, steps.mark, pacer)
        if outcome is None:
            return status  # another worker has it now
        status = steps.record(outcome)
        if not outcome.sent:
            log.warning("digest %s not posted to %s: %s", digest.name, digest.channel, outcome.error)
            if outcome.permanent:  # a token error fails every digest alike: stop asking
                return "stop" if error_scope(outcome) == "token" else status
            return status if outcome.error == "ratelimited" else "stop"
        if part == 0:
            thread_ts, channel_id = outcome.slack_ts, outcome.channel_id or channel_id
    if status == AlertStatus.SENT:
        log.info("digest %s posted to %s (%d messages)", digest.name, digest.channel, len(digest.messages),
                 extra={"digest": digest.name})
    return status


def _send_part(
    client: WebClient,
    digest: DigestToSend,
    part: int,
    thread_ts: str | None,
    channel_id: str | None,
    unknown: bool,
    mark: Callable[[int], bool],
    pacer: Pacer,
) -> DeliveryOutcome | None:
    tag = {"digest_id": digest.digest_id, "part": part}
    message: dict[str, Any] = {**digest.messages[part], "metadata": {"event_type": DIGEST_EVENT_TYPE,
                                                                     "event_payload": tag}}
    if part:
        message |= {"thread_ts": thread_ts, "channel": channel_id or digest.channel}
    if unknown:
        try:
            found = _find_part(client, digest, part, thread_ts, channel_id, tag)
        except DeliveryError as exc:
            return DeliveryOutcome(digest.digest_id, sent=False, error=str(exc), permanent=exc.permanent,
                                   maybe_posted=True)
        if found is not None:
            log.info("digest %s part %d was already in Slack (ts %s)", digest.name, part, found)
            return DeliveryOutcome(digest.digest_id, sent=True, slack_ts=found, channel_id=channel_id)
    pacer.wait(digest.channel)
    if not mark(digest.digest_id):
        return None
    return post_message(client, digest.digest_id, message)


def _find_part(
    client: WebClient, digest: DigestToSend, part: int, thread_ts: str | None, channel_id: str | None,
    tag: dict[str, Any],
) -> str | None:
    if part == 0:
        return find_tagged(client, digest.channel, digest.posting_started_at, DIGEST_EVENT_TYPE, tag)
    return find_tagged_reply(
        client, channel_id or digest.channel, thread_ts or "", DIGEST_EVENT_TYPE, tag, "the digest's thread"
    )
