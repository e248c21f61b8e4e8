"""Issue 14, items 6-9: feed text never drives the terminal, breaks Slack's limits or leaks secrets."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, select

from bot.cli import cli
from bot.config import normalize_database_url
from bot.schema import Item
from tests.conftest import write_config
from tests.fakeslack import FakeSlack, message_problem
from tests.feedserver import FeedServer

MARKUP_TITLE = "Defenders face reprisals [/] after [link=https://evil.example]the session[/link] [bold]"
REPRISALS = "Several defenders faced reprisals for cooperating with the United Nations."


def rss(items: list[tuple[str, str, str]]) -> str:
    now = datetime.now(UTC) - timedelta(hours=1)
    entries = "".join(
        f"<item><title>{html.escape(title)}</title><link>{html.escape(link)}</link>"
        f'<guid isPermaLink="false">g-{n}</guid><pubDate>{now:%a, %d %b %Y %H:%M:%S} GMT</pubDate>'
        f"<description>{html.escape(text)}</description></item>"
        for n, (title, link, text) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Rights</title>{entries}</channel></rss>'


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def environment(config: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
            "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "PRESSBOT_FEEDS": "", "SLACK_BOT_TOKEN": "", **extra}


def invoke(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


# -- 6 -----------------------------------------------------------------------------------


def test_feed_text_with_rich_markup_is_shown_as_written(feed_server: FeedServer, tmp_path: Path) -> None:
    good = feed_server.add("/good[/]feed.xml", rss([(MARKUP_TITLE, "https://rights.example/1", REPRISALS)]))
    config = write_config(tmp_path, [{"name": "Rights [/] [link=https://evil.example]x[/link]", "url": good},
                                     {"name": "Gone [/]", "url": feed_server.url("/missing[/].xml")}])
    env = environment(config, tmp_path)
    assert invoke(env, "poll").exit_code == 0

    for args in (["alerts", "list"], ["feeds", "list"], ["status"]):
        result = invoke({**env, "COLUMNS": "400"}, *args)
        assert result.exit_code == 0, (args, result.output)
        assert "[/]" in result.output, (args, result.output)
    listed = invoke({**env, "COLUMNS": "400"}, "alerts", "list").output
    assert "[link=https://evil.example]the session[/link]" in listed
    assert "\x1b]8;" not in listed  # no terminal hyperlink smuggled in


# -- 7, 8, 9 ---------------------------------------------------------------------------------


def posted(fake: FakeSlack, feed_server: FeedServer, tmp_path: Path, items: list[tuple[str, str, str]],
           feed_url: str | None = None) -> list[dict[str, Any]]:
    url = feed_server.add("/rights.xml", rss(items))
    config = write_config(tmp_path, [{"name": "Rights", "url": feed_url or url}])
    env = environment(config, tmp_path, SLACK_BOT_TOKEN=fake.token, SLACK_API_URL=fake.url, SLACK_CHANNEL="#pressbot")
    result = invoke(env, "poll", "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["alerts_failed"] == 0 and summary["alerts_pending"] == 0, summary
    return fake.posts()


def test_an_alert_with_a_10000_character_url_keeps_every_block_within_slack_limits(
    fake: FakeSlack, feed_server: FeedServer, tmp_path: Path
) -> None:
    long_url = "https://rights.example/news/" + "a" * 10_000
    bodies = posted(fake, feed_server, tmp_path, [("Defenders face reprisals", long_url, REPRISALS)])

    assert len(bodies) == 1 and message_problem(bodies[0]) is None
    title = bodies[0]["blocks"][0]["text"]["text"]
    assert "Defenders face reprisals" in title and long_url not in title


def test_credentials_in_a_feed_url_never_reach_item_links(
    fake: FakeSlack, feed_server: FeedServer, tmp_path: Path
) -> None:
    url = feed_server.add("/rights.xml", rss([("Defenders face reprisals", "/news/1", REPRISALS)]))
    secret_url = url.replace("http://", "http://user:s3cret@")
    bodies = posted(fake, feed_server, tmp_path, [("Defenders face reprisals", "/news/1", REPRISALS)],
                    feed_url=secret_url)

    assert "s3cret" not in json.dumps(bodies)
    engine = create_engine(normalize_database_url(f"sqlite:///{tmp_path / 'p.db'}"))
    with engine.connect() as connection:
        stored = connection.execute(select(Item.url)).scalar_one()
    assert stored == url.rsplit("/", 1)[0] + "/news/1"
    queried = invoke(environment(tmp_path / "pressbot.toml", tmp_path), "query", "--format", "json").output
    assert "s3cret" not in queried


def test_invisible_and_mrkdwn_characters_are_neutralised_in_slack(
    fake: FakeSlack, feed_server: FeedServer, tmp_path: Path
) -> None:
    title = "Defenders *face* ~reprisals~ `now` \u202etxt.exe\u202c zero\u200bwidth\u200d c1\u0085x"
    bodies = posted(fake, feed_server, tmp_path, [(title, "https://rights.example/1", REPRISALS)])

    text = json.dumps(bodies[0], ensure_ascii=False)
    for character in ("\u202e", "\u202c", "\u200b", "\u200d", "\u0085", "`", "~"):
        assert character not in text, repr(character)
    heading = bodies[0]["blocks"][0]["text"]["text"]
    assert re.fullmatch(r"\*<[^|]+\|[^*]+>\*", heading), heading  # one bold run, unbroken
