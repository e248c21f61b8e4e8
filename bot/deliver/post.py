"""Posting to Slack: the client, the pacing, the exactly-once steps of one run, Slack's answers.

The only I/O of delivery. ``post_alert`` and ``find_posted`` classify what Slack said
into a ``DeliveryOutcome`` that store records; ``DeliveryRun`` takes claimed alerts
through the outbox's steps (mark, post, record) and knows when to stop asking Slack.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from http.client import HTTPException
from typing import Any
from urllib.error import URLError

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler, RateLimitErrorRetryHandler
from slack_sdk.http_retry.builtin_interval_calculators import FixedValueRetryIntervalCalculator
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

from bot.deliver.message import EVENT_TYPE, build_message, text_message
from bot.errors import DeliveryError
from bot.records import AlertToSend, DeliveryOutcome

log = logging.getLogger(__name__)

_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")

# Errors no retry can fix until the operator acts, by what they concern.
_TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "ekm_access_denied",
        "team_access_not_granted",
        "org_login_required",
    }
)
_CHANNEL_ERRORS = frozenset({"channel_not_found", "not_in_channel", "is_archived", "restricted_action"})
# Slack answered but could not finish: retry later. fatal_error may have half-succeeded.
_TRANSIENT_ERRORS = frozenset(
    {
        "ratelimited",
        "internal_error",
        "fatal_error",
        "service_unavailable",
        "request_timeout",
        "team_added_to_org",
    }
)



class _RateLimitRetry(RateLimitErrorRetryHandler):
    """slack-sdk's 429 handler, with its wait going through an injectable ``sleep``.

    Sleeps Retry-After plus up to a second of jitter, as the stock handler does.
    """

    def __init__(self, max_retry_count: int, sleep: Callable[[float], None]) -> None:
        super().__init__(max_retry_count=max_retry_count)
        self._sleep = sleep

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        if response is None:
            raise error or RuntimeError("rate-limit retry without a response")
        state.next_attempt_requested = True
        retry_after = _seconds(_header(response.headers, "retry-after"))
        self._sleep((retry_after if retry_after is not None else 1.0) + random.random())
        state.increment_current_attempt()


def make_client(
    token: str,
    base_url: str,
    *,
    timeout: float = 15.0,
    rate_limit_retries: int = 3,
    connect_retry_interval: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> WebClient:
    """A WebClient that waits out 429s (Retry-After) and retries a refused connection once.

    No retry on 5xx, resets or timeouts: chat.postMessage is not idempotent and Slack
    may have posted before failing, so those are left to the next pass, which checks the
    channel history first. urlopen wraps only failures while connecting or sending in
    URLError; the server cannot have acted on those.
    """
    base_url = base_url if base_url.endswith("/") else base_url + "/"
    handlers = [
        _RateLimitRetry(rate_limit_retries, sleep),
        ConnectionErrorRetryHandler(
            max_retry_count=1,
            interval_calculator=FixedValueRetryIntervalCalculator(connect_retry_interval),
            error_types=[URLError],
        ),
    ]
    return WebClient(token=token, base_url=base_url, timeout=int(max(timeout, 1)), retry_handlers=handlers)


class Pacer:
    """Spaces posts to one channel: Slack accepts about one message per second per channel."""

    def __init__(
        self,
        interval: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}

    def wait(self, channel: str) -> None:
        last = self._last.get(channel)
        if last is not None:
            delay = last + self.interval - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._last[channel] = self._clock()


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return seconds if seconds >= 0 else None


def _header(headers: Any, name: str) -> Any:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value[0] if isinstance(value, list) else value
    return None


def classify_api_error(alert_id: int, exc: SlackApiError) -> DeliveryOutcome:
    """Slack's answer to a failed call as an outcome: transient, or permanent with its error."""
    response = exc.response
    status = getattr(response, "status_code", None) or 0
    data = response.data if isinstance(getattr(response, "data", None), dict) else {}
    # A proxy's or load balancer's HTML error page is no Slack error code: name the status.
    error = str(data.get("error") or "unknown_error") if status == 200 else f"HTTP {status}"
    if status == 429 or error == "ratelimited":
        retry_after = _seconds(_header(response.headers, "retry-after"))
        return DeliveryOutcome(alert_id, sent=False, error="ratelimited", retry_after_seconds=retry_after)
    if status >= 500 or error in _TRANSIENT_ERRORS:
        # A 5xx may come after the message was stored (fatal_error says so outright).
        return DeliveryOutcome(alert_id, sent=False, error=error, maybe_posted=True)
    return DeliveryOutcome(alert_id, sent=False, error=error, permanent=True)


def error_scope(outcome: DeliveryOutcome) -> str:
    """What a permanent failure concerns: "token" (every alert), "channel", or "message"."""
    if outcome.error in _TOKEN_ERRORS:
        return "token"
    if outcome.error in _CHANNEL_ERRORS:
        return "channel"
    return "message"


def network_outcome(alert_id: int, exc: Exception) -> DeliveryOutcome:
    # urlopen raises URLError only while connecting or sending: Slack never saw the
    # request. A timeout or reset while waiting for the answer may come after the post.
    unsent = isinstance(exc, URLError)
    reason = exc.reason if isinstance(exc, URLError) else exc
    error = f"network: {type(reason).__name__}: {reason}"[:500]
    return DeliveryOutcome(alert_id, sent=False, error=error, maybe_posted=not unsent)


def _post(client: WebClient, alert_id: int, message: dict[str, Any]) -> DeliveryOutcome:
    try:
        response = client.chat_postMessage(**message)
    except SlackApiError as exc:
        return classify_api_error(alert_id, exc)
    except (OSError, HTTPException) as exc:  # URLError, TimeoutError, RemoteDisconnected…
        return network_outcome(alert_id, exc)
    except SlackClientError as exc:  # e.g. a base URL urllib refuses: configuration
        return DeliveryOutcome(alert_id, sent=False, error=str(exc)[:500], permanent=True)
    channel_id = response.get("channel")
    return DeliveryOutcome(
        alert_id, sent=True, slack_ts=str(response["ts"]), channel_id=str(channel_id) if channel_id else None
    )


def post_alert(client: WebClient, alert: AlertToSend) -> DeliveryOutcome:
    """Post one alert; never raises for what Slack or the network did."""
    return _post(client, alert.alert_id, build_message(alert))


def post_text(client: WebClient, channel: str, text: str) -> DeliveryOutcome:
    """Post a plain message (test, operations notice); ``text`` is escaped on the way."""
    return _post(client, 0, text_message(channel, text))


def post_test_message(client: WebClient, channel: str) -> str:
    """Post ``pressbot slack test``'s message; its ts, or DeliveryError with Slack's exact error."""
    outcome = post_text(client, channel, "pressbot test message: Slack delivery works.")
    if not outcome.sent:
        raise DeliveryError(outcome.error or "unknown error", permanent=outcome.permanent)
    return outcome.slack_ts or ""


def channel_id_of(client: WebClient, channel: str) -> str | None:
    """conversations.history wants an id; chat.postMessage took a name."""
    if _CHANNEL_ID.match(channel):
        return channel
    name = channel.lstrip("#")
    pages = client.conversations_list(types="public_channel,private_channel", exclude_archived=True, limit=1000)
    for page in pages:  # slack-sdk follows response_metadata.next_cursor
        for found in page.get("channels", []):
            if found.get("name") == name:
                return str(found["id"])
    return None


def find_posted(client: WebClient, channel: str, alert_id: int, oldest: datetime | None) -> str | None:
    """The ts of the message already posted for ``alert_id`` since ``oldest``, if any.

    Raises DeliveryError when the history cannot be read (scopes, network): then
    nobody can tell whether posting again would post twice.
    """
    return find_tagged(client, channel, oldest, EVENT_TYPE, {"alert_id": alert_id})


def find_tagged(
    client: WebClient, channel: str, oldest: datetime | None, event_type: str, payload: dict[str, Any]
) -> str | None:
    """The ts of a message since ``oldest`` whose metadata has ``event_type`` and ``payload``'s values.

    What ``find_posted`` does for alerts, for any message pressbot tags (digests too).
    """
    try:
        channel_id = channel_id_of(client, channel)
        if channel_id is None:
            return None  # no such channel: nothing can have been posted there
        oldest_ts = f"{oldest.timestamp() - 60:.6f}" if oldest else None  # clock skew margin
        pages = client.conversations_history(channel=channel_id, oldest=oldest_ts, include_all_metadata=True, limit=200)
        for page in pages:
            for message in page.get("messages", []):
                if tagged(message, event_type, payload):
                    return str(message["ts"])
    except SlackApiError as exc:
        outcome = classify_api_error(0, exc)  # only its error and permanence are read
        message = f"cannot read {channel} history: {outcome.error}"
        raise DeliveryError(message, permanent=outcome.permanent) from exc
    except (OSError, HTTPException, SlackClientError) as exc:
        raise DeliveryError(f"cannot read {channel} history: {exc}", permanent=False) from exc
    return None


def find_tagged_reply(
    client: WebClient, channel_id: str, thread_ts: str, event_type: str, payload: dict[str, Any], what: str
) -> str | None:
    """The ts of a reply in ``thread_ts``'s thread whose metadata has ``event_type`` and ``payload``'s values.

    ``find_tagged`` for a thread (an alert's replies, a digest's later parts); ``what``
    names the thread when Slack cannot be read.
    """
    try:
        pages = client.conversations_replies(channel=channel_id, ts=thread_ts, include_all_metadata=True, limit=200)
        for page in pages:
            for message in page.get("messages", []):
                if tagged(message, event_type, payload):
                    return str(message["ts"])
    except SlackApiError as exc:
        outcome = classify_api_error(0, exc)  # only its error and permanence are read
        raise DeliveryError(f"cannot read {what}: {outcome.error}", permanent=outcome.permanent) from exc
    except (OSError, HTTPException, SlackClientError) as exc:
        raise DeliveryError(f"cannot read {what}: {exc}", permanent=False) from exc
    return None


def tagged(message: dict[str, Any], event_type: str, payload: dict[str, Any]) -> bool:
    """Whether a message's metadata is ``event_type`` with every value of ``payload``."""
    metadata = message.get("metadata") or {}
    found = metadata.get("event_payload") or {}
    return bool(metadata.get("event_type") == event_type and all(found.get(k) == v for k, v in payload.items()))


def post_message(client: WebClient, ref_id: int, message: dict[str, Any]) -> DeliveryOutcome:
    """Post built ``chat.postMessage`` arguments; the outcome carries ``ref_id``. Never raises for Slack."""
    return _post(client, ref_id, message)


class DeliveryRun:
    """One run of posting claimed alerts: the exactly-once steps in order, and when to stop.

    The caller owns persistence, each call its own committed transaction: ``mark``
    records that a post is about to start (False: the claim was lost to another worker),
    ``record`` stores an outcome, ``release`` hands back alerts left untried. A run stops
    asking Slack what cannot succeed now: after a token error every alert fails with it,
    after a channel error that channel's do, after a 429 that channel waits for the next
    pass, and after a network or server failure the whole run stops.
    """

    def __init__(self, client: WebClient, pacer: Pacer) -> None:
        self.client = client
        self.pacer = pacer
        self.sent = 0
        self.failed = 0
        self.stopped = False
        self._token_error: str | None = None
        self._channel_errors: dict[str, str] = {}
        self._paused: set[str] = set()

    def deliver(
        self,
        alerts: Iterable[AlertToSend],
        *,
        mark: Callable[[int], bool],
        record: Callable[[DeliveryOutcome], None],
        release: Callable[[list[int]], None],
    ) -> None:
        untried = []
        for alert in alerts:
            if self.stopped or alert.channel in self._paused:
                untried.append(alert.alert_id)
                continue
            outcome = self._known_failure(alert) or self._attempt(alert, mark)
            if outcome is not None:
                record(outcome)
                self._note(alert, outcome)
        if untried:
            release(untried)

    def _known_failure(self, alert: AlertToSend) -> DeliveryOutcome | None:
        error = self._token_error or self._channel_errors.get(alert.channel)
        if not error:
            return None
        if alert.outcome_unknown:
            # An earlier post may be in Slack: keep that trace, and tell the operator.
            error = (
                f"{error}; it may already be in {alert.channel}: "
                f"check, then `pressbot alerts retry {alert.alert_id}`"
            )
        return DeliveryOutcome(
            alert.alert_id, sent=False, error=error, permanent=True, maybe_posted=alert.outcome_unknown
        )

    def _attempt(self, alert: AlertToSend, mark: Callable[[int], bool]) -> DeliveryOutcome | None:
        if alert.outcome_unknown:
            try:
                ts = find_posted(self.client, alert.channel, alert.alert_id, alert.posting_started_at)
            except DeliveryError as exc:
                error = f"{exc}; check the channel, then `pressbot alerts retry {alert.alert_id}`"
                return DeliveryOutcome(
                    alert.alert_id, sent=False, error=error, permanent=exc.permanent, maybe_posted=True
                )
            if ts is not None:
                log.info("alert %d was already posted to %s (ts %s)", alert.alert_id, alert.channel, ts)
                channel_id = alert.channel if _CHANNEL_ID.match(alert.channel) else None
                return DeliveryOutcome(alert.alert_id, sent=True, slack_ts=ts, channel_id=channel_id)
        self.pacer.wait(alert.channel)
        if not mark(alert.alert_id):
            return None
        return post_alert(self.client, alert)

    def _note(self, alert: AlertToSend, outcome: DeliveryOutcome) -> None:
        if outcome.sent:
            self.sent += 1
        elif outcome.permanent:
            self.failed += 1
            log.warning("alert %d to %s failed: %s", alert.alert_id, alert.channel, outcome.error)
            scope = error_scope(outcome)
            if scope == "token":
                self._token_error = outcome.error
            elif scope == "channel":
                self._channel_errors[alert.channel] = outcome.error or "channel error"
        elif outcome.error == "ratelimited":
            self._paused.add(alert.channel)
        else:
            log.warning("Slack unreachable, alerts stay pending: %s", outcome.error)
            self.stopped = True
