"""Changes to posted alerts: the outbox of message edits and thread replies (issue 18).

A copy joining a group whose alert is in Slack, or a flag a copy adds, queues an
``edit`` (chat.update of the alert's message, rebuilt from the group's current state);
a material change of a flagged release queues a ``reply`` in the alert's thread. Each
row goes pending → sent | failed through the same three committed writes as alerts
(claim, ``mark_change`` just before Slack is called, ``record_change``), so a change
seen again with ``posting_started_at`` set may already be in Slack, and deliver looks
at the message (edits) or the thread (replies) before sending it again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.orm import Session

from bot.records import AlertDecision, AlertStatus, ChangeKind, ChangeToSend, DeliveryOutcome
from bot.schema import Alert, AlertChange, Item
from bot.store import claims
from bot.store.outbox import Backoff, alerts_to_send


def _posted_or_posting() -> ColumnElement[bool]:
    # An alert being posted right now was built before this change: it needs the edit too.
    return or_(
        Alert.status == AlertStatus.SENT,
        and_(Alert.status == AlertStatus.PENDING, Alert.posting_started_at.is_not(None)),
    )


def _alerts_of_group(session: Session, item_id: int) -> list[int]:
    """The posted (or posting) alerts of the release's group, or of the release alone."""
    group_id = session.scalar(select(Item.group_id).where(Item.id == item_id))
    members = select(Item.id).where(Item.group_id == group_id) if group_id is not None else None
    which = Alert.item_id.in_(members) if members is not None else Alert.item_id == item_id
    return list(session.scalars(select(Alert.id).where(which, _posted_or_posting()).order_by(Alert.id)))


def queue_edits(session: Session, item_id: int, now: datetime) -> int:
    """One pending edit for each posted alert of the release's group; returns how many were queued.

    An edit not yet started already sends the group as it will be: no second one.
    """
    return sum(queue_alert_edit(session, alert_id, now) for alert_id in _alerts_of_group(session, item_id))


def queue_edits_of(session: Session, item_ids: Sequence[int], now: datetime) -> int:
    """``queue_edits`` for several releases (a pass's copies that joined a group): one lookup for all."""
    alert_ids: set[int] = set()
    for start in range(0, len(item_ids), 500):  # bound parameters per IN list, as bot.store.items
        chunk = list(item_ids[start : start + 500])
        groups = select(Item.group_id).where(Item.id.in_(chunk), Item.group_id.is_not(None))
        members = select(Item.id).where(Item.group_id.in_(groups))
        with session.no_autoflush:
            alert_ids.update(session.scalars(select(Alert.id).where(Alert.item_id.in_(members), _posted_or_posting())))
    return sum(queue_alert_edit(session, alert_id, now) for alert_id in sorted(alert_ids))


def queue_alert_edit(session: Session, alert_id: int, now: datetime) -> bool:
    """One pending edit of this alert's message (a verdict, issue 19); False when one is waiting.

    An edit not yet started rebuilds the message from the alert as it will be: no second one.
    """
    waiting = select(AlertChange.id).where(
        AlertChange.alert_id == alert_id,
        AlertChange.kind == ChangeKind.EDIT,
        AlertChange.status == AlertStatus.PENDING,
        AlertChange.posting_started_at.is_(None),
    )
    if session.execute(waiting.limit(1)).first() is not None:
        return False
    session.add(AlertChange(alert_id=alert_id, kind=ChangeKind.EDIT, status=AlertStatus.PENDING, created_at=now))
    return True


def queue_reply(session: Session, item_id: int, text: str, now: datetime) -> int:
    """One thread reply saying ``text`` under each posted alert of the release's group."""
    alert_ids = _alerts_of_group(session, item_id)
    session.add_all(
        AlertChange(alert_id=alert_id, kind=ChangeKind.REPLY, status=AlertStatus.PENDING, created_at=now, text=text)
        for alert_id in alert_ids
    )
    return len(alert_ids)


def claim_changes(
    session: Session, *, worker: str, now: datetime, lease_seconds: float, limit: int, exclude: Collection[int] = ()
) -> list[ChangeToSend]:
    """Claim due pending changes whose alert Slack has (its ts known); commit before sending."""
    candidates = (
        select(AlertChange.id)
        .join(Alert, AlertChange.alert_id == Alert.id)
        .where(Alert.status == AlertStatus.SENT, Alert.slack_ts.is_not(None))
    )
    claimed = claims.claim_due(
        session, AlertChange, candidates, worker=worker, now=now, lease_seconds=lease_seconds, limit=limit,
        exclude=exclude,
    )
    return changes_to_send(session, claimed)


def changes_to_send(session: Session, change_ids: Sequence[int]) -> list[ChangeToSend]:
    if not change_ids:
        return []
    rows = session.execute(
        select(AlertChange, Alert).join(Alert, AlertChange.alert_id == Alert.id).where(AlertChange.id.in_(change_ids))
    ).all()
    alerts = {alert.alert_id: alert for alert in alerts_to_send(session, {alert.id for _, alert in rows})}
    return [
        ChangeToSend(
            change_id=change.id,
            kind=ChangeKind(change.kind),
            alert=alerts[alert.id],
            channel_id=alert.slack_channel_id,
            message_ts=alert.slack_ts or "",
            text=change.text,
            outcome_unknown=change.posting_started_at is not None,
            posting_started_at=change.posting_started_at,
        )
        for change, alert in sorted(rows, key=lambda row: row[0].id)
    ]


def mark_change(session: Session, change_id: int, now: datetime, *, worker: str, lease_seconds: float) -> bool:
    """Note that ``worker`` is about to send the change; False when its claim was lost."""
    return claims.mark_attempt(session, AlertChange, change_id, now, worker=worker, lease_seconds=lease_seconds)


def record_change(
    session: Session, outcome: DeliveryOutcome, *, now: datetime, backoff: Backoff, channel_id: str | None = None
) -> str:
    """Store Slack's answer for one change (``outcome.alert_id`` is the change's id)."""
    change = session.get(AlertChange, outcome.alert_id)
    if change is None or change.status != AlertStatus.PENDING:
        return change.status if change is not None else "gone"
    change.claimed_by, change.claimed_until = None, None
    if channel_id:
        session.execute(
            update(Alert)
            .where(Alert.id == change.alert_id, Alert.slack_channel_id.is_(None))
            .values(slack_channel_id=channel_id)
            .execution_options(synchronize_session=False)
        )
    if outcome.sent:
        change.status, change.sent_at, change.reply_ts = AlertStatus.SENT, now, outcome.slack_ts
        change.last_error, change.next_attempt_at = None, None
        return change.status
    change.last_error = outcome.error
    if not outcome.maybe_posted:
        change.posting_started_at = None
    if outcome.permanent:
        change.status, change.next_attempt_at = AlertStatus.FAILED, None
    else:
        delay = backoff.delay(max(change.attempts, 1), outcome.retry_after_seconds)
        change.next_attempt_at = now + timedelta(seconds=delay)
    return change.status


def retry_failed(session: Session, alert_ids: Collection[int] | None = None) -> dict[ChangeKind, int]:
    """Failed edits and replies (all, or those of the given alerts) back to pending, due now; how many of each.

    Unlike a failed alert's post, a change keeps ``posting_started_at``: one whose earlier
    attempt may have reached Slack is looked for (the message's metadata, the thread's
    tagged replies) before it is sent again, as any change whose answer was lost.
    """
    which = AlertChange.status == AlertStatus.FAILED
    if alert_ids is not None:
        which = which & AlertChange.alert_id.in_(list(alert_ids))
    counts = dict.fromkeys(ChangeKind, 0)
    for kind, count in session.execute(select(AlertChange.kind, func.count()).where(which).group_by(AlertChange.kind)):
        counts[ChangeKind(kind)] = count
    session.execute(
        update(AlertChange)
        .where(which)
        .values(status=AlertStatus.PENDING, next_attempt_at=None, claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return counts


def release_changes(session: Session, change_ids: Collection[int]) -> None:
    """Give back claimed changes untried (Slack stopped answering this run)."""
    claims.release(session, AlertChange, change_ids)


def change_counts(session: Session) -> dict[str, int]:
    """How many edits and replies have each status; every status present, zero when none."""
    counts = {str(status): 0 for status in AlertStatus}
    for status, count in session.execute(select(AlertChange.status, func.count()).group_by(AlertChange.status)):
        counts[status] = count
    return counts


def widen_group_alerts(session: Session, item_id: int, decisions: Sequence[AlertDecision]) -> bool:
    """A copy's flags added to its group's alerts in the same channels; True when one gained a flag.

    The copy's text may say more than the head's (a flag the head did not carry): its
    alert shows that flag and sentence too.
    """
    if not decisions:
        return False
    group_id = session.scalar(select(Item.group_id).where(Item.id == item_id))
    if group_id is None:
        return False
    widened = False
    others = select(Item.id).where(Item.group_id == group_id, Item.id != item_id)
    for decision in decisions:
        query = select(Alert).where(Alert.item_id.in_(others), Alert.channel == decision.channel)
        for alert in session.scalars(query):
            if alert.flags is None:
                continue  # an older row shows every flag already
            missing = set(decision.flags) - set(alert.flags)
            if missing:
                alert.flags = sorted({*alert.flags, *missing})
                widened = True
    return widened
