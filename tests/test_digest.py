"""Digests (issue 19): the schedule and its periods, the message, the configuration. Pure parts."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from bot.deliver.digestmessage import build_digest, format_digest_for_terminal
from bot.digest import (
    LATE_AFTER,
    digest_specs,
    due_period,
    last_time,
    next_time,
    parse_every,
    period_so_far,
    previous_time,
)
from bot.records import Digest, DigestPeriod, DigestRelease, DigestSchedule, DigestSpec
from tests.fakeslack import message_problem

ZURICH = ZoneInfo("Europe/Zurich")


def spec(every: str = "weekly mon 09:00", tz: str = "Europe/Zurich", flags: tuple[str, ...] = ("reprisal", "icc"),
         name: str = "weekly") -> DigestSpec:
    return DigestSpec(name=name, channel="#digest", schedule=parse_every(every), tz=ZoneInfo(tz), flags=flags)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- the schedule -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("weekly mon 09:00", DigestSchedule(0, 9, 0)),
        ("Weekly Friday 17:30", DigestSchedule(4, 17, 30)),
        ("daily 7:05", DigestSchedule(None, 7, 5)),
        ("  daily 23:59 ", DigestSchedule(None, 23, 59)),
    ],
    ids=["weekly", "full-day-name", "daily-one-digit-hour", "spaces"],
)
def test_a_schedule_reads_as_written(text: str, expected: DigestSchedule) -> None:
    assert parse_every(text) == expected


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("weekly funday 09:00", "not a weekday"),
        ("daily 24:00", "not a time of day"),
        ("daily 9am", "not a schedule"),
        ("monthly 1 09:00", "not a schedule"),
        ("weekly 09:00", "not a schedule"),
    ],
    ids=["weekday", "hour", "am", "monthly", "no-day"],
)
def test_a_bad_schedule_says_what_to_write(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_every(text)


def test_weekly_times_follow_the_zone_across_the_end_of_summer_time() -> None:
    weekly = spec()
    # Zurich leaves summer time on Sunday 25 October 2026: 09:00 is 07:00 UTC before, 08:00 after.
    assert last_time(weekly, utc(2026, 10, 21, 12)) == utc(2026, 10, 19, 7)
    assert next_time(weekly, utc(2026, 10, 19, 7)) == utc(2026, 10, 26, 8)
    assert previous_time(weekly, utc(2026, 10, 26, 8)) == utc(2026, 10, 19, 7)
    assert last_time(weekly, utc(2026, 10, 26, 8)) == utc(2026, 10, 26, 8)  # at the time itself
    assert last_time(weekly, utc(2026, 10, 26, 7, 59)) == utc(2026, 10, 19, 7)


def test_a_daily_time_the_clocks_skip_is_an_hour_later_that_day_never_skipped() -> None:
    daily = spec("daily 02:30")
    # 28 March 2027: Zurich's clocks jump from 02:00 to 03:00.
    assert next_time(daily, utc(2027, 3, 27, 1, 30)) == utc(2027, 3, 28, 1, 30)  # 03:30 CEST
    assert next_time(daily, utc(2027, 3, 28, 1, 30)) == utc(2027, 3, 29, 0, 30)  # 02:30 CEST


def test_the_period_in_progress_runs_from_the_last_time_until_now() -> None:
    now = utc(2026, 11, 4, 15)
    assert period_so_far(spec(), now) == DigestPeriod(utc(2026, 11, 2, 8), now, so_far=True)


def test_a_new_digest_records_its_last_ended_period_without_posting_it() -> None:
    period = due_period(spec(), utc(2026, 11, 4, 15), None)
    assert period == DigestPeriod(utc(2026, 10, 26, 8), utc(2026, 11, 2, 8), baseline=True)


def test_the_period_that_just_ended_is_due_once_on_time_and_late_after_a_quarter_hour() -> None:
    weekly = spec()
    recorded = utc(2026, 10, 19, 7)  # the newest period recorded starts then: it ended on 26 October
    assert due_period(weekly, utc(2026, 11, 2, 7, 59), recorded) is None
    on_time = due_period(weekly, utc(2026, 11, 2, 8, 1), recorded)
    assert on_time == DigestPeriod(utc(2026, 10, 26, 8), utc(2026, 11, 2, 8))
    late = due_period(weekly, utc(2026, 11, 2, 8) + LATE_AFTER + timedelta(seconds=1), recorded)
    assert late is not None and late.late
    assert due_period(weekly, utc(2026, 11, 4), utc(2026, 10, 26, 8)) is None  # posted: nothing more
    assert due_period(weekly, utc(2026, 11, 9, 8, 1), utc(2026, 11, 2, 8)) is None  # sent early by --send


def test_periods_nobody_posted_are_one_late_digest_from_the_first_missed_time() -> None:
    period = due_period(spec(), utc(2026, 11, 16, 8, 1), utc(2026, 10, 26, 8))  # nothing ran on 9 November
    assert period == DigestPeriod(utc(2026, 11, 2, 8), utc(2026, 11, 16, 8), late=True)


# -- the [[digests]] tables -----------------------------------------------------------------


FLAGS = ("reprisal", "icc")
GOOD = {"name": "weekly", "channel": "#digest", "every": "weekly mon 09:00", "tz": "Europe/Zurich"}


def test_a_table_becomes_a_typed_spec_with_every_flag_by_default() -> None:
    (parsed,) = digest_specs([GOOD], FLAGS, "pressbot.toml")
    assert parsed == DigestSpec("weekly", "#digest", DigestSchedule(0, 9, 0), ZURICH, FLAGS)
    (icc,) = digest_specs([{**GOOD, "flags": ["icc"]}], FLAGS, "pressbot.toml")
    assert icc.flags == ("icc",)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({**GOOD, "cron": "x"}, 'pressbot.toml: digests[1] (name "weekly").cron: unknown key'),
        ({**GOOD, "every": "hourly"}, "digests[1] (name \"weekly\").every: 'hourly' is not a schedule"),
        ({**GOOD, "tz": "Mars/Olympus"}, "digests[1] (name \"weekly\").tz: unknown time zone 'Mars/Olympus'"),
        ({**GOOD, "tz": "../../etc/passwd"}, ".tz: unknown time zone"),
        ({**GOOD, "flags": ["icc", "torture"]}, ".flags: unknown flag 'torture' (defined: reprisal, icc)"),
        ({k: v for k, v in GOOD.items() if k != "channel"}, ".channel: missing"),
    ],
    ids=["unknown-key", "schedule", "zone", "zone-path", "flag", "no-channel"],
)
def test_a_bad_table_is_one_line_naming_the_file_table_and_key(table: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError) as raised:
        digest_specs([table], FLAGS, "pressbot.toml")
    assert message in str(raised.value) and "\n" not in str(raised.value)


def test_two_digests_of_one_name_are_refused() -> None:
    with pytest.raises(ValueError, match=re.escape('digests[2] (name "weekly").name: duplicate digest name')):
        digest_specs([GOOD, GOOD], FLAGS, "pressbot.toml")


# -- the message ---------------------------------------------------------------------------


def release(number: int, flags: tuple[str, ...] = ("reprisal",), title: str | None = None) -> DigestRelease:
    return DigestRelease(
        item_id=number, feed_name="ISHR", title=title or f"Defenders face reprisals after session {number}",
        url=f"https://ishr.example/news/{number}", date=utc(2026, 10, 30, 12) - timedelta(minutes=number),
        flags=flags,
    )


def digest_of(releases: list[DigestRelease], **period: bool) -> Digest:
    return Digest(spec(), DigestPeriod(utc(2026, 10, 26, 8), utc(2026, 11, 2, 8), **period), tuple(releases),
                  not_relevant={"reprisal": 1})


def test_a_digest_groups_releases_by_flag_with_counts_and_linked_titles() -> None:
    (message,) = build_digest(digest_of([release(1), release(2, ("reprisal", "icc")), release(3, ("icc",))]))
    texts = [json.dumps(block, ensure_ascii=False) for block in message["blocks"]]
    whole = "\n".join(texts)
    assert "Digest “weekly”: 26 Oct 09:00 – 2 Nov 2026 09:00 (Europe/Zurich)" in texts[0]
    assert "3 flagged releases — reprisal 2 (1 marked not relevant) · icc 2" in texts[1]
    assert whole.index("*reprisal* — 2 releases, 1 marked not relevant") < whole.index("*icc* — 2 releases, 0 marked")
    assert "• *<https://ishr.example/news/1|Defenders face reprisals after session 1>* — ISHR, 30 Oct 2026" in whole
    assert message["channel"] == "#digest" and message_problem(message) is None


def test_a_late_digest_says_when_it_was_due() -> None:
    (message,) = build_digest(digest_of([release(1)], late=True))
    assert "Late: due Mon 2 Nov 09:00 (Europe/Zurich)" in json.dumps(message["blocks"])


def test_feed_text_in_a_digest_can_neither_ping_nor_disguise_a_link() -> None:
    hostile = release(1, title="<!channel> *urgent* <https://evil.example|ohchr.org>")
    rendered = json.dumps(build_digest(digest_of([hostile])))
    assert "<!channel>" not in rendered and "<https://evil.example" not in rendered
    assert "&lt;!channel&gt;" in rendered


def test_an_empty_period_still_says_so() -> None:
    (message,) = build_digest(digest_of([]))
    assert "No flagged release was first seen in this period." in json.dumps(message["blocks"])
    assert "No flagged release" in format_digest_for_terminal(digest_of([]))


def test_120_releases_keep_slacks_limits_and_continue_in_further_parts() -> None:
    long_title = "Human rights defenders face reprisals and intimidation after cooperating with the UN, number "
    releases = [release(n, ("reprisal", "icc") if n % 3 == 0 else ("reprisal",), long_title + str(n))
                for n in range(120)]
    messages = build_digest(digest_of(releases))
    assert len(messages) > 1
    for message in messages:
        assert message_problem(message) is None  # 50 blocks, 3,000 per section, 40,000 text
        assert len(message["blocks"]) <= 50 and len(message["text"]) <= 40_000
    shown = "\n".join(json.dumps(message["blocks"]) for message in messages)
    assert all(shown.count(f"{long_title}{n}|") + shown.count(f"{long_title}{n}>") >= 1 for n in range(120))
    assert "continued (2/" in json.dumps(messages[1]["blocks"][0])
