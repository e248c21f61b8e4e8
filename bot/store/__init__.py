"""Storage: the only place that creates an Engine or talks SQL.

Functions in the submodules take a ``Session``; callers own the transaction
(``with session_factory.begin() as session:``).

    feeds    sync configured sources, cache validators, health, schedule claims
    items    idempotent item upsert, flag matches and the alerts they create
    outbox     claim pending alerts, record Slack's answer, retry failed ones
    changes    the outbox of edits and thread replies of posted alerts
    claims     the leased claim both outboxes use (select due → SKIP LOCKED → UPDATE … RETURNING)
    schedule   feed claims, next checks, health notices, pass records
    search     filtered searches and the feed listing (the language: bot.query)
    summaries  the summaries a pass left to the first reader: which rows wait, their conditional write
    migrate    Alembic up to head (its own module: a search never imports Alembic)
    fts        each engine's full-text SQL (SQLite FTS5, PostgreSQL tsquery)
    retention  `pressbot prune`
"""

from __future__ import annotations

import logging
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, make_url, text
from sqlalchemy.engine import URL, ExceptionContext
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import ConfigError, SchemaError, StoreError, UnwritableError
from bot.logs import redact

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000


def migrations_dir() -> Path:
    """Alembic's script directory: inside the installed package, else the clone's ``migrations/``.

    setup.py copies the top-level ``migrations/`` into the wheel as ``bot/_migrations``;
    an editable install or a checkout run as ``python -m bot`` has only the original.
    """
    packaged = files("bot") / "_migrations"
    if packaged.is_dir():
        return Path(str(packaged))
    return Path(__file__).resolve().parent.parent.parent / "migrations"


_REVISION = re.compile(r'^revision(?:: *str)? *= *["\'](\w+)["\']', re.MULTILINE)
_DOWN_REVISION = re.compile(r'^down_revision(?:: *[\w |]+)? *= *["\'](\w+)["\']', re.MULTILINE)


def schema_revisions() -> tuple[set[str], set[str]]:
    """(every revision, the heads) read from the migration files, without importing Alembic (~100 ms)."""
    revisions, parents = set(), set()
    for path in (migrations_dir() / "versions").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        revision = _REVISION.search(source)
        if revision:
            revisions.add(revision.group(1))
            parents.update(_DOWN_REVISION.findall(source))
    return revisions, revisions - parents


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets a reader (a one-off `pressbot query`) run beside a writing worker;
    # the busy timeout makes a second writer wait instead of "database is locked".
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


# Execution options for a session that only reads: ``session.connection(execution_options=READ_ONLY)``.
def is_postgresql(session: Session) -> bool:
    """PostgreSQL, else SQLite: the two engines pressbot runs on."""
    return session.get_bind().dialect.name == "postgresql"


_READ_ONLY_OPTION = "pressbot_read_only"
READ_ONLY = {_READ_ONLY_OPTION: True}


def _sqlite_begin(conn: Any) -> None:
    # A writer takes the write lock at BEGIN: a deferred transaction that later upgrades
    # to a write fails with SQLITE_BUSY immediately, ignoring the busy timeout. A reader
    # (a search) begins deferred, so under WAL it never waits for a writing worker.
    read_only = conn.get_execution_options().get(_READ_ONLY_OPTION)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def database_name(url: URL) -> str:
    """How messages name a database: a SQLite file's path, else the URL without its password."""
    if url.get_backend_name() == "sqlite":
        return str(sqlite_path(url) or url.database)
    return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=True)


def sqlite_path(url: URL) -> Path | None:
    """The file a SQLite URL names (``file:…?mode=ro`` URIs too); None for an in-memory one."""
    database = url.database or ""
    if url.query.get("uri") in ("true", "1") or database.startswith("file:"):
        database = database.removeprefix("file:").split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    return Path(database).absolute()


def check_database_url(database_url: str) -> URL:
    """The parsed URL; ConfigError for one that names no database.

    Without a name PostgreSQL connects to the user's database (often the server's
    ``postgres`` maintenance database), and SQLite to a throw-away one in memory.
    """
    try:
        url = make_url(database_url)
    except (SQLAlchemyError, ValueError) as exc:
        raise ConfigError(f"DATABASE_URL: cannot parse {database_url!r}: {exc}") from None
    if not url.database or (url.get_backend_name() == "sqlite" and sqlite_path(url) is None):
        shown = redact(database_url)
        raise ConfigError(f"DATABASE_URL: {shown} names no database (e.g. sqlite:///pressbot.db, postgresql://host/pressbot)")
    return url


# SQLite's messages, and PostgreSQL's SQLSTATEs, for a database that refuses writes.
_SQLITE_UNWRITABLE = ("readonly database", "database or disk is full", "unable to open database file", "disk i/o error")
_POSTGRES_UNWRITABLE = {"25006": "read-only transaction", "53100": "disk full", "42501": "permission denied"}


def unwritable_cause(exc: BaseException) -> str | None:
    """The driver's one-line reason when ``exc`` says the database cannot be written, else None."""
    if not isinstance(exc, DBAPIError) or exc.orig is None:
        return None
    message = str(exc.orig).strip().splitlines()[0] if str(exc.orig).strip() else type(exc.orig).__name__
    if getattr(exc.orig, "sqlstate", None) in _POSTGRES_UNWRITABLE:
        return message
    if any(marker in message.lower() for marker in _SQLITE_UNWRITABLE):
        return message
    return None


def _translate_unwritable(context: ExceptionContext) -> None:
    # One error for "cannot write" wherever it happens, naming the database: the CLI
    # prints it as one line, and the worker backs off instead of logging tracebacks.
    cause = unwritable_cause(context.sqlalchemy_exception) if context.sqlalchemy_exception else None
    if cause is not None and context.engine is not None:
        raise UnwritableError(f"database {database_name(context.engine.url)} cannot be written: {cause}") from (
            context.sqlalchemy_exception
        )


def make_engine(database_url: str) -> Engine:
    try:
        engine = _make_engine(database_url)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open database: {exc}") from exc
    event.listen(engine, "handle_error", _translate_unwritable)
    return engine


def _make_engine(database_url: str) -> Engine:
    if not database_url.startswith("sqlite"):
        return create_engine(database_url, pool_pre_ping=True)
    engine = create_engine(database_url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    event.listen(engine, "connect", _sqlite_pragmas)
    # pysqlite's own transaction handling must be off for BEGIN IMMEDIATE.
    event.listen(engine, "connect", lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None))
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def check_schema(engine: Engine) -> None:
    """SchemaError unless the database exists and has this pressbot's newest schema; changes nothing.

    Read-only commands call this instead of ``upgrade``: a mistyped path must not leave
    a new empty database behind, nor a wrong URL get pressbot's tables.
    """
    name = database_name(engine.url)
    path = sqlite_path(engine.url) if engine.url.get_backend_name() == "sqlite" else None
    if path is not None and not path.is_file():
        # Connecting would create it.
        raise SchemaError(f"database {name} does not exist: create it with `pressbot db upgrade`")
    try:
        with engine.execution_options(**READ_ONLY).connect() as connection:
            version = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    except DBAPIError as exc:
        if _unreachable(exc):
            raise StoreError(f"cannot reach database {name}: {first_line(exc)}") from exc
        version = []
    revisions, heads = schema_revisions()
    if not version:
        raise SchemaError(f"database {name} has no pressbot schema: create it with `pressbot db upgrade`")
    if set(version) <= heads:
        return
    found = ", ".join(sorted(version))
    if set(version) <= revisions:
        raise SchemaError(f"database {name} has schema {found}, older than this pressbot's "
                          f"{', '.join(sorted(heads))}: run `pressbot db upgrade`")
    raise SchemaError(f"database {name} has schema {found}, which this pressbot does not know "
                      "(written by a newer version?)")


def first_line(exc: BaseException) -> str:
    return (str(exc).strip() or type(exc).__name__).splitlines()[0]


def _unreachable(exc: BaseException) -> bool:
    # A missing table is a ProgrammingError (PostgreSQL) or OperationalError "no such
    # table" (SQLite); anything else operational is the server or the file.
    return isinstance(exc, OperationalError) and "no such table" not in str(exc)
