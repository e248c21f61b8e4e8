"""Settings: ``config/pressbot.toml`` + the feed list, with environment variables on top.

``load()`` runs once per command and returns one frozen ``Settings`` that is passed
down; nothing reads the environment or the files after that. Every problem raises
``ConfigError`` with one line naming the file, the key (or line) and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from bot.digest import digest_specs
from bot.durations import parse_duration
from bot.errors import ConfigError
from bot.flag import FlagRules, compile_rules
from bot.http import url_problem
from bot.listing.selectors import SelectorSyntaxError, compile_selector
from bot.locations import DEFAULT_CONFIG as DEFAULT_CONFIG
from bot.locations import config_path as _config_path
from bot.locations import database_url as _database_url
from bot.locations import normalize_database_url as normalize_database_url
from bot.locations import read_toml as _read_toml
from bot.logs import redact
from bot.records import (
    DEFAULT_PAGES_PER_PASS,
    AlertPolicy,
    DigestSpec,
    FeedSource,
    FetchLimits,
    ListingRule,
    SchedulePolicy,
)
from bot.urls import http_url_parts

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
# The floor of every poll interval (tests and intranet feeds go this low); below a
# minute the scheduler warns, as public servers may take the polling for abuse.
MIN_INTERVAL = timedelta(seconds=5)
MAX_DURATION = timedelta(days=3650)
# The columns these are stored in (bot.tables): VARCHAR(200) names and channels, VARCHAR(100) flags.
NAME_MAX = 200
CHANNEL_MAX = 200
FLAG_NAME_MAX = 100


def _duration(value: object) -> timedelta:
    """A TOML duration ("15m", or a number of seconds) as a timedelta."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ValueError("a duration is a string like 15m or a number of seconds")
    seconds = parse_duration(value)
    if seconds > MAX_DURATION.total_seconds():
        # "10000y" parsed, then overflowed the first date it was added to (issue 14).
        raise ValueError(f"{value!r} is longer than {MAX_DURATION.days // 365} years")
    return timedelta(seconds=seconds)


def _database_text(name: str, limit: int) -> Callable[[str | None], str | None]:
    """A validator for text stored in a VARCHAR(limit): PostgreSQL refuses longer text and NUL."""

    def check(value: str | None) -> str | None:
        if value is None:
            return None
        if len(value) > limit:
            raise ValueError(f"{name} is {len(value)} characters long (at most {limit})")
        if any(ord(char) < 32 or 0x7F <= ord(char) < 0xA0 for char in value):
            raise ValueError(f"{name} contains a control character")
        return value

    return check


# Parsed where it is read: no string duration leaves this module.
Duration = Annotated[timedelta, BeforeValidator(_duration)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollSection(_Strict):
    interval: Duration = timedelta(minutes=15)  # default per-feed interval
    timeout: Duration = timedelta(seconds=20)  # read timeout per request
    connect_timeout: Duration = timedelta(seconds=10)
    max_bytes: int = Field(default=10_000_000, gt=0)
    concurrency: int = Field(default=16, gt=0)  # feeds fetched at once
    per_host: int = Field(default=4, gt=0)  # at once per host
    max_redirects: int = Field(default=5, ge=0)
    parse_workers: int = Field(default=0, ge=0)  # 0: one per core beyond the first
    max_entries: int = Field(default=5_000, gt=0)  # per feed body; the rest is left out, with a note


class AlertsSection(_Strict):
    window: Duration = timedelta(hours=48)  # first pass over a feed: alert only on newer releases
    # Copies of one release across feeds are one alert (bot.group): a new release is
    # compared with other feeds' releases stored this recently ("0" turns grouping off)…
    group_window: Duration = timedelta(days=7)
    # …and joins when this share of its main text's word shingles matches one of them.
    group_similarity: float = Field(default=0.8, gt=0.0, le=1.0)

    @field_validator("group_window")
    @classmethod
    def _not_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            raise ValueError("must not be negative")
        return value


class SlackSection(_Strict):
    channel: Annotated[str, AfterValidator(_database_text("the channel", CHANNEL_MAX))] = "#pressbot"
    ops_channel: Annotated[str | None, AfterValidator(_database_text("the channel", CHANNEL_MAX))] = None


class FullTextSection(_Strict):
    enabled: bool = True
    teaser_chars: int = Field(default=400, ge=0)  # shorter content counts as a teaser
    max_attempts: int = Field(default=3, ge=1)
    max_bytes: int = Field(default=5_000_000, gt=0)
    concurrency: int = Field(default=4, gt=0)


class SchedulerSection(_Strict):
    backoff_max: Duration = timedelta(hours=6)
    health_notice_after: Duration = timedelta(hours=24)
    disable_after: Duration = timedelta(days=7)
    lease: Duration = timedelta(minutes=5)
    heartbeat: Duration = timedelta(minutes=10)


class ConfigFile(_Strict):
    feeds: str = "feeds.toml"
    database_url: str | None = None
    poll: PollSection = PollSection()
    alerts: AlertsSection = AlertsSection()
    slack: SlackSection = SlackSection()
    fulltext: FullTextSection = FullTextSection()
    scheduler: SchedulerSection = SchedulerSection()
    flags: dict[str, Any] = Field(default_factory=dict)
    # [[digests]] (issue 19): checked by bot.digest.digest_specs, which names the table and key.
    digests: list[Any] | None = None


class FeedEntry(_Strict):
    name: Annotated[str, AfterValidator(_database_text("the name", NAME_MAX))] = Field(min_length=1)
    url: str
    tags: list[str] = Field(default_factory=list)
    full_text: bool = False
    interval: str | int | float | None = None  # parsed by load_feeds, which names the entry
    channel: Annotated[str | None, AfterValidator(_database_text("the channel", CHANNEL_MAX))] = None
    # A newsroom listing page instead of a feed (issue 17), and how to read it.
    page: bool = False
    items: str | None = None
    link: str | None = None
    title: str | None = None
    date: str | None = None
    pages_per_pass: int | None = Field(default=None, ge=0)

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        problem = url_problem(url)
        if problem:
            raise ValueError(f"{url!r} {problem}")
        return url


class FeedsFile(_Strict):
    feeds: list[FeedEntry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a command needs, merged, validated and parsed once.

    ``fetch_limits``, ``schedule`` and ``alert_policy`` are built from the sections here, once.
    """

    config_path: Path
    feeds_path: Path
    database_url: str
    feeds: tuple[FeedSource, ...]
    poll: PollSection
    alerts: AlertsSection
    slack: SlackSection
    fulltext: FullTextSection
    scheduler: SchedulerSection
    flag_rules: FlagRules
    digests: tuple[DigestSpec, ...] = ()
    slack_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_app_token: str | None = None
    allow_private_networks: bool = False
    metrics_port: int | None = None  # `pressbot run` serves /metrics and /healthz when set
    metrics_host: str = "127.0.0.1"
    fetch_limits: FetchLimits = field(init=False)
    schedule: SchedulePolicy = field(init=False)
    alert_policy: AlertPolicy = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "fetch_limits", _fetch_limits(self.poll, self.allow_private_networks))
        object.__setattr__(self, "schedule", _schedule_policy(self.poll, self.scheduler))
        object.__setattr__(self, "alert_policy", _alert_policy(self.slack, self.alerts, self.flag_rules))

    def __repr__(self) -> str:  # never print tokens
        return f"Settings(config_path={self.config_path!s}, database={redact(self.database_url)})"


def _fetch_limits(poll: PollSection, allow_private: bool) -> FetchLimits:
    timeout = poll.timeout.total_seconds()
    return FetchLimits(
        max_bytes=poll.max_bytes,
        max_redirects=poll.max_redirects,
        concurrency=poll.concurrency,
        per_host=poll.per_host,
        # httpx's read timeout alone never fires on a server that trickles.
        deadline_seconds=timeout * 3,
        allow_private=allow_private,
        timeout_seconds=timeout,
        connect_timeout_seconds=poll.connect_timeout.total_seconds(),
    )


def _alert_policy(slack: SlackSection, alerts: AlertsSection, rules: FlagRules) -> AlertPolicy:
    channels = {name: channel for name in rules.names if (channel := rules.channel_for(name))}
    return AlertPolicy(default_channel=slack.channel, flag_channels=channels, window=alerts.window)


def _schedule_policy(poll: PollSection, section: SchedulerSection) -> SchedulePolicy:
    return SchedulePolicy(
        default_interval=poll.interval.total_seconds(),
        backoff_max=section.backoff_max.total_seconds(),
        health_notice_after=section.health_notice_after.total_seconds(),
        disable_after=section.disable_after.total_seconds(),
        lease=section.lease.total_seconds(),
        heartbeat=section.heartbeat.total_seconds(),
    )


def _app_token(token: str | None) -> str | None:
    # Socket Mode takes an app-level token only; anything else failed at start-up with a
    # 30-line traceback (issue 14). The token itself is never echoed.
    if token is not None and not token.startswith("xapp-"):
        kind = "a bot token (xoxb-…), which belongs in SLACK_BOT_TOKEN" if token.startswith("xoxb-") else "not one"
        raise ConfigError(f"SLACK_APP_TOKEN: Socket Mode needs an app-level token (xapp-…); this is {kind}")
    return token


def _channel_problem(channel: str) -> str | None:
    try:
        _database_text("the channel", CHANNEL_MAX)(channel)
    except ValueError as exc:
        return str(exc)
    return None


def _validation_line(path: Path, exc: ValidationError, prefix: str = "") -> ConfigError:
    error = exc.errors()[0]
    location = ".".join(str(part) for part in error["loc"])
    if error["type"] == "extra_forbidden":
        problem = "unknown key"
    elif error["type"] == "missing":
        problem = "missing"
    else:
        problem = error["msg"].removeprefix("Value error, ")
    return ConfigError(f"{path}: {prefix}{location}: {problem}")


def _feed_location(data: dict[str, Any], loc: tuple[Any, ...]) -> str:
    """'feeds[3] (name "ICC")' for a pydantic location inside the feed list."""
    if len(loc) >= 2 and loc[0] == "feeds" and isinstance(loc[1], int):
        entry = data.get("feeds", [])[loc[1]]
        name = entry.get("name") if isinstance(entry, dict) else None
        label = f"feeds[{loc[1] + 1}]" + (f' (name "{name}")' if name else "")
        return ".".join([label, *(str(part) for part in loc[2:])])
    return ".".join(str(part) for part in loc)


ReadOpml = Callable[[Path], tuple[FeedSource, ...]]


def load_feeds(path: Path, read_opml: ReadOpml | None = None) -> tuple[FeedSource, ...]:
    """Read a feed list: TOML with ``[[feeds]]``, or OPML (by extension) through ``read_opml``.

    ``read_opml`` is ``bot.opml.read_opml``, given by the entry point: listparser (and
    requests, which it imports) cost every command ~75 ms and 4 MB, and only an OPML
    feed list needs them.
    """
    if path.suffix.lower() in (".opml", ".xml"):
        if read_opml is None:
            raise ConfigError(f"{path}: an OPML feed list, and no OPML reader given to config.load()")
        return read_opml(path)
    data = _read_toml(path)
    try:
        parsed = FeedsFile.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        problem = {"extra_forbidden": "unknown key", "missing": "missing"}.get(
            error["type"], error["msg"].removeprefix("Value error, ")
        )
        raise ConfigError(f"{path}: {_feed_location(data, error['loc'])}: {problem}") from None
    seen: set[str] = set()
    sources = []
    for index, entry in enumerate(parsed.feeds, start=1):
        if entry.name in seen:
            raise ConfigError(f'{path}: feeds[{index}].name: duplicate feed name "{entry.name}"')
        seen.add(entry.name)
        try:
            interval = parse_duration(entry.interval) if entry.interval is not None else None
        except ValueError as exc:
            raise ConfigError(f"{path}: feeds[{index}].interval: {exc}") from None
        if interval is not None and interval < MIN_INTERVAL.total_seconds():
            raise ConfigError(f"{path}: feeds[{index}].interval: must be at least {MIN_INTERVAL.total_seconds():g}s")
        sources.append(
            FeedSource(
                name=entry.name,
                url=entry.url,
                tags=tuple(entry.tags),
                full_text=entry.full_text,
                interval_seconds=int(interval) if interval is not None else None,
                channel=entry.channel,
                listing=_listing_rule(path, index, entry),
            )
        )
    return tuple(sources)


_LISTING_KEYS = ("items", "link", "title", "date", "pages_per_pass")
_SELECTOR_KEYS = ("items", "link", "title", "date")


def _listing_rule(path: Path, index: int, entry: FeedEntry) -> ListingRule | None:
    """A page source's selectors, each compiled once here so that a bad one stops the start."""
    label = f'feeds[{index}] (name "{entry.name}")'
    if not entry.page:
        for key in _LISTING_KEYS:
            if getattr(entry, key) is not None:
                raise ConfigError(f"{path}: {label}.{key}: only for a listing page (page = true)")
        return None
    for key in _SELECTOR_KEYS:
        selector = getattr(entry, key)
        if selector is None:
            continue
        try:
            compile_selector(selector)
        except SelectorSyntaxError as exc:
            raise ConfigError(f"{path}: {label}.{key}: {exc}") from None
    return ListingRule(
        items=entry.items,
        link=entry.link,
        title=entry.title,
        date=entry.date,
        pages_per_pass=entry.pages_per_pass if entry.pages_per_pass is not None else DEFAULT_PAGES_PER_PASS,
    )


def load(environ: Mapping[str, str] | None = None, *, read_opml: ReadOpml | None = None) -> Settings:
    """Read the config file and feed list, apply the environment, validate everything.

    ``read_opml``: for an OPML feed list (``load_feeds``).
    """
    env = os.environ if environ is None else environ
    config_path = _config_path(env)
    data = _read_toml(config_path)
    try:
        config = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise _validation_line(config_path, exc) from None
    for flag_name in config.flags:
        if len(flag_name) > FLAG_NAME_MAX:
            raise ConfigError(
                f"{config_path}: flags.{flag_name[:20]}…: a flag name has at most {FLAG_NAME_MAX} characters"
            )
    flag_rules = compile_rules(config.flags, source=str(config_path))
    try:
        digests = digest_specs(config.digests, flag_rules.names, str(config_path))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    feeds_path = (
        Path(env["PRESSBOT_FEEDS"]) if env.get("PRESSBOT_FEEDS") else config_path.parent / config.feeds
    )
    feeds = load_feeds(feeds_path, read_opml)
    slack = config.slack
    if env.get("SLACK_CHANNEL"):
        problem = _channel_problem(env["SLACK_CHANNEL"])
        if problem:
            raise ConfigError(f"SLACK_CHANNEL: {problem}")
        slack = slack.model_copy(update={"channel": env["SLACK_CHANNEL"]})
    return Settings(
        config_path=config_path,
        feeds_path=feeds_path,
        database_url=_database_url(env, config.database_url),
        feeds=feeds,
        poll=config.poll,
        alerts=config.alerts,
        slack=slack,
        fulltext=config.fulltext,
        scheduler=config.scheduler,
        flag_rules=flag_rules,
        digests=digests,
        slack_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_api_url=_slack_api_url(env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL),
        slack_app_token=_app_token(env.get("SLACK_APP_TOKEN") or None),
        allow_private_networks=env.get("PRESSBOT_ALLOW_PRIVATE_NETWORKS", "") in ("1", "true", "yes"),
        metrics_port=_metrics_port(env.get("PRESSBOT_METRICS_PORT") or None),
        metrics_host=env.get("PRESSBOT_METRICS_HOST") or "127.0.0.1",
    )


def _metrics_port(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.strip().isdigit() or int(text) > 65535:
        raise ConfigError(f"PRESSBOT_METRICS_PORT: {text!r} is not a port number (0-65535; 0 picks a free one)")
    return int(text)


def _slack_api_url(url: str) -> str:
    # Else urllib refuses it only at the first post, with a ValueError traceback.
    if http_url_parts(url) is None:
        raise ConfigError(f"SLACK_API_URL: {url!r} is not an http(s) URL")
    return url


ENV_VARIABLES: tuple[str, ...] = (
    "DATABASE_URL",
    "PRESSBOT_CONFIG",
    "PRESSBOT_FEEDS",
    "SLACK_BOT_TOKEN",
    "SLACK_CHANNEL",
    "SLACK_API_URL",
    "SLACK_APP_TOKEN",
    "PRESSBOT_ALLOW_PRIVATE_NETWORKS",
    "PRESSBOT_METRICS_PORT",
    "PRESSBOT_METRICS_HOST",
)

