"""Releases of listing pages (page sources, issue 17): aliases, pages owed, storing.

A listed release is identified by its page's canonical URL once the page is read, and
by its listed URL until then; every URL it was listed under is an alias, so that a
listing's links are recognised without fetching a page again. Releases beyond a
pass's page cap, or whose page failed, are stored at once with the listing's title and
date, and are *owed* their page: later passes fetch it, up to ``max_attempts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.records import ArticleText, ParsedItem
from bot.schema import Item, ItemAlias
from bot.store.items import UpsertResult, item_hash, keep_in_session, to_stored


@dataclass(frozen=True, slots=True)
class OwedPage:
    """A stored release whose page is still to be read. Made here; read by poll."""

    key: str
    url: str
    title: str
    published: datetime | None


def known_urls(session: Session, feed_id: int, urls: Iterable[str]) -> set[str]:
    """Which of ``urls`` are aliases of this feed's stored releases."""
    urls = list(urls)
    known: set[str] = set()
    for start in range(0, len(urls), 500):  # stay under SQLite's bound-parameter limit
        chunk = urls[start : start + 500]
        query = select(ItemAlias.url).where(ItemAlias.feed_id == feed_id, ItemAlias.url.in_(chunk))
        known.update(session.scalars(query))
    return known


def owed_pages(session: Session, feed_id: int, max_attempts: int) -> list[OwedPage]:
    """Stored releases without their page's text that may be tried (again), newest first."""
    rows = session.execute(
        select(Item.key, Item.url, Item.title, Item.published_at)
        .where(Item.feed_id == feed_id, Item.full_text.is_(None), Item.full_text_attempts < max_attempts)
        .order_by(Item.published_at.desc().nulls_last(), Item.id)
    )
    return [OwedPage(key, url, title, published) for key, url, title, published in rows if url]


def _canonical(article: ArticleText | None, listing_url: str) -> str | None:
    """The page's canonical URL, if it can name a release of this listing: deeper than the
    listing (a CMS that names its front page on every page names no release)."""
    canonical = article.canonical_url if article and article.text else None
    if not canonical:
        return None
    depth = len([part for part in urlsplit(canonical).path.split("/") if part])
    return canonical if depth > len([part for part in urlsplit(listing_url).path.split("/") if part]) else None


def _identity(item: ParsedItem, article: ArticleText | None, taken: set[str], listing_url: str) -> str:
    """The canonical URL the page gave, unless another release of the feed has it already."""
    canonical = _canonical(article, listing_url)
    return canonical if canonical and canonical not in taken else item.key


def _new_row(feed_id: int, item: ParsedItem, key: str, article: ArticleText | None, now: datetime) -> Item:
    page = article if article and article.text else None
    stored = ParsedItem(
        key=key,
        url=key if page else item.url,
        title=item.title or (page.title if page and page.title else ""),
        teaser="",
        content="",
        published=item.published or (page.published if page else None),
        updated=None,
        language=page.language if page else None,
    )
    row = Item(feed_id=feed_id, key=key, guid=None, url=stored.url, title=stored.title, teaser="", content="",
               content_hash=item_hash(stored), published_at=stored.published, updated_at=None, first_seen_at=now,
               changed_at=now, language=stored.language, flags=[], full_text_attempts=0)
    _apply_page(row, article)
    return row


def _apply_page(row: Item, article: ArticleText | None) -> bool:
    if article is None:
        return False
    row.full_text_attempts = (row.full_text_attempts or 0) + 1
    if not article.text:
        row.full_text_error = article.error or "no main text found"
        return False
    row.full_text, row.full_text_error = article.text, None
    return True


def _complete(row: Item, article: ArticleText, taken: set[str], listing_url: str, now: datetime) -> None:
    """What the page adds to a release stored from the listing alone."""
    row.title = row.title or article.title or ""
    row.published_at = row.published_at or article.published
    row.language = row.language or article.language
    canonical = _canonical(article, listing_url)
    if canonical and canonical not in taken:
        row.key = row.url = canonical
    row.changed_at = now


def store_listed(
    session: Session,
    feed_id: int,
    feed_name: str,
    listing_url: str,
    listed: Sequence[ParsedItem],
    articles: Mapping[str, ArticleText],
    now: datetime,
) -> UpsertResult:
    """Store the listed releases not known yet, and the pages read for owed ones.

    ``articles`` holds the pages read this pass, by the key they were asked under: a
    new release's listed URL, or an owed release's stored key.
    """
    result = UpsertResult()
    inserted: list[Item] = []
    known = known_urls(session, feed_id, [item.key for item in listed])
    taken = set(session.scalars(select(Item.key).where(Item.feed_id == feed_id)))
    aliases: list[tuple[Item, str]] = []
    by_key: dict[str, Item] = {}
    new_listed: set[str] = set()
    for item in listed:
        if item.key in known:
            continue
        known.add(item.key)
        new_listed.add(item.key)
        article = articles.get(item.key)
        # Listed twice under two URLs: the same canonical URL (and title), or this very URL.
        same = by_key.get(item.key)
        by_canonical = by_key.get(_canonical(article, listing_url) or "")
        if same is None and by_canonical is not None and by_canonical.title == (item.title or by_canonical.title):
            same = by_canonical
        if same is not None:
            aliases.append((same, item.key))
            continue
        key = _identity(item, article, taken, listing_url)
        row = _new_row(feed_id, item, key, article, now)
        taken.add(key)
        by_key[key] = row
        inserted.append(row)
        aliases += [(row, item.key)] + ([(row, key)] if key != item.key else [])
    session.add_all(inserted)
    session.flush()
    result.new = [to_stored(row, feed_name) for row in inserted]
    owed = {key: article for key, article in articles.items() if key not in new_listed}
    read = _read_owed(session, feed_id, owed, taken, listing_url, now, aliases)
    result.updated = [to_stored(row, feed_name) for row in read]
    keep_in_session(session, [*inserted, *read])
    unique = {url: row for row, url in reversed(aliases)}  # the first release named by a URL keeps it
    stored = known_urls(session, feed_id, unique)  # an owed page's canonical URL may be listed already
    fresh = [(url, row) for url, row in unique.items() if url not in stored]
    session.add_all(ItemAlias(feed_id=feed_id, item_id=row.id, url=url) for url, row in fresh)
    session.flush()
    return result


def _read_owed(
    session: Session,
    feed_id: int,
    owed: Mapping[str, ArticleText],
    taken: set[str],
    listing_url: str,
    now: datetime,
    aliases: list[tuple[Item, str]],
) -> list[Item]:
    """Owed releases whose page was read this pass; a failure only counts an attempt."""
    if not owed:
        return []
    read = []
    for row in session.scalars(select(Item).where(Item.feed_id == feed_id, Item.key.in_(list(owed)))):
        if not _apply_page(row, owed[row.key]):
            continue
        before = row.key
        _complete(row, owed[before], taken - {before}, listing_url, now)
        if row.key != before:
            taken.add(row.key)
            aliases.append((row, row.key))
        read.append(row)
    return read
