"""Copies of one release across feeds grouped (issue 18).

``items.group_id`` names the group's head (the copy stored first); ``item_bands``
holds the MinHash band keys of each release's main text, indexed so a new release
finds its near-copies by lookup; ``alerts.slack_channel_id`` keeps the channel id
Slack answered a post with, which chat.update and thread replies need.

Plain ADD COLUMN, no batch: on SQLite a batch rebuild of ``items`` would drop the
full-text triggers of migration 0002.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("items", sa.Column("group_id", sa.Integer(), nullable=True))
    op.create_index("ix_items_group_id", "items", ["group_id"], unique=False)
    op.add_column("alerts", sa.Column("slack_channel_id", sa.String(length=50), nullable=True))
    op.create_table(
        "item_bands",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("band_key", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["item_id"], ["items.id"], name=op.f("fk_item_bands_item_id_items"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_item_bands")),
    )
    op.create_index("ix_item_bands_item_id", "item_bands", ["item_id"], unique=False)
    op.create_index("ix_item_bands_band_key", "item_bands", ["band_key"], unique=False)


def downgrade() -> None:
    op.drop_table("item_bands")
    with op.batch_alter_table("alerts", schema=None) as batch_op:
        batch_op.drop_column("slack_channel_id")
    op.drop_index("ix_items_group_id", table_name="items")
    op.drop_column("items", "group_id")
