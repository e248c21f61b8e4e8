"""Records that cross stage boundaries.

Each record names the stage that makes it and the stages that read it. All
datetimes are timezone-aware UTC. No ORM row, dict or httpx object crosses a
boundary: stages speak in these. The records of a search (``QueryFilters`` in,
``QueryHit`` out) live with its language in ``bot.query``, so that a one-off query does
not load the pipeline's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo


class AlertStatus(StrEnum):
    """An outbox row's state: pending → sent | failed; held rows are never sent."""

    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    HELD = "held"  # flagged but not news: old on a first pass, or back after a prune


class FeedStatus(StrEnum):
    """A feed's health as ``pressbot status`` shows it and the scheduler decides it."""

    NEW = "new"  # never fetched successfully, never failed
    OK = "ok"
    FAILING = "failing"
    DISABLED = "disabled"


class ReportStatus(StrEnum):
    """What one pass did with one feed."""

    OK = "ok"
    NOT_MODIFIED = "not_modified"
    FAILED = "failed"
    SKIPPED = "skipped"


class FailureKind(StrEnum):
    """What kind of failure a feed's error line reports (bot.errors names the same tree)."""

    FETCH = "fetch"  # FetchError: network, TLS, timeout, size cap, refused address, redirects
    HTTP_STATUS = "http_status"  # the server answered, with an error status
    NOT_A_FEED = "not_a_feed"  # an HTML page or an empty body where the feed should be
    PARSE = "parse"  # ParseError: the bytes are no feed feedparser can read
    STORE = "store"  # the database refused this feed's items


class NoticeKind(StrEnum):
    """The operations messages about a feed's health."""

    FAILING = "failing"
    RECOVERED = "recovered"
    DISABLED = "disabled"


class Route(StrEnum):
    """Why an alert goes to its channel."""

    FEED = "feed"  # the feed's own channel, for every flag
    FLAG = "flag"  # the channel of a flag ([flags.<name>] channel)
    DEFAULT = "default"  # [slack] channel


class HoldReason(StrEnum):
    """Why a flagged release is recorded without alerting."""

    FIRST_PASS = "first_pass"  # older than [alerts] window on the feed's first pass (no backlog flood)
    PRUNED = "pruned"  # dated before what `pressbot prune` deleted: it was news once already
    MUTED = "muted"  # its feed was muted from Slack (issue 19): held for good, never posted late


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """The settings that route and hold alerts. Made by config; read by bot.policy."""

    default_channel: str
    flag_channels: Mapping[str, str]  # flag name → its own channel, for the flags that have one
    window: timedelta  # a feed's first pass alerts only releases newer than this


@dataclass(frozen=True, slots=True)
class AlertDecision:
    """Where one flagged release goes and whether it is held, and why.

    Made by bot.policy; stored on the alert row when store creates it; read back by
    deliver (``AlertToSend.matches`` keep only ``flags``).
    """

    channel: str
    flags: tuple[str, ...]  # the flags routed to this channel, sorted
    route: Route
    hold: HoldReason | None = None

    @property
    def held(self) -> bool:
        return self.hold is not None


@dataclass(frozen=True, slots=True)
class FetchLimits:
    """The ``[poll]`` limits of every HTTP request a pass makes. Made by config; read by
    fetch, fulltext and the pass's HTTP client."""

    max_bytes: int
    max_redirects: int
    concurrency: int  # feeds fetched at once
    per_host: int  # requests in flight to one host
    deadline_seconds: float  # a whole exchange, redirects included
    allow_private: bool
    timeout_seconds: float = 20.0  # httpx read timeout
    connect_timeout_seconds: float = 10.0


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    """The ``[poll] interval`` and ``[scheduler]`` settings, in seconds. Made by config;
    read by the scheduler."""

    default_interval: float
    backoff_max: float
    health_notice_after: float
    disable_after: float
    lease: float
    heartbeat: float


@dataclass(frozen=True, slots=True)
class FeedSource:
    """A feed as configured (feeds.toml or OPML). Made by config; read by poll and store."""

    name: str
    url: str
    tags: tuple[str, ...] = ()
    full_text: bool = False
    interval_seconds: int | None = None  # None: the configured default
    channel: str | None = None
    listing: ListingRule | None = None  # set for a newsroom listing page (``page = true``)


@dataclass(frozen=True, slots=True)
class FeedToFetch:
    """A feed as the database knows it. Made by store; read by fetch."""

    feed_id: int
    name: str
    url: str
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None  # of the last body parsed; skip parsing when equal
    listing: ListingRule | None = None  # a newsroom listing page: HTML is its content


@dataclass(frozen=True, slots=True)
class StoredFeed:
    """A feed's routing and history, as storing and alerting its items need them.

    Made by store; read by poll and the alert policy.
    """

    feed_id: int
    name: str
    channel: str | None  # every alert of this feed goes here when set
    full_text: bool  # configured full_text = true
    first_pass: bool  # never polled successfully before this pass
    pruned_before: datetime | None  # `pressbot prune` deleted its releases dated before this
    first_polled_at: datetime | None = None  # when its first pass stored what it listed
    muted_until: datetime | None = None  # muted from Slack: its alerts are held until then


@dataclass(frozen=True, slots=True)
class FetchResult:
    """What fetch got for one feed. Made by fetch; read by parse, poll and store.

    Exactly one outcome holds: ``error`` is set, or ``not_modified`` is true, or
    ``body`` holds the bytes to parse.
    """

    feed_id: int
    url: str  # the URL asked for
    final_url: str | None = None  # after redirects
    permanent_url: str | None = None  # set when every redirect was permanent (301/308)
    status: int | None = None
    body: bytes | None = None
    content_type: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    content_hash: str | None = None
    not_modified: bool = False  # 304, or the same content hash as last time
    error: str | None = None  # one line, shown in status and the poll summary
    error_kind: FailureKind | None = None  # set with ``error``
    retry_after_seconds: float | None = None  # Retry-After on 429/503
    max_age_seconds: float | None = None  # Cache-Control: max-age
    gone: bool = False  # 410: the publisher removed the feed
    listing: ListingRule | None = None  # as asked: the body is a listing page to read, not a feed

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class ParsedItem:
    """One feed entry, normalised. Made by parse; read by fulltext, store and flag."""

    key: str  # stable identity within its feed
    url: str | None
    title: str
    teaser: str  # plain text
    content: str  # plain text; "" when the feed carries only a teaser
    published: datetime | None
    updated: datetime | None
    guid: str | None = None
    language: str | None = None  # declared by the feed, if any


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A parsed feed body. Made by parse; read by poll and store."""

    title: str | None
    language: str | None
    ttl_seconds: int | None  # RSS <ttl>
    items: tuple[ParsedItem, ...]
    warning: str | None = None  # feedparser's bozo exception, when it still got entries
    note: str | None = None  # for the operator: entries beyond poll.max_entries left out


@dataclass(frozen=True, slots=True)
class ArticleText:
    """The main text of a release's page. Made by fulltext; read by store and flag."""

    url: str
    text: str | None
    error: str | None = None
    # Read from a listing's release page (``metadata=True``): what the listing may lack.
    canonical_url: str | None = None  # <link rel="canonical">: the release's identity
    title: str | None = None  # og:title, else <h1>
    published: datetime | None = None  # original publication date (htmldate), not the modified one
    language: str | None = None  # <html lang>


@dataclass(frozen=True, slots=True)
class StoredItem:
    """An item as stored, with the text that flag and summarize work on.

    Made by store (on insert or change, and for reflag); read by flag, summarize and
    deliver.
    """

    item_id: int
    feed_id: int
    feed_name: str
    key: str
    url: str | None
    title: str
    teaser: str
    content: str
    full_text: str | None
    published: datetime | None
    first_seen: datetime
    language: str | None = None
    summary: str | None = None


@dataclass(frozen=True, slots=True)
class FlagMatch:
    """Why an item carries a flag. Made by flag.match; read by store, summarize and deliver."""

    flag: str  # "icc", "reprisal" or user-defined
    phrase: str  # the text that matched, as written in the release
    sentence: str  # the sentence around it, shown in Slack as the reason
    field: str = "content"  # title, teaser, content or full_text


@dataclass(frozen=True, slots=True)
class GroupCopy:
    """Another feed's copy of a grouped release. Made by store; read by deliver and query."""

    item_id: int
    feed_name: str
    url: str | None


@dataclass(frozen=True, slots=True)
class AlertToSend:
    """A pending outbox row with what the message needs. Made by store; read by deliver."""

    alert_id: int
    channel: str
    item_id: int
    feed_name: str
    title: str
    url: str | None
    published: datetime | None
    summary: str | None
    matches: tuple[FlagMatch, ...]  # of the flags routed to this channel
    attempts: int = 0
    outcome_unknown: bool = False  # a previous post may have reached Slack
    posting_started_at: datetime | None = None  # of that post: where to start reading history
    also_in: tuple[GroupCopy, ...] = ()  # the other copies of a grouped release, stored first first
    verdicts: tuple[VerdictMark, ...] = ()  # the team's verdicts on this alert, oldest first


class VerdictKind(StrEnum):
    """Where a verdict comes from (issue 19)."""

    ALERT = "alert"  # a "Relevant" / "Not relevant" click on an alert
    MISSED = "missed"  # a release a flag did not catch, reported as relevant for it


@dataclass(frozen=True, slots=True)
class VerdictMark:
    """One person's verdict as the alert's message shows it. Made by store; read by deliver."""

    user_id: str  # a Slack user id (shown as a mention), or "cli"
    relevant: bool


@dataclass(frozen=True, slots=True)
class Verdict:
    """One verdict on a release. Made by store.verdicts; read by the CLI and Slack."""

    verdict_id: int
    kind: VerdictKind
    alert_id: int | None  # None for a reported miss
    item_id: int
    feed_name: str
    title: str
    url: str | None
    flags: tuple[str, ...]  # the flags the verdict is about
    relevant: bool
    user_id: str
    at: datetime


@dataclass(frozen=True, slots=True)
class VerdictExample:
    """A verdict with the release's texts, as ``feedback export`` writes it for ``flags test``."""

    verdict: Verdict
    teaser: str
    content: str
    full_text: str | None
    language: str | None


@dataclass(frozen=True, slots=True)
class RecordedVerdict:
    """What recording one click did. Made by store.verdicts; read by Slack."""

    verdict: Verdict
    changed: bool  # False: the same verdict again (a Slack retry), or an older click arriving late


@dataclass(frozen=True, slots=True)
class VerdictCounts:
    """The team's verdicts on one flag, as ``status`` shows them. Made by store.verdicts."""

    flag: str
    relevant: int = 0
    not_relevant: int = 0
    missed: int = 0  # releases the flag did not catch, reported

    @property
    def precision(self) -> float | None:
        """Relevant among the judged alerts; None before any was judged."""
        judged = self.relevant + self.not_relevant
        return self.relevant / judged if judged else None


@dataclass(frozen=True, slots=True)
class VerdictTally:
    """How one release was judged, for digests. Made by store.verdicts."""

    item_id: int
    relevant: int = 0
    not_relevant: int = 0


@dataclass(frozen=True, slots=True)
class FeedMute:
    """A feed muted from Slack. Made by store.verdicts; read by the CLI, Slack and poll."""

    feed_id: int
    name: str
    muted_until: datetime
    muted_by: str | None

    def active(self, now: datetime) -> bool:
        return now < self.muted_until


class ChangeKind(StrEnum):
    """What a change to a posted alert does in Slack (issue 18)."""

    EDIT = "edit"  # chat.update of the alert's message: a copy or a flag joined its group
    REPLY = "reply"  # a reply in its thread: the release changed materially


@dataclass(frozen=True, slots=True)
class ChangeToSend:
    """A claimed change to a posted alert. Made by store; read by deliver."""

    change_id: int
    kind: ChangeKind
    alert: AlertToSend  # the alert as it is now: an edit rebuilds its message from it
    channel_id: str | None  # the id Slack answered the post with (None on older rows)
    message_ts: str  # the alert's message: edited, or the thread replied in
    text: str | None = None  # a reply's lines (feed text: escaped by deliver)
    outcome_unknown: bool = False  # an earlier attempt may have reached Slack
    posting_started_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """The result of one post. Made by deliver; read by store."""

    alert_id: int
    sent: bool
    slack_ts: str | None = None
    error: str | None = None
    permanent: bool = False  # a failure retrying cannot fix (invalid_auth, channel_not_found…)
    retry_after_seconds: float | None = None
    # The request may have reached Slack (timeout, dropped connection, 5xx): the next
    # attempt must look for the message in the channel's history before posting again.
    maybe_posted: bool = False
    channel_id: str | None = None  # the channel id Slack answered a post with


@dataclass(slots=True)
class DeliveryStats:
    """What one delivery run did. Made by deliver.deliver_alerts; read by poll and the scheduler."""

    sent: int = 0
    pending: int = 0
    failed: int = 0
    printed: int = 0
    edits: int = 0  # chat.update of posted alerts applied this run (issue 18)
    replies: int = 0  # thread replies posted this run
    changes_pending: int = 0  # edits and replies still waiting after the run
    changes_failed: int = 0  # edits and replies that failed for good this run


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """One alert as ``pressbot alerts list`` shows it. Made by store; read by the CLI."""

    alert_id: int
    item_id: int
    feed_name: str
    title: str
    url: str | None
    channel: str
    status: AlertStatus
    attempts: int
    created_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    slack_ts: str | None
    sent_at: datetime | None
    edits: int = 0  # its message's edits sent (a copy joined, a flag added)
    replies: int = 0  # replies sent in its thread (the release changed)
    changes_pending: int = 0
    changes_failed: int = 0


@dataclass(slots=True)
class FeedReport:
    """One feed's line in the pass summary. Made by poll."""

    name: str
    status: ReportStatus
    new_items: int = 0
    updated_items: int = 0
    flagged: int = 0
    held: int = 0  # alerts held back: old releases on the feed's first pass
    error: str | None = None
    note: str | None = None  # ok, but something was left out (ParsedFeed.note)


@dataclass(frozen=True, slots=True)
class PassClaim:
    """The feeds one pass may poll, claimed for ``worker``. Made by the scheduler; read by poll."""

    worker: str  # unique per process: claims by the same id count as one owner
    feed_ids: tuple[int, ...]
    failing: frozenset[int] = frozenset()  # failing before this pass: to log status changes


@dataclass(frozen=True, slots=True)
class FeedOutcome:
    """What one pass got for one feed, for the scheduler's next decision. Made by poll."""

    result: FetchResult  # its body dropped
    ttl_seconds: int | None  # RSS <ttl> of what was parsed


@dataclass(slots=True)
class PassCounts:
    """What one pass counted: the one list of counters. ``poll --json``, the stored pass
    record, ``status``, the metrics and the text summary read these fields (``counts``)."""

    feeds: int = 0
    fetched: int = 0
    not_modified: int = 0
    failed: int = 0
    new_items: int = 0
    updated_items: int = 0
    flagged: int = 0
    alerts_sent: int = 0
    alerts_pending: int = 0
    alerts_failed: int = 0
    alerts_held_back: int = 0  # flagged but not news: old on a first pass, or back after a prune
    edits_sent: int = 0  # posted alerts edited (a copy joined its group, a copy's flag added)
    replies_sent: int = 0  # replies in a posted alert's thread (its release changed)
    changes_pending: int = 0  # edits and replies still waiting
    changes_failed: int = 0

    def counts(self) -> dict[str, int]:
        """Every counter by its field name, in this order."""
        return {count.name: getattr(self, count.name) for count in fields(PassCounts)}

    def count_delivery(self, stats: DeliveryStats) -> None:
        self.alerts_sent, self.alerts_pending, self.alerts_failed = stats.sent, stats.pending, stats.failed
        self.edits_sent, self.replies_sent = stats.edits, stats.replies
        self.changes_pending, self.changes_failed = stats.changes_pending, stats.changes_failed


@dataclass(slots=True, kw_only=True)
class PassSummary(PassCounts):
    """What one pass did. Made by poll; printed by the CLI, stored for status."""

    started_at: datetime
    finished_at: datetime | None = None
    interrupted: bool = False  # Ctrl-C or SIGTERM: the feeds fetched before it stored, no alert posted
    reports: list[FeedReport] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class PassResult:
    """A pass's summary and its feeds' outcomes. Made by poll; read by the scheduler."""

    summary: PassSummary
    outcomes: tuple[FeedOutcome, ...]
    stored_at: datetime  # the "now" the feeds were stored at: their next checks count from it


@dataclass(frozen=True, slots=True)
class FeedHealth:
    """A feed's schedule and health. Made by store.schedule; read by the scheduler and ``status``."""

    feed_id: int
    name: str
    enabled: bool
    disabled_reason: str | None
    interval_seconds: int | None  # None: the configured default
    last_success_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None
    consecutive_failures: int
    failing_since: datetime | None
    next_check_at: datetime | None
    claimed_by: str | None = None
    claimed_until: datetime | None = None
    muted_until: datetime | None = None  # muted from Slack until then (may be past)
    muted_by: str | None = None

    @property
    def status(self) -> FeedStatus:
        if not self.enabled:
            return FeedStatus.DISABLED
        if self.consecutive_failures:
            return FeedStatus.FAILING
        return FeedStatus.OK if self.last_success_at else FeedStatus.NEW


@dataclass(frozen=True, slots=True)
class HealthNotice:
    """One operations message about a feed. Made by store.schedule; posted by the scheduler."""

    feed_id: int
    name: str
    kind: NoticeKind
    error: str | None
    failing_since: datetime | None
    notice_at: datetime | None  # health_notice_at as read: the claim compares against it


@dataclass(frozen=True, slots=True)
class LastPass:
    """The newest pass record, for ``pressbot status``. Made by store.schedule."""

    started_at: datetime
    finished_at: datetime | None
    worker: str | None
    counts: PassCounts = field(default_factory=PassCounts)


DEFAULT_PAGES_PER_PASS = 20  # a 500-link archive must not hammer its site on a first pass


@dataclass(frozen=True, slots=True)
class ListingRule:
    """How to read a newsroom listing page (a ``page = true`` source). Made by config;
    read by listing and poll. A ``None`` selector means the automatic choice."""

    items: str | None = None  # CSS selector of each release's container
    link: str | None = None  # inside the container
    title: str | None = None
    date: str | None = None
    pages_per_pass: int = DEFAULT_PAGES_PER_PASS  # release pages fetched per pass at most


@dataclass(frozen=True, slots=True)
class ListedRelease:
    """One release as a listing page shows it. Made by listing; read by poll and store."""

    url: str  # absolute, without fragment: the listed URL (an alias once the page is read)
    title: str  # "" when the listing shows none (the page's title is used)
    published: datetime | None  # the listing's date, if it shows one
    position: int  # 0 for the first release on the page


@dataclass(frozen=True, slots=True)
class Listing:
    """What a listing page lists. Made by listing; read by poll.

    ``error`` (one line, saying what to set) when no release link was found.
    """

    url: str
    releases: tuple[ListedRelease, ...] = ()
    error: str | None = None


# -- digests (issue 19) -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigestSchedule:
    """When a digest's periods end: every day, or one weekday, at a wall time. Made by bot.digest."""

    weekday: int | None  # 0 = Monday; None: every day
    hour: int
    minute: int


@dataclass(frozen=True, slots=True)
class DigestSpec:
    """One ``[[digests]]`` table, parsed. Made by config; read by the digest's period math,
    store and deliver."""

    name: str
    channel: str
    schedule: DigestSchedule
    tz: ZoneInfo
    flags: tuple[str, ...]  # the flags it covers, in this order (all defined ones by default)


@dataclass(frozen=True, slots=True)
class DigestPeriod:
    """From one scheduled time (UTC) to the next, or to now for the period in progress."""

    start: datetime
    end: datetime
    so_far: bool = False  # the period in progress (`digest --preview`/`--send`, `/pressbot digest`)
    late: bool = False  # posted well after its end, or covering periods nothing posted
    baseline: bool = False  # a new digest's last ended period: recorded, never posted


@dataclass(frozen=True, slots=True)
class DigestRelease:
    """A flagged release first seen in a digest's period. Made by store; read by deliver."""

    item_id: int
    feed_name: str
    title: str
    url: str | None
    date: datetime  # published, else first seen
    flags: tuple[str, ...]  # of the digest's flags, those the release carries


@dataclass(frozen=True, slots=True)
class Digest:
    """What one digest message says. Made by store (``collect_digest``); read by deliver."""

    spec: DigestSpec
    period: DigestPeriod
    releases: tuple[DigestRelease, ...]  # newest first
    # flag → how many of its releases the team marked "Not relevant"; None while verdicts are not recorded.
    not_relevant: Mapping[str, int] | None = None


@dataclass(frozen=True, slots=True)
class DigestToSend:
    """A claimed digest row: its messages as built when it fell due. Made by store; read by deliver.

    ``messages[0]`` goes to the channel, the rest into its thread, each posted once:
    ``parts_sent`` of them are in Slack already.
    """

    digest_id: int
    name: str
    channel: str
    messages: tuple[dict[str, Any], ...]
    parts_sent: int
    slack_ts: str | None  # the first message's, once posted
    channel_id: str | None
    outcome_unknown: bool  # part ``parts_sent`` may have reached Slack already
    posting_started_at: datetime | None


@dataclass(frozen=True, slots=True)
class RecordedDigest:
    """A digest period's row as ``pressbot digest --send`` reports it. Made by store."""

    digest_id: int
    status: str  # pending, sent, failed or skipped
    period_end: datetime
    so_far: bool
    sent_at: datetime | None
    last_error: str | None
