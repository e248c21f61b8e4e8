"""`pressbot reflag`: flags are derived data, re-derived after the rules change."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

from sqlalchemy import create_engine, select

from bot.schema import Alert, Item
from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.helpers import poll_json, run_cli

DEATH_PENALTY = '\n[flags.death-penalty]\nen = ["death penalty"]\nfr = ["peine de mort"]\n'


def feed(now: datetime) -> str:
    recent = format_datetime(now - timedelta(hours=2))
    old = format_datetime(now - timedelta(days=30))
    return f"""<?xml version="1.0"?><rss version="2.0"><channel><title>t</title><link>https://x.example/</link>
<item><title>Experts urge end to the death penalty</title><link>https://x.example/1</link><pubDate>{recent}</pubDate>
<description>UN experts called for a moratorium.</description></item>
<item><title>La peine de mort en recul</title><link>https://x.example/2</link><pubDate>{old}</pubDate>
<description>Un rapport annuel.</description></item>
<item><title>Education report</title><link>https://x.example/3</link><pubDate>{recent}</pubDate>
<description>Schools and teachers.</description></item>
</channel></rss>"""


def test_reflag_reports_newly_flagged_and_unflagged_and_holds_old_releases(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    url = feed_server.add("/feed.xml", feed(datetime.now(UTC)))
    config = write_config(tmp_path, [{"name": "X", "url": url}])
    first = poll_json(config, sqlite_url)
    assert first["flagged"] == 0

    config.write_text(config.read_text(encoding="utf-8") + DEATH_PENALTY, encoding="utf-8")
    added = run_cli(["reflag", "--json"], config, sqlite_url)

    assert added.exit_code == 0, added.output
    report = json.loads(added.stdout)
    assert report["items"] == 3
    assert report["newly_flagged"] == {"death-penalty": 2}
    assert (report["alerts"], report["held"]) == (1, 1)  # the 30-day-old release is not alerted
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        flagged = connection.execute(select(Item.title, Item.flags)).all()
        statuses = sorted(connection.execute(select(Alert.status)).scalars())
    assert {title for title, flags in flagged if flags == ["death-penalty"]} == {
        "Experts urge end to the death penalty",
        "La peine de mort en recul",
    }
    assert statuses == ["held", "pending"]

    config.write_text(config.read_text(encoding="utf-8").replace(DEATH_PENALTY, ""), encoding="utf-8")
    removed = run_cli(["reflag"], config, sqlite_url)

    assert removed.exit_code == 0
    assert "death-penalty: 0 newly flagged, 2 unflagged" in removed.stdout
    with engine.connect() as connection:
        assert connection.execute(select(Alert.status)).scalars().all() == ["held"]


def test_reflag_without_rule_changes_changes_nothing(feed_server: FeedServer, tmp_path: Path, sqlite_url: str) -> None:
    url = feed_server.add("/feed.xml", feed(datetime.now(UTC)))
    config = write_config(tmp_path, [{"name": "X", "url": url}], extra="")
    config.write_text(config.read_text(encoding="utf-8") + DEATH_PENALTY, encoding="utf-8")
    poll_json(config, sqlite_url)

    again = run_cli(["reflag"], config, sqlite_url)

    assert again.exit_code == 0
    assert "no flag changed" in again.stdout
