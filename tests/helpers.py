"""Helpers shared by the test modules (fixtures live in conftest.py)."""

from __future__ import annotations

from collections.abc import Iterable

from bot.records import AlertDecision, FlagMatch, HoldReason, Route


def held_alert(channel: str, matches: Iterable[FlagMatch]) -> AlertDecision:
    """A decision that records an alert without ever sending it (archives for searches)."""
    flags = tuple(sorted({match.flag for match in matches}))
    return AlertDecision(channel=channel, flags=flags, route=Route.DEFAULT, hold=HoldReason.FIRST_PASS)
