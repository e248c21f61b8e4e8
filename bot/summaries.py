"""Summaries on first read: the results a reader shows get the summary the pass left to make.

A pass summarises only the releases Slack shows (issue 16: summaries were most of a
cold pass's CPU). ``pressbot query`` (every format) and the ``/pressbot`` search show a
summary for every result, so the results without one get it here, once: it is stored,
in a write transaction of its own beside the search's read (a search never takes
SQLite's write lock while it reads), and not waited for: beside a worker mid-pass the
reader answers at once and a later one stores it. A database that refuses the write
still gets its answer, with the summaries made for this reader only.

The summariser is the caller's (``bot.summarize.summary_of``). ``pressbot query`` imports
this module and that one at its first waiting result: a query process whose results all
have their summary never loads pysbd and the summary rules (~30 ms, a tenth of it).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from bot.errors import UnwritableError
from bot.query import QueryHit
from bot.store import summaries as summary_store

# title, teaser, content, full text, language → summary ("" when none): bot.summarize.summary_of
Summarizer = Callable[[str, str, str, str | None, str | None], str]

log = logging.getLogger(__name__)

BATCH = 100  # results summarised and stored together; a stream's results are yielded in these steps


def with_summaries(
    session: Session, hits: Iterable[QueryHit], summarize: Summarizer, batch: int = BATCH
) -> Iterator[QueryHit]:
    """``hits`` (read in ``session``), each with its summary: made and stored for those that had none."""
    writable = True
    iterator = iter(hits)
    while chunk := list(itertools.islice(iterator, batch)):
        wanting = [hit.item_id for hit in chunk if hit.summary_pending]
        waiting, made = summary_store.unsummarized(session, wanting) if wanting else ([], {})
        made_now = [(release, summarize(release.title, release.teaser, release.content, release.full_text,
                                        release.language)) for release in waiting]  # fmt: skip
        if made_now and writable:
            writable = _store(session, made_now)
        made.update((release.item_id, summary or None) for release, summary in made_now)
        for hit in chunk:
            yield replace(hit, summary=made.get(hit.item_id), summary_pending=False) if hit.summary_pending else hit


def _store(session: Session, made: list[tuple[summary_store.Unsummarized, str]]) -> bool:
    """Store them; False when the database cannot be written (the reader still shows them)."""
    engine = session.get_bind()
    assert isinstance(engine, Engine)
    try:
        summary_store.store_without_waiting(engine, made)
    except UnwritableError as exc:
        log.debug("summaries not stored: %s", exc)
        return False
    except DBAPIError as exc:  # a worker writing (a reader does not wait), or refused: the next reader makes them
        log.debug("summaries not stored: %s", exc)
    return True
