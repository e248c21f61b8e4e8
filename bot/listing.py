"""Listing stage: a newsroom listing page → the releases it lists. Pure.

Many of the sources that matter (OHCHR, the Coalition for the ICC, OMCT) publish no
feed, only a listing page (issue 17). By default the release links are found
automatically: same-site links with an article-like path (more path segments than the
listing's own, not a tag, category, pagination, login or share link), grouped by the
repeated container that holds each one (an ``<article>``, ``<li>``, card or views-row),
outside the page's own navigation, header, footer and sidebars. CSS selectors
(``items``, ``link``, ``title``, ``date``; cssselect through lxml) replace each part of
that choice when it is wrong. Pagination is never followed.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from email.message import Message
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

import lxml.html
from lxml import etree
from lxml.cssselect import CSSSelector, SelectorError

from bot.errors import ParseError
from bot.records import ListedRelease, Listing, ListingRule, ParsedFeed, ParsedItem

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
# Path segments of links that are no release: taxonomy, pagination, accounts, sharing.
_NOT_RELEASE_SEGMENTS = frozenset(
    {
        "tag", "tags", "category", "categories", "topic", "topics", "taxonomy", "term", "author", "authors",
        "page", "search", "login", "logout", "register", "signin", "signup", "user", "users", "account",
        "share", "sharer", "feed", "rss", "print", "subscribe", "wp-login.php", "wp-admin", "cart",
    }
)  # fmt: skip
_NOT_RELEASE_QUERY = frozenset(
    {"page", "paged", "share", "replytocom", "print", "feed", "format", "sort", "order", "orderby", "s", "q",
     "search", "tag", "category", "cat", "filter"}
)  # fmt: skip
_NOT_PAGE_SUFFIXES = (
    ".jpg", ".jpeg", ".png", ".gif", ".svg", ".webp", ".ico", ".css", ".js", ".xml", ".rss", ".pdf", ".zip",
    ".mp3", ".mp4", ".docx", ".doc",
)  # fmt: skip
_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_UNSEEN = ("script", "style", "noscript", "template")
_SPACES = re.compile(r"\s+")
_WORDS = re.compile(r"[^a-z0-9]+")
_MAX_URL = 2000
_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
_PLACEHOLDER = "<CSS selector of each release>"


class SelectorSyntaxError(ValueError):
    """A CSS selector cssselect cannot read; the message says where."""


def compile_selector(selector: str) -> CSSSelector:
    """The compiled selector, or SelectorSyntaxError (config validation calls this)."""
    try:
        return CSSSelector(selector)
    except (SelectorError, etree.XPathError) as exc:
        raise SelectorSyntaxError(f"bad CSS selector {selector!r}: {exc}") from None


def extract_listing(
    body: bytes | str, url: str, rule: ListingRule | None = None, *, content_type: str | None = None
) -> Listing:
    """The releases ``body`` (the listing page at ``url``) lists, in page order."""
    rule = rule or ListingRule()
    root = _parse(body, content_type)
    if root is None:
        return Listing(url=url, error=f"no release links found on {url}: the page is empty")
    base = _base_url(root, url)
    for element in root.iter(*_UNSEEN):
        element.drop_tree()
    if rule.items:
        return _selected(root, base, url, rule)
    _drop_chrome(root)
    containers = _automatic_containers(root, base, url)
    if not containers:
        return Listing(url=url, error=f'no release links found on {url}: set items = "{_suggest_items(root)}"')
    releases = _releases(containers, base, url, rule)
    if not releases:
        return Listing(url=url, error=f'no release links found on {url}: link = "{rule.link}" matches nothing')
    return Listing(url=url, releases=releases)


# -- parsing -----------------------------------------------------------------------------


def _parse(body: bytes | str, content_type: str | None) -> Any:
    text = _decode(body, content_type) if isinstance(body, bytes) else body
    if not text.strip():
        return None
    try:
        return lxml.html.document_fromstring(text)
    except ValueError:  # a str with an XML encoding declaration: let lxml read the bytes
        return lxml.html.document_fromstring(text.encode("utf-8") if isinstance(text, str) else text)
    except etree.ParserError:
        return None


def _decode(body: bytes, content_type: str | None) -> str | bytes:
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


def _base_url(root: Any, url: str) -> str:
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


def _drop_chrome(root: Any) -> None:
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


# -- links -------------------------------------------------------------------------------


def _site(host: str | None) -> str:
    host = (host or "").lower()
    return host.removeprefix("www.")


def _segments(path: str) -> list[str]:
    return [segment for segment in path.split("/") if segment]


def absolute_link(href: str | None, base: str) -> str | None:
    """An http(s) URL without fragment, or None."""
    href = (href or "").strip()
    if not href or href.startswith("#") or len(href) > _MAX_URL:
        return None
    try:
        parts = urlsplit(urljoin(base, href))
    except ValueError:  # an unclosed IPv6 bracket
        return None
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return urlunsplit((parts.scheme, parts.netloc, parts.path or "/", parts.query, ""))


def is_release_link(link: str, listing_url: str) -> bool:
    """Same site, deeper than the listing, and not taxonomy, pagination, account or sharing."""
    parts, listing = urlsplit(link), urlsplit(listing_url)
    if _site(parts.hostname) != _site(listing.hostname):
        return False
    segments = _segments(parts.path)
    if len(segments) <= len(_segments(listing.path)):
        return False
    if any(segment.lower() in _NOT_RELEASE_SEGMENTS for segment in segments):
        return False
    if parts.path.lower().endswith(_NOT_PAGE_SUFFIXES):
        return False
    return not any(key.lower() in _NOT_RELEASE_QUERY for key, _ in parse_qsl(parts.query, keep_blank_values=True))


def _release_links(root: Any, base: str, listing_url: str) -> Iterator[tuple[Any, str]]:
    for anchor in root.iter("a"):
        link = absolute_link(anchor.get("href"), base)
        if link and is_release_link(link, listing_url):
            yield anchor, link


# -- containers --------------------------------------------------------------------------


def _signature(element: Any) -> tuple[str, str]:
    """Tag and first class word without digits: "views-row views-row-1" and
    "post-12 post hentry" repeat as ("div", "views-row") and ("article", "post")."""
    tokens = [token for token in (element.get("class") or "").split() if not re.search(r"\d", token)]
    return element.tag, tokens[0] if tokens else ""


def _primary_link(member: Any, links: dict[Any, str]) -> str | None:
    """The release a member leads to: its heading link's, else its first link's."""
    first = None
    for anchor in member.iter("a"):
        if anchor in links:
            if _in_heading(anchor) or _heading_inside(anchor) is not None:
                return links[anchor]
            first = first or links[anchor]
    return first


def _automatic_containers(root: Any, base: str, listing_url: str) -> list[Any]:
    """The containers of the page's main listing.

    Every ancestor of a release link is a candidate member of a group of like siblings
    (same parent, same signature). The group leading to the most distinct releases
    wins; on a tie the higher one (a views-row over the fields inside it: the image and
    the title of one row lead to one release).
    """
    links = dict(_release_links(root, base, listing_url))
    groups: dict[tuple[Any, tuple[str, str]], list[Any]] = {}
    seen: set[Any] = set()
    for anchor in links:
        for element in [anchor, *anchor.iterancestors()]:
            parent = element.getparent()
            if parent is None or element in seen:
                break
            seen.add(element)
            groups.setdefault((parent, _signature(element)), []).append(element)
    best: list[Any] = []
    best_score = (1, 0)
    for (parent, _kind), members in groups.items():
        primaries = {_primary_link(member, links) for member in members} - {None}
        score = (len(primaries), -_depth(parent))
        if score > best_score:
            best, best_score = members, score  # in document order: siblings meet in order
    if not best and links:
        # A listing of one release: its link's closest block is the container.
        return [_closest_block(next(iter(links)))]
    return best


def _depth(element: Any) -> int:
    return sum(1 for _ in element.iterancestors())


def _closest_block(anchor: Any) -> Any:
    for element in anchor.iterancestors():
        if element.tag in ("article", "li", "div", "section", "tr"):
            return element
    return anchor


def _suggest_items(root: Any) -> str:
    """The selector of the page's most repeated element holding a link, for the failure line."""
    counts: dict[str, int] = {}
    for anchor in root.iter("a"):
        for element in anchor.iterancestors():
            if element.tag in ("article", "li", "div", "tr") and element.getparent() is not None:
                classes = (element.get("class") or "").split()
                selector = element.tag + (f".{classes[0]}" if classes and re.fullmatch(r"[\w-]+", classes[0]) else "")
                counts[selector] = counts.get(selector, 0) + 1
                break
    best = max(counts.items(), key=lambda pair: pair[1], default=(_PLACEHOLDER, 0))
    return best[0] if best[1] >= 2 else _PLACEHOLDER


# -- selectors ---------------------------------------------------------------------------


def _selected(root: Any, base: str, url: str, rule: ListingRule) -> Listing:
    assert rule.items is not None
    containers = compile_selector(rule.items)(root)
    if not containers:
        return Listing(url=url, error=f'no release links found on {url}: items = "{rule.items}" matches nothing')
    releases = _releases(containers, base, url, rule)
    if not releases:
        what = f'link = "{rule.link}"' if rule.link else "no link"
        return Listing(url=url, error=f'no release links found on {url}: {what} inside items = "{rule.items}"')
    return Listing(url=url, releases=releases)


def _releases(containers: Sequence[Any], base: str, listing_url: str, rule: ListingRule) -> tuple[ListedRelease, ...]:
    found: dict[str, ListedRelease] = {}
    for container in containers:
        anchor, link = _release_anchor(container, base, listing_url, rule)
        if link is None or link in found:
            continue
        found[link] = ListedRelease(
            url=link,
            title=_title(container, anchor, link, base, rule),
            published=_date(container, rule),
            position=len(found),
        )
    return tuple(found.values())


def _anchors(element: Any) -> list[Any]:
    return [element] if element.tag == "a" else list(element.iter("a"))


def _release_anchor(container: Any, base: str, listing_url: str, rule: ListingRule) -> tuple[Any, str | None]:
    """The container's release link: the ``link`` selector's, else its heading's, else its first."""
    if rule.link:
        for match in compile_selector(rule.link)(container):
            for anchor in _anchors(match):
                link = absolute_link(anchor.get("href"), base)
                if link:
                    return anchor, link
        return None, None
    candidates = [
        (anchor, link)
        for anchor in _anchors(container)
        if (link := absolute_link(anchor.get("href"), base)) and is_release_link(link, listing_url)
    ]
    for anchor, link in candidates:
        if _in_heading(anchor) or _heading_inside(anchor) is not None:
            return anchor, link
    return candidates[0] if candidates else (None, None)


def _in_heading(anchor: Any) -> bool:
    return any(element.tag in _HEADINGS for element in anchor.iterancestors())


def _heading_inside(anchor: Any) -> Any | None:
    return next(anchor.iter(*_HEADINGS), None)


def _text(element: Any) -> str:
    return _SPACES.sub(" ", element.text_content()).strip()


def _title(container: Any, anchor: Any, link: str, base: str, rule: ListingRule) -> str:
    """The ``title`` selector's text; else the heading link's; else the longest link text."""
    if rule.title:
        for match in compile_selector(rule.title)(container):
            if text := _text(match):
                return text
    same = [a for a in _anchors(container) if absolute_link(a.get("href"), base) == link] or [anchor]
    for candidate in same:
        if _in_heading(candidate):
            return _text(candidate)
        heading = _heading_inside(candidate)
        if heading is not None and _text(heading):
            return _text(heading)
    texts = [_text(a) or (a.get("aria-label") or a.get("title") or "").strip() for a in same]
    return max(texts, key=len, default="")


# -- dates -------------------------------------------------------------------------------


def _date(container: Any, rule: ListingRule) -> datetime | None:
    """The ``date`` selector's, else the container's ``<time datetime>``, else a written date."""
    if rule.date:
        for match in compile_selector(rule.date)(container):
            moment = _element_date(match)
            if moment:
                return moment
        return None
    for time in container.iter("time"):
        moment = _element_date(time)
        if moment:
            return moment
    return written_date(container)


def _element_date(element: Any) -> datetime | None:
    for attribute in ("datetime", "content"):
        moment = parse_iso(element.get(attribute))
        if moment:
            return moment
    return written_date(element)


def parse_iso(value: str | None) -> datetime | None:
    """An ISO 8601 date or date-time as aware UTC (date only: midnight UTC)."""
    value = (value or "").strip()
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    moment = moment.astimezone(UTC)
    return moment if moment >= _EARLIEST else None


def written_date(element: Any) -> datetime | None:
    """A date written in the element's text ("12 May 2026", "2026-05-12"), by htmldate."""
    text = _text(element)
    if not re.search(r"\d", text):
        return None
    from htmldate import find_date  # here: ~0.2 s to import, and only listing passes need it

    # A fresh little document: htmldate cleans the tree it is given.
    found = find_date(f"<html><body><p>{escape(text)}</p></body></html>", extensive_search=True, original_date=True)
    return parse_iso(found) if found else None


# -- what a page advertises (``pressbot feeds discover``) --------------------------------

_FEED_TYPES = frozenset(
    {"application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/feed+json",
     "application/xml", "text/xml"}
)  # fmt: skip


def advertised_feeds(body: bytes | str, url: str, *, content_type: str | None = None) -> list[str]:
    """The feeds a page names in ``<link rel="alternate" type="application/rss+xml">``, absolute."""
    root = _parse(body, content_type)
    if root is None:
        return []
    base = _base_url(root, url)
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
    root = _parse(body, content_type)
    if root is None:
        return None
    for meta in root.iter("meta"):
        if (meta.get("property") or "").lower() == "og:site_name" and (meta.get("content") or "").strip():
            return _SPACES.sub(" ", meta.get("content")).strip()
    title = root.find(".//title")
    return _text(title) or None if title is not None else None


def parse_listing(body: bytes, *, url: str, rule: ListingRule, content_type: str | None = None) -> ParsedFeed:
    """A listing page as a feed of its releases, for the pass; ParseError saying what to set."""
    listing = extract_listing(body, url, rule, content_type=content_type)
    if listing.error:
        raise ParseError(url, listing.error)
    items = tuple(
        ParsedItem(key=release.url, url=release.url, title=release.title, teaser="", content="",
                   published=release.published, updated=None)
        for release in listing.releases
    )
    return ParsedFeed(title=None, language=None, ttl_seconds=None, items=items)
