"""Page sources (issue 17) through ``pressbot poll``: a local newsroom site on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select

from bot.config import normalize_database_url
from bot.schema import Alert, FlagMatchRow, Item, ItemAlias
from tests.conftest import write_config
from tests.fakeslack import FakeSlack
from tests.feedserver import FeedServer
from tests.helpers import poll_json, run_cli
from tests.newsroom import HTML, LAYOUTS, listing_html, mount, release

REPRISAL_SENTENCE = (
    "The experts said the detentions were the latest in a pattern of reprisals against those who cooperated "
    "with the UN in Geneva."
)
FOURTH_PARAGRAPH = (
    "The Special Rapporteur on the situation of human rights defenders expressed concern at the draft law "
    "on foreign funding that the parliament adopted in first reading last week.",
    "The law would require every organisation receiving funds from abroad to register as a foreign agent "
    "and to report each of its activities to the Ministry of Justice every quarter.",
    "The experts recalled that restrictions on access to funding must be necessary and proportionate to a "
    "legitimate aim, and said they had written to the Government to ask for explanations.",
    REPRISAL_SENTENCE,
)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def rows(database_url: str, *columns: Any) -> list[Any]:
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        found = list(connection.execute(select(*columns)).all())
    engine.dispose()
    return found


def release_hits(server: FeedServer, listing_path: str) -> int:
    """Requests of anything but the listing itself: release pages (or worse)."""
    return sum(count for path, count in server.hits.items() if path != listing_path)


def page_config(tmp_path: Path, url: str, **options: Any) -> Path:
    extra = options.pop("extra", "")
    return write_config(tmp_path, [{"name": "Newsroom", "url": url, "page": True, **options}], extra=extra)


@pytest.mark.parametrize("layout_name", list(LAYOUTS), ids=list(LAYOUTS))
def test_every_listed_release_is_stored_once_with_its_title_date_canonical_url_and_text(
    feed_server: FeedServer, tmp_path: Path, database_url: str, layout_name: str
) -> None:
    layout = LAYOUTS[layout_name]
    releases = [release(index) for index in range(1, 5)]
    url = mount(feed_server, layout_name, releases)

    summary = poll_json(page_config(tmp_path, url), database_url)

    assert (summary["fetched"], summary["failed"], summary["new_items"]) == (1, 0, 4)
    stored = rows(database_url, Item.key, Item.url, Item.title, Item.published_at, Item.full_text)
    assert sorted((key, url, title, published) for key, url, title, published, _text in stored) == sorted(
        (feed_server.url(layout.canonical(r)),) * 2 + (r.title, r.published) for r in releases
    )
    texts = {title: text for _key, _url, title, _published, text in stored}
    for item in releases:
        assert item.body()[2] in texts[item.title]
        assert "cookies" not in texts[item.title] and "All rights reserved" not in texts[item.title]
    # The listed URL is kept as an alias of its release (the card grid lists a dated path).
    aliases = {url for (url,) in rows(database_url, ItemAlias.url)}
    assert {feed_server.url(layout.listed(r)) for r in releases} <= aliases
    # Nothing but the listing and its four release pages was requested: no navigation,
    # footer, sidebar, tag or pagination link.
    assert set(feed_server.hits) == {layout.listing_path} | {layout.listed(r) for r in releases}
    assert all(count == 1 for count in feed_server.hits.values())


def test_a_reprisal_in_the_fourth_paragraph_of_a_release_page_is_flagged_and_alerted(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str, slack: FakeSlack
) -> None:
    releases = [
        release(1, "Valdoria: experts alarmed by detention of defenders", paragraphs=FOURTH_PARAGRAPH),
        release(2, "Annual report on the right to education"),
    ]
    config = page_config(tmp_path, mount(feed_server, "drupal", releases))

    result = run_cli(["poll", "--json"], config, sqlite_url, SLACK_BOT_TOKEN=slack.token, SLACK_API_URL=slack.url)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["flagged"], summary["alerts_sent"], summary["alerts_pending"]) == (1, 1, 0)
    matches = rows(sqlite_url, FlagMatchRow.flag, FlagMatchRow.field, FlagMatchRow.sentence)
    assert set(matches) == {("reprisal", "full_text", REPRISAL_SENTENCE)}
    posted = [message for messages in slack.messages.values() for message in messages]
    assert len(posted) == 1
    assert "pattern of *reprisals* against those who cooperated with the UN in Geneva" in json.dumps(posted[0])
    assert "Valdoria: experts alarmed" in json.dumps(posted[0])


def test_unchanged_new_and_reordered_listings_fetch_only_the_new_release(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    layout = LAYOUTS["wordpress"]
    releases = [release(index, f"ICC prosecutor statement number {index}") for index in range(1, 4)]
    config = page_config(tmp_path, mount(feed_server, "wordpress", releases))
    first = poll_json(config, database_url)
    assert (first["new_items"], first["alerts_pending"]) == (3, 3)
    assert release_hits(feed_server, layout.listing_path) == 3

    again = poll_json(config, database_url)  # nothing changed: a 304

    assert (again["not_modified"], again["new_items"], again["alerts_pending"]) == (1, 0, 3)
    assert release_hits(feed_server, layout.listing_path) == 3  # no release page requested
    assert feed_server.not_modified[layout.listing_path] == 1

    newest = release(0, "ICC judges confirm the charges", age=timedelta(minutes=5))
    mount(feed_server, "wordpress", [newest, *releases])
    added = poll_json(config, database_url)

    assert (added["new_items"], added["updated_items"], added["alerts_pending"]) == (1, 0, 4)
    assert release_hits(feed_server, layout.listing_path) == 4  # exactly one page fetched
    assert feed_server.hits[layout.listed(newest)] == 1

    feed_server.add(layout.listing_path, listing_html(layout, [releases[2], newest, releases[0], releases[1]]),
                    content_type=HTML)
    reordered = poll_json(config, database_url)

    assert (reordered["fetched"], reordered["new_items"], reordered["updated_items"]) == (1, 0, 0)
    assert release_hits(feed_server, layout.listing_path) == 4
    assert len(rows(database_url, Item.id)) == 4 and len(rows(database_url, Alert.id)) == 4


def test_a_first_pass_over_a_300_link_archive_fetches_at_most_pages_per_pass_and_alerts_only_recent_ones(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    layout = LAYOUTS["drupal"]
    now = datetime.now(UTC)
    # Every tenth release names the ICC in its title: 30 flagged, 3 of them within 48 h.
    releases = [
        release(index, f"International Criminal Court: statement {index}" if index % 10 == 0 else None,
                age=timedelta(hours=index * 1.5), now=now)
        for index in range(1, 301)
    ]
    config = page_config(tmp_path, mount(feed_server, "drupal", releases), pages_per_pass=20)

    first = poll_json(config, database_url)

    assert first["new_items"] == 300
    assert release_hits(feed_server, layout.listing_path) == 20
    newest = {layout.listed(r) for r in releases[:20]}
    assert {path for path in feed_server.hits if path != layout.listing_path} == newest
    recent = [r for r in releases if "Criminal Court" in r.title and r.published > now - timedelta(hours=48)]
    assert len(recent) == 3
    assert (first["alerts_pending"], first["alerts_held_back"]) == (3, 27)

    second = poll_json(config, database_url)  # the listing is unchanged: owed pages only

    assert release_hits(feed_server, layout.listing_path) == 40
    assert {layout.listed(r) for r in releases[20:40]} <= set(feed_server.hits)
    assert (second["new_items"], second["updated_items"], second["alerts_pending"]) == (0, 20, 3)


def test_a_release_page_that_fails_keeps_the_listings_title_and_is_retried(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    layout = LAYOUTS["cards"]
    item = release(1, "Coalition welcomes the new ratification")
    url = mount(feed_server, "cards", [item])
    page = feed_server.routes[layout.listed(item)]
    feed_server.add(layout.listed(item), "busy", status=503, content_type="text/plain")
    config = page_config(tmp_path, url)

    first = poll_json(config, sqlite_url)

    assert first["new_items"] == 1
    ((title, published, text, error),) = rows(sqlite_url, Item.title, Item.published_at, Item.full_text,
                                               Item.full_text_error)
    assert (title, published, text, error) == (item.title, None, None, "HTTP 503")

    feed_server.routes[layout.listed(item)] = page
    second = poll_json(config, sqlite_url)

    assert (second["new_items"], second["updated_items"]) == (0, 1)
    ((key, published, text),) = rows(sqlite_url, Item.key, Item.published_at, Item.full_text)
    assert key == feed_server.url(layout.canonical(item)) and published == item.published
    assert item.body()[1] in text
    assert feed_server.hits[layout.listed(item)] == 2
    poll_json(config, sqlite_url)
    assert feed_server.hits[layout.listed(item)] == 2  # read: never fetched again


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"items": "div.nothing-here"}, 'items = "div.nothing-here" matches nothing'),
        ({"items": "div.views-row", "link": "h6 a"}, 'link = "h6 a" inside items = "div.views-row"'),
    ],
    ids=["items", "link"],
)
def test_selectors_matching_nothing_are_a_failed_feed_with_one_line(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str, options: dict[str, str], reason: str
) -> None:
    url = mount(feed_server, "drupal", [release(1)])
    config = page_config(tmp_path, url, **options)

    summary = poll_json(config, sqlite_url)

    expected = f"no release links found on {url}: {reason}"
    assert summary["failed"] == 1 and summary["feeds_report"][0]["error"] == expected
    listed = json.loads(run_cli(["feeds", "list", "--json"], config, sqlite_url).stdout)
    assert listed[0]["last_error"] == expected
    status = json.loads(run_cli(["status", "--json"], config, sqlite_url).stdout)
    assert [feed["last_error"] for feed in status["feeds"]] == [expected]


def test_a_page_with_no_listing_is_a_failed_feed_saying_what_to_set(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    about = """<html><body><nav><a href="/en/about-us/team">Team</a></nav><main><h1>About us</h1>
    <div class="box"><a href="/en">Home</a></div><div class="box"><a href="/en/contact">Contact</a></div></main>
    </body></html>"""
    url = feed_server.add("/en/about-us", about, content_type=HTML)

    summary = poll_json(page_config(tmp_path, url), sqlite_url)

    assert summary["feeds_report"][0]["error"] == f'no release links found on {url}: set items = "div.box"'
    assert summary["new_items"] == 0 and summary["failed"] == 1


def test_page_sources_are_listed_checked_and_queried_like_feeds(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    releases = [release(index) for index in range(1, 4)]
    config = page_config(tmp_path, mount(feed_server, "cards", releases))
    poll_json(config, sqlite_url)

    query = run_cli(["query", "--feed", "Newsroom", "--format", "json"], config, sqlite_url)
    listed = json.loads(run_cli(["feeds", "list", "--json"], config, sqlite_url).stdout)
    check = json.loads(run_cli(["feeds", "check", "--json"], config, sqlite_url).stdout)
    status = json.loads(run_cli(["status", "--json"], config, sqlite_url).stdout)

    assert sorted(hit["title"] for hit in json.loads(query.stdout)) == sorted(r.title for r in releases)
    assert (listed[0]["name"], listed[0]["items"], listed[0]["last_error"]) == ("Newsroom", 3, None)
    assert (check[0]["ok"], check[0]["items"], check[0]["error"]) == (True, 3, None)
    assert [feed["name"] for feed in status["feeds"]] == ["Newsroom"]


def test_opml_export_leaves_listing_pages_out(tmp_path: Path) -> None:
    feeds = [{"name": "Newsroom", "url": "https://newsroom.example/news", "page": True},
             {"name": "ISHR", "url": "https://ishr.ch/feed/"}]
    config = write_config(tmp_path, feeds)

    exported = run_cli(["feeds", "export"], config, "sqlite://")

    assert exported.exit_code == 0
    assert 'xmlUrl="https://ishr.ch/feed/"' in exported.stdout and "newsroom.example" not in exported.stdout


def test_one_release_listed_under_two_urls_is_stored_once_with_both_as_aliases(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    # The Coalition for the ICC links the same story as /news/YYYYMMDD/<slug> and /news/<slug>.
    first, second = release(1, "Coalition welcomes ratification"), release(2, "Judges elected")
    twice = release(1, first.title, listed_path=f"/news/{first.slug}")
    url = mount(feed_server, "cards", [first, second])
    layout = LAYOUTS["cards"]
    feed_server.add(twice.listed_path or "", feed_server.routes[layout.listed(first)].body, content_type=HTML)
    feed_server.add(layout.listing_path, listing_html(layout, [first, twice, second]), content_type=HTML)

    summary = poll_json(page_config(tmp_path, url), sqlite_url)

    assert summary["new_items"] == 2, summary["feeds_report"]
    keys = sorted(key for (key,) in rows(sqlite_url, Item.key))
    assert keys == sorted(feed_server.url(layout.canonical(r)) for r in (first, second))
    aliases = {url for (url,) in rows(sqlite_url, ItemAlias.url)}
    assert {feed_server.url(layout.listed(first)), feed_server.url(f"/news/{first.slug}")} <= aliases


def test_a_site_giving_every_page_one_canonical_url_keeps_each_release_apart(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    layout = LAYOUTS["drupal"]
    releases = [release(index) for index in range(1, 4)]
    url = mount(feed_server, "drupal", releases)
    for item in releases:  # a CMS bug: the canonical link names the newsroom's front page
        route = feed_server.routes[layout.listed(item)]
        own = feed_server.url(layout.canonical(item)).encode()
        route.body = route.body.replace(own, feed_server.url("/en").encode())

    summary = poll_json(page_config(tmp_path, url), sqlite_url)

    assert summary["new_items"] == 3
    assert len({key for (key,) in rows(sqlite_url, Item.key)}) == 3


def test_a_failing_page_source_says_why_in_its_health_notice(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    url = feed_server.add("/en/about", "<html><body><main><p>Nothing listed.</p></main></body></html>",
                          content_type=HTML)
    config = page_config(tmp_path, url, extra='[scheduler]\nhealth_notice_after = "0s"\n')

    result = run_cli(["poll"], config, sqlite_url)

    assert result.exit_code == 0
    notice = next(line for line in result.stdout.splitlines() if "pressbot: feed “Newsroom” has failed" in line)
    assert f'no release links found on {url}: set items = "<CSS selector of each release>"' in notice
