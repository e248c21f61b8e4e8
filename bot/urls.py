"""What an http(s) URL is, decided once: for feeds, links, canonical URLs and Slack's API URL."""

from __future__ import annotations

from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["canonical_url", "http_url_parts"]

# Query parameters that say who sent the reader, not which page it is (Google Analytics,
# Mailchimp, HubSpot, Facebook, Google and Microsoft ads, Instagram, Marketo, Yandex).
_TRACKING = ("utm_",)
_TRACKING_NAMES = frozenset(
    {"fbclid", "gclid", "dclid", "msclkid", "mc_cid", "mc_eid", "_hsenc", "_hsmi", "igshid", "mkt_tok", "yclid", "_ga"}
)


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


def canonical_url(url: str) -> str:
    """The URL without tracking parameters, fragment, default port or trailing slash; host in lower case."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    host = (parts.hostname or "").lower()
    default = {"http": 80, "https": 443}.get(parts.scheme.lower())
    netloc = host if port is None or port == default else f"{host}:{port}"
    query = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if not key.lower().startswith(_TRACKING) and key.lower() not in _TRACKING_NAMES
    ]
    return urlunsplit((parts.scheme.lower(), netloc, parts.path.rstrip("/"), urlencode(query), ""))
