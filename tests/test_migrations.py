"""The migration chain builds exactly the schema the models describe, on both databases."""

from __future__ import annotations

import warnings

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect

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


def _migrate_to(engine: Engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    from bot.store import migrations_dir

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def test_groups_left_pointing_at_a_pruned_head_get_the_oldest_remaining_copy_as_head(database_url: str) -> None:
    # Before prune promoted heads (issue 18), pruning a group's head left its copies'
    # group_id on a release that no longer exists: a grouped query showed none of them.
    from sqlalchemy import text

    engine = make_engine(normalize_database_url(database_url))
    _migrate_to(engine, "0010")
    with engine.begin() as connection:
        for name in ("A", "B", "C", "D"):
            connection.execute(text("INSERT INTO feeds (name, url, configured_url, tags, enabled, full_text,"
                                    " created_at, consecutive_failures)"
                                    " VALUES (:name, :url, :url, '[]', true, false, CURRENT_TIMESTAMP, 0)"),
                               {"name": name, "url": f"https://{name.lower()}.example/feed"})
        feeds = dict(connection.execute(text("SELECT name, id FROM feeds")).all())
        rows = [  # (id, feed, group): 10 pruned with 11-13 left, 20 pruned with 21 alone, 30 a healthy group
            (11, "B", 10), (12, "C", 10), (13, "D", 10), (21, "B", 20), (30, "A", 30), (31, "B", 30), (40, "C", None),
        ]
        for item_id, feed, group_id in rows:
            connection.execute(text("INSERT INTO items (id, feed_id, key, title, teaser, content, content_hash,"
                                    " first_seen_at, changed_at, full_text_attempts, flags, group_id) VALUES"
                                    " (:id, :feed, :key, 't', '', '', 'h', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP,"
                                    " 0, '[]', :group)"),
                               {"id": item_id, "feed": feeds[feed], "key": f"k{item_id}", "group": group_id})
    upgrade(engine)
    with engine.connect() as connection:
        groups = dict(connection.execute(text("SELECT id, group_id FROM items")).all())
    engine.dispose()

    assert groups == {11: 11, 12: 11, 13: 11, 21: None, 30: 30, 31: 30, 40: None}
