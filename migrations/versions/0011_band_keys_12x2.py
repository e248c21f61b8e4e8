"""Every stored release's band keys made anew: 12 bands of 2 min-hashes, not 21 of 3 (issue 18).

bot.group cut the MinHash signature into 21 bands of 3; it now cuts 24 min-hashes into
12 bands of 2 (as many copies found on the labelled pairs, 12 rows a release to write
instead of 21). A key of the old layout never equals one of the new, so without this
a new release would find no near copy among those stored before the upgrade. Made by
bot.group itself: the keys must be those the running code looks up (a later change of
the layout needs a migration of its own again).

Releases are read 200 at a time, and of each text only what grouping compares (its
first ``MAX_COMPARED_CHARS`` characters): a 10 MB release costs no more than a short one.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from bot import group

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_BATCH = 200
_items = sa.table(
    "items",
    sa.column("id", sa.Integer()),
    sa.column("teaser", sa.Text()),
    sa.column("content", sa.Text()),
    sa.column("full_text", sa.Text()),
)
_bands = sa.table("item_bands", sa.column("item_id", sa.Integer()), sa.column("band_key", sa.BigInteger()))


def _prefix(column: sa.ColumnClause[str]) -> sa.ColumnElement[str]:
    return sa.func.substr(column, 1, group.MAX_COMPARED_CHARS)


def upgrade() -> None:
    connection = op.get_bind()
    connection.execute(sa.delete(_bands))
    content, full_text = _items.c.content, _items.c.full_text
    query = sa.select(
        _items.c.id,
        _prefix(_items.c.teaser),
        _prefix(content),
        _prefix(full_text),
        # bot.group.main_text takes the page's text when it is the longer: by the whole lengths
        sa.func.coalesce(sa.func.length(full_text), 0) > sa.func.length(content),
    ).order_by(_items.c.id)
    last = 0
    while True:
        rows = connection.execute(query.where(_items.c.id > last).limit(_BATCH)).all()
        if not rows:
            break
        bands = [
            {"item_id": item_id, "band_key": key}
            for item_id, teaser, content_start, full_start, page_longer in rows
            for key in group.band_keys(group.shingles((full_start if page_longer else content_start) or teaser))
        ]
        if bands:
            connection.execute(sa.insert(_bands), bands)
        last = rows[-1][0]


def downgrade() -> None:
    # The code of revision 0010 looks up keys of the old layout, which this cannot make:
    # without band keys, its releases find copies by key and link only until their
    # keys are made again.
    op.get_bind().execute(sa.delete(_bands))
