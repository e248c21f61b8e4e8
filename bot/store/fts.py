"""The full-text SQL of each engine: SQLite FTS5 and PostgreSQL tsquery, from one syntax tree.

Migration 0002 builds the index each engine searches: the ``items_fts`` FTS5 table
(SQLite) and the ``items.search_vector`` column with its ``pressbot`` text search
configuration (PostgreSQL, unaccent); migration 0010 indexes ``indexed_summary``, the
summary as the pass made it, in place of ``summary`` (which a reader may fill later).
Relevance is bm25 on SQLite and ts_rank on PostgreSQL; a title match counts most.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from bot import tables
from bot.query import MARK_END, MARK_START, WORD, AnyOf, Node, Term

# FTS5 column order: title, teaser, content, full_text, indexed_summary, flags (a filter, not a score).
_BM25_WEIGHTS = (10.0, 4.0, 1.0, 1.0, 2.0, 0.0)
_FTS5_TEXT = "{title teaser content full_text indexed_summary}"
_SNIPPET_TOKENS = 24
_PG_CONFIG: sa.ColumnClause[Any] = sa.literal_column("'pressbot'::regconfig")
_PG_HEADLINE = f"StartSel={MARK_START}, StopSel={MARK_END}, MaxWords=30, MinWords=12, MaxFragments=1"

_items = tables.items.c
_FTS = sa.table("items_fts", sa.column("rowid"))
_FTS_TABLE: sa.ColumnClause[Any] = sa.literal_column("items_fts")
_VECTOR: sa.ColumnClause[Any] = sa.literal_column("items.search_vector")


# -- SQLite FTS5 -------------------------------------------------------------------------


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


def _fts5_text(tree: Node) -> str:
    """The user's search, on the text columns only: a word never matches a flag's name."""
    return f"{_FTS5_TEXT} : ({to_fts5(tree)})"


@dataclass(frozen=True, slots=True)
class Ranked:
    """The matching items' ids and what ranks them: ``key`` (descending or not), then id
    descending. The caller orders and pages by them."""

    query: sa.Select[Any]
    key: sa.ColumnElement[Any]
    descending: bool


def sqlite_ranked(tree: Node, by_date: bool, flags: Sequence[str]) -> Ranked:
    """Ids of the matching items, best (or newest) first; ``flags`` are matched inside the index."""
    expression = _fts5_text(tree)
    if flags:
        # Inside the index: FTS5 skips through the long lists of common words to the
        # few releases carrying the flag, instead of ranking every match then filtering.
        wanted = " OR ".join(to_fts5(Term(flag)) for flag in flags)
        expression += f" AND {{flags}} : ({wanted})"
    query = (
        sa.select(_items.id)
        .select_from(_FTS.join(tables.items, _items.id == _FTS.c.rowid))
        .where(_FTS_TABLE.op("MATCH")(expression))
    )
    if by_date:
        return Ranked(query, tables.sort_date(), descending=True)
    return Ranked(query, sa.func.bm25(_FTS_TABLE, *_BM25_WEIGHTS), descending=False)  # bm25: lower is better


def sqlite_snippet(tree: Node) -> sa.ColumnElement[Any]:
    """A snippet for each row of the page of results (a snippet costs a read of the whole text)."""
    # Correlated on rowid, so FTS5 looks up these 20 rows; joined instead, SQLite walks
    # every match of the search (tens of thousands for "human rights") to find them.
    snippet = sa.func.snippet(_FTS_TABLE, -1, MARK_START, MARK_END, "…", _SNIPPET_TOKENS)
    return (
        sa.select(snippet)
        .select_from(_FTS)
        .where(_FTS_TABLE.op("MATCH")(_fts5_text(tree)), _FTS.c.rowid == _items.id)
        .scalar_subquery()
    )


# -- PostgreSQL tsquery ------------------------------------------------------------------


def _balanced(
    join: Callable[[sa.ColumnElement[Any], sa.ColumnElement[Any]], sa.ColumnElement[Any]],
    parts: list[sa.ColumnElement[Any]],
) -> sa.ColumnElement[Any]:
    """``join`` over ``parts`` as a balanced tree: a left fold of 86 words nested 86 calls
    deep, past what SQLAlchemy's recursive compiler survives (issue 14)."""
    while len(parts) > 1:
        pairs = [join(parts[index], parts[index + 1]) for index in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def to_tsquery(node: Node) -> sa.ColumnElement[Any]:
    """A PostgreSQL tsquery built from one call per term, joined with tsquery_and/or/not.

    Not ``websearch_to_tsquery`` on the whole text: it has no prefix search and reads
    a lowercase "or" as an operator, so the two engines would disagree. Each term
    still goes through the ``pressbot`` configuration (unaccent), as the documents did.
    """
    if isinstance(node, Term):
        if node.prefix:
            words = WORD.findall(node.text)  # \w+ holds no quote: safe inside '…'
            lexemes = " <-> ".join(f"'{word}'" for word in words) + ":*"
            return sa.func.to_tsquery(_PG_CONFIG, lexemes)
        return sa.func.phraseto_tsquery(_PG_CONFIG, node.text)
    if isinstance(node, AnyOf):
        return _balanced(sa.func.tsquery_or, [to_tsquery(option) for option in node.options])
    expression = _balanced(sa.func.tsquery_and, [to_tsquery(part) for part in node.include])
    if node.exclude:  # NOT a AND NOT b = NOT (a OR b): one level, however many words
        excluded = _balanced(sa.func.tsquery_or, [to_tsquery(part) for part in node.exclude])
        expression = sa.func.tsquery_and(expression, sa.func.tsquery_not(excluded))
    return expression


def postgresql_ranked(tree: Node, by_date: bool) -> Ranked:
    """Ids of the matching items, best (or newest) first."""
    tsquery = to_tsquery(tree)
    query = sa.select(_items.id).where(_VECTOR.op("@@")(tsquery))
    return Ranked(query, tables.sort_date() if by_date else sa.func.ts_rank(_VECTOR, tsquery), descending=True)


def postgresql_snippet(tree: Node) -> sa.ColumnElement[Any]:
    text = sa.func.concat_ws(
        "\n", _items.title, _items.teaser, _items.content, _items.full_text, _items.indexed_summary
    )
    return sa.func.ts_headline(_PG_CONFIG, text, to_tsquery(tree), _PG_HEADLINE)
