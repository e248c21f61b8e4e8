"""Items: idempotent upsert, full-text bookkeeping, flag matches and the alerts they create."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import delete, false, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached

from bot import tables
from bot.records import AlertDecision, AlertStatus, ArticleText, FlagMatch, ParsedItem, StoredFeed, StoredItem
from bot.schema import Alert, Feed, FlagMatchRow, Item

# RFC 3986 §3.1; also parse's "un-news:", "un-press:" and "sha256:" keys.
_URI_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
# Bound parameters per IN list: within SQLite's 999 (before 3.32) and psycopg's 65,535
# (a feed of 70,000 changed items could never be stored, issue 14).
_KEYS_PER_QUERY = 500
_HASHED_PER_UPDATE = 1 << 18
# Every column of items but the id: a new row is written whole, in one INSERT.
_ITEM_COLUMNS = tuple(column.key for column in tables.items.columns if column.key != "id")


def is_global_key(key: str) -> bool:
    """A key with a URI scheme names the release itself; a bare guid only within its feed."""
    return bool(_URI_SCHEME.match(key))


def item_hash(item: ParsedItem) -> str:
    """What counts as a change: the text and links a reader sees, not feed noise."""
    parts = (
        item.url or "",
        item.title,
        item.teaser,
        item.content,
        item.published.isoformat() if item.published else "",
    )
    digest = hashlib.sha256()
    for index, part in enumerate(parts):
        if index:
            digest.update(b"\x00")
        _update_text(digest, part)
    return digest.hexdigest()


def _update_text(digest: Any, text: str) -> None:
    # By slices: the joined and encoded copies of a 10 MB release were 20 MB more at
    # the pass's peak (issue 14). The same digest as of the whole text's UTF-8 bytes.
    for start in range(0, len(text), _HASHED_PER_UPDATE):
        digest.update(text[start : start + _HASHED_PER_UPDATE].encode())


@dataclass(slots=True)
class UpsertResult:
    """What ``upsert_items`` did with one feed's items."""

    new: list[StoredItem] = field(default_factory=list)
    updated: list[StoredItem] = field(default_factory=list)
    unchanged: int = 0
    # item id → its title, teaser, content and full text before this change of its text
    previous: dict[int, tuple[str, str, str, str | None]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class FirstWrite:
    """What a new release's row carries from its INSERT on: its language, summary and flags.

    Written later by an UPDATE, they cost a second write of the whole row, and on SQLite
    the full-text trigger deletes and re-adds every word of it (summary and flags are
    indexed): a 10 MB release's UPDATE was +38 MB at the pass's peak (issue 14), and the
    cold pass's 6,000 UPDATEs tokenised each release twice more (issue 16).
    """

    language: str | None
    summary: str | None
    flags: tuple[str, ...] = ()


_KEPT = "pressbot_rows"


def keep_in_session(session: Session, rows: Iterable[Item]) -> None:
    """Hold the rows just written for the rest of the transaction (feeds' and listings' upserts).

    The session's identity map holds rows weakly: kept here, they serve the flag and
    summary writes that follow in this transaction (else each get_one is a SELECT).
    """
    session.info.setdefault(_KEPT, []).extend(rows)


def kept_rows(session: Session) -> list[Item]:
    """The rows ``keep_in_session`` holds: a write that bypasses the ORM must update them too."""
    rows: list[Item] = session.info.get(_KEPT, [])
    return rows


def to_stored(row: Item, feed_name: str) -> StoredItem:
    return StoredItem(
        item_id=row.id,
        feed_id=row.feed_id,
        feed_name=feed_name,
        key=row.key,
        url=row.url,
        title=row.title,
        teaser=row.teaser,
        content=row.content,
        full_text=row.full_text,
        published=row.published_at,
        first_seen=row.first_seen_at,
        language=row.language,
        summary=row.summary,
    )


def existing_hashes(session: Session, feed_id: int, keys: Iterable[str]) -> dict[str, str]:
    wanted = set(keys)
    if len(wanted) > _KEYS_PER_QUERY:
        # A big feed: one pass over its keys beats hundreds of IN lists.
        rows = session.execute(select(Item.key, Item.content_hash).where(Item.feed_id == feed_id))
        return {key: digest for key, digest in rows if key in wanted}
    rows = session.execute(
        select(Item.key, Item.content_hash).where(Item.feed_id == feed_id, Item.key.in_(list(wanted)))
    )
    return {key: digest for key, digest in rows}


def keys_wanting_full_text(session: Session, feed_id: int, max_attempts: int) -> set[str]:
    """Stored items whose page fetch failed and may be tried again."""
    rows = session.scalars(
        select(Item.key).where(
            Item.feed_id == feed_id,
            Item.full_text.is_(None),
            Item.full_text_error.is_not(None),
            Item.full_text_attempts < max_attempts,
        )
    )
    return set(rows)


def _apply(row: Item, item: ParsedItem, digest: str, now: datetime) -> None:
    row.guid, row.url, row.title = item.guid, item.url, item.title
    row.teaser, row.content, row.content_hash = item.teaser, item.content, digest
    row.published_at, row.updated_at = item.published, item.updated
    row.changed_at = now


def _apply_article(row: Item, article: ArticleText | None) -> bool:
    if article is None:
        return False
    row.full_text_attempts = (row.full_text_attempts or 0) + 1
    if article.text:
        row.full_text, row.full_text_error = article.text, None
    else:
        row.full_text_error = article.error or "no main text found"
    return bool(article.text)


def upsert_items(
    session: Session,
    feed: StoredFeed,
    items: Sequence[ParsedItem],
    articles: Mapping[str, ArticleText],
    now: datetime,
    first_write: Callable[[StoredItem], FirstWrite] | None = None,
) -> UpsertResult:
    """Insert new items, update changed ones; an unchanged item is not written.

    ``first_write``: given each new item as it will be stored (``item_id`` 0: it has
    none yet), its language, summary and flags, written with it.
    """
    result = UpsertResult()
    hashes = {item.key: item_hash(item) for item in items}
    known = existing_hashes(session, feed.feed_id, hashes)
    changed_keys = [item.key for item in items if item.key in known and known[item.key] != hashes[item.key]]
    retry_keys = [key for key in articles if key in known and key not in changed_keys]
    rows: dict[str, Item] = {}
    written: list[Item] = []
    wanted = changed_keys + retry_keys
    for start in range(0, len(wanted), _KEYS_PER_QUERY):
        chunk = wanted[start : start + _KEYS_PER_QUERY]
        query = select(Item).where(Item.feed_id == feed.feed_id, Item.key.in_(chunk))
        rows.update((row.key, row) for row in session.scalars(query))
    for item in items:
        article = articles.get(item.key)
        if item.key not in known:
            row = Item(feed_id=feed.feed_id, key=item.key, first_seen_at=now, language=item.language, flags=[])
            _apply(row, item, hashes[item.key], now)
            _apply_article(row, article)
            if first_write is not None:
                fields = first_write(replace(to_stored(row, feed.name), item_id=0))
                row.language, row.flags = fields.language, list(fields.flags)
                row.summary = row.indexed_summary = fields.summary
            written.append(row)
        elif item.key in rows:
            row = rows[item.key]
            text_changed = item.key in changed_keys
            if text_changed:
                result.previous[row.id] = (row.title, row.teaser, row.content, row.full_text)
                _apply(row, item, hashes[item.key], now)
            if _apply_article(row, article) or text_changed:
                result.updated.append(to_stored(row, feed.name))
                written.append(row)
            else:
                result.unchanged += 1
        else:
            result.unchanged += 1
    inserted = [row for row in written if row.id is None]
    session.flush()  # the changed rows' UPDATEs
    insert_new_rows(session, feed.feed_id, inserted)
    keep_in_session(session, written)
    result.new = [to_stored(row, feed.name) for row in inserted]
    return result


def insert_new_rows(session: Session, feed_id: int, rows: Sequence[Item]) -> None:
    """INSERT the new rows of one feed in multi-row statements, then give the session the rows.

    The ORM inserts one row per statement on SQLite (it asks for the ids in the rows'
    order, which a multi-row INSERT … RETURNING does not promise): 6,000 statements in
    a cold pass. Here SQLAlchemy's insertmanyvalues batches them within each driver's
    parameter limit (SQLite's 32,766, psycopg's 65,535), and the ids come back beside
    the keys, unique within the feed. The rows then join the session as loaded and
    unchanged (every column set), so the flag and summary writes that follow find them
    in the identity map and write only what they change.
    """
    if not rows:
        return
    values = []
    for row in rows:
        if row.feed_id != feed_id:
            raise ValueError(f"item {row.key!r} of feed {row.feed_id} among feed {feed_id}'s")
        row.full_text_attempts = row.full_text_attempts or 0
        row.flags = list(row.flags or [])
        row_values = {name: getattr(row, name) for name in _ITEM_COLUMNS}
        for name, value in row_values.items():
            setattr(row, name, value)  # set, not just read as None: an unset attribute would load
        values.append(row_values)
    statement = insert(tables.items).returning(tables.items.c.id, tables.items.c.key)
    ids = {key: item_id for item_id, key in session.execute(statement, values)}
    del values
    for row in rows:
        row.id = ids[row.key]
        make_transient_to_detached(row)
        session.add(row)


def group_of(session: Session, item_id: int) -> int | None:
    """The id of the head of the release's group, or None when it has no copies."""
    return session.get_one(Item, item_id).group_id


def flags_of(session: Session, item_id: int) -> list[str]:
    return list(session.get_one(Item, item_id).flags or [])


def set_summary(session: Session, item_id: int, summary: str | None, language: str | None) -> None:
    """The item's summary, searched as its text is (a summary made on first read is not)."""
    row = session.get_one(Item, item_id)
    row.summary = row.indexed_summary = summary
    if language:
        row.language = language


def record_flags(
    session: Session,
    item: StoredItem,
    matches: Sequence[FlagMatch],
    decisions: Sequence[AlertDecision],
    *,
    now: datetime,
    new: bool = False,
) -> list[AlertDecision]:
    """Replace the item's matches and create one alert per decided channel not alerted before.

    Runs in the caller's transaction with the matches, so a flag is never recorded
    without its alert (the outbox pattern). Each alert row keeps its decision (the flags
    routed to it, why, and whether it is held); an alert still waiting takes the new
    decision's flags. Returns the decisions whose alert was created. ``new``: the item
    was inserted in this transaction, so it has no matches or alerts of its own yet.
    """
    row = session.get_one(Item, item.item_id)
    if not matches and not row.flags:
        return []  # never flagged: no matches or alerts to withdraw (they are written together)
    _replace_matches(session, item.item_id, matches, new=new)
    flags = sorted({match.flag for match in matches})
    if row.flags != flags:  # usually written with the row already (FirstWrite)
        row.flags = flags
    if not matches:
        _withdraw_unsent(session, item.item_id, now)
        return []
    existing: dict[str, int] = {}
    if not new:
        existing = dict(session.execute(select(Alert.channel, Alert.id).where(Alert.item_id == item.item_id)).all())
        _refresh_waiting(session, [(existing[d.channel], d) for d in decisions if d.channel in existing])
    already = set(existing) | _channels_alerted_elsewhere(session, item, row.group_id)
    created = [decision for decision in decisions if decision.channel not in already]
    if created:
        # One statement, no ids asked back: the ORM wrote one INSERT … RETURNING per alert.
        session.execute(insert(tables.alerts), [_alert_values(item.item_id, decision, now) for decision in created])
    return created


def _replace_matches(session: Session, item_id: int, matches: Sequence[FlagMatch], *, new: bool) -> None:
    if not new:
        session.execute(delete(FlagMatchRow).where(FlagMatchRow.item_id == item_id))
    if matches:
        # An executemany without RETURNING (the ORM wrote one INSERT … RETURNING a match).
        rows = [
            {"item_id": item_id, "flag": match.flag, "phrase": match.phrase, "sentence": match.sentence,
             "field": match.field}
            for match in matches
        ]  # fmt: skip
        session.execute(insert(tables.flag_matches), rows)


def _withdraw_unsent(session: Session, item_id: int, now: datetime) -> None:
    # No longer flagged (rules or text changed): what was not yet sent is withdrawn,
    # unless a worker may be posting it right now (then it is Slack's already).
    session.execute(
        delete(Alert).where(
            Alert.item_id == item_id,
            Alert.status == AlertStatus.PENDING,
            Alert.posting_started_at.is_(None),
            (Alert.claimed_until.is_(None)) | (Alert.claimed_until < now),
        )
    )


def _refresh_waiting(session: Session, alerts: Sequence[tuple[int, AlertDecision]]) -> None:
    """An alert not yet sent shows the flags now routed to its channel (the text changed)."""
    for alert_id, decision in alerts:
        session.execute(
            update(Alert)
            .where(Alert.id == alert_id, Alert.status.in_([AlertStatus.PENDING, AlertStatus.HELD]))
            .values(flags=list(decision.flags), route=decision.route)
            .execution_options(synchronize_session=False)
        )


def _alert_values(item_id: int, decision: AlertDecision, now: datetime) -> dict[str, Any]:
    return {
        "item_id": item_id,
        "channel": decision.channel,
        "status": AlertStatus.HELD if decision.held else AlertStatus.PENDING,
        "created_at": now,
        "flags": list(decision.flags),
        "route": decision.route,
        "hold_reason": decision.hold,
    }


def _channels_alerted_elsewhere(session: Session, item: StoredItem, group_id: int | None) -> set[str]:
    """Channels that already have this release through another feed, or another copy of its group.

    UN News publishes one story in its "all" feed and in topic feeds; the stable key
    (story id) or the same link shows it is one release, and one alert is enough. A
    key without a URI scheme is a guid like "1" or "press-42", unique only within its
    own feed: another feed's release "1" is another release. Within one feed a shared
    link is no identity either (newsrooms that link every item to their press page).
    """
    same_release = Item.key == item.key if is_global_key(item.key) else false()
    if item.url:
        same_release = same_release | ((Item.url == item.url) & (Item.feed_id != item.feed_id))
    if group_id is not None:  # one story, one alert (issue 18): its copies edit that one
        same_release = same_release | (Item.group_id == group_id)
    query = (
        select(Alert.channel)
        .join(Item, Alert.item_id == Item.id)
        .where(Item.id != item.item_id, same_release, Alert.status != AlertStatus.HELD)
    )
    return set(session.scalars(query))


def stored_items_after(session: Session, last_id: int, limit: int = 500) -> list[StoredItem]:
    """The next ``limit`` stored items with ids above ``last_id``, in id order (for reflag)."""
    query = select(Item, Feed.name).join(Feed).where(Item.id > last_id).order_by(Item.id).limit(limit)
    return [to_stored(row, feed_name) for row, feed_name in session.execute(query)]
