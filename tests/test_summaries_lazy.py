"""Summaries made on first read (issue 16): a pass summarises only what Slack shows.

A release nobody is alerted about is stored with its summary waiting; ``pressbot query``
(every format) and the ``/pressbot`` search make it when they first show the release,
store it, and it is the text a pass makes for a release it flags. Real polls against
the local feed server, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, select, update
from sqlalchemy.orm import Session

from bot.config import normalize_database_url
from bot.schema import Item
from bot.socketmode import answer
from bot.store import READ_ONLY, make_engine, make_session_factory
from bot.store import summaries as summary_store
from bot.tables import SUMMARY_PENDING
from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer
from tests.helpers import run_cli, unwritable

FLAGGED = "Court issues arrest warrant"
PLAIN = "Committee opens its autumn session"
PLAIN_TEXT = (
    "<p>GENEVA (2 November 2026) – The Committee on Economic, Social and Cultural Rights opened its "
    "autumn session in Geneva on Monday. It will review the reports of six States, among them Mr. Ortega's "
    "government, which submitted its report late.</p><p>Members also discussed the right to housing, "
    "under art. 11 of the Covenant, with civil society organisations.</p>"
    "<p>Share this</p><p>For media inquiries, please contact press@example.org.</p>"
)


def feed(plain_text: str = PLAIN_TEXT) -> str:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Rights</title>'
        "<link>https://example.org/</link><language>en</language>"
        f"<item><title>{FLAGGED}</title><link>https://example.org/news/warrant</link><guid>r-1</guid>"
        "<pubDate>Mon, 02 Nov 2026 09:00:00 GMT</pubDate><description>&lt;p&gt;Judges of the International "
        "Criminal Court issued a warrant for the former minister. The Prosecutor welcomed it.&lt;/p&gt;"
        "</description></item>"
        f"<item><title>{PLAIN}</title><link>https://example.org/news/session</link><guid>r-2</guid>"
        "<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate>"
        f"<description><![CDATA[{plain_text}]]></description></item>"
        "</channel></rss>"
    )


# A flag that the committee's release carries: polled with it, the release is flagged
# and the pass makes its summary at once (the eager path).
SESSION_FLAG = '\n[flags.session]\nen = ["autumn session"]\n'


def stored_summaries(database_url: str) -> dict[str, str | None]:
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        rows = dict(connection.execute(select(Item.title, Item.summary)).all())
    engine.dispose()
    return rows


def set_waiting(database_url: str, title: str) -> None:
    engine = create_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        connection.execute(update(Item).where(Item.title == title).values(summary=SUMMARY_PENDING))
    engine.dispose()


def polled(server: FeedServer, tmp_path: Path, database_url: str, extra_flags: str = "") -> Path:
    directory = tmp_path / ("eager" if extra_flags else "lazy")
    directory.mkdir(exist_ok=True)
    config = write_config(directory, [{"name": "Rights", "url": server.add("/rights.xml", feed())}])
    if extra_flags:
        config.write_text(config.read_text(encoding="utf-8") + extra_flags, encoding="utf-8")
    result = run_cli(["poll"], config, database_url)
    assert result.exit_code == 0, result.output
    return config


def eager_summary(server: FeedServer, tmp_path: Path) -> str:
    """The committee's summary as a pass makes it for a release it flags."""
    database_url = f"sqlite:///{tmp_path / 'eager.db'}"
    polled(server, tmp_path, database_url, SESSION_FLAG)
    summary = stored_summaries(database_url)[PLAIN]
    assert summary and summary.startswith("The Committee on Economic, Social and Cultural Rights opened"), summary
    return summary


def query(config: Path, database_url: str, *args: str) -> str:
    result = run_cli(["query", *args], config, database_url, COLUMNS="1000")
    assert result.exit_code == 0, result.output
    return str(result.stdout)


def test_a_release_not_flagged_is_summarised_when_a_query_first_shows_it(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    expected = eager_summary(feed_server, tmp_path)
    config = polled(feed_server, tmp_path, database_url)
    before = stored_summaries(database_url)
    assert before[PLAIN] == SUMMARY_PENDING  # the pass left it to a reader
    assert before[FLAGGED] and before[FLAGGED].startswith("Judges of the International Criminal Court")

    hits = {hit["title"]: hit["summary"] for hit in json.loads(query(config, database_url, "--format", "json"))}
    assert hits == {FLAGGED: before[FLAGGED], PLAIN: expected}
    assert stored_summaries(database_url)[PLAIN] == expected  # made once: stored

    # Every format shows it, each made again from a waiting row.
    for output in ("ndjson", "csv", "table"):
        set_waiting(database_url, PLAIN)
        shown = query(config, database_url, "--format", output)
        assert expected[:60] in " ".join(shown.split()), (output, shown)
        assert stored_summaries(database_url)[PLAIN] == expected, output
    set_waiting(database_url, PLAIN)
    found = json.loads(query(config, database_url, "session", "--format", "json"))  # a text search
    assert [hit["summary"] for hit in found] == [expected]
    assert stored_summaries(database_url)[PLAIN] == expected


def test_the_slash_search_shows_and_stores_a_waiting_summary(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    expected = eager_summary(feed_server, tmp_path)
    polled(feed_server, tmp_path, database_url)
    engine = make_engine(normalize_database_url(database_url))

    reply = answer("feed:Rights", make_session_factory(engine), datetime.now(UTC))
    engine.dispose()

    assert expected[:60] in json.dumps(reply, ensure_ascii=False)
    assert stored_summaries(database_url)[PLAIN] == expected


def test_two_readers_filling_one_row_agree_and_a_changed_text_keeps_waiting(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    expected = eager_summary(feed_server, tmp_path)
    config = polled(feed_server, tmp_path, database_url)
    engine = make_engine(normalize_database_url(database_url))
    with Session(engine) as session:
        ids = list(session.scalars(select(Item.id)))
    with Session(engine) as first, Session(engine) as second:
        # Both read the waiting row before either writes, as searches read (no write lock).
        first.connection(execution_options=READ_ONLY)
        second.connection(execution_options=READ_ONLY)
        read_first, _ = summary_store.unsummarized(first, ids)
        read_second, _ = summary_store.unsummarized(second, ids)
        assert [release.title for release in read_first] == [PLAIN] == [release.title for release in read_second]
        for session, read in ((first, read_first), (second, read_second)):
            session.rollback()
            with session.begin():
                summary_store.store_summaries(session, [(read[0], expected)])
    assert stored_summaries(database_url)[PLAIN] == expected

    # A reader that read the old text, then a pass that changed it: the old summary stays off.
    set_waiting(database_url, PLAIN)
    with Session(engine) as reader:
        stale, _ = summary_store.unsummarized(reader, ids)
    changed = PLAIN_TEXT.replace("opened its autumn session", "closed its autumn session")
    feed_server.add("/rights.xml", feed(changed))
    assert run_cli(["poll"], config, database_url).exit_code == 0
    with Session(engine) as writer, writer.begin():
        summary_store.store_summaries(writer, [(stale[0], expected)])
    assert stored_summaries(database_url)[PLAIN] == SUMMARY_PENDING
    hits = {hit["title"]: hit["summary"] for hit in json.loads(query(config, database_url, "--format", "json"))}
    assert hits[PLAIN] and "closed its autumn session" in hits[PLAIN]
    engine.dispose()


def test_two_query_processes_at_once_both_show_the_summary(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    expected = eager_summary(feed_server, tmp_path)
    config = polled(feed_server, tmp_path, database_url)
    env = {"DATABASE_URL": database_url, "PRESSBOT_CONFIG": str(config), "PYTHONPATH": str(REPO), "PATH": ""}
    command = [sys.executable, "-m", "bot", "query", "--format", "json"]
    processes = [subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                  cwd=tmp_path) for _ in range(2)]  # fmt: skip
    for process in processes:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        assert {hit["title"]: hit["summary"] for hit in json.loads(out)}[PLAIN] == expected
    assert stored_summaries(database_url)[PLAIN] == expected


def test_a_database_that_refuses_writes_still_gets_the_summary_shown(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    expected = eager_summary(feed_server, tmp_path)
    config = polled(feed_server, tmp_path, database_url)
    env = {"DATABASE_URL": database_url, "PRESSBOT_CONFIG": str(config), "PYTHONPATH": str(REPO), "PATH": ""}
    with unwritable(database_url):
        done = subprocess.run([sys.executable, "-m", "bot", "query", "--format", "json"], capture_output=True,
                              text=True, env=env, cwd=tmp_path, timeout=120, check=False)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    assert {hit["title"]: hit["summary"] for hit in json.loads(done.stdout)}[PLAIN] == expected
    assert stored_summaries(database_url)[PLAIN] == SUMMARY_PENDING  # a later reader makes it again


def test_reflag_makes_the_summary_of_a_release_it_newly_flags(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    expected = eager_summary(feed_server, tmp_path)
    config = polled(feed_server, tmp_path, database_url)
    assert stored_summaries(database_url)[PLAIN] == SUMMARY_PENDING
    config.write_text(config.read_text(encoding="utf-8") + SESSION_FLAG, encoding="utf-8")

    assert run_cli(["reflag"], config, database_url).exit_code == 0

    assert stored_summaries(database_url)[PLAIN] == expected


@pytest.mark.parametrize("flagged", [True, False], ids=["flagged", "not-flagged"])
def test_a_changed_release_loses_its_old_summary(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str, flagged: bool
) -> None:
    config = polled(feed_server, tmp_path, sqlite_url, SESSION_FLAG if flagged else "")
    query(config, sqlite_url, "--format", "json")
    changed = PLAIN_TEXT.replace("opened its autumn session", "closed its autumn session")
    feed_server.add("/rights.xml", feed(changed))
    assert run_cli(["poll"], config, sqlite_url).exit_code == 0
    summary = stored_summaries(sqlite_url)[PLAIN]
    assert summary == SUMMARY_PENDING if not flagged else summary and "closed its autumn session" in summary


def test_a_query_beside_a_writing_worker_answers_at_once_with_the_summary(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    """A worker mid-pass holds SQLite's write lock (a row lock on PostgreSQL): the summary is
    shown at once, and stored by a later reader, not after the lock's 30 s busy timeout."""
    import time

    expected = eager_summary(feed_server, tmp_path)
    config = polled(feed_server, tmp_path, database_url)
    if database_url.startswith("sqlite"):
        import sqlite3

        worker: Any = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
        worker.execute("BEGIN IMMEDIATE")
        worker.execute("UPDATE feeds SET last_error = 'mid-pass'")
    else:
        import psycopg

        worker = psycopg.connect(normalize_database_url(database_url).replace("postgresql+psycopg", "postgresql"))
        worker.execute("UPDATE items SET changed_at = changed_at WHERE title = %s", (PLAIN,))
    try:
        started = time.perf_counter()
        hits = {hit["title"]: hit["summary"] for hit in json.loads(query(config, database_url, "--format", "json"))}
        elapsed = time.perf_counter() - started
    finally:
        worker.rollback()
        worker.close()
    assert hits[PLAIN] == expected
    assert elapsed < 10  # waiting for the lock would take the busy timeout's 30 s
    assert stored_summaries(database_url)[PLAIN] == SUMMARY_PENDING
    query(config, database_url, "--format", "json")
    assert stored_summaries(database_url)[PLAIN] == expected


def test_a_result_another_reader_summarised_meanwhile_shows_that_summary(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    from bot.query import QueryFilters
    from bot.store.search import search_items
    from bot.summaries import with_summaries
    from bot.summarize import summary_of

    expected = eager_summary(feed_server, tmp_path)
    polled(feed_server, tmp_path, database_url)
    engine = make_engine(normalize_database_url(database_url))
    with Session(engine) as late, Session(engine) as early:
        found = search_items(late, QueryFilters())  # read while the summary waits
        assert [hit.summary_pending for hit in found if hit.title == PLAIN] == [True]
        list(with_summaries(early, search_items(early, QueryFilters()), summary_of))
        assert stored_summaries(database_url)[PLAIN] == expected
        shown = {hit.title: hit.summary for hit in with_summaries(late, found, summary_of)}
    assert shown[PLAIN] == expected
    engine.dispose()


def test_an_alerted_release_changed_to_unflagged_keeps_a_summary_of_its_new_text(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    """Its alert's message is rebuilt on each edit (a copy, a verdict): Slack shows its summary."""
    config = polled(feed_server, tmp_path, sqlite_url, SESSION_FLAG)
    changed = PLAIN_TEXT.replace("opened its autumn session", "opened its winter meeting")
    feed_server.add("/rights.xml", feed(changed))
    assert run_cli(["poll"], config, sqlite_url).exit_code == 0
    summary = stored_summaries(sqlite_url)[PLAIN]
    assert summary and "opened its winter meeting" in summary
