"""Summaries made on first read (issue 16): the rows that have none yet, and their write.

A pass makes the summary of a release Slack shows; the others' ``summary`` is
``tables.SUMMARY_PENDING`` until a reader first shows them (bot.summaries). NULL keeps
its meaning, a release whose text has no lede (and so do databases summarised before).
Core tables, as the search: a query process never configures the ORM mappers.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import tables
from bot.store import SQLITE_BUSY_TIMEOUT_MS

_items = tables.items.c
_IDS_PER_QUERY = 500  # bound parameters per IN list (bot.store.items)


@dataclass(frozen=True, slots=True)
class Unsummarized:
    """A stored release without a summary: the text and language its summary is made from."""

    item_id: int
    title: str
    teaser: str
    content: str
    full_text: str | None
    language: str | None


def unsummarized(session: Session, item_ids: Collection[int]) -> tuple[list[Unsummarized], dict[int, str | None]]:
    """Those of ``item_ids`` whose summary is not made yet (in id order), and the others' summaries.

    A row found waiting by the search may have been given its summary since, by another
    reader (PostgreSQL reads what was committed at each statement): that one is shown.
    """
    ids = sorted(set(item_ids))
    waiting: list[Unsummarized] = []
    made: dict[int, str | None] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        query = (
            sa.select(_items.id, _items.title, _items.teaser, _items.content, _items.full_text, _items.language,
                      _items.summary)
            .where(_items.id.in_(ids[start : start + _IDS_PER_QUERY]))
            .order_by(_items.id)
        )  # fmt: skip
        for *row, summary in session.execute(query):
            if summary == tables.SUMMARY_PENDING:
                waiting.append(Unsummarized(*row))
            else:
                made[row[0]] = summary
    return waiting, made


def store_without_waiting(engine: sa.Engine, made: Sequence[tuple[Unsummarized, str]]) -> None:
    """``store_summaries`` in a transaction of its own that never waits for a writer.

    A search answers at once beside a worker mid-pass (it holds SQLite's write lock, or
    row locks on PostgreSQL): a busy database raises at once (OperationalError), and the
    next reader makes those summaries again.
    """
    with engine.connect() as connection, _not_waiting(connection), connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql("SET LOCAL lock_timeout = '100ms'")
        _update(connection, made)


@contextmanager
def _not_waiting(connection: sa.Connection) -> Iterator[None]:
    if connection.dialect.name != "sqlite":
        yield
        return
    # On the driver's connection: through SQLAlchemy, the PRAGMA would begin the
    # transaction (BEGIN IMMEDIATE) before the timeout it sets applies.
    raw = connection.connection.driver_connection
    assert raw is not None
    raw.execute("PRAGMA busy_timeout = 0")
    try:
        yield
    finally:  # the connection goes back to the pool with the usual timeout
        raw.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")


def store_summaries(session: Session, made: Sequence[tuple[Unsummarized, str]]) -> None:
    """Each summary ("" for none) written where its row still waits for one, with the text it was made from.

    Two readers filling one row write the same text, and the second finds it written. A
    pass that changed the release meanwhile set it waiting again: the comparison keeps a
    summary of the old text off the new one.
    """
    _update(session.connection(), made)


def _update(connection: sa.Connection, made: Sequence[tuple[Unsummarized, str]]) -> None:
    if not made:
        return
    statement = (
        sa.update(tables.items)
        .where(
            _items.id == sa.bindparam("b_id"),
            _items.summary == tables.SUMMARY_PENDING,
            _items.title == sa.bindparam("b_title"),
            _items.teaser == sa.bindparam("b_teaser"),
            _items.content == sa.bindparam("b_content"),
            _items.full_text.is_not_distinct_from(sa.bindparam("b_full_text", type_=sa.Text)),
            _items.language.is_not_distinct_from(sa.bindparam("b_language", type_=sa.String)),
        )
        .values(summary=sa.bindparam("b_summary"))
    )
    rows = [
        {"b_id": release.item_id, "b_title": release.title, "b_teaser": release.teaser,
         "b_content": release.content, "b_full_text": release.full_text, "b_language": release.language,
         "b_summary": summary or None}
        for release, summary in made
    ]  # fmt: skip
    connection.execute(statement, rows)


def has_alert(session: Session, item_id: int) -> bool:
    """Whether any alert was made for the release (a posted one's message is rebuilt on each edit)."""
    query = sa.select(tables.alerts.c.id).where(tables.alerts.c.item_id == item_id).limit(1)
    return session.execute(query).first() is not None
