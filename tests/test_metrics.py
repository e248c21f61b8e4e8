"""``pressbot run`` with ``PRESSBOT_METRICS_PORT``: Prometheus ``/metrics`` and ``/healthz``, scraped live.

A real worker process polls a local feed (the three releases, and a feed answering
404) every 5 s; the test scrapes what a Prometheus server would, sees the counters
move after a pass, and sees ``/healthz`` turn 503 once passes stop (the database made
read-only) for more than twice the poll interval.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import WorkerMetrics, error_kind
from bot.records import PassCounts
from tests.conftest import write_config
from tests.deployfeed import serve_releases
from tests.feedserver import FeedServer
from tests.helpers import immutable, pressbot, pressbot_env, wait_until

METRICS_AT = re.compile(r"metrics and health check on (http://127\.0\.0\.1:(\d+))/metrics")


def scrape(base: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"{base}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def health(base: str) -> int:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=5) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.slow
def test_a_running_worker_serves_metrics_that_move_and_a_health_check_that_goes_stale(
    sqlite_url: str, tmp_path: Path
) -> None:
    server = FeedServer().start()
    releases = serve_releases(server)
    missing = server.add("/gone.xml", "not here", status=404)
    config = write_config(tmp_path, [{"name": "Releases", "url": releases, "interval": "5s"},
                                     {"name": "Missing", "url": missing, "interval": "5s"}],
                          extra='[scheduler]\nbackoff_max = "2s"\nheartbeat = "1h"\n')
    env = {"DATABASE_URL": sqlite_url, "PRESSBOT_CONFIG": str(config), "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
           "PRESSBOT_METRICS_PORT": "0"}
    err = tmp_path / "worker.err"
    with err.open("wb") as stderr:
        worker = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, stderr=stderr,
                                  stdout=subprocess.DEVNULL, env=pressbot_env(env))
    try:
        wait_until(lambda: METRICS_AT.search(err.read_text()), 30, "the metrics server")
        match = METRICS_AT.search(err.read_text())
        assert match
        base = match.group(1)
        wait_until(lambda: value(scrape(base), "pressbot_items_stored_total", change="new") == 3, 30, "a pass")
        first = scrape(base)
        assert health(base) == 200
        wait_until(lambda: server.hits["/releases.xml"] >= 2, 15, "the next poll of the feed")
        wait_until(lambda: value(scrape(base), "pressbot_feeds_polled_total", outcome="not_modified") >= 1, 10,
                   "the second pass to be counted")
        later = scrape(base)

        # A running worker writes through its open connection into the -wal file: freeze that too.
        database = Path(sqlite_url.removeprefix("sqlite:///"))
        with ExitStack() as frozen:
            for path in (database, database.with_name(database.name + "-wal")):
                if path.exists():
                    frozen.enter_context(immutable(path))
            stopped = time.monotonic()
            wait_until(lambda: health(base) == 503, 25, "/healthz to turn 503")
            stale_after = time.monotonic() - stopped
            failed = value(scrape(base), "pressbot_passes_total", result="failed")
        worker.send_signal(signal.SIGTERM)
        code = worker.wait(timeout=25)
    finally:
        if worker.poll() is None:
            worker.kill()
        server.stop()

    assert value(first, "pressbot_passes_total", result="ok") >= 1
    assert value(later, "pressbot_passes_total", result="ok") > value(first, "pressbot_passes_total", result="ok")
    assert value(later, "pressbot_feeds_polled_total", outcome="fetched") >= 1
    assert value(later, "pressbot_fetch_errors_total", kind="http_status") >= 2  # the 404 feed, each pass
    assert value(later, "pressbot_fetch_errors_total", kind="http_status") > value(
        first, "pressbot_fetch_errors_total", kind="http_status")
    assert value(later, "pressbot_feeds", status="ok") == 1 and value(later, "pressbot_failing_feeds") == 1
    assert value(later, "pressbot_alerts", status="pending") == 2  # no Slack token: the two flagged releases
    assert value(later, "pressbot_last_pass_finished_timestamp_seconds") > value(
        first, "pressbot_last_pass_finished_timestamp_seconds") > 0
    assert ("pressbot_last_pass_duration_seconds", ()) in later
    assert failed >= 1 and 9 <= stale_after <= 20  # twice the 5 s interval, plus a try or two
    assert code == 0, err.read_text()
    passes = value(later, "pressbot_passes_total", result="ok")
    print(f"\n/healthz 503 {stale_after:.1f} s after passes stopped; passes ok {passes:.0f}, failed {failed:.0f}")


def test_without_the_port_no_metrics_server_starts(sqlite_url: str, tmp_path: Path) -> None:
    from bot.config import load

    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    settings = load({"PRESSBOT_CONFIG": str(config), "DATABASE_URL": sqlite_url})
    assert settings.metrics_port is None and settings.metrics_host == "127.0.0.1"
    widened = load({"PRESSBOT_CONFIG": str(config), "PRESSBOT_METRICS_PORT": "9108",
                    "PRESSBOT_METRICS_HOST": "0.0.0.0"})
    assert (widened.metrics_port, widened.metrics_host) == (9108, "0.0.0.0")


@pytest.mark.parametrize("port", ["http", "-1", "70000"], ids=["word", "negative", "too-big"])
def test_a_bad_metrics_port_is_one_line_exit_2(tmp_path: Path, port: str) -> None:
    config = write_config(tmp_path, [{"name": "A", "url": "https://a.example/feed"}])
    done = pressbot("run", env={"PRESSBOT_CONFIG": str(config), "PRESSBOT_METRICS_PORT": port,
                                "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}, cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.strip().splitlines() == [
        f"pressbot: error: PRESSBOT_METRICS_PORT: {port!r} is not a port number (0-65535; 0 picks a free one)"]


def test_health_is_stale_after_twice_the_interval_and_error_kinds_are_few() -> None:
    now = [1000.0]
    metrics = WorkerMetrics(poll_interval_seconds=5, clock=lambda: now[0])
    assert metrics.health()[0] is False  # no pass yet
    metrics.pass_finished(0.2)
    now[0] += 10
    assert metrics.health()[0] is True
    now[0] += 0.5
    assert metrics.health() == (False, "the last pass finished 10s ago (limit 10s)")
    kinds = {error_kind(text) for text in ("HTTP 503", "timeout (ReadTimeout)", "TLS error: x", "DNS lookup failed",
                                           "refused: 10.0.0.1", "body too large: 9", "not a feed", "ConnectError: x",
                                           "storing failed: x", "something new")}
    assert kinds == {"http_status", "timeout", "tls", "dns", "refused", "too_large", "parse", "connection", "store",
                     "other"}


def test_every_pass_counter_is_a_metric_under_its_own_name() -> None:
    counts = {name: index + 1 for index, name in enumerate(PassCounts().counts())}
    metrics = WorkerMetrics(poll_interval_seconds=5)
    metrics.record_counts(counts)
    metrics.record_counts({**counts, "widgets_seen": 7})  # a counter PassCounts does not have yet
    samples = {sample.labels["count"]: sample.value for family in metrics.registry.collect()
               for sample in family.samples if sample.name == "pressbot_pass_counts_total"}
    assert samples == {**{name: 2.0 * count for name, count in counts.items()}, "widgets_seen": 7.0}
