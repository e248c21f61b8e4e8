"""``pressbot query`` and ``pressbot prune`` through the CLI, on SQLite and the real PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bot.cli import cli
from tests.conftest import REPO, write_config
from tests.searchcorpus import NOW, archive, postgres_database, title_of

DESIGN_FIELDS = {"id", "feed", "title", "url", "published", "flags", "matches", "summary"}


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def archive_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database URL holding the search corpus, shared by the module's read-only tests."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('query') / 'pressbot.db'}"
        archive(url).kw["bind"].dispose()
        yield url
        return
    with postgres_database() as url:
        archive(url).kw["bind"].dispose()
        yield url.replace("postgresql://", "postgres://", 1)  # the platforms' spelling


def run(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": url, **(env or {})})


def run_json(url: str, *args: str) -> list[dict[str, object]]:
    result = run(url, "query", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def json_titles(url: str, *args: str) -> list[str]:
    return [str(row["title"]) for row in run_json(url, *args)]


# -- formats -----------------------------------------------------------------------------


def test_json_is_one_array_with_the_design_fields(archive_url: str) -> None:
    [row] = run_json(archive_url, "criminal", "court")
    assert set(row) >= DESIGN_FIELDS
    assert row["title"] == title_of("icc-visa") and row["feed"] == "ISHR"
    assert row["flags"] == ["icc"] and row["matches"] == {"icc": ["International Criminal Court"]}
    assert str(row["published"]).endswith("+00:00")
    assert "International **Criminal Court** said" in str(row["snippet"])


def test_without_text_there_is_no_snippet_and_flags_are_an_empty_list(archive_url: str) -> None:
    rows = run_json(archive_url, "--feed", "UN News")
    assert {row["title"] for row in rows} == {title_of("council"), title_of("visas")}
    assert all("snippet" not in row and row["flags"] == [] and row["matches"] == {} for row in rows)


def test_ndjson_is_one_object_per_line(archive_url: str) -> None:
    result = run(archive_url, "query", "visa*", "--format", "ndjson")
    lines = result.stdout.splitlines()
    assert result.exit_code == 0 and len(lines) == 4
    assert [json.loads(line) for line in lines] == run_json(archive_url, "visa*")


def test_csv_has_a_header_and_readable_lists(archive_url: str) -> None:
    result = run(archive_url, "query", "--flag", "reprisal", "--feed", "ISHR", "--format", "csv")
    [row] = list(csv.DictReader(io.StringIO(result.stdout)))
    assert row["title"] == title_of("reprisals") and row["flags"] == "reprisal"
    assert row["matches"] == "reprisal: reprisals | Intimidation"
    assert "snippet" not in row


def test_table_shows_title_feed_and_flags(archive_url: str) -> None:
    result = run(archive_url, "query", "represailles", env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert title_of("burundi") in result.stdout and "FIDH" in result.stdout and "reprisal" in result.stdout


def test_table_says_when_nothing_matches(archive_url: str) -> None:
    assert "no matching releases" in run(archive_url, "query", "zanzibar").stdout


# -- filters -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--flag", "icc"), {"icc-visa", "cpi"}),
        (("--feed", "fidh"), {"burundi", "cpi"}),
        (("--tag", "un"), {"council", "visas"}),
        (("--lang", "en", "--flag", "reprisal"), {"reprisals"}),
        (("--since", "7d"), {"icc-visa", "cpi"}),
        (("--since", (NOW - timedelta(days=50)).date().isoformat(), "--flag", "reprisal"), {"burundi", "reprisals"}),
        (("--until", (NOW - timedelta(days=300)).date().isoformat()), {"council", "visas", "annual"}),
        (("visa", "-staff", "--limit", "1", "--sort", "date"), {"council"}),
        (("-staff", "visa"), {"council", "annual"}),
    ],
    ids=["flag", "feed", "tag", "lang", "since-span", "since-date", "until-date-inclusive", "limit-sort",
         "minus-first"],
)
def test_each_option_filters(archive_url: str, args: tuple[str, ...], expected: set[str]) -> None:
    assert set(json_titles(archive_url, *args)) == {title_of(key) for key in expected}


def test_sort_date_orders_newest_first(archive_url: str) -> None:
    assert json_titles(archive_url, "visa*", "--sort", "date")[0] == title_of("icc-visa")


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (('"unclosed',), "unbalanced quote"),
        (("visa", "OR"), "OR needs a word on each side"),
        (("--feed", "Nope", "visa"), "no feed named 'nope'"),
        (("--since", "someday"), "neither a date"),
        (("--flg", "icc"), "no such option: --flg"),
        (("--format", "xml"), "'xml' is not one of"),
    ],
    ids=["quote", "dangling-or", "unknown-feed", "bad-since", "typo-option", "bad-format"],
)
def test_a_bad_query_exits_2_with_one_line_and_no_traceback(
    archive_url: str, args: tuple[str, ...], message: str
) -> None:
    result = run(archive_url, "query", *args)
    assert result.exit_code == 2
    assert message in result.stderr and "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if "rror" in line]
    assert len(errors) == 1


@pytest.mark.parametrize(
    "args",
    [("--since", "99999999d"), ("--until", "9999-12-31"), ("--since", "0001-01-01T00:00+05:00")],
    ids=["span-before-year-1", "day-after-year-9999", "zone-before-year-1"],
)
def test_a_date_out_of_range_exits_2_with_one_line(archive_url: str, args: tuple[str, ...]) -> None:
    result = run(archive_url, "query", *args)
    assert result.exit_code == 2, result.output
    assert "out of range" in result.stderr and "Traceback" not in result.output


def test_a_missing_database_is_not_created_by_a_query(tmp_path: Path) -> None:
    result = run(f"sqlite:///{tmp_path / 'new.db'}", "query", "visa", "--format", "json")
    assert result.exit_code == 2 and "`pressbot db upgrade`" in result.stderr and result.stdout == ""
    assert not (tmp_path / "new.db").exists()


def test_the_query_process_loads_neither_the_fetching_nor_the_slack_stack(archive_url: str) -> None:
    # bot.schema and bot.records: the ORM mapping and the pipeline's records cost ~25 ms.
    heavy = ("httpx", "feedparser", "trafilatura", "slack_sdk", "pydantic", "alembic", "bot.flag", "bot.config",
             "bot.fetch", "bot.parse", "rich", "bot.schema", "bot.records")
    code = (
        "import sys, bot.cli\n"
        "try:\n    bot.cli.main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        f"print(sorted(m for m in {heavy!r} if m in sys.modules), file=sys.stderr)\n"
    )
    argv = ["query", "visa", "--flag", "icc", "--format", "json"]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO,
                          env={"DATABASE_URL": archive_url, "PATH": ""}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == "[]"
    assert title_of("icc-visa") in done.stdout


def test_a_query_process_loads_exactly_these_pressbot_modules(archive_url: str) -> None:
    # Start-up tuning lives in the CLI entry point alone: a new import anywhere below it
    # shows here (issue 13), and the query benchmark's ratio depends on it.
    expected = ["bot", "bot.cli", "bot.cli.query", "bot.durations", "bot.errors", "bot.locations", "bot.logs",
                "bot.query", "bot.store", "bot.store.fts", "bot.store.search", "bot.tables"]
    code = (
        "import sys, bot.cli\n"
        "try:\n    bot.cli.main()\nexcept SystemExit as exit:\n    assert exit.code == 0, exit.code\n"
        "print(sorted(m for m in sys.modules if m == 'bot' or m.startswith('bot.')), file=sys.stderr)\n"
    )
    argv = ["query", "visa", "--flag", "icc", "--since", "2y", "--format", "json"]
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, cwd=REPO,
                          env={"DATABASE_URL": archive_url, "PATH": ""}, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip().splitlines()[-1] == repr(expected)


def test_a_query_does_not_wait_for_a_writing_worker(tmp_path: Path) -> None:
    """A worker mid-transaction holds SQLite's write lock; a search must answer at once, not after it."""
    import sqlite3
    import time

    path = tmp_path / "pressbot.db"
    archive(f"sqlite:///{path}").kw["bind"].dispose()
    worker = sqlite3.connect(path, isolation_level=None)
    worker.execute("BEGIN IMMEDIATE")
    worker.execute("UPDATE feeds SET last_error = 'mid-pass'")
    try:
        started = time.perf_counter()
        titles = json_titles(f"sqlite:///{path}", "visa", "--flag", "icc")
        elapsed = time.perf_counter() - started
    finally:
        worker.rollback()
        worker.close()
    assert titles == [title_of("icc-visa")]
    assert elapsed < 10  # the busy timeout is 30 s: waiting for the lock would take all of it


def test_a_query_leaves_cycle_collection_as_it_found_it(archive_url: str) -> None:
    import gc

    assert gc.isenabled()
    json_titles(archive_url, "visa")
    assert gc.isenabled()
    gc.disable()
    try:
        json_titles(archive_url, "visa")
        assert not gc.isenabled()
    finally:
        gc.enable()


# -- prune -------------------------------------------------------------------------------


@pytest.fixture
def prune_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    archive(database_url).kw["bind"].dispose()
    config = write_config(tmp_path, [{"name": "ISHR", "url": "https://ishr.example/feed/"}])
    return {"DATABASE_URL": database_url, "PRESSBOT_CONFIG": str(config)}


def test_prune_keeps_flagged_releases_unless_all(prune_env: dict[str, str]) -> None:
    url = prune_env["DATABASE_URL"]
    dry = run(url, "prune", "--older-than", "20d", "--dry-run", env=prune_env)
    assert dry.exit_code == 0 and "would delete 3 releases" in dry.stdout
    kept = run(url, "prune", "--older-than", "20d", env=prune_env)
    assert kept.exit_code == 0 and "deleted 3 releases" in kept.stdout and "flagged releases kept" in kept.stdout
    assert set(json_titles(url, "--until", (NOW - timedelta(days=20)).isoformat())) == {title_of("burundi")}
    everything = run(url, "prune", "--older-than", "20d", "--all", env=prune_env)
    assert everything.exit_code == 0 and "deleted 1 releases" in everything.stdout
    assert set(json_titles(url, "represailles")) == set()


@pytest.mark.parametrize("span", ["18m", "soon"], ids=["minutes", "not-a-span"])
def test_prune_refuses_a_span_that_is_not_one(prune_env: dict[str, str], span: str) -> None:
    result = run(prune_env["DATABASE_URL"], "prune", "--older-than", span, env=prune_env)
    assert result.exit_code == 2 and "--older-than" in result.stderr


def test_prune_refuses_a_span_reaching_before_year_1(prune_env: dict[str, str]) -> None:
    result = run(prune_env["DATABASE_URL"], "prune", "--older-than", "99999999999d", env=prune_env)
    assert result.exit_code == 2 and "--older-than" in result.stderr and "out of range" in result.stderr


@pytest.mark.slow
def test_the_benchmark_runs_small(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "query.py"), "--items", "400", "--queries", "10", "--runs", "1",
         "--db", str(tmp_path / "bench.db")],
        capture_output=True, text=True, cwd=REPO, timeout=300, check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["stored_items"] == 400 and report["flagged_icc"] > 0
    assert report["in_process"]["queries"] == 10 and report["process"]["ratio"] > 0
