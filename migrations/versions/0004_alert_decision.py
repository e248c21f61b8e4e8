"""Keep the alert policy's decision on each alert row (issue 13).

Routing and holding were worked out again at delivery from the settings of that
moment; now the decision made when the alert was created travels with it: the flags
routed to the channel, why that channel, and why a row is held. Older rows keep
NULL: delivery then shows every flag of the release, as the decision cannot be
rebuilt from settings that may have changed since.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = ("flags", "route", "hold_reason")


def upgrade() -> None:
    # Plain ADD COLUMNs: batch mode would rebuild alerts on SQLite for nothing.
    op.add_column("alerts", sa.Column("flags", sa.JSON(), nullable=True))
    op.add_column("alerts", sa.Column("route", sa.String(20), nullable=True))
    op.add_column("alerts", sa.Column("hold_reason", sa.String(20), nullable=True))


def downgrade() -> None:
    # In place, as 0003 does: batch mode on SQLite would copy and drop the table.
    for column in _COLUMNS:
        op.execute(f"ALTER TABLE alerts DROP COLUMN {column}")
