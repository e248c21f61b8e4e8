"""``pressbot feeds list|check|import|export``: health, live checks, the OPML round trip."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from bot.opml import parse_opml, read_opml, write_opml
from bot.records import FeedSource
from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.searchcorpus import FEEDS, archive

RSS = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Rights</title><link>https://rights.example/</link>
<item><title>One</title><link>https://rights.example/1</link><pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate></item>
<item><title>Two</title><link>https://rights.example/2</link><pubDate>Tue, 03 Nov 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"""

THREE_FEEDS = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>Advocacy sources</title></head>
  <body>
    <outline text="NGOs">
      <outline type="rss" text="ISHR" xmlUrl="https://ishr.ch/feed/" htmlUrl="https://ishr.ch/"/>
      <outline type="rss" text="FIDH &amp; partners" xmlUrl="https://www.fidh.org/spip.php?page=backend&amp;lang=fr"
               category="fr,europe"/>
    </outline>
    <outline type="rss" text="UN News: human rights" xmlUrl="https://news.un.org/feed/subscribe/en/news/topic/human-rights/feed/rss.xml"/>
  </body>
</opml>
"""

ORIGINAL_FEEDS_TOML = """# Our sources; comments and layout must survive an import.
[[feeds]]
name = "ISHR"   # the same URL as in the OPML: skipped
url = "https://ishr.ch/feed/"
tags = ["ngo"]
"""


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


@pytest.fixture
def config_env(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    config = write_config(tmp_path, [])
    (tmp_path / "feeds.toml").write_text(ORIGINAL_FEEDS_TOML, encoding="utf-8")
    return {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": sqlite_url}


def equivalent(sources: tuple[FeedSource, ...]) -> set[tuple[str, str, frozenset[str]]]:
    return {(source.name, source.url, frozenset(source.tags)) for source in sources}


# -- OPML --------------------------------------------------------------------------------


def test_opml_with_three_feeds_round_trips_through_import_and_export(tmp_path: Path) -> None:
    opml = tmp_path / "three.opml"
    opml.write_text(THREE_FEEDS, encoding="utf-8")
    config = write_config(tmp_path, [])
    (tmp_path / "feeds.toml").write_text("", encoding="utf-8")
    env = {"PRESSBOT_CONFIG": str(config)}
    imported = invoke(env, "feeds", "import", str(opml))
    assert imported.exit_code == 0 and "imported 3 feeds" in imported.stdout
    exported = invoke(env, "feeds", "export")
    assert exported.exit_code == 0
    assert equivalent(parse_opml(exported.stdout.encode(), "export")) == equivalent(read_opml(opml))
    assert equivalent(read_opml(opml)) == {
        ("ISHR", "https://ishr.ch/feed/", frozenset({"NGOs"})),
        ("FIDH & partners", "https://www.fidh.org/spip.php?page=backend&lang=fr", frozenset({"NGOs", "fr", "europe"})),
        ("UN News: human rights", "https://news.un.org/feed/subscribe/en/news/topic/human-rights/feed/rss.xml",
         frozenset()),
    }


def test_import_appends_keeps_the_existing_text_and_skips_duplicates(
    tmp_path: Path, config_env: dict[str, str]
) -> None:
    opml = tmp_path / "three.opml"
    opml.write_text(THREE_FEEDS, encoding="utf-8")
    first = invoke(config_env, "feeds", "import", str(opml))
    assert first.exit_code == 0, first.output
    assert "imported 2 feeds" in first.stdout and "skipped: ISHR" in first.stdout
    text = (tmp_path / "feeds.toml").read_text(encoding="utf-8")
    assert text.startswith(ORIGINAL_FEEDS_TOML)
    again = invoke(config_env, "feeds", "import", str(opml))
    assert "imported 0 feeds" in again.stdout and (tmp_path / "feeds.toml").read_text(encoding="utf-8") == text


def test_export_is_opml_2(config_env: dict[str, str]) -> None:
    root = ET.fromstring(invoke(config_env, "feeds", "export").stdout)
    assert root.tag == "opml" and root.get("version") == "2.0"
    [outline] = root.iter("outline")
    assert outline.attrib == {"type": "rss", "text": "ISHR", "title": "ISHR", "xmlUrl": "https://ishr.ch/feed/",
                              "category": "ngo"}
    assert root.find("head/dateCreated") is not None


def test_a_real_opml_subscription_list_imports_every_feed(shared: Path, config_env: dict[str, str]) -> None:
    opml = shared / "corpus" / "feeds" / "rome_opml20_bloglines.opml"
    if not opml.exists():
        pytest.skip("rome_opml20_bloglines.opml is not in ../shared")
    result = invoke(config_env, "feeds", "import", str(opml))
    assert result.exit_code == 0 and "imported 11 feeds" in result.stdout
    assert invoke(config_env, "db", "upgrade").exit_code == 0  # feeds list never creates the database
    names = {row["name"] for row in json.loads(invoke(config_env, "feeds", "list", "--json").stdout)}
    assert {"Slashdot", "The Register", "Bloglines | News", "ISHR"} <= names


def test_importing_something_that_is_not_opml_exits_2(tmp_path: Path, config_env: dict[str, str]) -> None:
    page = tmp_path / "page.opml"
    page.write_text("<html><body>Document moved</body></html>", encoding="utf-8")
    result = invoke(config_env, "feeds", "import", str(page))
    assert result.exit_code == 2 and "not an OPML subscription list" in result.stderr


def test_an_opml_outline_with_a_malformed_url_exits_2_naming_it(tmp_path: Path, config_env: dict[str, str]) -> None:
    opml = tmp_path / "broken.opml"
    opml.write_text('<opml version="2.0"><body><outline text="Broken" xmlUrl="http://[::1/feed"/></body></opml>')
    result = invoke(config_env, "feeds", "import", str(opml))
    assert result.exit_code == 2, result.output
    assert 'outline "Broken"' in result.stderr and "not an http(s) URL" in result.stderr


def test_an_opml_feed_list_reads_like_a_toml_one(tmp_path: Path) -> None:
    # Two feeds named alike in a reader's export get distinct pressbot names.
    opml = tmp_path / "feeds.opml"
    opml.write_text(write_opml([FeedSource("News", "https://a.example/rss"), FeedSource("News", "https://b.example/rss")]))
    assert [source.name for source in read_opml(opml)] == ["News", "News (b.example)"]


def test_an_opml_feed_list_named_by_pressbot_feeds_is_the_commands_feed_list(
    tmp_path: Path, config_env: dict[str, str]
) -> None:
    # config.load() reads it through the reader the CLI hands it (bot.cli.read_opml).
    opml = tmp_path / "three.opml"
    opml.write_text(THREE_FEEDS, encoding="utf-8")
    exported = invoke({**config_env, "PRESSBOT_FEEDS": str(opml)}, "feeds", "export")
    assert exported.exit_code == 0, exported.output
    assert equivalent(parse_opml(exported.stdout.encode(), "export")) == equivalent(read_opml(opml))


# -- list --------------------------------------------------------------------------------


def test_list_shows_health_and_item_counts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'pressbot.db'}"
    archive(url).kw["bind"].dispose()
    config = write_config(tmp_path, [{"name": source.name, "url": source.url} for source in FEEDS]
                          + [{"name": "New one", "url": "https://new.example/feed"}])
    env = {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": url}
    listed = {row["name"]: row for row in json.loads(invoke(env, "feeds", "list", "--json").stdout)}
    assert {name: row["items"] for name, row in listed.items()} == {"FIDH": 2, "ISHR": 3, "UN News": 2, "New one": 0}
    assert listed["ISHR"]["enabled"] is True and listed["ISHR"]["consecutive_failures"] == 0
    assert set(listed["ISHR"]) == {"name", "url", "enabled", "disabled_reason", "last_success", "last_error",
                                   "consecutive_failures", "next_check", "items", "muted_until", "muted_by"}
    assert listed["ISHR"]["muted_until"] is None and listed["ISHR"]["muted_by"] is None
    table = CliRunner().invoke(cli, ["feeds", "list"], env={**env, "COLUMNS": "200"})
    assert table.exit_code == 0 and "UN News" in table.stdout and "New one" in table.stdout


# -- check -------------------------------------------------------------------------------


def test_check_fetches_each_feed_now_and_reports(feed_server: FeedServer, tmp_path: Path) -> None:
    good = feed_server.add("/good.xml", RSS)
    broken = feed_server.add("/broken.xml", "oops", status=500)
    page = feed_server.add("/page.xml", "<!doctype html><html><body>moved</body></html>", content_type="text/html")
    config = write_config(tmp_path, [{"name": "Good", "url": good}, {"name": "Broken", "url": broken},
                                     {"name": "Page", "url": page}])
    env = {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
           "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1"}
    result = invoke(env, "feeds", "check")
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.strip()}
    assert "HTTP 200, 2 items, newest 2026-11-03" in lines["Good"]
    assert "FAILED  HTTP 500" in lines["Broken"]
    assert "FAILED  not a feed" in lines["Page"]
    assert "3 feeds checked: 1 ok, 2 failed" in result.stdout
    [report] = json.loads(invoke(env, "feeds", "check", "good", "--json").stdout)
    assert report["ok"] and report["items"] == 2 and report["status"] == 200
    assert not (tmp_path / "p.db").exists()  # a check stores nothing


def test_check_of_an_unknown_name_exits_2(config_env: dict[str, str]) -> None:
    result = invoke(config_env, "feeds", "check", "Nope")
    assert result.exit_code == 2 and "no configured feed named 'Nope'" in result.stderr
