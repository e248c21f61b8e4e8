"""The URLs a listing page gives its releases (issue 17: page sources).

A release read from a newsroom listing is identified by its page's canonical URL; the
URL the listing links to is kept here as an alias, so that a listed link is recognised
on later passes without fetching its page again.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "item_aliases",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("feed_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["feed_id"], ["feeds.id"], name=op.f("fk_item_aliases_feed_id_feeds"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_aliases_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_aliases")),
        sa.UniqueConstraint("feed_id", "url", name=op.f("uq_item_aliases_feed_id")),
    )
    with op.batch_alter_table("item_aliases", schema=None) as batch_op:
        batch_op.create_index("ix_item_aliases_item_id", ["item_id"], unique=False)


def downgrade() -> None:
    op.drop_table("item_aliases")
