"""Alembic environment: the connection comes from pressbot (``pressbot db upgrade``),
or from DATABASE_URL / config when run as ``alembic`` by a developer."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from bot.tables import include_object, metadata

target_metadata = metadata


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        # SQLite cannot ALTER most things: batch mode copies the table instead.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    import os

    from bot.config import load, normalize_database_url
    from bot.store import make_engine

    url = os.environ.get("DATABASE_URL")
    engine = make_engine(normalize_database_url(url) if url else load().database_url)
    with engine.connect() as connection:
        _run(connection)


if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported; run `pressbot db upgrade`")
run_migrations_online()
