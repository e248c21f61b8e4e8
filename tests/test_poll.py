"""A whole pass through the real CLI against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import ast
import json
import os
import pty
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, select

from bot.cli.poll import SUMMARY_LINES, count_lines
from bot.config import normalize_database_url
from bot.records import PassCounts
from bot.schema import Alert, Feed, FlagMatchRow, Item
from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer
from tests.helpers import RSS20, count_items, poll_json, run_cli
from tests.newsroom import mount, release

ATOM10 = """<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://atom.example.org/">
<title>Atom Rights</title><id>urn:atom-rights</id><updated>2026-11-02T10:00:00Z</updated>
<entry><title>Statement on the Human Rights Council</title><id>urn:atom-rights:1</id>
<link href="statements/1"/><updated>2026-11-02T10:00:00Z</updated>
<summary>The Council opened its session.</summary>
<content type="html">&lt;p&gt;The Council opened its session in Geneva.&lt;/p&gt;
&lt;p&gt;Delegations spoke.&lt;/p&gt;</content>
</entry>
<entry><title>Cricket council meets</title><id>urn:atom-rights:2</id>
<link href="statements/2"/><updated>2026-11-01T10:00:00Z</updated>
<summary>The International Cricket Council (ICC) met in Dubai about the tour schedule.</summary></entry>
</feed>"""

RSS10 = """<?xml version="1.0" encoding="utf-8"?>
<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#" xmlns="http://purl.org/rss/1.0/"
 xmlns:dc="http://purl.org/dc/elements/1.1/">
<channel rdf:about="https://rdf.example.org/"><title>RDF Rights</title><link>https://rdf.example.org/</link>
<description>d</description><items><rdf:Seq><rdf:li rdf:resource="https://rdf.example.org/a"/>
<rdf:li rdf:resource="https://rdf.example.org/b"/></rdf:Seq></items></channel>
<item rdf:about="https://rdf.example.org/a"><title>First RDF item</title><link>https://rdf.example.org/a</link>
<description>Nothing to flag here.</description><dc:date>2026-11-02T08:00:00Z</dc:date></item>
<item rdf:about="https://rdf.example.org/b"><title>Second RDF item</title><link>https://rdf.example.org/b</link>
<description>Still nothing.</description><dc:date>2026-11-01T08:00:00Z</dc:date></item>
</rdf:RDF>"""


def three_dialects(server: FeedServer, tmp_path: Path) -> Path:
    feeds = [
        {"name": "RSS 2.0", "url": server.add("/rss20.xml", RSS20)},
        {"name": "Atom 1.0", "url": server.add("/atom.xml", ATOM10, content_type="application/atom+xml")},
        {"name": "RSS 1.0", "url": server.add("/rss10.rdf", RSS10, content_type="application/rdf+xml")},
    ]
    return write_config(tmp_path, feeds)


def test_poll_stores_every_entry_then_sends_conditional_requests(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    config = three_dialects(feed_server, tmp_path)

    first = poll_json(config, database_url)

    assert (first["feeds"], first["fetched"], first["failed"]) == (3, 3, 0)
    assert first["new_items"] == 7
    assert count_items(database_url) == {"RSS 2.0": 3, "Atom 1.0": 2, "RSS 1.0": 2}
    assert first["flagged"] == 2  # the ICC warrant and the reprisals; not the cricket council

    second = poll_json(config, database_url)

    assert (second["new_items"], second["updated_items"], second["not_modified"]) == (0, 0, 3)
    for path in ("/rss20.xml", "/atom.xml", "/rss10.rdf"):
        assert feed_server.not_modified[path] == 1
        assert feed_server.requests[-1][1].get("user-agent", "").startswith("pressbot/")


def test_poll_makes_relative_links_absolute_and_dates_utc(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    poll_json(three_dialects(feed_server, tmp_path), sqlite_url)

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        rows = {row.title: row for row in connection.execute(select(Item))}
    warrant = rows["Court issues arrest warrant"]
    # A relative RSS link resolves against the feed's own URL (no xml:base in that feed).
    assert warrant.url == feed_server.url("/news/warrant")
    assert warrant.published_at == datetime(2026, 11, 2, 14, 0, tzinfo=UTC)  # -0500 → UTC
    assert rows["Statement on the Human Rights Council"].url == "https://atom.example.org/statements/1"


def test_changed_entry_is_updated_not_new(feed_server: FeedServer, tmp_path: Path, sqlite_url: str) -> None:
    config = three_dialects(feed_server, tmp_path)
    poll_json(config, sqlite_url)
    feed_server.add("/rss20.xml", RSS20.replace("covers education and health", "covers education"))

    again = poll_json(config, sqlite_url)

    assert (again["new_items"], again["updated_items"]) == (0, 1)


def test_server_ignoring_conditional_get_is_not_reparsed(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    url = feed_server.add("/plain.xml", RSS20, validators=False)
    config = write_config(tmp_path, [{"name": "No validators", "url": url}])
    poll_json(config, sqlite_url)

    again = poll_json(config, sqlite_url)

    assert again["not_modified"] == 1 and again["new_items"] == 0


def test_permanent_redirect_updates_the_stored_url(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    new_url = feed_server.add("/new.xml", RSS20)
    old_url = feed_server.redirect("/old.xml", new_url, status=301)
    config = write_config(tmp_path, [{"name": "Moved", "url": old_url}])

    poll_json(config, sqlite_url)

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        assert connection.execute(select(Feed.url)).scalar_one() == new_url


FAULTS = {
    "500": {"status": 500, "body": "oops"},
    "404": {"status": 404, "body": "gone"},
    "hang": {"hang": 4.0, "body": RSS20},
    "html": {
        "body": "<!DOCTYPE html><html><body>Just a moment...</body></html>",
        "content_type": "text/html",
    },
    "truncated": {"body": RSS20[: len(RSS20) // 2]},
    "too-big": {"huge": 3_000_000},
}


def test_faults_are_recorded_per_feed_and_the_pass_goes_on(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    feeds = [{"name": "good", "url": feed_server.add("/good.xml", RSS20)}]
    for name, options in FAULTS.items():
        body = options.pop("body", "")
        feeds.append({"name": name, "url": feed_server.add(f"/{name}.xml", body, **options)})
    feed_server.redirect("/loop-a", feed_server.url("/loop-b"), status=302)
    feed_server.redirect("/loop-b", feed_server.url("/loop-a"), status=302)
    feeds.append({"name": "loop", "url": feed_server.url("/loop-a")})
    config = write_config(tmp_path, feeds)

    result = run_cli(["poll", "--json"], config, sqlite_url)

    assert result.exit_code == 0
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    errors = {report["name"]: report["error"] for report in summary["feeds_report"]}
    assert errors["good"] is None
    assert errors["500"] == "HTTP 500" and errors["404"] == "HTTP 404"
    assert "timeout" in errors["hang"]
    assert "HTML" in errors["html"]
    assert "truncated" in errors["truncated"]
    assert "too large" in errors["too-big"]
    assert "redirects" in errors["loop"]
    assert summary["failed"] == 7 and summary["new_items"] == 3
    assert count_items(sqlite_url) == {"good": 3}


def test_human_summary_names_each_feed(feed_server: FeedServer, tmp_path: Path, sqlite_url: str) -> None:
    config = three_dialects(feed_server, tmp_path)

    result = run_cli(["poll"], config, sqlite_url)

    assert result.exit_code == 0
    assert "RSS 2.0" in result.stdout and "3 new" in result.stdout
    assert "3 feeds: 3 fetched" in result.stdout


def test_dry_run_changes_no_alert(feed_server: FeedServer, tmp_path: Path, sqlite_url: str) -> None:
    config = three_dialects(feed_server, tmp_path)

    result = run_cli(["poll", "--dry-run", "--json"], config, sqlite_url)

    assert result.exit_code == 0
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        statuses = connection.execute(select(Alert.status)).scalars().all()
    assert statuses and set(statuses) <= {"pending", "held"}


def test_every_corpus_file_is_stored_or_recorded_as_an_error(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str, shared: Path
) -> None:
    files = sorted((shared / "corpus" / "feeds").iterdir())
    feeds = [
        {
            "name": path.name,
            "url": feed_server.add("/" + path.name, path.read_bytes(), content_type="application/xml"),
        }
        for path in files
    ]
    # Their item links point at the real sites, unreachable here: no article fetches.
    config = write_config(tmp_path, feeds, extra="[fulltext]\nenabled = false\n")

    summary = poll_json(config, sqlite_url)

    stored = count_items(sqlite_url)
    reports = {report["name"]: report for report in summary["feeds_report"]}
    assert set(reports) == {path.name for path in files}
    for name, report in reports.items():
        assert report["status"] in ("ok", "failed"), name
        if report["status"] == "failed":
            assert report["error"], name
        else:
            assert stored.get(name, 0) == report["new_items"], name
    assert summary["failed"] + summary["fetched"] == len(files)


def test_a_gone_feed_is_disabled_until_its_configured_url_changes(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    gone = feed_server.add("/gone.xml", "", status=410)
    config = write_config(tmp_path, [{"name": "Moved away", "url": gone}])
    assert poll_json(config, sqlite_url)["failed"] == 1

    assert poll_json(config, sqlite_url)["feeds"] == 0  # disabled: not hammered
    assert feed_server.hits["/gone.xml"] == 1

    write_config(tmp_path, [{"name": "Moved away", "url": feed_server.add("/here.xml", RSS20)}])
    again = poll_json(config, sqlite_url)

    assert (again["feeds"], again["fetched"], again["new_items"]) == (1, 1, 3)


def test_a_feed_the_database_refuses_is_recorded_as_failed_and_the_pass_goes_on(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    feeds = [
        {"name": "first", "url": feed_server.add("/first.xml", RSS20)},
        {"name": "second", "url": feed_server.add("/second.xml", ATOM10, content_type="application/atom+xml")},
    ]
    config = write_config(tmp_path, feeds)
    assert run_cli(["db", "upgrade"], config, sqlite_url).exit_code == 0
    engine = create_engine(sqlite_url)
    with engine.begin() as connection:
        # Stands for any row the database refuses (a NUL byte on PostgreSQL, a full disk).
        connection.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON items WHEN NEW.title = 'Annual report published' "
            "BEGIN SELECT RAISE(ABORT, 'row refused'); END"
        )
    engine.dispose()

    result = run_cli(["poll", "--json"], config, sqlite_url)

    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    errors = {report["name"]: report["error"] for report in summary["feeds_report"]}
    assert "row refused" in errors["first"] and errors["second"] is None
    assert (summary["failed"], summary["new_items"]) == (1, 2)
    assert count_items(sqlite_url) == {"second": 2}  # nothing of the refused feed's transaction


def test_two_feeds_numbering_their_releases_alike_each_get_their_alert(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    # A guid that is no URI ("1", "press-42") names a release within its own feed only.
    from email.utils import format_datetime

    def feed(site: str, title: str) -> str:
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>{site}</title>'
            f"<item><title>{title}</title><link>https://{site}/news/{len(title)}</link>"
            f'<guid isPermaLink="false">1</guid><pubDate>{format_datetime(datetime.now(UTC))}</pubDate>'
            f"<description>{title}.</description></item></channel></rss>"
        )

    feeds = [
        {"name": "A", "url": feed_server.add("/a.xml", feed("a.example", "Defenders face reprisals in Geneva"))},
        {"name": "B", "url": feed_server.add("/b.xml", feed("b.example", "ICC prosecutor opens an investigation"))},
    ]
    poll_json(write_config(tmp_path, feeds), sqlite_url)

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        alerted = connection.execute(
            select(Feed.name, Alert.status).join(Item, Item.feed_id == Feed.id).join(Alert, Alert.item_id == Item.id)
        ).all()
    engine.dispose()
    assert sorted(alerted) == [("A", "pending"), ("B", "pending")]


def test_releases_of_one_feed_sharing_one_link_each_get_their_alert(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    # Some newsrooms link every item to their press page; the link is no identity there.
    from email.utils import format_datetime

    items = "".join(
        f"<item><title>{title}</title><link>https://gov.example/press</link><guid>{guid}</guid>"
        f"<pubDate>{format_datetime(datetime.now(UTC))}</pubDate><description>{title}.</description></item>"
        for guid, title in (
            ("https://gov.example/p/1", "Defenders face reprisals in Geneva"),
            ("https://gov.example/p/2", "ICC prosecutor opens an investigation"),
        )
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Gov</title>{items}</channel></rss>'
    poll_json(write_config(tmp_path, [{"name": "Gov", "url": feed_server.add("/gov.xml", body)}]), sqlite_url)

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        alerted = connection.execute(select(Item.title).join(Alert, Alert.item_id == Item.id)).scalars().all()
    engine.dispose()
    assert len(alerted) == 2


def test_a_teaser_only_release_is_read_in_full_and_flagged_on_its_body(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    page = (Path(__file__).parent / "pages" / "en_release.html").read_bytes()
    link = feed_server.add("/latest-updates/valdoria/", page, content_type="text/html; charset=utf-8")
    teaser_feed = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>ISHR</title>
<link>{feed_server.base}</link>
<item><title>Valdoria: three lawyers must be freed</title><link>{link}</link><guid>{link}</guid>
<pubDate>{datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")}</pubDate>
<description>ISHR calls on Valdoria to free three lawyers.</description></item></channel></rss>"""
    url = feed_server.add("/feed/", teaser_feed)
    config = write_config(tmp_path, [{"name": "ISHR", "url": url}], extra="[fulltext]\nenabled = true\n")

    summary = poll_json(config, sqlite_url)

    assert summary["flagged"] == 1
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        item = connection.execute(select(Item)).one()
        fields = connection.execute(select(FlagMatchRow.flag, FlagMatchRow.field)).all()
    assert "pattern of reprisals against the lawyers" in item.full_text
    assert "cookie" not in item.full_text.lower() and "Home ›" not in item.full_text
    assert ("reprisal", "full_text") in fields
    assert item.summary and item.summary.startswith("Valdoria must immediately release")
    assert item.language == "en"


def test_a_pruned_release_its_feed_still_lists_is_not_alerted_again(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    from datetime import timedelta
    from email.utils import format_datetime

    def item(guid: str, title: str, age: timedelta) -> str:
        return (
            f"<item><title>{title}</title><link>https://example.org/{guid}</link><guid>{guid}</guid>"
            f"<pubDate>{format_datetime(datetime.now(UTC) - age)}</pubDate><description>{title}.</description></item>"
        )

    def feed(*items: str) -> str:
        return f'<?xml version="1.0"?><rss version="2.0"><channel><title>W</title>{"".join(items)}</channel></rss>'

    old = item("old", "ICC prosecutor opens an investigation", timedelta(days=3))
    url = feed_server.add("/w.xml", feed(old))
    config = write_config(tmp_path, [{"name": "W", "url": url}], extra='[alerts]\nwindow = "7d"\n')
    first = poll_json(config, database_url)
    assert first["alerts_pending"] == 1 and first["alerts_held_back"] == 0

    pruned = run_cli(["prune", "--older-than", "1d", "--all"], config, database_url)
    assert pruned.exit_code == 0 and "deleted 1 releases" in pruned.stdout, pruned.output

    # The feed still lists the old release when a new one arrives: both are stored as new.
    feed_server.add("/w.xml", feed(item("new", "Defenders face reprisals in Geneva", timedelta(hours=1)), old))
    second = poll_json(config, database_url)
    assert second["new_items"] == 2 and second["alerts_pending"] == 1 and second["alerts_held_back"] == 1

    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        query = select(Item.title, Alert.status).join(Alert, Alert.item_id == Item.id)
        statuses = dict(connection.execute(query).all())
    engine.dispose()
    assert statuses == {
        "Defenders face reprisals in Geneva": "pending",
        "ICC prosecutor opens an investigation": "held",
    }


def test_a_kept_release_edited_after_a_prune_still_alerts_a_new_channel(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    # The prune hold is for releases stored again as new, not for kept ones that change.
    from datetime import timedelta
    from email.utils import format_datetime

    def feed(description: str) -> str:
        published = format_datetime(datetime.now(UTC) - timedelta(days=3))
        return (
            '<?xml version="1.0"?><rss version="2.0"><channel><title>W</title><item>'
            "<title>ICC prosecutor opens an investigation</title><link>https://example.org/k</link>"
            f"<guid>k</guid><pubDate>{published}</pubDate><description>{description}</description>"
            "</item></channel></rss>"
        )

    url = feed_server.add("/w.xml", feed("The prosecutor acted."))
    window = '[alerts]\nwindow = "7d"\n'
    config = write_config(tmp_path, [{"name": "W", "url": url}], extra=window)
    assert poll_json(config, sqlite_url)["alerts_pending"] == 1
    kept = run_cli(["prune", "--older-than", "1d"], config, sqlite_url)
    assert kept.exit_code == 0 and "deleted 0 releases" in kept.stdout, kept.output

    feed_server.add("/w.xml", feed("The prosecutor acted; judges will rule."))
    config = write_config(tmp_path, [{"name": "W", "url": url, "channel": "#icc-desk"}], extra=window)
    second = poll_json(config, sqlite_url)
    assert second["updated_items"] == 1 and second["alerts_held_back"] == 0

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        statuses = dict(connection.execute(select(Alert.channel, Alert.status)).all())
    engine.dispose()
    assert statuses["#icc-desk"] == "pending"


def test_release_pages_obey_the_configured_redirect_cap(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    page = (Path(__file__).parent / "pages" / "en_release.html").read_bytes()
    target = feed_server.add("/latest-updates/valdoria/", page, content_type="text/html; charset=utf-8")
    link = feed_server.redirect("/r/valdoria", target, status=302)
    teaser_feed = f"""<?xml version="1.0"?><rss version="2.0"><channel><title>ISHR</title>
<link>{feed_server.base}</link>
<item><title>Valdoria: three lawyers must be freed</title><link>{link}</link><guid>{link}</guid>
<pubDate>{datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")}</pubDate>
<description>ISHR calls on Valdoria to free three lawyers.</description></item></channel></rss>"""
    url = feed_server.add("/feed/", teaser_feed)
    config = write_config(tmp_path, [{"name": "ISHR", "url": url}],
                          extra="max_redirects = 0\n[fulltext]\nenabled = true\n")

    poll_json(config, sqlite_url)

    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        item = connection.execute(select(Item)).one()
    engine.dispose()
    assert item.full_text is None and "too many redirects" in item.full_text_error


def test_on_a_terminal_the_progress_bar_shows_the_release_page_phase(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    """Issue 14 item 22: after the feeds, the bar names the page fetches instead of sitting at 100%."""
    page = (Path(__file__).parent / "pages" / "en_release.html").read_bytes()
    # Slow pages: the phase lasts long enough for the bar (10 refreshes a second) to draw it.
    links = [feed_server.add(f"/latest-updates/valdoria-{n}/", page, content_type="text/html; charset=utf-8",
                             hang=0.6) for n in range(2)]
    items = "".join(
        f"<item><title>Valdoria: lawyers must be freed ({n})</title><link>{link}</link><guid>{link}</guid>"
        f"<pubDate>{datetime.now(UTC).strftime('%a, %d %b %Y %H:%M:%S +0000')}</pubDate>"
        "<description>ISHR calls on Valdoria to free three lawyers.</description></item>"
        for n, link in enumerate(links)
    )
    url = feed_server.add("/feed/", f'<?xml version="1.0"?><rss version="2.0"><channel><title>ISHR</title>'
                                    f"<link>{feed_server.base}</link>{items}</channel></rss>")
    config = write_config(tmp_path, [{"name": "ISHR", "url": url}], extra="[fulltext]\nenabled = true\n")
    env = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": sqlite_url, "SLACK_BOT_TOKEN": "",
           "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "PRESSBOT_FEEDS": "", "TERM": "xterm", "COLUMNS": "120"}
    env.pop("NO_COLOR", None)
    env.pop("TTY_INTERACTIVE", None)
    controller, terminal = pty.openpty()  # stderr is a terminal: the bar is drawn there
    with subprocess.Popen([sys.executable, "-m", "bot", "poll"], env=env, cwd=tmp_path,
                          stdout=subprocess.PIPE, stderr=terminal) as process:
        os.close(terminal)
        drawn = b""
        while True:
            try:
                chunk = os.read(controller, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            if not chunk:
                break
            drawn += chunk
        stdout = process.stdout.read().decode() if process.stdout else ""
    os.close(controller)

    assert process.returncode == 0, drawn.decode(errors="replace")
    shown = drawn.decode(errors="replace")
    assert "fetching feeds" in shown
    assert "fetching release pages" in shown
    assert "1 feed: 1 fetched" in stdout


# The stages a pass loads only when it reads a listing or a page (bot.poll.PageStages), and
# the OPML reader: together +128 ms and 6 MB for trafilatura and htmldate alone (issue 13).
PAGE_MODULES = ("bot.fulltext", "bot.listing.releases", "bot.listing.dates", "trafilatura", "htmldate")
HEAVY_MODULES = (*PAGE_MODULES, "bot.opml", "listparser")


def poll_process(config: Path, database_url: str) -> tuple[dict[str, object], list[str]]:
    """``pressbot poll --json`` in a process of its own: its summary, and which of HEAVY_MODULES it loaded."""
    code = (
        "import sys, bot.cli\n"
        "try:\n    bot.cli.main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        f"print(sorted(m for m in {HEAVY_MODULES!r} if m in sys.modules), file=sys.stderr)\n"
    )
    env = {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": database_url, "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
           "PATH": os.environ.get("PATH", "")}
    done = subprocess.run([sys.executable, "-c", code, "poll", "--json"], capture_output=True, text=True, cwd=REPO,
                          env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1]), ast.literal_eval(done.stderr.strip().splitlines()[-1])


def test_a_warm_poll_loads_neither_the_page_stages_nor_the_opml_reader(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    listing = mount(feed_server, "drupal", [release(index) for index in range(1, 3)])
    feeds = [{"name": "RSS 2.0", "url": feed_server.add("/rss20.xml", RSS20)},
             {"name": "Newsroom", "url": listing, "page": True}]
    config = write_config(tmp_path, feeds)

    cold, cold_modules = poll_process(config, sqlite_url)
    warm, warm_modules = poll_process(config, sqlite_url)

    assert (cold["fetched"], cold["new_items"]) == (2, 5)
    assert cold_modules == sorted(PAGE_MODULES)  # the listing and its release pages were read
    assert (warm["not_modified"], warm["new_items"]) == (2, 0)
    assert warm_modules == []


def test_a_poll_whose_new_items_need_no_page_does_not_load_the_full_text_stage(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    # Full text on, but no item is a teaser (teaser_chars 0) and no feed asks for its pages.
    feeds = [{"name": "RSS 2.0", "url": feed_server.add("/rss20.xml", RSS20)}]
    config = write_config(tmp_path, feeds, extra="[fulltext]\nenabled = true\nteaser_chars = 0\n")

    summary, modules = poll_process(config, sqlite_url)

    assert (summary["fetched"], summary["new_items"]) == (1, 3)
    assert modules == []


def test_the_text_summary_names_every_pass_counter_once_and_a_new_one_too() -> None:
    counts = {name: 101 + index for index, name in enumerate(PassCounts().counts())}
    text = "\n".join(count_lines(counts))
    named = re.findall(r"\{(\w+)", "".join(part for parts in SUMMARY_LINES for part, _optional in parts))
    assert sorted(named) == sorted(counts)  # each counter phrased once, and nothing else
    assert all(str(count) in text for count in counts.values()) and "also:" not in text
    assert count_lines({**counts, "widgets_seen": 7})[-1] == "also: widgets seen 7"
