"""Leased claims on outbox rows: the alerts (bot.store.outbox), their changes (bot.store.changes)
and the digests (bot.store.digests).

All three tables hold work that must reach Slack exactly once, and both are claimed the
same way, written here once: read the due, free candidates (``FOR UPDATE SKIP
LOCKED`` on PostgreSQL, so two workers claiming at once take different rows instead
of queueing on the same ones; SQLite's BEGIN IMMEDIATE serialises claimers), then a
conditional ``UPDATE … RETURNING`` that re-checks due and free: that UPDATE is the
lease either way, and a claim by a worker that died expires at ``claimed_until``.
``mark_attempt`` is the next committed write, just before Slack is called.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, Select, and_, or_, update
from sqlalchemy.orm import Session

from bot.records import AlertStatus
from bot.schema import Alert, AlertChange, DigestRow
from bot.store import is_postgresql

OutboxTable = type[Alert] | type[AlertChange] | type[DigestRow]


def due(table: OutboxTable, now: datetime) -> ColumnElement[bool]:
    """Pending, and its backoff (if any) over."""
    return and_(
        table.status == AlertStatus.PENDING,
        or_(table.next_attempt_at.is_(None), table.next_attempt_at <= now),
    )


def free(table: OutboxTable, worker: str, now: datetime) -> ColumnElement[bool]:
    """Unclaimed, its lease expired, or already ``worker``'s."""
    return or_(table.claimed_until.is_(None), table.claimed_until < now, table.claimed_by == worker)


def claim_due(
    session: Session,
    table: OutboxTable,
    candidates: Select[int],
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    limit: int,
    exclude: Collection[int] = (),
) -> list[int]:
    """Claim for ``worker`` up to ``limit`` due, free rows of ``candidates``; their ids in order.

    ``candidates`` selects ``table.id`` with any extra condition (a change waits for
    its alert's ts); ``exclude``: rows this run already handled or put back.
    """
    query = candidates.where(due(table, now), free(table, worker, now)).order_by(table.id).limit(limit)
    if exclude:
        query = query.where(table.id.not_in(list(exclude)))
    if is_postgresql(session):
        # OF the table: a candidate query may join another table, whose rows stay unlocked.
        query = query.with_for_update(of=table, skip_locked=True)
    found = list(session.scalars(query))
    if not found:
        return []
    claimed = session.scalars(
        update(table)
        .where(table.id.in_(found), due(table, now), free(table, worker, now))
        .values(claimed_by=worker, claimed_until=now + timedelta(seconds=lease_seconds))
        .returning(table.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(claimed)


def mark_attempt(
    session: Session, table: OutboxTable, row_id: int, now: datetime, *, worker: str, lease_seconds: float
) -> bool:
    """Note that ``worker`` is about to call Slack for the row; False when the claim is no longer its own.

    Committed before Slack is called, so a crash after Slack accepts leaves a trace
    (``posting_started_at``) that makes the next attempt look first.
    """
    result = session.execute(
        update(table)
        .where(table.id == row_id, table.status == AlertStatus.PENDING, table.claimed_by == worker)
        .values(
            posting_started_at=now,
            attempts=table.attempts + 1,
            claimed_until=now + timedelta(seconds=lease_seconds),
        )
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release(
    session: Session, table: OutboxTable, row_ids: Collection[int], *, not_before: datetime | None = None
) -> None:
    """Give claimed rows back untried (the run stopped); optionally not due before a time."""
    if not row_ids:
        return
    values: dict[str, object] = {"claimed_by": None, "claimed_until": None}
    if not_before is not None:
        values["next_attempt_at"] = not_before
    session.execute(
        update(table)
        .where(table.id.in_(list(row_ids)), table.status == AlertStatus.PENDING)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
