"""The worker's memory over many passes: does ``pressbot run`` stay small for months?

    python benchmarks/worker_memory.py [--passes 100] [--feeds 300] [--database-url URL] [--csv FILE]

This process is the worker: it runs the scheduler's own due-feeds and delivery jobs
(``bot.scheduler.Worker``) with a driven clock that jumps one poll interval per pass,
so each pass polls every feed, without waiting 15 minutes between them. A second
process serves the feeds, the release pages and a fake Slack, so that none of their
memory is counted. Between passes it changes a tenth of the feeds (a new release,
teaser only, so its page is fetched; every fifth pass one mentions the ICC and is
posted), and the rest answer 304.

Prints the RSS of this process (VmRSS) after each of the first passes and every tenth,
with the peak PSS of this process plus its parse workers during the pass (sampled every
50 ms), then the peak, and the growth after the first passes. Targets: ≤ 150 MB, and no
growth once the first passes are over.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LIMIT_MB = 150.0
WARM_UP_PASSES = 10
BODY = ("The Special Rapporteur expressed deep concern about the situation of human rights defenders. "
        "Civil society organisations called on the Government to release those detained without charge. ") * 4
FLAGGED = "Judges of the International Criminal Court issued an arrest warrant for the former minister."


def rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def tree_pss_mb(exclude: int | None = None) -> float:
    """PSS of this process and its children (the parse workers; shared pages counted once)."""
    pids = {os.getpid()}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):
            pids.update(int(pid) for pid in (task / "children").read_text().split())
    pids.discard(exclude or 0)  # the server process is not the worker
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as rollup:
            total += next((int(line.split()[1]) for line in rollup if line.startswith("Pss:")), 0)
    return total / 1024


class PeakSampler:
    """The largest ``tree_pss_mb`` seen since the last ``take()``, sampled every 50 ms."""

    def __init__(self, exclude: int | None) -> None:
        self.exclude = exclude
        self.peak = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, tree_pss_mb(self.exclude))

    def take(self) -> float:
        peak, self.peak = max(self.peak, tree_pss_mb(self.exclude)), 0.0
        return peak

    def stop(self) -> None:
        self._stop.set()


# --- the server process -------------------------------------------------------------------


def feed_xml(name: str, items: list[tuple[int, str, str, datetime]]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>{{base}}/page/{name}/{key}</link><guid>{name}-{key}</guid>"
        f"<pubDate>{format_datetime(published, usegmt=True)}</pubDate><description>{text}</description></item>"
        for key, title, text, published in items[-10:]  # a press feed shows its latest releases
    )
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>{name}</title>'
            f"<link>https://{name}.example/</link>{entries}</channel></rss>")


def page_html(title: str, text: str) -> str:
    paragraphs = "".join(f"<p>{text} Paragraph {n} of the release continues with details.</p>" for n in range(8))
    return (f"<html><head><title>{title}</title></head>"
            f"<body><article><h1>{title}</h1>{paragraphs}</article></body></html>")


def serve(conn: Connection, feeds: int) -> None:
    """Feeds, pages and a fake Slack; on each message, change a tenth of the feeds."""
    from tests.fakeslack import FakeSlack
    from tests.feedserver import FeedServer

    server, slack = FeedServer().start(), FakeSlack().start()
    old = datetime(2020, 1, 1, tzinfo=UTC)
    items = {f"feed{n:03d}": [(k, f"Statement {k}", BODY, old - timedelta(days=k)) for k in range(10)]
             for n in range(feeds)}

    def publish(name: str) -> None:
        server.add(f"/{name}.xml", feed_xml(name, items[name]).replace("{base}", server.base))

    for name in items:
        publish(name)
    conn.send((server.base, slack.url, slack.token))
    while (message := conn.recv()) != "stop":
        number, now = message
        for name in list(items)[number % 10 :: 10]:
            key = len(items[name]) + 100
            flagged = name == f"feed{(number * 7) % feeds:03d}" and number % 5 == 0
            title = f"Release {key} of {name}"
            teaser = FLAGGED if flagged else "Short teaser."
            items[name].append((key, title, teaser, now))
            server.add(f"/page/{name}/{key}", page_html(title, teaser), content_type="text/html")
            publish(name)
        conn.send(len(slack.posts()))
    server.stop()
    slack.stop()


# --- the worker (this process) ------------------------------------------------------------


def write_config(directory: Path, base: str, feeds: int) -> Path:
    shipped = (REPO / "config" / "pressbot.toml").read_text(encoding="utf-8")
    flags = shipped[shipped.find("\n[flags") :]
    (directory / "feeds.toml").write_text(
        "".join(f'[[feeds]]\nname = "feed{n:03d}"\nurl = "{base}/feed{n:03d}.xml"\n\n' for n in range(feeds)),
        encoding="utf-8",
    )
    config = directory / "pressbot.toml"
    config.write_text('feeds = "feeds.toml"\n[poll]\ninterval = "15m"\n' + flags, encoding="utf-8")
    return config


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def run(passes: int, feeds: int, database_url: str | None, csv: Path | None) -> int:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    server = context.Process(target=serve, args=(child, feeds), daemon=True)
    server.start()
    base, slack_url, token = parent.recv()
    with tempfile.TemporaryDirectory(prefix="pressbot-bench-") as tmp:
        directory = Path(tmp)
        config = write_config(directory, base, feeds)
        env = {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": database_url or f"sqlite:///{directory / 'bench.db'}",
               "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "SLACK_BOT_TOKEN": token, "SLACK_API_URL": slack_url}
        curve = drive(env, passes, parent, server.pid)
    parent.send("stop")
    server.join(10)
    return report(curve, feeds, csv)


Row = tuple[int, float, float, float, int, int]  # pass, RSS MB, tree PSS MB, seconds, feeds, alerts so far


def drive(env: dict[str, str], passes: int, server: Connection, server_pid: int | None) -> list[Row]:
    """Run the passes and measure each."""
    from bot.cli.stages import load_page_stages
    from bot.config import load
    from bot.scheduler.worker import Worker
    from bot.store import make_engine, make_session_factory
    from bot.store.migrate import upgrade

    settings = load(env)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    clock = Clock()
    worker = Worker(
        settings, make_session_factory(engine), page_stages=load_page_stages, clock=clock, echo=lambda text: None
    )
    worker.sync_feeds()
    curve: list[Row] = []
    sampler = PeakSampler(exclude=server_pid)
    for number in range(1, passes + 1):
        started = time.monotonic()
        polled = worker.run_due()
        worker.deliver()
        seconds = time.monotonic() - started
        clock.now += timedelta(minutes=15, seconds=1)
        server.send((number, clock.now))
        posted = server.recv()
        curve.append((number, rss_mb(), sampler.take(), seconds, polled, posted))
        if number <= 5 or number % 10 == 0 or number == passes:
            print(f"pass {number:4d}: RSS {curve[-1][1]:6.1f} MB (with parse workers, PSS peak "
                  f"{curve[-1][2]:6.1f} MB)  {seconds:5.2f} s  {polled} feeds  {posted} alerts posted so far",
                  flush=True)
    sampler.stop()
    engine.dispose()
    return curve


def report(curve: list[Row], feeds: int, csv: Path | None) -> int:
    if csv:
        csv.write_text("pass,rss_mb,tree_pss_mb,seconds,feeds,alerts_posted\n"
                       + "".join(f"{n},{r:.1f},{t:.1f},{s:.3f},{f},{a}\n" for n, r, t, s, f, a in curve),
                       encoding="utf-8")
    rss = [row[1] for row in curve]
    warm = min(WARM_UP_PASSES, len(rss))
    half = len(rss) // 2
    growth = rss[-1] - rss[warm - 1]
    tree = max(row[2] for row in curve)
    print(f"\n{len(curve)} passes over {feeds} feeds: peak RSS {max(rss):.1f} MB (target ≤ {LIMIT_MB:g}); "
          f"pass 1: {rss[0]:.1f} MB, pass {warm}: {rss[warm - 1]:.1f} MB, last: {rss[-1]:.1f} MB; "
          f"growth after pass {warm}: {growth:+.1f} MB, over the second half: {rss[-1] - rss[half - 1]:+.1f} MB; "
          f"peak with parse workers (PSS): {tree:.1f} MB; "
          f"median pass {sorted(row[3] for row in curve)[len(curve) // 2]:.2f} s")
    return 0 if max(rss) <= LIMIT_MB and growth <= 5.0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--passes", type=int, default=100)
    parser.add_argument("--feeds", type=int, default=300)
    parser.add_argument("--database-url", help="default: a temporary SQLite file")
    parser.add_argument("--csv", type=Path, help="write the whole curve here")
    args: Any = parser.parse_args(argv)
    return run(args.passes, args.feeds, args.database_url, args.csv)


if __name__ == "__main__":
    sys.exit(main())
