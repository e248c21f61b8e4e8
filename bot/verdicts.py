"""The team's verdicts and mutes from Slack (issue 19): the alert's buttons and two ``/pressbot`` words.

Each alert carries "Relevant" / "Not relevant" buttons and an overflow that mutes its
feed (``bot.deliver.message.actions_block``). Slack sends a click as a ``block_actions``
envelope over the Socket Mode connection ``pressbot run`` holds; the socket-mode
listener has acknowledged it before anything here runs. Only pressbot's own action ids
on a message pressbot posted (its channel and ts are an alert's in the outbox) are
taken; anything else is one log line and ignored.

A verdict is recorded and its message edit queued in one transaction, so the edit goes
through the outbox of changes (``bot.store.changes``) with the same exactly-once steps
as every other edit; a click Slack delivers twice changes nothing the second time.

    /pressbot missed URL FLAG   a stored release FLAG did not catch, relevant for it
    /pressbot unmute NAME       end a feed's mute

``parse_alert_action`` and ``parse_feedback_command`` are pure; the rest is I/O.
"""

from __future__ import annotations

import logging
import re
import shlex
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.errors import SlackClientError
from slack_sdk.webhook import WebhookClient

from bot.deliver.message import MUTE_OPTIONS, NOT_RELEVANT_ACTION, OVERFLOW_ACTION, RELEVANT_ACTION, escape_slack
from bot.records import FeedMute
from bot.store import changes
from bot.store import verdicts as store

if TYPE_CHECKING:
    from slack_sdk.socket_mode.client import BaseSocketModeClient
    from slack_sdk.socket_mode.request import SocketModeRequest
    from sqlalchemy.orm import Session, sessionmaker

log = logging.getLogger(__name__)

VERDICT_ACTIONS = {RELEVANT_ACTION: True, NOT_RELEVANT_ACTION: False}
FIELD_MAX = 100  # a Slack id, a ts: anything longer is no Slack value
MUTE_REPEAT_WINDOW = timedelta(minutes=5)  # the same user muting again this close: Slack's retry
_TS = re.compile(r"^\d{1,12}\.\d{1,9}$")
_ID = re.compile(r"^[A-Z0-9]{2,40}$")
FEEDBACK_USAGE = "`/pressbot missed URL FLAG` reports a release a flag missed; `/pressbot unmute NAME` ends a mute."


@dataclass(frozen=True, slots=True)
class AlertAction:
    """One click on an alert's button or overflow, as Slack sent it. Made by ``parse_alert_action``."""

    channel_id: str
    message_ts: str
    user_id: str
    value: str | None  # the button's value: the alert id the message was built for
    action_ts: str | None
    relevant: bool | None = None  # a verdict; None for a mute
    mute_days: int | None = None
    response_url: str | None = None


def _text(value: Any, pattern: re.Pattern[str] | None = None) -> str | None:
    if not isinstance(value, str) or not value or len(value) > FIELD_MAX:
        return None
    return value if pattern is None or pattern.match(value) else None


def parse_alert_action(payload: Any) -> AlertAction | str:
    """The click in a ``block_actions`` payload, or why it is none of pressbot's (one line). Pure."""
    if not isinstance(payload, dict) or payload.get("type") != "block_actions":
        kind = payload.get("type") if isinstance(payload, dict) else type(payload).__name__
        return f"an interactive payload of type {str(kind)[:40]!r}"
    actions = payload.get("actions")
    action = _mapping(actions[0]) if isinstance(actions, list) and len(actions) == 1 else {}
    if not action:
        return "a block_actions payload without exactly one action"
    action_id = str(action.get("action_id"))[:60]
    if action_id not in (*VERDICT_ACTIONS, OVERFLOW_ACTION):
        return f"action id {action_id!r} is not pressbot's"
    container, channel, user = (_mapping(payload.get(key)) for key in ("container", "channel", "user"))
    channel_id = _text(container.get("channel_id") or channel.get("id"), _ID)
    message_ts = _text(container.get("message_ts"), _TS)
    user_id = _text(user.get("id"), _ID)
    if channel_id is None or message_ts is None or user_id is None:
        return f"action {action_id!r} without a channel, message ts or user"
    response_url = payload.get("response_url")
    click = AlertAction(
        channel_id=channel_id, message_ts=message_ts, user_id=user_id, value=None,
        action_ts=_text(action.get("action_ts"), _TS),
        response_url=response_url if isinstance(response_url, str) else None,
    )
    if action_id in VERDICT_ACTIONS:
        return replace(click, value=_text(action.get("value")), relevant=VERDICT_ACTIONS[action_id])
    option = str(_mapping(action.get("selected_option")).get("value"))
    days = MUTE_OPTIONS.get(option)
    if days is None:
        return f"overflow option {option[:60]!r} is not pressbot's"
    return replace(click, mute_days=days)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _until_text(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    return f"{moment.day} {moment:%b %Y, %H:%M} UTC"


def mute_text(mute: FeedMute) -> str:
    name = escape_slack(mute.name)
    return (f"{name} is muted until {_until_text(mute.muted_until)}: still polled and stored, its alerts held "
            f"(and not posted later). `/pressbot unmute {name}` ends it.")


class ActionHandler:
    """A socket-mode request listener for the alerts' buttons (the envelope is acked before it runs)."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.session_factory = session_factory
        self.clock = clock
        self.on_change = on_change  # a verdict's edit is queued: deliver it now, not at the next tick

    def __call__(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        if request.type != "interactive":
            return
        try:
            self.handle(request.payload)
        except Exception:
            # The SDK's worker thread would swallow it.
            log.exception("a Slack action could not be handled")

    def handle(self, payload: Any) -> str:
        """Take one click; returns what it did ("verdict", "repeat", "mute" or "ignored")."""
        action = parse_alert_action(payload)
        if isinstance(action, str):
            log.info("ignored a Slack action: %s", action)
            return "ignored"
        now = self.clock()
        with self.session_factory.begin() as session:
            alert_id = store.alert_of_message(session, action.channel_id, action.message_ts)
            if alert_id is None or (action.value is not None and action.value != str(alert_id)):
                log.info("ignored a Slack action: message %s in %s is no alert pressbot posted",
                         action.message_ts, action.channel_id)
                return "ignored"
            if action.relevant is None:
                feed_id, until = store.feed_of_alert(session, alert_id), now + timedelta(days=action.mute_days or 0)
                if _same_mute(store.feed_mute(session, feed_id), action.user_id, until):
                    return "repeat"  # Slack delivered the click again
                mute = store.mute_feed(session, feed_id, until=until, by=action.user_id)
            else:
                recorded = store.record_verdict(session, alert_id=alert_id, user_id=action.user_id,
                                                relevant=action.relevant, now=now, action_ts=action.action_ts)
                if recorded.changed:
                    changes.queue_alert_edit(session, alert_id, now)
        if action.relevant is None:
            log.info("feed %s muted until %s by %s", mute.name, mute.muted_until.isoformat(), action.user_id)
            respond(action.response_url, mute_text(mute))
            return "mute"
        if not recorded.changed:
            return "repeat"
        log.info("alert %d marked %s by %s", alert_id, "relevant" if action.relevant else "not relevant",
                 action.user_id)
        self.on_change()
        return "verdict"


def _same_mute(mute: FeedMute | None, user_id: str, until: datetime) -> bool:
    return mute is not None and mute.muted_by == user_id and abs(mute.muted_until - until) < MUTE_REPEAT_WINDOW


def respond(response_url: str | None, text: str) -> None:
    """An ephemeral one-line answer to whoever clicked, through the payload's response_url."""
    if not response_url:
        return
    try:
        response = WebhookClient(response_url, timeout=10).send_dict(
            {"response_type": "ephemeral", "replace_original": False, "text": text}
        )
    except (SlackClientError, OSError) as exc:
        log.warning("could not answer a Slack action: %s", exc)
        return
    if response.status_code != 200:
        log.warning("response_url answered HTTP %s: %s", response.status_code, response.body)


# -- /pressbot missed URL FLAG, /pressbot unmute NAME ---------------------------------------


@dataclass(frozen=True, slots=True)
class FeedbackCommand:
    """``missed URL FLAG`` or ``unmute NAME``. Made by ``parse_feedback_command``."""

    word: str
    args: tuple[str, ...]


_SLACK_LINK = re.compile(r"^<([^|>]+)(?:\|[^>]*)?>$")


def _unlink(word: str) -> str:
    # Slack may send a URL in command text as <https://…> or <https://…|label>.
    match = _SLACK_LINK.match(word)
    return match.group(1) if match else word


def parse_feedback_command(text: str) -> FeedbackCommand | str | None:
    """The feedback command in ``/pressbot`` text, its one-line usage problem, or None (a search). Pure."""
    words = text.strip().split(maxsplit=1)
    if not words or words[0].lower() not in ("missed", "unmute"):
        return None
    word, rest = words[0].lower(), words[1] if len(words) > 1 else ""
    rest = rest.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").replace("“", '"').replace("”", '"')
    try:
        args = tuple(_unlink(arg) for arg in shlex.split(rest))
    except ValueError:
        return f"`/pressbot {word}`: unbalanced quote"
    if word == "missed" and len(args) != 2:
        return "`/pressbot missed URL FLAG`: give the release's URL and the flag that missed it"
    if word == "unmute" and not args:
        return "`/pressbot unmute NAME`: give the feed's name"
    return FeedbackCommand(word, args if word == "missed" else (" ".join(args),))


def report_missed(
    session: Session, url: str, flag: str, *, flags: Collection[str], user_id: str, now: datetime
) -> str:
    """Record a miss; the one line to show (ValueError with the one-line problem)."""
    known = {name.lower(): name for name in flags}
    if flag.lower() not in known:
        raise ValueError(f"unknown flag {flag!r} (flags: {', '.join(sorted(flags)) or 'none'})")
    item_id = store.find_release(session, url)
    if item_id is None:
        raise ValueError(f"no stored release has the URL {url}")
    recorded = store.record_missed(session, item_id=item_id, flag=known[flag.lower()], user_id=user_id, now=now)
    verdict = recorded.verdict
    said = "recorded" if recorded.changed else "already recorded"
    caught = " (though it carries the flag now)" if known[flag.lower()] in store.item_flags(session, item_id) else ""
    return f"{said}: {verdict.title!r} ({verdict.feed_name}) is relevant for {verdict.flags[0]}, a miss{caught}"


def end_mute(session: Session, name: str, now: datetime) -> str:
    """Unmute the feed; the one line to show (ValueError with the one-line problem)."""
    feed_id = store.feed_id_named(session, name)
    if feed_id is None:
        raise ValueError(f"no feed named {name!r}")
    before = store.unmute_feed(session, feed_id)
    shown = before.name if before else name
    if before is None or not before.active(now):
        return f"{shown} was not muted"
    return f"{shown} unmuted: its new alerts are posted again (those held while muted are not)"


def answer_feedback(
    text: str,
    session_factory: sessionmaker[Session],
    *,
    flags: Collection[str],
    user_id: str,
    now: datetime,
) -> str | None:
    """The one-line answer to ``/pressbot missed …`` or ``/pressbot unmute …``; None for any other text."""
    command = parse_feedback_command(text)
    if command is None:
        return None
    if isinstance(command, str):
        return f"{command}. {FEEDBACK_USAGE}"
    try:
        with session_factory.begin() as session:
            if command.word == "missed":
                return report_missed(session, *command.args, flags=flags, user_id=user_id, now=now)
            return end_mute(session, command.args[0], now)
    except ValueError as exc:
        return str(exc)
