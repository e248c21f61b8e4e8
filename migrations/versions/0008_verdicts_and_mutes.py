"""The team's verdicts on alerts, and feeds muted from Slack (issue 19).

``verdicts``: one row per alert per Slack user ("Relevant" / "Not relevant"; a later
click by the same user replaces theirs), and the releases a flag missed, reported with
``pressbot feedback missed`` or ``/pressbot missed`` (no alert: ``alert_id`` NULL).
``feeds.muted_until`` / ``muted_by``: a feed muted for a while is still polled and
stored, but its alerts are held (``hold_reason = 'muted'``).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FEED_COLUMNS = ("muted_until", "muted_by")


def upgrade() -> None:
    op.create_table(
        "verdicts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("alert_id", sa.Integer(), nullable=True),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("flags", sa.JSON(), nullable=False),
        sa.Column("relevant", sa.Boolean(), nullable=False),
        sa.Column("user_id", sa.String(length=100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action_ts", sa.String(length=50), nullable=True),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_verdicts_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], name=op.f("fk_verdicts_item_id_items"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_verdicts")),
        sa.UniqueConstraint("alert_id", "user_id", name=op.f("uq_verdicts_alert_id")),
    )
    op.create_index("ix_verdicts_item_id", "verdicts", ["item_id"], unique=False)
    op.create_index("ix_verdicts_created_at", "verdicts", ["created_at"], unique=False)
    # Plain ADD COLUMNs: batch mode would rebuild feeds on SQLite for nothing.
    op.add_column("feeds", sa.Column("muted_until", sa.DateTime(timezone=True), nullable=True))
    op.add_column("feeds", sa.Column("muted_by", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_table("verdicts")
    # In place, as 0003 does: batch mode on SQLite would copy and drop feeds (and cascade).
    for column in _FEED_COLUMNS:
        op.execute(f"ALTER TABLE feeds DROP COLUMN {column}")
