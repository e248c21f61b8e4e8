"""Groups of copies: each new release joins the group of another feed's copy of it (issue 18).

A copy is found by the same global key or link first, then by near-identical main
text: its MinHash band keys (bot.group) looked up in ``item_bands``, each candidate's
exact score checked on its stored text. Only releases other feeds stored within the
window count, a copy joins a group when it matches any member, and a group never holds
two releases of one feed (a feed's own items are its identity). The head is the copy
stored first; ``items.group_id`` holds its id on every member.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, false, select, text, update
from sqlalchemy.orm import Session

from bot import group
from bot.records import GroupCopy, StoredItem
from bot.schema import Feed, Item, ItemBand
from bot.store import is_postgresql
from bot.store.items import is_global_key

# Any constant: the key of the one PostgreSQL advisory lock that serialises grouping.
_GROUPING_LOCK = 18_0018


@dataclass(frozen=True, slots=True)
class _Candidate:
    item_id: int
    feed_id: int
    group_id: int | None

    @property
    def group(self) -> int:
        return self.group_id if self.group_id is not None else self.item_id


def lock_for_grouping(session: Session) -> None:
    """Serialise the transactions that group (PostgreSQL; SQLite has one writer anyway).

    Two workers storing two copies at once would each miss the other's uncommitted row
    and both alert; held from the start of a feed's transaction to its commit, before
    any row lock, so it cannot deadlock with them.
    """
    if is_postgresql(session):
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _GROUPING_LOCK})


def group_new_items(
    session: Session, items: Sequence[StoredItem], *, window: timedelta, similarity: float, now: datetime
) -> int:
    """Store each new release's band keys and put it in its copies' group; returns how many joined one."""
    if window <= timedelta(0):
        return 0
    cutoff = now - window
    joined = 0
    for item in items:
        hashes = group.shingles(group.main_text(item.teaser, item.content, item.full_text))
        keys = group.band_keys(hashes)
        session.add_all(ItemBand(item_id=item.item_id, band_key=key) for key in keys)
        exact = _exact_copies(session, item, cutoff)
        candidates = exact or _near_copies(session, item, hashes, keys, cutoff, similarity)
        target = _group_to_join(session, item, candidates)
        if target is not None:
            _join(session, item.item_id, target)
            joined += 1
    return joined


def _recent_other_feeds(item: StoredItem, cutoff: datetime) -> ColumnElement[bool]:
    return (Item.feed_id != item.feed_id) & (Item.first_seen_at >= cutoff) & (Item.id != item.item_id)


def _exact_copies(session: Session, item: StoredItem, cutoff: datetime) -> list[_Candidate]:
    same = Item.key == item.key if is_global_key(item.key) else false()
    if item.url:
        same = same | (Item.url == item.url)
    query = select(Item.id, Item.feed_id, Item.group_id).where(_recent_other_feeds(item, cutoff), same)
    return [_Candidate(*row) for row in session.execute(query)]


def _near_copies(
    session: Session,
    item: StoredItem,
    hashes: frozenset[int],
    keys: Sequence[int],
    cutoff: datetime,
    similarity: float,
) -> list[_Candidate]:
    if not keys:
        return []
    query = (
        select(Item.id, Item.feed_id, Item.group_id, Item.teaser, Item.content, Item.full_text)
        .where(_recent_other_feeds(item, cutoff))
        .where(Item.id.in_(select(ItemBand.item_id).where(ItemBand.band_key.in_(list(keys)))))
    )
    found = []
    for item_id, feed_id, group_id, teaser, content, full_text in session.execute(query):
        if group.similarity(hashes, group.shingles(group.main_text(teaser, content, full_text))) >= similarity:
            found.append(_Candidate(item_id, feed_id, group_id))
    return found


def _group_to_join(session: Session, item: StoredItem, candidates: Sequence[_Candidate]) -> _Candidate | None:
    """The oldest group among the candidates that holds no release of this item's feed yet."""
    for candidate in sorted(candidates, key=lambda found: (found.group, found.item_id)):
        if candidate.group_id is None:
            return candidate
        same_feed = select(Item.id).where(Item.group_id == candidate.group_id, Item.feed_id == item.feed_id)
        if session.execute(same_feed.limit(1)).first() is None:
            return candidate
    return None


def _join(session: Session, item_id: int, target: _Candidate) -> None:
    head = target.group
    if target.group_id is None:
        session.execute(
            update(Item).where(Item.id == head).values(group_id=head).execution_options(synchronize_session=False)
        )
    session.execute(
        update(Item).where(Item.id == item_id).values(group_id=head).execution_options(synchronize_session=False)
    )
    # The rows kept in this session for flagging must see the group too.
    for row in session.info.get("pressbot_rows", []):
        if row.id in (item_id, head):
            row.group_id = head


def copies_of(session: Session, item_ids: Sequence[int]) -> dict[int, tuple[GroupCopy, ...]]:
    """For each release, the other copies of its group (head first, then in the order stored)."""
    query = select(Item.id, Item.group_id).where(Item.id.in_(list(item_ids)), Item.group_id.is_not(None))
    groups = {item_id: group_id for item_id, group_id in session.execute(query) if group_id is not None}
    if not groups:
        return {}
    members = session.execute(
        select(Item.id, Item.group_id, Feed.name, Item.url)
        .join(Feed, Item.feed_id == Feed.id)
        .where(Item.group_id.in_(set(groups.values())))
        .order_by(Item.id)
    ).all()
    return {
        item_id: tuple(
            GroupCopy(member_id, feed_name, url)
            for member_id, member_group, feed_name, url in members
            if member_group == group_id and member_id != item_id
        )
        for item_id, group_id in groups.items()
    }
