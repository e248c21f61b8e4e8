"""What each command does with a database that is missing, unmigrated, old, or cannot be written.

Read-only commands (status, query, feeds list, alerts list, prune --dry-run) never
create or migrate: one line naming the database and the fix, exit 2. A database that
refuses writes (a file root cannot write either, via ``chattr +i``; PostgreSQL's
``default_transaction_read_only``) is one line naming it and the cause, exit 1, for the
one-off commands and for ``db upgrade``. ``pressbot run`` is in tests/test_run_unwritable.py.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from alembic.config import Config
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import inspect

from bot.cli import cli
from bot.config import normalize_database_url
from bot.store import make_engine, migrations_dir, schema_revisions
from bot.store.migrate import upgrade
from tests.conftest import write_config
from tests.deployfeed import serve_releases
from tests.feedserver import FeedServer
from tests.helpers import pressbot, shown, unwritable

READ_ONLY_COMMANDS = [
    ("status",), ("status", "--json"), ("query", "visa"), ("query", "--format", "json"), ("feeds", "list"),
    ("alerts", "list"), ("prune", "--older-than", "30d", "--dry-run"),
]
COMMAND_IDS = ["status", "status-json", "query-text", "query-json", "feeds-list", "alerts-list", "prune-dry-run"]


def head() -> str:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    [revision] = ScriptDirectory.from_config(config).get_heads()
    return revision


def run(url: str, config: Path, *args: str) -> object:
    return CliRunner().invoke(cli, list(args), env={"DATABASE_URL": url, "PRESSBOT_CONFIG": str(config)})


def tables(url: str) -> set[str]:
    engine = make_engine(normalize_database_url(url))
    with engine.connect() as connection:
        names = set(inspect(connection).get_table_names())
    engine.dispose()
    return names


def one_error_line(result: object, code: int) -> str:
    assert result.exit_code == code, result.output  # type: ignore[attr-defined]
    lines = result.stderr.strip().splitlines()  # type: ignore[attr-defined]
    assert len(lines) == 1 and "Traceback" not in result.output, result.output  # type: ignore[attr-defined]
    return str(lines[0])


def test_the_schema_head_read_from_the_files_is_alembics() -> None:
    revisions, heads = schema_revisions()
    assert heads == {head()}
    assert len(revisions) == len(list((migrations_dir() / "versions").glob("*.py")))


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS, ids=COMMAND_IDS)
def test_a_read_only_command_on_a_missing_sqlite_file_creates_nothing(tmp_path: Path, args: tuple[str, ...]) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    path = tmp_path / "typo.db"
    line = one_error_line(run(f"sqlite:///{path}", config, *args), 2)
    assert line == f"pressbot: error: database {path} does not exist: create it with `pressbot db upgrade`"
    assert sorted(os.listdir(tmp_path)) == ["feeds.toml", "pressbot.toml"]


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS, ids=COMMAND_IDS)
def test_a_read_only_command_on_an_unmigrated_database_migrates_nothing(
    database_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    if database_url.startswith("sqlite"):
        Path(database_url.removeprefix("sqlite:///")).touch()  # an empty file is an empty SQLite database
    line = one_error_line(run(database_url, config, *args), 2)
    assert line == f"pressbot: error: database {shown(database_url)} has no pressbot schema: " \
                   "create it with `pressbot db upgrade`"
    assert tables(database_url) == set()


@pytest.mark.parametrize("args", READ_ONLY_COMMANDS, ids=COMMAND_IDS)
def test_a_read_only_command_on_an_older_schema_says_so_and_leaves_it(
    database_url: str, tmp_path: Path, args: tuple[str, ...]
) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    engine = make_engine(normalize_database_url(database_url))
    upgrade(engine)
    alembic_config = Config()
    alembic_config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        alembic_config.attributes["connection"] = connection
        command.downgrade(alembic_config, "-1")
    engine.dispose()
    older = ScriptDirectory.from_config(alembic_config).get_revision(head()).down_revision

    line = one_error_line(run(database_url, config, *args), 2)

    assert line == (f"pressbot: error: database {shown(database_url)} has schema {older}, older than this "
                    f"pressbot's {head()}: run `pressbot db upgrade`")
    engine = make_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        assert connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar_one() == older
    engine.dispose()


@pytest.mark.parametrize(
    ("url", "named"),
    [("postgres://postgres@127.0.0.1:5432", "postgresql+psycopg://postgres@127.0.0.1:5432"),
     ("postgresql://postgres@127.0.0.1:5432/", "postgresql+psycopg://postgres@127.0.0.1:5432/"),
     ("sqlite://", "sqlite://"), ("sqlite:///:memory:", "sqlite:///:memory:")],
    ids=["postgres-no-name", "postgres-slash", "sqlite-memory", "sqlite-memory-named"],
)
@pytest.mark.parametrize("args", [("status",), ("query", "visa"), ("poll",), ("db", "upgrade")],
                         ids=["status", "query", "poll", "db-upgrade"])
def test_a_url_naming_no_database_is_refused(tmp_path: Path, url: str, named: str, args: tuple[str, ...]) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    line = one_error_line(run(url, config, *args), 2)
    assert line == (f"pressbot: error: DATABASE_URL: {named} names no database "
                    "(e.g. sqlite:///pressbot.db, postgresql://host/pressbot)")


def test_poll_and_db_upgrade_still_create_and_migrate(database_url: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "http://127.0.0.1:9/feed"}])
    upgraded = run(database_url, config, "db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert "alembic_version" in tables(database_url)
    assert run(database_url, config, "status", "--json").exit_code == 0
    fresh = f"sqlite:///{tmp_path / 'second.db'}"
    polled = run(fresh, config, "poll", "--json")
    assert polled.exit_code == 0 and json.loads(polled.stdout)["feeds"] == 1


# -- a database that cannot be written ----------------------------------------------------

ONE_OFF_WRITERS = [("poll",), ("poll", "--json"), ("reflag",), ("prune", "--older-than", "1d"),
                   ("alerts", "retry", "--all"), ("db", "upgrade")]
WRITER_IDS = ["poll", "poll-json", "reflag", "prune", "alerts-retry", "db-upgrade"]


@pytest.fixture
def polled(database_url: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """A database holding one pass over the three releases; the environment to use it."""
    server = FeedServer().start()
    config = write_config(tmp_path, [{"name": "Releases", "url": serve_releases(server)}])
    env = {"DATABASE_URL": database_url, "PRESSBOT_CONFIG": str(config), "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1"}
    done = pressbot("poll", env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    yield env
    server.stop()


def cannot_write_line(database_url: str) -> re.Pattern[str]:
    cause = ("attempt to write a readonly database" if database_url.startswith("sqlite")
             else "cannot execute [A-Z ]+ in a read-only transaction")
    return re.compile(rf"pressbot: error: database {re.escape(shown(database_url))} cannot be written: {cause}")


@pytest.mark.parametrize("args", ONE_OFF_WRITERS, ids=WRITER_IDS)
def test_a_one_off_command_on_an_unwritable_database_prints_one_line_and_exits_1(
    database_url: str, polled: dict[str, str], tmp_path: Path, args: tuple[str, ...]
) -> None:
    with unwritable(database_url):
        done = pressbot(*args, env=polled, cwd=tmp_path)
        verbose = pressbot("-v", *args, env=polled, cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and cannot_write_line(database_url).fullmatch(lines[0]), done.stderr
    assert verbose.returncode == 1 and "Traceback" in verbose.stderr


def test_read_only_commands_still_answer_on_an_unwritable_database(
    database_url: str, polled: dict[str, str], tmp_path: Path
) -> None:
    with unwritable(database_url):
        answer = pressbot("query", "--format", "json", env=polled, cwd=tmp_path)
        status = pressbot("status", "--json", env=polled, cwd=tmp_path)
    assert answer.returncode == 0 and len(json.loads(answer.stdout)) == 3, answer.stderr
    assert status.returncode == 0 and status.stderr == "", status.stderr


def test_a_database_refusing_writes_in_mid_pass_is_one_line_not_a_feed_failure_with_a_traceback(
    database_url: str, tmp_path: Path
) -> None:
    """The claims were written, then storing the releases is refused (as when a disk fills up mid-pass)."""
    server = FeedServer().start()
    config = write_config(tmp_path, [{"name": "Releases", "url": serve_releases(server)}])
    env = {"DATABASE_URL": database_url, "PRESSBOT_CONFIG": str(config), "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1"}
    assert pressbot("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    engine = make_engine(normalize_database_url(database_url))
    with engine.begin() as connection:
        if database_url.startswith("sqlite"):
            connection.exec_driver_sql("CREATE TRIGGER refuse_items BEFORE INSERT ON items "
                                       "BEGIN SELECT RAISE(ABORT, 'attempt to write a readonly database'); END")
        else:  # SQLSTATE 25006, what a read-only transaction raises
            connection.exec_driver_sql("CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                                       "RAISE EXCEPTION 'cannot execute INSERT in a read-only transaction' "
                                       "USING ERRCODE = '25006'; END $$")
            connection.exec_driver_sql("CREATE TRIGGER refuse_items BEFORE INSERT ON items FOR EACH ROW "
                                       "EXECUTE FUNCTION refuse()")
    engine.dispose()
    try:
        done = pressbot("poll", env=env, cwd=tmp_path)
    finally:
        server.stop()
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and cannot_write_line(database_url).fullmatch(lines[0]), done.stderr
