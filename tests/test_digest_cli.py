"""``pressbot digest --preview|--send``, digests through ``pressbot poll``, and a bad ``[[digests]]``
table refused by every command (issue 19)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from bot.cli.stages import load_page_stages
from bot.config import load
from bot.digest import next_time, period_so_far
from bot.scheduler.worker import Worker
from tests.conftest import open_db, write_config
from tests.fakeslack import FakeSlack, message_problem
from tests.feedserver import FeedServer
from tests.helpers import run_cli

REPRISAL = "Several defenders faced reprisals for cooperating with the UN."
ICC = "Judges of the International Criminal Court issued an arrest warrant."


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    # Alerts go to a channel the fake does not know (refused at once, never paced): this is about digests.
    with FakeSlack(channels={"digest": "C0DIGEST00"}) as slack:
        yield slack


def digest_table(name: str = "daily", **keys: object) -> str:
    # The period in progress began an hour ago, whenever the test runs.
    start = datetime.now(UTC) - timedelta(hours=1)
    values: dict[str, object] = {"name": name, "channel": "#digest", "every": f"daily {start:%H:%M}", "tz": "UTC"}
    values.update(keys)
    return "[[digests]]\n" + "".join(f"{key} = {json.dumps(value)}\n" for key, value in values.items())


def feed_of(count: int) -> str:
    now = datetime.now(UTC)
    items = "".join(
        f"<item><title>Human rights defenders face reprisals after cooperating with the UN, case {n}</title>"
        f"<link>https://ngo.example/news/{n}</link><guid>case-{n}</guid>"
        f"<pubDate>{format_datetime(now - timedelta(minutes=n))}</pubDate>"
        f"<description>{REPRISAL} {ICC if n % 3 == 0 else ''}</description></item>"
        for n in range(count)
    )
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>NGO</title><link>https://ngo.example/</link>'
            f"{items}</channel></rss>")


def configure(tmp_path: Path, server: FeedServer, count: int, digests: str) -> Path:
    server.add("/feed.xml", feed_of(count))
    feeds = [{"name": "NGO", "url": server.url("/feed.xml")}]
    return write_config(tmp_path, feeds, extra='[slack]\nchannel = "#elsewhere"\n' + digests)


def slack_env(fake: FakeSlack) -> dict[str, str]:
    return {"SLACK_BOT_TOKEN": fake.token, "SLACK_API_URL": fake.url}


def digest_parts(fake: FakeSlack) -> list[dict[str, Any]]:
    """The digest's first message, then its thread's replies."""
    (first,) = [m for m in fake.posted("#digest") if (m.get("metadata") or {}).get("event_type") == "pressbot_digest"]
    return [first, *fake.replies("#digest", first["ts"])]


def test_120_releases_keep_slacks_limits_and_the_digest_continues_in_its_thread(
    tmp_path: Path, feed_server: FeedServer, fake: FakeSlack
) -> None:
    config = configure(tmp_path, feed_server, 120, digest_table())
    database_url = f"sqlite:///{tmp_path / 'p.db'}"
    assert run_cli(["poll"], config, database_url, **slack_env(fake)).exit_code == 0
    result = run_cli(["digest", "--send"], config, database_url, **slack_env(fake))
    assert result.exit_code == 0, result.output
    assert "digest daily: posted to #digest" in result.output
    parts = digest_parts(fake)
    assert len(parts) >= 2
    for part in parts:
        assert message_problem(part) is None and len(part["blocks"]) <= 50  # what Slack checks
        assert all(len(block["text"]["text"]) <= 3000 for block in part["blocks"] if block["type"] == "section")
    assert [part["metadata"]["event_payload"]["part"] for part in parts] == list(range(len(parts)))
    shown = "".join(json.dumps(part["blocks"]) for part in parts)
    assert all(f"case {n}>" in shown for n in range(120))
    assert "120 flagged releases — reprisal 120 · icc 40" in json.dumps(parts[0]["blocks"], ensure_ascii=False)


def test_send_twice_in_a_period_posts_once_and_the_scheduled_send_adds_nothing(
    tmp_path: Path, feed_server: FeedServer, fake: FakeSlack
) -> None:
    config = configure(tmp_path, feed_server, 3, digest_table())
    database_url = f"sqlite:///{tmp_path / 'p.db'}"
    assert run_cli(["poll"], config, database_url, **slack_env(fake)).exit_code == 0
    first = run_cli(["digest", "daily", "--send"], config, database_url, **slack_env(fake))
    assert first.exit_code == 0 and "posted to #digest" in first.output
    second = run_cli(["digest", "--send"], config, database_url, **slack_env(fake))
    assert second.exit_code == 0, second.output
    assert "was sent at" in second.output and "already; nothing posted" in second.output
    assert len(fake.posted("#digest")) == 1
    # The scheduled time at the end of that period, and an hour after it: nothing more.
    settings = load({"PRESSBOT_CONFIG": str(config), "DATABASE_URL": database_url,
                     "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", **slack_env(fake)})
    (spec,) = settings.digests
    end = next_time(spec, period_so_far(spec, datetime.now(UTC)).start)
    for moment in (end + timedelta(seconds=5), end + timedelta(hours=1)):
        Worker(settings, open_db(database_url), page_stages=load_page_stages, clock=lambda moment=moment: moment,
               echo=lambda text: None).deliver()
    assert len(fake.posted("#digest")) == 1


def test_preview_prints_the_period_in_progress_and_posts_nothing(
    tmp_path: Path, feed_server: FeedServer, fake: FakeSlack
) -> None:
    config = configure(tmp_path, feed_server, 3, digest_table())
    database_url = f"sqlite:///{tmp_path / 'p.db'}"
    assert run_cli(["poll"], config, database_url).exit_code == 0
    result = run_cli(["digest", "--preview"], config, database_url, **slack_env(fake))
    assert result.exit_code == 0, result.output
    assert "Digest “daily” so far:" in result.output and "3 flagged releases — reprisal 3 · icc 1" in result.output
    assert "https://ngo.example/news/2" in result.output
    assert fake.posts() == []


# -- bad input: one line, exit 2, for every command --------------------------------------------


@pytest.mark.parametrize(
    ("table", "message"),
    [
        (digest_table(every="fortnightly 09:00"), ".every: 'fortnightly 09:00' is not a schedule"),
        (digest_table(tz="Europe/Atlantis"), ".tz: unknown time zone 'Europe/Atlantis'"),
        (digest_table(flags=["reprisals"]), ".flags: unknown flag 'reprisals' (defined: reprisal, icc)"),
        (digest_table(when="monday"), ".when: unknown key"),
        (digest_table() + digest_table(), ".name: duplicate digest name"),
    ],
    ids=["schedule", "time-zone", "flag", "unknown-key", "duplicate"],
)
@pytest.mark.parametrize(
    "command",
    [["poll"], ["run"], ["digest", "--preview"], ["query", "visa"], ["status"], ["alerts", "list"]],
    ids=["poll", "run", "digest", "query", "status", "alerts"],
)
def test_a_bad_digest_table_stops_every_command_with_one_line_and_exit_2(
    tmp_path: Path, table: str, message: str, command: list[str]
) -> None:
    config = write_config(tmp_path, [], extra=table)
    result = run_cli(command, config, f"sqlite:///{tmp_path / 'p.db'}")
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert line.startswith(f"pressbot: error: {config}: digests[") and message in line
    assert not (tmp_path / "p.db").exists()


def test_an_unknown_digest_name_or_a_missing_one_is_one_line_and_exit_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, [], extra=digest_table("weekly") + digest_table("monthly-ish"))
    database_url = f"sqlite:///{tmp_path / 'p.db'}"
    unknown = run_cli(["digest", "nope", "--preview"], config, database_url)
    assert unknown.exit_code == 2
    assert unknown.output.strip() == "pressbot: error: no digest named 'nope' (configured: weekly, monthly-ish)"
    unnamed = run_cli(["digest", "--send"], config, database_url)
    assert unnamed.exit_code == 2
    assert unnamed.output.strip() == "pressbot: error: several digests are configured: name one of weekly, monthly-ish"
    none = run_cli(["digest", "--preview"], write_config(tmp_path, []), database_url)
    assert none.exit_code == 2 and "no [[digests]] configured" in none.output


def test_a_digest_slack_refused_fails_with_its_error_and_retry_posts_it_once_fixed(
    tmp_path: Path, feed_server: FeedServer, fake: FakeSlack
) -> None:
    config = configure(tmp_path, feed_server, 3, digest_table(channel="#not-yet"))
    database_url = f"sqlite:///{tmp_path / 'p.db'}"
    assert run_cli(["poll"], config, database_url, **slack_env(fake)).exit_code == 0
    refused = run_cli(["digest", "--send"], config, database_url, **slack_env(fake))
    assert refused.exit_code == 1
    last = refused.output.strip().splitlines()[-1]  # after the log's warning
    assert last == "pressbot: error: digest daily: not posted to #not-yet: channel_not_found (failed)"
    fake.channels["not-yet"] = "C0NOTYET00"  # the channel is created and the bot invited
    fake.messages["C0NOTYET00"] = []
    retried = run_cli(["digest", "--retry"], config, database_url, **slack_env(fake))
    assert retried.exit_code == 0 and "1 failed period(s), 1 posted now to #not-yet" in retried.output
    assert len(fake.posted("#not-yet")) == 1
    again = run_cli(["digest", "--retry"], config, database_url, **slack_env(fake))
    assert "0 failed period(s), 0 posted now" in again.output and len(fake.posted("#not-yet")) == 1
