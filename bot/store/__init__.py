"""Storage: the only place that creates an Engine or talks SQL.

Functions in the submodules take a ``Session``; callers own the transaction
(``with session_factory.begin() as session:``).

    feeds    sync configured sources, cache validators, health, schedule claims
    items    idempotent item upsert, flag matches and the alerts they create
    outbox   claim pending alerts, record Slack's answer, retry failed ones
    search   full-text and filtered queries
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import StoreError

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent.parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 30_000


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
_READ_ONLY_OPTION = "pressbot_read_only"
READ_ONLY = {_READ_ONLY_OPTION: True}


def _sqlite_begin(conn: Any) -> None:
    # A writer takes the write lock at BEGIN: a deferred transaction that later upgrades
    # to a write fails with SQLITE_BUSY immediately, ignoring the busy timeout. A reader
    # (a search) begins deferred, so under WAL it never waits for a writing worker.
    read_only = conn.get_execution_options().get(_READ_ONLY_OPTION)
    conn.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def make_engine(database_url: str) -> Engine:
    try:
        if database_url.startswith("sqlite"):
            engine = create_engine(database_url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
            event.listen(engine, "connect", _sqlite_pragmas)
            # pysqlite's own transaction handling must be off for BEGIN IMMEDIATE.
            event.listen(
                engine, "connect", lambda dbapi_conn, _rec: setattr(dbapi_conn, "isolation_level", None)
            )
            event.listen(engine, "begin", _sqlite_begin)
            return engine
        return create_engine(database_url, pool_pre_ping=True)
    except (SQLAlchemyError, ImportError, ValueError) as exc:
        raise StoreError(f"cannot open database: {exc}") from exc


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def upgrade(engine: Engine) -> None:
    """Apply Alembic migrations up to head (idempotent)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Two workers starting together on an empty database: one migrates, the
                # other waits for it and then finds nothing to do.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7142019)")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
    except SQLAlchemyError as exc:
        raise StoreError(f"migration failed: {exc}") from exc
