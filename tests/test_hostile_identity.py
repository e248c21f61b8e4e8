"""Issue 14, items 10-12: long keys, dates far in the future, deeply nested HTML."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import create_engine, select

from bot.config import normalize_database_url
from bot.schema import Item
from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.helpers import run_cli

REPRISALS = "Several defenders faced reprisals for cooperating with the United Nations."


def rss(items: list[tuple[str, str, str, str]]) -> str:
    entries = "".join(
        f"<item><title>{html.escape(title)}</title><guid isPermaLink=\"false\">{html.escape(guid)}</guid>"
        f"<pubDate>{date}</pubDate><description>{html.escape(text)}</description></item>"
        for guid, title, date, text in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Rights</title>{entries}</channel></rss>'


def rows(database_url: str) -> list[Item]:
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        found = list(connection.execute(select(Item).order_by(Item.id)))
    engine.dispose()
    return found  # type: ignore[return-value]


def recent(hours: int = 1) -> str:
    return f"{datetime.now(UTC) - timedelta(hours=hours):%a, %d %b %Y %H:%M:%S} GMT"


def test_two_guids_sharing_their_first_500_characters_are_two_releases(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    shared = "urn:press:" + "x" * 600
    first = (shared + "-one", "First release", recent(2), "One.")
    config = write_config(tmp_path, [{"name": "Rights", "url": feed_server.add("/feed.xml", rss([first]))}])
    assert run_cli(["poll"], config, sqlite_url).exit_code == 0
    feed_server.add("/feed.xml", rss([(shared + "-two", "Second release", recent(), "Two."), first]))

    result = run_cli(["poll", "--json"], config, sqlite_url)

    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["new_items"] == 1
    stored = rows(sqlite_url)
    assert sorted(row.title for row in stored) == ["First release", "Second release"]
    assert all(len(row.key) <= 500 for row in stored)


def test_a_date_far_in_the_future_counts_as_no_date(feed_server: FeedServer, tmp_path: Path, sqlite_url: str) -> None:
    future = [(f"f{n}", f"Reprisals report {n}", "Fri, 31 Dec 9999 23:59:59 GMT", REPRISALS) for n in range(5)]
    body = rss([*future, ("now", "Reprisals today", recent(), REPRISALS)])
    config = write_config(tmp_path, [{"name": "Rights", "url": feed_server.add("/feed.xml", body)}])

    result = run_cli(["poll", "--json"], config, sqlite_url)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    # First pass: only the release dated within the alert window is alerted; undated ones are held.
    assert (summary["alerts_pending"], summary["alerts_held_back"]) == (1, 5), summary
    assert "5 entries dated more than a day ahead" in (summary["feeds_report"][0]["note"] or "")
    by_title = {row.title: row for row in rows(sqlite_url)}
    assert by_title["Reprisals report 0"].published_at is None
    assert by_title["Reprisals today"].published_at is not None


def test_text_inside_300_nested_elements_and_after_them_is_kept(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    nested = "<div>" * 300 + "Defenders faced reprisals in the capital." + "</div>" * 300
    body = rss([("deep", "Deep", recent(), nested + "<p>The Office said more.</p>")])
    config = write_config(tmp_path, [{"name": "Rights", "url": feed_server.add("/feed.xml", body)}])

    result = run_cli(["poll", "--json"], config, sqlite_url)

    assert result.exit_code == 0, result.output
    (row,) = rows(sqlite_url)
    assert "Defenders faced reprisals in the capital." in row.teaser and "The Office said more." in row.teaser
    assert row.flags == ["reprisal"]
