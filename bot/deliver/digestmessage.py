"""Digest messages, built from a ``Digest`` record: pure (no I/O, no clock, no settings).

``build_digest`` returns the ``chat.postMessage`` arguments of each part: the first goes
to the channel, the others into its thread (deliver adds ``thread_ts`` and the metadata
that names the part). Every part keeps Slack's limits: 50 blocks, 3,000 characters per
section, a fallback text far under 40,000. Feed text is escaped as in alerts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from bot.deliver.message import (
    BLOCKS_MAX,
    MESSAGE_TEXT_MAX,
    SECTION_TEXT_MAX,
    TITLE_MAX,
    escape_within,
    shorten,
    slack_link,
)
from bot.digest import describe_period
from bot.records import Digest, DigestRelease

DIGEST_EVENT_TYPE = "pressbot_digest"  # a part's metadata: {"digest_id", "part"}
# Our own bound on one message's block text: Slack refuses very long messages as a
# whole (msg_blocks_too_long) well before 50 full sections, and a phone shows a long
# thread better than one endless message.
PART_CHARS_MAX = 12_000
# Releases listed per digest at most (the counts still cover all): a feed list imported
# mid-week must not become a thread of dozens of messages.
LISTED_MAX = 500
NAME_MAX = 100


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text[:SECTION_TEXT_MAX])}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [_mrkdwn(text[:SECTION_TEXT_MAX])]}


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _by_flag(digest: Digest) -> dict[str, list[DigestRelease]]:
    groups: dict[str, list[DigestRelease]] = {flag: [] for flag in digest.spec.flags}
    for release in digest.releases:
        for flag in release.flags:
            groups[flag].append(release)
    return groups


def _flag_count(digest: Digest, flag: str, count: int) -> str:
    text = f"{escape_within(flag, NAME_MAX)} {count}"
    marked = (digest.not_relevant or {}).get(flag, 0)
    if marked:
        text += f" ({marked} marked not relevant)"
    return text


def headline(digest: Digest) -> str:
    """'Digest “weekly”: 24 Nov 09:00 – 1 Dec 2026 09:00 (Europe/Zurich)' (escaped)."""
    name = escape_within(digest.spec.name, NAME_MAX)
    kind = "so far" if digest.period.so_far else ""
    when = describe_period(digest.period, digest.spec.tz)
    return f"Digest “{name}”{' ' + kind if kind else ''}: {when}"


def counts_line(digest: Digest) -> str:
    groups = _by_flag(digest)
    flags = " · ".join(_flag_count(digest, flag, len(found)) for flag, found in groups.items())
    return f"{_plural(len(digest.releases), 'flagged release')} — {flags}"


def _late_line(digest: Digest) -> str:
    due = digest.period.end.astimezone(digest.spec.tz)
    return f":hourglass: Late: due {due:%a} {due.day} {due:%b %H:%M} ({digest.spec.tz.key}); nothing ran then."


def _release_line(release: DigestRelease, digest: Digest) -> str:
    day = release.date.astimezone(digest.spec.tz)
    source = escape_within(release.feed_name, 200)
    return f"• *{slack_link(release.url, release.title, TITLE_MAX)}* — {source}, {day.day} {day:%b %Y}"


def _packed(lines: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Lines packed into sections of at most 3,000 characters (a line is far shorter)."""
    chunk: list[str] = []
    size = 0
    for line in lines:
        if chunk and size + 1 + len(line) > SECTION_TEXT_MAX:
            yield _section("\n".join(chunk))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        yield _section("\n".join(chunk))


def digest_blocks(digest: Digest) -> list[dict[str, Any]]:
    """Every block of the digest, in order, before it is cut into messages."""
    blocks: list[dict[str, Any]] = [_section(f"*{headline(digest)}*"), _context(counts_line(digest))]
    if digest.period.late:
        blocks.append(_context(_late_line(digest)))
    if not digest.releases:
        blocks.append(_section("No flagged release was first seen in this period."))
        return blocks
    listed = 0
    for flag, releases in _by_flag(digest).items():
        if not releases:
            continue
        shown = releases[: max(LISTED_MAX - listed, 0)]
        listed += len(shown)
        header = f":triangular_flag_on_post: *{escape_within(flag, NAME_MAX)}* — {_plural(len(releases), 'release')}"
        if digest.not_relevant is not None:
            header += f", {digest.not_relevant.get(flag, 0)} marked not relevant"
        blocks += [{"type": "divider"}, _section(header)]
        blocks += _packed([_release_line(release, digest) for release in shown])
        if len(shown) < len(releases):
            blocks.append(_context(f"…and {len(releases) - len(shown)} more: `pressbot query --flag {flag}`"))
    return blocks


def _block_chars(block: dict[str, Any]) -> int:
    if block["type"] == "section":
        return len(block["text"]["text"])
    if block["type"] == "context":
        return sum(len(element["text"]) for element in block["elements"])
    return 0


def _cut(blocks: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Blocks into messages of at most 50 blocks and PART_CHARS_MAX characters (one block is reserved
    for a continuation's "continued" line)."""
    parts: list[list[dict[str, Any]]] = [[]]
    size = 0
    for block in blocks:
        if parts[-1] and (len(parts[-1]) >= BLOCKS_MAX - 1 or size + _block_chars(block) > PART_CHARS_MAX):
            parts.append([])
            size = 0
        if not parts[-1] and block["type"] == "divider":
            continue  # a part does not start with a rule
        parts[-1].append(block)
        size += _block_chars(block)
    return parts


def build_digest(digest: Digest) -> list[dict[str, Any]]:
    """``chat.postMessage`` arguments of each part, the first for the channel, the rest for its thread."""
    parts = _cut(digest_blocks(digest))
    title = f"{headline(digest)}. {counts_line(digest)}"
    messages = []
    for index, blocks in enumerate(parts):
        text = title
        if index:
            more = f"continued ({index + 1}/{len(parts)})"
            blocks = [_context(f"{headline(digest)}, {more}"), *blocks]
            text = f"{headline(digest)}, {more}"
        messages.append({
            "channel": digest.spec.channel,
            "text": shorten(text, 3000)[:MESSAGE_TEXT_MAX],
            "blocks": blocks,
            "unfurl_links": False,
            "unfurl_media": False,
            "link_names": False,
        })
    return messages


def format_digest_for_terminal(digest: Digest) -> str:
    """The digest as plain text: `pressbot digest --preview`, and without a token."""
    lines = [f"{headline(digest)}  (→ {digest.spec.channel})", f"  {counts_line(digest)}"]
    if digest.period.late:
        lines.append(f"  {_late_line(digest).removeprefix(':hourglass: ')}")
    for flag, releases in _by_flag(digest).items():
        if releases:
            lines.append(f"\n{flag} ({_plural(len(releases), 'release')}):")
        for release in releases:
            day = release.date.astimezone(digest.spec.tz)
            lines.append(f"  {day:%Y-%m-%d}  {shorten(release.title, TITLE_MAX)} — {release.feed_name}")
            if release.url:
                lines.append(f"              {release.url}")
    if not digest.releases:
        lines.append("  No flagged release was first seen in this period.")
    return "\n".join(lines)
