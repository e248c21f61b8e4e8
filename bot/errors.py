"""pressbot's exception tree.

    PressbotError
     ├── ConfigError        bad settings, feed list or flag rules (exit 2)
     ├── QuerySyntaxError   a search the user typed cannot be understood (exit 2)
     ├── FeedError(url)
     │    ├── FetchError    the feed (or article) could not be retrieved
     │    └── ParseError    the bytes are not a feed
     ├── StoreError         the database refused
     │    ├── SchemaError   missing, not migrated, or another schema version (exit 2)
     │    └── UnwritableError  it cannot be written: read-only, full disk, replica
     └── DeliveryError      Slack refused

Lower-level errors are translated at the call site with ``raise … from exc``.
"""

from __future__ import annotations


class PressbotError(Exception):
    """Base of every error pressbot raises on purpose."""


class ConfigError(PressbotError):
    """A configuration problem; the message names the file, key and problem."""


class QuerySyntaxError(PressbotError):
    """A search (``pressbot query`` TEXT or a Slack slash command) that cannot be understood."""


class FeedError(PressbotError):
    def __init__(self, url: str, message: str) -> None:
        super().__init__(message)
        self.url = url


class FetchError(FeedError):
    """Network, TLS, HTTP status, size or address-policy failure."""


class ParseError(FeedError):
    """The body is not a feed (HTML page, truncated or empty XML)."""


class StoreError(PressbotError):
    """The database refused an operation."""


class SchemaError(StoreError):
    """The database does not exist, or lacks this pressbot's schema: ``pressbot db upgrade`` is the fix."""


class UnwritableError(StoreError):
    """The database refuses writes (read-only file or replica, full disk); the message names it and why."""


class DeliveryError(PressbotError):
    """Slack refused a post; ``permanent`` says whether retrying can help."""

    def __init__(self, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.permanent = permanent
