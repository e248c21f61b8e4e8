"""The full-text index reads ``items.indexed_summary``, not ``summary`` (issues 14 and 16).

A summary made on first read (a release the pass did not summarise) is an UPDATE of
``summary``. While ``summary`` was an indexed column, on SQLite that UPDATE made the
external-content FTS5 table delete and re-add every word of the release (a 10 MB one:
its whole text tokenised twice), and on PostgreSQL recomputed ``search_vector``. Such a
summary is sentences of the release's own text, whose words are indexed already; the
index now holds ``indexed_summary``, the summary as the pass (or ``set_summary``) wrote
it. Both columns start equal, so every search answers as before.

SQLite: the FTS5 table and its triggers are made again over the new column and the
index rebuilt (one pass over the archive). PostgreSQL: ``search_vector`` is generated
again from ``indexed_summary`` (PostgreSQL recomputes a stored generated column only
when a column it reads is updated). A later migration that rebuilds ``items`` in batch
mode drops the triggers with the old table and must create ``_SQLITE_TRIGGERS`` again.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TRIGGER_NAMES = ("items_fts_insert", "items_fts_delete", "items_fts_update")


def _sqlite_fts(summary: str) -> tuple[str, tuple[str, ...]]:
    """The FTS5 table and its triggers (migration 0002's), indexing ``summary`` as the summary column."""
    columns = f"title, teaser, content, full_text, {summary}, flags"
    new = f"new.id, new.title, new.teaser, new.content, new.full_text, new.{summary}, new.flags"
    old = f"'delete', old.id, old.title, old.teaser, old.content, old.full_text, old.{summary}, old.flags"
    table = f"""
CREATE VIRTUAL TABLE items_fts USING fts5(
    {columns},
    content='items', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
)"""
    triggers = (
        f"""CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
        INSERT INTO items_fts(rowid, {columns}) VALUES ({new});
    END""",
        f"""CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, {columns}) VALUES ({old});
    END""",
        # Only when indexed columns change: bookkeeping (language, group) and a summary
        # made on first read leave the index alone.
        f"""CREATE TRIGGER items_fts_update AFTER UPDATE OF {columns} ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, {columns}) VALUES ({old});
        INSERT INTO items_fts(rowid, {columns}) VALUES ({new});
    END""",
    )
    return table, triggers


_SQLITE_TABLE, _SQLITE_TRIGGERS = _sqlite_fts("indexed_summary")

# Migration 0002's vector, the summary column named.
_PG_MAX_CHARS = 200_000


def _pg_vector(summary: str) -> str:
    return f"""
    setweight(to_tsvector('pressbot'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('pressbot'::regconfig, coalesce(teaser, '') || ' ' || coalesce({summary}, '')), 'B')
    || setweight(to_tsvector('pressbot'::regconfig, left(coalesce(content, ''), {_PG_MAX_CHARS})), 'C')
    || setweight(to_tsvector('pressbot'::regconfig, left(coalesce(full_text, ''), {_PG_MAX_CHARS})), 'D')
"""


def _sqlite_index(summary: str) -> None:
    for name in _TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS items_fts")
    table, triggers = _sqlite_fts(summary)
    op.execute(table)
    for trigger in triggers:
        op.execute(trigger)
    op.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")


def _postgresql_vector(summary: str) -> None:
    op.execute("DROP INDEX IF EXISTS ix_items_search_vector")
    op.execute("ALTER TABLE items DROP COLUMN search_vector")
    op.execute(f"ALTER TABLE items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({_pg_vector(summary)}) STORED")
    op.execute("CREATE INDEX ix_items_search_vector ON items USING gin (search_vector)")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Dropped first: the old update trigger must not see the column being filled.
        for name in _TRIGGER_NAMES:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.add_column("items", sa.Column("indexed_summary", sa.Text(), nullable=True))
    op.execute("UPDATE items SET indexed_summary = summary")
    if bind.dialect.name == "postgresql":
        _postgresql_vector("indexed_summary")
    else:
        _sqlite_index("indexed_summary")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _postgresql_vector("summary")
        op.drop_column("items", "indexed_summary")
        return
    for name in _TRIGGER_NAMES:
        op.execute(f"DROP TRIGGER IF EXISTS {name}")
    op.execute("DROP TABLE IF EXISTS items_fts")
    op.drop_column("items", "indexed_summary")
    _sqlite_index("summary")
