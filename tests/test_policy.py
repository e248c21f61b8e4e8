"""The alert policy (pure): where a flagged release goes and whether it is held; and that its
decision travels with the alert row to delivery."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from bot.policy import decide_alerts, hold_reason, route
from bot.records import AlertPolicy, HoldReason, Route, StoredFeed, StoredItem
from bot.schema import Alert
from tests.conftest import write_config
from tests.feedserver import FeedServer
from tests.helpers import run_cli

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
POLICY = AlertPolicy(default_channel="#default", flag_channels={"icc": "#icc"}, window=timedelta(hours=48))


def feed(channel: str | None = None, *, first_pass: bool = False, pruned_before: datetime | None = None) -> StoredFeed:
    return StoredFeed(1, "ISHR", channel, full_text=False, first_pass=first_pass, pruned_before=pruned_before)


def item(published: datetime | None = NOW - timedelta(hours=1)) -> StoredItem:
    return StoredItem(7, 1, "ISHR", "k", "https://ishr.example/1", "t", "", "", None, published, NOW)


def test_route_channels() -> None:
    assert set(route(feed("#feed"), ["icc", "reprisal"], POLICY)) == {"#feed"}
    assert set(route(feed(), ["icc", "reprisal"], POLICY)) == {"#icc", "#default"}
    assert set(route(feed(), ["reprisal"], POLICY)) == {"#default"}


def test_each_channel_gets_the_flags_routed_to_it_and_why() -> None:
    assert route(feed("#feed"), ["reprisal", "icc"], POLICY) == {"#feed": (Route.FEED, ("icc", "reprisal"))}
    assert route(feed(), ["reprisal", "icc", "death"], POLICY) == {
        "#icc": (Route.FLAG, ("icc",)),
        "#default": (Route.DEFAULT, ("death", "reprisal")),
    }


@pytest.mark.parametrize(
    ("published", "first_pass", "pruned_before", "expected"),
    [
        (NOW - timedelta(hours=1), True, None, None),
        (NOW - timedelta(days=3), True, None, HoldReason.FIRST_PASS),
        (None, True, None, HoldReason.FIRST_PASS),
        (NOW - timedelta(days=3), False, None, None),
        (NOW - timedelta(days=40), False, NOW - timedelta(days=30), HoldReason.PRUNED),
        (NOW - timedelta(days=20), False, NOW - timedelta(days=30), None),
        (None, False, NOW - timedelta(days=30), None),
    ],
    ids=["recent-first-pass", "old-first-pass", "undated-first-pass", "old-later-pass", "pruned", "after-prune",
         "undated-after-prune"],
)
def test_hold_reason(
    published: datetime | None, first_pass: bool, pruned_before: datetime | None, expected: HoldReason | None
) -> None:
    found = hold_reason(item(published), first_pass=first_pass, now=NOW, policy=POLICY, pruned_before=pruned_before)
    assert found == expected


def test_a_release_stored_again_is_not_checked_against_the_prune() -> None:
    old = item(NOW - timedelta(days=40))
    pruned = feed(pruned_before=NOW - timedelta(days=30))
    kept = decide_alerts(old, {"icc"}, pruned, POLICY, now=NOW, first_pass=False, check_pruned=False)
    returned = decide_alerts(old, {"icc"}, pruned, POLICY, now=NOW, first_pass=False, check_pruned=True)
    assert [decision.hold for decision in kept] == [None]
    assert [decision.hold for decision in returned] == [HoldReason.PRUNED]
    assert decide_alerts(old, set(), pruned, POLICY, now=NOW, first_pass=True, check_pruned=True) == []


def test_the_decision_is_stored_with_the_alert_and_delivery_keeps_it_after_the_settings_change(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    published = datetime.now(UTC).strftime("%a, %d %b %Y %H:%M:%S +0000")
    url = feed_server.add("/feed/", f"""<?xml version="1.0"?><rss version="2.0"><channel><title>ISHR</title>
<item><title>Witnesses under pressure</title><link>https://ishr.example/news/1</link><guid>ishr-1</guid>
<pubDate>{published}</pubDate><description>Judges of the International Criminal Court issued a warrant.
Several defenders faced reprisals for cooperating with the UN.</description></item></channel></rss>""")
    config = write_config(tmp_path, [{"name": "ISHR", "url": url}])
    routed = config.read_text(encoding="utf-8").replace('# channel = "#icc"', 'channel = "#icc"')
    config.write_text(routed, encoding="utf-8")

    assert run_cli(["poll", "--dry-run"], config, sqlite_url).exit_code == 0
    engine = create_engine(sqlite_url)
    with engine.connect() as connection:
        rows = connection.execute(select(Alert.channel, Alert.flags, Alert.route, Alert.hold_reason)).all()
    engine.dispose()
    assert sorted(rows) == [("#icc", ["icc"], "flag", None), ("#pressbot", ["reprisal"], "default", None)]

    config.write_text(routed.replace('channel = "#icc"', ""), encoding="utf-8")  # icc no longer has a channel
    printed = run_cli(["poll", "--dry-run"], config, sqlite_url).stdout
    assert "[icc] Witnesses under pressure  (alert 1 → #icc)" in printed
    assert "[reprisal] Witnesses under pressure  (alert 2 → #pressbot)" in printed
