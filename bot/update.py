"""What changed in a stored release, told in one or two lines. Pure (issue 18).

A flagged release corrected or extended later gets a reply in its alert's thread,
not a second alert. Only a material change counts: a new title, a paragraph added or
removed. Whitespace, line wrapping and the link's tracking parameters (the item is
"updated" for them, its text is not) say nothing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bot.records import FlagMatch

_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")
LINE_MAX = 280


def paragraphs(text: str) -> list[str]:
    """The text's paragraphs, each with its whitespace squeezed (re-wrapping changes nothing)."""
    return [squeezed for part in _PARAGRAPH_BREAK.split(text) if (squeezed := " ".join(part.split()))]


def _short(text: str) -> str:
    return text if len(text) <= LINE_MAX else text[: LINE_MAX - 1].rsplit(" ", 1)[0] + "…"


def describe_change(
    old_title: str, old_text: str, new_title: str, new_text: str, matches: Sequence[FlagMatch] = ()
) -> str | None:
    """One or two lines on a material change, or None when nothing a reader sees changed.

    The lines name, in this order of importance: the new title, a newly flagged
    sentence, a paragraph added, a paragraph removed.
    """
    lines: list[str] = []
    if " ".join(old_title.split()) != " ".join(new_title.split()):
        lines.append(f"New title: “{_short(' '.join(new_title.split()))}”")
    before, after = paragraphs(old_text), paragraphs(new_text)
    added = [paragraph for paragraph in after if paragraph not in before]
    removed = [paragraph for paragraph in before if paragraph not in after]
    if not lines and not added and not removed:
        return None
    squeezed_old = " ".join(old_text.split())
    fresh = [match for match in matches if " ".join(match.sentence.split()) not in squeezed_old]
    if fresh:
        lines.append(f"Newly flagged ({fresh[0].flag}): “{_short(' '.join(fresh[0].sentence.split()))}”")
    if added:
        more = f" (and {len(added) - 1} more)" if len(added) > 1 else ""
        lines.append(f"Paragraph added{more}: “{_short(added[0])}”")
    if removed:
        more = f" (and {len(removed) - 1} more)" if len(removed) > 1 else ""
        lines.append(f"Paragraph removed{more}: “{_short(removed[0])}”")
    return "Updated — " + "\n".join(lines[:2])
