"""Retention: ``pressbot prune`` deletes old releases, flagged ones kept unless asked.

A feed may still list a release prune deleted; the next poll stores it as new, and
the cutoff recorded here keeps it from being alerted a second time (bot.policy).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import tables

_items = tables.items.c
_feeds = tables.feeds.c
_matches = tables.flag_matches.c


def _prunable(cutoff: datetime, *, keep_flagged: bool) -> sa.Select[Any]:
    query = sa.select(_items.id).where(tables.sort_date() < cutoff)
    if keep_flagged:
        query = query.where(~sa.exists().where(_matches.item_id == _items.id))
    return query


def count_prunable(session: Session, cutoff: datetime, *, keep_flagged: bool) -> int:
    query = _prunable(cutoff, keep_flagged=keep_flagged).subquery()
    return session.scalar(sa.select(sa.func.count()).select_from(query)) or 0


def record_prune(session: Session, cutoff: datetime) -> None:
    """Note the cutoff on every feed: a deleted release its feed still lists, stored
    again by the next poll, is then not alerted a second time (``bot.policy.hold_reason``)."""
    session.execute(
        sa.update(tables.feeds)
        .where(sa.or_(_feeds.pruned_before.is_(None), _feeds.pruned_before < cutoff))
        .values(pruned_before=cutoff)
    )


def prune_items(session: Session, cutoff: datetime, *, keep_flagged: bool, batch: int = 2000) -> int:
    """Delete up to ``batch`` items dated before ``cutoff``; returns how many (call until 0).

    Batches keep each transaction short: a running worker waits for the write lock
    (SQLite) or the rows (PostgreSQL) only briefly. Their flag matches and alerts go
    with them (ON DELETE CASCADE); the search index follows through its triggers.
    """
    query = _prunable(cutoff, keep_flagged=keep_flagged).order_by(_items.id).limit(batch)
    ids = list(session.scalars(query))
    if ids:
        session.execute(sa.delete(tables.items).where(_items.id.in_(ids)))
        _promote_heads(session, ids)
    return len(ids)


def _promote_heads(session: Session, deleted: list[int]) -> None:
    """A deleted head's copies stay one group, under the oldest one left (bot.store.groups:
    the head is the copy stored first); a copy left alone has no group. Else a grouped
    query, which shows a group as its head, would show none of them."""
    orphans = session.execute(
        sa.select(_items.group_id, sa.func.min(_items.id), sa.func.count())
        .where(_items.group_id.in_(deleted))
        .group_by(_items.group_id)
    ).all()
    for old_head, new_head, left in orphans:
        session.execute(
            sa.update(tables.items).where(_items.group_id == old_head).values(group_id=new_head if left > 1 else None)
        )


