"""The Slack outbox: claim pending alerts, record Slack's answer, retry failed ones.

An alert row moves pending → sent | failed (``held`` rows are never sent). Exactly
once rests on three writes, each committed by the caller before the next step:
the claim (one worker owns the row), ``mark_posting`` (just before calling Slack)
and ``record_outcome`` (Slack's ts or error). A row seen again with
``posting_started_at`` set and no ts may already be in Slack, and deliver checks the
channel history before posting it again.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from bot.records import AlertStatus, AlertToSend, ChangeKind, DeliveryOutcome, FlagMatch, GroupCopy, OutboxEntry
from bot.schema import Alert, AlertChange, Feed, FlagMatchRow, Item
from bot.store import claims
from bot.store.groups import copies_of
from bot.store.verdicts import verdict_marks


@dataclass(frozen=True, slots=True)
class Backoff:
    """Exponential backoff with jitter for transient failures, at least Slack's Retry-After."""

    base_seconds: float = 30.0
    max_seconds: float = 3600.0
    random: Callable[[], float] = field(default=random.random)

    def delay(self, attempts: int, retry_after: float | None = None) -> float:
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** max(attempts - 1, 0))
        # "Equal jitter": spreads workers apart yet never retries sooner than half the step.
        seconds = ceiling / 2 + self.random() * ceiling / 2
        return max(seconds, retry_after or 0.0)


def record_failure(row: Any, outcome: DeliveryOutcome, *, now: datetime, backoff: Backoff) -> None:
    """A failed attempt on any outbox row (alerts, digests): failed for good, or pending again after the backoff."""
    row.last_error = outcome.error
    if not outcome.maybe_posted:
        row.posting_started_at = None  # Slack answered: nothing was posted
    if outcome.permanent:
        row.status, row.next_attempt_at = AlertStatus.FAILED, None
    else:
        delay = backoff.delay(max(row.attempts, 1), outcome.retry_after_seconds)
        row.next_attempt_at = now + timedelta(seconds=delay)


def claim_alerts(
    session: Session,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    exclude: Collection[int] = (),
) -> list[AlertToSend]:
    """Claim up to ``limit`` due pending alerts for ``worker`` (bot.store.claims); commit before posting.

    ``exclude``: alerts this run already handled or put back.
    """
    claimed = claims.claim_due(
        session, Alert, select(Alert.id), worker=worker, now=now, lease_seconds=lease_seconds, limit=limit,
        exclude=exclude,
    )
    return alerts_to_send(session, claimed)


def pending_alerts(session: Session, *, limit: int | None = None) -> list[AlertToSend]:
    """Every pending alert, due or not, without claiming (printing, dry runs)."""
    query = select(Alert.id).where(Alert.status == AlertStatus.PENDING).order_by(Alert.id).limit(limit)
    return alerts_to_send(session, list(session.scalars(query)))


def alerts_to_send(session: Session, alert_ids: Collection[int]) -> list[AlertToSend]:
    """The alerts with the item, feed and flag matches their message needs, in id order."""
    if not alert_ids:
        return []
    rows = session.execute(
        select(Alert, Item, Feed.name)
        .join(Item, Alert.item_id == Item.id)
        .join(Feed, Item.feed_id == Feed.id)
        .where(Alert.id.in_(alert_ids))
        .order_by(Alert.id)
    ).all()
    matches = _matches_by_item(session, {item.id for _, item, _ in rows})
    copies = copies_of(session, [item.id for _, item, _ in rows])
    copy_matches = _matches_by_item(session, {copy.item_id for found in copies.values() for copy in found})
    marks = verdict_marks(session, [alert.id for alert, _, _ in rows])
    return [
        AlertToSend(
            alert_id=alert.id,
            channel=alert.channel,
            item_id=item.id,
            feed_name=feed_name,
            title=item.title,
            url=item.url,
            published=item.published_at,
            # Until summarize has run, the feed's own teaser is the best short text.
            summary=item.summary or item.teaser or item.content or None,
            matches=_routed(_with_copies(matches.get(item.id, ()), copies.get(item.id, ()), copy_matches), alert.flags),
            attempts=alert.attempts,
            outcome_unknown=alert.posting_started_at is not None and alert.slack_ts is None,
            posting_started_at=alert.posting_started_at,
            also_in=copies.get(item.id, ()),
            verdicts=marks.get(alert.id, ()),
        )
        for alert, item, feed_name in rows
    ]


def _with_copies(
    own: tuple[FlagMatch, ...], copies: tuple[GroupCopy, ...], copy_matches: dict[int, tuple[FlagMatch, ...]]
) -> tuple[FlagMatch, ...]:
    """The release's matches, then those of flags only a copy of it carries (its text says more)."""
    flags = {match.flag for match in own}
    extra = [
        match
        for copy in copies
        for match in copy_matches.get(copy.item_id, ())
        if match.flag not in flags
    ]
    return own + tuple(extra)


def _routed(matches: tuple[FlagMatch, ...], flags: list[str] | None) -> tuple[FlagMatch, ...]:
    """The matches of the flags the policy routed to this alert's channel (all when none are)."""
    kept = tuple(match for match in matches if match.flag in (flags or ()))
    return kept or matches


def _matches_by_item(session: Session, item_ids: Iterable[int]) -> dict[int, tuple[FlagMatch, ...]]:
    found: dict[int, list[FlagMatch]] = {}
    query = select(FlagMatchRow).where(FlagMatchRow.item_id.in_(list(item_ids))).order_by(FlagMatchRow.id)
    for row in session.scalars(query):
        found.setdefault(row.item_id, []).append(
            FlagMatch(flag=row.flag, phrase=row.phrase, sentence=row.sentence, field=row.field)
        )
    return {item_id: tuple(matches) for item_id, matches in found.items()}


def mark_posting(
    session: Session, alert_id: int, now: datetime, *, worker: str, lease_seconds: float
) -> bool:
    """Note that ``worker`` is about to post; False when the claim is no longer its own.

    Committed before Slack is called, so a crash after Slack accepts the post leaves a
    trace (``posting_started_at`` without a ts) that makes the next attempt look first.
    """
    return claims.mark_attempt(session, Alert, alert_id, now, worker=worker, lease_seconds=lease_seconds)


def record_outcome(session: Session, outcome: DeliveryOutcome, *, now: datetime, backoff: Backoff) -> str:
    """Store Slack's answer for one alert and release its claim; returns the new status."""
    alert = session.get(Alert, outcome.alert_id)
    if alert is None or alert.status != AlertStatus.PENDING:
        return alert.status if alert is not None else "gone"  # withdrawn or done meanwhile
    alert.claimed_by = None
    alert.claimed_until = None
    if outcome.sent:
        alert.status, alert.slack_ts, alert.sent_at = AlertStatus.SENT, outcome.slack_ts, now
        alert.slack_channel_id = outcome.channel_id or alert.slack_channel_id
        alert.last_error, alert.next_attempt_at = None, None
        return alert.status
    record_failure(alert, outcome, now=now, backoff=backoff)
    return alert.status


def release_claims(
    session: Session, alert_ids: Collection[int], *, not_before: datetime | None = None
) -> None:
    """Give back claimed alerts untried (the pass stopped); optionally not due before a time."""
    claims.release(session, Alert, alert_ids, not_before=not_before)


def retry_failed(session: Session, ids: Collection[int] | None = None) -> int:
    """Failed alerts (all, or the given ones) back to pending, due now; returns how many.

    The operator has fixed the cause (token, channel, membership) and, for an alert
    whose earlier post could not be checked, looked at the channel: it is posted anew.
    """
    query = update(Alert).where(Alert.status == AlertStatus.FAILED)
    if ids is not None:
        query = query.where(Alert.id.in_(ids))
    result = session.execute(
        query.values(
            status=AlertStatus.PENDING,
            next_attempt_at=None,
            posting_started_at=None,
            claimed_by=None,
            claimed_until=None,
        ).execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def list_alerts(
    session: Session, statuses: Collection[AlertStatus] | None = None, limit: int = 1000
) -> list[OutboxEntry]:
    """Alerts (newest first), optionally only those with the given statuses, with their edits and replies."""
    query = (
        select(Alert, Item.title, Item.url, Feed.name)
        .join(Item, Alert.item_id == Item.id)
        .join(Feed, Item.feed_id == Feed.id)
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    if statuses:
        query = query.where(Alert.status.in_(list(statuses)))
    rows = session.execute(query).all()
    changes = _changes_of(session, [alert.id for alert, *_ in rows])
    return [
        OutboxEntry(
            alert_id=alert.id,
            item_id=alert.item_id,
            feed_name=feed_name,
            title=title,
            url=url,
            channel=alert.channel,
            status=AlertStatus(alert.status),
            attempts=alert.attempts,
            created_at=alert.created_at,
            next_attempt_at=alert.next_attempt_at,
            last_error=alert.last_error,
            slack_ts=alert.slack_ts,
            sent_at=alert.sent_at,
            **_change_counts(changes.get(alert.id, {})),
        )
        for alert, title, url, feed_name in rows
    ]


def _changes_of(session: Session, alert_ids: Sequence[int]) -> dict[int, dict[tuple[str, str], int]]:
    """Per alert, how many edits and replies (bot.store.changes) it has by (kind, status)."""
    found: dict[int, dict[tuple[str, str], int]] = {}
    for start in range(0, len(alert_ids), 500):  # bound parameters per IN list, as bot.store.items
        query = (
            select(AlertChange.alert_id, AlertChange.kind, AlertChange.status, func.count())
            .where(AlertChange.alert_id.in_(alert_ids[start : start + 500]))
            .group_by(AlertChange.alert_id, AlertChange.kind, AlertChange.status)
        )
        for alert_id, kind, status, count in session.execute(query):
            found.setdefault(alert_id, {})[(kind, status)] = count
    return found


def _change_counts(counts: dict[tuple[str, str], int]) -> dict[str, int]:
    def total(status: str, kind: str | None = None) -> int:
        return sum(n for (each_kind, each), n in counts.items() if each == status and kind in (None, each_kind))

    return {
        "edits": total(AlertStatus.SENT, ChangeKind.EDIT),
        "replies": total(AlertStatus.SENT, ChangeKind.REPLY),
        "changes_pending": total(AlertStatus.PENDING),
        "changes_failed": total(AlertStatus.FAILED),
    }


def alert_counts(session: Session) -> dict[str, int]:
    """How many alerts have each status; every status present, zero when none."""
    counts = {str(status): 0 for status in AlertStatus}
    for status, count in session.execute(select(Alert.status, func.count()).group_by(Alert.status)):
        counts[status] = count
    return counts
