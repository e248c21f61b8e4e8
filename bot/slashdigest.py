"""``/pressbot digest [NAME]`` and ``/pressbot feeds`` (issue 19), beside the search in bot.socketmode.

``/pressbot digest`` answers, visible only to whoever asked, with the digest of the
period in progress (as ``pressbot digest --preview``); ``/pressbot feeds`` with the
feeds that need a look: failing, disabled or muted (from Slack, bot.store.verdicts). The render functions are pure.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.deliver import escape_feed_text, escape_slack, shorten
from bot.deliver.digest import preview_digest
from bot.deliver.digestmessage import build_digest
from bot.records import Digest, FeedHealth, FeedMute, FeedStatus
from bot.store import schedule as schedule_store
from bot.store import verdicts as verdict_store

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.config import Settings

ERROR_MAX = 300
FEEDS_SHOWN_MAX = 40  # sections: a Slack message holds 50 blocks
# A Slack user id as Slack sends it in a click: only then is it written as a mention.
_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _ephemeral(text: str, blocks: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    blocks = blocks or [{"type": "section", "text": _mrkdwn(text)}]
    return {"response_type": "ephemeral", "text": text, "blocks": blocks}


def answer_digest(argument: str, settings: Settings | None, session_factory: sessionmaker[Session],
                  now: datetime) -> dict[str, Any]:
    """The reply to ``/pressbot digest [NAME]``."""
    specs = settings.digests if settings is not None else ()
    names = ", ".join(f"`{escape_slack(spec.name)}`" for spec in specs)
    if not specs:
        return _ephemeral("No digest is configured: add a `[[digests]]` table to pressbot.toml.")
    wanted = argument.strip()
    if not wanted and len(specs) > 1:
        return _ephemeral(f"Several digests are configured: `/pressbot digest NAME` with one of {names}.")
    chosen = [spec for spec in specs if not wanted or spec.name.lower() == wanted.lower()]
    if not chosen:
        return _ephemeral(f"No digest is named `{escape_slack(shorten(wanted, 100))}`; configured: {names}.")
    return render_digest(preview_digest(session_factory, chosen[0], now))


def render_digest(digest: Digest) -> dict[str, Any]:
    """The digest's first message as an ephemeral answer; the rest is left for the channel's copy."""
    parts = build_digest(digest)
    first = parts[0]
    blocks: list[dict[str, Any]] = list(first["blocks"])
    if len(parts) > 1:
        note = f"…and more in {len(parts) - 1} further message(s): `pressbot digest {digest.spec.name} --preview`"
        blocks = [*blocks[:49], {"type": "context", "elements": [_mrkdwn(escape_slack(note))]}]
    return {"response_type": "ephemeral", "text": first["text"], "blocks": blocks}


def answer_feeds(session_factory: sessionmaker[Session], now: datetime) -> dict[str, Any]:
    """The reply to ``/pressbot feeds``."""
    with session_factory() as session:
        feeds = schedule_store.all_feed_health(session)
        mutes = verdict_store.muted_feeds(session, now)
    return render_feeds(feeds, mutes, now)


def _since(moment: datetime | None, now: datetime) -> str:
    if moment is None:
        return ""
    days = (now - moment).total_seconds() / 86400
    return f" since {moment:%Y-%m-%d %H:%M} UTC" + (f" ({days:.0f} d)" if days >= 1 else "")


def _feed_line(feed: FeedHealth, now: datetime) -> str:
    name = escape_feed_text(shorten(feed.name, 200))
    if feed.status == FeedStatus.DISABLED:
        reason = escape_feed_text(shorten(feed.disabled_reason or "disabled", ERROR_MAX))
        return f":no_entry: *{name}* — disabled: {reason}"
    failures = f"{feed.consecutive_failures} failure{'s' if feed.consecutive_failures != 1 else ''} in a row"
    error = escape_feed_text(shorten(feed.last_error or "unknown error", ERROR_MAX))
    return f":warning: *{name}* — failing{_since(feed.failing_since, now)}, {failures}: {error}"


def _mute_line(mute: FeedMute) -> str:
    by = f" by <@{mute.muted_by}>" if mute.muted_by and _USER_ID.match(mute.muted_by) else ""
    name = escape_feed_text(shorten(mute.name, 200))
    return (f":mute: *{name}* — muted{by} until {mute.muted_until:%Y-%m-%d %H:%M} UTC "
            f"(`/pressbot unmute {name}` ends it)")


def render_feeds(feeds: Sequence[FeedHealth], mutes: Sequence[FeedMute], now: datetime) -> dict[str, Any]:
    """Health at a glance: the counts, then each failing, disabled or muted feed."""
    troubled = [feed for feed in feeds if feed.status in (FeedStatus.FAILING, FeedStatus.DISABLED)]
    failing = sum(1 for feed in troubled if feed.status == FeedStatus.FAILING)
    counts = f"{len(feeds)} feeds: {failing} failing, {len(troubled) - failing} disabled, {len(mutes)} muted"
    if not troubled and not mutes:
        return _ephemeral(f"{counts}. Every feed answers.")
    lines = [_feed_line(feed, now) for feed in troubled] + [_mute_line(mute) for mute in mutes]
    blocks: list[dict[str, Any]] = [{"type": "context", "elements": [_mrkdwn(counts)]}]
    blocks += [{"type": "section", "text": _mrkdwn(line)} for line in lines[:FEEDS_SHOWN_MAX]]
    if len(lines) > FEEDS_SHOWN_MAX:
        more = f"…and {len(lines) - FEEDS_SHOWN_MAX} more: `pressbot feeds list`"
        blocks.append({"type": "context", "elements": [_mrkdwn(more)]})
    return _ephemeral(counts, blocks)
