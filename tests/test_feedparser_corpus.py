"""feedparser's own 2,248 test files through our parse stage: a typed result or a typed error each.

The files come from feedparser's sdist (``pip download --no-binary :all: --no-deps
feedparser==<installed>``), cached in ``~/.cache/pressbot-tests`` (or
``$PRESSBOT_TEST_CACHE``); nothing is vendored. Without pip or the registry the test
skips, unless ``PRESSBOT_REQUIRE_SLOW=1`` (CI), where it fails.

Each ``.xml`` file is parsed with the Content-Type its ``Header:`` comment lines
simulate, as a fetched body would be. The ``.gz`` and ``.z`` files are HTTP bodies
that feedparser's test server sends with ``Content-Encoding: gzip`` / ``deflate``: in
pressbot httpx decodes those before parse ever sees them, so here they go through
httpx's own decoders first, and a body httpx cannot decode counts as what the fetch
stage would record, a fetch error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from bot.errors import ParseError
from bot.parse import parse_feed
from bot.records import ParsedFeed

pytestmark = pytest.mark.slow

FEEDPARSER = version("feedparser")
EXPECTED_FILES = 2248
TEST_FILE = re.compile(r"^[^/]+/tests/.+\.(xml|gz|z)$")
HEADER_LINE = re.compile(rb"^Header:\s*([\w-]+):\s*(.*?)\s*$", re.MULTILINE)
BASE = "http://127.0.0.1:8097/"  # where feedparser's own test server serves them


def _unavailable(reason: str) -> None:
    if os.environ.get("PRESSBOT_REQUIRE_SLOW") == "1":
        pytest.fail(f"PRESSBOT_REQUIRE_SLOW=1 but {reason}")
    pytest.skip(reason)


def _cache_dir() -> Path:
    default = Path.home() / ".cache" / "pressbot-tests"
    return Path(os.environ.get("PRESSBOT_TEST_CACHE", default))


def feedparser_sdist() -> Path:
    """The sdist of the installed feedparser, downloaded once."""
    directory = _cache_dir()
    found = sorted(directory.glob(f"feedparser-{FEEDPARSER}.tar.gz"))
    if found:
        return found[0]
    directory.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "pip", "download", "--no-binary", ":all:", "--no-deps"]
    command += ["--quiet", "--dest", str(directory), f"feedparser=={FEEDPARSER}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _unavailable(f"pip download of feedparser=={FEEDPARSER} failed: {exc}")
    found = sorted(directory.glob(f"feedparser-{FEEDPARSER}.tar.gz"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        _unavailable(f"pip download of feedparser=={FEEDPARSER} failed: {last}")
    return found[0]


def corpus_files(sdist: Path) -> dict[str, bytes]:
    """``tests/…`` path → bytes, read from the tarball without extracting it."""
    files: dict[str, bytes] = {}
    with tarfile.open(sdist) as tar:
        for member in tar:
            if member.isfile() and TEST_FILE.match(member.name):
                data = tar.extractfile(member)
                assert data is not None
                files[member.name.split("/", 1)[1]] = data.read()
    return files


def simulated_headers(body: bytes) -> dict[str, str]:
    """The ``Header:`` lines of a test file's leading comment (feedparser's convention)."""
    head = body[: body.find(b"-->") + 3] if body.lstrip().startswith(b"<!--") else b""
    return {name.decode().lower(): value.decode("utf-8", "replace") for name, value in HEADER_LINE.findall(head)}


def decoded(path: str, raw: bytes) -> bytes:
    """What httpx hands on for a body sent with the encoding feedparser's server uses."""
    encoding = "gzip" if path.endswith(".gz") else "deflate"
    return httpx.Response(200, headers={"Content-Encoding": encoding}, content=raw).content


def check(feed: ParsedFeed) -> None:
    for item in feed.items:
        assert item.key and isinstance(item.key, str)
        for text in (item.title, item.teaser, item.content):
            assert isinstance(text, str)
            # tests/wellformed/sanitize holds hundreds of ways to smuggle a script in.
            assert "<script" not in text.lower()
        for moment in (item.published, item.updated):
            assert moment is None or (moment.tzinfo is not None and moment.utcoffset().total_seconds() == 0)
        if item.url is not None:
            parts = urlsplit(item.url)
            assert parts.scheme in ("http", "https") and parts.netloc, item.url
        assert item.guid is None or isinstance(item.guid, str)


def outcome(path: str, raw: bytes) -> str:
    headers = {} if path.endswith((".gz", ".z")) else simulated_headers(raw)
    if path.endswith((".gz", ".z")):
        try:
            raw = decoded(path, raw)
        except httpx.DecodingError:
            return "fetch error (undecodable body)"
    url = headers.get("content-location") or BASE + path
    try:
        feed = parse_feed(raw, url=url, content_type=headers.get("content-type"))
    except ParseError:
        return "ParseError"
    check(feed)
    return "ok"


def test_every_feedparser_test_file_gives_a_typed_result_or_error(capsys: pytest.CaptureFixture[str]) -> None:
    files = corpus_files(feedparser_sdist())
    assert len(files) == EXPECTED_FILES

    started = time.perf_counter()
    counts: Counter[str] = Counter()
    crashes: list[str] = []
    for path, raw in sorted(files.items()):
        try:
            counts[outcome(path, raw)] += 1
        except Exception as exc:  # the point of the test: name every file that crashes
            crashes.append(f"{path}: {type(exc).__name__}: {exc}")
    elapsed = time.perf_counter() - started

    with capsys.disabled():
        summary = ", ".join(f"{name} {count}" for name, count in counts.most_common())
        print(f"\nfeedparser {FEEDPARSER} corpus: {len(files)} files in {elapsed:.1f}s: {summary}")
    assert crashes == []
    assert counts["ok"] > 0.9 * EXPECTED_FILES
    assert elapsed < 60
