"""The team's verdicts on alerts, and feeds muted from Slack (issue 19).

A verdict is one person's judgement of a release for the flags it is about: a
"Relevant" / "Not relevant" click on an alert (one row per alert per user, a later
click replacing theirs) or a release a flag missed, reported as relevant for it.
``feedback export`` turns them into the labeled lines ``flags test`` reads, so a rule
change is measured against the team's own judgement.

A muted feed is still polled and stored; the alert policy holds its alerts
(``HoldReason.MUTED``) while ``feeds.muted_until`` is ahead, and a held alert is never
posted later.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from urllib.parse import urlsplit

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.records import (
    FeedMute,
    RecordedVerdict,
    Verdict,
    VerdictCounts,
    VerdictExample,
    VerdictKind,
    VerdictMark,
    VerdictTally,
)
from bot.schema import Alert, Feed, Item, VerdictRow
from bot.urls import canonical_url

MISSED_CANDIDATES = 500  # stored URLs sharing the path that are compared canonicalised


# -- verdicts on alerts ---------------------------------------------------------------------


def alert_of_message(session: Session, channel_id: str, message_ts: str) -> int | None:
    """The alert pressbot posted as this Slack message, or None when it posted no such message."""
    query = select(Alert.id).where(Alert.slack_ts == message_ts, Alert.slack_channel_id == channel_id)
    return session.scalar(query.limit(1))


def _later(action_ts: str | None, than: str | None) -> bool:
    """Whether a click's action_ts comes after the one recorded (True when either is unknown)."""
    try:
        return action_ts is None or than is None or Decimal(action_ts) > Decimal(than)
    except InvalidOperation:
        return True


def record_verdict(
    session: Session, *, alert_id: int, user_id: str, relevant: bool, now: datetime, action_ts: str | None = None
) -> RecordedVerdict:
    """One user's verdict on an alert, replacing theirs; ``changed`` False for a repeat.

    Slack delivers a click again when its ack was late; the same click (same
    ``action_ts``), an older one arriving late, or the same verdict again changes nothing.
    """
    alert = session.get_one(Alert, alert_id)
    row = _verdict_row(session, alert_id, user_id)
    if row is None:
        item_flags = session.scalar(select(Item.flags).where(Item.id == alert.item_id)) or []
        row = VerdictRow(
            alert_id=alert_id, item_id=alert.item_id, kind=VerdictKind.ALERT, flags=sorted(alert.flags or item_flags),
            relevant=relevant, user_id=user_id, created_at=now, action_ts=action_ts,
        )
        try:
            with session.begin_nested():  # a retry racing this one inserted it first
                session.add(row)
        except IntegrityError:
            existing = _verdict_row(session, alert_id, user_id)
            assert existing is not None  # the unique constraint that refused ours names it
            return RecordedVerdict(_verdict(session, existing), changed=False)
        return RecordedVerdict(_verdict(session, row), changed=True)
    if row.relevant == relevant or not _later(action_ts, row.action_ts):
        return RecordedVerdict(_verdict(session, row), changed=False)
    row.relevant, row.created_at, row.action_ts = relevant, now, action_ts
    return RecordedVerdict(_verdict(session, row), changed=True)


def _verdict_row(session: Session, alert_id: int, user_id: str) -> VerdictRow | None:
    query = select(VerdictRow).where(VerdictRow.alert_id == alert_id, VerdictRow.user_id == user_id)
    return session.scalar(query.execution_options(populate_existing=True))


def verdict_marks(session: Session, alert_ids: Collection[int]) -> dict[int, tuple[VerdictMark, ...]]:
    """Each alert's verdicts as its message shows them, oldest first."""
    if not alert_ids:
        return {}
    marks: dict[int, list[VerdictMark]] = {}
    query = (
        select(VerdictRow.alert_id, VerdictRow.user_id, VerdictRow.relevant)
        .where(VerdictRow.alert_id.in_(list(alert_ids)))
        .order_by(VerdictRow.created_at, VerdictRow.id)
    )
    for alert_id, user_id, relevant in session.execute(query):
        if alert_id is not None:
            marks.setdefault(alert_id, []).append(VerdictMark(user_id=user_id, relevant=relevant))
    return {alert_id: tuple(found) for alert_id, found in marks.items()}


# -- misses ---------------------------------------------------------------------------------


def find_release(session: Session, url: str) -> int | None:
    """The stored release with this URL, as stored or canonicalised; the copy stored first."""
    exact = session.scalar(select(Item.id).where(Item.url == url.strip()).order_by(Item.id).limit(1))
    if exact is not None:
        return exact
    wanted = canonical_url(url)
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return None
    # Stored URLs sharing the host and path (any case of the host, any query) are the only candidates.
    stem = f"//{parts.netloc.rpartition('@')[2]}{parts.path.rstrip('/')}"
    query = (
        select(Item.id, Item.url)
        .where(func.lower(Item.url).contains(stem.lower(), autoescape=True))
        .order_by(Item.id)
        .limit(MISSED_CANDIDATES)
    )
    for item_id, stored in session.execute(query):
        if stored and canonical_url(stored) == wanted:
            return int(item_id)
    return None


def item_flags(session: Session, item_id: int) -> list[str]:
    return list(session.scalar(select(Item.flags).where(Item.id == item_id)) or [])


def record_missed(session: Session, *, item_id: int, flag: str, user_id: str, now: datetime) -> RecordedVerdict:
    """A release ``flag`` did not catch, reported relevant for it by ``user_id`` (once per user)."""
    rows = session.scalars(
        select(VerdictRow).where(
            VerdictRow.item_id == item_id, VerdictRow.user_id == user_id, VerdictRow.kind == VerdictKind.MISSED
        )
    )
    for row in rows:
        if row.flags == [flag]:
            return RecordedVerdict(_verdict(session, row), changed=False)
    row = VerdictRow(
        alert_id=None, item_id=item_id, kind=VerdictKind.MISSED, flags=[flag], relevant=True, user_id=user_id,
        created_at=now,
    )
    session.add(row)
    session.flush()
    return RecordedVerdict(_verdict(session, row), changed=True)


# -- reading them back ------------------------------------------------------------------------


def _verdict(session: Session, row: VerdictRow) -> Verdict:
    session.flush()
    item, feed_name = session.execute(
        select(Item, Feed.name).join(Feed, Item.feed_id == Feed.id).where(Item.id == row.item_id)
    ).one()
    return _to_verdict(row, item, feed_name)


def _to_verdict(row: VerdictRow, item: Item, feed_name: str) -> Verdict:
    return Verdict(
        verdict_id=row.id, kind=VerdictKind(row.kind), alert_id=row.alert_id, item_id=row.item_id,
        feed_name=feed_name, title=item.title, url=item.url, flags=tuple(row.flags), relevant=row.relevant,
        user_id=row.user_id, at=row.created_at,
    )


def _rows(session: Session, since: datetime | None, limit: int | None) -> list[tuple[VerdictRow, Item, str]]:
    query = (
        select(VerdictRow, Item, Feed.name)
        .join(Item, VerdictRow.item_id == Item.id)
        .join(Feed, Item.feed_id == Feed.id)
        .order_by(VerdictRow.created_at, VerdictRow.id)
        .limit(limit)
    )
    if since is not None:
        query = query.where(VerdictRow.created_at >= since)
    return [(row, item, feed_name) for row, item, feed_name in session.execute(query)]


def list_verdicts(session: Session, *, since: datetime | None = None, limit: int | None = None) -> list[Verdict]:
    """Every verdict (or those since a time), oldest first."""
    return [_to_verdict(row, item, feed_name) for row, item, feed_name in _rows(session, since, limit)]


def verdict_examples(session: Session, *, since: datetime | None = None) -> list[VerdictExample]:
    """The verdicts with the texts the flag rules read, for ``feedback export``."""
    return [
        VerdictExample(
            verdict=_to_verdict(row, item, feed_name), teaser=item.teaser, content=item.content,
            full_text=item.full_text, language=item.language,
        )
        for row, item, feed_name in _rows(session, since, None)
    ]


def verdict_counts(session: Session, flags: Iterable[str] = ()) -> dict[str, VerdictCounts]:
    """Per flag: alerts judged relevant, not relevant, and misses reported; every given flag present."""
    tally: dict[str, dict[str, int]] = {flag: {} for flag in flags}
    for kind, row_flags, relevant in session.execute(select(VerdictRow.kind, VerdictRow.flags, VerdictRow.relevant)):
        key = "missed" if kind == VerdictKind.MISSED else "relevant" if relevant else "not_relevant"
        for flag in row_flags or ():
            counts = tally.setdefault(flag, {})
            counts[key] = counts.get(key, 0) + 1
    return {flag: VerdictCounts(flag=flag, **counts) for flag, counts in sorted(tally.items())}


def verdict_tallies(session: Session, item_ids: Collection[int]) -> dict[int, VerdictTally]:
    """Per release: how many judged it relevant and not relevant (for digests); judged ones only."""
    if not item_ids:
        return {}
    query = (
        select(VerdictRow.item_id, VerdictRow.relevant, func.count())
        .where(VerdictRow.item_id.in_(list(item_ids)), VerdictRow.kind == VerdictKind.ALERT)
        .group_by(VerdictRow.item_id, VerdictRow.relevant)
    )
    found: dict[int, dict[str, int]] = {}
    for item_id, relevant, count in session.execute(query):
        found.setdefault(item_id, {})["relevant" if relevant else "not_relevant"] = count
    return {item_id: VerdictTally(item_id=item_id, **counts) for item_id, counts in found.items()}


def not_relevant_by_flag(session: Session, item_ids: Collection[int]) -> dict[str, int]:
    """Flag → how many of these releases someone marked "Not relevant" for it (each release once; digests).

    A verdict is the judging user's latest click (a later "Relevant" replaced it).
    """
    if not item_ids:
        return {}
    query = select(VerdictRow.item_id, VerdictRow.flags).where(
        VerdictRow.item_id.in_(list(item_ids)), VerdictRow.kind == VerdictKind.ALERT, VerdictRow.relevant.is_(False)
    )
    releases: dict[str, set[int]] = {}
    for item_id, flags in session.execute(query):
        for flag in flags or ():
            releases.setdefault(flag, set()).add(item_id)
    return {flag: len(found) for flag, found in sorted(releases.items())}


# -- mutes ----------------------------------------------------------------------------------


def _mute(feed: Feed) -> FeedMute | None:
    if feed.muted_until is None:
        return None
    return FeedMute(feed_id=feed.id, name=feed.name, muted_until=feed.muted_until, muted_by=feed.muted_by)


def feed_id_named(session: Session, name: str) -> int | None:
    """The feed with this name (exact, else the one matching in any case), or None."""
    exact = session.scalar(select(Feed.id).where(Feed.name == name))
    if exact is not None:
        return exact
    found = list(session.scalars(select(Feed.id).where(func.lower(Feed.name) == name.lower()).limit(2)))
    return found[0] if len(found) == 1 else None


def feed_of_alert(session: Session, alert_id: int) -> int:
    return session.execute(
        select(Item.feed_id).join(Alert, Alert.item_id == Item.id).where(Alert.id == alert_id)
    ).scalar_one()


def mute_feed(session: Session, feed_id: int, *, until: datetime, by: str) -> FeedMute:
    """Hold the feed's alerts until ``until``; a later mute replaces an earlier one."""
    feed = session.get_one(Feed, feed_id)
    feed.muted_until, feed.muted_by = until, by
    mute = _mute(feed)
    assert mute is not None
    return mute


def unmute_feed(session: Session, feed_id: int) -> FeedMute | None:
    """End the feed's mute now; returns the mute it had (None: it was not muted)."""
    feed = session.get_one(Feed, feed_id)
    before = _mute(feed)
    feed.muted_until, feed.muted_by = None, None
    return before


def feed_mute(session: Session, feed_id: int) -> FeedMute | None:
    """The feed's mute as stored (it may have ended: see ``FeedMute.active``)."""
    return _mute(session.get_one(Feed, feed_id))


def muted_feeds(session: Session, now: datetime) -> list[FeedMute]:
    """The feeds muted at ``now``, by name."""
    query = select(Feed).where(Feed.muted_until.is_not(None), Feed.muted_until > now).order_by(Feed.name)
    return [mute for feed in session.scalars(query) if (mute := _mute(feed)) is not None]
