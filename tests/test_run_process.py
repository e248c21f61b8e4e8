"""``pressbot run`` as real processes: a local feed server, a fake Slack, SQLite and PostgreSQL.

Each test starts workers with 5 s intervals and watches what the servers receive:
which feed was fetched when, which alert was posted how often. They take real time
(about 20 s each), so they are marked ``slow``.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from email.utils import format_datetime
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select

from bot.config import normalize_database_url
from bot.schema import Alert, Feed, Item, PassRecord
from tests.conftest import REPO, write_config
from tests.fakeslack import FakeSlack
from tests.feedserver import FeedServer

pytestmark = pytest.mark.slow

INTERVAL = 5.0
STOP_LIMIT = 20.0
# A phrase no shipped flag rule uses, so the test's flag alone decides what is alerted.
FLAG_EXTRA = '[flags.schedtest]\nen = ["zebra quokka"]\n'


class TimedFeedServer(FeedServer):
    """Records when each request arrived (monotonic seconds)."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        super().__init__()
        # A killed worker leaves answers unread; the broken pipe is expected, not news.
        self._httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]

    def _handler(self) -> Any:
        base, server = super()._handler(), self

        class Timed(base):  # type: ignore[misc, valid-type]
            def do_GET(self) -> None:
                server.times[self.path].append(time.monotonic())
                super().do_GET()

        return Timed


def rss(name: str, items: list[tuple[str, bool]]) -> str:
    """A feed whose items are published now; flagged ones mention the test phrase."""
    now = format_datetime(datetime.now(UTC), usegmt=True)
    entries = "".join(
        f"<item><title>{title}</title><link>https://{name}.example/{key}</link><guid>{name}-{key}</guid>"
        f"<pubDate>{now}</pubDate><description>{'A zebra quokka was seen. ' if flagged else ''}"
        f"Report {key} of {name}.</description></item>"
        for key, (title, flagged) in enumerate(items)
    )
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
            f"<link>https://{name}.example/</link>{entries}</channel></rss>")


@pytest.fixture
def servers() -> Iterator[tuple[TimedFeedServer, FakeSlack]]:
    feeds, slack = TimedFeedServer().start(), FakeSlack().start()
    yield feeds, slack
    feeds.stop()
    slack.stop()


def environment(tmp_path: Path, database_url: str, slack: FakeSlack, feeds: list[dict[str, Any]],
                scheduler: str = "") -> dict[str, str]:
    config = write_config(
        tmp_path, feeds,
        extra=f'[fulltext]\nenabled = false\n[scheduler]\nheartbeat = "5s"\n{scheduler}\n{FLAG_EXTRA}',
    )
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(("PRESSBOT_", "SLACK_", "DATABASE_URL"))}
    bin_dir = str(Path(sys.executable).parent)
    return {
        **inherited,
        "PATH": bin_dir + os.pathsep + inherited.get("PATH", ""),
        "PRESSBOT_CONFIG": str(config),
        "DATABASE_URL": database_url,
        "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
        "SLACK_BOT_TOKEN": slack.token,
        "SLACK_API_URL": slack.url,
        "SLACK_CHANNEL": "#pressbot",
        "PYTHONUNBUFFERED": "1",
    }


class Worker:
    """A ``pressbot run`` process with its output in files."""

    def __init__(self, argv: list[str], env: dict[str, str], directory: Path, name: str) -> None:
        self.name = name
        self.stdout = directory / f"{name}.out"
        self.stderr = directory / f"{name}.err"
        with self.stdout.open("wb") as out, self.stderr.open("wb") as err:
            self.process = subprocess.Popen(argv, env=env, cwd=directory, stdout=out, stderr=err)

    def stop(self, sig: int = signal.SIGTERM) -> tuple[int, float]:
        started = time.monotonic()
        self.process.send_signal(sig)
        try:
            code = self.process.wait(timeout=STOP_LIMIT + 10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        return code, time.monotonic() - started

    def log(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace")


def python_run(*args: str) -> list[str]:
    return [sys.executable, "-m", "bot", "run", *args]


def procfile() -> dict[str, list[str]]:
    lines = (REPO / "Procfile").read_text(encoding="utf-8").splitlines()
    return {name.strip(): shlex.split(command) for name, command in (line.split(":", 1) for line in lines if line)}


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.1)


def alert_posts(slack: FakeSlack) -> Counter[int]:
    """How many messages in the channel carry each alert id."""
    return Counter(
        message["metadata"]["event_payload"]["alert_id"]
        for message in slack.posted("#pressbot")
        if message.get("metadata", {}).get("event_type") == "pressbot_alert"
    )


def db_counts(database_url: str) -> dict[str, Any]:
    engine = create_engine(normalize_database_url(database_url))
    try:
        with engine.connect() as connection:
            return {
                "items": connection.scalar(select(func.count(Item.id))),
                "alerts": dict(connection.execute(select(Alert.status, func.count()).group_by(Alert.status)).all()),
                "claimed": connection.scalar(select(func.count(Feed.id)).where(Feed.claimed_by.is_not(None))),
                "workers": set(connection.scalars(select(PassRecord.worker))),
            }
    finally:
        engine.dispose()


def assert_clean_log(worker: Worker) -> None:
    log = worker.log()
    assert "database is locked" not in log
    assert "Traceback" not in log, log[-3000:]
    assert "xoxb-test-token" not in log


# --- 2: one worker: alerts, SIGTERM mid-pass, restart -------------------------------------


def test_worker_posts_alerts_stops_on_sigterm_and_resumes_without_duplicates(
    tmp_path: Path, servers: tuple[TimedFeedServer, FakeSlack]
) -> None:
    feed_server, slack = servers
    feed_server.add("/a.xml", rss("a", [("A flagged", True), ("A plain", False)]))
    feed_server.add("/b.xml", rss("b", [("B flagged", True)]))
    feed_server.add("/slow.xml", rss("slow", [("Slow plain", False)]), hang=1.5)
    feeds = [{"name": name, "url": feed_server.url(f"/{name}.xml"), "interval": "5s"} for name in ("a", "b", "slow")]
    database_url = f"sqlite:///{tmp_path / 'pressbot.db'}"
    env = environment(tmp_path, database_url, slack, feeds)

    first = Worker(python_run(), env, tmp_path, "first")
    wait_for(lambda: sum(alert_posts(slack).values()) == 2, 30, "two alerts posted")
    slow_hits = len(feed_server.times["/slow.xml"])
    wait_for(lambda: len(feed_server.times["/slow.xml"]) > slow_hits, 15, "the next pass to start")
    code, first_took = first.stop(signal.SIGTERM)  # while the slow feed is being fetched
    assert (code, first_took < STOP_LIMIT) == (0, True), first.log()[-2000:]
    assert db_counts(database_url)["claimed"] == 0
    assert_clean_log(first)

    feed_server.add("/a.xml", rss("a", [("A flagged", True), ("A plain", False), ("A second flagged", True)]))
    second = Worker(python_run("--log-json"), env, tmp_path, "second")
    wait_for(lambda: sum(alert_posts(slack).values()) == 3, 30, "the new alert posted")
    time.sleep(INTERVAL + 1)  # one more interval: nothing is posted again
    code, took = second.stop(signal.SIGINT)
    assert (code, took < STOP_LIMIT) == (0, True), second.log()[-2000:]

    posts = alert_posts(slack)
    assert sorted(posts.values()) == [1, 1, 1]
    assert_clean_log(second)
    lines = [json.loads(line) for line in second.log().splitlines() if line.strip()]
    assert any(line["message"].startswith("heartbeat:") for line in lines)
    print(f"\n[test 2] alerts posted: {len(posts)} (each {set(posts.values())} time); stop took "
          f"{first_took:.1f}s (SIGTERM mid-pass), {took:.1f}s (SIGINT); "
          f"hits {dict(Counter({path: len(times) for path, times in feed_server.times.items()}))}")


# --- 3, 4, 6: two workers share the feeds, started from the Procfile's lines --------------


def run_two_workers(tmp_path: Path, database_url: str, servers: tuple[TimedFeedServer, FakeSlack]) -> None:
    feed_server, slack = servers
    names = [f"f{n}" for n in range(6)]
    for name in names:
        feed_server.add(f"/{name}.xml", rss(name, [(f"{name} flagged", True), (f"{name} plain", False)]))
    feeds = [{"name": name, "url": feed_server.url(f"/{name}.xml"), "interval": "5s"} for name in names]
    env = environment(tmp_path, database_url, slack, feeds)
    commands = procfile()
    release = subprocess.run(commands["release"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert release.returncode == 0, release.stderr

    workers = [Worker(commands["worker"], env, tmp_path, f"worker{n}") for n in (1, 2)]
    started = time.monotonic()
    time.sleep(4 * INTERVAL + 2)
    results = [worker.stop() for worker in workers]
    elapsed = time.monotonic() - started
    for worker, (code, took) in zip(workers, results, strict=True):
        assert (code, took < STOP_LIMIT) == (0, True), worker.log()[-2000:]
        assert_clean_log(worker)

    fetches = {name: [t for t in feed_server.times[f"/{name}.xml"] if t >= started] for name in names}
    shortest = min(later - earlier for times in fetches.values() for earlier, later in pairwise(times))
    assert shortest >= INTERVAL - 0.2, "a feed was fetched twice within one interval"
    most = elapsed / INTERVAL + 1
    assert all(most - 3 <= len(times) <= most for times in fetches.values()), fetches
    posts = alert_posts(slack)
    assert len(posts) == len(names) and set(posts.values()) == {1}
    counts = db_counts(database_url)
    assert counts["items"] == 2 * len(names)
    assert counts["alerts"] == {"sent": len(names)}
    assert counts["claimed"] == 0
    print(f"\n[{database_url.split(':')[0]}] {elapsed:.0f}s, 2 workers: fetches per feed "
          f"{sorted(len(times) for times in fetches.values())}, shortest gap {shortest:.2f}s; "
          f"alerts posted {sum(posts.values())} for {len(posts)} alerts; workers that ran passes: "
          f"{len(counts['workers'])}; stop took {[round(took, 1) for _, took in results]}s")


def test_the_procfile_declares_the_release_and_worker_lines() -> None:
    # `python -m bot`: a buildpack installs requirements.txt, which does not install pressbot itself (issue 12).
    assert procfile() == {"release": ["python", "-m", "bot", "db", "upgrade"], "worker": ["python", "-m", "bot", "run"]}


@pytest.mark.postgres
def test_two_workers_on_postgresql_fetch_each_feed_once_per_interval_and_post_each_alert_once(
    tmp_path: Path, postgres_url: str, servers: tuple[TimedFeedServer, FakeSlack]
) -> None:
    run_two_workers(tmp_path, postgres_url, servers)


def test_two_workers_on_one_sqlite_file_neither_lock_up_nor_double_anything(
    tmp_path: Path, servers: tuple[TimedFeedServer, FakeSlack]
) -> None:
    run_two_workers(tmp_path, f"sqlite:///{tmp_path / 'pressbot.db'}", servers)


# --- 5: kill -9 mid-pass --------------------------------------------------------------------


def test_a_worker_killed_mid_pass_loses_nothing_and_its_successor_doubles_nothing(
    tmp_path: Path, servers: tuple[TimedFeedServer, FakeSlack]
) -> None:
    feed_server, slack = servers
    names = ["k0", "k1", "k2", "k3"]
    for name in names:
        feed_server.add(f"/{name}.xml", rss(name, [(f"{name} flagged", True), (f"{name} plain", False)]))
    feed_server.add("/stuck.xml", rss("stuck", [("stuck plain", False)]), hang=1.5)
    feeds = [{"name": name, "url": feed_server.url(f"/{name}.xml"), "interval": "5s"} for name in [*names, "stuck"]]
    database_url = f"sqlite:///{tmp_path / 'pressbot.db'}"
    lease = 6.0
    env = environment(tmp_path, database_url, slack, feeds, scheduler=f'lease = "{lease:g}s"')

    doomed = Worker(python_run(), env, tmp_path, "doomed")
    wait_for(lambda: bool(feed_server.times["/stuck.xml"]), 30, "the first pass to start")
    time.sleep(0.3)  # the other feeds are fetched, none stored yet: the pass is in flight
    doomed.process.kill()
    killed_at = time.monotonic()
    doomed.process.wait(10)
    assert sum(alert_posts(slack).values()) == 0
    assert db_counts(database_url)["claimed"] == len(feeds)

    successor = Worker(python_run(), env, tmp_path, "successor")
    wait_for(lambda: sum(alert_posts(slack).values()) == len(names), 40, "every alert posted")
    time.sleep(INTERVAL + 1)
    code, _took = successor.stop()
    assert code == 0
    assert_clean_log(successor)

    first_refetch = min(t for name in names for t in feed_server.times[f"/{name}.xml"] if t > killed_at) - killed_at
    assert first_refetch >= lease - 1.0, "the successor respected the dead worker's lease"
    posts = alert_posts(slack)
    assert len(posts) == len(names) and set(posts.values()) == {1}
    counts = db_counts(database_url)
    assert counts["items"] == 2 * len(names) + 1 and counts["alerts"] == {"sent": len(names)}
    print(f"\n[test 5] killed mid-pass with {len(feeds)} feeds claimed; successor refetched after "
          f"{first_refetch:.1f}s (lease {lease:g}s); items {counts['items']}, alerts posted "
          f"{sum(posts.values())} for {len(posts)} alerts")
