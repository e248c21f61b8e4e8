"""Full-text search and filters, on SQLite (FTS5) and the real PostgreSQL (tsvector)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from bot.errors import QuerySyntaxError
from bot.query import MARK_END, MARK_START, QueryFilters, parse_search
from bot.records import FlagMatch
from bot.schema import Feed, Item
from bot.store import feeds as feed_store
from bot.store import items as item_store
from bot.store.fts import to_fts5
from bot.store.retention import count_prunable, prune_items
from bot.store.search import search_items
from tests.helpers import held_alert
from tests.searchcorpus import NOW, RELEASES, Release, _parsed, archive, postgres_database, title_of


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def shared_db(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[sessionmaker[Session]]:
    """One archive per engine for the tests that only read it: a PostgreSQL setup takes a second."""
    if request.param == "sqlite":
        yield archive(f"sqlite:///{tmp_path_factory.mktemp('search') / 'pressbot.db'}")
        return
    with postgres_database() as url:
        session_factory = archive(url)
        yield session_factory
        session_factory.kw["bind"].dispose()


@pytest.fixture
def own_archive(database_url: str) -> sessionmaker[Session]:
    """An archive of its own, for tests that change it."""
    return archive(database_url)


def titles(session_factory: sessionmaker[Session], **filters: object) -> list[str]:
    with session_factory() as session:
        return [hit.title for hit in search_items(session, QueryFilters(**filters))]  # type: ignore[arg-type]


def keys(session_factory: sessionmaker[Session], **filters: object) -> set[str]:
    found = set(titles(session_factory, **filters))
    return {release.key for release in RELEASES if release.title in found}


# -- the syntax (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "fts5"),
    [
        ("visa", '"visa"'),
        ("icc visa", '("icc" AND "visa")'),
        ("icc AND visa", '("icc" AND "visa")'),
        ('"criminal court"', '"criminal court"'),
        ("visa*", '"visa"*'),
        ("icc visa OR sanctions", '("icc" AND ("visa" OR "sanctions"))'),
        ("visa -icc", '(("visa") NOT "icc")'),
        ("visa NOT icc", '(("visa") NOT "icc")'),
        ("(visa OR menaces) -threats", '((("visa" OR "menaces")) NOT "threats")'),
        ("co-operation", '"co-operation"'),
        ('say "AND" NOT', None),
    ],
    ids=["word", "and", "explicit-and", "phrase", "prefix", "or-binds-tighter", "minus", "not", "group", "hyphen",
         "bad-not"],
)
def test_one_syntax_becomes_a_quoted_fts5_expression(query: str, fts5: str | None) -> None:
    if fts5 is None:
        with pytest.raises(QuerySyntaxError):
            parse_search(query)
        return
    assert to_fts5(parse_search(query)) == fts5


@pytest.mark.parametrize(
    "query",
    ['"unclosed', "(visa", "visa)", "OR visa", "visa OR", "AND visa", "-visa", "NOT", "()", "visa OR -icc", "v*sa",
     "&&"],
    ids=["quote", "open-paren", "close-paren", "leading-or", "trailing-or", "leading-and", "only-negative",
         "bare-not", "empty-group", "negative-alternative", "inner-star", "punctuation-only"],
)
def test_a_query_that_is_not_one_is_a_one_line_error(query: str) -> None:
    with pytest.raises(QuerySyntaxError) as caught:
        parse_search(query)
    assert "\n" not in str(caught.value) and query in str(caught.value)


def test_fts5_keywords_typed_by_the_user_are_just_words() -> None:
    # NEAR, column filters and carets are FTS5 syntax; quoting keeps them inert.
    assert to_fts5(parse_search('NEAR title:visa ^icc')) == '("NEAR" AND "title:visa" AND "^icc")'


# -- searching, on both engines ----------------------------------------------------------


def test_all_words_are_required(shared_db: sessionmaker[Session]) -> None:
    assert keys(shared_db, text="icc visa") == {"icc-visa"}


def test_a_phrase_needs_its_words_in_order(shared_db: sessionmaker[Session]) -> None:
    assert keys(shared_db, text='"criminal court"') == {"icc-visa"}
    assert keys(shared_db, text='"court criminal"') == set()


def test_or_finds_either(shared_db: sessionmaker[Session]) -> None:
    assert keys(shared_db, text="sanctions OR enquête") == {"council", "cpi"}


@pytest.mark.parametrize("query", ["visa -staff", "visa NOT staff"], ids=["minus", "not"])
def test_not_leaves_items_out(shared_db: sessionmaker[Session], query: str) -> None:
    assert keys(shared_db, text=query) == {"council", "annual"}


def test_a_prefix_matches_longer_words(shared_db: sessionmaker[Session]) -> None:
    assert keys(shared_db, text="visa*") == {"icc-visa", "council", "visas", "annual"}
    assert keys(shared_db, text="visa") == {"icc-visa", "council", "annual"}


def test_groups_combine_operators(shared_db: sessionmaker[Session]) -> None:
    assert keys(shared_db, text="(reprisals OR représailles) -burundi") == {"reprisals"}


@pytest.mark.parametrize(
    ("query", "expected"),
    [("represailles", {"burundi"}), ("REPRÉSAILLES", {"burundi"}), ("penale internationale", {"cpi"}),
     ("enquete", {"cpi"})],
    ids=["unaccented", "upper-accented", "two-words", "e-acute"],
)
def test_accents_and_case_do_not_matter(shared_db: sessionmaker[Session], query: str, expected: set[str]) -> None:
    assert keys(shared_db, text=query) == expected


def test_full_text_and_summary_are_searched(shared_db: sessionmaker[Session]) -> None:
    assert keys(shared_db, text='"statut de rome"') == {"cpi"}
    assert keys(shared_db, text="forty countries") == {"annual"}


def test_a_title_match_ranks_first(shared_db: sessionmaker[Session]) -> None:
    assert titles(shared_db, text="reprisals")[0] == title_of("reprisals")


def test_sort_by_date_puts_the_newest_first(shared_db: sessionmaker[Session]) -> None:
    newest_first = ("icc-visa", "council", "visas", "annual")
    assert titles(shared_db, text="visa*", sort="date") == [title_of(key) for key in newest_first]


def test_without_text_the_newest_come_first(shared_db: sessionmaker[Session]) -> None:
    # The undated release counts from when it was first seen: now.
    assert titles(shared_db, limit=3) == [title_of("cpi"), title_of("icc-visa"), title_of("reprisals")]


def test_each_hit_carries_a_snippet_with_the_words_marked(shared_db: sessionmaker[Session]) -> None:
    with shared_db() as session:
        [hit] = search_items(session, QueryFilters(text="represailles"))
    assert f"{MARK_START}représailles{MARK_END}" in hit.snippet.lower()
    assert hit.feed_name == "FIDH" and hit.flags == ("reprisal",)
    assert hit.matches == {"reprisal": ("représailles",)}
    assert hit.published is not None and hit.published.tzinfo is not None


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"flags": ("icc",)}, {"icc-visa", "cpi"}),
        ({"flags": ("icc", "reprisal")}, {"icc-visa", "cpi", "burundi", "reprisals"}),
        ({"feeds": ("un news",)}, {"council", "visas"}),
        ({"tags": ("ngo",), "flags": ("reprisal",)}, {"burundi", "reprisals"}),
        ({"tags": ("fr",)}, {"burundi", "cpi"}),
        ({"languages": ("en",), "flags": ("reprisal",)}, {"reprisals"}),
        ({"languages": ("fr",)}, {"burundi", "cpi"}),
        ({"since": NOW - timedelta(days=50)}, {"icc-visa", "burundi", "reprisals", "cpi"}),
        ({"until": NOW - timedelta(days=50)}, {"council", "visas", "annual"}),
        ({"since": NOW - timedelta(days=350), "until": NOW - timedelta(days=20)}, {"burundi", "council"}),
        ({"text": "visa", "flags": ("icc",)}, {"icc-visa"}),
        ({"limit": 2}, {"cpi", "icc-visa"}),
    ],
    ids=["flag", "two-flags", "feed-any-case", "tag-and-flag", "tag", "lang-prefix", "lang", "since", "until",
         "window", "text-and-flag", "limit"],
)
def test_each_filter_narrows_and_repeats_widen(
    shared_db: sessionmaker[Session], filters: dict[str, object], expected: set[str]
) -> None:
    assert keys(shared_db, **filters) == expected


def test_flag_names_are_filters_never_search_words(shared_db: sessionmaker[Session]) -> None:
    # "La CPI ouvre une enquête" is flagged icc but never says "icc".
    assert keys(shared_db, text="icc") == {"icc-visa"}
    assert keys(shared_db, text="enquete", flags=("icc",)) == {"cpi"}
    assert keys(shared_db, text="enquete", flags=("reprisal",)) == set()


def test_an_unknown_feed_name_is_an_error_not_an_empty_answer(shared_db: sessionmaker[Session]) -> None:
    with shared_db() as session, pytest.raises(QuerySyntaxError, match="no feed named 'nope'"):
        search_items(session, QueryFilters(feeds=("nope",)))


def test_the_index_follows_updates_and_deletes(own_archive: sessionmaker[Session]) -> None:
    changed = Release("ISHR", "icc-visa", "ICC staff face travel bans", "Travel bans now replace the old rules.", 3)
    with own_archive.begin() as session:
        feed = session.scalars(select(Feed).where(Feed.name == "ISHR")).one()
        stored_feed = feed_store.stored_feed(session, feed.id)
        result = item_store.upsert_items(session, stored_feed, [_parsed(changed)], {}, NOW)
    assert len(result.updated) == 1
    assert titles(own_archive, text="travel bans") == ["ICC staff face travel bans"]
    assert keys(own_archive, text="restrictions") == set()
    with own_archive.begin() as session:  # flagged later (a rule change and `pressbot reflag`)
        council_id = _item_id(session, "council")
        [council] = item_store.stored_items_after(session, council_id - 1, limit=1)
        icc = [FlagMatch("icc", "sanctions", "s")]
        item_store.record_flags(session, council, icc, [held_alert("#a", icc)], now=NOW)
    assert keys(own_archive, text="sanctions", flags=("icc",)) == {"council"}
    with own_archive.begin() as session:
        assert prune_items(session, NOW - timedelta(days=400), keep_flagged=False) == 2
    assert keys(own_archive, text="visa*") == {"council"}
    with own_archive() as session:
        if session.get_bind().dialect.name == "sqlite":
            session.execute(text("INSERT INTO items_fts(items_fts) VALUES ('integrity-check')"))


def _item_id(session: Session, key: str) -> int:
    return session.scalars(select(Item.id).where(Item.key == key)).one()


def test_prune_keeps_flagged_items_unless_told(own_archive: sessionmaker[Session]) -> None:
    cutoff = NOW - timedelta(days=20)
    with own_archive() as session:
        assert count_prunable(session, cutoff, keep_flagged=True) == 3
        assert count_prunable(session, cutoff, keep_flagged=False) == 4
    with own_archive.begin() as session:
        assert prune_items(session, cutoff, keep_flagged=True, batch=2) == 2
    with own_archive.begin() as session:
        assert prune_items(session, cutoff, keep_flagged=True, batch=2) == 1
    assert keys(own_archive, until=cutoff) == {"burundi"}
    with own_archive.begin() as session:
        assert prune_items(session, cutoff, keep_flagged=False) == 1
    assert keys(own_archive, until=cutoff) == set()
