"""How a pass writes its releases: each new row once, whole, in multi-row statements.

Through ``pressbot poll`` against a real feed server, on both engines. On SQLite an
UPDATE of an indexed column makes the full-text trigger delete and re-add every word of
the row: a new release's summary and flags written after its INSERT doubled that work
for every release of a cold pass, and a 10 MB release's UPDATE was the pass's peak
(issues 14 and 16).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, text

from bot.config import normalize_database_url
from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.helpers import RSS20, poll_json, run_cli


@contextmanager
def statements() -> Iterator[list[str]]:
    """Every statement any engine of this process sends while the block runs."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(Engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "before_cursor_execute", record)


def _engine(database_url: str) -> Engine:
    return create_engine(normalize_database_url(database_url))


def _reindex_counter(database_url: str) -> None:
    """A trigger that fires exactly when the full-text update trigger does, and counts."""
    engine = _engine(database_url)
    with engine.begin() as connection:
        definition = connection.execute(
            text("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'items_fts_update'")
        ).scalar_one()
        when = re.search(r"AFTER UPDATE OF .*? ON items", definition, re.DOTALL)
        assert when is not None, definition
        connection.execute(text("CREATE TABLE reindexed (item_id INTEGER)"))
        connection.execute(text(f"CREATE TRIGGER count_reindex {when.group(0)} "
                                "BEGIN INSERT INTO reindexed VALUES (new.id); END"))
    engine.dispose()


INTEGRITY_CHECK = "INSERT INTO items_fts(items_fts) VALUES ('integrity-check')"  # raises if index and rows disagree


def _execute(database_url: str, *statements: str) -> None:
    engine = _engine(database_url)
    with engine.begin() as connection:
        for statement in statements:
            connection.execute(text(statement))
    engine.dispose()


def _scalar(database_url: str, sql: str) -> Any:
    engine = _engine(database_url)
    with engine.connect() as connection:
        value = connection.execute(text(sql)).scalar()
    engine.dispose()
    return value


def _titles(config: Path, database_url: str, words: str) -> list[str]:
    result = run_cli(["query", "--format", "json", words], config, database_url)
    assert result.exit_code == 0, result.output
    return [hit["title"] for hit in json.loads(result.stdout)]


def test_a_new_release_is_indexed_once_and_an_edit_follows_its_text(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    url = feed_server.add("/rss.xml", RSS20)
    config = write_config(tmp_path, [{"name": "Rights Watchers", "url": url}])
    assert run_cli(["db", "upgrade"], config, sqlite_url).exit_code == 0
    _reindex_counter(sqlite_url)

    first = poll_json(config, sqlite_url)

    assert (first["new_items"], first["flagged"]) == (3, 2)
    # Summary, language and flags went in with the INSERT: no UPDATE re-read the text.
    assert _scalar(sqlite_url, "SELECT count(*) FROM reindexed") == 0
    assert _scalar(sqlite_url, "SELECT flags FROM items WHERE guid = 'rw-1'") == '["icc"]'
    assert _titles(config, sqlite_url, "judges warrant") == ["Court issues arrest warrant"]

    edited = RSS20.replace("Judges of the International Criminal Court issued a warrant.",
                           "Magistrates of the International Criminal Court issued a summons.")
    feed_server.add("/rss.xml", edited)
    second = poll_json(config, sqlite_url)

    assert second["updated_items"] == 1
    assert _scalar(sqlite_url, "SELECT count(*) FROM reindexed") >= 1  # the text changed: it is indexed anew
    assert _titles(config, sqlite_url, "magistrates summons") == ["Court issues arrest warrant"]
    assert _titles(config, sqlite_url, "judges") == []
    _execute(sqlite_url, INTEGRITY_CHECK)


def test_a_summary_made_on_first_read_leaves_the_index_alone(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    url = feed_server.add("/rss.xml", RSS20)
    config = write_config(tmp_path, [{"name": "Rights Watchers", "url": url}])
    assert run_cli(["db", "upgrade"], config, sqlite_url).exit_code == 0
    _reindex_counter(sqlite_url)
    poll_json(config, sqlite_url)
    # As a reader fills one (bot.summaries): the summary alone.
    _execute(sqlite_url, "UPDATE items SET summary = 'The annual report covers education.' WHERE guid = 'rw-3'")

    assert _scalar(sqlite_url, "SELECT count(*) FROM reindexed") == 0
    assert _titles(config, sqlite_url, "annual report") == ["Annual report published"]
    # Pruned: the index forgets the release whole, the summary it never indexed included.
    _execute(sqlite_url, INTEGRITY_CHECK, "DELETE FROM items WHERE guid = 'rw-3'", INTEGRITY_CHECK)
    assert _titles(config, sqlite_url, "annual report") == []


def test_one_feeds_new_releases_are_one_insert_and_no_update(
    feed_server: FeedServer, tmp_path: Path, database_url: str
) -> None:
    items = "".join(
        f"<item><title>Release {n}</title><link>https://example.org/{n}</link><guid>g{n}</guid>"
        f"<description>Judges of the International Criminal Court heard witness {n}.</description></item>"
        for n in range(40)
    )
    body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>Many</title>{items}</channel></rss>'
    config = write_config(tmp_path, [{"name": "Many", "url": feed_server.add("/many.xml", body)}])
    assert run_cli(["db", "upgrade"], config, database_url).exit_code == 0

    with statements() as seen:
        summary = poll_json(config, database_url)

    assert (summary["new_items"], summary["flagged"]) == (40, 40)
    assert sum(statement.startswith("INSERT INTO items ") for statement in seen) == 1
    assert [statement for statement in seen if statement.startswith("UPDATE items ")] == []
    assert sum(statement.startswith("INSERT INTO flag_matches ") for statement in seen) <= 40
    assert _scalar(database_url, "SELECT count(*) FROM flag_matches") >= 40
    assert _scalar(database_url, "SELECT count(*) FROM alerts") == 40
