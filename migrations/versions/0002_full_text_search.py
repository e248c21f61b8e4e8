"""Full-text search over items (issue 8), plus the indexes that filtered queries use.

SQLite: an FTS5 external-content table ``items_fts`` over title, teaser, content,
full_text and summary, tokenized ``unicode61 remove_diacritics 2`` so that
"represailles" finds "représailles", and kept in sync with ``items`` by triggers.
It also indexes ``flags`` (the JSON list of flag names): a search for common words
among the icc-flagged releases then intersects with the short "icc" list inside the
index instead of ranking every release that says "human rights".
A later migration that rebuilds ``items`` in batch mode (copy, drop, rename) drops
these triggers with the old table: it must create them again (``_SQLITE_TRIGGERS``).

PostgreSQL: a generated ``tsvector`` column with a GIN index, built with the text
search configuration ``pressbot``: ``simple`` (no stemming: releases come in many
languages) plus ``unaccent`` when the server lets us create that extension.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

log = logging.getLogger(__name__)

_COLUMNS = "title, teaser, content, full_text, summary, flags"
_NEW = "new.id, new.title, new.teaser, new.content, new.full_text, new.summary, new.flags"
_OLD = "'delete', old.id, old.title, old.teaser, old.content, old.full_text, old.summary, old.flags"

_SQLITE_FTS = f"""
CREATE VIRTUAL TABLE items_fts USING fts5(
    {_COLUMNS},
    content='items', content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
)"""

# External content: FTS5 stores only the index, so a delete must be given the old
# values to remove their tokens (sqlite.org/fts5.html §4.4.3).
_SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN
        INSERT INTO items_fts(rowid, {_COLUMNS}) VALUES ({_NEW});
    END""",
    f"""CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, {_COLUMNS}) VALUES ({_OLD});
    END""",
    # Only when indexed columns change: bookkeeping updates leave the index alone.
    f"""CREATE TRIGGER items_fts_update AFTER UPDATE OF {_COLUMNS} ON items BEGIN
        INSERT INTO items_fts(items_fts, rowid, {_COLUMNS}) VALUES ({_OLD});
        INSERT INTO items_fts(rowid, {_COLUMNS}) VALUES ({_NEW});
    END""",
)

# A tsvector is limited to 1 MB; a runaway article page must not make an insert fail.
_PG_MAX_CHARS = 200_000
_PG_VECTOR = f"""
    setweight(to_tsvector('pressbot'::regconfig, coalesce(title, '')), 'A')
    || setweight(to_tsvector('pressbot'::regconfig, coalesce(teaser, '') || ' ' || coalesce(summary, '')), 'B')
    || setweight(to_tsvector('pressbot'::regconfig, left(coalesce(content, ''), {_PG_MAX_CHARS})), 'C')
    || setweight(to_tsvector('pressbot'::regconfig, left(coalesce(full_text, ''), {_PG_MAX_CHARS})), 'D')
"""


def _create_unaccent(bind: sa.Connection) -> bool:
    """unaccent is a trusted extension (PostgreSQL 13+), but a hosted database may still refuse it."""
    available = bind.execute(sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'unaccent'")).first()
    if available is None:
        log.warning("PostgreSQL has no unaccent extension: searches will be accent-sensitive")
        return False
    try:
        with bind.begin_nested():
            bind.execute(sa.text("CREATE EXTENSION IF NOT EXISTS unaccent"))
    except sa.exc.DBAPIError as exc:
        log.warning("cannot create the unaccent extension (%s): searches will be accent-sensitive", exc.orig)
        return False
    return True


def _upgrade_postgresql(bind: sa.Connection) -> None:
    op.execute("CREATE TEXT SEARCH CONFIGURATION pressbot (COPY = pg_catalog.simple)")
    if _create_unaccent(bind):
        op.execute(
            "ALTER TEXT SEARCH CONFIGURATION pressbot ALTER MAPPING FOR hword, hword_part, word WITH unaccent, simple"
        )
    op.execute(f"ALTER TABLE items ADD COLUMN search_vector tsvector GENERATED ALWAYS AS ({_PG_VECTOR}) STORED")
    op.execute("CREATE INDEX ix_items_search_vector ON items USING gin (search_vector)")


def _upgrade_sqlite() -> None:
    op.execute(_SQLITE_FTS)
    for trigger in _SQLITE_TRIGGERS:
        op.execute(trigger)
    op.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        _upgrade_postgresql(bind)
    elif bind.dialect.name == "sqlite":
        _upgrade_sqlite()
    else:
        raise NotImplementedError(f"full-text search is built for SQLite and PostgreSQL, not {bind.dialect.name}")
    # `query --sort date` and the --since/--until filters use this expression.
    op.create_index("ix_items_sort_date", "items", [sa.text("coalesce(published_at, first_seen_at)")])
    # `query --flag NAME`: from the flag to its items without touching the matches' text.
    op.create_index("ix_flag_matches_flag_item_id", "flag_matches", ["flag", "item_id"])


def downgrade() -> None:
    op.drop_index("ix_flag_matches_flag_item_id", table_name="flag_matches")
    op.drop_index("ix_items_sort_date", table_name="items")
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX ix_items_search_vector")
        op.execute("ALTER TABLE items DROP COLUMN search_vector")
        op.execute("DROP TEXT SEARCH CONFIGURATION pressbot")
    else:
        for name in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
            op.execute(f"DROP TRIGGER {name}")
        op.execute("DROP TABLE items_fts")
