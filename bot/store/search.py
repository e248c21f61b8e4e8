"""Queries over stored items: full-text search with filters, the feed listing, retention.

One search syntax, translated for both engines (SQLite FTS5, PostgreSQL tsquery)::

    icc visa            both words (AND is implied; writing AND is allowed)
    "exact phrase"      these words in this order
    visa OR sanctions   either; OR binds tighter than AND, as in web search engines:
                        icc visa OR sanctions = icc AND (visa OR sanctions)
    -word, NOT word     without it; a group needs at least one word to look for
    visa*               words starting with "visa"
    ( ... )             grouping

Case and accents never matter ("represailles" finds "représailles"). Results are
ranked by relevance (bm25 on SQLite, ts_rank on PostgreSQL; a title match counts
most) or by date, and each carries a snippet with the matched words between
``MARK_START`` and ``MARK_END``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import reduce
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import tables
from bot.errors import QuerySyntaxError
from bot.store import READ_ONLY

MARK_START = "\x02"  # control characters: XML 1.0 (§2.2) forbids them, so feed text lacks them
MARK_END = "\x03"

# FTS5 column order: title, teaser, content, full_text, summary, flags (a filter, not a score).
_BM25_WEIGHTS = (10.0, 4.0, 1.0, 1.0, 2.0, 0.0)
_FTS5_TEXT = "{title teaser content full_text summary}"
_SNIPPET_TOKENS = 24
_PG_CONFIG: sa.ColumnClause[Any] = sa.literal_column("'pressbot'::regconfig")
_PG_HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, MaxFragments=1"
_TOKEN = re.compile(
    r'\s*(?:(?P<open>\()|(?P<close>\))|(?P<neg>-)(?=[^\s)])|"(?P<phrase>[^"]*)(?P<end>"?)|(?P<word>[^\s()"]+))'
)
_WORD = re.compile(r"\w+")


# -- records -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class QueryFilters:
    """A search over stored items. Made by the CLI and the Slack slash command; read by store.search.

    Repeating one filter widens it (any of these flags, any of these feeds); different
    filters narrow each other. ``since``/``until`` apply to the published date, else the
    date the item was first seen.
    """

    text: str | None = None  # full text, in pressbot's search syntax (see store.search)
    flags: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # "en" also matches "en-GB"
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    limit: int = 20
    sort: str = "relevance"  # "relevance" (when there is text) or "date", newest first


@dataclass(frozen=True, slots=True)
class QueryHit:
    """One search result. Made by store.search; read by the CLI and the Slack slash command."""

    item_id: int
    feed_name: str
    title: str
    url: str | None
    published: datetime | None
    first_seen: datetime
    language: str | None
    summary: str | None
    flags: tuple[str, ...] = ()
    matches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # flag → matched phrases
    snippet: str | None = None  # when searching text: matched words between search.MARK_START/END


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


# -- the search syntax ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as typed (a word, or a phrase's words)
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class AllOf:
    include: tuple[Node, ...]
    exclude: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class AnyOf:
    options: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    node: Node


Node = Term | AllOf | AnyOf


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    for match in _TOKEN.finditer(text.rstrip()):
        kind = match.lastgroup if match.lastgroup != "end" else "phrase"
        if kind == "phrase":
            if not match.group("end"):
                raise QuerySyntaxError(f'unbalanced quote in {text!r}: add the closing "')
            tokens.append(("phrase", match.group("phrase")))
        elif kind == "word" and match.group("word") in ("AND", "OR", "NOT"):
            tokens.append((match.group("word"), ""))
        elif kind is not None:
            tokens.append((kind, match.group(kind)))
    return tokens


class _Parser:
    """Recursive descent: and := or ([AND] or)* ; or := unary (OR unary)* ; unary := [-|NOT] primary."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        self.at += 1
        return self.tokens[self.at - 1]

    def fail(self, problem: str) -> QuerySyntaxError:
        return QuerySyntaxError(f"{problem} in {self.text!r}")

    def parse(self) -> Node:
        node = self.all_of()
        if self.peek() == "close":
            raise self.fail("unbalanced parenthesis: ')' without '('")
        if node is None:
            raise self.fail("nothing to search for")
        return node

    def all_of(self) -> Node | None:
        parts: list[Node | Not] = []
        while self.peek() not in (None, "close"):
            if self.peek() == "AND":
                self.take()
                if not parts or self.peek() in (None, "close", "AND", "OR"):
                    raise self.fail("AND needs a word on each side")
            part = self.any_of()
            if part is not None:
                parts.append(part)
        include = tuple(part for part in parts if not isinstance(part, Not))
        exclude = tuple(part.node for part in parts if isinstance(part, Not))
        if not include:
            if exclude:
                raise self.fail("a search needs a word to look for, not only words to leave out")
            return None
        return include[0] if len(include) == 1 and not exclude else AllOf(include, exclude)

    def any_of(self) -> Node | Not | None:
        if self.peek() == "OR":
            raise self.fail("OR needs a word on each side")
        options = [self.unary()]
        while self.peek() == "OR":
            self.take()
            if self.peek() in (None, "close", "AND", "OR"):
                raise self.fail("OR needs a word on each side")
            options.append(self.unary())
        kept = [option for option in options if option is not None]
        if len(kept) > 1 and any(isinstance(option, Not) for option in kept):
            raise self.fail("an OR alternative cannot be a NOT; exclude words outside the OR")
        if len(kept) <= 1:
            return kept[0] if kept else None
        return AnyOf(tuple(option for option in kept if not isinstance(option, Not)))

    def unary(self) -> Node | Not | None:
        if self.peek() in ("neg", "NOT"):
            self.take()
            if self.peek() in (None, "close", "AND", "OR", "neg", "NOT"):
                raise self.fail("NOT (or -) needs a word after it")
            node = self.primary()
            return Not(node) if node is not None else None
        return self.primary()

    def primary(self) -> Node | None:
        kind, value = self.take()
        if kind == "open":
            node = self.all_of()
            if self.peek() != "close":
                raise self.fail("unbalanced parenthesis: '(' without ')'")
            self.take()
            if node is None:
                raise self.fail("empty parentheses")
            return node
        if kind == "close":
            raise self.fail("unbalanced parenthesis: ')' without '('")
        prefix = kind == "word" and value.endswith("*")
        text = value.rstrip("*") if prefix else value
        if "*" in text:
            raise self.fail(f"'*' only ends a word (visa*), it cannot stand inside {value!r}")
        # Punctuation alone ("&", "–") indexes nothing on either engine: drop it.
        return Term(text, prefix) if _WORD.search(text) else None


def parse_search(text: str) -> Node:
    """The search syntax above as a tree; QuerySyntaxError (one line) when it is not one."""
    return _Parser(text).parse()


def to_fts5(node: Node) -> str:
    """An FTS5 MATCH expression; every term is quoted, so FTS5's own syntax never leaks in."""
    if isinstance(node, Term):
        quoted = '"' + node.text.replace('"', '""') + '"'
        return quoted + "*" if node.prefix else quoted
    if isinstance(node, AnyOf):
        return "(" + " OR ".join(to_fts5(option) for option in node.options) + ")"
    expression = "(" + " AND ".join(to_fts5(part) for part in node.include) + ")"
    for part in node.exclude:  # FTS5's NOT is binary: "a NOT b"
        expression = f"({expression} NOT {to_fts5(part)})"
    return expression


def to_tsquery(node: Node) -> sa.ColumnElement[Any]:
    """A PostgreSQL tsquery built from one call per term, joined with tsquery_and/or/not.

    Not ``websearch_to_tsquery`` on the whole text: it has no prefix search and reads
    a lowercase "or" as an operator, so the two engines would disagree. Each term
    still goes through the ``pressbot`` configuration (unaccent), as the documents did.
    """
    if isinstance(node, Term):
        if node.prefix:
            words = _WORD.findall(node.text)  # \w+ holds no quote: safe inside '…'
            lexemes = " <-> ".join(f"'{word}'" for word in words) + ":*"
            return sa.func.to_tsquery(_PG_CONFIG, lexemes)
        return sa.func.phraseto_tsquery(_PG_CONFIG, node.text)
    if isinstance(node, AnyOf):
        return reduce(sa.func.tsquery_or, (to_tsquery(option) for option in node.options))
    expression = reduce(sa.func.tsquery_and, (to_tsquery(part) for part in node.include))
    for part in node.exclude:
        expression = sa.func.tsquery_and(expression, sa.func.tsquery_not(to_tsquery(part)))
    return expression


# -- searching ---------------------------------------------------------------------------

# Core tables, not the ORM classes: importing and configuring the mappers would cost a
# `pressbot query` process a tenth of its time.
_item_table = tables.items
_feed_table = tables.feeds
_items = _item_table.c
_feeds = _feed_table.c
_matches = tables.flag_matches.c


def sort_date() -> sa.ColumnElement[datetime]:
    """The date a query filters and sorts on; migration 0002 indexes this very expression."""
    return sa.func.coalesce(_items.published_at, _items.first_seen_at)


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
        query = query.where(sort_date() >= filters.since)
    if filters.until is not None:
        query = query.where(sort_date() < filters.until)
    return query


_FTS = sa.table("items_fts", sa.column("rowid"))
_FTS_TABLE: sa.ColumnClause[Any] = sa.literal_column("items_fts")


def _fts5_text(tree: Node) -> str:
    """The user's search, on the text columns only: a word never matches a flag's name."""
    return f"{_FTS5_TEXT} : ({to_fts5(tree)})"


def _sqlite_ranked(tree: Node, by_date: bool, flags: Sequence[str]) -> sa.Select[Any]:
    expression = _fts5_text(tree)
    if flags:
        # Inside the index: FTS5 skips through the long lists of common words to the
        # few releases carrying the flag, instead of ranking every match then filtering.
        wanted = " OR ".join(to_fts5(Term(flag)) for flag in flags)
        expression += f" AND {{flags}} : ({wanted})"
    score = sa.func.bm25(_FTS_TABLE, *_BM25_WEIGHTS)
    query = (
        sa.select(_items.id)
        .select_from(_FTS.join(_item_table, _items.id == _FTS.c.rowid))
        .where(_FTS_TABLE.op("MATCH")(expression))
    )
    return query.order_by(sort_date().desc() if by_date else score, _items.id.desc())


def _postgresql_ranked(tree: Node, by_date: bool) -> sa.Select[Any]:
    vector: sa.ColumnClause[Any] = sa.literal_column("items.search_vector")
    tsquery = to_tsquery(tree)
    query = sa.select(_items.id).where(vector.op("@@")(tsquery))
    score = sa.func.ts_rank(vector, tsquery)
    return query.order_by(sort_date().desc() if by_date else score.desc(), _items.id.desc())


def _ranked_ids(session: Session, filters: QueryFilters, tree: Node | None, feed_ids: list[int] | None) -> list[int]:
    """Only ids at this step: SQLite's sorter would otherwise carry every match's columns."""
    by_date = filters.sort == "date" or tree is None
    if tree is None:
        query = sa.select(_items.id).order_by(sort_date().desc(), _items.id.desc())
    elif _is_postgresql(session):
        query = _postgresql_ranked(tree, by_date)
    else:
        query = _sqlite_ranked(tree, by_date, filters.flags)
        filters = replace(filters, flags=())  # applied inside the index already
    query = _filtered(query, filters, feed_ids).limit(filters.limit)
    return list(session.scalars(query))


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _snippet(session: Session, tree: Node | None) -> sa.ColumnElement[Any]:
    """A snippet for each row of the page of results (a snippet costs a read of the whole text)."""
    if tree is None:
        return sa.null()
    if _is_postgresql(session):
        text = sa.func.concat_ws("\n", _items.title, _items.teaser, _items.content, _items.full_text, _items.summary)
        return sa.func.ts_headline(_PG_CONFIG, text, to_tsquery(tree), _PG_HEADLINE)
    # Correlated on rowid, so FTS5 looks up these 20 rows; joined instead, SQLite walks
    # every match of the search (tens of thousands for "human rights") to find them.
    snippet = sa.func.snippet(_FTS_TABLE, -1, MARK_START, MARK_END, "…", _SNIPPET_TOKENS)
    return (
        sa.select(snippet)
        .select_from(_FTS)
        .where(_FTS_TABLE.op("MATCH")(_fts5_text(tree)), _FTS.c.rowid == _items.id)
        .scalar_subquery()
    )


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


def _hits(session: Session, tree: Node | None, ids: Sequence[int]) -> list[QueryHit]:
    rows = _details(session, tree, ids)
    phrases = _flag_phrases(session, ids)
    hits = []
    for item_id in ids:
        _, feed_name, title, url, published, first_seen, language, summary, flags, snippet = rows[item_id]
        hits.append(
            QueryHit(
                item_id=item_id, feed_name=feed_name, title=title, url=url, published=published,
                first_seen=first_seen, language=language, summary=summary, flags=tuple(flags or ()),
                matches=phrases.get(item_id, {}), snippet=_tidy_snippet(snippet),
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
    tree = parse_search(filters.text) if filters.text and filters.text.strip() else None
    _begin_reading(session)
    feed_ids = _feed_ids(session, filters)
    if feed_ids == [] or filters.limit <= 0:
        return []
    ids = _ranked_ids(session, filters, tree, feed_ids)
    return _hits(session, tree, ids) if ids else []


# -- retention ---------------------------------------------------------------------------


def _prunable(cutoff: datetime, *, keep_flagged: bool) -> sa.Select[Any]:
    query = sa.select(_items.id).where(sort_date() < cutoff)
    if keep_flagged:
        query = query.where(~sa.exists().where(_matches.item_id == _items.id))
    return query


def count_prunable(session: Session, cutoff: datetime, *, keep_flagged: bool) -> int:
    query = _prunable(cutoff, keep_flagged=keep_flagged).subquery()
    return session.scalar(sa.select(sa.func.count()).select_from(query)) or 0


def record_prune(session: Session, cutoff: datetime) -> None:
    """Note the cutoff on every feed: a deleted release its feed still lists, stored
    again by the next poll, is then not alerted a second time (``poll.should_hold``)."""
    session.execute(
        sa.update(_feed_table)
        .where(sa.or_(_feeds.pruned_before.is_(None), _feeds.pruned_before < cutoff))
        .values(pruned_before=cutoff)
    )


def prune_items(session: Session, cutoff: datetime, *, keep_flagged: bool, batch: int = 2000) -> int:
    """Delete up to ``batch`` items dated before ``cutoff``; returns how many (call until 0).

    Batches keep each transaction short: a running worker waits for the write lock
    (SQLite) or the rows (PostgreSQL) only briefly. Their flag matches and alerts go
    with them (ON DELETE CASCADE); the search index follows through its triggers.
    """
    query = _prunable(cutoff, keep_flagged=keep_flagged).order_by(_items.id).limit(batch)
    ids = list(session.scalars(query))
    if ids:
        session.execute(sa.delete(_item_table).where(_items.id.in_(ids)))
    return len(ids)


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
                  sa.func.coalesce(counts.c["items"], 0))
        .select_from(_feed_table.outerjoin(counts, counts.c.feed_id == _feeds.id))
        .order_by(_feeds.name)
    )
    return [FeedListing(*row) for row in session.execute(query)]
