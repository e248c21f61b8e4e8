"""Re-derive flags for every stored item after the rules change (`pressbot reflag`).

Flags are derived data. Newly flagged releases get alerts like new ones, but old
releases are held back (the first-pass window), so a rule change never floods Slack.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session, sessionmaker

from bot import flag, policy, summarize
from bot.config import Settings
from bot.records import StoredItem
from bot.store import feeds as feed_store
from bot.store import items as item_store
from bot.tables import SUMMARY_PENDING, utcnow


@dataclass(slots=True)
class ReflagReport:
    """What `pressbot reflag` changed, per flag."""

    items: int = 0
    newly_flagged: dict[str, int] = field(default_factory=dict)
    unflagged: dict[str, int] = field(default_factory=dict)
    alerts: int = 0
    held: int = 0


def reflag(
    settings: Settings, session_factory: sessionmaker[Session], *, clock: Callable[[], datetime] = utcnow
) -> ReflagReport:
    """Re-evaluate every stored item with the current rules (flags are derived data).

    Newly flagged releases get alerts like new ones, but old releases are held back
    (the same window as a first pass), so a rule change never floods the channel.
    """
    report = ReflagReport()
    now = clock()
    last_id = 0
    while True:
        # One transaction per batch: on SQLite a long-lived reader would hold the lock
        # the writes need.
        with session_factory.begin() as session:
            batch = item_store.stored_items_after(session, last_id, 500)
            for item in batch:
                _reflag_one(session, item, settings, report, now=now)
        if not batch:
            break
        last_id = batch[-1].item_id
    return report


def _reflag_one(
    session: Session, item: StoredItem, settings: Settings, report: ReflagReport, *, now: datetime
) -> None:
    feed = feed_store.stored_feed(session, item.feed_id)
    before = set(item_store.flags_of(session, item.item_id))
    matches = flag.match_flags(
        settings.flag_rules, title=item.title, teaser=item.teaser, content=item.content, full_text=item.full_text
    )
    after = {match.flag for match in matches}
    report.items += 1
    for name in after - before:
        report.newly_flagged[name] = report.newly_flagged.get(name, 0) + 1
    for name in before - after:
        report.unflagged[name] = report.unflagged.get(name, 0) + 1
    if before == after and not matches:
        return
    decisions = policy.decide_alerts(
        item, after, feed, settings.alert_policy, now=now, first_pass=True, check_pruned=True
    )
    created = item_store.record_flags(session, item, matches, decisions, now=now)
    if matches and item.summary == SUMMARY_PENDING:  # left to a reader by the pass; an alert shows it now
        summary = summarize.summary_of(item.title, item.teaser, item.content, item.full_text, item.language)
        item_store.set_summary(session, item.item_id, summary or None, item.language)
    report.held += sum(decision.held for decision in created)
    report.alerts += sum(not decision.held for decision in created)
