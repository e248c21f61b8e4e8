"""The migration chain builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.config import normalize_database_url
from bot.store import make_engine, upgrade
from bot.tables import include_object, metadata


def test_migrations_match_the_models(database_url: str) -> None:
    engine = make_engine(normalize_database_url(database_url))
    upgrade(engine)
    upgrade(engine)  # idempotent

    with engine.connect() as connection, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLite: expression indexes are not reflected
        context = MigrationContext.configure(connection, opts={"include_object": include_object})
        diff = compare_metadata(context, metadata)
        tables = set(inspect(connection).get_table_names())
    engine.dispose()

    assert diff == []
    assert {"feeds", "items", "flag_matches", "alerts", "passes"} <= tables
