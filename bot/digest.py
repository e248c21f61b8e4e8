"""Digests (issue 19): the ``[[digests]]`` tables read into records, and their periods. Pure.

A digest's period runs from one scheduled time to the next, in the digest's own time
zone: "weekly mon 09:00" in Europe/Zurich is 08:00 UTC in winter and 07:00 UTC in
summer. ``due_period`` says which period a pass should post, given the newest one
already recorded; the rest (the releases, Slack, the table) lives in store and deliver.

``digest_specs`` runs inside ``config.load()``, and ``pressbot query`` (which skips
that for speed) calls it on the raw TOML, so a bad table stops every command.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.records import DigestPeriod, DigestSchedule, DigestSpec

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
KEYS = ("name", "channel", "every", "tz", "flags")
# Sent this long after its scheduled time, a digest says it is late: nothing ran then
# (a stopped worker, a cron line that missed it). A pass or a cron run every 15 min is on time.
LATE_AFTER = timedelta(minutes=15)
NAME_MAX = 200  # the VARCHAR(200) of digests.name and .channel
_EVERY = re.compile(
    r"^\s*(?:daily|weekly\s+(?P<day>[a-z]+))\s+(?P<hour>\d{1,2}):(?P<minute>\d{2})\s*$", re.IGNORECASE
)


def parse_every(text: str) -> DigestSchedule:
    """``"weekly mon 09:00"`` or ``"daily 09:00"`` → a schedule; ValueError saying what to write."""
    match = _EVERY.match(text)
    hint = f'{text!r} is not a schedule: write "daily 09:00" or "weekly mon 09:00"'
    if match is None:
        raise ValueError(hint)
    weekday = None
    if match["day"] is not None:
        day = match["day"].lower()
        # "monday" reads as well as "mon"; "mo" or "mond" are typos.
        found = [index for index, name in enumerate(WEEKDAYS) if day in (name, _full_day(name))]
        if not found:
            raise ValueError(f"{text!r}: {match['day']!r} is not a weekday (mon, tue, wed, thu, fri, sat, sun)")
        weekday = found[0]
    hour, minute = int(match["hour"]), int(match["minute"])
    if hour > 23 or minute > 59:
        raise ValueError(f"{text!r}: {hour:02d}:{minute:02d} is not a time of day (00:00 to 23:59)")
    return DigestSchedule(weekday=weekday, hour=hour, minute=minute)


def _full_day(short: str) -> str:
    return {"mon": "monday", "tue": "tuesday", "wed": "wednesday", "thu": "thursday", "fri": "friday",
            "sat": "saturday", "sun": "sunday"}[short]


def time_zone(name: object) -> ZoneInfo:
    """An IANA zone ("Europe/Zurich"); ValueError for anything zoneinfo (with tzdata) does not know."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError("an IANA time zone name, like \"Europe/Zurich\"")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # ValueError: a path-like key ("../x"); OSError: a directory given as a key.
        raise ValueError(f"unknown time zone {name!r} (an IANA name, like \"Europe/Zurich\")") from None


# -- the [[digests]] tables ----------------------------------------------------------------


def digest_specs(tables: object, flag_names: Iterable[str], source: str) -> tuple[DigestSpec, ...]:
    """Every ``[[digests]]`` table as a DigestSpec; ValueError naming the file, table and key."""
    if tables is None:
        return ()
    if not isinstance(tables, list):
        raise ValueError(f"{source}: digests: write each digest as a [[digests]] table")
    known = tuple(flag_names)
    specs: list[DigestSpec] = []
    for index, table in enumerate(tables, start=1):
        label = f"digests[{index}]"
        if isinstance(table, Mapping) and isinstance(table.get("name"), str):
            label += f' (name "{table["name"]}")'
        try:
            spec = _spec(table, known)
        except _KeyProblem as exc:
            raise ValueError(f"{source}: {label}.{exc.key}: {exc.problem}") from None
        if any(other.name == spec.name for other in specs):
            raise ValueError(f'{source}: {label}.name: duplicate digest name "{spec.name}"')
        specs.append(spec)
    return tuple(specs)


class _KeyProblem(Exception):
    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


def _text(table: Mapping[str, object], key: str) -> str:
    value = table.get(key)
    if value is None:
        raise _KeyProblem(key, "missing")
    if not isinstance(value, str) or not value.strip():
        raise _KeyProblem(key, "must be a non-empty string")
    if len(value) > NAME_MAX:
        raise _KeyProblem(key, f"is {len(value)} characters long (at most {NAME_MAX})")
    if any(ord(char) < 32 or 0x7F <= ord(char) < 0xA0 for char in value):
        raise _KeyProblem(key, "contains a control character")
    return value


def _spec(table: object, known_flags: tuple[str, ...]) -> DigestSpec:
    if not isinstance(table, Mapping):
        raise _KeyProblem("name", "each digest is a [[digests]] table")
    for key in table:
        if key not in KEYS:
            raise _KeyProblem(str(key), f"unknown key (a digest has {', '.join(KEYS)})")
    name, channel, every = _text(table, "name"), _text(table, "channel"), _text(table, "every")
    try:
        schedule = parse_every(every)
    except ValueError as exc:
        raise _KeyProblem("every", str(exc)) from None
    if "tz" not in table:
        raise _KeyProblem("tz", 'missing (an IANA name, like "Europe/Zurich")')
    try:
        zone = time_zone(table["tz"])
    except ValueError as exc:
        raise _KeyProblem("tz", str(exc)) from None
    flags = table.get("flags")
    if flags is None:
        chosen = known_flags
    elif not isinstance(flags, list) or not flags or not all(isinstance(flag, str) for flag in flags):
        raise _KeyProblem("flags", "a list of flag names, like [\"reprisal\", \"icc\"] (leave it out for all)")
    else:
        unknown = [flag for flag in flags if flag not in known_flags]
        if unknown:
            raise _KeyProblem("flags", f"unknown flag {unknown[0]!r} (defined: {', '.join(known_flags) or 'none'})")
        chosen = tuple(dict.fromkeys(flags))
    return DigestSpec(name=name, channel=channel, schedule=schedule, tz=zone, flags=chosen)


# -- periods -------------------------------------------------------------------------------


def _at(day: date, schedule: DigestSchedule, zone: ZoneInfo) -> datetime:
    # A wall time the clocks skip (02:30 on a spring-forward night) resolves with fold=0
    # to the offset before the change: an hour later by the clock that day, never skipped.
    local = datetime.combine(day, time(schedule.hour, schedule.minute), tzinfo=zone)
    return local.astimezone(UTC)


def _days_around(moment: datetime, zone: ZoneInfo, before: int, after: int) -> list[date]:
    today = moment.astimezone(zone).date()
    return [today + timedelta(days=offset) for offset in range(-before, after + 1)]


def _times(spec: DigestSpec, days: Iterable[date]) -> list[datetime]:
    weekday = spec.schedule.weekday
    return [_at(day, spec.schedule, spec.tz) for day in days if weekday is None or day.weekday() == weekday]


def last_time(spec: DigestSpec, now: datetime) -> datetime:
    """The latest scheduled time at or before ``now`` (UTC)."""
    return max(moment for moment in _times(spec, _days_around(now, spec.tz, 8, 1)) if moment <= now)


def next_time(spec: DigestSpec, after: datetime) -> datetime:
    """The first scheduled time strictly after ``after`` (UTC)."""
    return min(moment for moment in _times(spec, _days_around(after, spec.tz, 1, 8)) if moment > after)


def previous_time(spec: DigestSpec, before: datetime) -> datetime:
    """The latest scheduled time strictly before ``before`` (UTC)."""
    return max(moment for moment in _times(spec, _days_around(before, spec.tz, 8, 1)) if moment < before)


def period_so_far(spec: DigestSpec, now: datetime) -> DigestPeriod:
    """The period in progress: from the last scheduled time until ``now``."""
    return DigestPeriod(start=last_time(spec, now), end=now, so_far=True)


def due_period(spec: DigestSpec, now: datetime, newest_start: datetime | None) -> DigestPeriod | None:
    """The ended period a pass should post now, if any, given the newest recorded period's start.

    ``newest_start`` None (the digest was never seen): the period that just ended, which
    the caller records without posting, so a new digest starts with its first whole
    period instead of a "late" one the moment it is configured. Periods nobody posted
    (nothing ran at their time) are one late digest, from the first missed time to the
    last one: nothing is lost and the channel gets one message, not one per period.
    """
    end = last_time(spec, now)
    if newest_start is None:
        return DigestPeriod(start=previous_time(spec, end), end=end, baseline=True)
    start = next_time(spec, newest_start)
    if start >= end:
        return None
    missed = start < previous_time(spec, end)
    return DigestPeriod(start=start, end=end, late=missed or now - end > LATE_AFTER)


def describe_period(period: DigestPeriod, zone: ZoneInfo) -> str:
    """'24 Nov 09:00 – 1 Dec 2026 09:00 (Europe/Zurich)', in the digest's zone."""
    start, end = period.start.astimezone(zone), period.end.astimezone(zone)
    left = f"{start.day} {start:%b}" + (f" {start.year}" if start.year != end.year else "") + f" {start:%H:%M}"
    return f"{left} – {end.day} {end:%b %Y %H:%M} ({zone.key})"
