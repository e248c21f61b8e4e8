"""Feed schedule and multi-worker claims: who polls which feed, when next, and health notices.

A claim is ``claimed_by``/``claimed_until`` on the feed row, set by a conditional
UPDATE that only succeeds on a free row (unclaimed, expired, or already ours). On
PostgreSQL the candidate rows are first read ``FOR UPDATE SKIP LOCKED`` so that two
workers claiming at once each take different feeds instead of queueing on the same
rows; on SQLite, BEGIN IMMEDIATE (bot.store) serialises claimers and the conditional
UPDATE alone is the lease. A worker that dies leaves claims that expire at
``claimed_until``. Callers own the transaction and commit a claim before fetching.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, func, or_, select, text, update
from sqlalchemy.exc import NoResultFound
from sqlalchemy.orm import Session

from bot.records import AlertStatus, FeedHealth, HealthNotice, LastPass, NoticeKind, PassCounts
from bot.schema import Alert, Feed, PassRecord
from bot.store import is_postgresql

REMOVED = "removed from configuration"
# pg_advisory_xact_lock key for syncing the feed list ("pressbot" in ASCII, as a number).
_SYNC_LOCK_KEY = 0x7072657373626F74


def lock_feed_list(session: Session) -> None:
    """Serialise feed-list syncs: two workers starting at once would insert the same names.

    SQLite needs nothing: BEGIN IMMEDIATE already holds the write lock.
    """
    if is_postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SYNC_LOCK_KEY})


def _free(worker: str, now: datetime) -> ColumnElement[bool]:
    return or_(Feed.claimed_by.is_(None), Feed.claimed_until < now, Feed.claimed_by == worker)


def _due(now: datetime) -> ColumnElement[bool]:
    return or_(Feed.next_check_at.is_(None), Feed.next_check_at <= now)


def _claim(session: Session, candidates: Sequence[int], worker: str, now: datetime, lease: float) -> list[int]:
    if not candidates:
        return []
    claimed = session.scalars(
        update(Feed)
        .where(Feed.id.in_(candidates), Feed.enabled.is_(True), _free(worker, now))
        .values(claimed_by=worker, claimed_until=now + timedelta(seconds=lease))
        .returning(Feed.id)
        .execution_options(synchronize_session=False)
    ).all()
    return sorted(claimed)


def _skip_locked(session: Session, query: object) -> object:
    if is_postgresql(session):
        return query.with_for_update(skip_locked=True)  # type: ignore[attr-defined]
    return query


def claim_due_feeds(
    session: Session, *, worker: str, now: datetime, lease_seconds: float, limit: int
) -> list[int]:
    """Claim up to ``limit`` enabled feeds whose next check is due, most overdue first."""
    query = (
        select(Feed.id)
        .where(Feed.enabled.is_(True), _due(now), _free(worker, now))
        .order_by(Feed.next_check_at.is_not(None), Feed.next_check_at, Feed.id)
        .limit(limit)
    )
    candidates = list(session.scalars(_skip_locked(session, query)))  # type: ignore[call-overload]
    return _claim(session, candidates, worker, now, lease_seconds)


def claim_feeds(
    session: Session,
    *,
    worker: str,
    now: datetime,
    lease_seconds: float,
    feed_ids: Collection[int] | None = None,
) -> list[int]:
    """Claim the given enabled feeds (or all), due or not: a one-off poll skips what a worker holds."""
    query = select(Feed.id).where(Feed.enabled.is_(True), _free(worker, now)).order_by(Feed.id)
    if feed_ids is not None:
        query = query.where(Feed.id.in_(list(feed_ids)))
    candidates = list(session.scalars(_skip_locked(session, query)))  # type: ignore[call-overload]
    return _claim(session, candidates, worker, now, lease_seconds)


def renew_claims(session: Session, *, worker: str, now: datetime, lease_seconds: float) -> int:
    """Extend this worker's live claims (a long pass must not lose its feeds to another worker)."""
    result = session.execute(
        update(Feed)
        .where(Feed.claimed_by == worker, Feed.claimed_until >= now)
        .values(claimed_until=now + timedelta(seconds=lease_seconds))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]


def release_claims(session: Session, worker: str) -> int:
    """Give back every feed and untried alert this worker holds (shutdown, or after a pass)."""
    feeds = session.execute(
        update(Feed)
        .where(Feed.claimed_by == worker)
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    # Only alerts not being posted: one with posting_started_at may be in Slack already,
    # and its lease must run out before another worker checks the channel history.
    session.execute(
        update(Alert)
        .where(Alert.claimed_by == worker, Alert.status == AlertStatus.PENDING, Alert.posting_started_at.is_(None))
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(feeds.rowcount)  # type: ignore[attr-defined]


def enabled_count(session: Session) -> int:
    return int(session.scalar(select(func.count()).select_from(Feed).where(Feed.enabled.is_(True))) or 0)


def failing_feed_ids(session: Session, feed_ids: Collection[int]) -> set[int]:
    if not feed_ids:
        return set()
    query = select(Feed.id).where(Feed.id.in_(list(feed_ids)), Feed.consecutive_failures > 0)
    return set(session.scalars(query))


def set_schedule(
    session: Session,
    feed_id: int,
    *,
    worker: str,
    next_check_at: datetime | None,
    disabled_reason: str | None = None,
) -> None:
    """Record a feed's next check (and disable it, with a reason); release this worker's claim."""
    values: dict[str, object] = {"next_check_at": next_check_at}
    if disabled_reason is not None:
        values.update(enabled=False, disabled_reason=disabled_reason)
    session.execute(update(Feed).where(Feed.id == feed_id).values(**values))
    session.execute(
        update(Feed)
        .where(Feed.id == feed_id, Feed.claimed_by == worker)
        .values(claimed_by=None, claimed_until=None)
        .execution_options(synchronize_session=False)
    )


def _health(feed: Feed) -> FeedHealth:
    return FeedHealth(
        feed_id=feed.id,
        name=feed.name,
        enabled=feed.enabled,
        disabled_reason=feed.disabled_reason,
        interval_seconds=feed.interval_seconds,
        last_success_at=feed.last_success_at,
        last_error=feed.last_error,
        last_error_at=feed.last_error_at,
        consecutive_failures=feed.consecutive_failures or 0,
        failing_since=feed.failing_since,
        next_check_at=feed.next_check_at,
        claimed_by=feed.claimed_by,
        claimed_until=feed.claimed_until,
        muted_until=feed.muted_until,
        muted_by=feed.muted_by,
    )


def feed_health(session: Session, feed_id: int) -> FeedHealth:
    return _health(session.get_one(Feed, feed_id, populate_existing=True))


def feed_healths(session: Session, feed_ids: Sequence[int]) -> dict[int, FeedHealth]:
    """``feed_health`` of each feed, by id, read in a few queries; a missing feed raises as there."""
    found: dict[int, FeedHealth] = {}
    for start in range(0, len(feed_ids), 500):  # bound parameters per IN list (SQLite's 999 before 3.32)
        query = select(Feed).where(Feed.id.in_(feed_ids[start : start + 500])).execution_options(populate_existing=True)
        found.update((feed.id, _health(feed)) for feed in session.scalars(query))
    missing = set(feed_ids) - set(found)
    if missing:
        raise NoResultFound(f"feeds {sorted(missing)[:5]} are gone")
    return found


def all_feed_health(session: Session, *, include_removed: bool = False) -> list[FeedHealth]:
    query = select(Feed).order_by(Feed.name)
    if not include_removed:
        query = query.where(or_(Feed.disabled_reason.is_(None), Feed.disabled_reason != REMOVED))
    return [_health(feed) for feed in session.scalars(query)]


def next_due_at(session: Session) -> datetime | None:
    """When the soonest enabled feed is due (None: no feeds, or one never polled is due now)."""
    return session.scalar(select(func.min(Feed.next_check_at)).where(Feed.enabled.is_(True)))


def _notice(feed: Feed, kind: NoticeKind) -> HealthNotice:
    return HealthNotice(
        feed_id=feed.id,
        name=feed.name,
        kind=kind,
        error=feed.disabled_reason if kind == NoticeKind.DISABLED else feed.last_error,
        failing_since=feed.failing_since,
        notice_at=feed.health_notice_at,
    )


def due_health_notices(session: Session, *, now: datetime, notice_after: float) -> list[HealthNotice]:
    """Feeds whose health changed in a way operations must hear about, once each.

    ``health_notice_at`` is set while a "failing" notice stands and cleared by the
    "recovered" one, so a feed failing for weeks is reported once, not per poll. A
    disabled feed is reported once more, after whatever notice came before it.
    """
    failing = and_(
        Feed.enabled.is_(True),
        Feed.failing_since <= now - timedelta(seconds=notice_after),
        Feed.health_notice_at.is_(None),
    )
    recovered = and_(Feed.enabled.is_(True), Feed.failing_since.is_(None), Feed.health_notice_at.is_not(None))
    disabled = and_(
        Feed.enabled.is_(False),
        Feed.disabled_reason.is_not(None),
        Feed.disabled_reason != REMOVED,
        Feed.failing_since.is_not(None),
        or_(Feed.health_notice_at.is_(None), Feed.health_notice_at < Feed.last_error_at),
    )
    notices = []
    kinds = ((NoticeKind.FAILING, failing), (NoticeKind.RECOVERED, recovered), (NoticeKind.DISABLED, disabled))
    for kind, condition in kinds:
        notices += [_notice(feed, kind) for feed in session.scalars(select(Feed).where(condition))]
    return notices


def _as_read(notice: HealthNotice) -> ColumnElement[bool]:
    if notice.notice_at is None:
        return Feed.health_notice_at.is_(None)
    return Feed.health_notice_at == notice.notice_at


def claim_health_notice(session: Session, notice: HealthNotice, now: datetime) -> bool:
    """Mark the notice as sent before posting; False when another worker got there first."""
    value = None if notice.kind == NoticeKind.RECOVERED else now
    result = session.execute(
        update(Feed)
        .where(Feed.id == notice.feed_id, _as_read(notice))
        .values(health_notice_at=value)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def unclaim_health_notice(session: Session, notice: HealthNotice) -> None:
    """The post failed: put the bookkeeping back so the next run tries again."""
    session.execute(
        update(Feed)
        .where(Feed.id == notice.feed_id)
        .values(health_notice_at=notice.notice_at)
        .execution_options(synchronize_session=False)
    )


def record_pass(
    session: Session, *, started_at: datetime, finished_at: datetime | None, worker: str, summary: dict[str, Any]
) -> None:
    """Keep what a pass did (``summary``: the ``pressbot poll --json`` object) for ``pressbot status``."""
    session.add(PassRecord(started_at=started_at, finished_at=finished_at, worker=worker, summary=summary))


def last_pass(session: Session) -> LastPass | None:
    record = session.scalars(select(PassRecord).order_by(PassRecord.id.desc()).limit(1)).first()
    if record is None:
        return None
    summary = record.summary or {}
    # A record written before a count existed has none of it: zero.
    counts = PassCounts(**{count.name: int(summary.get(count.name) or 0) for count in fields(PassCounts)})
    return LastPass(started_at=record.started_at, finished_at=record.finished_at, worker=record.worker, counts=counts)
