"""Remember how far back ``pressbot prune`` has deleted each feed's releases.

A feed may still list a release that prune deleted; the next poll then stores it as
new. Releases dated before ``feeds.pruned_before`` are such returns and are not
alerted again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A plain ADD COLUMN: batch mode would rebuild feeds on SQLite for nothing.
    op.add_column("feeds", sa.Column("pruned_before", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # Not batch mode: on SQLite it would copy and drop ``feeds``, and with foreign keys on
    # dropping the parent table fails (or cascades to every item). SQLite ≥ 3.35 and
    # PostgreSQL both drop a column in place.
    op.execute("ALTER TABLE feeds DROP COLUMN pruned_before")
