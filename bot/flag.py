"""Flag rules: does a release mention reprisals, the ICC, or any flag a user defines?

Rules are data (``[flags.<name>]`` in ``config/pressbot.toml``, whose comments document
the format). ``compile_rules`` validates and compiles them once; ``match_flags`` is pure
and explains each flag with the phrase as written and its sentence.

Matching runs on a *folded* copy of the release of the same length (lower case, accents
stripped, typographic apostrophes made ASCII), so a position found in the copy points
at the same character in the original. Speed: the flag step must cost under 10% of
feedparser's parse (issue 4), and a regex pass over a release costs about as much as
that budget. So one pass finds the *anchors* (the literal first words of every trigger
phrase, as one trie-shaped regex) and each rule is tried only where an anchor is.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ConfigError
from bot.records import FlagMatch

MAX_MATCHES_PER_FLAG = 3  # enough to explain a flag in Slack without quoting the release
SENTENCE_CHARS = 300

# ISO 639-1 codes, and "any" for language-neutral terms such as acronyms. A language key
# documents its phrases; every list is tried on every release, because feeds rarely
# declare a language and releases quote other languages.
_ISO_639_1 = (
    "any aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv"
    " cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht"
    " hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la"
    " lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj"
    " om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv"
    " sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"
)
LANGUAGES = frozenset(_ISO_639_1.split())
SENTENCE, RELEASE = 0, -1
_SCOPES = {"sentence": SENTENCE, "release": RELEASE}
_FLAG_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")

# ---------------------------------------------------------------- folding

# In the folded copy these become spaces: line breaks, apostrophes, quotes, brackets, '#'
# and hyphens. Then every word that can start a phrase follows a plain space (or starts
# the text), which re finds fast as a literal prefix.
_SPACED = "\n\r\t\f\v'\"`()[]{}<>#-"
_TYPOGRAPHY = "’‘“”„–—‐‑…\u202f\u2009"  # beyond Latin-1 and in every release: to spaces
_NON_ASCII = re.compile("[^\x00-\x7f]")
_NO_LATIN_BASE = {"ß": "s", "æ": "a", "ø": "o", "ð": "d", "þ": "t", "œ": "o", "ł": "l", "đ": "d", "ı": "i"}


@functools.lru_cache(maxsize=4096)
def _fold_char(char: str) -> str:
    """One character to one: é → e, Œ → o, ² → 2, ’ → space; a letter of another script stays."""
    if char in _SPACED:
        return " "
    if char.lower() in _NO_LATIN_BASE:
        return _NO_LATIN_BASE[char.lower()]
    base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c)).lower()
    if len(base) == 1 and (base.isascii() or base.isalpha()):
        return base
    return char.lower() if char.isalpha() and len(char.lower()) == 1 else " "


# Every Latin-1 byte to its ASCII fold: one bytes.translate folds most releases at C speed.
_LATIN_1_FOLD = bytes(ord(f) if f.isascii() else 32 for f in map(_fold_char, map(chr, range(256))))


def fold_text(text: str) -> str:
    """The folded copy: lower case, no accents, separators as spaces; as long as ``text``.

    ``text`` is expected in NFC (composed accents), as feeds and match_flags give it.
    """
    folded = text
    if not folded.isascii():
        for char in _TYPOGRAPHY:
            folded = folded.replace(char, " ")
        try:
            return folded.encode("latin-1").translate(_LATIN_1_FOLD).decode("latin-1")
        except UnicodeEncodeError:  # Ł, Ω, ж, ★…: character by character, the slow way
            for char in set(_NON_ASCII.findall(folded)):
                folded = folded.replace(char, _fold_char(char))
            return folded.lower().translate(dict.fromkeys(map(ord, _SPACED), " "))
    return folded.encode("latin-1").translate(_LATIN_1_FOLD).decode("latin-1")


# ---------------------------------------------------------------- phrase syntax


class _RuleError(ValueError):
    """A problem in one rule; compile_rules adds the file name."""


_SEPARATOR = r"\s+"  # in folded text, line breaks, hyphens, quotes… are spaces
_HYPHEN = r"\s*"  # inside a word: Pre-Trial, pre trial, pretrial
_ITEM = re.compile(r"\(([^()]*)\)(\?)?|[^\s()]+|\S")
_GROUP_REF = re.compile(r"\{([A-Za-z0-9_-]+)\}")
_ANY_WORD = "*"


@dataclass(frozen=True, slots=True)
class _Item:
    """One position of a phrase: alternatives (each a list of words), maybe optional."""

    alternatives: tuple[tuple[str, ...], ...]
    optional: bool = False


def _parse(phrase: str) -> list[_Item]:
    items = []
    for token in _ITEM.finditer(re.sub("['’]", " ", phrase)):  # l'humanité: two words, as in the text
        if token.group(0) in ("(", ")"):
            raise _RuleError("unbalanced parentheses")
        if token.group(1) is None:
            items.append(_Item(((token.group(0),),)))
            continue
        alternatives = tuple(tuple(a.split()) for a in token.group(1).split("|"))
        if not all(alternatives):
            raise _RuleError("empty alternative in ( | )")
        items.append(_Item(alternatives, bool(token.group(2))))
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
    return _HYPHEN.join(
        "".join(r"\w*" if c == "*" else re.escape(c) for c in fold_text(part)) for part in word.split("-")
    )


def _item_regex(item: _Item) -> str:
    branches = [_SEPARATOR.join(map(_word_regex, words)) for words in item.alternatives]
    return branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"


@functools.lru_cache(maxsize=8192)
def phrase_regex(phrase: str) -> str:
    """The regular expression, on folded text, for one phrase of the rule syntax."""
    if phrase.startswith("re:"):
        return f"(?:{phrase[3:]})"
    parts: list[str] = []
    need_separator = False
    for item in _parse(phrase):
        regex = _item_regex(item)
        if need_separator:
            parts.append(f"(?:{_SEPARATOR}{regex})?" if item.optional else _SEPARATOR + regex)
        else:
            parts.append(f"(?:{regex}{_SEPARATOR})?" if item.optional else regex)
            need_separator = not item.optional
    return "".join(parts)


def _words_anchor(words: Iterable[str]) -> set[str] | None:
    """The literal start of a word sequence: "international criminal court", "punish", "icc"."""
    literal: list[str] = []
    for word in words:
        if _is_acronym(word):
            return {word.lower(), ".".join(word.lower())} if not literal else {" ".join(literal)}
        folded = fold_text(word)
        prefix = re.split(r"[*\-]", folded, maxsplit=1)[0]
        if prefix:
            literal.append(prefix)
        if prefix != folded or not prefix:
            break
    return {" ".join(literal)} if literal else None


def phrase_anchors(phrase: str) -> frozenset[str] | None:
    """Literals one of which every match starts with; None when there is none to find."""
    if phrase.startswith("re:"):
        # The letters a regex starts with, unless a quantifier or an alternative follows them.
        literal = re.match(r"([a-z0-9]+(?: [a-z0-9]+)*)(?![a-z0-9]*[*+?{])", phrase[3:])
        return frozenset({literal.group(1)}) if literal and "|" not in phrase else None
    return _anchors_from(_parse(phrase), 0)


def _anchors_from(items: list[_Item], index: int) -> frozenset[str] | None:
    if index >= len(items):
        return None
    item = items[index]
    if len(item.alternatives) == 1 and not item.optional:  # a run of plain words
        words: list[str] = []
        for plain in items[index:]:
            if len(plain.alternatives) != 1 or plain.optional:
                break
            words.extend(plain.alternatives[0])
        found = _words_anchor(words)
        return frozenset(found) if found else None
    anchors: set[str] = set()
    for words in item.alternatives:
        found = _words_anchor(words)
        if found is None:
            return None
        anchors |= found
    if item.optional:
        rest = _anchors_from(items, index + 1)
        if rest is None:
            return None
        anchors |= rest
    return frozenset(anchors)


def _trie_regex(anchors: Iterable[str]) -> str:
    """One regex for many literals, shaped as a trie so that re tries few branches."""
    root: dict[str, Any] = {}
    for anchor in anchors:
        node = root
        for char in anchor:
            node = node.setdefault(char, {})
        node[""] = {}

    def emit(node: dict[str, Any]) -> str:
        branches = [
            (_SEPARATOR if char == " " else re.escape(char)) + emit(child)
            for char, child in sorted(node.items())
            if char
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        return f"(?:{body})?" if "" in node else body

    return emit(root)


def _alternation(phrases: Iterable[str]) -> str:
    # No look-behind in front: the callers only try it where a word starts.
    return "(?:" + "|".join(sorted({phrase_regex(p) for p in phrases}, key=len, reverse=True)) + r")(?!\w)"


@dataclass(frozen=True, slots=True)
class _PhraseSet:
    """Phrases compiled to be tried only where one of their anchors starts a word."""

    sources: Mapping[str, str]  # anchor → the regex of the phrases that can start there
    anchor_scan: re.Pattern[str] | None  # a space, then an anchor
    anchor_at: re.Pattern[str] | None  # an anchor at the very start
    unanchored: re.Pattern[str] | None  # the phrases without an anchor, searched everywhere
    compiled: dict[str, re.Pattern[str]] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def of(cls, phrases: list[str]) -> _PhraseSet:
        by_anchor: dict[str, set[str]] = {}
        unanchored = []
        for phrase in phrases:
            anchors = phrase_anchors(phrase)
            if anchors is None:
                unanchored.append(phrase)
            for anchor in anchors or ():
                by_anchor.setdefault(anchor, set()).add(phrase)
        # A scan reports the longest anchor at a position: try the phrases of its prefixes too.
        sources = {
            anchor: _alternation({p for a in by_anchor if anchor.startswith(a) for p in by_anchor[a]})
            for anchor in by_anchor
        }
        trie = _trie_regex(by_anchor) if by_anchor else None
        return cls(
            sources=sources,
            anchor_scan=re.compile(" " + trie) if trie else None,
            anchor_at=re.compile(trie) if trie else None,
            unanchored=re.compile(_alternation(unanchored)) if unanchored else None,
        )

    def at(self, anchor: str) -> re.Pattern[str]:
        """The phrases that can start with `anchor`, compiled on first use (most never are)."""
        if anchor not in self.compiled:
            self.compiled[anchor] = re.compile(self.sources[anchor])
        return self.compiled[anchor]

    def search(self, text: str, low: int = 0, high: int | None = None) -> bool:
        high = len(text) if high is None else high
        if self.anchor_at is not None and self.anchor_scan is not None:
            first = self.anchor_at.match(text, low, high) if _starts_word(text, low) else None
            if first and self.at(_normal_anchor(first.group())).match(text, low, high):
                return True
            for hit in self.anchor_scan.finditer(text, low, high):  # words start after a space
                if self.at(_normal_anchor(hit.group()[1:])).match(text, hit.start() + 1, high):
                    return True
        return self.unanchored is not None and next(_word_matches(self.unanchored, text, low, high), None) is not None


def _normal_anchor(found: str) -> str:
    return found if found.isalpha() else " ".join(found.split())  # several words: spaces vary


def _starts_word(text: str, position: int) -> bool:
    return position == 0 or not (text[position - 1].isalnum() or text[position - 1] == "_")


def _word_matches(pattern: re.Pattern[str], text: str, low: int, high: int) -> Iterator[re.Match[str]]:
    while (match := pattern.search(text, low, high)) is not None:
        if _starts_word(text, match.start()):
            yield match
        low = match.start() + 1


# ---------------------------------------------------------------- compiled rules


@dataclass(frozen=True, slots=True)
class _Context:
    """Phrases looked for around a match: within N words, in its sentence or its release."""

    phrases: _PhraseSet
    words: int  # within this many words either side; SENTENCE or RELEASE


@dataclass(frozen=True, slots=True)
class _Rule:
    phrases: _PhraseSet
    near: tuple[_Context, ...]  # each must be found
    unless: tuple[_Context, ...]  # any one found vetoes


@dataclass(frozen=True, slots=True)
class _Flag:
    name: str
    channel: str | None
    rules: tuple[_Rule, ...]


@dataclass(frozen=True, slots=True)
class FlagRules:
    """Compiled flag rules. Made by ``compile_rules``; read by ``match_flags``."""

    flags: tuple[_Flag, ...] = ()
    anchor_scan: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    anchor_at: re.Pattern[str] | None = field(default=None, compare=False, repr=False)
    rules_at: Mapping[str, tuple[tuple[int, int, re.Pattern[str]], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )

    @classmethod
    def of(cls, flags: tuple[_Flag, ...]) -> FlagRules:
        anchors = {a for flag in flags for rule in flag.rules for a in rule.phrases.sources}
        rules_at = {anchor: tuple(_rules_at(flags, anchor)) for anchor in anchors}
        trie = _trie_regex(anchors) if anchors else None
        return cls(flags, re.compile(" " + trie) if trie else None, re.compile(trie) if trie else None, rules_at)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(flag.name for flag in self.flags)

    def channel_for(self, flag: str) -> str | None:
        return next((f.channel for f in self.flags if f.name == flag), None)


def _rules_at(flags: tuple[_Flag, ...], anchor: str) -> Iterator[tuple[int, int, re.Pattern[str]]]:
    """The rules whose phrases can start where the scan finds `anchor`, with those phrases."""
    for flag_index, flag in enumerate(flags):
        for rule_index, rule in enumerate(flag.rules):
            prefixes = [other for other in rule.phrases.sources if anchor.startswith(other)]
            if prefixes:
                yield flag_index, rule_index, rule.phrases.at(max(prefixes, key=len))


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise _RuleError(f"{where}: must be a list of strings")
    if not value:
        raise _RuleError(f"{where}: empty phrase list")
    if not all(p.strip() for p in value):
        raise _RuleError(f"{where}: empty phrase")
    return [p.strip() for p in value]


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed and key not in LANGUAGES:
            hint = "a language code or one of: " + ", ".join(sorted(allowed))
            raise _RuleError(f"{where}.{key}: unknown key or language ({hint})")


def _compile_groups(value: Any, where: str) -> dict[str, str]:
    """``[flags.X.groups]``: named word lists that a phrase uses as ``{name}``."""
    if not isinstance(value, Mapping):
        raise _RuleError(f"{where}: must be a table of word lists")
    groups = {}
    for name, words in value.items():
        entries = _strings(words, f"{where}.{name}")
        if any(c in entry for entry in entries for c in "()|{}"):
            raise _RuleError(f"{where}.{name}: a group entry cannot hold ( ) | {{ }}")
        groups[name] = "(" + "|".join(entries) + ")"
    return groups


class _Compiler:
    """Compiles the rules of one flag with its groups."""

    def __init__(self, groups: Mapping[str, str]) -> None:
        self.groups = groups

    def phrases(self, table: Mapping[str, Any], where: str) -> list[str]:
        phrases = []
        for key, value in table.items():
            if key in LANGUAGES:
                phrases.extend(self._expand(p, f"{where}.{key}") for p in _strings(value, f"{where}.{key}"))
        if not phrases:
            raise _RuleError(f"{where}: empty phrase list (give en = [...], fr = [...], any = [...] …)")
        try:
            if not re.compile(_alternation(phrases)).fullmatch(""):
                return phrases
        except (_RuleError, re.error):
            pass
        for phrase in phrases:  # something is wrong: find the phrase and say what
            try:
                regex = re.compile(phrase_regex(phrase))
            except _RuleError as exc:
                raise _RuleError(f"{where}: bad phrase {phrase!r}: {exc}") from None
            except re.error as exc:
                raise _RuleError(f"{where}: bad regex {phrase!r}: {exc}") from None
            if regex.fullmatch(""):
                raise _RuleError(f"{where}: phrase {phrase!r} matches empty text")
        return phrases

    def _expand(self, phrase: str, where: str) -> str:
        def replace(ref: re.Match[str]) -> str:
            if ref.group(1) not in self.groups:
                raise _RuleError(f"{where}: unknown group {{{ref.group(1)}}} in {phrase!r}")
            return self.groups[ref.group(1)]

        return phrase if phrase.startswith("re:") else _GROUP_REF.sub(replace, phrase)

    def context(self, table: Any, where: str) -> _Context:
        if not isinstance(table, Mapping):
            raise _RuleError(f"{where}: must be a table")
        _check_keys(table, {"within", "note"}, where)
        within = table.get("within", "sentence")
        if not ((type(within) is int and within > 0) or (isinstance(within, str) and within in _SCOPES)):
            raise _RuleError(f'{where}.within: must be a number of words, "sentence" or "release"')
        return _Context(_PhraseSet.of(self.phrases(table, where)), _SCOPES.get(within, within))

    def contexts(self, value: Any, where: str) -> tuple[_Context, ...]:
        if not isinstance(value, list):
            return (self.context(value, where),)
        return tuple(self.context(table, f"{where}[{i}]") for i, table in enumerate(value))

    def rule(self, table: Any, where: str) -> _Rule:
        if not isinstance(table, Mapping):
            raise _RuleError(f"{where}: must be a table")
        _check_keys(table, {"near", "unless", "note"}, where)
        if not isinstance(table.get("note", ""), str):
            raise _RuleError(f"{where}.note: must be a string")
        return _Rule(
            phrases=_PhraseSet.of(self.phrases(table, where)),
            near=self.contexts(table["near"], f"{where}.near") if "near" in table else (),
            unless=self.contexts(table["unless"], f"{where}.unless") if "unless" in table else (),
        )


def _compile_flag(name: str, table: Any) -> _Flag:
    where = f"flags.{name}"
    if not _FLAG_NAME.fullmatch(name):
        raise _RuleError(f"{where}: a flag name uses lower-case letters, digits, '-' and '_'")
    if not isinstance(table, Mapping):
        raise _RuleError(f"{where}: must be a table")
    channel = table.get("channel")
    if channel is not None and (not isinstance(channel, str) or not channel.strip()):
        raise _RuleError(f'{where}.channel: must be a channel name such as "#icc"')
    compiler = _Compiler(_compile_groups(table.get("groups", {}), f"{where}.groups"))
    listed = table.get("rules", [])
    if not isinstance(listed, list):
        raise _RuleError(f"{where}.rules: must be a list of [[{where}.rules]] tables")
    rules = [compiler.rule(rule, f"{where}.rules[{i}]") for i, rule in enumerate(listed)]
    # The flag table may itself be a rule: [flags.death-penalty] en = ["death penalty"].
    top = {key: value for key, value in table.items() if key not in ("channel", "groups", "rules")}
    if top or not rules:
        rules.insert(0, compiler.rule(top, where))
    return _Flag(name, channel.strip() if channel else None, tuple(rules))


def compile_rules(raw: Mapping[str, Any], source: str) -> FlagRules:
    """Validate and compile the ``[flags]`` table; a problem is one ``ConfigError`` line."""
    try:
        return FlagRules.of(tuple(_compile_flag(name, table) for name, table in raw.items()))
    except _RuleError as exc:
        raise ConfigError(f"{source}: {exc}") from None


# ---------------------------------------------------------------- matching

# A sentence ends at . ! ? or … followed by a space and a capital, except after an initial
# or a title (so "I.C.C. Prosecutor", "Mr. Ostrovsky" and "v. Haral" do not end one), or
# at a blank line. Feeds break lines inside sentences, so one line break does not end one.
# It starts with one character class so that re only stops at those characters.
_SENTENCE_END = re.compile(
    r"[.!?…\n](?:(?<=\n)[ \t]*\n|(?<!\n)"
    r"(?<!\b[A-Za-z].)(?<!\bM[rs].)(?<!\bMrs.)(?<!\bDr.)(?<!\bNo.)(?<!\bSt.)(?<!\bMme.)(?<!\bart.)"
    r"[.!?…]*[\"'”’»)\]]*\s+(?=[\"'“‘«(\[¿¡]?[A-ZÀ-ÖØ-Þ0-9]))"
)
_SENTENCE_REACH = 1000  # a "sentence" longer than this is a list or a table: cut it
_FIELDS = ("title", "teaser", "content", "full_text")


class _Release:
    """The fields of one release joined by blank lines, and the folded copy."""

    __slots__ = ("_anywhere", "_windows", "field_starts", "fields", "folded", "text")

    def __init__(self, texts: Iterable[tuple[str, str]]) -> None:
        parts: list[str] = []
        self.fields: list[str] = []
        self.field_starts: list[int] = []
        offset = 0
        for name, text in texts:
            if text and not text.isspace():
                self.fields.append(name)
                self.field_starts.append(offset)
                parts.append(text)
                offset += len(text) + 2
        self.text = "\n\n".join(parts)
        if not self.text.isascii() and not unicodedata.is_normalized("NFC", self.text):  # é as e + ´
            self.__init__(zip(self.fields, (unicodedata.normalize("NFC", p) for p in parts), strict=True))
            return
        self.folded = fold_text(self.text)
        self._anywhere: dict[int, bool] = {}
        self._windows: dict[tuple[int, int, int], tuple[int, int]] = {}  # 0 words: the sentence

    def field_at(self, position: int) -> str:
        return self.fields[bisect_right(self.field_starts, position) - 1]

    def sentence_span(self, start: int, end: int) -> tuple[int, int]:
        key = (start, end, 0)
        if key not in self._windows:
            self._windows[key] = self._sentence_start(start), self._sentence_end(end)
        return self._windows[key]

    def _sentence_start(self, start: int) -> int:
        """After the last sentence end before `start` (str.rfind finds candidates fast)."""
        text, floor, position = self.text, max(0, start - _SENTENCE_REACH), start
        while position > floor:
            candidate = max(
                text.rfind(". ", floor, position),
                text.rfind("\n\n", floor, position),
                text.rfind("? ", floor, position),
                text.rfind("! ", floor, position),
                text.rfind(".\n", floor, position),
            )
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
        key = (start, end, words)
        if key not in self._windows:
            self._windows[key] = self._word_span(start, end, words)
        return self._windows[key]

    def _word_span(self, start: int, end: int, words: int) -> tuple[int, int]:
        reach = words * 16 + 64  # enough for `words` words, but for very long ones
        before = self.folded[max(0, start - reach) : start]
        head = before.rsplit(None, words)  # [the rest, word 1, …, word N]
        after = self.folded[end : end + reach]
        tail = after.split(None, words)  # [word 1, …, word N, the rest]
        low = start - len(before) + (len(head[0]) if len(head) > words else 0)
        return low, end + len(after) - (len(tail[-1]) if len(tail) > words else 0)

    def has(self, context: _Context, start: int, end: int) -> bool:
        if context.words == RELEASE:
            key = id(context)
            if key not in self._anywhere:
                self._anywhere[key] = context.phrases.search(self.folded)
            return self._anywhere[key]
        if context.words == SENTENCE:
            low, high = self.sentence_span(start, end)
        else:
            low, high = self.word_span(start, end, context.words)
        return context.phrases.search(self.folded, low, high)

    def explain(self, flag: str, start: int, end: int) -> FlagMatch:
        low, high = self.sentence_span(start, end)
        return FlagMatch(
            flag=flag,
            phrase=" ".join(self.text[start:end].split()),
            sentence=_trim(self.text[low:high], start - low, end - low),
            field=self.field_at(start),
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
    return " ".join(sentence.split())


def _candidates(rules: FlagRules, folded: str) -> list[tuple[int, int, int, int]]:
    """(start, end, flag index, rule index) of every phrase match, in text order."""
    if rules.anchor_at is None or rules.anchor_scan is None:
        hits = []
    else:
        hits = [(hit.start() + 1, hit.group()[1:]) for hit in rules.anchor_scan.finditer(folded)]
        if first := rules.anchor_at.match(folded):
            hits.insert(0, (0, first.group()))
    found = []
    for start, anchor in hits:
        for flag_index, rule_index, pattern in rules.rules_at[anchor if anchor.isalpha() else _normal_anchor(anchor)]:
            if match := pattern.match(folded, start):
                found.append((start, match.end(), flag_index, rule_index))
    for flag_index, flag in enumerate(rules.flags):
        for rule_index, rule in enumerate(flag.rules):
            if rule.phrases.unanchored is not None:
                found.extend(
                    (match.start(), match.end(), flag_index, rule_index)
                    for match in _word_matches(rule.phrases.unanchored, folded, 0, len(folded))
                )
    return sorted(set(found))


def match_flags(
    rules: FlagRules, *, title: str, teaser: str, content: str, full_text: str | None = None
) -> list[FlagMatch]:
    """Why the release carries each flag: it has flag F iff some match has flag F.

    Each flag keeps its first MAX_MATCHES_PER_FLAG matches of *different* phrases: a
    release that says "ICC" ten times is explained by its first "ICC" in a court context.
    """
    release = _Release(zip(_FIELDS, (title, teaser, content, full_text or ""), strict=True))
    per_flag: list[list[FlagMatch]] = [[] for _ in rules.flags]
    explained: set[tuple[int, str]] = set()
    for start, end, flag_index, rule_index in _candidates(rules, release.folded):
        phrase = (flag_index, release.folded[start:end])
        if phrase in explained or len(per_flag[flag_index]) == MAX_MATCHES_PER_FLAG:
            continue
        if _accepted(release, rules.flags[flag_index].rules[rule_index], start, end):
            explained.add(phrase)
            per_flag[flag_index].append(release.explain(rules.flags[flag_index].name, start, end))
    return [flag_match for matches in per_flag for flag_match in matches]


def _accepted(release: _Release, rule: _Rule, start: int, end: int) -> bool:
    for context in rule.near:
        if not release.has(context, start, end):
            return False
    return not any(release.has(context, start, end) for context in rule.unless)


# ---------------------------------------------------------------- evaluation


def evaluate(rules: FlagRules, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Precision, recall and the confusion per flag on labeled rows (``pressbot flags test``).

    A row is a release as in ``tests/data/labeled-dev.jsonl``: ``id``, ``title``,
    ``summary`` (or ``teaser``), ``content``, optional ``full_text`` and ``labels``
    (flag → bool). A flag missing from a row's labels is not counted for that row.
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
        predicted, actual = score["tp"] + score["fp"], score["tp"] + score["fn"]
        score["precision"] = score["tp"] / predicted if predicted else 1.0
        score["recall"] = score["tp"] / actual if actual else 1.0
    return report


def _empty_score() -> dict[str, Any]:
    return {"tp": 0, "fp": 0, "fn": 0, "tn": 0, "false_positives": [], "false_negatives": []}


def _count(score: dict[str, Any], row: Mapping[str, Any], expected: bool, matches: list[FlagMatch]) -> None:
    item = {"id": row.get("id"), "title": row.get("title")}
    if matches and expected:
        score["tp"] += 1
    elif matches:
        score["fp"] += 1
        explained = [{"phrase": m.phrase, "sentence": m.sentence, "field": m.field} for m in matches]
        score["false_positives"].append({**item, "matches": explained})
    elif expected:
        score["fn"] += 1
        score["false_negatives"].append(item)
    else:
        score["tn"] += 1
