"""Groups whose head was pruned get the oldest remaining copy as their head (issue 18).

Before prune promoted heads itself (bot.store.retention), pruning a group's head left
its copies' ``group_id`` on a release that no longer exists: a grouped query showed
none of them, and a later copy joined a group with no head. The same rule as prune's:
the oldest copy left (lowest id, the copy stored first) becomes the head, and a copy
left alone has no group.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_items = sa.table("items", sa.column("id", sa.Integer()), sa.column("group_id", sa.Integer()))


def upgrade() -> None:
    heads = sa.alias(_items, "heads")
    headless = ~sa.exists().where(heads.c.id == _items.c.group_id)
    connection = op.get_bind()
    orphans = connection.execute(
        sa.select(_items.c.group_id, sa.func.min(_items.c.id), sa.func.count())
        .where(_items.c.group_id.is_not(None), headless)
        .group_by(_items.c.group_id)
    ).all()
    for old_head, new_head, left in orphans:
        connection.execute(
            sa.update(_items).where(_items.c.group_id == old_head).values(group_id=new_head if left > 1 else None)
        )


def downgrade() -> None:
    pass  # the dangling heads are not worth restoring
