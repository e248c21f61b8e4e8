"""The ``/pressbot`` slash command, answered over Slack Socket Mode.

Socket Mode lets the worker open a WebSocket to Slack instead of exposing a public
URL, which most small NGOs do not have. ``pressbot run`` starts it when
``SLACK_APP_TOKEN`` (``xapp-…``) is set. Slack wants every envelope acknowledged
within 3 seconds, so the ack goes first; the answer follows as an ephemeral Block
Kit message through the command's ``response_url`` (or chat.postEphemeral).

    /pressbot icc visa since:30d flag:icc feed:"UN News" lang:fr limit:10 sort:date

``parse_slash_query`` and ``render_hits`` are pure; the rest is I/O.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Collection, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from bot.deliver import escape_feed_text, escape_slack, make_client, shorten, slack_link
from bot.durations import parse_when
from bot.errors import ConfigError, QuerySyntaxError
from bot.query import MARK_END, MARK_START, QueryFilters, QueryHit
from bot.slashdigest import answer_digest, answer_feeds
from bot.store.search import search_items
from bot.summaries import with_summaries
from bot.summarize import summary_of
from bot.verdicts import ActionHandler, answer_feedback

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker

    from bot.config import Settings

log = logging.getLogger(__name__)

DEFAULT_LIMIT = 5  # an ephemeral message is read on a phone too
MAX_LIMIT = 20
SNIPPET_MAX = 300
USAGE = (
    "Search the releases pressbot has stored: `/pressbot icc visa since:30d`. "
    "`/pressbot digest [NAME]`: this period's digest so far; `/pressbot feeds`: failing and muted feeds.\n"
    '`"exact phrase"`, `a OR b`, `-word`, `visa*`; filters `flag:icc` `feed:"UN News"` `tag:ngo` '
    "`lang:fr` `since:2w` `until:2024-05-31` `limit:10` `sort:date`.\n"
    "`/pressbot missed URL FLAG` reports a release a flag missed; `/pressbot unmute NAME` ends a feed's mute."
)
_FILTER = re.compile(r'(?<!\S)(flag|feed|tag|lang|since|until|limit|sort):(?:"([^"]*)"|(\S+))', re.IGNORECASE)
# Slack escapes these three in command text; phones and macOS turn straight quotes curly.
_SLACK_TEXT = str.maketrans({"“": '"', "”": '"', "„": '"', "«": '"', "»": '"'})


def _slack_unescape(text: str) -> str:
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").translate(_SLACK_TEXT)


def parse_slash_query(text: str, *, now: datetime) -> QueryFilters:
    """``icc visa since:30d flag:icc`` → QueryFilters; QuerySyntaxError for a bad filter value."""
    values: dict[str, list[str]] = {}

    def take(match: re.Match[str]) -> str:
        value = match.group(2) if match.group(2) is not None else match.group(3)
        values.setdefault(match.group(1).lower(), []).append(value)
        return " "

    rest = " ".join(_FILTER.sub(take, _slack_unescape(text)).split())
    try:
        since = parse_when(values["since"][-1], now) if "since" in values else None
        until = parse_when(values["until"][-1], now, end=True) if "until" in values else None
    except ValueError as exc:
        raise QuerySyntaxError(str(exc)) from None
    limit_text = values.get("limit", [str(DEFAULT_LIMIT)])[-1]
    if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
        raise QuerySyntaxError(f"limit:{limit_text} — give a number from 1 to {MAX_LIMIT}")
    sort = values.get("sort", ["relevance"])[-1].lower()
    if sort not in ("relevance", "date"):
        raise QuerySyntaxError(f"sort:{sort} — use sort:relevance or sort:date")
    return QueryFilters(
        text=rest or None,
        flags=tuple(values.get("flag", ())),
        feeds=tuple(values.get("feed", ())),
        tags=tuple(values.get("tag", ())),
        languages=tuple(values.get("lang", ())),
        since=since,
        until=until,
        limit=int(limit_text),
        sort=sort,
    )


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: feed text must not turn into links, #channels or @mentions.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _snippet_mrkdwn(hit: QueryHit) -> str:
    """The snippet (or summary) escaped first, then the matched words made *bold*."""
    text = hit.snippet or hit.summary or ""
    return escape_feed_text(shorten(text, SNIPPET_MAX)).replace(MARK_START, "*").replace(MARK_END, "*")


def _hit_block(hit: QueryHit) -> dict[str, Any]:
    date = hit.published or hit.first_seen
    about = [escape_feed_text(hit.feed_name), date.strftime("%Y-%m-%d")]
    if hit.flags:
        about.append("flags: " + ", ".join(escape_feed_text(flag) for flag in hit.flags))
    lines = [f"*{slack_link(hit.url, hit.title)}*", "_" + " · ".join(about) + "_"]
    snippet = _snippet_mrkdwn(hit)
    if snippet:
        lines.append(snippet)
    return {"type": "section", "text": _mrkdwn("\n".join(lines))}


def render_hits(hits: Sequence[QueryHit], query: str = "") -> dict[str, Any]:
    """An ephemeral Block Kit answer: one section per release, newest or best first."""
    shown = f"`{escape_slack(shorten(query, 200))}`" if query.strip() else ""
    asked = f" for {shown}" if shown else ""
    if not hits:
        text = f"No stored release matches {shown}." if shown else "No stored release matches."
        return {"response_type": "ephemeral", "text": text, "blocks": [{"type": "section", "text": _mrkdwn(text)}]}
    count = f"{len(hits)} release{'s' if len(hits) > 1 else ''}{asked}"
    blocks: list[dict[str, Any]] = [{"type": "context", "elements": [_mrkdwn(count)]}]
    for hit in hits:
        blocks += [{"type": "divider"}, _hit_block(hit)]
    fallback = count + ": " + "; ".join(shorten(hit.title, 80) for hit in hits)
    return {"response_type": "ephemeral", "text": escape_slack(fallback), "blocks": blocks}


def render_problem(problem: str) -> dict[str, Any]:
    text = f"{escape_slack(problem)}\n{USAGE}" if problem else USAGE
    return {"response_type": "ephemeral", "text": text, "blocks": [{"type": "section", "text": _mrkdwn(text)}]}


def answer(
    text: str, session_factory: sessionmaker[Session], now: datetime, settings: Settings | None = None
) -> dict[str, Any]:
    """The reply to one ``/pressbot TEXT``: a subcommand's, else a search's."""
    if not text.strip() or text.strip().lower() == "help":
        return render_problem("")
    word, _, rest = text.strip().partition(" ")
    # Subcommands (issue 19); each in its own module, beside the search.
    if word.lower() == "digest":
        return answer_digest(_slack_unescape(rest), settings, session_factory, now)
    if word.lower() == "feeds" and not rest.strip():
        return answer_feeds(session_factory, now)
    try:
        filters = parse_slash_query(text, now=now)
        with session_factory() as session:
            hits = list(with_summaries(session, search_items(session, filters), summary_of))
    except QuerySyntaxError as exc:
        return render_problem(str(exc))
    return render_hits(hits, _slack_unescape(text))


class SlashCommandHandler:
    """A socket-mode request listener: ack, search, reply."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        web_client: WebClient,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        settings: Settings | None = None,
        flags: Collection[str] = (),
    ) -> None:
        self.session_factory = session_factory
        self.web_client = web_client
        self.clock = clock
        self.settings = settings  # the digests' configuration, for `/pressbot digest`
        self.flags = flags  # the configured flag names, for `/pressbot missed URL FLAG`

    def __call__(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        # Every envelope is acknowledged, or Slack sends it again.
        client.send_socket_mode_response(SocketModeResponse(envelope_id=request.envelope_id))
        if request.type != "slash_commands":
            return
        payload = request.payload
        try:
            reply = self.feedback(payload) or answer(
                payload.get("text") or "", self.session_factory, self.clock(), self.settings
            )
        except Exception:
            # The SDK's worker thread would swallow it: log it and tell the user.
            log.exception("slash command %r failed", payload.get("text"))
            reply = render_problem("pressbot could not search just now; the error is in its log.")
        self.respond(payload, reply)

    def feedback(self, payload: dict[str, Any]) -> dict[str, Any] | None:
        """``/pressbot missed URL FLAG`` and ``/pressbot unmute NAME`` (bot.verdicts), else None."""
        line = answer_feedback(
            payload.get("text") or "", self.session_factory, flags=self.flags,
            user_id=str(payload.get("user_id") or "unknown")[:100], now=self.clock(),
        )
        if line is None:
            return None
        text = escape_slack(line)
        return {"response_type": "ephemeral", "text": text, "blocks": [{"type": "section", "text": _mrkdwn(text)}]}

    def respond(self, payload: dict[str, Any], reply: dict[str, Any]) -> None:
        try:
            if payload.get("response_url"):
                response = WebhookClient(payload["response_url"], timeout=10).send_dict(reply)
                if response.status_code != 200:
                    log.warning("response_url answered HTTP %s: %s", response.status_code, response.body)
                return
            self.web_client.chat_postEphemeral(
                channel=payload["channel_id"], user=payload["user_id"], text=reply["text"], blocks=reply["blocks"]
            )
        except (SlackApiError, SlackClientError, OSError) as exc:
            log.warning("could not answer a slash command: %s", exc)


def start_socket_mode(
    settings: Settings, session_factory: sessionmaker[Session], on_change: Callable[[], None] = lambda: None
) -> SocketModeClient:
    """Connect to Slack, answer ``/pressbot`` and take the alerts' buttons until ``client.close()``.

    ``on_change``: a verdict queued an edit of its alert (the worker delivers it now).
    """
    if not settings.slack_app_token:
        raise ConfigError("SLACK_APP_TOKEN is not set: Socket Mode needs an app-level token (xapp-…)")
    web_client = make_client(settings.slack_token or "", settings.slack_api_url)
    client = SocketModeClient(app_token=settings.slack_app_token, web_client=web_client, logger=log)
    # In this order: the slash-command handler acknowledges every envelope first.
    client.socket_mode_request_listeners.append(
        SlashCommandHandler(session_factory, web_client, settings=settings, flags=settings.flag_rules.names)
    )
    client.socket_mode_request_listeners.append(ActionHandler(session_factory, on_change=on_change))
    try:
        client.connect()
    except BaseException:
        client.close()  # its worker threads, or each retry would leave a set behind
        raise
    return client
