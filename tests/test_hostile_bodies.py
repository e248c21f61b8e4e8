"""Issue 14, items 2, 3 and 5: a body's cost is bounded and linear, whatever its shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from pathlib import Path

from tests.conftest import REPO, write_config
from tests.feedserver import FeedServer
from tests.test_poll import RSS20

# Run a command as a child and report its peak RSS: RUSAGE_CHILDREN covers only it.
_MEASURE = """
import resource, subprocess, sys, time
started = time.monotonic()
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
sys.stderr.write(f"\\nMEASURED seconds={time.monotonic() - started:.2f} peak_mb={peak}\\n")
sys.exit(done.returncode)
"""


def measured_poll(config: Path, database_url: str, cwd: Path) -> tuple[subprocess.CompletedProcess[str], float, int]:
    env = {**os.environ, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": database_url,
           "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "SLACK_BOT_TOKEN": "", "PRESSBOT_FEEDS": "",
           "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, sys.executable, "-m", "bot", "poll", "--json"],
        env=env, capture_output=True, text=True, timeout=300, cwd=cwd,
    )
    figures = dict(part.split("=") for part in done.stderr.rsplit("MEASURED ", 1)[1].split())
    return done, float(figures["seconds"]), int(figures["peak_mb"])


def gzip_bytes(chunks: int, chunk: bytes, level: int = 9) -> bytes:
    compressor = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    parts = [compressor.compress(chunk) for _ in range(chunks)]
    return b"".join(parts) + compressor.flush()


def nested_gzip_bomb(inner_mib: int) -> bytes:
    """``Content-Encoding: gzip, gzip`` around ``inner_mib`` MiB of spaces: a few KB on the wire."""
    return gzip_bytes(1, gzip_bytes(inner_mib, b" " * (1 << 20)))


def test_a_nested_gzip_bomb_fails_its_feed_within_bounded_memory(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    bomb = nested_gzip_bomb(1024)
    assert len(bomb) < 10_000
    feeds = [
        {"name": "Healthy", "url": feed_server.add("/good.xml", RSS20)},
        {"name": "Bomb", "url": feed_server.add("/bomb.xml", bomb, validators=False,
                                                 headers={"Content-Encoding": "gzip, gzip"})},
    ]
    config = write_config(tmp_path, feeds)

    done, seconds, peak_mb = measured_poll(config, sqlite_url, tmp_path)

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    reports = {report["name"]: report for report in summary["feeds_report"]}
    assert reports["Healthy"]["status"] == "ok" and reports["Healthy"]["new_items"] == 3
    assert reports["Bomb"]["status"] == "failed" and "too large" in reports["Bomb"]["error"]
    assert peak_mb < 250, f"peak {peak_mb} MB, {seconds:.1f} s"


def test_stacked_and_concatenated_encodings_still_decode(
    feed_server: FeedServer, tmp_path: Path, sqlite_url: str
) -> None:
    # Two gzip members back to back are one gzip body (RFC 1952 §2.2); deflate may come
    # zlib-wrapped or raw (servers disagree on RFC 9110 §8.4.1.2).
    half = len(RSS20) // 2
    two_members = gzip_bytes(1, RSS20[:half].encode()) + gzip_bytes(1, RSS20[half:].encode())
    raw = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    raw_deflate = raw.compress(RSS20.replace("rw-", "raw-").encode()) + raw.flush()
    feeds = [
        {"name": "Members", "url": feed_server.add("/members.xml", two_members, validators=False,
                                                    headers={"Content-Encoding": "gzip"})},
        {"name": "Stacked", "url": feed_server.add(
            "/stacked.xml", gzip_bytes(1, zlib.compress(RSS20.replace("rw-", "st-").encode())),
            validators=False, headers={"Content-Encoding": "deflate, gzip"})},
        {"name": "Raw", "url": feed_server.add("/raw.xml", raw_deflate, validators=False,
                                                headers={"Content-Encoding": "deflate"})},
    ]
    config = write_config(tmp_path, feeds)

    done, _seconds, _peak = measured_poll(config, sqlite_url, tmp_path)

    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert {r["name"]: (r["status"], r["new_items"]) for r in summary["feeds_report"]} == {
        "Members": ("ok", 3), "Stacked": ("ok", 3), "Raw": ("ok", 3)
    }, summary["feeds_report"]
