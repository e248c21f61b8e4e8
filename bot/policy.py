"""Alert policy: where a flagged release goes, and whether it is news at all. Pure.

Given the feed, the flags that matched and ``now``, it returns one ``AlertDecision``
per channel; store records each on its alert row when it creates it, and delivery
reads it from there (so a settings change later never re-routes an alert already
queued). Used by the pass and by ``pressbot reflag``.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from bot.records import AlertDecision, AlertPolicy, HoldReason, Route, StoredFeed, StoredItem


def route(feed: StoredFeed, flags: Collection[str], policy: AlertPolicy) -> dict[str, tuple[Route, tuple[str, ...]]]:
    """Channel → (why, the flags it gets): the feed's channel, else each flag's, else the default."""
    names = tuple(sorted(set(flags)))
    if feed.channel:
        return {feed.channel: (Route.FEED, names)}
    routes: dict[str, tuple[Route, tuple[str, ...]]] = {}
    for name in names:
        own = policy.flag_channels.get(name)
        channel = own or policy.default_channel
        why, earlier = routes.get(channel, (Route.DEFAULT, ()))
        routes[channel] = (Route.FLAG if own else why, (*earlier, name))
    return routes


def hold_reason(
    item: StoredItem,
    *,
    first_pass: bool,
    now: datetime,
    policy: AlertPolicy,
    pruned_before: datetime | None,
    muted_until: datetime | None = None,
) -> HoldReason | None:
    """Why a flagged release is recorded without alerting, or None when it is news.

    On a feed's first pass only recent releases are alerted: no backlog flood. A release
    dated before what ``pressbot prune`` deleted is one the feed still lists, stored
    again as new: it was news once already. A feed muted from Slack (issue 19) is
    noise for the team until its mute ends: its alerts are held for good, as a flood of
    week-old alerts the day the mute ends is what muting was meant to prevent.
    """
    if muted_until is not None and now < muted_until:
        return HoldReason.MUTED
    if pruned_before is not None and item.published is not None and item.published < pruned_before:
        return HoldReason.PRUNED
    if not first_pass:
        return None
    published = item.published or item.first_seen
    if item.published is None or published < now - policy.window:
        return HoldReason.FIRST_PASS
    return None


def decide_alerts(
    item: StoredItem,
    flags: Collection[str],
    feed: StoredFeed,
    policy: AlertPolicy,
    *,
    now: datetime,
    first_pass: bool,
    check_pruned: bool,
) -> list[AlertDecision]:
    """One decision per channel the release goes to (none when it carries no flag).

    ``check_pruned``: the release was stored as new (only such a one can be a release
    prune deleted and its feed still lists).
    """
    if not flags:
        return []
    pruned_before = feed.pruned_before if check_pruned else None
    hold = hold_reason(
        item, first_pass=first_pass, now=now, policy=policy, pruned_before=pruned_before, muted_until=feed.muted_until
    )
    return [
        AlertDecision(channel=channel, flags=names, route=why, hold=hold)
        for channel, (why, names) in sorted(route(feed, flags, policy).items())
    ]
