"""A small archive of releases for search tests, stored through pressbot's own storage code.

The schema comes from the migrations (so the full-text migration runs), items from
``upsert_items`` and flags from ``record_flags``: the index is filled by the same
triggers and generated columns that fill it in production.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.config import normalize_database_url
from bot.records import ArticleText, FeedSource, FlagMatch, ParsedItem
from bot.schema import Feed
from bot.store import feeds as feed_store
from bot.store import items as item_store
from bot.store import make_engine, make_session_factory
from bot.store.migrate import upgrade
from tests.helpers import held_alert

# Relative to the real clock, so that spans such as --since 7d mean what they say.
NOW = datetime.now(UTC).replace(microsecond=0)

FEEDS = (
    FeedSource(name="ISHR", url="https://ishr.example/feed/", tags=("ngo",)),
    FeedSource(name="UN News", url="https://news.un.example/feed/", tags=("un",)),
    FeedSource(name="FIDH", url="https://fidh.example/feed/", tags=("ngo", "fr")),
)


@dataclass(frozen=True)
class Release:
    feed: str
    key: str
    title: str
    content: str
    days_ago: int | None  # None: no published date (first seen NOW)
    language: str | None = None
    flags: tuple[tuple[str, str], ...] = ()  # (flag, phrase)
    full_text: str | None = None
    summary: str | None = None


RELEASES = (
    Release("ISHR", "icc-visa", "ICC staff face visa threats",
            "The International Criminal Court said new visa restrictions target its staff.", 3, "en",
            (("icc", "International Criminal Court"),)),
    Release("FIDH", "burundi", "Représailles contre les défenseurs au Burundi",
            "Les représailles se multiplient contre les défenseurs des droits humains.", 40, "fr",
            (("reprisal", "représailles"),)),
    Release("UN News", "council", "Security Council debates sanctions",
            "Members discussed sanctions, the visa regime and humanitarian exemptions.", 300, "en"),
    Release("ISHR", "reprisals", "Reprisals against activists who cooperate with the UN",
            "Intimidation and reprisals against human rights defenders continue.", 10, "en-GB",
            (("reprisal", "reprisals"), ("reprisal", "Intimidation"))),
    Release("UN News", "visas", "Visas for humanitarian workers",
            "Aid agencies ask for faster visas for their staff.", 500, "en"),
    Release("FIDH", "cpi", "La CPI ouvre une enquête",
            "La Cour pénale internationale ouvre une enquête sur les crimes commis.", None, "fr",
            (("icc", "Cour pénale internationale"),),
            full_text="Le Procureur invoque le Statut de Rome et l'article 15."),
    Release("ISHR", "annual", "Annual report on civic space",
            "Threats to civil society grew, including visa bans.", 800, "en",
            summary="Civic space shrank in forty countries."),
)


def title_of(key: str) -> str:
    return next(release.title for release in RELEASES if release.key == key)


def _parsed(release: Release) -> ParsedItem:
    published = NOW - timedelta(days=release.days_ago) if release.days_ago is not None else None
    return ParsedItem(key=release.key, url=f"https://{release.feed.lower().replace(' ', '')}.example/{release.key}",
                      title=release.title, teaser="", content=release.content, published=published,
                      updated=None, language=release.language)


def store_releases(session_factory: sessionmaker[Session], releases: tuple[Release, ...] = RELEASES) -> None:
    with session_factory.begin() as session:
        feed_store.sync_feeds(session, FEEDS)
    with session_factory.begin() as session:
        for feed in session.scalars(select(Feed)):
            mine = [release for release in releases if release.feed == feed.name]
            articles = {r.key: ArticleText(url="https://x.example/", text=r.full_text) for r in mine if r.full_text}
            stored_feed = feed_store.stored_feed(session, feed.id)
            result = item_store.upsert_items(session, stored_feed, [_parsed(r) for r in mine], articles, NOW)
            by_key = {release.key: release for release in mine}
            for stored in result.new:
                release = by_key[stored.key]
                if release.summary:
                    item_store.set_summary(session, stored.item_id, release.summary, release.language)
                matches = [FlagMatch(flag=flag, phrase=phrase, sentence=release.content)
                           for flag, phrase in release.flags]
                item_store.record_flags(session, stored, matches, [held_alert("#alerts", matches)], now=NOW)


def archive(database_url: str) -> sessionmaker[Session]:
    """A migrated database holding RELEASES."""
    engine = make_engine(normalize_database_url(database_url))
    upgrade(engine)
    session_factory = make_session_factory(engine)
    store_releases(session_factory)
    return session_factory


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh database on the test PostgreSQL server for a whole module (conftest's is per test)."""
    from tests.conftest import fresh_postgres_database

    with fresh_postgres_database("pressbot_search") as url:
        yield url
