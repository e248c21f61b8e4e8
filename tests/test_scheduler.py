"""The scheduler: next-check decisions, claims between workers, and two simulated days on a driven clock.

The simulation runs the worker's real jobs (claim → fetch → store → reschedule →
health notices) against a local feed server and a fake Slack, with ``now`` moved by
the test from one due time to the next: no sleeping for real intervals.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli.stages import load_page_stages
from bot.config import load
from bot.errors import ConfigError
from bot.logs import JsonFormatter, RedactSecrets, redact
from bot.records import FeedHealth, FetchResult, HealthNotice, SchedulePolicy
from bot.scheduler.decide import (
    CACHE_HINT_MAX,
    RETRY_AFTER_MAX,
    backoff_delay,
    decide,
    health_notice_text,
    interval_warnings,
    next_check,
)
from bot.scheduler.worker import Worker
from bot.schema import Feed
from bot.store import schedule as schedule_store
from tests.conftest import open_db, write_config
from tests.fakeslack import FakeSlack
from tests.feedserver import FeedServer

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
HOUR = 3600.0
POLICY = SchedulePolicy(
    default_interval=900, backoff_max=6 * HOUR, health_notice_after=24 * HOUR, disable_after=7 * 24 * HOUR,
    lease=300, heartbeat=600,
)


def seconds_until(when: datetime | None, now: datetime = NOW) -> float:
    assert when is not None
    return (when - now).total_seconds()


# --- next_check and decide (pure) -----------------------------------------------------


@pytest.mark.parametrize(
    ("hints", "expected"),
    [
        ({}, 900),
        ({"retry_after": 120}, 900),
        ({"retry_after": 7200}, 7200),
        ({"retry_after": 30 * 86400}, RETRY_AFTER_MAX),
        ({"max_age": 60}, 900),
        ({"max_age": 3 * HOUR}, 3 * HOUR),
        ({"max_age": 86400}, CACHE_HINT_MAX),
        ({"ttl": 1800}, 1800),
        ({"ttl": 1800, "max_age": 2400, "retry_after": 2000}, 2400),
    ],
    ids=["interval", "short-retry-after", "retry-after", "retry-after-capped", "short-max-age", "max-age",
         "max-age-capped", "rss-ttl", "largest-hint-wins"],
)
def test_next_check_is_never_sooner_than_the_interval_or_what_the_server_asked(
    hints: dict[str, float], expected: float
) -> None:
    assert seconds_until(next_check(NOW, 900, **hints)) == expected


@pytest.mark.parametrize("jitter", [0.0, 0.5, 1.0], ids=["low", "mid", "high"])
def test_backoff_doubles_per_failure_within_the_interval_and_the_cap(jitter: float) -> None:
    delays = [backoff_delay(900, failures, 6 * HOUR, lambda: jitter) for failures in range(1, 12)]
    assert all(900 <= delay <= 6 * HOUR for delay in delays)
    assert delays == sorted(delays)
    assert delays[-1] == 6 * HOUR * (0.5 + jitter / 2)
    for failures, delay in enumerate(delays, start=1):
        ceiling = min(900 * 2**failures, 6 * HOUR)
        assert max(900, ceiling / 2) <= delay <= ceiling


def health(**fields: Any) -> FeedHealth:
    values: dict[str, Any] = {
        "feed_id": 1, "name": "ISHR", "enabled": True, "disabled_reason": None, "interval_seconds": None,
        "last_success_at": None, "last_error": None, "last_error_at": None, "consecutive_failures": 0,
        "failing_since": None, "next_check_at": None,
    }
    return FeedHealth(**{**values, **fields})


def test_decide_backs_off_while_failing_and_recovers_on_the_first_success() -> None:
    failing = health(consecutive_failures=3, failing_since=NOW - timedelta(hours=2), last_error="HTTP 503")
    decision = decide(NOW, failing, FetchResult(1, "u", status=503, error="HTTP 503"), None, POLICY, lambda: 1.0)
    assert decision.status == "failing"
    assert seconds_until(decision.next_check_at) == 900 * 2**3
    recovered = decide(NOW, health(), FetchResult(1, "u", status=200), None, POLICY)
    assert (recovered.status, seconds_until(recovered.next_check_at)) == ("ok", 900)


def test_cache_hints_of_an_error_page_are_ignored_but_retry_after_is_not() -> None:
    failing = health(consecutive_failures=1, failing_since=NOW, last_error="HTTP 429")
    result = FetchResult(1, "u", status=429, error="HTTP 429", retry_after_seconds=5 * HOUR, max_age_seconds=86400)
    assert seconds_until(decide(NOW, failing, result, None, POLICY, lambda: 0.0).next_check_at) == 5 * HOUR
    result = FetchResult(1, "u", status=500, error="HTTP 500", max_age_seconds=86400)
    assert seconds_until(decide(NOW, failing, result, None, POLICY, lambda: 0.0).next_check_at) == 900


def test_410_gone_disables_the_feed_at_once() -> None:
    decision = decide(NOW, health(consecutive_failures=1, failing_since=NOW),
                      FetchResult(1, "u", status=410, error="HTTP 410", gone=True), None, POLICY)
    assert decision.status == "disabled"
    assert decision.next_check_at is None
    assert decision.disabled_reason is not None and "410" in decision.disabled_reason


def test_a_feed_failing_longer_than_disable_after_is_disabled_with_its_last_error() -> None:
    since = NOW - timedelta(days=7, minutes=1)
    state = health(consecutive_failures=40, failing_since=since, last_error="connect timeout")
    decision = decide(NOW, state, FetchResult(1, "u", error="connect timeout"), None, POLICY)
    assert decision.status == "disabled"
    assert decision.disabled_reason == f"failing since {since:%Y-%m-%d %H:%M} UTC: connect timeout"


def test_health_notices_name_the_feed_and_say_what_happened() -> None:
    failing = HealthNotice(1, "ISHR", "failing", "HTTP 503", NOW - timedelta(hours=25), None)
    assert "“ISHR” has failed for 25 hours" in health_notice_text(failing, NOW)
    assert "HTTP 503" in health_notice_text(failing, NOW)
    assert "recovered" in health_notice_text(HealthNotice(1, "ISHR", "recovered", None, None, NOW), NOW)
    disabled = HealthNotice(1, "ISHR", "disabled", "HTTP 410 Gone", NOW, None)
    assert "disabled" in health_notice_text(disabled, NOW) and "410" in health_notice_text(disabled, NOW)


def make_config(tmp_path: Path, feeds: list[dict[str, Any]], extra: str = "", poll: str = "") -> dict[str, str]:
    # write_config's text ends inside [poll]: keys for it come first.
    config = write_config(tmp_path, feeds, extra=poll + '[fulltext]\nenabled = false\n' + extra)
    return {"PRESSBOT_CONFIG": str(config), "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1"}


def test_intervals_down_to_five_seconds_are_accepted_with_a_warning_below_a_minute(tmp_path: Path) -> None:
    feeds = [{"name": "fast", "url": "http://127.0.0.1:9/a", "interval": "5s"},
             {"name": "slow", "url": "http://127.0.0.1:9/b", "interval": "2h"}]
    warnings = interval_warnings(load(make_config(tmp_path, feeds)))
    assert len(warnings) == 1 and 'feed "fast"' in warnings[0]
    with pytest.raises(ConfigError, match="at least 5s"):
        load(make_config(tmp_path, [{"name": "x", "url": "http://127.0.0.1:9/a", "interval": "4s"}]))
    with pytest.raises(ConfigError, match=r"poll\.interval: must be at least 5s"):
        interval_warnings(load(make_config(tmp_path, feeds, poll='interval = "2s"\n')))


# --- logs -----------------------------------------------------------------------------


def test_slack_tokens_and_database_passwords_never_reach_a_log_line() -> None:
    assert redact("token xoxb-1234-5678-abcdEFGH and xapp-1-A0-99-ff") == "token xoxb-*** and xapp-***"
    assert redact("postgresql://pressbot:s3cret@db:5432/x") == "postgresql://pressbot:***@db:5432/x"
    record = logging.LogRecord("bot", logging.ERROR, __file__, 1, "posting with %s", ("xoxb-999-secret",), None)
    try:
        raise RuntimeError("auth failed for xoxb-999-secret")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactSecrets().filter(record)
    line = JsonFormatter().format(record)
    assert "secret" not in line
    entry = json.loads(line)
    assert entry["message"] == "posting with xoxb-***" and entry["level"] == "error"
    assert "RuntimeError" in entry["exception"]


def test_json_log_lines_carry_extra_fields() -> None:
    record = logging.LogRecord("bot.scheduler", logging.INFO, __file__, 1, "feed %s", ("ISHR",), None)
    record.feed = "ISHR"
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "feed ISHR" and entry["feed"] == "ISHR" and entry["logger"] == "bot.scheduler"


# --- claims on a real database ----------------------------------------------------------


def add_feeds(factory: sessionmaker[Session], count: int) -> list[int]:
    with factory.begin() as session:
        feeds = [Feed(name=f"feed-{n}", url=f"https://f{n}.example/", configured_url=f"https://f{n}.example/")
                 for n in range(count)]
        session.add_all(feeds)
        session.flush()
        return [feed.id for feed in feeds]


def claim(factory: sessionmaker[Session], worker: str, now: datetime, limit: int = 100) -> list[int]:
    with factory.begin() as session:
        return schedule_store.claim_due_feeds(session, worker=worker, now=now, lease_seconds=60, limit=limit)


def test_a_claimed_feed_is_not_claimed_again_until_released_or_its_lease_expires(
    db: sessionmaker[Session],
) -> None:
    ids = add_feeds(db, 5)
    assert claim(db, "a", NOW, limit=3) == ids[:3]
    assert claim(db, "b", NOW) == ids[3:]
    assert claim(db, "c", NOW + timedelta(seconds=59)) == []
    with db.begin() as session:
        schedule_store.set_schedule(session, ids[0], worker="a", next_check_at=NOW + timedelta(hours=1))
        assert schedule_store.renew_claims(session, worker="b", now=NOW + timedelta(seconds=30), lease_seconds=60) == 2
    # a's lease ran out (a died); b renewed; the feed a finished is not due yet.
    assert claim(db, "c", NOW + timedelta(seconds=61)) == ids[1:3]
    with db.begin() as session:
        assert schedule_store.release_claims(session, "b") == 2
    assert claim(db, "d", NOW + timedelta(seconds=61)) == ids[3:]


def test_concurrent_claimers_never_get_the_same_feed(db: sessionmaker[Session]) -> None:
    ids = add_feeds(db, 60)
    got: dict[str, list[int]] = defaultdict(list)
    barrier = threading.Barrier(4)

    def claimer(name: str) -> None:
        barrier.wait()
        rounds = 0
        # A new claimer name per round: a worker may re-claim its own feeds.
        while batch := claim(db, f"{name}-{rounds}", NOW, limit=4):
            got[name] += batch
            rounds += 1

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    claimed = [feed_id for batch in got.values() for feed_id in batch]
    assert sorted(claimed) == ids


# --- two days on a driven clock ---------------------------------------------------------


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class ClockedFeedServer(FeedServer):
    """Records the simulated time of every request."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.times: dict[str, list[datetime]] = defaultdict(list)
        super().__init__()

    def _handler(self) -> Any:
        base, server = super()._handler(), self

        class Clocked(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                server.times[self.path].append(server.clock())
                super().do_GET()

        return Clocked


def rss(title: str) -> str:
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{title}</title><link>https://e.org/</link>'
            f"<item><title>{title} news</title><link>https://e.org/{title}</link><guid>{title}-1</guid>"
            "<description>Nothing to flag.</description></item></channel></rss>")


def gaps(times: list[datetime]) -> list[float]:
    return [(later - earlier).total_seconds() for earlier, later in pairwise(times)]


def notices(fake: FakeSlack) -> list[tuple[str, str]]:
    """(feed, kind) of each message in the ops channel."""
    found = []
    for message in fake.posted("#ops"):
        text = message["text"]
        feed = text.split("“", 1)[1].split("”", 1)[0]
        kind = "recovered" if "recovered" in text else "disabled" if "disabled" in text else "failing"
        found.append((feed, kind))
    return found


def test_two_simulated_days_honour_intervals_server_hints_backoff_410_and_notify_health_once(
    tmp_path: Path,
) -> None:
    clock = Clock(NOW)
    server = ClockedFeedServer(clock).start()
    fake = FakeSlack(channels={"pressbot": "C0PRESSBOT", "ops": "C0OPSCHANL"}).start()
    try:
        server.add("/steady.xml", rss("steady"))
        server.add("/cached.xml", rss("cached"), headers={"Cache-Control": "max-age=10800"})
        server.add("/retry.xml", status=429, headers={"Retry-After": "7200"})
        server.add("/gone.xml", status=410)
        server.add("/flaky.xml", status=503)
        feeds = [{"name": name, "url": server.url(f"/{name}.xml"), "interval": "1h"}
                 for name in ("steady", "cached", "retry", "gone", "flaky")]
        env = make_config(tmp_path, feeds, extra='[slack]\nops_channel = "#ops"\n'
                          '[scheduler]\ndisable_after = "40h"\nhealth_notice_after = "24h"\nbackoff_max = "6h"\n')
        settings = load({**env, "SLACK_BOT_TOKEN": fake.token, "SLACK_API_URL": fake.url})
        factory = open_db(f"sqlite:///{tmp_path / 'sim.db'}")
        worker = Worker(settings, factory, page_stages=load_page_stages, clock=clock, echo=lambda text: None)
        worker.sync_feeds()
        recovered_at = NOW + timedelta(hours=30)
        notice_times: dict[tuple[str, str], datetime] = {}
        while clock.now <= NOW + timedelta(hours=48):
            if clock.now >= recovered_at:
                server.add("/flaky.xml", rss("flaky"))
            worker.run_due()
            worker.deliver()
            for key in notices(fake):
                notice_times.setdefault(key, clock.now)
            with factory() as session:
                due = schedule_store.next_due_at(session)
            assert due is not None and due > clock.now, "every polled feed gets a later next check"
            clock.now = min(due, recovered_at) if clock.now < recovered_at else due
        times = server.times
        with factory() as session:
            states = {feed.name: feed for feed in session.scalars(select(Feed))}
    finally:
        server.stop()
        fake.stop()

    # Intervals honoured: exactly once an hour.
    assert set(gaps(times["/steady.xml"])) == {HOUR}
    assert len(times["/steady.xml"]) == 49
    # Cache-Control: max-age=10800 (3 h) outweighs the 1 h interval.
    assert set(gaps(times["/cached.xml"])) == {3 * HOUR}
    # Retry-After: 7200 on every answer: never sooner, backing off beyond it; disabled after 40 h.
    assert all(gap >= 2 * HOUR for gap in gaps(times["/retry.xml"]))
    assert states["retry"].enabled is False and "failing since" in (states["retry"].disabled_reason or "")
    # 410 Gone: one request, then never again.
    assert len(times["/gone.xml"]) == 1
    assert states["gone"].enabled is False and "410" in (states["gone"].disabled_reason or "")
    # Exponential backoff while failing (1 h interval, 6 h cap), recovery on the first success.
    flaky = times["/flaky.xml"]
    failing = [t for t in flaky if t < recovered_at]
    for failures, gap in enumerate(gaps(failing), start=1):
        ceiling = min(HOUR * 2**failures, 6 * HOUR)
        assert max(HOUR, ceiling / 2) <= gap <= ceiling
    after = [t for t in flaky if t >= recovered_at]
    assert set(gaps(after)) == {HOUR}
    assert states["flaky"].consecutive_failures == 0 and states["flaky"].enabled
    # Health notices: one per change, never one per failed poll.
    assert sorted(notices(fake)) == sorted(
        [("flaky", "failing"), ("flaky", "recovered"), ("retry", "failing"), ("retry", "disabled"),
         ("gone", "disabled")]
    )
    assert NOW + timedelta(hours=24) <= notice_times[("flaky", "failing")] <= NOW + timedelta(hours=30)
    assert notice_times[("flaky", "recovered")] == after[0]
    assert len(failing) > 6  # it went on failing after its notice, silently


def test_a_one_off_poll_skips_feeds_a_worker_has_claimed(tmp_path: Path, feed_server: FeedServer) -> None:
    from bot.scheduler import poll_once

    for name in ("a", "b", "c"):
        feed_server.add(f"/{name}.xml", rss(name))
    feeds = [{"name": name, "url": feed_server.url(f"/{name}.xml")} for name in ("a", "b", "c")]
    settings = load(make_config(tmp_path, feeds))
    factory = open_db(f"sqlite:///{tmp_path / 'one-off.db'}")
    worker = Worker(settings, factory, page_stages=load_page_stages, worker_id="running-worker", echo=lambda text: None)
    worker.sync_feeds()
    with factory.begin() as session:
        held = schedule_store.claim_due_feeds(session, worker=worker.id, now=datetime.now(UTC),
                                              lease_seconds=300, limit=1)
    summary = poll_once(settings, factory, page_stages=load_page_stages, echo=lambda text: None)
    assert (summary.feeds, summary.fetched) == (2, 2)
    with factory() as session:
        claimed = {feed.name: feed.claimed_by for feed in session.scalars(select(Feed))}
        assert schedule_store.feed_health(session, held[0]).claimed_by == "running-worker"
    assert sorted(claimed.values(), key=str) == [None, None, "running-worker"]


# --- the CLI ----------------------------------------------------------------------------


def test_status_reports_each_feeds_health_the_alerts_and_the_last_pass(tmp_path: Path, feed_server: FeedServer) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    feed_server.add("/ok.xml", rss("ok"))
    feed_server.add("/down.xml", status=503)
    feeds = [{"name": name, "url": feed_server.url(f"/{name}.xml")} for name in ("ok", "down")]
    env = {**make_config(tmp_path, feeds), "DATABASE_URL": f"sqlite:///{tmp_path / 'status.db'}",
           "SLACK_BOT_TOKEN": "", "PRESSBOT_FEEDS": ""}
    runner = CliRunner()
    assert runner.invoke(cli, ["poll"], env=env).exit_code == 0
    result = runner.invoke(cli, ["status", "--json"], env=env)
    assert result.exit_code == 0, result.output
    status = json.loads(result.stdout)
    by_name = {feed["name"]: feed for feed in status["feeds"]}
    assert by_name["ok"]["status"] == "ok" and by_name["ok"]["last_success"] and by_name["ok"]["next_check"]
    assert by_name["down"] | {"next_check": None, "failing_since": None, "last_error_at": None} == {
        "name": "down", "status": "failing", "disabled_reason": None, "last_success": None,
        "last_error": "HTTP 503", "last_error_at": None, "consecutive_failures": 1, "failing_since": None,
        "next_check": None, "interval_seconds": None, "claimed_by": None, "muted_until": None, "muted_by": None,
    }
    assert status["alerts"]["pending"] == 0 and status["alerts"]["failed"] == 0
    assert status["last_pass"]["feeds"] == 2 and status["last_pass"]["failed"] == 1
    table = runner.invoke(cli, ["status"], env=env)
    assert table.exit_code == 0 and "down" in table.output and "HTTP 503" in table.output
    assert "Last pass:" in table.output and "0 pending, 0 failed" in table.output


def test_run_refuses_a_default_interval_below_five_seconds_with_one_line(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from bot.cli import cli

    env = {**make_config(tmp_path, [], poll='interval = "1s"\n'), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    result = CliRunner().invoke(cli, ["run"], env=env, standalone_mode=False)
    assert isinstance(result.exception, Exception) and getattr(result.exception, "exit_code", None) == 2
    assert "poll.interval: must be at least 5s" in str(result.exception)
