"""The settings a read-only command needs, read without validating everything.

``config.load()`` builds pydantic models and compiles the flag rules: about 150 ms
before any work, longer than a search takes. ``pressbot query`` only needs the
database URL, so it reads it here (standard library only); ``config`` re-exports
the helpers below so both paths agree.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.errors import ConfigError

DEFAULT_CONFIG = "config/pressbot.toml"
DEFAULT_DATABASE_URL = "sqlite:///pressbot.db"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdwy]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_SPAN = re.compile(r"^\s*\d+(?:\.\d+)?\s*[smhdwy]\s*$")
_YEAR_OR_MONTH = re.compile(r"^(\d{4})(?:-(\d{1,2}))?$")
_DATE_ONLY = re.compile(r"^\d{4}-?\d{2}-?\d{2}$")


def parse_duration(text: str | int | float) -> float:
    """'90s', '15m', '1h', '2d', '2w', '2y' or a number of seconds → seconds."""
    if isinstance(text, int | float):
        if text < 0:
            raise ValueError("a duration cannot be negative")
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 15m, 1h, 2d, 2w)")
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def redact_url(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def normalize_database_url(url: str) -> str:
    """Procfile platforms hand out ``postgres://``, which SQLAlchemy 2 no longer accepts."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def default_config_dir() -> Path:
    """The configuration that ships: inside the installed package, else the clone's ``config/``.

    setup.py copies the top-level ``config/`` into the wheel as ``bot/_config``.
    """
    from importlib.resources import files

    packaged = files("bot") / "_config"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent / "config"


def config_path(environ: Mapping[str, str] | None = None) -> Path:
    """``PRESSBOT_CONFIG``, else ``./config/pressbot.toml`` if there is one, else the shipped default."""
    env = os.environ if environ is None else environ
    if env.get("PRESSBOT_CONFIG"):
        return Path(env["PRESSBOT_CONFIG"])
    local = Path(DEFAULT_CONFIG)
    if local.is_file():
        return local
    return default_config_dir() / "pressbot.toml"


def read_toml(path: Path) -> dict[str, Any]:
    import tomllib  # here: a query with DATABASE_URL set never needs it

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None


def database_url_from_env_and_file(environ: Mapping[str, str] | None = None) -> str:
    """``DATABASE_URL``, else the config file's ``database_url``, else the default; normalised.

    The same precedence as ``config.load()``. A missing config file is fine here when
    ``DATABASE_URL`` is set: a query needs nothing else from it.
    """
    env = os.environ if environ is None else environ
    url = env.get("DATABASE_URL")
    if not url:
        path = config_path(env)
        value = read_toml(path).get("database_url")
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{path}: database_url: must be a string")
        url = value or DEFAULT_DATABASE_URL
    return normalize_database_url(url)


def parse_when(text: str, now: datetime, *, end: bool = False) -> datetime:
    """A point in time from a span ago (``7d``, ``2w``) or an ISO date/time, in UTC.

    A date without a time names a whole day (``2024``, ``2024-05`` a year or month):
    its start, or with ``end`` the start of the next one, so ``--until 2024-05-31``
    includes that day. A time without a zone is taken as UTC. ValueError for what is
    none of these, or lies outside years 1–9999.
    """
    try:
        return _parse_when(text.strip(), now, end=end)
    except OverflowError:
        raise ValueError(f"{text!r} is out of range (years 1 to 9999)") from None


def _parse_when(text: str, now: datetime, *, end: bool) -> datetime:
    if _SPAN.match(text):
        return now - timedelta(seconds=parse_duration(text))
    partial = _YEAR_OR_MONTH.match(text)
    if partial:
        year, month = int(partial.group(1)), int(partial.group(2) or 0)
        if not 0 <= month <= 12:
            raise ValueError(f"{text!r}: there is no month {month}")
        start = datetime(year, month or 1, 1, tzinfo=UTC)
        if not end:
            return start
        if month in (0, 12):
            return start.replace(year=year + 1, month=1)
        return start.replace(month=month + 1)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is neither a date (2024-05-31) nor a span (7d, 2w)") from None
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    if end and _DATE_ONLY.match(text):  # a bare date: the whole day
        when += timedelta(days=1)
    return when
