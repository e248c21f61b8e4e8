"""Shared fixtures: a local feed server, configuration files, SQLite and PostgreSQL databases."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.locations import normalize_database_url
from bot.store import make_engine, make_session_factory
from bot.store.migrate import upgrade
from tests.feedserver import FeedServer

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
POSTGRES_URL = os.environ.get("PRESSBOT_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_feeds(path: Path, feeds: list[dict[str, Any]]) -> Path:
    blocks = []
    for feed in feeds:
        lines = ["[[feeds]]"] + [f"{key} = {_toml_value(value)}" for key, value in feed.items()]
        blocks.append("\n".join(lines))
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    return path


def write_config(directory: Path, feeds: list[dict[str, Any]], extra: str = "") -> Path:
    """A pressbot.toml with the project's real flag rules and the given feeds (full text off)."""
    real = (REPO / "config" / "pressbot.toml").read_text(encoding="utf-8")
    flags_at = real.find("\n[flags")
    flags = real[flags_at:] if flags_at >= 0 else ""
    write_feeds(directory / "feeds.toml", feeds)
    if "[fulltext]" not in extra:
        # Test feeds link to real sites (example.org…): no release page is fetched unless
        # a test asks for it, so no traffic leaves 127.0.0.1.
        extra += "\n[fulltext]\nenabled = false\n"
    config = directory / "pressbot.toml"
    config.write_text(
        'feeds = "feeds.toml"\n'
        '[poll]\ntimeout = "2s"\nconnect_timeout = "2s"\nmax_bytes = 1_000_000\n'
        f"{extra}\n{flags}\n",
        encoding="utf-8",
    )
    return config


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'pressbot.db'}"


def _postgres_required() -> bool:
    return os.environ.get("PRESSBOT_REQUIRE_POSTGRES") == "1"


@contextmanager
def fresh_postgres_database(prefix: str = "pressbot_test") -> Iterator[str]:
    """A fresh, empty database on the PostgreSQL server, dropped afterwards.

    Skips when the server is unreachable, or fails under PRESSBOT_REQUIRE_POSTGRES=1 (CI).
    The URL uses the platforms' ``postgres://`` spelling on purpose: config must rewrite it.
    """
    try:
        import psycopg

        admin = psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3)
    except Exception as exc:
        if _postgres_required():
            pytest.fail(f"PostgreSQL required (PRESSBOT_REQUIRE_POSTGRES=1) but unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {POSTGRES_URL}: {exc}")
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield POSTGRES_URL.rsplit("/", 1)[0].replace("postgresql://", "postgres://", 1) + f"/{name}"
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    with fresh_postgres_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'pressbot.db'}"
    return request.getfixturevalue("postgres_url")


def open_db(database_url: str) -> sessionmaker[Session]:
    """A migrated database (the migrations, as the product builds it) and its sessions."""
    engine = make_engine(normalize_database_url(database_url))
    upgrade(engine)
    return make_session_factory(engine)


@pytest.fixture
def db(database_url: str) -> Iterator[sessionmaker[Session]]:
    """A fresh migrated database, on SQLite and on PostgreSQL."""
    factory = open_db(database_url)
    yield factory
    factory.kw["bind"].dispose()


@pytest.fixture
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared is absent (the corpus lives beside the repository)")
    return SHARED
