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

from sqlalchemy import delete, insert, select, text, update
from sqlalchemy.orm import Session

from bot import group
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
) -> list[int]:
    """Store each new release's band keys and put it in its copies' group; returns the ids that joined one.

    A feed's new releases are looked up together (a few queries per feed, not per
    release), then joined one by one, each seeing the joins before it. ``band_keys``:
    by item key, the digest of a main text and its keys, worked out beside the parse
    (``bot.prepare``); used while the stored main text is still that one.
    """
    if window <= timedelta(0) or not items:
        return []
    cutoff = now - window
    main_texts = {item.item_id: group.main_text(item.teaser, item.content, item.full_text) for item in items}
    keys: dict[int, Sequence[int]] = {}
    for item in items:
        known, text = (band_keys or {}).get(item.key), main_texts[item.item_id]
        same = known is not None and known[0] == group.text_digest(text)
        keys[item.item_id] = known[1] if known is not None and same else group.band_keys(_shingles(text))
    _insert_bands(session, keys)
    exact = _exact_copies(session, items, cutoff)
    near = _near_copies(session, items, main_texts, keys, cutoff, similarity)
    joined: list[int] = []
    heads: dict[int, int] = {}  # candidate → the head it got during this call
    found = {item.item_id: exact.get(item.item_id) or near.get(item.item_id, []) for item in items}
    # group → the feeds it holds a release of, kept up to date with this call's joins
    members = _group_feeds(session, {c.group_id for cs in found.values() for c in cs if c.group_id is not None})
    for item in items:
        candidates = [replace(c, group_id=heads.get(c.item_id, c.group_id)) for c in found[item.item_id]]
        target = _group_to_join(session, item, candidates, members)
        if target is not None:
            _join(session, item.item_id, target)
            if target.group not in members:  # the candidate became the head of a new group
                members.update(_group_feeds(session, {target.group}))
            members[target.group] |= {target.feed_id, item.feed_id}
            heads[target.item_id] = heads[item.item_id] = target.group
            joined.append(item.item_id)
    return joined


def _group_feeds(session: Session, group_ids: set[int]) -> dict[int, set[int]]:
    feeds: dict[int, set[int]] = {group_id: set() for group_id in group_ids}
    for chunk in _chunks(sorted(group_ids)):
        query = select(Item.group_id, Item.feed_id).where(Item.group_id.in_(chunk)).distinct()
        for group_id, feed_id in session.execute(query):
            feeds[group_id].add(feed_id)  # type: ignore[index]  # group_id IN (…) is never NULL
    return feeds


def refresh_bands(session: Session, items: Sequence[StoredItem]) -> None:
    """The band keys of releases whose text changed, made anew from it.

    A release first stored as a short notice and edited into the full text: copies of
    the full text must find it by its keys (its first keys only matched the notice).
    """
    if not items:
        return
    for chunk in _chunks([item.item_id for item in items]):
        session.execute(delete(ItemBand).where(ItemBand.item_id.in_(chunk)))
    _store_bands(session, _shingles_of_items(items))


def _shingles_of_items(items: Sequence[StoredItem]) -> dict[int, frozenset[int]]:
    return {item.item_id: _shingles(group.main_text(item.teaser, item.content, item.full_text)) for item in items}


def _store_bands(session: Session, hashes: Mapping[int, frozenset[int]]) -> dict[int, list[int]]:
    """Each release's band keys, stored; returned by release id."""
    keys = {item_id: group.band_keys(shingles) for item_id, shingles in hashes.items()}
    _insert_bands(session, keys)
    return keys


def _insert_bands(session: Session, keys: Mapping[int, Sequence[int]]) -> None:
    bands = [{"item_id": item_id, "band_key": key} for item_id, found in keys.items() for key in found]
    if bands:
        session.execute(insert(ItemBand), bands)  # executemany: no ORM objects for 42 rows a release


def _chunks(values: Sequence[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(values), _PER_QUERY):
        yield list(values[start : start + _PER_QUERY])


def _exact_copies(session: Session, items: Sequence[StoredItem], cutoff: datetime) -> dict[int, list[_Candidate]]:
    """Per release, the other feeds' recent releases with its global key or its link."""
    keys = sorted({item.key for item in items if is_global_key(item.key)})
    urls = sorted({item.url for item in items if item.url})
    rows: dict[int, tuple[int, int, int | None, str, str | None]] = {}
    for column, values in ((Item.key, keys), (Item.url, urls)):
        for chunk in _chunks(values):
            query = select(Item.id, Item.feed_id, Item.group_id, Item.key, Item.url).where(
                Item.first_seen_at >= cutoff, column.in_(chunk)
            )
            rows.update((row[0], tuple(row)) for row in session.execute(query))  # type: ignore[misc]
    found: dict[int, list[_Candidate]] = {}
    for item in items:
        for item_id, feed_id, group_id, key, url in rows.values():
            same = (is_global_key(item.key) and key == item.key) or (item.url is not None and url == item.url)
            if same and feed_id != item.feed_id and item_id != item.item_id:
                found.setdefault(item.item_id, []).append(_Candidate(item_id, feed_id, group_id))
    return found


def _near_copies(
    session: Session,
    items: Sequence[StoredItem],
    main_texts: Mapping[int, str],
    keys: Mapping[int, Sequence[int]],
    cutoff: datetime,
    similarity: float,
) -> dict[int, list[_Candidate]]:
    """Per release, the other feeds' recent releases sharing a band key whose text scores high enough."""
    wanted = sorted({key for found in keys.values() for key in found})
    by_key: dict[int, list[_Candidate]] = {}
    for chunk in _chunks(wanted):
        query = (
            select(ItemBand.band_key, Item.id, Item.feed_id, Item.group_id)
            .join(Item, ItemBand.item_id == Item.id)
            .where(ItemBand.band_key.in_(chunk), Item.first_seen_at >= cutoff)
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
    for row in kept_rows(session):
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
