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
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urljoin

import feedparser
import lxml.html
from lxml import etree

from bot.errors import ParseError
from bot.records import ParsedFeed, ParsedItem
from bot.urls import http_url_parts

# UN News links go through a redirector (/feed/view/en/story/2026/05/1234567) and the
# same story is reachable under several URLs: its numeric id is the identity.
_UN_NEWS_STORY = re.compile(r"news\.un\.org/.*?/story/\d{4}/\d{2}/(\d+)")
# press.un.org publishes one meeting as a press release (/en/2026/sc16444.doc.htm) and
# as a live blog (/en/blog/sc16444): the UN document symbol is the identity.
_UN_PRESS_SYMBOL = re.compile(
    r"press\.un\.org/\w\w/(?:\d{4}/|blog/)([a-z]+\d+(?:-[a-z]+\d+)?)", re.IGNORECASE
)

_BLOCK_TAGS = frozenset(
    {
        "p", "div", "br", "li", "ul", "ol", "dl", "dt", "dd", "h1", "h2", "h3", "h4", "h5", "h6",
        "blockquote", "tr", "table", "caption", "section", "article", "header", "footer", "main",
        "aside", "nav", "address", "pre", "hr", "figure", "figcaption",
    }
)  # fmt: skip
_CELL_TAGS = frozenset({"td", "th"})
_UNSEEN_TAGS = ".//script|.//style|.//noscript|.//template|.//applet"
# For the rare fragment lxml refuses: drop what a browser would not show, then the tags.
_UNSEEN_BLOCKS = re.compile(
    r"<(script|style|noscript|template|applet)\b.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
# Some feeds escape their HTML twice (the moe-sg feed: a CDATA section of HTML next to
# an element), so tags survive one conversion as text; another pass takes them off.
_LEFTOVER_TAG = re.compile(
    r"</?(?:p|a|br|div|span|img|strong|em|b|i|u|ul|ol|li|h[1-6]|blockquote|table|tr|td|"
    r"script|style|iframe|font|figure)\b[^<>]*>",
    re.IGNORECASE,
)
_MAX_UNESCAPES = 3
# A run of "<" goes whole: removing only the last would join the one before it to "script".
_SCRIPT_TAG_START = re.compile(r"<+(?=\s*/?\s*script)", re.IGNORECASE)
_NOT_XML_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0\u2000-\u200b\u202f\u205f\u3000]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_MAX_KEY = 500
# libxml2 stops at 255 nested elements unless told otherwise, and the text inside and
# after them vanished (issue 14); the walk over the tree is iterative, so depth is safe.
_HTML_PARSER = lxml.html.HTMLParser(huge_tree=True)
_LANGUAGE_TAG = re.compile(r"[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8})*")  # BCP 47's shape, loosely
_MAX_LANGUAGE = 20
# expat's messages for a document that ends too early.
_TRUNCATION_SIGNS = ("unclosed token", "no element found", "unclosed CDATA section", "partial character")
_SOURCE_KEY_PREFIXES = ("un-news:", "un-press:")
# feedparser accepts dates like year 0001 or 9999 from broken feeds; they sort badly.
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_FUTURE_MARGIN = timedelta(days=1)  # time zones and clocks a little fast; beyond it, a broken date
# A feed of 100,000 entries took 700 MB and, on PostgreSQL, could not be stored (issue 14);
# news feeds list tens. poll.max_entries sets it.
MAX_ENTRIES = 5_000


def html_to_text(html: str) -> str:
    """Plain text with paragraphs separated by blank lines; scripts, styles and comments dropped."""
    text = _convert(html)
    for _ in range(_MAX_UNESCAPES):
        if not _LEFTOVER_TAG.search(text):
            break
        text = _convert(text.replace("\n", "<br>"))  # keep the paragraphs found so far
    # Feed text that literally says "<script" stays text here, but a CSV or JSON export
    # pasted into a web page must never carry a script tag.
    return _SCRIPT_TAG_START.sub("", text)


def _convert(html: str) -> str:
    if not html:
        return ""
    if "<" not in html and "&" not in html:
        return _tidy(_NOT_XML_CHARS.sub(" ", html))
    # libxml2 refuses control characters (XML 1.0 §2.2); feedparser's loose parser lets
    # them through.
    html = _NOT_XML_CHARS.sub(" ", html)
    try:
        root = lxml.html.fragment_fromstring(html, create_parent="div", parser=_HTML_PARSER)
    except (etree.ParserError, ValueError):
        return _tidy(re.sub(r"<[^>]*>?", " ", _UNSEEN_BLOCKS.sub(" ", html)))
    for unseen in root.xpath(_UNSEEN_TAGS):
        unseen.drop_tree()
    return _tidy("".join(_text_parts(root)))


def _text_parts(root: Any) -> list[str]:
    """Texts and tails in document order, with breaks around block elements.

    Iterative, not recursive: feed HTML can nest deeper than Python's recursion limit.
    Comments and processing instructions (WordPress's ``<!-- wp:paragraph -->``) are
    not text, but what follows them is.
    """
    parts: list[str] = []
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        tag = node.tag if isinstance(node.tag, str) else None
        if closing:
            if tag in _BLOCK_TAGS and tag != "br":
                parts.append("\n\n")
            if node is not root and node.tail:
                parts.append(_unwrap(node.tail))
            continue
        if tag in _BLOCK_TAGS:
            parts.append("\n" if tag == "br" else "\n\n")
        elif tag in _CELL_TAGS:
            parts.append(" ")
        if tag is not None and node.text:
            parts.append(_unwrap(node.text))
        stack.append((node, True))
        stack.extend((child, False) for child in reversed(node))
    return parts


def _unwrap(text: str) -> str:
    # In HTML a line break in the source is a space; only elements make lines.
    return text.replace("\r", " ").replace("\n", " ")


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
    url = _NOT_XML_CHARS.sub("", url or "").strip()
    if not url:
        return None
    try:
        absolute = urljoin(base, url)
    except ValueError:  # "http://[::1/x": not a link anyone can follow
        return None
    parts = http_url_parts(absolute)
    if parts is None:
        return None
    if "@" in parts.netloc:
        # Credentials in the feed's URL are for the fetch only: a relative link inherited
        # them, and they were stored, shown by query and posted to Slack (issue 14).
        absolute = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    return absolute


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


def _not_after(moment: datetime | None, latest: datetime | None) -> datetime | None:
    """No date rather than one in the future: a year-9999 date passed the first-pass
    hold, sorted first forever and was never pruned (issue 14)."""
    return None if moment is not None and latest is not None and moment > latest else moment


def _future_note(entries: list[Any], latest: datetime | None) -> str | None:
    dates = [_to_utc(entry.get("published_parsed") or dict.get(entry, "updated_parsed")) for entry in entries]
    future = sorted(date for date in dates if date is not None and latest is not None and date > latest)
    if not future:
        return None
    return (f"{len(future)} entries dated more than a day ahead (as far as {future[-1]:%Y-%m-%d}): "
            "their first-seen time is used instead")


def _bounded_key(key: str) -> str:
    """A key that fits its column: a long one hashed, never cut (two guids sharing their
    first 500 characters were one release, issue 14)."""
    if len(key) <= _MAX_KEY:
        return key
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def _item(entry: dict[str, Any], base_url: str, language: str | None, latest: datetime | None) -> ParsedItem:
    url = _absolute(entry.get("link"), base_url)
    guid = _NOT_XML_CHARS.sub("", entry.get("id") or "").strip() or None
    title = html_to_text(entry.get("title", "") or "")
    teaser, content = _entry_text(entry)
    published = _not_after(_to_utc(entry.get("published_parsed")), latest)
    # dict.get: feedparser maps a missing updated_parsed to published_parsed, with a warning.
    updated = _not_after(_to_utc(dict.get(entry, "updated_parsed")), latest)
    key = source_key(url) or source_key(guid) or guid or url or _hash_key(title, published or updated, teaser)
    return ParsedItem(
        key=_bounded_key(key),
        url=url,
        title=title,
        teaser=teaser,
        content=content,
        published=published or updated,
        updated=updated,
        guid=guid,
        language=_language(entry.get("language")) or language,
    )


def _language(value: Any) -> str | None:
    """A declared language tag ("en", "fr-FR"), or None for free text ("English (UK)").

    Stored in VARCHAR(20) columns, where PostgreSQL refuses anything longer: a long
    tag keeps its primary subtag, all the language detection reads of it.
    """
    tag = _NOT_XML_CHARS.sub("", str(value or "")).strip()
    if not _LANGUAGE_TAG.fullmatch(tag):
        return None
    return tag if len(tag) <= _MAX_LANGUAGE else re.split(r"[-_]", tag, maxsplit=1)[0]


def _fullness(item: ParsedItem) -> int:
    return len(item.content) + len(item.teaser)


def _unique(items: Iterable[ParsedItem]) -> tuple[ParsedItem, ...]:
    """One item per key.

    A source key (UN News story id, press.un.org symbol) names one release whatever
    title each copy carries: the fullest copy is kept. Other repeated keys with
    different text are different releases (a CMS bug seen on government newsrooms
    gives every item the same guid and link); each of them gets a content-based key,
    the first one too, so keys do not shift when a new item is prepended. The same
    release repeated verbatim is kept once.
    """
    groups: dict[str, list[ParsedItem]] = {}
    for item in items:
        groups.setdefault(item.key, []).append(item)
    unique: dict[str, ParsedItem] = {}
    for key, group in groups.items():
        if key.startswith(_SOURCE_KEY_PREFIXES) or len({(i.title, i.teaser) for i in group}) == 1:
            unique.setdefault(key, max(group, key=_fullness))
            continue
        for item in group:
            content_key = _hash_key(item.title, item.published, item.teaser)
            unique.setdefault(content_key, replace(item, key=content_key))
    return tuple(unique.values())


def _cut_off(body: bytes, bozo: Exception) -> bool:
    """A complete XML document ends with ``>`` (its root's end tag, a comment or a PI).

    Only asked when the strict parse failed: these two warnings are raised before
    parsing and survive only when the strict parser then read the whole document
    (whose ``>`` may not even be the ASCII byte, as in EBCDIC).
    """
    if isinstance(bozo, feedparser.NonXMLContentType | feedparser.CharacterEncodingOverride):
        return False
    return not body.rstrip(b" \t\r\n\x00").endswith(b">")


def parse_feed(
    body: bytes,
    *,
    url: str,
    content_type: str | None = None,
    max_entries: int = MAX_ENTRIES,
    now: datetime | None = None,
) -> ParsedFeed:
    """Parse one feed body; raise ParseError when it is not a feed at all.

    Only the first ``max_entries`` entries (feeds list the newest first) become items;
    a date more than a day after ``now`` counts as none. The note says what was left out.
    """
    headers = {"content-location": url}
    if content_type:
        headers["content-type"] = content_type
    try:
        # Off: items leave here as plain text, never HTML (html_to_text drops scripts,
        # styles and comments itself), so feedparser's sanitizer and its rewriting of
        # links inside content would be ~40% of its time spent on nothing.
        parsed = feedparser.parse(
            body, response_headers=headers, sanitize_html=False, resolve_relative_uris=False
        )
    except Exception as exc:  # feedparser's own bugs must not end a pass
        raise ParseError(url, f"feedparser failed: {type(exc).__name__}: {exc}") from exc
    bozo = parsed.get("bozo_exception")
    if not parsed.get("version") and not parsed.entries:
        reason = f": {_one_line(bozo)}" if bozo else ""
        raise ParseError(url, f"not a feed{reason}")
    if bozo is not None and (any(sign in str(bozo) for sign in _TRUNCATION_SIGNS) or _cut_off(body, bozo)):
        # feedparser's loose parser salvages the entries before the cut, but the rest
        # of the feed is missing: report it rather than store half a feed. The bozo is
        # only the first error, so an earlier one (a blank line before the XML
        # declaration) can hide the cut: hence the look at the last byte.
        raise ParseError(url, f"truncated XML: {_one_line(bozo)}")
    meta = parsed.get("feed", {})
    language = _language(meta.get("language"))
    base_url = url or meta.get("link") or ""
    entries = parsed.entries
    notes = []
    if len(entries) > max_entries:
        notes.append(
            f"the feed lists {len(entries)} entries: only the first {max_entries} were read (poll.max_entries)"
        )
        entries = entries[:max_entries]
    latest = now + _FUTURE_MARGIN if now is not None else None
    notes.append(_future_note(entries, latest) or "")
    items = _unique(_item(entry, base_url, language, latest) for entry in entries)
    note = "; ".join(filter(None, notes)) or None
    return ParsedFeed(
        title=html_to_text(meta.get("title", "") or "") or None,
        language=language,
        ttl_seconds=_ttl(meta.get("ttl")),
        items=items,
        warning=_one_line(bozo) if bozo else None,
        note=note,
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
