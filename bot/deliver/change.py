"""Changes to posted alerts in Slack: edits (chat.update) and thread replies, exactly once.

``send_change`` first settles a change whose earlier attempt may have reached Slack:
an edit is done when the message's metadata already names this change (or a later
one), a reply when the thread holds a reply carrying its id. Only then is the call
made, so neither a crash nor a lost answer edits or replies twice.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from http.client import HTTPException
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError

from bot.deliver.message import CHANGE_EVENT_TYPE, build_edit, build_reply
from bot.deliver.post import Pacer, channel_id_of, classify_api_error, find_tagged_reply, network_outcome
from bot.errors import DeliveryError
from bot.records import ChangeKind, ChangeToSend, DeliveryOutcome

log = logging.getLogger(__name__)


def _change_id(message: dict[str, Any], event_type: str) -> int | None:
    metadata = message.get("metadata") or {}
    payload = metadata.get("event_payload") or {}
    value = payload.get("change_id")
    return value if metadata.get("event_type") == event_type and isinstance(value, int) else None


def already_applied(client: WebClient, channel_id: str, change: ChangeToSend) -> str | None:
    """The ts that shows the change is in Slack (the message, or the reply), else None.

    Raises DeliveryError when Slack cannot be read: then nobody can tell.
    """
    try:
        if change.kind == ChangeKind.EDIT:
            page = client.conversations_history(
                channel=channel_id, latest=change.message_ts, oldest=change.message_ts, inclusive=True,
                include_all_metadata=True, limit=1,
            )
            messages: list[dict[str, Any]] = page.get("messages", [])
            for message in messages:
                applied = _change_id(message, "pressbot_alert")
                if message.get("ts") == change.message_ts and applied is not None and applied >= change.change_id:
                    return change.message_ts
            return None
        return find_tagged_reply(
            client, channel_id, change.message_ts, CHANGE_EVENT_TYPE, {"change_id": change.change_id},
            "the alert's message",
        )
    except SlackApiError as exc:
        outcome = classify_api_error(change.change_id, exc)
        raise DeliveryError(f"cannot read the alert's message: {outcome.error}", permanent=outcome.permanent) from exc
    except (OSError, HTTPException, SlackClientError) as exc:
        raise DeliveryError(f"cannot read the alert's message: {exc}", permanent=False) from exc
    return None


def _call(client: WebClient, change: ChangeToSend, channel_id: str) -> DeliveryOutcome:
    try:
        if change.kind == ChangeKind.EDIT:
            response = client.chat_update(**build_edit(change, channel_id))
            return DeliveryOutcome(change.change_id, sent=True, slack_ts=change.message_ts)
        response = client.chat_postMessage(**build_reply(change, channel_id))
    except SlackApiError as exc:
        return classify_api_error(change.change_id, exc)
    except (OSError, HTTPException) as exc:
        return network_outcome(change.change_id, exc)
    except SlackClientError as exc:
        return DeliveryOutcome(change.change_id, sent=False, error=str(exc)[:500], permanent=True)
    return DeliveryOutcome(change.change_id, sent=True, slack_ts=str(response["ts"]))


def send_change(
    client: WebClient, change: ChangeToSend, mark: Callable[[int], bool]
) -> tuple[DeliveryOutcome | None, str | None]:
    """Apply one change once: (the outcome, or None when the claim was lost; the channel id used)."""
    try:
        channel_id = change.channel_id or channel_id_of(client, change.alert.channel)
        if channel_id is None:
            return DeliveryOutcome(change.change_id, sent=False, error="channel_not_found", permanent=True), None
        if change.outcome_unknown:
            ts = already_applied(client, channel_id, change)
            if ts is not None:
                log.info("change %d was already applied in Slack", change.change_id)
                return DeliveryOutcome(change.change_id, sent=True, slack_ts=ts), channel_id
    except DeliveryError as exc:
        outcome = DeliveryOutcome(
            change.change_id, sent=False, error=str(exc), permanent=exc.permanent, maybe_posted=change.outcome_unknown
        )
        return outcome, None
    except SlackApiError as exc:
        return classify_api_error(change.change_id, exc), None
    if not mark(change.change_id):
        return None, channel_id
    return _call(client, change, channel_id), channel_id


@dataclass(slots=True)
class ChangeRun:
    """What one run of ``deliver_changes`` did."""

    edits: int = 0
    replies: int = 0
    failed: int = 0  # failed for good
    stopped: bool = False  # Slack stopped answering: the rest waits for the next run


def deliver_changes(
    client: WebClient,
    changes: Iterable[ChangeToSend],
    *,
    pacer: Pacer,
    mark: Callable[[int], bool],
    record: Callable[[DeliveryOutcome, str | None], None],
    release: Callable[[list[int]], None],
) -> ChangeRun:
    """Send claimed changes in order; how many edits and replies were applied, and whether Slack stopped answering."""
    run, untried = ChangeRun(), []
    for change in changes:
        if run.stopped:
            untried.append(change.change_id)
            continue
        pacer.wait(change.alert.channel)
        outcome, channel_id = send_change(client, change, mark)
        if outcome is None:
            continue
        record(outcome, channel_id)
        if outcome.sent:
            run.edits += change.kind == ChangeKind.EDIT
            run.replies += change.kind == ChangeKind.REPLY
        elif outcome.permanent:
            run.failed += 1
        else:
            log.warning("Slack did not take change %d, it stays pending: %s", change.change_id, outcome.error)
            run.stopped = True
    if untried:
        release(untried)
    return run
