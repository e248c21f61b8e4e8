"""Alembic migrations up to head: the only way the schema changes.

Its own module so that a search (``pressbot query``) never imports Alembic (~100 ms):
``bot.store.check_schema`` reads the revisions from the migration files instead.
"""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from bot.errors import StoreError
from bot.store import database_name, first_line, migrations_dir


def upgrade(engine: Engine) -> None:
    """Apply Alembic migrations up to head (idempotent); UnwritableError if the database refuses writes.

    A database already up to date is still written once (a no-op update, rolled into
    the same commit): else a read-only one passes a platform's release step and only
    the worker finds out.
    """
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                # Two workers starting together on an empty database: one migrates, the
                # other waits for it and then finds nothing to do.
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(7142019)")
            config.attributes["connection"] = connection
            command.upgrade(config, "head")
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = version_num")
    except SQLAlchemyError as exc:
        raise StoreError(f"migration of database {database_name(engine.url)} failed: {first_line(exc)}") from exc
