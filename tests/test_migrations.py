"""The migration chain builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from bot.config import normalize_database_url
from bot.store import make_engine
from bot.store.migrate import upgrade
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


def test_undoing_the_prune_cutoff_keeps_every_release(database_url: str) -> None:
    from alembic import command
    from alembic.config import Config
    from sqlalchemy import text

    from bot.store import migrations_dir

    engine = make_engine(normalize_database_url(database_url))
    upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO feeds (name, url, configured_url, tags, enabled, full_text,"
                                " created_at, consecutive_failures)"
                                " VALUES ('W', 'u', 'u', '[]', true, false, CURRENT_TIMESTAMP, 0)"))
        connection.execute(text("INSERT INTO items (feed_id, key, title, teaser, content, content_hash, first_seen_at,"
                                " changed_at, full_text_attempts, flags) SELECT id, 'k', 't', '', '', 'h',"
                                " CURRENT_TIMESTAMP, CURRENT_TIMESTAMP, 0, '[]' FROM feeds"))
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, "0002")
    with engine.connect() as connection:
        columns = {column["name"] for column in inspect(connection).get_columns("feeds")}
        items = connection.execute(text("SELECT count(*) FROM items")).scalar_one()
    upgrade(engine)
    engine.dispose()

    assert "pruned_before" not in columns and items == 1
