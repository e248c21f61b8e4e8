"""Settings: ``config/pressbot.toml`` + the feed list, with environment variables on top.

``load()`` runs once per command and returns one frozen ``Settings`` that is passed
down; nothing reads the environment or the files after that. Every problem raises
``ConfigError`` with one line naming the file, the key (or line) and the problem.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.errors import ConfigError

# Defined there so that `pressbot query` can use them without pydantic; re-exported here.
from bot.quickconfig import DEFAULT_CONFIG as DEFAULT_CONFIG
from bot.quickconfig import DEFAULT_DATABASE_URL as DEFAULT_DATABASE_URL
from bot.quickconfig import config_path as _config_path
from bot.quickconfig import normalize_database_url as normalize_database_url
from bot.quickconfig import parse_duration as parse_duration
from bot.quickconfig import read_toml as _read_toml
from bot.quickconfig import redact_url as redact_url
from bot.records import FeedSource

DEFAULT_SLACK_API_URL = "https://slack.com/api/"


Duration = str | int | float


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PollSection(_Strict):
    interval: Duration = "15m"  # default per-feed interval
    timeout: Duration = "20s"  # read timeout per request
    connect_timeout: Duration = "10s"
    max_bytes: int = Field(default=10_000_000, gt=0)
    concurrency: int = Field(default=16, gt=0)  # feeds fetched at once
    per_host: int = Field(default=4, gt=0)  # at once per host
    max_redirects: int = Field(default=5, ge=0)
    parse_workers: int = Field(default=0, ge=0)  # 0: one per core beyond the first


class AlertsSection(_Strict):
    window: Duration = "48h"  # first pass over a feed: alert only on newer releases


class SlackSection(_Strict):
    channel: str = "#pressbot"
    ops_channel: str | None = None


class FullTextSection(_Strict):
    enabled: bool = True
    teaser_chars: int = Field(default=400, ge=0)  # shorter content counts as a teaser
    max_attempts: int = Field(default=3, ge=1)
    max_bytes: int = Field(default=5_000_000, gt=0)
    concurrency: int = Field(default=4, gt=0)


class SchedulerSection(_Strict):
    backoff_max: Duration = "6h"
    health_notice_after: Duration = "24h"
    disable_after: Duration = "7d"
    lease: Duration = "5m"
    heartbeat: Duration = "10m"


class ConfigFile(_Strict):
    feeds: str = "feeds.toml"
    database_url: str | None = None
    poll: PollSection = PollSection()
    alerts: AlertsSection = AlertsSection()
    slack: SlackSection = SlackSection()
    fulltext: FullTextSection = FullTextSection()
    scheduler: SchedulerSection = SchedulerSection()
    flags: dict[str, Any] = Field(default_factory=dict)


class FeedEntry(_Strict):
    name: str = Field(min_length=1)
    url: str
    tags: list[str] = Field(default_factory=list)
    full_text: bool = False
    interval: Duration | None = None
    channel: str | None = None

    @field_validator("url")
    @classmethod
    def _http_only(cls, url: str) -> str:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise ValueError(f"{url!r} is not an http(s) URL")
        return url


class FeedsFile(_Strict):
    feeds: list[FeedEntry] = Field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a command needs, merged and validated once."""

    config_path: Path
    feeds_path: Path
    database_url: str
    feeds: tuple[FeedSource, ...]
    poll: PollSection
    alerts: AlertsSection
    slack: SlackSection
    fulltext: FullTextSection
    scheduler: SchedulerSection
    flag_rules: Any  # bot.flag.FlagRules; Any keeps this module free of the matcher
    slack_token: str | None = None
    slack_api_url: str = DEFAULT_SLACK_API_URL
    slack_app_token: str | None = None
    allow_private_networks: bool = False
    raw_flags: Mapping[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:  # never print tokens
        return f"Settings(config_path={self.config_path!s}, database={redact_url(self.database_url)})"


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


def load_feeds(path: Path) -> tuple[FeedSource, ...]:
    """Read a feed list: TOML with ``[[feeds]]``, or OPML (by extension)."""
    if path.suffix.lower() in (".opml", ".xml"):
        from bot.opml import read_opml

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
        if interval is not None and interval < 5:
            raise ConfigError(f"{path}: feeds[{index}].interval: must be at least 5s")
        sources.append(
            FeedSource(
                name=entry.name,
                url=entry.url,
                tags=tuple(entry.tags),
                full_text=entry.full_text,
                interval_seconds=int(interval) if interval is not None else None,
                channel=entry.channel,
            )
        )
    return tuple(sources)


def _check_durations(path: Path, config: ConfigFile) -> None:
    for section_name in ("poll", "alerts", "scheduler"):
        section = getattr(config, section_name)
        for key, value in section.model_dump().items():
            if isinstance(value, str):
                try:
                    parse_duration(value)
                except ValueError as exc:
                    raise ConfigError(f"{path}: {section_name}.{key}: {exc}") from None


def load(environ: Mapping[str, str] | None = None) -> Settings:
    """Read the config file and feed list, apply the environment, validate everything."""
    env = os.environ if environ is None else environ
    config_path = _config_path(env)
    data = _read_toml(config_path)
    try:
        config = ConfigFile.model_validate(data)
    except ValidationError as exc:
        raise _validation_line(config_path, exc) from None
    _check_durations(config_path, config)

    from bot.flag import compile_rules

    flag_rules = compile_rules(config.flags, source=str(config_path))
    feeds_path = (
        Path(env["PRESSBOT_FEEDS"]) if env.get("PRESSBOT_FEEDS") else config_path.parent / config.feeds
    )
    feeds = load_feeds(feeds_path)
    database_url = env.get("DATABASE_URL") or config.database_url or DEFAULT_DATABASE_URL
    slack = config.slack
    if env.get("SLACK_CHANNEL"):
        slack = slack.model_copy(update={"channel": env["SLACK_CHANNEL"]})
    return Settings(
        config_path=config_path,
        feeds_path=feeds_path,
        database_url=normalize_database_url(database_url),
        feeds=feeds,
        poll=config.poll,
        alerts=config.alerts,
        slack=slack,
        fulltext=config.fulltext,
        scheduler=config.scheduler,
        flag_rules=flag_rules,
        slack_token=env.get("SLACK_BOT_TOKEN") or None,
        slack_api_url=_slack_api_url(env.get("SLACK_API_URL") or DEFAULT_SLACK_API_URL),
        slack_app_token=env.get("SLACK_APP_TOKEN") or None,
        allow_private_networks=env.get("PRESSBOT_ALLOW_PRIVATE_NETWORKS", "") in ("1", "true", "yes"),
        raw_flags=config.flags,
    )


def _slack_api_url(url: str) -> str:
    # Else urllib refuses it only at the first post, with a ValueError traceback.
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket
        parts = urlsplit("")
    if parts.scheme not in ("http", "https") or not parts.netloc:
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
)

