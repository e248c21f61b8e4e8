"""Cost against size for hostile inputs (issue 14): big releases, a nested gzip bomb, a huge feed.

    python benchmarks/hostile.py [--sizes 0.1,1,10] [--bomb-mib 1024] [--entries 100000]
                                 [--postgres postgresql://postgres@127.0.0.1:5432/test] [--timeout 600]

Each case is one ``python -m bot poll --json`` process on a fresh database (full text
off, Slack off) against a local server on 127.0.0.1, run as the only child of a small
wrapper so that ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that process's peak RSS:

- release N MB: one RSS item whose description is N MB of prose in one paragraph
  (no blank line: the worst case for sentence splitting), and one of N MB of one word;
  the pipeline parses, stores, detects the language, summarises and flags it;
- bomb: ``Content-Encoding: gzip, gzip`` around ``--bomb-mib`` MiB of spaces (a few KB on
  the wire), next to a healthy feed that must still be stored;
- entries: one feed of ``--entries`` items (on SQLite, and on PostgreSQL with --postgres).

Targets: a 10 MB release in a few seconds and under 250 MB; the bomb under 250 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import uuid
import zlib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.feedserver import FeedServer  # noqa: E402

SENTENCES = (
    "The Special Rapporteur expressed deep concern about reprisals against human rights defenders. "
    "Civil society organisations called on the Government to release those detained without charge. "
    "The International Criminal Court issued a warrant for the arrest of the former minister. "
)
MEASURE = """
import resource, subprocess, sys, time
started = time.monotonic()
try:
    done = subprocess.run(sys.argv[2:], capture_output=True, text=True, timeout=float(sys.argv[1]))
    code, out = done.returncode, done.stdout
except subprocess.TimeoutExpired:
    code, out = "timeout", ""
usage = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{time.monotonic() - started:.2f} {usage.ru_maxrss // 1024} {code} {usage.ru_utime + usage.ru_stime:.2f}")
print(out)
"""


def rss(items: list[tuple[str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{title}</title><link>https://example.org/{index}</link><guid>g{index}</guid>"
        f"<pubDate>Mon, 02 Nov 2026 10:00:00 GMT</pubDate><description>{text}</description></item>"
        for index, (title, text) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Bench</title>{entries}</channel></rss>'.encode()


def gzip_bytes(chunks: int, chunk: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    return b"".join(compressor.compress(chunk) for _ in range(chunks)) + compressor.flush()


def poll(server: FeedServer, feeds: dict[str, str], database_url: str, timeout: float,
         max_bytes: int = 12_000_000) -> tuple[float, int, str, float, dict[str, object]]:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory)
        blocks = [f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n' for name, url in feeds.items()]
        (path / "feeds.toml").write_text("\n".join(blocks), encoding="utf-8")
        flags = (REPO / "config" / "pressbot.toml").read_text(encoding="utf-8")
        flags = flags[flags.find("\n[flags"):]
        (path / "pressbot.toml").write_text(
            f'feeds = "feeds.toml"\n[poll]\ntimeout = "{timeout:g}s"\nmax_bytes = {max_bytes}\n'
            f"[fulltext]\nenabled = false\n{flags}", encoding="utf-8")
        env = {**os.environ, "PRESSBOT_CONFIG": str(path / "pressbot.toml"), "DATABASE_URL": database_url,
               "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "SLACK_BOT_TOKEN": "", "PRESSBOT_FEEDS": "",
               "PYTHONPATH": str(REPO)}
        if database_url.startswith("sqlite"):
            env["DATABASE_URL"] = f"sqlite:///{path / 'bench.db'}"
        done = subprocess.run([sys.executable, "-c", MEASURE, str(timeout), sys.executable, "-m", "bot", "poll",
                               "--json"], env=env, capture_output=True, text=True, cwd=path)
        first, _, rest = done.stdout.partition("\n")
        seconds, peak, code, cpu = first.split()
        lines = rest.strip().splitlines()
        summary = json.loads(lines[-1]) if code == "0" and lines else {}
        return float(seconds), int(peak), code, float(cpu), summary


def report(label: str, seconds: float, peak: int, code: str, cpu: float, summary: dict[str, object]) -> None:
    reports = summary.get("feeds_report") or []
    outcome = "; ".join(f"{r['name']}: {r['status']} {r.get('new_items', 0)} new {r.get('error') or ''}".strip()
                        for r in reports)  # type: ignore[union-attr]
    # CPU (user + system of the poll and its children): what the case costs on a busy machine.
    print(f"{label:<34} {seconds:8.2f} s {cpu:7.2f} s {peak:7d} MB  exit {code}  {outcome[:100]}", flush=True)


def postgres_database(admin_url: str) -> tuple[str, str]:
    import psycopg

    name = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    return admin_url.rsplit("/", 1)[0] + f"/{name}", name


def drop_database(admin_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="0.1,1,10", help="release sizes in MB")
    parser.add_argument("--bomb-mib", type=int, default=1024)
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server (a database is created and dropped)")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before a case is called off")
    parser.add_argument("--only", default="", help="comma-separated: release,word,bomb,entries")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    server = FeedServer().start()
    print(f"{'case':<34} {'time':>10} {'CPU':>9} {'peak RSS':>10}")
    for size in (float(s) for s in args.sizes.split(",")):
        chars = int(size * 1_000_000)
        if not only or "release" in only:
            text = (SENTENCES * (chars // len(SENTENCES) + 1))[:chars]
            server.add(f"/prose{size}.xml", rss([("A long release", text)]), validators=False)
            report(f"release {size:g} MB, prose", *poll(server, {"Prose": server.url(f"/prose{size}.xml")},
                                                          "sqlite", args.timeout))
        if not only or "word" in only:
            server.add(f"/word{size}.xml", rss([("One word", "a" * chars)]), validators=False)
            report(f"release {size:g} MB, one word", *poll(server, {"Word": server.url(f"/word{size}.xml")},
                                                             "sqlite", args.timeout))
    if not only or "bomb" in only:
        bomb = gzip_bytes(1, gzip_bytes(args.bomb_mib, b" " * (1 << 20)))
        server.add("/bomb.xml", bomb, validators=False, headers={"Content-Encoding": "gzip, gzip"})
        server.add("/healthy.xml", rss([("Healthy", "Nothing to see.")]), validators=False)
        feeds = {"Bomb": server.url("/bomb.xml"), "Healthy": server.url("/healthy.xml")}
        report(f"gzip,gzip bomb {len(bomb)} B -> {args.bomb_mib} MiB", *poll(server, feeds, "sqlite", args.timeout))
    if not only or "entries" in only:
        body = rss([(f"Release {n}", f"Short text number {n}.") for n in range(args.entries)])
        server.add("/many.xml", body, validators=False)
        report(f"{args.entries} entries, SQLite", *poll(server, {"Many": server.url("/many.xml")}, "sqlite",
                                                         args.timeout, max_bytes=len(body) + 1))
        if args.postgres:
            url, name = postgres_database(args.postgres)
            try:
                report(f"{args.entries} entries, PostgreSQL", *poll(server, {"Many": server.url("/many.xml")}, url,
                                                                     args.timeout, max_bytes=len(body) + 1))
            finally:
                drop_database(args.postgres, name)
    server.stop()


if __name__ == "__main__":
    main()
