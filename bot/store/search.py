"""Searches over stored items: the filters, the ranking, the results; and the feed listing.

The search language is parsed by bot.query (pure); bot.store.fts holds each engine's
full-text SQL. Only ids are ranked, then the page of results is read with its
snippets and flag phrases. A search never takes SQLite's write lock.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import tables
from bot.errors import QuerySyntaxError
from bot.query import MARK_END, MARK_START, Node, QueryCopy, QueryFilters, QueryHit, parse_search
from bot.store import READ_ONLY, fts, is_postgresql


@dataclass(frozen=True, slots=True)
class FeedListing:
    """A feed with its health and size, for ``pressbot feeds list``. Made by store.search."""

    name: str
    url: str  # as now polled (a permanent redirect may have changed it)
    enabled: bool
    disabled_reason: str | None
    last_success_at: datetime | None
    last_error: str | None
    consecutive_failures: int
    next_check_at: datetime | None
    items: int
    muted_until: datetime | None = None  # muted from Slack until then (may be past: not muted)
    muted_by: str | None = None


# Core tables, not the ORM classes: importing and configuring the mappers would cost a
# `pressbot query` process a tenth of its time.
_item_table = tables.items
_feed_table = tables.feeds
_items = _item_table.c
_feeds = _feed_table.c
_matches = tables.flag_matches.c


_LANGUAGE_CODE = re.compile(r"^[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*$")


def checked_filters(session: Session, filters: QueryFilters) -> QueryFilters:
    """``filters`` with flag names as stored; QuerySyntaxError for a filter that can match
    nothing because nothing stored has it (``--flag reprisals``, ``--tag nope``,
    ``--lang french``) or an empty range: those answered an empty list in silence (issue 14)."""
    if filters.since is not None and filters.until is not None and filters.since >= filters.until:
        since, until = f"{filters.since:%Y-%m-%d %H:%M}", f"{filters.until:%Y-%m-%d %H:%M}"
        raise QuerySyntaxError(f"the range is empty: since {since} is not before until {until}")
    if filters.flags:
        stored = {flag.casefold(): flag for flag in session.scalars(sa.select(_matches.flag).distinct())}
        unknown = [flag for flag in filters.flags if flag.casefold() not in stored]
        if unknown:
            known = ", ".join(sorted(stored.values())) or "none yet"
            raise QuerySyntaxError(f"no stored release carries the flag {unknown[0]!r} (flags: {known})")
        filters = replace(filters, flags=tuple(stored[flag.casefold()] for flag in filters.flags))
    for code in filters.languages:
        if not _LANGUAGE_CODE.match(code):
            raise QuerySyntaxError(f"--lang {code!r} is not a language code (en, fr, es, pt-BR…)")
    if filters.languages:
        stored_codes = {code.lower() for code in session.scalars(sa.select(_items.language).distinct()) if code}
        for code in filters.languages:
            wanted = code.lower().replace("_", "-")
            if not any(known == wanted or known.startswith(wanted + "-") for known in stored_codes):
                known = ", ".join(sorted(stored_codes)) or "none yet"
                raise QuerySyntaxError(f"no stored release is in language {code!r} (languages: {known})")
    return filters


def _feed_ids(session: Session, filters: QueryFilters) -> list[int] | None:
    """Feeds by name (any case) and tag, resolved here: tags are a JSON list, not portable SQL."""
    if not filters.feeds and not filters.tags:
        return None
    names = {name.casefold() for name in filters.feeds}
    tags = {tag.casefold() for tag in filters.tags}
    rows = session.execute(sa.select(_feeds.id, _feeds.name, _feeds.tags)).all()
    unknown = sorted(names - {name.casefold() for _, name, _ in rows})
    if unknown:
        raise QuerySyntaxError(f"no feed named {unknown[0]!r} (see `pressbot feeds list`)")
    stored_tags = {tag.casefold() for _, _, feed_tags in rows for tag in feed_tags or ()}
    unknown = sorted(tags - stored_tags)
    if unknown:
        raise QuerySyntaxError(f"no feed has the tag {unknown[0]!r} (tags: {', '.join(sorted(stored_tags)) or 'none'})")
    return [
        feed_id
        for feed_id, name, feed_tags in rows
        if (not names or name.casefold() in names)
        and (not tags or tags & {tag.casefold() for tag in feed_tags or ()})
    ]


def _filtered(query: sa.Select[Any], filters: QueryFilters, feed_ids: list[int] | None) -> sa.Select[Any]:
    if feed_ids is not None:
        query = query.where(_items.feed_id.in_(feed_ids))
    if filters.flags:
        flagged = sa.select(_matches.item_id).where(_matches.flag.in_(filters.flags))
        query = query.where(_items.id.in_(flagged))
    if filters.languages:
        language = sa.func.lower(_items.language)
        codes = [code.lower() for code in filters.languages]
        query = query.where(sa.or_(*(sa.or_(language == code, language.like(code + "-%")) for code in codes)))
    if filters.since is not None:
        query = query.where(tables.sort_date() >= filters.since)
    if filters.until is not None:
        query = query.where(tables.sort_date() < filters.until)
    return query


def _ranked_id_pages(
    session: Session, filters: QueryFilters, tree: Node | None, feed_ids: list[int] | None, batch: int
) -> Iterator[list[int]]:
    """The ranked ids, ``batch`` at a time: only ids at this step (SQLite's sorter would
    otherwise carry every match's columns).

    Streamed from one query (a server-side cursor on PostgreSQL; SQLite steps its cursor
    as rows are read), not held: an export of the archive kept every matching id, ~36 MB
    a million releases (issue 14). Keyset pages would re-rank every match for each page.
    """
    by_date = filters.sort == "date" or tree is None
    if tree is None:
        ranked = fts.Ranked(sa.select(_items.id), tables.sort_date(), descending=True)
    elif is_postgresql(session):
        ranked = fts.postgresql_ranked(tree, by_date)
    else:
        ranked = fts.sqlite_ranked(tree, by_date, filters.flags)
        filters = replace(filters, flags=())  # applied inside the index already
    query = _filtered(ranked.query, filters, feed_ids)
    query = query.order_by(ranked.key.desc() if ranked.descending else ranked.key, _items.id.desc())
    if filters.limit > 0:
        query = query.limit(filters.limit)
    result = session.execute(query, execution_options={"stream_results": True, "max_row_buffer": batch})
    for rows in result.partitions(batch):
        yield [row[0] for row in rows]


def _snippet(session: Session, tree: Node | None) -> sa.ColumnElement[Any]:
    """A snippet for each row of the page of results (a snippet costs a read of the whole text)."""
    if tree is None:
        return sa.null()
    return fts.postgresql_snippet(tree) if is_postgresql(session) else fts.sqlite_snippet(tree)


def _details(session: Session, tree: Node | None, ids: Sequence[int]) -> dict[int, tuple[Any, ...]]:
    columns = (_items.id, _feeds.name, _items.title, _items.url, _items.published_at, _items.first_seen_at,
               _items.language, _items.summary, _items.flags, _snippet(session, tree))
    source = _item_table.join(_feed_table, _feeds.id == _items.feed_id)
    query = sa.select(*columns).select_from(source).where(_items.id.in_(ids))
    return {row[0]: row for row in session.execute(query)}


def _flag_phrases(session: Session, ids: Sequence[int]) -> dict[int, dict[str, tuple[str, ...]]]:
    rows = session.execute(
        sa.select(_matches.item_id, _matches.flag, _matches.phrase)
        .where(_matches.item_id.in_(ids))
        .order_by(_matches.id)
    )
    found: dict[int, dict[str, list[str]]] = {}
    for item_id, flag, phrase in rows:
        phrases = found.setdefault(item_id, {}).setdefault(flag, [])
        if phrase not in phrases:
            phrases.append(phrase)
    return {item_id: {flag: tuple(p) for flag, p in flags.items()} for item_id, flags in found.items()}


def _tidy_snippet(text: str | None) -> str | None:
    if not text:
        return None
    # Adjacent marked words ("International Criminal Court") read better as one mark.
    return " ".join(text.split()).replace(f"{MARK_END} {MARK_START}", " ")


def _heads(session: Session, ids: Sequence[int]) -> list[tuple[int, bool]]:
    """Each result replaced by the head of its group, once, in rank order (a copy may match
    alone); with each, whether it heads a group (a release without copies is ranked once)."""
    groups = dict(session.execute(sa.select(_items.id, _items.group_id).where(_items.id.in_(ids))).all())
    heads: dict[int, bool] = {}
    for item_id in ids:
        head = groups.get(item_id) or item_id
        heads[head] = heads.get(head, False) or groups.get(item_id) is not None
    known = set(session.scalars(sa.select(_items.id).where(_items.id.in_(list(heads)))))
    return [(head, in_group) for head, in_group in heads.items() if head in known]  # a pruned head: see --no-group


def _copies(session: Session, ids: Sequence[int]) -> dict[int, tuple[QueryCopy, ...]]:
    members = session.execute(
        sa.select(_items.group_id, _items.id, _feeds.name, _items.url)
        .select_from(_item_table.join(_feed_table, _feeds.id == _items.feed_id))
        .where(_items.group_id.in_(ids), _items.id != _items.group_id)
        .order_by(_items.id)
    )
    found: dict[int, list[QueryCopy]] = {}
    for group_id, item_id, feed_name, url in members:
        found.setdefault(group_id, []).append(QueryCopy(item_id, feed_name, url))
    return {group_id: tuple(copies) for group_id, copies in found.items()}


def _hits(session: Session, tree: Node | None, ids: Sequence[int], grouped: bool = False) -> list[QueryHit]:
    rows = _details(session, tree, ids)
    phrases = _flag_phrases(session, ids)
    copies = _copies(session, ids) if grouped else {}
    hits = []
    for item_id in ids:
        _, feed_name, title, url, published, first_seen, language, summary, flags, snippet = rows[item_id]
        hits.append(
            QueryHit(
                item_id=item_id, feed_name=feed_name, title=title, url=url, published=published,
                first_seen=first_seen, language=language, summary=summary or None, flags=tuple(flags or ()),
                matches=phrases.get(item_id, {}), snippet=_tidy_snippet(snippet),
                also_in=copies.get(item_id, ()), summary_pending=summary == tables.SUMMARY_PENDING,
            )
        )
    return hits


def _begin_reading(session: Session) -> None:
    """Begin without SQLite's write lock, so that a search never waits for a writing worker."""
    if not session.in_transaction():  # one already begun keeps its own
        session.connection(execution_options=READ_ONLY)


def search_items(session: Session, filters: QueryFilters) -> list[QueryHit]:
    """The items matching ``filters``, best first (or newest first), at most ``filters.limit``.

    Raises QuerySyntaxError for text that is not a search, or a feed name that does not exist.
    """
    return list(iter_search_items(session, filters))


def iter_search_items(session: Session, filters: QueryFilters, batch: int = 500) -> Iterator[QueryHit]:
    """``search_items`` as a stream; ``filters.limit`` 0 is no limit (an export of the archive).

    The ids and the rows are read ``batch`` at a time, in one read transaction, so memory
    stays flat however many releases match. The filters and the first page of ids are
    checked and read before the first yield.
    """
    tree = parse_search(filters.text) if filters.text and filters.text.strip() else None
    _begin_reading(session)
    filters = checked_filters(session, filters)
    feed_ids = _feed_ids(session, filters)
    if feed_ids == [] or filters.limit < 0:
        return iter(())
    pages = _ranked_id_pages(session, filters, tree, feed_ids, batch)
    first = next(pages, [])
    return _hits_in_batches(session, tree, itertools.chain([first], pages), filters.group)


def _hits_in_batches(
    session: Session, tree: Node | None, pages: Iterable[list[int]], grouped: bool
) -> Iterator[QueryHit]:
    # A group's head once, though its copies rank in several batches. Only the heads of
    # groups are remembered: a release without copies is ranked once anyway.
    shown: set[int] = set()
    for chunk in pages:
        if grouped:
            heads = _heads(session, chunk)
            chunk = [head for head, in_group in heads if not (in_group and head in shown)]
            shown.update(head for head, in_group in heads if in_group)
        if chunk:
            yield from _hits(session, tree, chunk, grouped)


# -- feeds -------------------------------------------------------------------------------


def list_feeds(session: Session) -> list[FeedListing]:
    """Every feed the database knows, by name, with its health and how many items it holds."""
    _begin_reading(session)
    counts = (
        sa.select(_items.feed_id, sa.func.count().label("items")).group_by(_items.feed_id).subquery()
    )
    query = (
        sa.select(_feeds.name, _feeds.url, _feeds.enabled, _feeds.disabled_reason, _feeds.last_success_at,
                  _feeds.last_error, _feeds.consecutive_failures, _feeds.next_check_at,
                  sa.func.coalesce(counts.c["items"], 0), _feeds.muted_until, _feeds.muted_by)
        .select_from(_feed_table.outerjoin(counts, counts.c.feed_id == _feeds.id))
        .order_by(_feeds.name)
    )
    return [FeedListing(*row) for row in session.execute(query)]
