"""Matching compiled flag rules against one release, and scoring them on labeled releases."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from bot.flag.phrases import normal_anchor, unspaced_hits, word_matches
from bot.flag.rules import SENTENCE, FlagRules
from bot.flag.text import fold_parts
from bot.records import FlagMatch

MAX_MATCHES_PER_FLAG = 3  # enough to explain a flag in Slack without quoting the release
SENTENCE_CHARS = 300

# A sentence ends at . ! ? or … followed by a space and a capital (or a letter of a script
# without capitals: Arabic), except after an initial or a title (so "I.C.C. Prosecutor",
# "Mr. Ostrovsky" and "v. Haral" do not end one), or at a blank line. Feeds break lines
# inside sentences, so one line break does not end one. Chinese 。！？ end one with no space.
# It starts with one character class so that re only stops at those characters.
_SENTENCE_END = re.compile(
    r"[.!?…\n؟。！？](?:(?<=\n)[ \t]*\n|(?<=[。！？])[”’」』）)]*|(?<![\n。！？])"
    r"(?<!\b[A-Za-z].)(?<!\bM[rs].)(?<!\bMrs.)(?<!\bDr.)(?<!\bNo.)(?<!\bSt.)(?<!\bMme.)(?<!\bart.)"
    r"[.!?…]*[\"'”’»)\]]*\s+(?=[\"'“‘«(\[¿¡]?[A-ZÀ-ÖØ-ÞА-ЯЁ0-9\u0621-\u064a]))"
)
_SENTENCE_REACH = 1000  # a "sentence" longer than this is a list or a table: cut it
_FIELDS = ("title", "teaser", "content", "full_text")


class _Release:
    """A release with candidate matches: its joined text, the folded copy, what was looked up."""

    __slots__ = ("_fields", "_parts", "_starts", "anywhere", "folded", "text", "unspaced", "windows")

    def __init__(self, fields: tuple[str, ...], parts: list[str], text: str, folded: str, unspaced: bool) -> None:
        self._fields, self._parts, self.text, self.folded, self.unspaced = fields, parts, text, folded, unspaced
        self._starts: list[tuple[int, str]] | None = None
        self.anywhere: dict[int, bool] = {}  # id(phrases) → found in the release
        self.windows: dict[tuple[int, int, int], tuple[int, int]] = {}  # 0 words: the sentence

    def field_at(self, position: int) -> str:
        starts = self._starts
        if starts is None:  # (where the next field starts, this one's name), once a release
            names = [name for name, text in zip(_FIELDS, self._fields, strict=True) if text and not text.isspace()]
            starts, following = [], 0
            for name, part in zip(names, self._parts, strict=True):
                following += len(part) + 2
                starts.append((following, name))
            self._starts = starts
        for following, name in starts:
            if position < following:
                return name
        return starts[-1][1]

    def sentence_span(self, start: int, end: int) -> tuple[int, int]:
        key = (start, end, SENTENCE)
        span = self.windows.get(key)
        if span is None:
            span = self.windows[key] = self._sentence_start(start), self._sentence_end(end)
        return span

    def _sentence_start(self, start: int) -> int:
        """After the last sentence end before `start` (str.rfind finds candidates fast)."""
        text, floor, position = self.text, max(0, start - _SENTENCE_REACH), start
        while position > floor:
            # The common ends only ("? " and "! " are rare in releases): this runs per match.
            candidate = max(text.rfind(". ", floor, position), text.rfind("\n\n", floor, position))
            if self.unspaced:
                candidate = max(candidate, text.rfind("。", floor, position))
            if candidate < 0:
                break
            boundary = _SENTENCE_END.match(text, candidate, start + 2)  # +2: to see the capital
            if boundary and boundary.end() <= start:
                return boundary.end()
            position = candidate
        return floor

    def _sentence_end(self, end: int) -> int:
        after = _SENTENCE_END.search(self.text, end, end + _SENTENCE_REACH)
        return after.end() if after else min(len(self.text), end + _SENTENCE_REACH)

    def word_span(self, start: int, end: int, words: int) -> tuple[int, int]:
        """From the start of the `words`-th word before the match to the end of the one after."""
        if self.unspaced:  # each Chinese character is a word: `words` characters either side
            return max(0, start - words), min(len(self.folded), end + words)
        reach = words * 16 + 64  # enough for `words` words, but for very long ones
        before = self.folded[max(0, start - reach) : start]
        head = before.rsplit(None, words)  # [the rest, word 1, …, word N]
        after = self.folded[end : end + reach]
        tail = after.split(None, words)  # [word 1, …, word N, the rest]
        low = start - len(before) + (len(head[0]) if len(head) > words else 0)
        return low, end + len(after) - (len(tail[-1]) if len(tail) > words else 0)

    def explain(self, flag: str, start: int, end: int) -> FlagMatch:
        low, high = self.sentence_span(start, end)
        text, folded = self.text, self.folded
        while start > low and folded[start - 1] == " " and text[start - 1].isalpha():
            start -= 1  # an Arabic article folded away: show the word as written
        return FlagMatch(
            flag, " ".join(text[start:end].split()), _trim(text[low:high], start - low, end - low), self.field_at(start)
        )


def _trim(sentence: str, start: int, end: int) -> str:
    """The sentence on one line, cut around the match to about SENTENCE_CHARS."""
    if len(sentence) > SENTENCE_CHARS:
        room = max(0, SENTENCE_CHARS - (end - start)) // 2
        low, high = max(0, start - room), min(len(sentence), end + room)
        if low > 0:  # cut between words
            low = sentence.find(" ", low, start) + 1 or low
        if high < len(sentence):
            high = max(sentence.rfind(" ", end, high), end)
        sentence = ("… " if low > 0 else "") + sentence[low:high] + (" …" if high < len(sentence) else "")
    if sentence.isprintable() and "  " not in sentence:  # most are on one line already: C speed
        return sentence.strip(" ")
    return " ".join(sentence.split())


def _candidates(rules: FlagRules, folded: str, unspaced: bool) -> list[tuple[int, int, int, int]]:
    """(start, end, flag index, rule index) of every phrase match, in text order."""
    scans = rules.scans
    at = scans.at
    if at is None:
        return []
    high = len(folded)
    # Position → the longest anchor there. Hits come in the order they end: at one position
    # a longer anchor comes later, and a gap (words apart by several spaces, None) last.
    longest: dict[int, str | None] = {}
    automaton = scans.ascii if folded.isascii() else scans.spaced
    if automaton is not None:
        longest = {stop - length + 2: anchor for stop, (length, anchor) in automaton.iter(folded)}
    if (first := at.match(folded, 0, high)) is not None:
        longest[0] = normal_anchor(first.group())
    if unspaced:
        for position, anchor in unspaced_hits(scans.unspaced, scans.glued, folded, 0, high):
            longest[position] = normal_anchor(anchor)
    found = []
    rules_at, rules_for = rules.rules_at, rules.rules_for
    for start, hit in longest.items():
        if hit is None:  # the trie regex says which anchor is there, the longest
            gap = at.match(folded, start, high)
            if gap is None:
                continue
            hit = normal_anchor(gap.group())
        for flag_index, rule_index, pattern in rules_at.get(hit) or rules_for(hit):
            if match := pattern.match(folded, start):
                found.append((start, match.end(), flag_index, rule_index))
    for flag_index, rule_index, pattern in rules.unanchored:
        matches = word_matches(pattern, folded, 0, high)
        found.extend((match.start(), match.end(), flag_index, rule_index) for match in matches)
    found.sort()
    return found


def match_flags(
    rules: FlagRules, *, title: str, teaser: str, content: str, full_text: str | None = None
) -> list[FlagMatch]:
    """Why the release carries each flag: it has flag F iff some match has flag F.

    Each flag keeps its first MAX_MATCHES_PER_FLAG matches of *different* phrases: a
    release that says "ICC" ten times is explained by its first "ICC" in a court context.
    """
    # The fields joined by blank lines, and the folded copy. This runs for every release,
    # most with no candidate match: the least work before _candidates.
    fields = (title, teaser, content, full_text or "")
    parts, text, folded, unspaced = fold_parts([text for text in fields if text and not text.isspace()])
    candidates = _candidates(rules, folded, unspaced)
    if not candidates:
        return []
    release = _Release(fields, parts, text, folded, unspaced)
    flags, checks = rules.flags, rules.checks
    windows, anywhere = release.windows, release.anywhere
    per_flag: list[list[FlagMatch]] = [[] for _ in flags]
    explained: set[tuple[int, str]] = set()
    for start, end, flag_index, rule_index in candidates:
        matches = per_flag[flag_index]
        if len(matches) == MAX_MATCHES_PER_FLAG:
            continue
        phrase = (flag_index, folded[start:end])
        if phrase in explained:
            continue
        # Each context of the rule, inlined (this runs for every candidate match): a veto
        # found or a near missing rejects the match.
        for veto, words, phrases in checks[flag_index][rule_index]:
            if words > 0:
                key = (start, end, words)
                span = windows.get(key)
                if span is None:
                    span = windows[key] = release.word_span(start, end, words)
            elif words == SENTENCE:
                span = release.sentence_span(start, end)
            else:
                found = anywhere.get(id(phrases))
                if found is None:
                    found = anywhere[id(phrases)] = phrases.search(folded, 0, len(folded), unspaced)
                if found is veto:
                    break
                continue
            if phrases.search(folded, span[0], span[1], unspaced) is veto:
                break
        else:
            explained.add(phrase)
            matches.append(release.explain(flags[flag_index].name, start, end))
    return [flag_match for matches in per_flag for flag_match in matches]


def evaluate(rules: FlagRules, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Precision, recall and the confusion per flag on labeled rows (``pressbot flags test``).

    A row is a release as in ``tests/data/labeled-dev.jsonl``: ``id``, ``title``,
    ``summary`` (or ``teaser``), ``content``, optional ``full_text`` and ``labels``
    (flag → bool). A flag missing from a row's labels is not counted for that row; a
    flag no row labels has ``None`` for precision and recall, not a perfect score. Rows
    with ``lang`` or ``case`` are also scored per language and per kind of case (issue 15:
    a rule author sees which kind of release is missed), in ``by_lang`` and ``by_case``.
    """
    report: dict[str, Any] = {"items": 0, "flags": {name: _empty_score() for name in rules.names}}
    for row in rows:
        report["items"] += 1
        matches = match_flags(
            rules,
            title=str(row.get("title") or ""),
            teaser=str(row.get("summary") or row.get("teaser") or ""),
            content=str(row.get("content") or ""),
            full_text=row.get("full_text") or None,
        )
        labels = row.get("labels") or {}
        for name, score in report["flags"].items():
            if name in labels:
                _count(score, row, bool(labels[name]), [m for m in matches if m.flag == name])
    for score in report["flags"].values():
        _rates(score)
        for part in ("by_lang", "by_case"):
            for subscore in score[part].values():
                _rates(subscore)
            score[part] = dict(sorted(score[part].items()))
    return report


def _empty_score() -> dict[str, Any]:
    return {
        **_empty_counts(),
        "false_positives": [],
        "false_negatives": [],
        "by_lang": {},
        "by_case": {},
    }


def _empty_counts() -> dict[str, Any]:
    return {"tp": 0, "fp": 0, "fn": 0, "tn": 0}


def _rates(score: dict[str, Any]) -> None:
    predicted, actual = score["tp"] + score["fp"], score["tp"] + score["fn"]
    labeled = bool(actual + score["fp"] + score["tn"])
    score["precision"] = (score["tp"] / predicted if predicted else 1.0) if labeled else None
    score["recall"] = (score["tp"] / actual if actual else 1.0) if labeled else None


def _count(score: dict[str, Any], row: Mapping[str, Any], expected: bool, matches: list[FlagMatch]) -> None:
    item = {"id": row.get("id"), "title": row.get("title")}
    item.update({key: row[key] for key in ("lang", "case") if row.get(key)})
    for part, key in (("by_lang", "lang"), ("by_case", "case")):
        if row.get(key):
            _tally(score[part].setdefault(str(row[key]), _empty_counts()), expected, bool(matches))
    outcome = _tally(score, expected, bool(matches))
    if outcome == "fp":
        explained = [{"phrase": m.phrase, "sentence": m.sentence, "field": m.field} for m in matches]
        score["false_positives"].append({**item, "matches": explained})
    elif outcome == "fn":
        score["false_negatives"].append(item)


def _tally(counts: dict[str, Any], expected: bool, matched: bool) -> str:
    outcome = ("tp" if expected else "fp") if matched else ("fn" if expected else "tn")
    counts[outcome] += 1
    return outcome
