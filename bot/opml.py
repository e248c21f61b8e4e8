"""OPML subscription lists, the format feed readers import and export.

Reading goes through listparser (OPML 1.0/2.0 and their quirks: ``text`` or
``title``, any attribute case, folders and the ``category`` attribute); folders and
categories become tags. Writing produces OPML 2.0 (opml.org/spec2.opml): one
``<outline type="rss">`` per feed, tags in ``category``, comma-separated.

listparser costs ~75 ms and 4 MB: only the commands that read or write OPML import this
module (``feeds import|export``, and ``bot.cli.read_opml`` for an OPML feed list).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from datetime import datetime
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import listparser

from bot.errors import ConfigError
from bot.http import url_problem
from bot.records import FeedSource


def _tags(categories: Iterable[Sequence[str]]) -> tuple[str, ...]:
    """Every folder or category name, once, in document order."""
    seen: dict[str, None] = {}
    for path in categories:
        for name in path:
            if name.strip():
                seen.setdefault(name.strip(), None)
    return tuple(seen)


def _unique_name(name: str, url: str, taken: set[str]) -> str:
    """Readers allow two feeds called "News"; pressbot names must differ, so add the host."""
    candidate = name
    if candidate.casefold() in taken:
        candidate = f"{name} ({urlsplit(url).hostname})"
    number = 2
    while candidate.casefold() in taken:
        candidate = f"{name} ({urlsplit(url).hostname}, {number})"
        number += 1
    taken.add(candidate.casefold())
    return candidate


def parse_opml(data: bytes, source: str) -> tuple[FeedSource, ...]:
    """The feeds of an OPML document; ConfigError naming ``source`` when it is not one."""
    # Bytes, never a URL string: listparser would fetch a URL itself.
    result = listparser.parse(data)
    if not result.version.startswith("opml"):
        problem = result.bozo_exception or "no <opml> document"
        raise ConfigError(f"{source}: not an OPML subscription list ({problem})")
    sources: list[FeedSource] = []
    taken: set[str] = set()
    for feed in result.feeds:
        url = feed.url.strip()
        problem = url_problem(url)
        try:
            host = urlsplit(url).hostname
        except ValueError:  # "http://[::1/feed": no host to trust, refused below
            host = None
        name = " ".join((feed.title or "").split()) or host or url
        if problem:
            raise ConfigError(f'{source}: outline "{name}": {url!r} {problem}')
        sources.append(FeedSource(name=_unique_name(name, url, taken), url=url, tags=_tags(feed.categories)))
    return tuple(sources)


def read_opml(path: Path) -> tuple[FeedSource, ...]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return parse_opml(data, str(path))


def write_opml(sources: Iterable[FeedSource], *, title: str = "pressbot feeds", created: datetime | None = None) -> str:
    """An OPML 2.0 document listing ``sources``."""
    root = ET.Element("opml", version="2.0")
    head = ET.SubElement(root, "head")
    ET.SubElement(head, "title").text = title
    if created is not None:
        ET.SubElement(head, "dateCreated").text = format_datetime(created)  # RFC 822, as the spec asks
    body = ET.SubElement(root, "body")
    for source in sources:
        outline = ET.SubElement(body, "outline", type="rss", text=source.name, title=source.name, xmlUrl=source.url)
        if source.tags:
            # The spec's category is comma-separated: a comma inside a tag would split it.
            outline.set("category", ",".join(tag.replace(",", " ") for tag in source.tags))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
