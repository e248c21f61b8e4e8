"""Digests (issue 19): what a period holds, and its row in the ``digests`` outbox.

A row per (digest name, period start), unique: whoever inserts it first (a worker, a
one-off poll, ``pressbot digest --send``) owns the period, and a second insert is a
no-op, so a period is posted once however many workers race for it. The row then goes
pending → sent | failed through the outbox's steps (``bot.store.claims``: the claim,
``mark_digest_part`` committed just before Slack is called, ``record_digest_part``),
one message part at a time, so a part seen again with ``posting_started_at`` set may
already be in Slack, and deliver looks for it before posting it again.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.records import (
    AlertStatus,
    DeliveryOutcome,
    Digest,
    DigestPeriod,
    DigestRelease,
    DigestSpec,
    DigestToSend,
    HoldReason,
    RecordedDigest,
)
from bot.schema import Alert, DigestRow, Feed, FlagMatchRow, Item
from bot.store import claims
from bot.store.outbox import Backoff, record_failure
from bot.store.verdicts import verdict_tallies

SKIPPED = "skipped"  # a new digest's last ended period: recorded so the next one is its first
CLAIM_BATCH = 10  # digests claimed at once: a few per deployment, each posted in a few parts


# -- what a period holds ---------------------------------------------------------------------


def collect_digest(session: Session, spec: DigestSpec, period: DigestPeriod) -> Digest:
    """The flagged releases first seen in the period, newest first, with the team's verdicts."""
    date = func.coalesce(Item.published_at, Item.first_seen_at)
    flagged = select(FlagMatchRow.item_id).where(FlagMatchRow.flag.in_(spec.flags))
    # Not news: a new feed's back catalogue, releases back after a prune (bot.policy), and
    # a feed the team muted from Slack: its alerts are held for good, and so is its share here.
    held = [HoldReason.FIRST_PASS, HoldReason.PRUNED, HoldReason.MUTED]
    old = select(Alert.item_id).where(Alert.hold_reason.in_(held))
    query = (
        select(Item.id, Item.title, Item.url, Item.published_at, Item.first_seen_at, Item.flags, Feed.name)
        .join(Feed, Item.feed_id == Feed.id)
        .where(
            Item.first_seen_at >= period.start,
            Item.first_seen_at < period.end,
            # A group of copies is one release, listed as the copy stored first.
            or_(Item.group_id.is_(None), Item.group_id == Item.id),
            Item.id.in_(flagged),
            Item.id.not_in(old),
        )
        .order_by(date.desc(), Item.id.desc())
    )
    releases = []
    for item_id, title, url, published, first_seen, flags, feed_name in session.execute(query):
        carried = tuple(flag for flag in spec.flags if flag in (flags or ()))
        if carried:
            releases.append(DigestRelease(item_id, feed_name, title, url, published or first_seen, carried))
    verdicts = not_relevant_counts(session, releases)
    return Digest(spec=spec, period=period, releases=tuple(releases), not_relevant=verdicts)


def not_relevant_counts(session: Session, releases: Sequence[DigestRelease]) -> dict[str, int]:
    """flag → how many of its releases someone marked "Not relevant" (the verdict buttons, bot.store.verdicts).

    A verdict judges an alert, which shows every flag routed to its channel: a release
    marked not relevant counts under each of its flags here.
    """
    tallies = verdict_tallies(session, [release.item_id for release in releases])
    counts: dict[str, int] = {}
    for release in releases:
        tally = tallies.get(release.item_id)
        for flag in release.flags:
            counts[flag] = counts.get(flag, 0) + (1 if tally is not None and tally.not_relevant else 0)
    return counts


# -- the rows ----------------------------------------------------------------------------------


def newest_period_start(session: Session, name: str) -> datetime | None:
    """The start of the newest period recorded for the digest (posted, pending or skipped)."""
    return session.scalar(select(func.max(DigestRow.period_start)).where(DigestRow.name == name))


def recorded_period(session: Session, name: str, start: datetime) -> RecordedDigest | None:
    row = session.scalar(select(DigestRow).where(DigestRow.name == name, DigestRow.period_start == start))
    if row is None:
        return None
    return RecordedDigest(row.id, row.status, row.period_end, row.so_far, row.sent_at, row.last_error)


def record_period(
    session: Session,
    spec: DigestSpec,
    period: DigestPeriod,
    *,
    now: datetime,
    messages: Sequence[dict[str, Any]] | None,
    releases: int,
) -> int | None:
    """Insert the period's row (pending, or skipped without ``messages``); None when it exists already.

    A savepoint keeps the caller's transaction usable after the unique constraint
    refuses a second row: on PostgreSQL a racing worker's insert waits for the first
    to commit, then fails here.
    """
    row = DigestRow(
        name=spec.name, period_start=period.start, period_end=period.end, channel=spec.channel,
        status=AlertStatus.PENDING if messages is not None else SKIPPED, late=period.late, so_far=period.so_far,
        releases=releases, created_at=now, messages=list(messages) if messages is not None else None,
        parts_sent=0, attempts=0,
    )
    try:
        with session.begin_nested():
            session.add(row)
    except IntegrityError:
        return None
    return row.id


def claim_digests(
    session: Session, *, worker: str, now: datetime, lease_seconds: float, names: Collection[str]
) -> list[DigestToSend]:
    """Claim the due pending digests of these names for ``worker``, as alerts are claimed (bot.store.claims)."""
    candidates = select(DigestRow.id).where(DigestRow.name.in_(list(names)))
    claimed = claims.claim_due(session, DigestRow, candidates, worker=worker, now=now, lease_seconds=lease_seconds,
                               limit=CLAIM_BATCH)
    rows = session.scalars(select(DigestRow).where(DigestRow.id.in_(claimed)).order_by(DigestRow.id))
    return [_to_send(row) for row in rows]


def _to_send(row: DigestRow) -> DigestToSend:
    return DigestToSend(
        digest_id=row.id, name=row.name, channel=row.channel, messages=tuple(row.messages or ()),
        parts_sent=row.parts_sent, slack_ts=row.slack_ts, channel_id=row.slack_channel_id,
        outcome_unknown=row.posting_started_at is not None, posting_started_at=row.posting_started_at,
    )


def mark_digest_part(session: Session, digest_id: int, now: datetime, *, worker: str, lease_seconds: float) -> bool:
    """Note that ``worker`` is about to post the next part; False when its claim was lost."""
    return claims.mark_attempt(session, DigestRow, digest_id, now, worker=worker, lease_seconds=lease_seconds)


def record_digest_part(session: Session, outcome: DeliveryOutcome, *, now: datetime, backoff: Backoff) -> str:
    """Store Slack's answer for the next part (``outcome.alert_id`` is the digest's id); the new status.

    A sent part moves ``parts_sent`` on and keeps the claim for the next part; the
    last one makes the row sent. A failure releases the claim, as for an alert.
    """
    row = session.get(DigestRow, outcome.alert_id)
    if row is None or row.status != AlertStatus.PENDING:
        return row.status if row is not None else "gone"
    if not outcome.sent:
        row.claimed_by, row.claimed_until = None, None
        record_failure(row, outcome, now=now, backoff=backoff)
        return row.status
    if row.parts_sent == 0:
        row.slack_ts = outcome.slack_ts
        row.slack_channel_id = outcome.channel_id or row.slack_channel_id
    row.parts_sent += 1
    row.posting_started_at, row.last_error, row.next_attempt_at = None, None, None
    if row.parts_sent >= len(row.messages or ()):
        row.status, row.sent_at = AlertStatus.SENT, now
        row.claimed_by, row.claimed_until = None, None
    return row.status


def release_digests(session: Session, digest_ids: Collection[int]) -> None:
    """Give back claimed digests untried (Slack stopped answering this run)."""
    claims.release(session, DigestRow, digest_ids)


def retry_failed_digests(session: Session, name: str) -> int:
    """The digest's failed periods back to pending, due now; how many. Their parts already in Slack stay posted.

    The operator has fixed the cause (token, channel, membership) and, for a part whose
    earlier post could not be checked, looked at the channel: it is posted anew.
    """
    result = session.execute(
        update(DigestRow)
        .where(DigestRow.name == name, DigestRow.status == AlertStatus.FAILED)
        .values(status=AlertStatus.PENDING, next_attempt_at=None, posting_started_at=None, claimed_by=None,
                claimed_until=None)
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
