"""``pressbot query`` (search stored items) and ``pressbot prune`` (retention).

A query answers from the database alone, so it skips ``config.load()`` (pydantic, the
flag rules, the feed list) and reads only the database URL: the whole process then
costs little more than importing SQLAlchemy. It never migrates: a database without the
current schema is one line and exit 2 (``pressbot db upgrade`` is the fix).
"""

from __future__ import annotations

import csv
import gc
import io
import itertools
import json
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from bot.cli import ConfigClickError

if TYPE_CHECKING:
    from rich.text import Text
    from sqlalchemy import Engine
    from sqlalchemy.orm import Session

    from bot.query import QueryFilters, QueryHit

SORTS = ("relevance", "date")
FORMATS = ("table", "json", "csv", "ndjson")
SEARCH_HELP = """Search stored releases, best match first.

TEXT is full text over title, teaser, article and summary; case and accents do not
matter. `icc visa` needs both words, `"exact phrase"` the words in order,
`visa OR sanctions` either one (OR binds tighter than AND), `-word` or `NOT word`
leaves a word out, `visa*` matches words starting with visa, ( ) groups. Without
TEXT, the newest releases that pass the filters.

Repeating a filter widens it (--flag icc --flag reprisal: either flag); different
filters narrow. WHEN is a date (2024-05-31, 2024-05, 2024) or a span back from now
(7d, 2w, 1y); --until includes the day it names.
"""


def _when(ctx: click.Context, param: click.Parameter, value: str | None) -> datetime | None:
    if value is None:
        return None
    from bot.durations import parse_when

    try:
        return parse_when(value, datetime.now(UTC), end=param.name == "until")
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(
    help=SEARCH_HELP, context_settings={"ignore_unknown_options": True, "help_option_names": ["-h", "--help"]}
)
# UNPROCESSED so that `-word` (leave a word out) reaches the search instead of click.
@click.argument("text", nargs=-1, type=click.UNPROCESSED)
@click.option("--flag", "flags", multiple=True, metavar="NAME", help="Only releases carrying this flag.")
@click.option("--feed", "feeds", multiple=True, metavar="NAME", help="Only this feed (name, any case).")
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Only feeds with this tag.")
@click.option("--lang", "languages", multiple=True, metavar="CODE", help="Only this language (en also finds en-GB).")
@click.option("--since", callback=_when, metavar="WHEN", help="Published (else first seen) at or after WHEN.")
@click.option("--until", callback=_when, metavar="WHEN", help="Published (else first seen) before the end of WHEN.")
@click.option("--limit", type=click.IntRange(0), default=20, show_default=True,
              help="At most N results; 0: every one (json, ndjson, csv; streamed).")
@click.option("--sort", type=click.Choice(SORTS), default="relevance", show_default=True,
              help="relevance (with TEXT) or date, newest first.")
@click.option("--format", "output", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--no-group", "no_group", is_flag=True,
              help="List every copy of a release republished by several feeds (default: its first, with also_in).")
def query(
    text: tuple[str, ...],
    flags: tuple[str, ...],
    feeds: tuple[str, ...],
    tags: tuple[str, ...],
    languages: tuple[str, ...],
    since: datetime | None,
    until: datetime | None,
    limit: int,
    sort: str,
    output: str,
    no_group: bool,
) -> None:
    for word in text:
        if word.startswith("--"):
            raise click.UsageError(f"no such option: {word.split('=')[0]} (a search word cannot start with --)")
    with _without_cycle_collection():
        from bot.query import QueryFilters

        filters = QueryFilters(
            text=" ".join(text) or None, flags=flags, feeds=feeds, tags=tags, languages=languages,
            since=since, until=until, limit=limit, sort=sort, group=not no_group,
        )
        if limit == 0 and output == "table":
            raise click.UsageError("--limit 0 (every release) is for --format json, ndjson or csv")
        run_search(filters, RENDERERS[output])


@contextmanager
def _without_cycle_collection() -> Iterator[None]:
    """Pause Python's cycle collector for one search.

    A search makes few reference cycles, but importing SQLAlchemy makes tens of
    thousands of long-lived objects, and the full collections that growth triggers
    walk them all: about 20 ms, a fifth of a `pressbot query` process. Reference
    counting still frees everything else as usual.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run_search(filters: QueryFilters, render: Callable[[Iterable[QueryHit], QueryFilters], None]) -> None:
    from bot.cli import CommandError
    from bot.errors import ConfigError, QuerySyntaxError, SchemaError, StoreError
    from bot.locations import database_url_from_env_and_file
    from bot.store import check_database_url, check_schema, make_engine

    try:
        _check_digests()
        database_url = database_url_from_env_and_file()
        check_database_url(database_url)
        engine = make_engine(database_url)
        # A query never creates or migrates a database: a mistyped path must not answer
        # "no matching releases" and leave an empty file behind.
        check_schema(engine)
        _search(engine, filters, render)
    except (ConfigError, QuerySyntaxError, SchemaError) as exc:
        raise ConfigClickError(str(exc)) from exc
    except StoreError as exc:
        raise CommandError(str(exc).strip().splitlines()[0]) from exc


def _check_digests() -> None:
    """A bad ``[[digests]]`` table stops every command, this one too (issue 19), without ``config.load()``."""
    import os

    from bot.errors import ConfigError
    from bot.locations import config_path, read_toml

    path = config_path(os.environ)
    try:
        if b"digests" not in path.read_bytes():
            return  # the usual case: no TOML parsed again (15 ms for the shipped file), no digest module imported
    except OSError:
        if os.environ.get("DATABASE_URL"):
            return  # a query needs nothing else from the file
    data = read_toml(path)  # it says why it cannot be read
    if "digests" not in data:
        return
    from bot.digest import digest_specs

    flags = data.get("flags")
    try:
        digest_specs(data["digests"], flags if isinstance(flags, dict) else (), str(path))
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def _search(engine: Engine, filters: QueryFilters, render: Callable[[Iterable[QueryHit], QueryFilters], None]) -> None:
    from sqlalchemy.orm import Session

    from bot.store.search import iter_search_items

    with Session(engine) as session:  # open while the hits are written: they stream from it
        render(_summarized(session, iter_search_items(session, filters)), filters)


def _summarized(session: Session, hits: Iterable[QueryHit]) -> Iterator[QueryHit]:
    """Every result with its summary: those a pass left to make are made (and stored) now.

    Their modules are imported at the first such result: pysbd and the summary rules cost
    ~30 ms, a tenth of a query process whose results all have theirs.
    """
    iterator = iter(hits)
    for hit in iterator:
        if hit.summary_pending:
            from bot.summaries import with_summaries
            from bot.summarize import summary_of

            yield from with_summaries(session, itertools.chain([hit], iterator), summary_of)
            return
        yield hit


# -- output ------------------------------------------------------------------------------


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _marked(snippet: str | None, start: str = "**", end: str = "**") -> str | None:
    from bot.query import MARK_END, MARK_START

    return snippet.replace(MARK_START, start).replace(MARK_END, end) if snippet else snippet


def hit_json(hit: QueryHit, with_snippet: bool) -> dict[str, Any]:
    """One result as DESIGN.md lists it; ``snippet`` (matched words in **bold**) when TEXT was given."""
    data: dict[str, Any] = {
        "id": hit.item_id,
        "feed": hit.feed_name,
        "title": hit.title,
        "url": hit.url,
        "published": _iso(hit.published),
        "first_seen": _iso(hit.first_seen),
        "language": hit.language,
        "flags": list(hit.flags),
        "matches": {flag: list(phrases) for flag, phrases in hit.matches.items()},
        "summary": hit.summary,
        "also_in": [{"id": copy.item_id, "feed": copy.feed_name, "url": copy.url} for copy in hit.also_in],
    }
    if with_snippet:
        data["snippet"] = _marked(hit.snippet)
    return data


def _print_json(hits: Iterable[QueryHit], filters: QueryFilters) -> None:
    """One array, written element by element (the layout of ``json.dumps(rows, indent=2)``)."""
    opened = False
    for hit in hits:
        element = json.dumps(hit_json(hit, bool(filters.text)), ensure_ascii=False, indent=2)
        click.echo(("," if opened else "[") + "\n" + "\n".join("  " + line for line in element.splitlines()), nl=False)
        opened = True
    click.echo("\n]" if opened else "[]")


def _print_ndjson(hits: Iterable[QueryHit], filters: QueryFilters) -> None:
    for hit in hits:
        click.echo(json.dumps(hit_json(hit, bool(filters.text)), ensure_ascii=False))


def _print_csv(hits: Iterable[QueryHit], filters: QueryFilters) -> None:
    """Spreadsheet-friendly: lists joined with "; ", matches as "flag: phrase | phrase"."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    columns = ["id", "feed", "title", "url", "published", "first_seen", "language", "flags", "matches", "summary",
               "also_in"]
    writer.writerow([*columns, "snippet"] if filters.text else columns)
    for hit in hits:
        data = hit_json(hit, bool(filters.text))
        data["flags"] = "; ".join(hit.flags)
        data["matches"] = "; ".join(f"{flag}: {' | '.join(phrases)}" for flag, phrases in hit.matches.items())
        data["also_in"] = "; ".join(f"{copy.feed_name} {copy.url or ''}".strip() for copy in hit.also_in)
        writer.writerow(["" if value is None else value for value in data.values()])
        click.echo(buffer.getvalue(), nl=False)  # row by row: an export of the archive streams
        buffer.seek(0)
        buffer.truncate()
    click.echo(buffer.getvalue(), nl=False)


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _terminal_safe(text: str) -> str:
    """Feed text without control characters: an ESC sequence in a title must not drive the terminal."""
    return _CONTROL.sub("", text)


def _highlighted(snippet: str) -> Text:
    from rich.text import Text

    from bot.query import MARK_END, MARK_START

    # Built piece by piece, never from markup: feed text may contain "[bold]".
    detail = Text()
    for index, piece in enumerate(snippet.replace(MARK_END, MARK_START).split(MARK_START)):
        detail.append(_terminal_safe(piece), style="bold yellow" if index % 2 else "")
    return detail


def _print_table(found: Iterable[QueryHit], filters: QueryFilters) -> None:
    hits = list(found)  # a page (--limit N): a table is for reading, not exporting
    from rich.console import Console
    from rich.style import Style
    from rich.table import Table
    from rich.text import Text

    console = Console()
    if not hits:
        console.print("no matching releases", style="dim")
        return
    table = Table(show_lines=True)
    for name, options in (("date", {"no_wrap": True}), ("feed", {}), ("title", {"ratio": 2}),
                          ("flags", {}), ("snippet" if filters.text else "summary", {"ratio": 3})):
        table.add_column(name, **options)
    for hit in hits:
        title = Text(_terminal_safe(hit.title), style=Style(link=hit.url) if hit.url else "")
        detail = _highlighted(hit.snippet or "") if filters.text else Text(_terminal_safe(hit.summary or ""))
        date = hit.published or hit.first_seen
        feed = f"{hit.feed_name} (+{len(hit.also_in)})" if hit.also_in else hit.feed_name  # +N: copies elsewhere
        table.add_row(date.strftime("%Y-%m-%d"), _terminal_safe(feed), title, ", ".join(hit.flags), detail)
    console.print(table)


RENDERERS: dict[str, Callable[[Iterable[QueryHit], QueryFilters], None]] = {
    "table": _print_table,
    "json": _print_json,
    "csv": _print_csv,
    "ndjson": _print_ndjson,
}


# -- prune -------------------------------------------------------------------------------

_MIN_PRUNE_SPAN = 86_400  # "m" is minutes: `--older-than 18m` would delete nearly everything


@click.command()
@click.option("--older-than", "older_than", required=True, metavar="SPAN",
              help="Delete releases published (else first seen) longer ago than this: 90d, 52w, 2y.")
@click.option("--all", "include_flagged", is_flag=True, help="Delete flagged releases too (kept by default).")
@click.option("--dry-run", is_flag=True, help="Count what would be deleted; delete nothing.")
def prune(older_than: str, include_flagged: bool, dry_run: bool) -> None:
    """Delete old releases (retention). Flagged releases are kept unless --all.

    A release its feed still lists comes back on the next poll, stored as new but,
    dated before the prune, not alerted again (an undated one cannot be recognised).
    """
    from datetime import timedelta

    from bot.cli import load_settings, open_db
    from bot.durations import parse_duration
    from bot.store.retention import count_prunable, prune_items, record_prune

    try:
        seconds = parse_duration(older_than)
    except ValueError:
        # parse_duration's own hint names 30s and 15m, which prune refuses.
        hint = f"{older_than!r} is not a span (e.g. 90d, 52w, 2y)"
        raise click.BadParameter(hint, param_hint="--older-than") from None
    if seconds < _MIN_PRUNE_SPAN:
        raise click.BadParameter(f"{older_than!r} is less than a day (m is minutes)", param_hint="--older-than")
    try:
        cutoff = datetime.now(UTC) - timedelta(seconds=seconds)
    except OverflowError:
        raise click.BadParameter(f"{older_than!r} is out of range (before year 1)", param_hint="--older-than") from None
    session_factory = open_db(load_settings(), migrate=False)
    if dry_run:
        with session_factory() as session:
            count = count_prunable(session, cutoff, keep_flagged=not include_flagged)
        click.echo(f"would delete {count} releases older than {cutoff:%Y-%m-%d}")
        return
    with session_factory.begin() as session:
        record_prune(session, cutoff)
    deleted = 0
    while True:
        with session_factory.begin() as session:
            batch = prune_items(session, cutoff, keep_flagged=not include_flagged)
        deleted += batch
        if not batch:
            break
    kept = "" if include_flagged else " (flagged releases kept)"
    click.echo(f"deleted {deleted} releases older than {cutoff:%Y-%m-%d}{kept}")
