"""Spans of time and points in time as people write them: ``15m``, ``2w``, ``2024-05``.

The one syntax of the configuration (``[poll] interval = "15m"``), of ``pressbot prune
--older-than`` and of a search's ``--since``/``--until`` (and the slash command's
``since:``). Standard library only: a one-off query parses its dates here without
loading the configuration's validation.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

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
