"""The database tables (SQLAlchemy Core). Changed only through Alembic migrations.

``feeds`` (sources, HTTP cache validators, health and schedule), ``items`` (one row
per release per feed), ``flag_matches`` (derived: why an item is flagged), ``alerts``
(the Slack outbox: one row per item per channel) and ``passes`` (what each pass did,
for ``pressbot status``).

Plain tables, apart from the ORM classes of ``bot.schema`` that map onto them: a
search (``pressbot query``, the slash command) needs only these, and building the
ORM mapping would cost a one-off query process a tenth of its time.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql import ColumnElement

# Named constraints let Alembic's batch mode (SQLite) alter them later.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)


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


def sort_date() -> ColumnElement[datetime]:
    """The date searches filter and sort on, and prune cuts at; migration 0002 indexes this very expression."""
    return func.coalesce(items.c.published_at, items.c.first_seen_at)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _required(name: str, type_: Any, *args: Any, **kwargs: Any) -> Column[Any]:
    return Column(name, type_, *args, nullable=False, **kwargs)


feeds = Table(
    "feeds",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("name", String(200), unique=True),
    _required("url", Text),
    _required("configured_url", Text),  # to notice config edits vs redirects
    _required("tags", JSON, default=list),
    Column("title", Text),
    Column("language", String(20)),
    _required("enabled", Boolean, default=True),
    _required("full_text", Boolean, default=False),
    Column("channel", String(200)),
    # HTTP cache validators (RFC 9110 §8.8) and the hash of the last parsed body.
    Column("etag", Text),
    Column("last_modified", Text),
    Column("content_hash", String(64)),
    # Health.
    _required("created_at", UTCDateTime, default=utcnow),
    Column("first_polled_at", UTCDateTime),
    Column("last_checked_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    _required("consecutive_failures", Integer, default=0),
    Column("failing_since", UTCDateTime),
    Column("disabled_reason", Text),
    Column("health_notice_at", UTCDateTime),
    # Schedule and multi-worker claims.
    Column("interval_seconds", Integer),
    Column("next_check_at", UTCDateTime, index=True),
    Column("claimed_by", String(100)),
    Column("claimed_until", UTCDateTime),
    # Retention: `pressbot prune` deleted this feed's releases dated before this.
    Column("pruned_before", UTCDateTime),
    # Muted from Slack (migration 0008, issue 19): polled and stored, its alerts held
    # until then; who muted it (a Slack user id, or "cli").
    Column("muted_until", UTCDateTime),
    Column("muted_by", String(100)),
)

# A release whose summary a reader makes when it first shows it (a made summary is never "").
SUMMARY_PENDING = ""

items = Table(
    "items",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE")),
    _required("key", String(500)),
    Column("guid", Text),
    Column("url", Text),
    _required("title", Text, default=""),
    _required("teaser", Text, default=""),
    _required("content", Text, default=""),
    _required("content_hash", String(64)),
    Column("published_at", UTCDateTime),
    Column("updated_at", UTCDateTime),
    _required("first_seen_at", UTCDateTime, default=utcnow),
    _required("changed_at", UTCDateTime, default=utcnow),
    Column("language", String(20)),
    # NULL: none (its text has no lede); SUMMARY_PENDING: not made yet, made on first read
    # (bot.summaries; a pass makes only the summaries Slack shows, issue 16).
    Column("summary", Text),
    # The summary as the full-text index has it (migration 0010): the pass's, or one set
    # with set_summary. A summary made later on first read is written to ``summary``
    # alone: an UPDATE of an indexed column re-indexes the whole release on SQLite, and
    # such a summary is sentences of the text, whose words are indexed already.
    Column("indexed_summary", Text),
    # Full text of the release page (fulltext stage).
    Column("full_text", Text),
    Column("full_text_error", Text),
    _required("full_text_attempts", Integer, default=0),
    # Derived from flag_matches (the flag names), so queries filter without a join.
    _required("flags", JSON, default=list),
    # Copies of one release across feeds (migration 0006): the id of the group's head,
    # the copy stored first (the head's own id on the head); NULL for a release alone.
    Column("group_id", Integer),
    UniqueConstraint("feed_id", "key"),
    Index("ix_items_published_at", "published_at"),
    # One release seen through several feeds is found by its key or link.
    Index("ix_items_key", "key"),
    Index("ix_items_url", "url"),
    Index("ix_items_group_id", "group_id"),
)

# MinHash band keys of each release's main text (migration 0006, bot.group): a new
# release finds its near-copies by an index lookup of its keys, however big the archive.
item_bands = Table(
    "item_bands",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), index=True),
    _required("band_key", BigInteger),
    Index("ix_item_bands_band_key", "band_key"),
)

# The URLs a listing page links a release under (migration 0005): a listed link is
# recognised without fetching its page again, whatever canonical URL the page gave.
item_aliases = Table(
    "item_aliases",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("feed_id", Integer, ForeignKey("feeds.id", ondelete="CASCADE")),
    _required("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), index=True),
    _required("url", Text),
    UniqueConstraint("feed_id", "url"),
)

flag_matches = Table(
    "flag_matches",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), index=True),
    _required("flag", String(100), index=True),
    _required("phrase", Text),
    _required("sentence", Text),
    _required("field", String(20)),
    # Created by migration 0002: `--flag` filters walk it flag-first.
    Index("ix_flag_matches_flag_item_id", "flag", "item_id"),
)

# The Slack outbox. One row per release per channel, whatever flags matched.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE")),
    _required("channel", String(200)),
    # pending → sent | failed; "held" = older than the first-pass window, never sent.
    _required("status", String(20), default="pending"),
    _required("created_at", UTCDateTime, default=utcnow),
    _required("attempts", Integer, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    # Set just before posting: if the row is seen again with this set and no ts, the
    # post may have reached Slack and the channel history is checked first.
    Column("posting_started_at", UTCDateTime),
    Column("slack_ts", String(50)),
    # The channel id Slack answered the post with (migration 0006): chat.update and
    # thread replies take no channel names.
    Column("slack_channel_id", String(50)),
    Column("sent_at", UTCDateTime),
    Column("claimed_by", String(100)),
    Column("claimed_until", UTCDateTime),
    # The alert policy's decision, made when the row was created (migration 0004): the
    # flags routed to this channel (NULL on older rows: all of them), why the channel
    # (feed, flag or default) and why the row is held.
    Column("flags", JSON),
    Column("route", String(20)),
    Column("hold_reason", String(20)),
    UniqueConstraint("item_id", "channel"),
    Index("ix_alerts_status_next_attempt_at", "status", "next_attempt_at"),
)

# Changes to posted alerts (migration 0007, issue 18): edits of the message (a copy or a
# flag joined its group) and replies in its thread (the release changed), each sent
# once through the same claim → mark → record steps as the alerts themselves.
alert_changes = Table(
    "alert_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("alert_id", Integer, ForeignKey("alerts.id", ondelete="CASCADE"), index=True),
    _required("kind", String(20)),
    _required("status", String(20), default="pending"),
    _required("created_at", UTCDateTime, default=utcnow),
    Column("text", Text),
    _required("attempts", Integer, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("posting_started_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    Column("reply_ts", String(50)),
    Column("claimed_by", String(100)),
    Column("claimed_until", UTCDateTime),
    Index("ix_alert_changes_status_next_attempt_at", "status", "next_attempt_at"),
)

# The team's verdicts (migration 0008, issue 19): "Relevant" / "Not relevant" on an alert,
# one per alert per user (a later click replaces theirs), and releases a flag missed
# (kind "missed", no alert). ``flags``: the flags the verdict is about.
verdicts = Table(
    "verdicts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alert_id", Integer, ForeignKey("alerts.id", ondelete="CASCADE")),
    _required("item_id", Integer, ForeignKey("items.id", ondelete="CASCADE"), index=True),
    _required("kind", String(20)),
    _required("flags", JSON, default=list),
    _required("relevant", Boolean),
    _required("user_id", String(100)),
    _required("created_at", UTCDateTime, default=utcnow, index=True),
    # Slack's action_ts of the click: a retry or an older click arriving late changes nothing.
    Column("action_ts", String(50)),
    UniqueConstraint("alert_id", "user_id"),
)

# Digests (migration 0009, issue 19): one row per digest per period, unique, so that a
# period is posted once whatever number of workers, restarts or `digest --send`s. The
# messages are built once, when the row is made, and stored: every attempt posts the
# same parts (the first to the channel, the rest in its thread), ``parts_sent`` counting
# those Slack has, through the outbox's claim → mark → record steps.
digests = Table(
    "digests",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("name", String(200)),
    _required("period_start", UTCDateTime),
    _required("period_end", UTCDateTime),
    _required("channel", String(200)),
    # pending → sent | failed; "skipped": a new digest's last ended period, never posted.
    _required("status", String(20), default="pending"),
    _required("late", Boolean, default=False),
    _required("so_far", Boolean, default=False),  # `pressbot digest --send`: the period until then
    _required("releases", Integer, default=0),
    _required("created_at", UTCDateTime, default=utcnow),
    Column("messages", JSON),
    _required("parts_sent", Integer, default=0),
    _required("attempts", Integer, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("last_error", Text),
    Column("posting_started_at", UTCDateTime),
    Column("slack_ts", String(50)),
    Column("slack_channel_id", String(50)),
    Column("sent_at", UTCDateTime),
    Column("claimed_by", String(100)),
    Column("claimed_until", UTCDateTime),
    UniqueConstraint("name", "period_start"),
    Index("ix_digests_status_next_attempt_at", "status", "next_attempt_at"),
)

passes = Table(
    "passes",
    metadata,
    Column("id", Integer, primary_key=True),
    _required("started_at", UTCDateTime),
    Column("finished_at", UTCDateTime),
    Column("worker", String(100)),
    _required("summary", JSON, default=dict),
)

# Full-text search objects live outside these tables (migration 0002): Alembic's
# autogenerate and drift checks must not propose dropping them.
_SEARCH_OBJECTS = ("items_fts", "search_vector", "ix_items_search_vector", "ix_items_sort_date")


def include_object(obj: object, name: str | None, type_: str, reflected: bool, compare_to: object) -> bool:
    return not (reflected and compare_to is None and name is not None and name.startswith(_SEARCH_OBJECTS))
