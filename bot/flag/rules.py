"""Compiling the ``[flags]`` table of pressbot.toml; every problem is one ConfigError line."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bot.errors import ConfigError
from bot.flag.phrases import PhraseSet, RuleError, Scans, alternation, phrase_regex

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
_GROUP_REF = re.compile(r"\{([A-Za-z0-9_-]+)\}")


@dataclass(frozen=True, slots=True)
class Context:
    """Phrases looked for around a match: within N words, in its sentence or its release."""

    phrases: PhraseSet
    words: int  # within this many words either side; SENTENCE or RELEASE


@dataclass(frozen=True, slots=True)
class Rule:
    phrases: PhraseSet
    near: tuple[Context, ...]  # each must be found
    unless: tuple[Context, ...]  # any one found vetoes


@dataclass(frozen=True, slots=True)
class Flag:
    name: str
    channel: str | None
    rules: tuple[Rule, ...]


# (is a veto, within: words, SENTENCE or RELEASE, its phrases): the rule fails where the
# phrases' presence equals the first item (a veto found, a near missing).
Check = tuple[bool, int, PhraseSet]


@dataclass(frozen=True, slots=True)
class FlagRules:
    """Compiled flag rules. Made by ``compile_rules``; read by ``match_flags``."""

    flags: tuple[Flag, ...] = ()
    scans: Scans = field(default_factory=Scans, compare=False, repr=False)
    # anchor → the rules whose phrases can start there, with those phrases compiled: filled
    # on first use, as most anchors are never found and compiling them all takes seconds
    rules_at: dict[str, tuple[tuple[int, int, re.Pattern[str]], ...]] = field(
        default_factory=dict, compare=False, repr=False
    )
    unanchored: tuple[tuple[int, int, re.Pattern[str]], ...] = field(default=(), compare=False, repr=False)
    # [flag index][rule index] → the rule's contexts in the order match_flags tries them
    checks: tuple[tuple[tuple[Check, ...], ...], ...] = field(default=(), compare=False, repr=False)

    @classmethod
    def of(cls, flags: tuple[Flag, ...]) -> FlagRules:
        anchors = {a for flag in flags for rule in flag.rules for a in rule.phrases.sources}
        unanchored = tuple(
            (flag_index, rule_index, rule.phrases.unanchored)
            for flag_index, flag in enumerate(flags)
            for rule_index, rule in enumerate(flag.rules)
            if rule.phrases.unanchored is not None
        )
        checks = tuple(tuple(_checks(rule) for rule in flag.rules) for flag in flags)
        return cls(flags, Scans.of(anchors), {}, unanchored, checks)

    def rules_for(self, anchor: str) -> tuple[tuple[int, int, re.Pattern[str]], ...]:
        """(flag index, rule index, phrases) of the rules whose phrases can start at `anchor`."""
        found = self.rules_at.get(anchor)
        if found is None:
            found = self.rules_at[anchor] = tuple(_rules_at(self.flags, anchor))
        return found

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(flag.name for flag in self.flags)

    def channel_for(self, flag: str) -> str | None:
        return next((f.channel for f in self.flags if f.name == flag), None)


def _checks(rule: Rule) -> tuple[Check, ...]:
    """A veto anywhere in the release is looked for once per release: it goes first."""
    return (
        *((True, c.words, c.phrases) for c in rule.unless if c.words == RELEASE),
        *((False, c.words, c.phrases) for c in rule.near),
        *((True, c.words, c.phrases) for c in rule.unless if c.words != RELEASE),
    )


def _rules_at(flags: tuple[Flag, ...], anchor: str) -> Iterator[tuple[int, int, re.Pattern[str]]]:
    """The rules whose phrases can start where the scan finds `anchor`, with those phrases."""
    for flag_index, flag in enumerate(flags):
        for rule_index, rule in enumerate(flag.rules):
            prefixes = [other for other in rule.phrases.sources if anchor.startswith(other)]
            if prefixes:
                yield flag_index, rule_index, rule.phrases.at(max(prefixes, key=len))


def _strings(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(p, str) for p in value):
        raise RuleError(f"{where}: must be a list of strings")
    if not value:
        raise RuleError(f"{where}: empty phrase list")
    if not all(p.strip() for p in value):
        raise RuleError(f"{where}: empty phrase")
    return [p.strip() for p in value]


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    for key in table:
        if key not in allowed and key not in LANGUAGES:
            hint = "a language code or one of: " + ", ".join(sorted(allowed))
            raise RuleError(f"{where}.{key}: unknown key or language ({hint})")


def _compile_groups(value: Any, where: str) -> dict[str, str]:
    """``[flags.X.groups]``: named word lists that a phrase uses as ``{name}``."""
    if not isinstance(value, Mapping):
        raise RuleError(f"{where}: must be a table of word lists")
    groups = {}
    for name, words in value.items():
        entries = _strings(words, f"{where}.{name}")
        if any(c in entry for entry in entries for c in "()|{}"):
            raise RuleError(f"{where}.{name}: a group entry cannot hold ( ) | {{ }}")
        groups[name] = "(" + "|".join(entries) + ")"
    return groups


class _Compiler:
    """Compiles the rules of one flag with its groups."""

    def __init__(self, groups: Mapping[str, str]) -> None:
        self.groups = groups

    def phrases(self, table: Mapping[str, Any], where: str) -> list[str]:
        phrases: list[str] = []
        for key, value in table.items():
            if key in LANGUAGES:
                phrases.extend(self._expand(p, f"{where}.{key}") for p in _strings(value, f"{where}.{key}"))
        if not phrases:
            raise RuleError(f"{where}: empty phrase list (give en = [...], fr = [...], any = [...] …)")
        try:
            # A regex alone first: "[unclosed" would close on a bracket of the word boundary.
            for phrase in phrases:
                if phrase.startswith("re:"):
                    re.compile(phrase_regex(phrase))
            if not re.compile(alternation(phrases)).fullmatch(""):
                return phrases
        except (RuleError, re.error):
            pass
        for phrase in phrases:  # something is wrong: find the phrase and say what
            try:
                regex = re.compile(phrase_regex(phrase))
            except RuleError as exc:
                raise RuleError(f"{where}: bad phrase {phrase!r}: {exc}") from None
            except re.error as exc:
                raise RuleError(f"{where}: bad regex {phrase!r}: {exc}") from None
            if regex.fullmatch(""):
                raise RuleError(f"{where}: phrase {phrase!r} matches empty text")
        return phrases

    def _expand(self, phrase: str, where: str) -> str:
        def replace(ref: re.Match[str]) -> str:
            if ref.group(1) not in self.groups:
                raise RuleError(f"{where}: unknown group {{{ref.group(1)}}} in {phrase!r}")
            return self.groups[ref.group(1)]

        return phrase if phrase.startswith("re:") else _GROUP_REF.sub(replace, phrase)

    def context(self, table: Any, where: str) -> Context:
        if not isinstance(table, Mapping):
            raise RuleError(f"{where}: must be a table")
        _check_keys(table, {"within", "note"}, where)
        within = table.get("within", "sentence")
        if not ((type(within) is int and within > 0) or (isinstance(within, str) and within in _SCOPES)):
            raise RuleError(f'{where}.within: must be a number of words, "sentence" or "release"')
        words = _SCOPES[within] if isinstance(within, str) else within
        return Context(PhraseSet.of(self.phrases(table, where)), words)

    def contexts(self, value: Any, where: str) -> tuple[Context, ...]:
        if not isinstance(value, list):
            return (self.context(value, where),)
        return tuple(self.context(table, f"{where}[{i}]") for i, table in enumerate(value))

    def rule(self, table: Any, where: str) -> Rule:
        if not isinstance(table, Mapping):
            raise RuleError(f"{where}: must be a table")
        _check_keys(table, {"near", "unless", "note"}, where)
        if not isinstance(table.get("note", ""), str):
            raise RuleError(f"{where}.note: must be a string")
        return Rule(
            phrases=PhraseSet.of(self.phrases(table, where)),
            near=self.contexts(table["near"], f"{where}.near") if "near" in table else (),
            unless=self.contexts(table["unless"], f"{where}.unless") if "unless" in table else (),
        )


def _compile_flag(name: str, table: Any) -> Flag:
    where = f"flags.{name}"
    if not _FLAG_NAME.fullmatch(name):
        raise RuleError(f"{where}: a flag name uses lower-case letters, digits, '-' and '_'")
    if not isinstance(table, Mapping):
        raise RuleError(f"{where}: must be a table")
    channel = table.get("channel")
    if channel is not None and (not isinstance(channel, str) or not channel.strip()):
        raise RuleError(f'{where}.channel: must be a channel name such as "#icc"')
    compiler = _Compiler(_compile_groups(table.get("groups", {}), f"{where}.groups"))
    listed = table.get("rules", [])
    if not isinstance(listed, list):
        raise RuleError(f"{where}.rules: must be a list of [[{where}.rules]] tables")
    rules = [compiler.rule(rule, f"{where}.rules[{i}]") for i, rule in enumerate(listed)]
    # The flag table may itself be a rule: [flags.death-penalty] en = ["death penalty"].
    top = {key: value for key, value in table.items() if key not in ("channel", "groups", "rules")}
    if top or not rules:
        rules.insert(0, compiler.rule(top, where))
    return Flag(name, channel.strip() if channel else None, tuple(rules))


def compile_rules(raw: Mapping[str, Any], source: str) -> FlagRules:
    """Validate and compile the ``[flags]`` table; a problem is one ``ConfigError`` line."""
    try:
        return FlagRules.of(tuple(_compile_flag(name, table) for name, table in raw.items()))
    except RuleError as exc:
        raise ConfigError(f"{source}: {exc}") from None
