"""Dates on a listing page: ``<time datetime>`` and dates written in text (htmldate). Part of the listing stage."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from html import escape
from typing import Any

from htmldate import find_date

from bot.listing.page import text_of

_EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)


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
    text = text_of(element)
    if not re.search(r"\d", text):
        return None
    # A fresh little document: htmldate cleans the tree it is given.
    found = find_date(f"<html><body><p>{escape(text)}</p></body></html>", extensive_search=True, original_date=True)
    return parse_iso(found) if found else None
