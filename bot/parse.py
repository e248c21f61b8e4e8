"""Parse stage: feed bytes → ``ParsedFeed`` of normalised ``ParsedItem``s. Pure.

feedparser gets the bytes and the response headers (for the charset and the base
URL), never a URL: all HTTP is ours. Top-level functions only, so a pass can run
them in worker processes.
"""

from __future__ import annotations

import calendar
import hashlib
import re
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urljoin, urlsplit

import feedparser
import lxml.html
from lxml import etree

from bot.errors import ParseError
from bot.records import ParsedFeed, ParsedItem

# UN News links go through a redirector (/feed/view/en/story/2026/05/1234567) and the
# same story is reachable under several URLs: its numeric id is the identity.
_UN_NEWS_STORY = re.compile(r"news\.un\.org/.*?/story/\d{4}/\d{2}/(\d+)")
# press.un.org publishes one meeting as a press release (/en/2026/sc16444.doc.htm) and
# as a live blog (/en/blog/sc16444): the UN document symbol is the identity.
_UN_PRESS_SYMBOL = re.compile(
    r"press\.un\.org/\w\w/(?:\d{4}/|blog/)([a-z]+\d+(?:-[a-z]+\d+)?)", re.IGNORECASE
)

_BLOCK_TAGS = {
    "p",
    "div",
    "br",
    "li",
    "ul",
    "ol",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "blockquote",
    "tr",
    "table",
    "section",
    "article",
    "pre",
    "hr",
    "figure",
    "figcaption",
}
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_MAX_KEY = 500
_TRUNCATION_SIGNS = ("unclosed token", "no element found")
# feedparser accepts dates like year 0001 or 9999 from broken feeds; they sort badly.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


def html_to_text(html: str) -> str:
    """Plain text with paragraphs separated by blank lines; scripts and styles dropped."""
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return _tidy(html)
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div")
    except (etree.ParserError, ValueError):
        return _tidy(re.sub(r"<[^>]+>", " ", html))
    for bad in root.xpath(".//script|.//style|.//noscript"):
        bad.drop_tree()
    parts: list[str] = []
    for node in root.iter():
        tag = node.tag if isinstance(node.tag, str) else ""
        if tag in _BLOCK_TAGS:
            parts.append("\n\n" if tag != "br" else "\n")
        if node.text and tag not in ("script", "style"):
            parts.append(node.text)
        if node is not root and node.tail:
            parts.append(node.tail)
    return _tidy("".join(parts))


def _tidy(text: str) -> str:
    lines = [_SPACES.sub(" ", line).strip() for line in text.replace("\r\n", "\n").split("\n")]
    return _BLANK_LINES.sub("\n\n", "\n".join(lines)).strip()


def _to_utc(parsed: time.struct_time | None) -> datetime | None:
    if not parsed:
        return None
    try:
        moment = datetime.fromtimestamp(calendar.timegm(parsed), tz=UTC)
    except (OverflowError, ValueError, OSError):
        return None
    return moment if moment >= _EARLIEST else None


def _absolute(url: str | None, base: str) -> str | None:
    if not url or not url.strip():
        return None
    absolute = urljoin(base, url.strip())
    return absolute if urlsplit(absolute).scheme in ("http", "https") else None


def source_key(url: str | None) -> str | None:
    """The identity a known source gives its releases, when the URL carries it."""
    if not url:
        return None
    if match := _UN_NEWS_STORY.search(url):
        return f"un-news:{match.group(1)}"
    if match := _UN_PRESS_SYMBOL.search(url):
        return f"un-press:{match.group(1).lower()}"
    return None


def _hash_key(title: str, published: datetime | None, teaser: str) -> str:
    basis = f"{title}\x00{published.isoformat() if published else ''}\x00{teaser[:200]}"
    return "sha256:" + hashlib.sha256(basis.encode()).hexdigest()


def _entry_text(entry: Mapping[str, Any]) -> tuple[str, str]:
    teaser = html_to_text(entry.get("summary", "") or "")
    contents = entry.get("content") or []
    content = max((html_to_text(c.get("value", "") or "") for c in contents), key=len, default="")
    if content == teaser:
        content = ""
    return teaser, content


def _item(entry: Mapping[str, Any], base_url: str, language: str | None) -> ParsedItem:
    url = _absolute(entry.get("link"), base_url)
    guid = (entry.get("id") or "").strip() or None
    title = html_to_text(entry.get("title", "") or "")
    teaser, content = _entry_text(entry)
    published = _to_utc(entry.get("published_parsed"))
    # dict.get: feedparser maps a missing updated_parsed to published_parsed, with a warning.
    updated = _to_utc(dict.get(entry, "updated_parsed"))
    key = source_key(url) or source_key(guid) or guid or url or _hash_key(title, published or updated, teaser)
    return ParsedItem(
        key=key[:_MAX_KEY],
        url=url,
        title=title,
        teaser=teaser,
        content=content,
        published=published or updated,
        updated=updated,
        guid=guid,
        language=entry.get("language") or language,
    )


def _unique(items: Iterable[ParsedItem]) -> tuple[ParsedItem, ...]:
    """One item per key: repeated keys with different text get a content-based key.

    Some feeds give every item the same guid and link (a CMS bug seen on government
    newsrooms); those are different releases. The same release twice is kept once.
    """
    items = list(items)
    counts = Counter(item.key for item in items)
    seen: dict[str, ParsedItem] = {}
    for item in items:
        key = item.key
        if counts[key] > 1:
            first = seen.get(key)
            if first is not None and (first.title, first.teaser) != (item.title, item.teaser):
                key = _hash_key(item.title, item.published, item.teaser)
        if key not in seen:
            seen[key] = item if key == item.key else replace(item, key=key)
    return tuple(seen.values())


def parse_feed(body: bytes, *, url: str, content_type: str | None = None) -> ParsedFeed:
    """Parse one feed body; raise ParseError when it is not a feed at all."""
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    try:
        parsed = feedparser.parse(
            body, response_headers=headers, sanitize_html=True, resolve_relative_uris=True
        )
    except Exception as exc:  # feedparser's own bugs must not end a pass
        raise ParseError(url, f"feedparser failed: {type(exc).__name__}: {exc}") from exc
    bozo = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        reason = f": {_one_line(bozo)}" if bozo else ""
        raise ParseError(url, f"not a feed{reason}")
    if bozo is not None and any(sign in str(bozo) for sign in _TRUNCATION_SIGNS):
        # feedparser's loose parser salvages the entries before the cut, but the rest
        # of the feed is missing: report it rather than store half a feed.
        raise ParseError(url, f"truncated XML: {_one_line(bozo)}")
    meta = parsed.get("feed", {})
    language = (meta.get("language") or "").strip() or None
    base_url = meta.get("link") if not url else url
    items = _unique(_item(entry, base_url or url, language) for entry in parsed.entries)
    return ParsedFeed(
        title=html_to_text(meta.get("title", "") or "") or None,
        language=language,
        ttl_seconds=_ttl(meta.get("ttl")),
        items=items,
        warning=_one_line(bozo) if bozo else None,
    )


def _ttl(value: Any) -> int | None:
    # RSS 2.0 <ttl> is in minutes.
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return minutes * 60 if minutes > 0 else None


def _one_line(exc: Any) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return f"{type(exc).__name__}: {text}"[:300]
