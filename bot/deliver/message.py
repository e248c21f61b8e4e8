"""Slack messages, built from records: pure (no I/O, no clock, no settings).

``build_message`` turns an ``AlertToSend`` into ``chat.postMessage`` arguments and
escapes every piece of feed text as its last step, so a release can never ping a
channel or disguise a link. ``format_for_terminal`` is the same alert as plain text,
printed when there is no token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from bot.records import AlertToSend, ChangeToSend, FlagMatch, GroupCopy, VerdictMark
from bot.urls import http_url_parts

# Slack's documented limits (Block Kit reference; chat.postMessage "text" field).
SECTION_TEXT_MAX = 3000
CONTEXT_TEXT_MAX = 3000
MESSAGE_TEXT_MAX = 40_000
BLOCKS_MAX = 50
# Our own choices: a message that reads at a glance.
TITLE_MAX = 300
SUMMARY_MAX = 700
SENTENCE_MAX = 400
SENTENCES_PER_FLAG = 3
# title, context, "also published", summary, verdicts and the buttons come besides
FLAG_BLOCKS_MAX = BLOCKS_MAX - 6

EVENT_TYPE = "pressbot_alert"
CHANGE_EVENT_TYPE = "pressbot_alert_change"  # a thread reply's metadata: which change it is
REPLY_TEXT_MAX = 1000
ELLIPSIS = "…"

# The interactive parts of an alert (issue 19). Slack sends these action ids back in a
# block_actions payload; pressbot accepts no other (bot.verdicts).
ACTIONS_BLOCK_ID = "pressbot_alert_actions"
RELEVANT_ACTION = "pressbot_relevant"
NOT_RELEVANT_ACTION = "pressbot_not_relevant"
OVERFLOW_ACTION = "pressbot_alert_menu"
MUTE_OPTIONS = {"pressbot_mute_7d": 7, "pressbot_mute_1d": 1}  # overflow option value → days
VERDICT_USERS_SHOWN = 10  # per verdict in the context line, then "and N more"
_SLACK_USER_ID = re.compile(r"^[UW][A-Z0-9]{2,30}$")

_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# mrkdwn has no escape for its emphasis marks: a "*" in a title broke the bold around it
# (issue 14). Look-alikes show the text as written and format nothing.
_LOOK_ALIKES = str.maketrans({"*": "\u2217", "~": "\u223c", "`": "\u02cb"})
# Invisible characters that reorder or hide text (a U+202E override shows "exe.txt" for
# "txt.exe"), C0/C1 controls and zero-width characters: dropped.
_HIDDEN = "\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff"
# \x02 and \x03 stay: search marks matched words with them (store.search.MARK_START/END).
_INVISIBLE = re.compile(f"[\x00\x01\x04-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f{_HIDDEN}]")
# A link target must not end the <url|label> control sequence early (Slack formatting docs).
_URL_UNSAFE = re.compile(f"[|<>\\s\"\x00-\x1f\x7f-\x9f{_HIDDEN}]")
# A link longer than this is dropped, the label kept: a section holds 3,000 characters,
# and a 10,000-character URL made Slack refuse the whole alert (invalid_blocks).
LINK_MAX = 2000


def escape_slack(text: str) -> str:
    """Escape &, < and > so text is shown as written, never as a Slack control sequence."""
    return text.translate(_ESCAPES)


def escape_feed_text(text: str) -> str:
    """Feed text for mrkdwn: escaped, without hidden characters, its emphasis marks inert."""
    return escape_slack(_INVISIBLE.sub("", text).translate(_LOOK_ALIKES))


def shorten(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary, marked with an ellipsis."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: max(limit - len(ELLIPSIS), 0)]
    space = cut.rfind(" ")
    if space > len(cut) // 2:  # a boundary reasonably close to the limit
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + ELLIPSIS


def escape_within(text: str, limit: int) -> str:
    """Shorten, then escape, so that the escaped text fits ``limit`` (escapes lengthen it)."""
    budget = limit
    while True:
        escaped = escape_feed_text(shorten(text, budget))
        if len(escaped) <= limit or budget <= 1:
            return escaped[:limit] if len(escaped) > limit else escaped
        budget -= len(escaped) - limit


def safe_url(url: str | None) -> str | None:
    """An http(s) URL fit for a <url|label> link, or None when it is anything else."""
    if not url:
        return None
    url = url.strip()
    if http_url_parts(url) is None:
        return None
    encoded = _URL_UNSAFE.sub(lambda match: quote(match.group(), safe=""), url)
    return encoded.translate(_ESCAPES)


def slack_link(url: str | None, label: str, label_max: int = TITLE_MAX) -> str:
    """``<url|label>`` with the label escaped; just the escaped label when the URL is unsafe."""
    text = escape_within(label, label_max) or "(untitled)"
    target = safe_url(url)
    return f"<{target}|{text}>" if target and len(target) <= LINK_MAX else text


def _mrkdwn(text: str) -> dict[str, Any]:
    # verbatim: Slack would otherwise turn bare URLs, #names and some @mentions into links.
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _date_line(published: datetime | None) -> str:
    if published is None:
        return "date unknown"
    published = published.astimezone(UTC)
    return f"{published.day} {published:%b %Y, %H:%M} UTC"


def _sentence_with_phrase(match: FlagMatch, limit: int = SENTENCE_MAX) -> str:
    """The sentence, centred on the phrase, with the phrase in bold; every part escaped."""
    sentence = " ".join(match.sentence.split())
    start = sentence.lower().find(match.phrase.lower()) if match.phrase else -1
    if start < 0:
        return escape_within(sentence or match.phrase, limit)
    end = start + len(match.phrase)
    phrase = escape_within(sentence[start:end], limit // 3)
    room = max(limit - len(phrase) - 3, 0) // 2
    rest = sentence[end:]
    after = (" " if rest[:1].isspace() else "") + escape_within(rest, room)
    return f"{_tail(sentence[:start], room)}*{phrase}*{after.rstrip()}"


def _tail(text: str, limit: int) -> str:
    """The end of ``text`` within ``limit`` escaped characters, cut at a word boundary."""
    escaped = escape_feed_text(text)
    budget = limit
    while len(escaped) > limit and budget > 1:
        cut = text[-(budget - 1) :]
        space = cut.find(" ")
        if 0 <= space < len(cut) // 2:
            cut = cut[space + 1 :]
        escaped = escape_feed_text(ELLIPSIS + cut)
        budget -= max(len(escaped) - limit, 1)
    return escaped if len(escaped) <= limit else ""


def _flag_sections(matches: Iterable[FlagMatch]) -> list[dict[str, Any]]:
    by_flag: dict[str, list[FlagMatch]] = {}
    for match in matches:
        by_flag.setdefault(match.flag, []).append(match)
    blocks = []
    for flag, flag_matches in list(by_flag.items())[:FLAG_BLOCKS_MAX]:
        seen: set[str] = set()
        lines: list[str] = []
        for match in flag_matches:
            if match.sentence not in seen and len(lines) < SENTENCES_PER_FLAG:
                seen.add(match.sentence)
                lines.append(f"> {_sentence_with_phrase(match)}")
        header = f":triangular_flag_on_post: *{escape_within(flag, 100)}*"
        text = "\n".join([header, *lines])
        blocks.append({"type": "section", "text": _mrkdwn(text[:SECTION_TEXT_MAX])})
    return blocks


def _fallback_text(alert: AlertToSend) -> str:
    # Shown in notifications and where blocks cannot be rendered.
    flags = ", ".join(sorted({match.flag for match in alert.matches}))
    prefix = f"[{escape_within(flags, 200)}] " if flags else ""
    title = escape_within(alert.title or "(untitled)", TITLE_MAX)
    return f"{prefix}{title} — {escape_within(alert.feed_name, 200)}"


def _also_published(copies: Iterable[GroupCopy]) -> str:
    """ "Also published by: ReliefWeb · ISHR", each source linked to its copy (issue 18)."""
    links = [slack_link(copy.url, copy.feed_name, 200) for copy in copies]
    return f"Also published by: {' · '.join(links)}"


def _who(user_id: str) -> str:
    # Only a real Slack user id becomes a mention; anything else is shown as written.
    return f"<@{user_id}>" if _SLACK_USER_ID.match(user_id) else escape_within(user_id, 100)


def _verdict_line(marks: Iterable[VerdictMark]) -> str:
    """ "Marked not relevant by @ana · Marked relevant by @ben", each verdict's users in click order."""
    by_verdict: dict[bool, list[str]] = {}
    for mark in marks:
        by_verdict.setdefault(mark.relevant, []).append(_who(mark.user_id))
    parts = []
    for relevant in (False, True):
        users = by_verdict.get(relevant, [])
        if users:
            shown = ", ".join(users[:VERDICT_USERS_SHOWN])
            more = f" and {len(users) - VERDICT_USERS_SHOWN} more" if len(users) > VERDICT_USERS_SHOWN else ""
            parts.append(f"Marked {'relevant' if relevant else 'not relevant'} by {shown}{more}")
    return " · ".join(parts)


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text}


def actions_block(alert_id: int) -> dict[str, Any]:
    """The "Relevant" / "Not relevant" buttons and the overflow that mutes the alert's feed."""
    value = str(alert_id)  # checked against the message the click came from
    options = [
        {"text": _plain(f"Mute this feed for {days} day{'s' if days > 1 else ''}"), "value": option}
        for option, days in MUTE_OPTIONS.items()
    ]
    return {
        "type": "actions",
        "block_id": ACTIONS_BLOCK_ID,
        "elements": [
            {"type": "button", "action_id": RELEVANT_ACTION, "text": _plain("Relevant"), "value": value},
            {"type": "button", "action_id": NOT_RELEVANT_ACTION, "text": _plain("Not relevant"), "value": value},
            {"type": "overflow", "action_id": OVERFLOW_ACTION, "options": options},
        ],
    }


def build_message(alert: AlertToSend) -> dict[str, Any]:
    """``chat.postMessage`` arguments for an alert, within Slack's limits. Pure."""
    title = slack_link(alert.url, alert.title)
    context = f"{escape_within(alert.feed_name, 200)} · {_date_line(alert.published)}"
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(f"*{title}*")},
        {"type": "context", "elements": [_mrkdwn(context[:CONTEXT_TEXT_MAX])]},
        *_flag_sections(alert.matches),
    ]
    if alert.also_in:
        text = _also_published(alert.also_in)
        blocks.insert(2, {"type": "context", "elements": [_mrkdwn(text[:CONTEXT_TEXT_MAX])]})
    if alert.summary and alert.summary.strip():
        blocks.append({"type": "section", "text": _mrkdwn(escape_within(alert.summary, SUMMARY_MAX))})
    if alert.verdicts:
        line = _verdict_line(alert.verdicts)
        # Not verbatim: the <@U…> of whoever judged it is a mention on purpose.
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": line[:CONTEXT_TEXT_MAX]}]})
    blocks = blocks[: BLOCKS_MAX - 1]
    blocks.append(actions_block(alert.alert_id))
    return {
        "channel": alert.channel,
        "text": _fallback_text(alert)[:MESSAGE_TEXT_MAX],
        "blocks": blocks,
        "unfurl_links": False,
        "unfurl_media": False,
        "link_names": False,
        # Tags the message with its alert, so a post whose answer was lost can be found.
        "metadata": {"event_type": EVENT_TYPE, "event_payload": {"alert_id": alert.alert_id}},
    }


def build_edit(change: ChangeToSend, channel_id: str) -> dict[str, Any]:
    """``chat.update`` arguments: the alert's message as its group is now. Pure.

    Its metadata names this change, so a lost answer is settled by reading the message.
    """
    message = build_message(change.alert)
    for key in ("unfurl_links", "unfurl_media"):  # chat.postMessage only
        message.pop(key)
    payload = {"alert_id": change.alert.alert_id, "change_id": change.change_id}
    metadata = {"event_type": EVENT_TYPE, "event_payload": payload}
    return {**message, "channel": channel_id, "ts": change.message_ts, "metadata": metadata}


def build_reply(change: ChangeToSend, channel_id: str) -> dict[str, Any]:
    """A reply in the alert's thread saying what changed; tagged with the change's id. Pure."""
    lines = [escape_within(line, REPLY_TEXT_MAX) for line in (change.text or "").splitlines()]
    return {
        "channel": channel_id,
        "thread_ts": change.message_ts,
        "text": "\n".join(lines)[:MESSAGE_TEXT_MAX],
        "unfurl_links": False,
        "unfurl_media": False,
        "link_names": False,
        "metadata": {
            "event_type": CHANGE_EVENT_TYPE,
            "event_payload": {"alert_id": change.alert.alert_id, "change_id": change.change_id},
        },
    }


def format_for_terminal(alert: AlertToSend) -> str:
    """A readable plain-text alert, printed when no Slack token is configured."""
    flags = ", ".join(sorted({match.flag for match in alert.matches})) or "no flags"
    lines = [
        f"[{flags}] {shorten(alert.title, TITLE_MAX)}  (alert {alert.alert_id} → {alert.channel})",
        f"  {alert.feed_name} · {_date_line(alert.published)}",
    ]
    if alert.url:
        lines.append(f"  {alert.url}")
    if alert.also_in:
        sources = (f"{copy.feed_name} {copy.url or ''}".strip() for copy in alert.also_in)
        lines.append("  Also published by: " + " · ".join(sources))
    for match in alert.matches[: SENTENCES_PER_FLAG * 3]:
        lines.append(f"  {match.flag}: “{shorten(match.sentence, SENTENCE_MAX)}” ({match.phrase})")
    if alert.summary:
        lines.append(f"  {shorten(alert.summary, SUMMARY_MAX)}")
    return "\n".join(lines)




def text_message(channel: str, text: str) -> dict[str, Any]:
    """A plain message (test, operations notice); ``text`` is escaped here."""
    escaped = escape_slack(text)  # line breaks kept; cut (and squeezed) only when too long
    if len(escaped) > MESSAGE_TEXT_MAX:
        escaped = escape_within(text, MESSAGE_TEXT_MAX)
    return {"channel": channel, "text": escaped, "unfurl_links": False}
