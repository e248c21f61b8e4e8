"""`pressbot query` latency on a SQLite archive of 1,000,000 releases (issue 8).

1. Builds the archive through pressbot's own storage code: migrations (so the FTS5
   table and its triggers), ``upsert_items`` and ``record_flags``, in large
   transactions. Synthetic press-release text: a Zipf vocabulary plus the words
   advocates search for; 2% of items flagged icc, 2% reprisal. Reports build time
   and database size.
2. In-process: p50/p95 of ``search_items`` for two-word searches with flag=icc,
   limit=20, each in a fresh session as a command would (target p95 ≤ 50 ms).
3. Whole process: ``pressbot query visa threats --flag icc --limit 20 --format json``
   against ``python -c "import sqlalchemy.orm"``, interleaved in the same run,
   medians (target ratio ≤ 1.3).

    python benchmarks/query.py [--items 1000000] [--db PATH] [--keep] [--queries 300] [--runs 15]
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

import bot
from bot.query import QueryFilters
from bot.records import AlertDecision, FeedSource, FlagMatch, HoldReason, ParsedItem, Route
from bot.schema import Feed
from bot.store import feeds as feed_store
from bot.store import items as item_store
from bot.store import make_engine, make_session_factory
from bot.store.migrate import upgrade
from bot.store.search import search_items

FEEDS = 50
PER_TRANSACTION = 10_000
PER_UPSERT = 1_000
FLAG_SHARE = 0.02
NOW = datetime(2026, 11, 1, tzinfo=UTC)
# Words advocates search for, with the share of releases that contain each.
TOPICAL = {
    "visa": 0.02, "threats": 0.03, "reprisals": 0.02, "sanctions": 0.02, "detention": 0.03,
    "defenders": 0.05, "journalists": 0.04, "court": 0.04, "prosecutor": 0.01, "intimidation": 0.01,
    "human": 0.30, "rights": 0.35, "council": 0.10, "représailles": 0.005, "enquête": 0.005,
}
QUERIES = (
    "visa threats", "reprisals defenders", "sanctions court", "prosecutor intimidation", "detention journalists",
    "human rights", "council sanctions", "représailles enquête", "court prosecutor", "visa defenders",
)
SQLALCHEMY_BASELINE = [sys.executable, "-c", "import sqlalchemy.orm"]


class TextMaker:
    """Deterministic, roughly press-like text: Zipf-distributed filler plus topical words."""

    def __init__(self, seed: int = 8) -> None:
        self.random = random.Random(seed)
        syllables = ["ra", "to", "ne", "si", "lu", "ka", "mo", "de", "vi", "ar", "en", "ol", "us", "tri", "pa"]
        self.words = sorted({"".join(self.random.choices(syllables, k=self.random.randint(2, 4)))
                             for _ in range(30_000)})
        self.weights = [1 / (rank + 1) for rank in range(len(self.words))]

    def words_of(self, count: int) -> list[str]:
        return self.random.choices(self.words, self.weights, k=count)

    def release(self, flagged: bool) -> tuple[str, str, str]:
        body = self.words_of(110)
        for word, share in TOPICAL.items():
            boost = 5 if flagged and word in ("visa", "threats", "court", "prosecutor") else 1
            if self.random.random() < share * boost:
                body.insert(self.random.randrange(len(body)), word)
        title = " ".join(self.words_of(7)).capitalize()
        return title, " ".join(body[:30]), " ".join(body)


def parsed_items(maker: TextMaker, feed_index: int, start: int, count: int) -> Iterator[tuple[ParsedItem, str | None]]:
    for number in range(start, start + count):
        roll = maker.random.random()
        flag = "icc" if roll < FLAG_SHARE else "reprisal" if roll < 2 * FLAG_SHARE else None
        title, teaser, content = maker.release(flag == "icc")
        published = NOW - timedelta(minutes=number * 7 + feed_index)
        item = ParsedItem(key=f"f{feed_index}-{number}", url=f"https://feed{feed_index}.example/{number}",
                          title=title, teaser=teaser, content=content, published=published, updated=None,
                          language="en")
        yield item, flag


def build(session_factory: sessionmaker[Session], total: int) -> None:
    sources = [FeedSource(name=f"Feed {index:02d}", url=f"https://feed{index}.example/rss") for index in range(FEEDS)]
    with session_factory.begin() as session:
        feed_store.sync_feeds(session, sources)
    with session_factory() as session:
        feed_ids = list(session.scalars(select(Feed.id).order_by(Feed.id)))
    maker = TextMaker()
    per_feed = -(-total // FEEDS)
    done = 0
    started = time.perf_counter()
    for feed_index, feed_id in enumerate(feed_ids):
        for start in range(0, min(per_feed, total - done), PER_TRANSACTION):
            count = min(PER_TRANSACTION, per_feed - start, total - done)
            if count <= 0:
                break
            _store_chunk(session_factory, feed_id, list(parsed_items(maker, feed_index, start, count)))
            done += count
        if done >= total:
            break
        rate = done / (time.perf_counter() - started)
        print(f"  {done:>9,} items stored ({rate:,.0f}/s)", file=sys.stderr, flush=True)


def _store_chunk(
    session_factory: sessionmaker[Session], feed_id: int, chunk: list[tuple[ParsedItem, str | None]]
) -> None:
    flags = {item.key: flag for item, flag in chunk if flag}
    with session_factory.begin() as session:
        feed = feed_store.stored_feed(session, feed_id)
        for start in range(0, len(chunk), PER_UPSERT):
            items = [item for item, _ in chunk[start : start + PER_UPSERT]]
            result = item_store.upsert_items(session, feed, items, {}, NOW)
            for stored in result.new:
                flag = flags.get(stored.key)
                if flag:
                    phrase = "International Criminal Court" if flag == "icc" else "reprisals"
                    match = FlagMatch(flag=flag, phrase=phrase, sentence=f"The {phrase} said.", field="content")
                    held = AlertDecision("#alerts", (flag,), Route.DEFAULT, HoldReason.FIRST_PASS)
                    item_store.record_flags(session, stored, [match], [held], now=NOW)
        session.expunge_all()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def measure_in_process(session_factory: sessionmaker[Session], queries: int) -> dict[str, object]:
    timings: dict[str, list[float]] = {query: [] for query in QUERIES}
    counts: dict[str, int] = {}
    for round_number in range(queries + len(QUERIES)):
        query = QUERIES[round_number % len(QUERIES)]
        started = time.perf_counter()
        with session_factory() as session:
            hits = search_items(session, QueryFilters(text=query, flags=("icc",), limit=20))
        elapsed = (time.perf_counter() - started) * 1000
        if round_number >= len(QUERIES):  # the first round warms the page cache
            timings[query].append(elapsed)
        counts[query] = len(hits)
    every = [value for values in timings.values() for value in values]
    return {
        "queries": len(every),
        "p50_ms": round(percentile(every, 0.50), 2),
        "p95_ms": round(percentile(every, 0.95), 2),
        "max_ms": round(max(every), 2),
        "per_query": {query: {"p50_ms": round(percentile(values, 0.5), 2), "p95_ms": round(percentile(values, 0.95), 2),
                              "hits": counts[query]} for query, values in timings.items()},
    }


def measure_process(database_url: str, runs: int) -> dict[str, object]:
    # pip compiles what it installs, SQLAlchemy included; an editable checkout run with
    # PYTHONDONTWRITEBYTECODE set (as on these machines) would recompile pressbot's
    # modules in every process, timing the compiler rather than the query.
    compileall.compile_dir(Path(bot.__file__).parent, quiet=1)
    pressbot = str(Path(sys.executable).with_name("pressbot"))
    command = [pressbot, "query", "visa", "threats", "--flag", "icc", "--limit", "20", "--format", "json"]
    env = {**os.environ, "DATABASE_URL": database_url}
    baseline: list[float] = []
    query: list[float] = []
    for _ in range(runs):  # interleaved, so that load from elsewhere hits both alike
        for argv, into in ((SQLALCHEMY_BASELINE, baseline), (command, query)):
            started = time.perf_counter()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            into.append((time.perf_counter() - started) * 1000)
    return {
        "runs": runs,
        "import_sqlalchemy_orm_median_ms": round(statistics.median(baseline), 1),
        "pressbot_query_median_ms": round(statistics.median(query), 1),
        "ratio": round(statistics.median(query) / statistics.median(baseline), 3),
        # The fastest run of each is the least disturbed by other work on the machine.
        "ratio_of_fastest": round(min(query) / min(baseline), 3),
        "load_average": os.getloadavg()[0],
    }


def database_size(path: Path) -> int:
    return sum(candidate.stat().st_size for candidate in path.parent.glob(path.name + "*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, help="where to build (default: a temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the database; with --db, reuse it if present")
    parser.add_argument("--queries", type=int, default=300, help="in-process searches to time")
    parser.add_argument("--runs", type=int, default=15, help="process runs of each command")
    args = parser.parse_args()
    directory = None if args.db else tempfile.TemporaryDirectory(prefix="pressbot-bench-")
    path = args.db or Path(directory.name) / "archive.db"  # type: ignore[union-attr]
    database_url = f"sqlite:///{path}"
    engine = make_engine(database_url)
    session_factory = make_session_factory(engine)
    report: dict[str, object] = {"items": args.items}
    if not (args.keep and path.exists()):
        started = time.perf_counter()
        upgrade(engine)
        build(session_factory, args.items)
        report["build_seconds"] = round(time.perf_counter() - started, 1)
    raw = engine.raw_connection()  # a checkpoint cannot run inside the BEGIN IMMEDIATE that store opens
    try:
        raw.cursor().execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        raw.close()
    with engine.connect() as connection:
        report["stored_items"] = connection.execute(text("SELECT count(*) FROM items")).scalar_one()
        report["flagged_icc"] = connection.execute(
            text("SELECT count(DISTINCT item_id) FROM flag_matches WHERE flag = 'icc'")).scalar_one()
    report["database_mb"] = round(database_size(path) / 1e6, 1)
    report["in_process"] = measure_in_process(session_factory, args.queries)
    engine.dispose()
    report["process"] = measure_process(database_url, args.runs)
    print(json.dumps(report, indent=2, ensure_ascii=False))
    if directory is not None and not args.keep:
        directory.cleanup()


if __name__ == "__main__":
    main()
