"""``pressbot run`` against a database that cannot be written: one line per failed pass, backing off.

The worker starts on a read-only database (SQLite: ``chattr +i``, which stops root
too; PostgreSQL: ``default_transaction_read_only``), logs one line per try while the
tries back off up to ``scheduler.backoff_max``, polls again by itself once the database
is writable, and still stops with exit 0 within 20 s of SIGTERM while it is read-only.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.conftest import write_config
from tests.deployfeed import serve_releases
from tests.feedserver import FeedServer
from tests.helpers import pressbot, pressbot_env, shown, unwritable, wait_until

pytestmark = pytest.mark.slow

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<level>[A-Z]+) (?P<logger>[\w.]+): (?P<message>.*)$")


def cause(database_url: str) -> str:
    return ("attempt to write a readonly database" if database_url.startswith("sqlite")
            else "cannot execute [A-Z ]+ in a read-only transaction")


def lines_of(path: Path) -> list[re.Match[str]]:
    text = path.read_text(encoding="utf-8")
    assert "Traceback" not in text, text
    matches = [LOG_LINE.match(line) for line in text.splitlines()]
    assert all(matches), text  # nothing but log lines, each on one line
    return [match for match in matches if match]


def test_run_on_an_unwritable_database_logs_one_line_per_pass_backs_off_and_recovers(
    database_url: str, tmp_path: Path
) -> None:
    server = FeedServer().start()
    feed = serve_releases(server)
    config = write_config(tmp_path, [{"name": "Releases", "url": feed, "interval": "5s"}],
                          extra='[scheduler]\nbackoff_max = "4s"\nheartbeat = "1h"\n')
    env = {"DATABASE_URL": database_url, "PRESSBOT_CONFIG": str(config), "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1"}
    assert pressbot("db", "upgrade", env=env, cwd=tmp_path).returncode == 0
    err = tmp_path / "worker.err"
    failure = re.compile(rf"(?:pass failed|database {re.escape(shown(database_url))} cannot be written)")
    pass_line = re.compile(rf"pass failed: database {re.escape(shown(database_url))} cannot be written: "
                           rf"{cause(database_url)}; passes paused, next try in (\d+)s")
    with ExitStack() as stack:
        stack.enter_context(unwritable(database_url))
        with err.open("wb") as stderr:
            worker = subprocess.Popen([sys.executable, "-m", "bot", "run"], cwd=tmp_path, stderr=stderr,
                                      stdout=subprocess.DEVNULL, env=pressbot_env(env))
        try:
            time.sleep(10)
            during = lines_of(err)
            # Writable again: the worker finds out by itself at its next try.
            stack.close()
            recovered_at = time.monotonic()
            wait_until(lambda: server.hits["/releases.xml"] >= 1, 15, "the feed to be polled after recovery")
            wait_until(lambda: any("passes resumed" in m["message"] for m in lines_of(err)), 5, "the recovery line")
            recovery = time.monotonic() - recovered_at
            # Read-only again, then SIGTERM: still a clean exit within 20 s.
            with unwritable(database_url):
                time.sleep(3)
                stopping = time.monotonic()
                worker.send_signal(signal.SIGTERM)
                code = worker.wait(timeout=25)
                took = time.monotonic() - stopping
        finally:
            if worker.poll() is None:
                worker.kill()
            server.stop()

    failures = [m for m in during if failure.search(m["message"])]
    passes = [m for m in failures if pass_line.fullmatch(m["message"])]
    assert failures and all(m["level"] == "ERROR" for m in failures)
    assert len(failures) - len(passes) <= 1  # the start-up line, once
    delays = [int(pass_line.fullmatch(m["message"]).group(1)) for m in passes]  # type: ignore[union-attr]
    assert delays == sorted(delays) and max(delays) <= 4, delays  # doubling, capped at backoff_max
    assert len(passes) <= 10 / 2 + 1  # one line per try, tries at least 2 s apart; a tick is 1 s
    assert all(m["level"] in ("INFO", "WARNING", "ERROR") for m in during)
    assert len(during) <= len(failures) + 6  # start-up lines; nothing else repeats
    assert server.hits["/releases.xml"] >= 1 and recovery < 10
    assert (code, took < 20) == (0, True), err.read_text()
    print(f"\n[{database_url.split(':')[0]}] 10 s read-only: {len(during)} log lines, {len(passes)} failed passes "
          f"(delays {delays} s); recovered {recovery:.1f} s after it became writable; "
          f"SIGTERM exit {code} in {took:.1f} s")
