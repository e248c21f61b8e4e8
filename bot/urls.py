"""What an http(s) URL is, decided once: for feeds, links, canonical URLs and Slack's API URL."""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

__all__ = ["http_url_parts"]


def http_url_parts(url: str) -> SplitResult | None:
    """The URL's parts when its scheme is http or https and it names a host, else None.

    urlsplit lowercases the scheme, and raises ValueError for an unclosed IPv6 bracket
    ("http://[::1/x"): that is no URL anyone can follow either.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return parts if parts.scheme in ("http", "https") and parts.hostname else None
