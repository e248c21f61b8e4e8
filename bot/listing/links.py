"""Which links of a listing page lead to a release. Part of the listing stage (pure)."""

from __future__ import annotations

from urllib.parse import parse_qsl, urljoin, urlsplit, urlunsplit

from bot.urls import http_url_parts

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
_MAX_URL = 2000


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
        parts = http_url_parts(urljoin(base, href))
    except ValueError:  # an unclosed IPv6 bracket in the base
        return None
    if parts is None:
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
