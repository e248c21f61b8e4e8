"""The cost of grouping copies (issue 18): one pass over 10,000 stored releases, with and without.

    python benchmarks/grouping.py [--archive 10000] [--feeds 20] [--items 20] [--runs 3]

A SQLite archive of ``--archive`` releases stored this week (all inside
``alerts.group_window``, the worst case: every one is a candidate by date), each with
its MinHash band keys, is built once. Then ``pressbot poll --dry-run`` runs on a fresh
copy of it, against a local server whose ``--feeds`` feeds each list ``--items`` new
releases (one in ten a copy of an archived release of another feed), once with
grouping on and once with ``group_window = "0"``; rounds alternate, and each side
keeps its fastest run (the least disturbed). Printed: both wall times and their ratio,
which the issue wants within 1.10; then the same for CPU time, of the whole pass (the
poll and its parse workers) and of the poll's own process (where grouping runs). On a
machine others load, wall time counts their work too; CPU time mostly does not.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot import group, tables  # noqa: E402
from bot.store import make_engine  # noqa: E402
from bot.store.migrate import upgrade  # noqa: E402

TARGET = 1.10


def vocabulary(rng: random.Random, size: int = 3000) -> list[str]:
    letters = "abcdefghijklmnopqrstuvwxyz"
    return ["".join(rng.choice(letters) for _ in range(rng.randint(3, 10))) for _ in range(size)]


def release_text(rng: random.Random, words: list[str]) -> str:
    paragraphs = [" ".join(rng.choices(words, k=rng.randint(30, 60))) + "." for _ in range(rng.randint(3, 6))]
    return "\n\n".join(paragraphs)


def build_archive(path: Path, feed_urls: list[str], size: int, rng: random.Random, words: list[str]) -> list[str]:
    """The archive database; returns its texts (the new releases copy some)."""
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    now = datetime.now(UTC)
    texts = [release_text(rng, words) for _ in range(size)]
    with engine.begin() as connection:
        connection.execute(
            tables.feeds.insert(),
            [{"name": f"ngo{n}", "url": url, "configured_url": url, "tags": [], "enabled": True,
              "full_text": False, "consecutive_failures": 0, "first_polled_at": now - timedelta(days=30)}
             for n, url in enumerate(feed_urls)],
        )
        rows = []
        for index, text in enumerate(texts):
            seen = now - timedelta(minutes=rng.randint(10, 6 * 24 * 60))
            rows.append({
                "id": index + 1, "feed_id": index % len(feed_urls) + 1, "key": f"archive-{index}",
                "url": f"https://archive.example/{index}", "title": f"Archived release {index}", "teaser": "",
                "content": text, "content_hash": f"h{index}", "first_seen_at": seen, "changed_at": seen,
                "published_at": seen, "flags": [], "full_text_attempts": 0,
            })
        connection.execute(tables.items.insert(), rows)
        bands = [
            {"item_id": index + 1, "band_key": key}
            for index, text in enumerate(texts)
            for key in group.band_keys(group.shingles(text))
        ]
        connection.execute(tables.item_bands.insert(), bands)
    engine.dispose()
    return texts


def make_feeds(feeds: int, items: int, archive: list[str], rng: random.Random, words: list[str]) -> list[bytes]:
    now = datetime.now(UTC)
    bodies = []
    for number in range(feeds):
        entries = []
        for index in range(items):
            # One in ten: a release another feed published, as this feed reposts it.
            copied = rng.random() < 0.1
            source = rng.randrange(len(archive))
            if copied and source % feeds == number:
                source = (source + 1) % len(archive)
            text = archive[source] if copied else release_text(rng, words)
            html = "".join(f"<p>{escape(p)}</p>" for p in text.split("\n\n"))
            entries.append(
                f"<item><title>New release {number}-{index}</title>"
                f"<link>https://ngo{number}.example.org/new/{index}</link><guid>ngo{number}-new-{index}</guid>"
                f"<pubDate>{format_datetime(now - timedelta(minutes=index))}</pubDate>"
                f"<description><![CDATA[{html}]]></description></item>"
            )
        bodies.append(
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>NGO {number}</title>{"".join(entries)}'
            "</channel></rss>".encode()
        )
    return bodies


def serve(bodies: list[bytes], pipe: Any) -> None:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            body = bodies[int(self.path.removeprefix("/feed/").removesuffix(".xml"))]
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    pipe.send(server.server_address[1])
    server.serve_forever()


def write_config(directory: Path, urls: list[str], grouping: bool) -> Path:
    feeds = "\n".join(f'[[feeds]]\nname = "ngo{n}"\nurl = "{url}"\n' for n, url in enumerate(urls))
    (directory / "feeds.toml").write_text(feeds, encoding="utf-8")
    shipped = (REPO / "config" / "pressbot.toml").read_text(encoding="utf-8")
    rules = shipped[shipped.find("\n[flags"):]
    window = "7d" if grouping else "0"
    config = directory / "pressbot.toml"
    config.write_text(
        f'feeds = "feeds.toml"\n[alerts]\ngroup_window = "{window}"\n[fulltext]\nenabled = false\n{rules}',
        encoding="utf-8",
    )
    return config


# Runs ``python -m bot`` and reports, at exit, the CPU time of its own process (the parse
# workers leave with os._exit, and report nothing).
_POLL = '''
import atexit, resource, runpy, sys
def _report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    sys.stderr.write(f"\\nself-cpu {usage.ru_utime + usage.ru_stime}\\n")
atexit.register(_report)
sys.argv[0] = "bot"
runpy.run_module("bot", run_name="__main__", alter_sys=True)
'''


@dataclass(frozen=True)
class Timing:
    wall: float
    cpu: float  # the poll and the parse workers it waited for
    main_cpu: float  # the poll's own process


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_pass(directory: Path, archive: Path, urls: list[str], grouping: bool) -> tuple[Timing, dict[str, Any]]:
    database = directory / ("with.db" if grouping else "without.db")
    shutil.copy(archive, database)
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("PRESSBOT_", "SLACK_", "DATABASE_URL"))},
        "PRESSBOT_CONFIG": str(write_config(directory, urls, grouping)),
        "DATABASE_URL": f"sqlite:///{database}",
        "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
    }
    started, cpu = time.perf_counter(), _children_cpu()
    done = subprocess.run(
        [sys.executable, "-c", _POLL, "poll", "--dry-run", "--json"], env=env, cwd=directory,
        capture_output=True, text=True, check=True,
    )
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    main_cpu = float(done.stderr.rsplit("self-cpu ", 1)[1].split()[0])
    return Timing(seconds, cpu, main_cpu), json.loads(done.stdout.strip().splitlines()[-1])


def grouped_count(directory: Path) -> int:
    engine = make_engine(f"sqlite:///{directory / 'with.db'}")
    with engine.connect() as connection:
        from sqlalchemy import func, select

        count = connection.scalar(
            select(func.count()).select_from(tables.items).where(
                tables.items.c.group_id.is_not(None), tables.items.c.group_id != tables.items.c.id
            )
        )
    engine.dispose()
    return int(count or 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=int, default=10_000)
    parser.add_argument("--feeds", type=int, default=20)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=18)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    words = vocabulary(rng)
    with tempfile.TemporaryDirectory(prefix="pressbot-grouping-") as temp:
        directory = Path(temp)
        receive, send = multiprocessing.Pipe(duplex=False)
        # The archive comes first (the new feeds copy from it), then the server serves them.
        archive = directory / "archive.db"
        placeholder = [f"http://127.0.0.1:0/feed/{n}.xml" for n in range(args.feeds)]
        started = time.perf_counter()
        archive_texts = build_archive(archive, placeholder, args.archive, rng, words)
        built = time.perf_counter() - started
        bodies = make_feeds(args.feeds, args.items, archive_texts, rng, words)
        server = multiprocessing.get_context("fork").Process(target=serve, args=(bodies, send), daemon=True)
        server.start()
        port = receive.recv()
        urls = [f"http://127.0.0.1:{port}/feed/{n}.xml" for n in range(args.feeds)]
        try:
            timings: dict[bool, list[Timing]] = {True: [], False: []}
            summaries: dict[bool, dict[str, Any]] = {}
            for _ in range(args.runs):
                for grouping in (False, True):
                    timing, summaries[grouping] = one_pass(directory, archive, urls, grouping)
                    timings[grouping].append(timing)
            copies = grouped_count(directory)
        finally:
            server.terminate()
    new = summaries[True]["new_items"]
    print(f"archive: {args.archive} releases with band keys (built in {built:.1f}s); "
          f"pass: {args.feeds} feeds, {new} new releases, {copies} grouped as copies")
    for label, measure in (("wall", "wall"), ("CPU", "cpu"), ("main CPU", "main_cpu")):
        runs = {side: [getattr(timing, measure) for timing in timings[side]] for side in (False, True)}
        with_grouping, without = min(runs[True]), min(runs[False])
        print(f"{label:>8} without grouping: {without:.2f}s  (runs: {', '.join(f'{t:.2f}' for t in runs[False])})")
        print(f"{label:>8} with grouping:    {with_grouping:.2f}s  (runs: {', '.join(f'{t:.2f}' for t in runs[True])})")
        ratio = with_grouping / without
        verdict = f" (target ≤ {TARGET:.2f}: {'ok' if ratio <= TARGET else 'MISSED'})" if measure == "wall" else ""
        print(f"{label:>8} ratio with/without: {ratio:.3f}{verdict}")
    print(f"load average at the end: {', '.join(f'{load:.2f}' for load in os.getloadavg())}")

if __name__ == "__main__":
    main()
