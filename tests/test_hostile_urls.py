"""Issue 14, item 1: an unparseable URL is one feed's (or one release's) failure, never the pass's."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from bot.cli import cli
from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.helpers import RSS20, count_items, run_cli

BAD_URLS = {
    "port-too-big": "http://127.0.0.1:99999/feed.xml",
    "port-not-a-number": "http://127.0.0.1:abc/feed.xml",
    "nul": "http://127.0.0.1/fe\x00ed.xml",
    "newline": "http://127.0.0.1/fe\ned.xml",
    "space-in-host": "http://exa mple.org/feed.xml",
}


@pytest.mark.parametrize("case", sorted(BAD_URLS), ids=str)
def test_config_refuses_a_feed_url_that_cannot_be_fetched(case: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    # A JSON string is a TOML basic string: NUL and newline arrive as the escapes a user would type.
    (tmp_path / "feeds.toml").write_text(f'[[feeds]]\nname = "Bad"\nurl = {json.dumps(BAD_URLS[case])}\n')
    env = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}

    result = subprocess.run(
        [sys.executable, "-m", "bot", "poll"], env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path
    )

    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "feeds.toml" in lines[0] and "url" in lines[0], result.stderr


# (listparser turns a NUL into U+FFFD itself: a URL httpx can request.)
@pytest.mark.parametrize("case", ["port-too-big", "port-not-a-number", "newline"], ids=str)
def test_opml_import_refuses_a_url_that_cannot_be_fetched(case: str, tmp_path: Path, sqlite_url: str) -> None:
    config = write_config(tmp_path, [])
    url = BAD_URLS[case].replace("\x00", "&#0;").replace("\n", "&#10;")
    opml = tmp_path / "list.opml"
    opml.write_text(f'<opml version="2.0"><body><outline text="Bad" xmlUrl="{url}"/></body></opml>')

    result = CliRunner().invoke(
        cli, ["feeds", "import", str(opml)], env={"PRESSBOT_CONFIG": str(config), "DATABASE_URL": sqlite_url}
    )

    assert result.exit_code == 2, result.output
    assert 'outline "Bad"' in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "target", ["http:127.0.0.1:1/x", "http://127.0.0.1:99999/", "http://127.0.0.1:abc/", "http://[::1/x"],
    ids=["no-slashes", "port-too-big", "port-not-a-number", "bad-ipv6"],
)
def test_a_redirect_to_an_unparseable_url_fails_that_feed_and_the_pass_goes_on(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str, target: str
) -> None:
    feeds = [
        {"name": "Healthy", "url": feed_server.add("/good.xml", RSS20)},
        {"name": "Broken", "url": feed_server.redirect("/moved.xml", target)},
    ]
    config = write_config(tmp_path, feeds)

    result = run_cli(["poll", "--json"], config, sqlite_url)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["fetched"], summary["failed"]) == (1, 1)
    assert count_items(sqlite_url) == {"Healthy": 3}
    failed = [report for report in summary["feeds_report"] if report["status"] == "failed"]
    assert failed[0]["name"] == "Broken" and failed[0]["error"]


def test_an_item_link_with_a_bad_port_fails_that_release_only(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    feed = RSS20.replace("https://example.org/news/reprisals", "http://127.0.0.1:99999/news/reprisals")
    feed = feed.replace("https://example.org/news/report", "http://127.0.0.1:abc/news/report")
    feed = feed.replace("<link>/news/warrant</link>", "<link>/page.html</link>")
    page = "<html><body><article><p>" + "The International Criminal Court opened a case. " * 20
    page += "</p></article></body></html>"
    feed_server.add("/page.html", page, content_type="text/html")
    config = write_config(
        tmp_path, [{"name": "Rights", "url": feed_server.add("/feed.xml", feed), "full_text": True}],
        extra="[fulltext]\nenabled = true\n",
    )

    result = run_cli(["poll", "--json"], config, sqlite_url)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["fetched"], summary["failed"], summary["new_items"]) == (1, 0, 3)
    assert feed_server.hits["/page.html"] == 1
