"""The ORM classes the pipeline's storage code works with, mapped onto ``bot.tables``.

The columns, constraints and indexes are defined there (and changed only through
Alembic migrations); the annotations here give each attribute its Python type.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import DeclarativeBase, Mapped, relationship

from bot import tables


class Base(DeclarativeBase):
    metadata = tables.metadata


class Feed(Base):
    __table__ = tables.feeds

    id: Mapped[int]
    name: Mapped[str]
    url: Mapped[str]
    configured_url: Mapped[str]
    tags: Mapped[list[str]]
    title: Mapped[str | None]
    language: Mapped[str | None]
    enabled: Mapped[bool]
    full_text: Mapped[bool]
    channel: Mapped[str | None]
    etag: Mapped[str | None]
    last_modified: Mapped[str | None]
    content_hash: Mapped[str | None]
    created_at: Mapped[datetime]
    first_polled_at: Mapped[datetime | None]
    last_checked_at: Mapped[datetime | None]
    last_success_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None]
    last_error_at: Mapped[datetime | None]
    consecutive_failures: Mapped[int]
    failing_since: Mapped[datetime | None]
    disabled_reason: Mapped[str | None]
    health_notice_at: Mapped[datetime | None]
    interval_seconds: Mapped[int | None]
    next_check_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]
    pruned_before: Mapped[datetime | None]
    muted_until: Mapped[datetime | None]
    muted_by: Mapped[str | None]

    items: Mapped[list[Item]] = relationship(back_populates="feed", passive_deletes=True)


class Item(Base):
    __table__ = tables.items

    id: Mapped[int]
    feed_id: Mapped[int]
    key: Mapped[str]
    guid: Mapped[str | None]
    url: Mapped[str | None]
    title: Mapped[str]
    teaser: Mapped[str]
    content: Mapped[str]
    content_hash: Mapped[str]
    published_at: Mapped[datetime | None]
    updated_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime]
    changed_at: Mapped[datetime]
    language: Mapped[str | None]
    summary: Mapped[str | None]
    indexed_summary: Mapped[str | None]
    full_text: Mapped[str | None]
    full_text_error: Mapped[str | None]
    full_text_attempts: Mapped[int]
    flags: Mapped[list[str]]
    group_id: Mapped[int | None]

    feed: Mapped[Feed] = relationship(back_populates="items")
    matches: Mapped[list[FlagMatchRow]] = relationship(
        back_populates="item", cascade="all, delete-orphan", passive_deletes=True
    )


class AlertChange(Base):
    __table__ = tables.alert_changes

    id: Mapped[int]
    alert_id: Mapped[int]
    kind: Mapped[str]
    status: Mapped[str]
    created_at: Mapped[datetime]
    text: Mapped[str | None]
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None]
    posting_started_at: Mapped[datetime | None]
    sent_at: Mapped[datetime | None]
    reply_ts: Mapped[str | None]
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]


class DigestRow(Base):
    __table__ = tables.digests

    id: Mapped[int]
    name: Mapped[str]
    period_start: Mapped[datetime]
    period_end: Mapped[datetime]
    channel: Mapped[str]
    status: Mapped[str]
    late: Mapped[bool]
    so_far: Mapped[bool]
    releases: Mapped[int]
    created_at: Mapped[datetime]
    messages: Mapped[list[dict[str, Any]] | None]
    parts_sent: Mapped[int]
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None]
    posting_started_at: Mapped[datetime | None]
    slack_ts: Mapped[str | None]
    slack_channel_id: Mapped[str | None]
    sent_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]


class ItemBand(Base):
    __table__ = tables.item_bands

    id: Mapped[int]
    item_id: Mapped[int]
    band_key: Mapped[int]


class ItemAlias(Base):
    __table__ = tables.item_aliases

    id: Mapped[int]
    feed_id: Mapped[int]
    item_id: Mapped[int]
    url: Mapped[str]


class FlagMatchRow(Base):
    __table__ = tables.flag_matches

    id: Mapped[int]
    item_id: Mapped[int]
    flag: Mapped[str]
    phrase: Mapped[str]
    sentence: Mapped[str]
    field: Mapped[str]

    item: Mapped[Item] = relationship(back_populates="matches")


class Alert(Base):
    """The Slack outbox. One row per release per channel, whatever flags matched."""

    __table__ = tables.alerts

    id: Mapped[int]
    item_id: Mapped[int]
    channel: Mapped[str]
    status: Mapped[str]
    created_at: Mapped[datetime]
    attempts: Mapped[int]
    next_attempt_at: Mapped[datetime | None]
    last_error: Mapped[str | None]
    posting_started_at: Mapped[datetime | None]
    slack_ts: Mapped[str | None]
    slack_channel_id: Mapped[str | None]
    sent_at: Mapped[datetime | None]
    claimed_by: Mapped[str | None]
    claimed_until: Mapped[datetime | None]
    flags: Mapped[list[str] | None]
    route: Mapped[str | None]
    hold_reason: Mapped[str | None]


class VerdictRow(Base):
    __table__ = tables.verdicts

    id: Mapped[int]
    alert_id: Mapped[int | None]
    item_id: Mapped[int]
    kind: Mapped[str]
    flags: Mapped[list[str]]
    relevant: Mapped[bool]
    user_id: Mapped[str]
    created_at: Mapped[datetime]
    action_ts: Mapped[str | None]


class PassRecord(Base):
    __table__ = tables.passes

    id: Mapped[int]
    started_at: Mapped[datetime]
    finished_at: Mapped[datetime | None]
    worker: Mapped[str | None]
    summary: Mapped[dict[str, Any]]
