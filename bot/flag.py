"""Flag rules: does a release mention reprisals, the ICC, or any flag a user defines?

Rules are data (``[flags.<name>]`` in ``config/pressbot.toml``; the format is documented
there). ``compile_rules`` validates and compiles them once; ``match_flags`` is pure and
says why, with the phrase as written and its sentence.

All matching runs on a *folded* copy of the text of the same length (lower case, accents
stripped, typographic apostrophes, spaces and hyphens made ASCII), so positions found in
the folded copy point at the same characters in the original.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from bot.errors import ConfigError
from bot.records import FlagMatch

MAX_MATCHES_PER_FLAG = 3  # enough to explain a flag in Slack without quoting the release
SENTENCE_CHARS = 300

# ISO 639-1 codes, plus "any" for language-neutral terms such as acronyms. The language
# of a list documents the phrases; every list is matched against every release, because
# feeds rarely declare a language and releases often quote another one.
_ISO_639_1 = (
    "any aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv"
    " cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht"
    " hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la"
    " lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj"
    " om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv"
    " sw ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu"
)
LANGUAGES = frozenset(_ISO_639_1.split())
_SCOPES = ("sentence", "release")
_FLAG_NAME = re.compile(r"[a-z0-9][a-z0-9_-]*")


# ---------------------------------------------------------------- folding


def _fold_table() -> dict[int, str]:
    table: dict[int, str] = {}
    for code in range(0xC0, 0x250):  # Latin-1 Supplement and Latin Extended-A/B
        char = chr(code)
        base = "".join(c for c in unicodedata.normalize("NFKD", char) if not unicodedata.combining(c))
        if len(base) == 1 and base.lower() != char:
            table[code] = base.lower()
    table[0x130] = "i"  # "İ".lower() is two characters
    for code in (0x2018, 0x2019, 0x201B, 0x2032, 0x02BC, 0x00B4, 0x0060):
        table[code] = "'"  # ICC’s, l’ONU
    for code in (0x00A0, 0x202F, 0x2007, 0x2009, 0x200A, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x3000):
        table[code] = " "  # French typography puts no-break spaces inside names and before ":"
    for code in (0x2010, 0x2011, 0x00AD):
        table[code] = "-"
    return table


_FOLD = _fold_table()


def fold_text(text: str) -> str:
    """Lower case without accents, same length as ``text`` (so offsets carry over)."""
    if text.isascii():
        return text.lower()
    folded = text.translate(_FOLD).lower()
    if len(folded) != len(text):  # a character whose lower case is longer; keep it as is
        folded = "".join(c if len(c.lower()) != 1 else c.lower() for c in text.translate(_FOLD))
    return folded


# ---------------------------------------------------------------- phrases


class _RuleError(ValueError):
    """A problem in one rule; compile_rules adds the file and flag."""


_SEPARATOR = r"[\s\-]+"  # spaces, line breaks, no-break spaces or hyphens between words
_ITEM = re.compile(r"\(([^()]*)\)(\?)?|[^\s()]+|\S")


def _word_regex(word: str) -> str:
    """One word: ``*`` alone is any word, ``*`` inside is any letters, CAPITALS an acronym."""
    if word == "*":
        return r"\w[\w']*"
    if len(word) >= 2 and word.isalpha() and word.isupper():
        plain = re.escape(word.lower())
        dotted = r"\.".join(re.escape(c) for c in word.lower())
        return f"(?:{plain}|{dotted}\\.?)"  # ICC, I.C.C.
    parts = []
    for char in fold_text(word):
        if char == "*":
            parts.append(r"\w*")
        elif char == "'":
            parts.append("'?")
        else:
            parts.append(re.escape(char))
    return "".join(parts)


def _words_regex(text: str) -> str:
    # A hyphen inside a word may also be a space or missing: Pre-Trial, pre trial, pretrial.
    words = ("[\\s\\-]*".join(_word_regex(part) for part in word.split("-")) for word in text.split())
    return _SEPARATOR.join(words)


def phrase_regex(phrase: str) -> str:
    """The regular expression, on folded text, for one phrase of the rule syntax."""
    if phrase.startswith("re:"):
        return f"(?:{phrase[3:]})"
    parts: list[str] = []
    need_separator = False
    for item in _ITEM.finditer(phrase):
        if item.group(0) in ("(", ")"):
            raise _RuleError("unbalanced parentheses")
        if item.group(1) is None:
            regex, optional = _words_regex(item.group(0)), False
        else:
            alternatives = [a.strip() for a in item.group(1).split("|")]
            if not all(alternatives):
                raise _RuleError("empty alternative in ( | )")
            regex, optional = "(?:" + "|".join(map(_words_regex, alternatives)) + ")", bool(item.group(2))
        if need_separator:
            parts.append(f"(?:{_SEPARATOR}{regex})?" if optional else _SEPARATOR + regex)
        else:
            parts.append(f"(?:{regex}{_SEPARATOR})?" if optional else regex)
            need_separator = not optional
    return "".join(parts)


def _alternation(phrases: Iterable[str]) -> str:
    branches = sorted({phrase_regex(p) for p in phrases}, key=len, reverse=True)
    return r"(?<!\w)(?:" + "|".join(branches) + r")(?!\w)"


# ---------------------------------------------------------------- compiled rules


@dataclass(frozen=True, slots=True)
class _Context:
    """Phrases looked for around a match: within N words, the sentence or the release."""

    pattern: re.Pattern[str]
    within: int | str


@dataclass(frozen=True, slots=True)
class _Rule:
    pattern: re.Pattern[str]
    near: tuple[_Context, ...]  # all must be present
    unless: tuple[_Context, ...]  # any one vetoes


@dataclass(frozen=True, slots=True)
class _Flag:
    name: str
    channel: str | None
    rules: tuple[_Rule, ...]


@dataclass(frozen=True, slots=True)
class FlagRules:
    """Compiled flag rules. Made by ``compile_rules``; read by ``match_flags``."""

    flags: tuple[_Flag, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(flag.name for flag in self.flags)

    def channel_for(self, flag: str) -> str | None:
        return next((f.channel for f in self.flags if f.name == flag), None)


_GROUP_REF = re.compile(r"\{([A-Za-z0-9_-]+)\}")


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise _RuleError(f"{where}: must be a list of strings")
    if not value:
        raise _RuleError(f"{where}: empty phrase list")
    if not all(p.strip() for p in value):
        raise _RuleError(f"{where}: empty phrase")
    return [p.strip() for p in value]


def _compile_groups(value: Any, where: str) -> dict[str, str]:
    """``[flags.X.groups]``: named word lists a phrase uses as ``{name}``."""
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
    """Compiles the rules of one flag; ``where`` names the table in error messages."""

    def __init__(self, groups: Mapping[str, str]) -> None:
        self.groups = groups

    def phrases(self, table: Mapping[str, Any], where: str) -> list[str]:
        phrases = []
        for key, value in table.items():
            if key in LANGUAGES:
                phrases.extend(self._expand(p, f"{where}.{key}") for p in _strings(value, f"{where}.{key}"))
        return phrases

    def _expand(self, phrase: str, where: str) -> str:
        def replace(ref: re.Match[str]) -> str:
            if ref.group(1) not in self.groups:
                raise _RuleError(f"{where}: unknown group {{{ref.group(1)}}} in {phrase!r}")
            return self.groups[ref.group(1)]

        return phrase if phrase.startswith("re:") else _GROUP_REF.sub(replace, phrase)

    def pattern(self, phrases: list[str], where: str) -> re.Pattern[str]:
        for phrase in phrases:
            try:
                regex = re.compile(phrase_regex(phrase))
            except _RuleError as exc:
                raise _RuleError(f"{where}: bad phrase {phrase!r}: {exc}") from None
            except re.error as exc:
                raise _RuleError(f"{where}: bad regex {phrase!r}: {exc}") from None
            if regex.fullmatch(""):
                raise _RuleError(f"{where}: phrase {phrase!r} matches empty text")
        return re.compile(_alternation(phrases))

    def context(self, table: Any, where: str) -> _Context:
        if not isinstance(table, Mapping):
            raise _RuleError(f"{where}: must be a table")
        _check_keys(table, {"within", "note"}, where)
        within = table.get("within", "sentence")
        if isinstance(within, bool) or not ((isinstance(within, int) and within > 0) or within in _SCOPES):
            raise _RuleError(f"{where}.within: must be a number of words, \"sentence\" or \"release\"")
        phrases = self.phrases(table, where)
        if not phrases:
            raise _RuleError(f"{where}: empty phrase list")
        return _Context(self.pattern(phrases, where), within)

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
        phrases = self.phrases(table, where)
        if not phrases:
            raise _RuleError(f"{where}: empty phrase list (give en = [...], fr = [...], any = [...] …)")
        near = self.contexts(table["near"], f"{where}.near") if "near" in table else ()
        unless = self.contexts(table["unless"], f"{where}.unless") if "unless" in table else ()
        return _Rule(self.pattern(phrases, where), near, unless)


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed and key not in LANGUAGES:
            hint = "a language code or one of: " + ", ".join(sorted(allowed))
            raise _RuleError(f"{where}.{key}: unknown key or language ({hint})")


def _compile_flag(name: str, table: Any) -> _Flag:
    where = f"flags.{name}"
    if not _FLAG_NAME.fullmatch(name):
        raise _RuleError(f"{where}: a flag name uses lower-case letters, digits, '-' and '_'")
    if not isinstance(table, Mapping):
        raise _RuleError(f"{where}: must be a table")
    channel = table.get("channel")
    if channel is not None and (not isinstance(channel, str) or not channel.strip()):
        raise _RuleError(f"{where}.channel: must be a channel name such as \"#icc\"")
    compiler = _Compiler(_compile_groups(table.get("groups", {}), f"{where}.groups"))
    listed = table.get("rules", [])
    if not isinstance(listed, list):
        raise _RuleError(f"{where}.rules: must be a list of [[{where}.rules]] tables")
    rules = [compiler.rule(rule, f"{where}.rules[{i}]") for i, rule in enumerate(listed)]
    # The flag table may itself be a rule: [flags.death-penalty] en = ["death penalty"].
    top = {k: v for k, v in table.items() if k not in ("channel", "groups", "rules")}
    if top or not rules:
        rules.insert(0, compiler.rule(top, where))
    return _Flag(name, channel.strip() if channel else None, tuple(rules))


def compile_rules(raw: Mapping[str, Any], source: str) -> FlagRules:
    """Validate and compile the ``[flags]`` table; one ``ConfigError`` line per problem."""
    try:
        return FlagRules(tuple(_compile_flag(name, table) for name, table in raw.items()))
    except _RuleError as exc:
        raise ConfigError(f"{source}: {exc}") from None


# ---------------------------------------------------------------- matching

_TOKEN = re.compile(r"\S+")
# A sentence ends at . ! ? or … followed by space and a capital (so "I.C.C. prosecutor",
# "Mr. Ostrovsky" and "v. Haral" do not end one), or at a blank line. Feeds break lines
# inside sentences, so a single line break is not an end.
_SENTENCE_END = re.compile(
    r"(?<!\b[A-Za-z])(?<!\bM[rs])(?<!\bMrs)(?<!\bDr)(?<!\bNo)(?<!\bSt)(?<!\bMme)(?<!\bart)"
    r"[.!?…]+[\"'”’»)\]]*\s+(?=[\"'“‘«(\[¿¡]?[A-ZÀ-ÖØ-Þ0-9])|\n[ \t]*\n"
)
_FIELDS = ("title", "teaser", "content", "full_text")


class _Release:
    """The fields of one release joined by blank lines, with their folded copy."""

    __slots__ = ("_anywhere", "_sentence_starts", "field_starts", "fields", "folded", "text")

    def __init__(self, texts: Iterable[tuple[str, str]]) -> None:
        parts, self.fields, self.field_starts = [], [], []
        offset = 0
        for field, raw in texts:
            text = raw if raw.isascii() else unicodedata.normalize("NFC", raw)
            if not text.strip():
                continue
            self.fields.append(field)
            self.field_starts.append(offset)
            parts.append(text)
            offset += len(text) + 2
        self.text = "\n\n".join(parts)
        self.folded = fold_text(self.text)
        self._sentence_starts: list[int] | None = None
        self._anywhere: dict[int, bool] = {}

    def field_at(self, position: int) -> str:
        return self.fields[bisect_right(self.field_starts, position) - 1]

    def sentence_span(self, start: int) -> tuple[int, int]:
        if self._sentence_starts is None:
            self._sentence_starts = [0, *(m.end() for m in _SENTENCE_END.finditer(self.text))]
        starts = self._sentence_starts
        index = bisect_right(starts, start) - 1
        end = starts[index + 1] if index + 1 < len(starts) else len(self.text)
        return starts[index], end

    def word_span(self, start: int, end: int, words: int) -> tuple[int, int]:
        return self._words_before(start, words), self._words_after(end, words)

    def _words_before(self, position: int, words: int) -> int:
        chunk = words * 12 + 32
        while True:
            low = max(0, position - chunk)
            starts = [m.start() for m in _TOKEN.finditer(self.text, low, position)]
            if len(starts) > words:  # the first token may be cut; the others are whole
                return starts[-words]
            if low == 0:
                return starts[0] if starts else position
            chunk *= 2

    def _words_after(self, position: int, words: int) -> int:
        chunk = words * 12 + 32
        while True:
            high = min(len(self.text), position + chunk)
            ends = [m.end() for m in _TOKEN.finditer(self.text, position, high)]
            if len(ends) > words:
                return ends[words - 1]
            if high == len(self.text):
                return ends[-1] if ends else position
            chunk *= 2

    def has_context(self, context: _Context, start: int, end: int) -> bool:
        if context.within == "release":
            key = id(context)
            if key not in self._anywhere:
                self._anywhere[key] = context.pattern.search(self.folded) is not None
            return self._anywhere[key]
        if context.within == "sentence":
            low, high = self.sentence_span(start)
        else:
            low, high = self.word_span(start, end, int(context.within))
        return context.pattern.search(self.folded, low, high) is not None

    def explain(self, flag: str, start: int, end: int) -> FlagMatch:
        low, high = self.sentence_span(start)
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
        head = "… " if low > 0 else ""
        tail = " …" if high < len(sentence) else ""
        cut = sentence[low:high]
        if head:
            cut = cut.split(None, 1)[-1] if " " in cut[: start - low] else cut
        if tail:
            cut = cut.rsplit(None, 1)[0] if " " in cut[end - low :] else cut
        sentence = head + cut + tail
    return " ".join(sentence.split())


def _accepted(rule: _Rule, release: _Release, start: int, end: int) -> bool:
    return all(release.has_context(c, start, end) for c in rule.near) and not any(
        release.has_context(c, start, end) for c in rule.unless
    )


def _match_flag(flag: _Flag, release: _Release) -> list[FlagMatch]:
    found: list[tuple[int, FlagMatch]] = []
    for rule in flag.rules:
        accepted = 0
        for match in rule.pattern.finditer(release.folded):
            if _accepted(rule, release, match.start(), match.end()):
                found.append((match.start(), release.explain(flag.name, match.start(), match.end())))
                accepted += 1
                if accepted == MAX_MATCHES_PER_FLAG:
                    break
    found.sort(key=lambda pair: pair[0])
    matches: list[FlagMatch] = []
    seen: set[tuple[str, str]] = set()
    for _, flag_match in found:  # a teaser often repeats the first paragraph
        key = (flag_match.phrase.lower(), flag_match.sentence)
        if key not in seen:
            seen.add(key)
            matches.append(flag_match)
    return matches[:MAX_MATCHES_PER_FLAG]


def match_flags(
    rules: FlagRules, *, title: str, teaser: str, content: str, full_text: str | None = None
) -> list[FlagMatch]:
    """Why the release carries each flag: an item has flag F iff some match has flag F."""
    release = _Release(zip(_FIELDS, (title or "", teaser or "", content or "", full_text or ""), strict=True))
    if not release.text:
        return []
    return [m for flag in rules.flags for m in _match_flag(flag, release)]
