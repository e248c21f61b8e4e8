"""Groups of copies: each new release joins the group of another feed's copy of it (issue 18).

A copy is found by the same global key or link first, then by near-identical main
text: its MinHash band keys (bot.group) looked up in ``item_bands``, each candidate's
exact score checked on its stored text. Only releases other feeds stored within the
window count, a copy joins a group when it matches any member, and a group never holds
two releases of one feed (a feed's own items are its identity). The head is the copy
stored first; ``items.group_id`` holds its id on every member.
"""

from __future__ import annotations

from array import array
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, bindparam, delete, select, text, true, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from bot import group, tables
from bot.records import GroupCopy, StoredItem
from bot.schema import Feed, Item, ItemBand
from bot.store import is_postgresql
from bot.store.items import is_global_key, kept_rows

# Any constant: the key of the one PostgreSQL advisory lock that serialises grouping.
_GROUPING_LOCK = 18_0018
# Bound parameters per IN list, as bot.store.items (SQLite's 999 before 3.32).
_PER_QUERY = 500
_SCORED_PER_RELEASE = 16  # candidates whose text is compared, most shared bands first
# A candidate shares at least this many band keys. Every grouped pair of
# tests/data/group-pairs.jsonl shares 5 or more of the 21, different releases 0 or 1; at
# Jaccard 0.66 (the most boilerplate-laden copy there) P(≥ 2) is 0.992 against 0.999 for
# P(≥ 1), while a chance candidate (Jaccard 0.1) drops from 2% of pairs to 0.02%.
_MIN_SHARED_BANDS = 2


# Shingles of the main texts grouping saw last, by the text's digest: a pass's releases
# are each other's candidates, and shingling a text again costs ~1 ms. Sorted arrays
# (8 bytes a shingle, a frozenset's is ~10 times that) keep the cache to a few MB.
_SHINGLES_KEPT = 2048
_kept_shingles: dict[bytes, array[int]] = {}


def _shingles(text: str) -> frozenset[int]:
    digest = group.text_digest(text)
    kept = _kept_shingles.get(digest)
    if kept is not None:
        return frozenset(kept)
    shingles = group.shingles(text)
    if len(_kept_shingles) >= _SHINGLES_KEPT:
        _kept_shingles.pop(next(iter(_kept_shingles)), None)
    _kept_shingles[digest] = array("Q", sorted(shingles))
    return shingles


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
    session: Session,
    items: Sequence[StoredItem],
    *,
    window: timedelta,
    similarity: float,
    now: datetime,
    band_keys: Mapping[str, tuple[bytes, Sequence[int]]] | None = None,
    changed: Sequence[StoredItem] = (),
) -> list[int]:
    """Store each new release's band keys and put it in its copies' group; returns the ids that joined one.

    A feed's new releases are looked up together (a few queries per feed, not per
    release), then joined one by one, each seeing the joins before it. ``band_keys``:
    by item key, the digest of a main text and its keys, worked out beside the parse
    (``bot.prepare``); used while the stored main text is still that one.

    ``changed``: this feed's stored releases whose text changed. Their band keys are
    made anew from it (a short notice edited into the full release: copies of the full
    text must find it), and those in no group yet are looked up as new ones are: a
    release stored from its teaser, whose page was read on a later pass, is a copy
    arriving late.
    """
    if window <= timedelta(0) or not (items or changed):
        return []
    cutoff = now - window
    main_texts = {item.item_id: group.main_text(item.teaser, item.content, item.full_text) for item in items}
    keys: dict[int, Sequence[int]] = {}
    for item in items:
        known, text = (band_keys or {}).get(item.key), main_texts[item.item_id]
        same = known is not None and known[0] == group.text_digest(text)
        keys[item.item_id] = known[1] if known is not None and same else group.band_keys(_shingles(text))
    looked_up = list(items)
    if changed:
        for chunk in _chunks([item.item_id for item in changed]):
            session.execute(delete(ItemBand).where(ItemBand.item_id.in_(chunk)))
        ungrouped = _ungrouped(session, [item.item_id for item in changed])
        for item in changed:
            main_texts[item.item_id] = group.main_text(item.teaser, item.content, item.full_text)
            keys[item.item_id] = group.band_keys(_shingles(main_texts[item.item_id]))
        looked_up += [item for item in changed if item.item_id in ungrouped]
    # One feed's releases (a pass's call) are never each other's copies: looked up before
    # their own keys are stored, they do not find themselves.
    one_feed = len({item.feed_id for item in looked_up}) <= 1
    if not one_feed:
        _insert_bands(session, keys)
    exact = _exact_copies(session, looked_up, cutoff)
    near = _near_copies(session, looked_up, main_texts, keys, cutoff, similarity)
    if one_feed:
        _insert_bands(session, keys)
    found = {item.item_id: exact.get(item.item_id) or near.get(item.item_id, []) for item in looked_up}
    if not any(found.values()):
        return []
    joined: list[int] = []
    heads: dict[int, int] = {}  # candidate → the head it got during this call
    # group → the feeds it holds a release of, kept up to date with this call's joins
    members = _group_feeds(session, {c.group_id for cs in found.values() for c in cs if c.group_id is not None})
    joins: list[tuple[int, int]] = []  # (release, head), written together
    for item in looked_up:
        candidates = [replace(c, group_id=heads.get(c.item_id, c.group_id)) for c in found[item.item_id]]
        target = _group_to_join(session, item, candidates, members)
        if target is None:
            continue
        if target.group_id is None:  # the candidate becomes the head of a new group, alone in it so far
            members[target.group] = {target.feed_id}
            joins.append((target.item_id, target.group))
        members[target.group].add(item.feed_id)
        joins.append((item.item_id, target.group))
        heads[target.item_id] = heads[item.item_id] = target.group
        joined.append(item.item_id)
    _join_all(session, joins)
    return joined


def _ungrouped(session: Session, item_ids: Sequence[int]) -> set[int]:
    found: set[int] = set()
    for chunk in _chunks(item_ids):
        found.update(session.scalars(select(Item.id).where(Item.id.in_(chunk), Item.group_id.is_(None))))
    return found


def _group_feeds(session: Session, group_ids: set[int]) -> dict[int, set[int]]:
    feeds: dict[int, set[int]] = {group_id: set() for group_id in group_ids}
    for chunk in _chunks(sorted(group_ids)):
        query = select(Item.group_id, Item.feed_id).where(Item.group_id.in_(chunk)).distinct()
        for group_id, feed_id in session.execute(query):
            feeds[group_id].add(feed_id)  # type: ignore[index]  # group_id IN (…) is never NULL
    return feeds


def _insert_bands(session: Session, keys: Mapping[int, Sequence[int]]) -> None:
    bands = [(item_id, key) for item_id, found in keys.items() for key in found]
    if not bands:
        return
    # The driver's executemany with plain tuples: through SQLAlchemy's parameter handling
    # the 8,400 rows of a 400-release pass took 0.07 s of CPU, this 0.025 s.
    connection = session.connection()
    marker = "?" if connection.dialect.paramstyle == "qmark" else "%s"
    connection.exec_driver_sql(f"INSERT INTO item_bands (item_id, band_key) VALUES ({marker}, {marker})", bands)


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _PER_QUERY):
        yield list(values[start : start + _PER_QUERY])


def _exact_copies(session: Session, items: Sequence[StoredItem], cutoff: datetime) -> dict[int, list[_Candidate]]:
    """Per release, the other feeds' recent releases with its global key or its link."""
    keys = sorted({item.key for item in items if is_global_key(item.key)})
    urls = sorted({item.url for item in items if item.url})
    # value (a key or a link; an IN list never matches NULL) → (release, feed, group)
    by_key: dict[str | None, list[tuple[int, int, int | None]]] = {}
    by_url: dict[str | None, list[tuple[int, int, int | None]]] = {}
    others = _other_feeds(items)
    for column, values, found_by in ((Item.key, keys, by_key), (Item.url, urls, by_url)):
        for chunk in _chunks(values):
            query = select(column, Item.id, Item.feed_id, Item.group_id).where(
                Item.first_seen_at >= cutoff, column.in_(chunk), others
            )
            for value, item_id, feed_id, group_id in session.execute(query):
                found_by.setdefault(value, []).append((item_id, feed_id, group_id))
    found: dict[int, list[_Candidate]] = {}
    for item in items:
        rows = {row[0]: row for row in by_key.get(item.key, ()) if is_global_key(item.key)}
        rows.update((row[0], row) for row in by_url.get(item.url, ()) if item.url)
        for item_id, feed_id, group_id in sorted(rows.values()):
            if feed_id != item.feed_id and item_id != item.item_id:
                found.setdefault(item.item_id, []).append(_Candidate(item_id, feed_id, group_id))
    return found


def _other_feeds(items: Sequence[StoredItem]) -> ColumnElement[bool]:
    """Releases of other feeds than the one these come from (a feed's own are never its copies)."""
    feeds = {item.feed_id for item in items}
    return Item.feed_id != feeds.pop() if len(feeds) == 1 else true()


def _near_copies(
    session: Session,
    items: Sequence[StoredItem],
    main_texts: Mapping[int, str],
    keys: Mapping[int, Sequence[int]],
    cutoff: datetime,
    similarity: float,
) -> dict[int, list[_Candidate]]:
    """Per release, the other feeds' recent releases sharing a band key whose text scores high enough."""
    wanted = sorted({key for item in items for key in keys[item.item_id]})
    by_key: dict[int, list[_Candidate]] = {}
    others = _other_feeds(items)
    for chunk in _chunks(wanted):
        query = (
            select(ItemBand.band_key, Item.id, Item.feed_id, Item.group_id)
            .join(Item, ItemBand.item_id == Item.id)
            .where(ItemBand.band_key.in_(chunk), Item.first_seen_at >= cutoff, others)
        )
        for band_key, item_id, feed_id, group_id in session.execute(query):
            by_key.setdefault(band_key, []).append(_Candidate(item_id, feed_id, group_id))
    pairs: dict[int, dict[int, _Candidate]] = {}
    for item in items:
        shared: Counter[int] = Counter()
        found: dict[int, _Candidate] = {}
        for key in keys[item.item_id]:
            for candidate in by_key.get(key, ()):
                if candidate.feed_id != item.feed_id and candidate.item_id != item.item_id:
                    shared[candidate.item_id] += 1
                    found[candidate.item_id] = candidate
        # Texts of one template (a newsroom's boilerplate, a benchmark's vocabulary) share
        # bands with nearly every release: scoring each was quadratic (a 2,000-release cold
        # pass took 124 s instead of 7). A copy shares the most bands, so only the best few
        # are scored.
        best = [(found_id, count) for found_id, count in shared.most_common(_SCORED_PER_RELEASE)
                if count >= _MIN_SHARED_BANDS]  # fmt: skip
        if best:
            pairs[item.item_id] = {candidate_id: found[candidate_id] for candidate_id, _ in best}
    texts = _shingles_of(session, {candidate for found in pairs.values() for candidate in found})
    return {
        item_id: [
            candidate
            for candidate_id, candidate in sorted(found.items())
            if group.similarity(_shingles(main_texts[item_id]), texts[candidate_id]) >= similarity
        ]
        for item_id, found in pairs.items()
    }


def _shingles_of(session: Session, item_ids: set[int]) -> dict[int, frozenset[int]]:
    texts: dict[int, frozenset[int]] = {}
    for chunk in _chunks(sorted(item_ids)):
        query = select(Item.id, Item.teaser, Item.content, Item.full_text).where(Item.id.in_(chunk))
        for item_id, teaser, content, full_text in session.execute(query):
            texts[item_id] = _shingles(group.main_text(teaser, content, full_text))
    return texts


def _group_to_join(
    session: Session, item: StoredItem, candidates: Sequence[_Candidate], members: dict[int, set[int]]
) -> _Candidate | None:
    """The oldest group among the candidates that holds no release of this item's feed yet."""
    for candidate in sorted(candidates, key=lambda found: (found.group, found.item_id)):
        if candidate.group_id is None:
            return candidate
        if candidate.group_id not in members:
            members.update(_group_feeds(session, {candidate.group_id}))
        if item.feed_id not in members[candidate.group_id]:
            return candidate
    return None


def _join_all(session: Session, joins: Sequence[tuple[int, int]]) -> None:
    """Set each release's group (one statement for all); the rows kept for flagging see it too."""
    if not joins:
        return
    items = tables.items
    session.connection().execute(
        update(items).where(items.c.id == bindparam("release")).values(group_id=bindparam("head")),
        [{"release": item_id, "head": head} for item_id, head in joins],
    )
    heads = dict(joins)
    for row in kept_rows(session):
        if row.id in heads:  # as stored already: not a change the flush would write again
            set_committed_value(row, "group_id", heads[row.id])


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
