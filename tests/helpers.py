"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli import cli
from bot.locations import normalize_database_url
from bot.records import AlertDecision, FlagMatch, HoldReason, Route
from bot.schema import Alert, Feed, FlagMatchRow, Item
from tests.conftest import REPO

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)

RSS20 = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Rights Watchers</title><link>https://example.org/</link>
<language>en</language><ttl>30</ttl>
<item><title>Court issues arrest warrant</title><link>/news/warrant</link>
<guid isPermaLink="false">rw-1</guid><pubDate>Mon, 02 Nov 2026 09:00:00 -0500</pubDate>
<description>&lt;p&gt;Judges of the International Criminal Court issued a warrant.&lt;/p&gt;</description></item>
<item><title>Defenders face reprisals after Geneva session</title><link>https://example.org/news/reprisals</link>
<guid isPermaLink="false">rw-2</guid><pubDate>Sun, 01 Nov 2026 10:00:00 GMT</pubDate>
<description>Several defenders faced reprisals for cooperating with the UN.</description></item>
<item><title>Annual report published</title><link>https://example.org/news/report</link>
<guid isPermaLink="false">rw-3</guid><pubDate>Sat, 31 Oct 2026 10:00:00 GMT</pubDate>
<description>The annual report covers education and health.</description></item>
</channel></rss>"""

ICC_WARRANT = "Judges of the International Criminal Court issued an arrest warrant today."


def releases_rss(items: list[tuple[str, str, datetime]]) -> str:
    """An RSS feed of (slug, text, date) releases; their titles are the text's first words."""
    entries = "".join(
        f"<item><title>{slug}: {text[:60]}</title><link>https://rights.example/news/{slug}/</link>"
        f"<guid>{slug}</guid><pubDate>{format_datetime(date)}</pubDate><description>{text}</description></item>"
        for slug, text, date in items
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Rights</title>{entries}</channel></rss>'



def held_alert(channel: str, matches: Iterable[FlagMatch]) -> AlertDecision:
    """A decision that records an alert without ever sending it (archives for searches)."""
    flags = tuple(sorted({match.flag for match in matches}))
    return AlertDecision(channel=channel, flags=flags, route=Route.DEFAULT, hold=HoldReason.FIRST_PASS)


# -- the outbox, filled directly ----------------------------------------------------------


def add_feed(session: Session, name: str = "ISHR") -> Feed:
    feed = Feed(
        name=name,
        url=f"https://{name.lower()}.example/feed",
        configured_url=f"https://{name.lower()}.example/feed",
    )
    session.add(feed)
    session.flush()
    return feed


def add_alert(
    session_factory: sessionmaker[Session],
    *,
    title: str = "ICC prosecutor seeks warrants",
    content: str = "The International Criminal Court prosecutor asked for warrants.",
    url: str | None = "https://ishr.example/news/1",
    channel: str = "#pressbot",
    status: str = "pending",
    feed_name: str = "ISHR",
    matches: tuple[FlagMatch, ...] = (
        FlagMatch(
            "icc", "International Criminal Court", "The International Criminal Court prosecutor asked."
        ),
    ),
    summary: str | None = None,
    **alert_fields: object,
) -> int:
    """One flagged item and its alert, inserted directly (the stub flag of these tests)."""
    with session_factory.begin() as session:
        feed = session.scalar(select(Feed).where(Feed.name == feed_name)) or add_feed(session, feed_name)
        digest = hashlib.sha256(title.encode()).hexdigest()[:16]  # titles may be 30,000 characters long
        key = f"{digest}-{channel}-{len(session.scalars(select(Item.id)).all())}"
        item = Item(
            feed_id=feed.id,
            key=key,
            url=url,
            title=title,
            teaser=content[:200],
            content=content,
            content_hash=hashlib.sha256(content.encode()).hexdigest(),
            published_at=NOW - timedelta(hours=1),
            summary=summary,
            flags=sorted({m.flag for m in matches}),
        )
        session.add(item)
        session.flush()
        for match in matches:
            session.add(
                FlagMatchRow(
                    item_id=item.id,
                    flag=match.flag,
                    phrase=match.phrase,
                    sentence=match.sentence,
                    field=match.field,
                )
            )
        alert = Alert(item_id=item.id, channel=channel, status=status, created_at=NOW, **alert_fields)
        session.add(alert)
        session.flush()
        return alert.id


def alert_row(session_factory: sessionmaker[Session], alert_id: int) -> Alert:
    with session_factory() as session:
        return session.get_one(Alert, alert_id)


# -- the CLI ----------------------------------------------------------------------------


def run_cli(args: list[str], config: Path, database_url: str, **env: str) -> Any:
    environment = {
        "PRESSBOT_CONFIG": str(config),
        "DATABASE_URL": database_url,
        "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
        "SLACK_BOT_TOKEN": "",
        "PRESSBOT_FEEDS": "",
        **env,
    }
    return CliRunner().invoke(cli, args, env=environment, catch_exceptions=False)


def poll_json(config: Path, database_url: str) -> dict[str, Any]:
    result = run_cli(["poll", "--json"], config, database_url)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def count_items(database_url: str) -> dict[str, int]:
    engine = create_engine(normalize_database_url(database_url))
    with engine.connect() as connection:
        rows = connection.execute(select(Feed.name, func.count(Item.id)).join(Item).group_by(Feed.name))
        counts = {name: count for name, count in rows}
    engine.dispose()
    return counts


# -- processes, and databases that refuse writes --------------------------------------------


def shown(url: str) -> str:
    """How pressbot names a database in its messages: a SQLite file's path, else the URL."""
    if url.startswith("sqlite:///"):
        return url.removeprefix("sqlite:///")
    return url.replace("postgres://", "postgresql://", 1)


@contextmanager
def immutable(path: Path) -> Iterator[None]:
    """A file nobody can write, root included: chattr +i (plain chmod does not stop root)."""
    if os.geteuid() != 0:
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(0o644)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True, check=False) \
        if shutil.which("chattr") else None
    if done is None or done.returncode != 0:
        pytest.skip(f"cannot make a file read-only for root here: {done.stderr if done else 'no chattr'}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


@contextmanager
def read_only_postgres(url: str) -> Iterator[None]:
    name = url.rsplit("/", 1)[1]
    server = normalize_database_url(url).replace("postgresql+psycopg://", "postgresql://").rsplit("/", 1)[0]
    admin = f"{server}/postgres"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'ALTER DATABASE "{name}" SET default_transaction_read_only = on')
    try:
        yield
    finally:
        with psycopg.connect(admin, autocommit=True) as connection:
            connection.execute(f'ALTER DATABASE "{name}" RESET default_transaction_read_only')


@contextmanager
def unwritable(database_url: str) -> Iterator[None]:
    if database_url.startswith("sqlite"):
        with immutable(Path(database_url.removeprefix("sqlite:///"))):
            yield
    else:
        with read_only_postgres(database_url):
            yield


def pressbot(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "bot", *args], capture_output=True, text=True, timeout=120,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(REPO), **env}, check=False)


def pressbot_env(env: dict[str, str]) -> dict[str, str]:
    """The environment of a ``python -m bot`` child: this one's, the checkout importable, ``env`` on top."""
    return {**os.environ, "PYTHONPATH": str(REPO), **env}


def wait_until(condition: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out after {timeout:g}s waiting for {what}"
        time.sleep(0.1)
