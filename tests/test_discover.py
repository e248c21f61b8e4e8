"""``pressbot feeds discover`` against local sites: advertised feeds, common paths, page sources."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

from bot.config import load_feeds
from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.helpers import RSS20, run_cli
from tests.newsroom import HTML, mount, release


def discover(server: FeedServer, tmp_path: Path, url: str, *args: str) -> tuple[str, Path]:
    config = write_config(tmp_path, [])
    database = tmp_path / "never.db"
    result = run_cli(["feeds", "discover", url, *args], config, f"sqlite:///{database}")
    assert result.exit_code == 0, result.output
    assert not database.exists()  # stores nothing, creates no database
    return result.stdout, config


def pasted(tmp_path: Path, toml: str) -> list[object]:
    (tmp_path / "pasted.toml").write_text(toml, encoding="utf-8")
    return list(load_feeds(tmp_path / "pasted.toml"))


def test_an_advertised_feed_is_found_and_checked(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.add("/wp/news.rss", RSS20)
    home = """<!DOCTYPE html><html><head><title>Rights Watchers</title>
    <link rel="alternate" type="application/rss+xml" title="News" href="/wp/news.rss">
    <link rel="stylesheet" href="/site.css"></head><body><p>Welcome</p></body></html>"""
    url = feed_server.add("/about/us", home, content_type=HTML)

    toml, _config = discover(feed_server, tmp_path, url)

    data = tomllib.loads(toml)
    assert data["feeds"] == [{"name": "Rights Watchers", "url": feed_server.url("/wp/news.rss")}]
    assert "# advertised: 3 items, newest 2026-11-02" in toml
    assert [source.url for source in pasted(tmp_path, toml)] == [feed_server.url("/wp/news.rss")]  # type: ignore[attr-defined]


def test_a_feed_at_a_common_path_is_found_without_being_advertised(feed_server: FeedServer, tmp_path: Path) -> None:
    feed_server.add("/feed/", RSS20)
    url = feed_server.add("/", "<html><head><title>Plain</title></head><body>Hi</body></html>", content_type=HTML)

    toml, _config = discover(feed_server, tmp_path, url)

    assert tomllib.loads(toml)["feeds"][0]["url"] == feed_server.url("/feed/")
    assert "# common path: 3 items" in toml


def test_a_site_without_a_feed_gets_a_page_source_with_its_first_releases(
    feed_server: FeedServer, tmp_path: Path
) -> None:
    releases = [release(index) for index in range(1, 8)]
    url = mount(feed_server, "drupal", releases)

    toml, _config = discover(feed_server, tmp_path, url)

    data = tomllib.loads(toml)
    assert data["feeds"] == [{"name": "Press releases | OHCHR", "url": url, "page": True}]
    shown = [line for line in toml.splitlines() if line.startswith("#       ")]
    assert [line.strip("# ") for line in shown] == [feed_server.url(f"/en/press-releases/{r.published:%Y/%m}/{r.slug}")
                                                    for r in releases[:5]]
    assert f"#   {releases[0].published:%Y-%m-%d}  {releases[0].title}" in toml
    assert "the first of 7 releases" in toml
    assert pasted(tmp_path, toml)[0].listing is not None  # type: ignore[attr-defined]
    # The common paths were each asked once, and no release page was fetched.
    assert feed_server.hits["/rss.xml"] == 1 and feed_server.hits["/?feed=rss2"] == 1
    assert not any(path.startswith("/en/press-releases/20") for path in feed_server.hits)


def test_discover_json_reports_the_checks_and_the_proposal(feed_server: FeedServer, tmp_path: Path) -> None:
    url = mount(feed_server, "cards", [release(index) for index in range(1, 4)])

    output, _config = discover(feed_server, tmp_path, url, "--json")

    report = json.loads(output)
    assert report["feeds"] == []
    assert all(not check["ok"] and check["error"] for check in report["checked"])
    proposed = report["proposed_page"]
    assert proposed["page"] is True and proposed["release_count"] == 3 and proposed["error"] is None
    assert [r["published"] for r in proposed["releases"]] == [None, None, None]  # the grid shows no dates


def test_discover_refuses_a_url_that_is_not_http(tmp_path: Path) -> None:
    result = run_cli(["feeds", "discover", "ftp://example.org/"], write_config(tmp_path, []), "sqlite://")

    assert result.exit_code == 2
    assert result.stderr.strip() == "pressbot: error: 'ftp://example.org/' is not an http(s) URL"
