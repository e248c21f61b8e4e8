"""A newsroom page as lxml reads it: decoding, the page's own chrome, what it advertises.

Part of the listing stage (pure). The chrome is what ARIA calls landmarks (navigation,
banner, contentinfo, complementary) and what CMS themes name as such without marking it
up ("sidebar", "widget-area", "block-most-read", "pager").
"""

from __future__ import annotations

import itertools
import re
from email.message import Message
from typing import Any
from urllib.parse import urljoin

import lxml.html
from lxml import etree

from bot.listing.links import absolute_link

# ARIA: <header> and <footer> are the page's banner and contentinfo unless inside one of
# these; then they belong to that section (an article's own header holds its title).
_SECTIONING = frozenset({"article", "aside", "main", "nav", "section"})
_LANDMARK_ROLES = frozenset({"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"})
# Class or id words of site chrome that CMS themes do not mark up as landmarks: Drupal's
# "region-sidebar-first", WordPress's "widget-area", "block-most-read", "pager".
_CHROME_WORDS = frozenset(
    {
        "sidebar", "widget", "widgets", "menu", "breadcrumb", "breadcrumbs", "pager", "pagination",
        "share", "sharing", "social", "popular", "trending", "related", "mostread", "cookie", "cookies",
        "newsletter", "skip",
    }
)  # fmt: skip
_CHROME_PAIRS = frozenset({("most", "read"), ("most", "viewed"), ("most", "popular")})
_SPACES = re.compile(r"\s+")
_WORDS = re.compile(r"[^a-z0-9]+")
_UNSEEN = ("script", "style", "noscript", "template")


def parse_html(body: bytes | str, content_type: str | None) -> Any:
    text = decode(body, content_type) if isinstance(body, bytes) else body
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except ValueError:  # a str with an XML encoding declaration: let lxml read the bytes
        return lxml.html.document_fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except etree.ParserError:
        return None


def decode(body: bytes, content_type: str | None) -> str | bytes:
    """Valid UTF-8 first (pages often declare latin-1 for UTF-8 bytes), then the HTTP
    charset; else the bytes, for libxml2 to read their <meta charset>."""
    try:
        return body.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    if content_type:
        message = Message()
        message["content-type"] = content_type
        charset = message.get_param("charset")
        if isinstance(charset, str):
            try:
                return body.decode(charset, errors="replace")
            except LookupError:
                pass
    return body


def base_url(root: Any, url: str) -> str:
    for base in root.iter("base"):
        href = (base.get("href") or "").strip()
        if href:
            return str(urljoin(url, href))
    return url


def _words(element: Any) -> list[str]:
    names = f"{element.get('class') or ''} {element.get('id') or ''}".lower()
    return [word for word in _WORDS.split(names) if word]


def _is_chrome(element: Any, tag: str, ancestors: set[str]) -> bool:
    if tag == "nav" or (element.get("role") or "").strip().lower() in _LANDMARK_ROLES:
        return True
    if tag in ("header", "footer"):
        return not ancestors & _SECTIONING
    if tag == "aside":
        return "article" not in ancestors
    if tag in ("html", "body", "main") or "article" in ancestors:
        return False
    words = _words(element)
    if not (set(words) & _CHROME_WORDS or set(itertools.pairwise(words)) & _CHROME_PAIRS):
        return False
    # A theme's body or wrapper class ("has-sidebar") must not take the content with it.
    return not any(True for _ in element.iter("main")) and element.find(".//*[@role='main']") is None


def drop_chrome(root: Any) -> None:
    """Remove the page's own navigation, header, footer and sidebars."""
    doomed = []
    stack: list[tuple[Any, frozenset[str]]] = [(root, frozenset())]
    while stack:
        element, ancestors = stack.pop()
        tag = element.tag if isinstance(element.tag, str) else ""
        if tag and _is_chrome(element, tag, set(ancestors)):
            doomed.append(element)
            continue
        inner = ancestors | {tag}
        stack.extend((child, inner) for child in element)
    for element in doomed:
        element.drop_tree()


def drop_unseen(root: Any) -> None:
    for element in root.iter(*_UNSEEN):
        element.drop_tree()


def text_of(element: Any) -> str:
    return _SPACES.sub(" ", element.text_content()).strip()



# -- what a page advertises (``pressbot feeds discover``) --------------------------------

_FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json",
     "application/xml", "text/xml"}
)  # fmt: skip


def advertised_feeds(body: bytes | str, url: str, *, content_type: str | None = None) -> list[str]:
    """The feeds a page names in ``<link rel="alternate" type="application/rss+xml">``, absolute."""
    root = parse_html(body, content_type)
    if root is None:
        return []
    base = base_url(root, url)
    found: list[str] = []
    for element in root.iter("link"):
        rels = (element.get("rel") or "").lower().split()
        kind = (element.get("type") or "").split(";")[0].strip().lower()
        link = absolute_link(element.get("href"), base)
        if "alternate" in rels and kind in _FEED_TYPES and link and link not in found:
            found.append(link)
    return found


def site_title(body: bytes | str, *, content_type: str | None = None) -> str | None:
    """``og:site_name``, else the ``<title>``: a name for a proposed source."""
    root = parse_html(body, content_type)
    if root is None:
        return None
    for meta in root.iter("meta"):
        if (meta.get("property") or "").lower() == "og:site_name" and (meta.get("content") or "").strip():
            return _SPACES.sub(" ", meta.get("content")).strip()
    title = root.find(".//title")
    return text_of(title) or None if title is not None else None
