"""The database schema (SQLAlchemy 2 ORM). Changed only through Alembic migrations.

Tables: ``feeds`` (sources, HTTP cache validators, health and schedule), ``items``
(one row per release per feed), ``flag_matches`` (derived: why an item is flagged),
``alerts`` (the Slack outbox: one row per item per channel) and ``passes`` (what each
pass did, for ``pressbot status``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

# Named constraints let Alembic's batch mode (SQLite) alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns aware datetimes (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment: datetime = value
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    url: Mapped[str] = mapped_column(Text)
    configured_url: Mapped[str] = mapped_column(Text)  # to notice config edits vs redirects
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    title: Mapped[str | None] = mapped_column(Text)
    language: Mapped[str | None] = mapped_column(String(20))
    enabled: Mapped[bool] = mapped_column(default=True)
    full_text: Mapped[bool] = mapped_column(default=False)
    channel: Mapped[str | None] = mapped_column(String(200))
    # HTTP cache validators (RFC 9110 §8.8) and the hash of the last parsed body.
    etag: Mapped[str | None] = mapped_column(Text)
    last_modified: Mapped[str | None] = mapped_column(Text)
    content_hash: Mapped[str | None] = mapped_column(String(64))
    # Health.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    first_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_checked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_success_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(Integer)
    last_error: Mapped[str | None] = mapped_column(Text)
    last_error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    consecutive_failures: Mapped[int] = mapped_column(Integer, default=0)
    failing_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    health_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Schedule and multi-worker claims.
    interval_seconds: Mapped[int | None] = mapped_column(Integer)
    next_check_at: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    items: Mapped[list[Item]] = relationship(back_populates="feed", passive_deletes=True)


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        UniqueConstraint("feed_id", "key"),
        Index("ix_items_published_at", "published_at"),
        # One release seen through several feeds is found by its key or link.
        Index("ix_items_key", "key"),
        Index("ix_items_url", "url"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    feed_id: Mapped[int] = mapped_column(ForeignKey("feeds.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(500))
    guid: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text, default="")
    teaser: Mapped[str] = mapped_column(Text, default="")
    content: Mapped[str] = mapped_column(Text, default="")
    content_hash: Mapped[str] = mapped_column(String(64))
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    language: Mapped[str | None] = mapped_column(String(20))
    summary: Mapped[str | None] = mapped_column(Text)
    # Full text of the release page (fulltext stage).
    full_text: Mapped[str | None] = mapped_column(Text)
    full_text_error: Mapped[str | None] = mapped_column(Text)
    full_text_attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Derived from flag_matches (the flag names), so queries filter without a join.
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)

    feed: Mapped[Feed] = relationship(back_populates="items")
    matches: Mapped[list[FlagMatchRow]] = relationship(
        back_populates="item", cascade="all, delete-orphan", passive_deletes=True
    )


class FlagMatchRow(Base):
    __tablename__ = "flag_matches"
    # Created by migration 0002: `--flag` filters walk it flag-first.
    __table_args__ = (Index("ix_flag_matches_flag_item_id", "flag", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"), index=True)
    flag: Mapped[str] = mapped_column(String(100), index=True)
    phrase: Mapped[str] = mapped_column(Text)
    sentence: Mapped[str] = mapped_column(Text)
    field: Mapped[str] = mapped_column(String(20))

    item: Mapped[Item] = relationship(back_populates="matches")


class Alert(Base):
    """The Slack outbox. One row per release per channel, whatever flags matched."""

    __tablename__ = "alerts"
    __table_args__ = (
        UniqueConstraint("item_id", "channel"),
        Index("ix_alerts_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(200))
    # pending → sent | failed; "held" = older than the first-pass window, never sent.
    status: Mapped[str] = mapped_column(String(20), default="pending")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    # Set just before posting: if the row is seen again with this set and no ts, the
    # post may have reached Slack and the channel history is checked first.
    posting_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    slack_ts: Mapped[str | None] = mapped_column(String(50))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(100))
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PassRecord(Base):
    __tablename__ = "passes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    worker: Mapped[str | None] = mapped_column(String(100))
    summary: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


# Full-text search objects live outside the models (migration 0002): Alembic's
# autogenerate and drift checks must not propose dropping them.
_SEARCH_OBJECTS = ("items_fts", "search_vector", "ix_items_search_vector", "ix_items_sort_date")


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (reflected and compare_to is None and name is not None and name.startswith(_SEARCH_OBJECTS))
