"""The search language of ``pressbot query`` TEXT and the ``/pressbot`` slash command. Pure.

One syntax, parsed here into a tree that bot.store translates for each engine
(SQLite FTS5, PostgreSQL tsquery)::

    icc visa            both words (AND is implied; writing AND is allowed)
    "exact phrase"      these words in this order
    visa OR sanctions   either; OR binds tighter than AND, as in web search engines:
                        icc visa OR sanctions = icc AND (visa OR sanctions)
    -word, NOT word     without it; a group needs at least one word to look for
    visa*               words starting with "visa"
    ( ... )             grouping

Case and accents never matter ("represailles" finds "représailles"). Results are
ranked by relevance or by date, and each carries a snippet with the matched words
between ``MARK_START`` and ``MARK_END``. The records of a search (``QueryFilters``
in, ``QueryHit`` out) live here too, so that a one-off query loads neither the
pipeline's records nor any SQL beyond its own.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from bot.errors import QuerySyntaxError

MARK_START = "\x02"  # control characters: XML 1.0 (§2.2) forbids them, so feed text lacks them
MARK_END = "\x03"

_TOKEN = re.compile(
    r'\s*(?:(?P<open>\()|(?P<close>\))|(?P<neg>-)(?=[^\s)])|"(?P<phrase>[^"]*)(?P<end>"?)|(?P<word>[^\s()"]+))'
)
WORD = re.compile(r"\w+")


@dataclass(frozen=True, slots=True)
class QueryFilters:
    """A search over stored items. Made by the CLI and the Slack slash command; read by store.search.

    Repeating one filter widens it (any of these flags, any of these feeds); different
    filters narrow each other. ``since``/``until`` apply to the published date, else the
    date the item was first seen.
    """

    text: str | None = None  # full text, in pressbot's search syntax (see store.search)
    flags: tuple[str, ...] = ()
    feeds: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()  # "en" also matches "en-GB"
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    limit: int = 20
    sort: str = "relevance"  # "relevance" (when there is text) or "date", newest first
    group: bool = True  # a group of copies is one result, its head (False: every copy, `--no-group`)


@dataclass(frozen=True, slots=True)
class QueryCopy:
    """Another feed's copy of a result (issue 18). Made by store.search; read by the CLI."""

    item_id: int
    feed_name: str
    url: str | None


@dataclass(frozen=True, slots=True)
class QueryHit:
    """One search result. Made by store.search; read by the CLI and the Slack slash command."""

    item_id: int
    feed_name: str
    title: str
    url: str | None
    published: datetime | None
    first_seen: datetime
    language: str | None
    summary: str | None
    flags: tuple[str, ...] = ()
    matches: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # flag → matched phrases
    snippet: str | None = None  # when searching text: matched words between search.MARK_START/END
    also_in: tuple[QueryCopy, ...] = ()  # the other copies of a grouped release (none with `--no-group`)
    summary_pending: bool = False  # its summary is not made yet (bot.summaries makes it)



# -- the syntax tree -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Term:
    text: str  # as typed (a word, or a phrase's words)
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class AllOf:
    include: tuple[Node, ...]
    exclude: tuple[Node, ...] = ()


@dataclass(frozen=True, slots=True)
class AnyOf:
    options: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Not:
    node: Node


Node = Term | AllOf | AnyOf


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens = []
    for match in _TOKEN.finditer(text.rstrip()):
        kind = match.lastgroup if match.lastgroup != "end" else "phrase"
        if kind == "phrase":
            if not match.group("end"):
                raise QuerySyntaxError(f'unbalanced quote in {text!r}: add the closing "')
            tokens.append(("phrase", match.group("phrase")))
        elif kind == "word" and match.group("word") in ("AND", "OR", "NOT"):
            tokens.append((match.group("word"), ""))
        elif kind is not None:
            tokens.append((kind, match.group(kind)))
    return tokens


MAX_QUERY_CHARS = 2000  # documented in the README; ~300 words
MAX_NESTING = 16


class _Parser:
    """Recursive descent: and := or ([AND] or)* ; or := unary (OR unary)* ; unary := [-|NOT] primary."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0
        self.depth = 0

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        self.at += 1
        return self.tokens[self.at - 1]

    def fail(self, problem: str) -> QuerySyntaxError:
        return QuerySyntaxError(f"{problem} in {self.text!r}")

    def parse(self) -> Node:
        node = self.all_of()
        if self.peek() == "close":
            raise self.fail("unbalanced parenthesis: ')' without '('")
        if node is None:
            raise self.fail("nothing to search for")
        return node

    def all_of(self) -> Node | None:
        parts: list[Node | Not] = []
        while self.peek() not in (None, "close"):
            if self.peek() == "AND":
                self.take()
                if not parts or self.peek() in (None, "close", "AND", "OR"):
                    raise self.fail("AND needs a word on each side")
            part = self.any_of()
            if part is not None:
                parts.append(part)
        include = tuple(part for part in parts if not isinstance(part, Not))
        exclude = tuple(part.node for part in parts if isinstance(part, Not))
        if not include:
            if exclude:
                raise self.fail("a search needs a word to look for, not only words to leave out")
            return None
        return include[0] if len(include) == 1 and not exclude else AllOf(include, exclude)

    def any_of(self) -> Node | Not | None:
        if self.peek() == "OR":
            raise self.fail("OR needs a word on each side")
        options = [self.unary()]
        while self.peek() == "OR":
            self.take()
            if self.peek() in (None, "close", "AND", "OR"):
                raise self.fail("OR needs a word on each side")
            options.append(self.unary())
        kept = [option for option in options if option is not None]
        if len(kept) > 1 and any(isinstance(option, Not) for option in kept):
            raise self.fail("an OR alternative cannot be a NOT; exclude words outside the OR")
        if len(kept) <= 1:
            return kept[0] if kept else None
        return AnyOf(tuple(option for option in kept if not isinstance(option, Not)))

    def unary(self) -> Node | Not | None:
        if self.peek() in ("neg", "NOT"):
            self.take()
            if self.peek() in (None, "close", "AND", "OR", "neg", "NOT"):
                raise self.fail("NOT (or -) needs a word after it")
            node = self.primary()
            return Not(node) if node is not None else None
        return self.primary()

    def primary(self) -> Node | None:
        kind, value = self.take()
        if kind == "open":
            self.depth += 1
            if self.depth > MAX_NESTING:
                # Each level is four Python frames: 245 of them hit the recursion limit (issue 14).
                raise QuerySyntaxError(f"parentheses nest more than {MAX_NESTING} deep in this search")
            node = self.all_of()
            self.depth -= 1
            if self.peek() != "close":
                raise self.fail("unbalanced parenthesis: '(' without ')'")
            self.take()
            if node is None:
                raise self.fail("empty parentheses")
            return node
        if kind == "close":
            raise self.fail("unbalanced parenthesis: ')' without '('")
        prefix = kind == "word" and value.endswith("*")
        text = value.rstrip("*") if prefix else value
        if "*" in text:
            raise self.fail(f"'*' only ends a word (visa*), it cannot stand inside {value!r}")
        # Punctuation alone ("&", "–") indexes nothing on either engine: drop it.
        return Term(text, prefix) if WORD.search(text) else None


def parse_search(text: str) -> Node:
    """The search syntax above as a tree; QuerySyntaxError (one line) when it is not one.

    At most ``MAX_QUERY_CHARS`` characters and ``MAX_NESTING`` levels of parentheses.
    """
    if len(text) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(f"a search has at most {MAX_QUERY_CHARS} characters; this one has {len(text)}")
    return _Parser(text).parse()
