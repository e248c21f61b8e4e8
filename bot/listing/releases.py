"""A newsroom listing page → the releases it lists. Pure; the listing stage's reader.

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

import re
from collections.abc import Iterator, Sequence
from datetime import datetime
from typing import Any

from bot.errors import ParseError
from bot.listing.dates import parse_iso, written_date
from bot.listing.links import absolute_link, is_release_link
from bot.listing.page import advertised_feeds, base_url, drop_chrome, drop_unseen, parse_html, site_title, text_of
from bot.listing.selectors import compile_selector
from bot.records import ListedRelease, Listing, ListingRule, ParsedFeed, ParsedItem

__all__ = [
    "absolute_link",
    "advertised_feeds",
    "extract_listing",
    "is_release_link",
    "parse_iso",
    "parse_listing",
    "site_title",
    "written_date",
]

_HEADINGS = frozenset({"h1", "h2", "h3", "h4", "h5", "h6"})
_PLACEHOLDER = "<CSS selector of each release>"


def extract_listing(
    body: bytes | str, url: str, rule: ListingRule | None = None, *, content_type: str | None = None
) -> Listing:
    """The releases ``body`` (the listing page at ``url``) lists, in page order."""
    rule = rule or ListingRule()
    root = parse_html(body, content_type)
    if root is None:
        return Listing(url=url, error=f"no release links found on {url}: the page is empty")
    base = base_url(root, url)
    drop_unseen(root)
    if rule.items:
        return _selected(root, base, url, rule)
    drop_chrome(root)
    containers = _automatic_containers(root, base, url)
    if not containers:
        return Listing(url=url, error=f'no release links found on {url}: set items = "{_suggest_items(root)}"')
    releases = _releases(containers, base, url, rule)
    if not releases:
        return Listing(url=url, error=f'no release links found on {url}: link = "{rule.link}" matches nothing')
    return Listing(url=url, releases=releases)


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


def _title(container: Any, anchor: Any, link: str, base: str, rule: ListingRule) -> str:
    """The ``title`` selector's text; else the heading link's; else the longest link text."""
    if rule.title:
        for match in compile_selector(rule.title)(container):
            if text := text_of(match):
                return text
    same = [a for a in _anchors(container) if absolute_link(a.get("href"), base) == link] or [anchor]
    for candidate in same:
        if _in_heading(candidate):
            return text_of(candidate)
        heading = _heading_inside(candidate)
        if heading is not None and text_of(heading):
            return text_of(heading)
    texts = [text_of(a) or (a.get("aria-label") or a.get("title") or "").strip() for a in same]
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
