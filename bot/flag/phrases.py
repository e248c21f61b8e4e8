"""Phrase syntax of the flag rules, and phrases compiled to be tried only where they can start.

A regex pass over a release costs about the whole budget of the flag step (under 10% of
feedparser's parse, issue 4), so a phrase set is one trie-shaped regex of its *anchors*
(the literal words every match starts with) and each phrase is tried only where one is.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from itertools import takewhile
from typing import Any

import ahocorasick

from bot.flag.text import UNSPACED, fold_text


class RuleError(ValueError):
    """A problem in one rule; compile_rules adds the file name."""


SEPARATOR = r"\s+"  # in folded text, line breaks, hyphens, quotes… are spaces
_HYPHEN = r"\s*"  # inside a word: Pre-Trial, pre trial, pretrial
_ITEM = re.compile(r"\(([^()]*)\)(\?)?|[^\s()]+|\S")
_ANY_WORD = "*"


@dataclass(frozen=True, slots=True)
class _Item:
    """One position of a phrase: alternatives (each a list of words), maybe optional."""

    alternatives: tuple[tuple[str, ...], ...]
    optional: bool = False
    glued: bool = False  # written onto the item before it, no space: (و|ب)?تعاون*, 与(联合国|委员会)合作


def _parse(phrase: str) -> list[_Item]:
    items: list[_Item] = []
    end = -1
    for token in _ITEM.finditer(re.sub("['’]", " ", phrase)):  # l'humanité: two words, as in the text
        if token.group(0) in ("(", ")"):
            raise RuleError("unbalanced parentheses")
        glued, end = token.start() == end, token.end()
        if token.group(1) is None:
            items.append(_Item(((token.group(0),),), glued=glued))
            continue
        alternatives = tuple(tuple(a.split()) for a in token.group(1).split("|"))
        if not all(alternatives):
            raise RuleError("empty alternative in ( | )")
        items.append(_Item(alternatives, bool(token.group(2)), glued))
    return items


def _is_acronym(word: str) -> bool:
    return len(word) >= 2 and word.isalpha() and word.isupper()


def _word_regex(word: str) -> str:
    """``*`` alone is any word, ``*`` inside any letters, a word in CAPITALS an acronym."""
    if word == _ANY_WORD:
        return r"\w[\w']*"
    if _is_acronym(word):
        dotted = r"\.".join(word.lower())
        return f"(?:{word.lower()}|{dotted}\\.?)"  # ICC, I.C.C.
    # A hyphen may be missing in the text; other punctuation is a space there, as in #NoReprisals.
    return _HYPHEN.join(SEPARATOR.join(map(_piece_regex, fold_text(part).split())) for part in word.split("-"))


def _piece_regex(piece: str) -> str:
    return "".join(r"\w*" if char == "*" else re.escape(char) for char in piece)


def _item_regex(item: _Item) -> str:
    branches = [SEPARATOR.join(map(_word_regex, words)) for words in item.alternatives]
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


@functools.lru_cache(maxsize=8192)
def phrase_regex(phrase: str, *, as_written: bool = False) -> str:
    """The regular expression, on folded text, for one phrase of the rule syntax.

    An optional word before a required one is ``(?:\\s+(?:word))?``: ``as_written``,
    ``(?:\\s+(?:word)?)?``, which matches the same (a space taken without its word is given
    back to the next separator) but tries every way of sharing a run of spaces among the
    optional words before failing: a hundred times slower on text with punctuation
    (folded to spaces) around "(*)? (*)? (*)?". At the end of a phrase the spaces would be
    part of the match: there it stays as written.
    """
    if phrase.startswith("re:"):
        return f"(?:{phrase[3:]})"
    parts: list[str] = []
    need_separator = False
    clusters = list(_clusters(_parse(phrase)))
    for index, cluster in enumerate(clusters):
        regex = "".join(f"(?:{_item_regex(item)})?" if item.optional else _item_regex(item) for item in cluster)
        optional = all(item.optional for item in cluster)
        if need_separator:
            required_after = any(not all(item.optional for item in later) for later in clusters[index + 1 :])
            if optional and len(cluster) == 1 and required_after and not as_written:
                parts.append(f"(?:{SEPARATOR}(?:{_item_regex(cluster[0])}))?")
            else:
                parts.append(f"(?:{SEPARATOR}{regex})?" if optional else SEPARATOR + regex)
        else:
            parts.append(f"(?:{regex}{SEPARATOR})?" if optional else regex)
            need_separator = not optional
    return "".join(parts)


def _clusters(items: list[_Item]) -> Iterator[list[_Item]]:
    """Items written without a space between them: one word of the text."""
    cluster: list[_Item] = []
    for item in items:
        if cluster and not item.glued:
            yield cluster
            cluster = []
        cluster.append(item)
    if cluster:
        yield cluster


def _words_anchor(words: Iterable[str]) -> set[str] | None:
    """The literal start of a word sequence: "international criminal court", "punish", "icc"."""
    literal: list[str] = []
    for word in words:
        if _is_acronym(word):
            return {word.lower(), ".".join(word.lower())} if not literal else {" ".join(literal)}
        if "-" in word:
            return _hyphenated_anchors(literal, word)
        for piece in fold_text(word).split():
            prefix = piece.split("*", 1)[0]
            if prefix:
                literal.append(prefix)
            if prefix != piece or not prefix:  # a wildcard: the literal stops here
                return {" ".join(literal)} if literal else None
    return {" ".join(literal)} if literal else None


def _hyphenated_anchors(literal: list[str], word: str) -> set[str] | None:
    """Pre-Trial is "pre trial" or "pretrial" in the text: both, and the literal ends there."""
    pieces = []
    for part in word.split("-"):
        folded = fold_text(part).split()
        prefix = folded[0].split("*", 1)[0] if len(folded) == 1 else ""
        if prefix:
            pieces.append(prefix)
        if not prefix or prefix != folded[0]:
            break
    head = " ".join(literal)
    if not pieces:
        return {head} if head else None
    head = head + " " if head else ""
    return {head + " ".join(pieces), head + "".join(pieces)}


def phrase_anchors(phrase: str) -> frozenset[str] | None:
    """Literals one of which every match starts with; None when there is none to find."""
    if phrase.startswith("re:"):
        # The letters a regex starts with, unless a quantifier or an alternative follows them.
        literal = re.match(r"([a-z0-9]+(?: [a-z0-9]+)*)(?![a-z0-9]*[*+?{])", phrase[3:])
        return frozenset({literal.group(1)}) if literal and "|" not in phrase else None
    return _anchors_from(_parse(phrase), 0)


# An anchor that is whole words goes on with the next item of the phrase ("for" → "for
# having", "for testif"; "after" → "after briefing"…), up to this many anchors: the scan would
# otherwise stop at every "for" or "after" and try the phrases there (and most would fail).
_MAX_ANCHORS = 200


def _anchors_from(items: list[_Item], index: int) -> frozenset[str] | None:
    """The literals a match of items[index:] starts with; None when there is none."""
    if index >= len(items):
        return None
    item = items[index]
    glued_on = index + 1 < len(items) and items[index + 1].glued  # the literal ends inside a word
    if len(item.alternatives) == 1 and not item.optional:  # a run of plain words
        run = [item, *takewhile(_plain, items[index + 1 :])]
        words = [word for plain in run for word in plain.alternatives[0]]
        found = _words_anchor(words)
        if found and _literal(words) and not (index + len(run) < len(items) and items[index + len(run)].glued):
            return _extended(found, items, index + len(run))
        return frozenset(found) if found else None
    anchors: set[str] = set()
    for alternative in item.alternatives:
        found = _words_anchor(alternative)
        if found is None:
            return None
        anchors |= found
    if item.optional:
        rest = _anchors_from(items, index + 1)
        return None if rest is None else frozenset(anchors | rest)
    if not glued_on and all(_literal(alternative) for alternative in item.alternatives):
        return _extended(anchors, items, index + 1)
    return frozenset(anchors)


def _plain(item: _Item) -> bool:
    """A word that goes on the literal run: one alternative, not optional, after a space."""
    return len(item.alternatives) == 1 and not item.optional and not item.glued


def _literal(words: tuple[str, ...] | list[str]) -> bool:
    """All words literal: no *, acronym or hyphen, so that the anchor ends where they do."""
    return bool(fold_text(" ".join(words)).split()) and not any("*" in w or "-" in w or _is_acronym(w) for w in words)


def _extended(anchors: set[str], items: list[_Item], index: int) -> frozenset[str]:
    rest = _anchors_from(items, index)
    if not rest or len(anchors) * len(rest) > _MAX_ANCHORS:
        return frozenset(anchors)
    return frozenset(f"{anchor} {more}" for anchor in anchors for more in rest)


def trie_regex(anchors: Iterable[str]) -> str:
    """One regex for many literals, shaped as a trie so that re tries few branches."""
    root: dict[str, Any] = {}
    for anchor in anchors:
        node = root
        for char in anchor:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [
            (SEPARATOR if char == " " else re.escape(char)) + emit(child)
            for char, child in sorted(node.items())
            if char
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


# A word ends before a non-word character, and on either side of a character that is a
# word by itself (Chinese: 国际刑事法院 in 向国际刑事法院提交, ICC in ICC检察官).
WORD_END = f"(?:(?!\\w)|(?<=[{UNSPACED}])|(?=[{UNSPACED}]))"


def alternation(phrases: Iterable[str]) -> str:
    # No look-behind in front: the callers only try it where a word starts.
    # Longest first, by the length of the regex as written: the order decides which phrase a
    # match is (and so where it ends) when several match at one place.
    written = {phrase_regex(p): len(phrase_regex(p, as_written=True)) for p in phrases}
    return "(?:" + "|".join(sorted(written, key=written.__getitem__, reverse=True)) + ")" + WORD_END


def space_automaton(anchors: Iterable[str]) -> Any:
    """An Aho–Corasick automaton of " " + each anchor: one pass in C finds them all.

    A regex scan for a space then an anchor costs a match attempt at every space of the
    text, whatever the anchors (benchmarks/README.md); the automaton's pass costs a few
    nanoseconds a character. Its value is (key length, anchor). In the text the words of an
    anchor may be apart by several spaces (punctuation, a folded Arabic article): for the
    first such gap the automaton has a key of the words before it and two spaces, whose
    anchor is None: there the trie regex says which anchor it is, if any.

    A node's next characters are looked up in the order they were added: the first one
    added is a key of two spaces (then a line break, which folded text never has), so that
    at a space the next space, the commonest character there (", " and folded punctuation,
    Arabic articles), is found first rather than after every letter an anchor starts with.
    """
    automaton = ahocorasick.Automaton()
    automaton.add_word("  \n", (3, None))  # never found: only there to be looked up first
    for anchor in anchors:
        automaton.add_word(" " + anchor, (len(anchor) + 1, anchor))
        words = anchor.split(" ")
        for count in range(1, len(words)):
            gap = " " + " ".join(words[:count]) + "  "
            if gap not in automaton:
                automaton.add_word(gap, (len(gap), None))
    automaton.make_automaton()
    return automaton


@dataclass(frozen=True, slots=True)
class Scans:
    """Where anchors are in a folded text.

    Anchors after a space (all but Chinese ones) are found by one Aho–Corasick pass; one at
    the start of the scanned range by a trie regex; Chinese anchors have a plain trie (re
    skips to their first characters), run only on releases with Chinese.
    """

    at: re.Pattern[str] | None = None  # an anchor at a given position
    spaced: Any = None  # ahocorasick.Automaton: a space, then an anchor that does not start in Chinese
    unspaced: re.Pattern[str] | None = None  # a Chinese anchor, anywhere
    glued: re.Pattern[str] | None = None  # a Latin-1 anchor, to find right after a Chinese character
    # `spaced` with its ASCII anchors only, for a text folded to ASCII (any in Latin-1): at a
    # space the automaton tries the next character against every one an anchor starts with,
    # and there the Cyrillic and Arabic ones would be tried for nothing
    ascii: Any = None

    @classmethod
    def of(cls, anchors: Iterable[str]) -> Scans:
        anchors = set(anchors)
        if not anchors:
            return cls()
        latin = {anchor for anchor in anchors if anchor[0] <= "\xff"}
        unspaced = {anchor for anchor in anchors if _UNSPACED_CHAR.match(anchor)}
        spaced = anchors - unspaced
        ascii_anchors = {anchor for anchor in spaced if anchor.isascii()}
        automaton = space_automaton(spaced) if spaced else None
        return cls(
            at=re.compile(trie_regex(anchors)),
            spaced=automaton,
            unspaced=re.compile(trie_regex(unspaced)) if unspaced else None,
            glued=re.compile(trie_regex(latin)) if latin else None,
            ascii=automaton if ascii_anchors == spaced else space_automaton(ascii_anchors) if ascii_anchors else None,
        )


def unspaced_hits(
    unspaced: re.Pattern[str] | None, glued: re.Pattern[str] | None, text: str, low: int, high: int
) -> Iterator[tuple[int, str]]:
    """Chinese anchors anywhere (one may start inside another), Latin ones right after Chinese."""
    position = low + 1  # the anchor at `low` itself is Scans.at's
    while unspaced is not None and (hit := unspaced.search(text, position, high)):
        yield hit.start(), hit.group()
        position = hit.start() + 1
    position = low + 1
    while glued is not None and (hit := glued.search(text, position, high)):
        if _UNSPACED_CHAR.match(text, hit.start() - 1):
            yield hit.start(), hit.group()
        position = hit.end()


@dataclass(frozen=True, slots=True)
class PhraseSet:
    """Phrases compiled to be tried only where one of their anchors starts a word."""

    sources: Mapping[str, str]  # anchor → the regex of the phrases that can start there
    scans: Scans
    unanchored: re.Pattern[str] | None  # the phrases without an anchor, searched everywhere
    compiled: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, phrases: Iterable[str]) -> PhraseSet:
        by_anchor: dict[str, set[str]] = {}
        unanchored = set()
        for phrase in phrases:
            anchors = phrase_anchors(phrase)
            if anchors is None:
                unanchored.add(phrase)
            for anchor in anchors or ():
                by_anchor.setdefault(anchor, set()).add(phrase)
        # A scan reports the longest anchor at a position: try the phrases of its prefixes too.
        sources = {
            anchor: alternation({p for a in by_anchor if anchor.startswith(a) for p in by_anchor[a]})
            for anchor in by_anchor
        }
        return cls(
            sources=sources,
            scans=Scans.of(by_anchor),
            unanchored=re.compile(alternation(unanchored)) if unanchored else None,
        )

    def at(self, anchor: str) -> re.Pattern[str]:
        """The phrases that can start with `anchor`, compiled on first use (most never are)."""
        if anchor not in self.compiled:
            self.compiled[anchor] = re.compile(self.sources[anchor])
        return self.compiled[anchor]

    def search(self, text: str, low: int, high: int, unspaced: bool) -> bool:
        """Whether a phrase is in text[low:high]; `unspaced`: the text has Chinese characters.

        It stops at the first phrase found: most windows hold one.
        """
        scans, compiled = self.scans, self.compiled
        if scans.at is not None:
            # Scans.hits, inlined and lazy: this runs for every window of every candidate match.
            # No anchor starts with a space, where a window of words starts.
            if text[low : low + 1] != " " and (low == 0 or text[low - 1] == " " or starts_word(text, low)):
                first = scans.at.match(text, low, high)
                if first and self.at(normal_anchor(first.group())).match(text, low, high):
                    return True
            automaton = scans.ascii if text.isascii() else scans.spaced
            if automaton is not None:
                # Any anchor found at a position, not only the longest: each one's phrases
                # are among the longest one's, and a window asks only whether one is there.
                # On the window alone: the automaton copies the text it is given to 4 bytes a character.
                for end, (length, anchor) in automaton.iter(text[low:high]):
                    position = low + end - length + 2
                    if anchor is None:  # words apart by several spaces: the trie regex says which
                        found = scans.at.match(text, position, high)
                        if found is None:
                            continue
                        anchor = normal_anchor(found.group())
                    if (compiled.get(anchor) or self.at(anchor)).match(text, position, high):
                        return True
            if unspaced:
                for position, anchor in unspaced_hits(scans.unspaced, scans.glued, text, low, high):
                    if self.at(normal_anchor(anchor)).match(text, position, high):
                        return True
        return self.unanchored is not None and next(word_matches(self.unanchored, text, low, high), None) is not None


def normal_anchor(found: str) -> str:
    return found if found.isalpha() else " ".join(found.split())  # several words: spaces vary


def starts_word(text: str, position: int) -> bool:
    if position == 0 or not (text[position - 1].isalnum() or text[position - 1] == "_"):
        return True
    return _UNSPACED_CHAR.match(text, position - 1, position + 1) is not None


_UNSPACED_CHAR = re.compile(f"[{UNSPACED}]")


def word_matches(pattern: re.Pattern[str], text: str, low: int, high: int) -> Iterator[re.Match[str]]:
    while (match := pattern.search(text, low, high)) is not None:
        if starts_word(text, match.start()):
            yield match
        low = match.start() + 1
