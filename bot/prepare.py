"""A pass's CPU work: parsing the fetched bodies, and each item's language.

Parsing is the pass's CPU cost; the main process has one core. With enough bodies it
runs in worker processes, and every item gets its ``Lede`` (its language) there, stored
or not (the workers' cores would idle otherwise). The pass uses a lede when the item's
text is still what it was made from (``language_for``), and works it out itself
otherwise. Summaries are not made here: the pass makes those of the releases it flags
(bot.poll), readers the rest (bot.summaries).
"""

from __future__ import annotations

import gc
import hashlib
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import partial
from typing import Protocol

from bot import group, parse, summarize
from bot.errors import ParseError
from bot.language import detect_language
from bot.records import FailureKind, FetchResult, ListingRule, ParsedFeed, ParsedItem, StoredItem

# Below this many bodies, starting worker processes costs more than it saves.
PARALLEL_PARSE_MIN = 8
_HASHED_PER_UPDATE = 1 << 18


class ParseListing(Protocol):
    """``bot.listing.releases.parse_listing``: given by the pass when a listing is to be read."""

    def __call__(self, body: bytes, *, url: str, rule: ListingRule, content_type: str | None = None) -> ParsedFeed:
        ...


@dataclass(frozen=True, slots=True)
class Lede:
    """An item's language, and the text it was worked out from."""

    basis: str  # digest of the title, text and declared language
    language: str | None


@dataclass(frozen=True, slots=True)
class FeedWork:
    """A fetched feed, parsed (or the reason it could not be), waiting to be stored."""

    result: FetchResult  # its body dropped once parsed
    parsed: ParsedFeed | None
    error: str | None = None
    error_kind: FailureKind | None = None  # set with ``error``
    ledes: Mapping[str, Lede] = field(default_factory=dict)  # by item key, when parsed in a worker
    # by item key, when parsed in a worker: the feed's main text's digest and band keys (bot.group)
    band_keys: Mapping[str, tuple[bytes, tuple[int, ...]]] = field(default_factory=dict)


def _basis(title: str, text: str, declared: str | None) -> str:
    digest = hashlib.blake2b(f"{title}\x00".encode(), digest_size=16)
    # By slices, the same digest as of the whole: a copy of a 10 MB release and its
    # encoding were 20 MB more at the pass's peak (issue 14).
    for start in range(0, len(text), _HASHED_PER_UPDATE):
        digest.update(text[start : start + _HASHED_PER_UPDATE].encode())
    digest.update(f"\x00{declared or ''}".encode())
    return digest.hexdigest()


def make_lede(title: str, text: str, declared: str | None) -> Lede:
    return Lede(_basis(title, text, declared), detect_language(f"{title}\n{text}", declared))


def release_text(item: StoredItem) -> str:
    """What the language and summary are made from (``summarize.release_text``)."""
    return summarize.release_text(item.teaser, item.content, item.full_text)


def language_for(item: StoredItem, ledes: Mapping[str, Lede]) -> str | None:
    """The item's language: the one worked out beside the parse if its text is unchanged, else a new one."""
    text = release_text(item)
    lede = ledes.get(item.key)
    if lede is None or lede.basis != _basis(item.title, text, item.language):
        lede = make_lede(item.title, text, item.language)
    return lede.language


def summary_for(item: StoredItem, language: str | None) -> str:
    """The summary of a stored item's text ("" when it has no lede)."""
    return summarize.summary_of(item.title, item.teaser, item.content, item.full_text, language)


def parse_result(
    result: FetchResult,
    max_entries: int = parse.MAX_ENTRIES,
    now: datetime | None = None,
    parse_listing: ParseListing | None = None,
) -> FeedWork:
    """One fetch result parsed; a failure to fetch or to parse is the work's ``error``.

    ``parse_listing`` reads a page source's listing; the pass gives it when one is among
    the results (``needs_listing_parser``).
    """
    if result.error or result.body is None:
        return FeedWork(result, None, result.error, result.error_kind)
    url = result.final_url or result.url
    try:
        if result.listing is not None:  # a newsroom listing page: its releases are the items
            assert parse_listing is not None, "a listing to read and no listing parser: see needs_listing_parser"
            parsed = parse_listing(result.body, url=url, rule=result.listing, content_type=result.content_type)
        else:
            parsed = parse.parse_feed(
                result.body, url=url, content_type=result.content_type, max_entries=max_entries, now=now
            )
    except ParseError as exc:
        return FeedWork(result, None, str(exc), FailureKind.PARSE)
    # Parsed: the body is not worth its memory, or its way back from a worker.
    return FeedWork(replace(result, body=None), parsed)


def parse_with_ledes(
    result: FetchResult,
    max_entries: int = parse.MAX_ENTRIES,
    now: datetime | None = None,
    parse_listing: ParseListing | None = None,
) -> FeedWork:
    """``parse_result``, and every item's language and band keys (in a worker process)."""
    work = parse_result(result, max_entries, now, parse_listing)
    if work.parsed is None:
        return work
    items = work.parsed.items
    ledes = {item.key: make_lede(item.title, item.content or item.teaser, item.language) for item in items}
    return replace(work, ledes=ledes, band_keys={item.key: _band_keys(item) for item in items})


def _band_keys(item: ParsedItem) -> tuple[bytes, tuple[int, ...]]:
    text = group.main_text(item.teaser, item.content, None)
    return group.text_digest(text), tuple(group.band_keys(group.shingles(text)))


def needs_listing_parser(results: Sequence[FetchResult]) -> bool:
    """Whether a page source's listing came back changed: only then is the listing stage loaded."""
    return any(result.listing is not None and result.body is not None for result in results)


def parse_all(
    results: Sequence[FetchResult],
    workers: int,
    max_entries: int = parse.MAX_ENTRIES,
    now: datetime | None = None,
    parse_listing: ParseListing | None = None,
) -> list[FeedWork]:
    """Parse every body; in worker processes when there are enough. ``workers`` 0: one per core.

    ``now`` is the pass's: an entry dated more than a day after it counts as undated;
    ``parse_listing`` as for ``parse_result``.
    """
    bodies = sum(1 for result in results if result.body is not None)
    if workers <= 0:
        workers = max(1, (os.cpu_count() or 1))
    if bodies < PARALLEL_PARSE_MIN or workers == 1:
        return [parse_result(result, max_entries, now, parse_listing) for result in results]
    # The workers fork from this process: a collection in one of them would walk, and so
    # copy, every object inherited from it. Frozen, they are left to the parent's pages.
    gc.freeze()
    try:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parse_one = partial(parse_with_ledes, max_entries=max_entries, now=now, parse_listing=parse_listing)
            return list(pool.map(parse_one, results, chunksize=4))
    finally:
        gc.unfreeze()
