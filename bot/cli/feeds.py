"""``pressbot feeds``: list the sources with their health, check them live, OPML import/export."""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from bot.cli import ConfigClickError, load_settings, open_db, terminal_text

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.records import FeedSource, FetchResult
    from bot.store.search import FeedListing


@click.group()
def feeds() -> None:
    """List, check, import and export feeds."""


# -- list --------------------------------------------------------------------------------


def _listings(settings: Settings) -> list[FeedListing]:
    """The database's view, plus configured feeds no pass has seen yet."""
    from bot.store.search import FeedListing, list_feeds

    with open_db(settings, migrate=False)() as session:
        known = list_feeds(session)
    names = {listing.name for listing in known}
    fresh = [
        FeedListing(name=source.name, url=source.url, enabled=True, disabled_reason=None,
                    last_success_at=None, last_error=None, consecutive_failures=0, next_check_at=None, items=0)
        for source in settings.feeds
        if source.name not in names
    ]
    return sorted([*known, *fresh], key=lambda listing: listing.name.casefold())


def _when(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if value else "-"


def listing_json(listing: FeedListing) -> dict[str, Any]:
    return {
        "name": listing.name,
        "url": listing.url,
        "enabled": listing.enabled,
        "disabled_reason": listing.disabled_reason,
        "last_success": listing.last_success_at.isoformat() if listing.last_success_at else None,
        "last_error": listing.last_error,
        "consecutive_failures": listing.consecutive_failures,
        "next_check": listing.next_check_at.isoformat() if listing.next_check_at else None,
        "items": listing.items,
        **mute_json(listing.muted_until, listing.muted_by),
    }


def mute_json(muted_until: datetime | None, muted_by: str | None, now: datetime | None = None) -> dict[str, Any]:
    """``muted_until`` and ``muted_by``, both null when the feed is not muted (or its mute has ended)."""
    active = muted_until is not None and muted_until > (now or datetime.now(UTC))
    return {"muted_until": muted_until.isoformat() if active and muted_until else None,
            "muted_by": muted_by if active else None}


def mute_text(muted_until: datetime | None, muted_by: str | None, now: datetime | None = None) -> str:
    """ "muted until 2026-12-11 12:00 UTC by U0ANA", or "" when not muted."""
    if muted_until is None or muted_until <= (now or datetime.now(UTC)):
        return ""
    return f"muted until {muted_until:%Y-%m-%d %H:%M} UTC by {muted_by or 'unknown'}"


@feeds.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_command(as_json: bool) -> None:
    """Every feed with its health: last success, last error, failures in a row, next check, items."""
    listings = _listings(load_settings())
    if as_json:
        click.echo(json.dumps([listing_json(listing) for listing in listings], ensure_ascii=False, indent=2))
        return
    rows = [_listing_row(listing) for listing in listings]
    if not sys.stdout.isatty():
        # Piped (grep, a file): one whole line per feed, tab-separated; a table at the
        # default 80 columns cut names to four characters and folded one feed over 14 lines.
        click.echo("\t".join(_LIST_COLUMNS))
        for row in rows:
            click.echo("\t".join(terminal_text(cell).plain for cell in row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(box=None, header_style="bold")
    for column in _LIST_COLUMNS[:-1]:
        table.add_column(column, no_wrap=True, min_width=12 if column == "name" else None)
    table.add_column(_LIST_COLUMNS[-1], no_wrap=True, overflow="ellipsis", ratio=1)
    for listing, row in zip(listings, rows, strict=True):
        table.add_row(*(terminal_text(cell) for cell in row), style="red" if listing.consecutive_failures else None)
    Console(markup=False).print(table)


_LIST_COLUMNS = ("name", "enabled", "items", "last success", "failures", "next check", "last error / url")


def _listing_row(listing: FeedListing) -> list[str]:
    enabled = "yes" if listing.enabled else f"no: {listing.disabled_reason}"
    muted = mute_text(listing.muted_until, listing.muted_by)
    enabled += f", {muted}" if muted else ""
    failures = str(listing.consecutive_failures) if listing.consecutive_failures else ""
    return [listing.name, enabled, str(listing.items), _when(listing.last_success_at), failures,
            _when(listing.next_check_at), listing.last_error or listing.url]


# -- check -------------------------------------------------------------------------------


def _select(settings: Settings, names: Sequence[str]) -> list[FeedSource]:
    if not names:
        return list(settings.feeds)
    by_name = {source.name.casefold(): source for source in settings.feeds}
    missing = [name for name in names if name.casefold() not in by_name]
    if missing:
        raise ConfigClickError(f"no configured feed named {missing[0]!r} in {settings.feeds_path}")
    return [by_name[name.casefold()] for name in names]


async def _fetch_now(settings: Settings, sources: Sequence[FeedSource]) -> list[FetchResult]:
    from bot.fetch import fetch_feeds
    from bot.http import client_for
    from bot.records import FeedToFetch

    # No stored validators: a check wants the feed's full answer, not a 304.
    wanted = [FeedToFetch(feed_id=index, name=source.name, url=source.url, listing=source.listing)
              for index, source in enumerate(sources)]
    async with client_for(settings.fetch_limits) as client:
        return await fetch_feeds(client, wanted, settings.fetch_limits)


def check_result(source: FeedSource, result: FetchResult) -> dict[str, Any]:
    """What ``feeds check`` reports for one feed: fetched and parsed now, nothing stored."""
    from bot.errors import ParseError
    from bot.listing.releases import parse_listing
    from bot.parse import parse_feed

    report: dict[str, Any] = {"name": source.name, "url": source.url, "status": result.status,
                              "final_url": result.final_url, "ok": False, "items": 0, "newest": None,
                              "error": result.error, "warning": None}
    if result.error or result.body is None:
        return report
    url = result.final_url or result.url
    try:
        if source.listing is not None:  # a listing page: its releases, as a pass would read them
            parsed = parse_listing(result.body, url=url, rule=source.listing, content_type=result.content_type)
        else:
            parsed = parse_feed(result.body, url=url, content_type=result.content_type, now=datetime.now(UTC))
    except ParseError as exc:
        report["error"] = str(exc)
        return report
    dates = [item.published for item in parsed.items if item.published]
    report.update(ok=True, items=len(parsed.items), warning=parsed.warning,
                  newest=max(dates).isoformat() if dates else None)
    return report


@feeds.command()
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of lines.")
def check(names: tuple[str, ...], as_json: bool) -> None:
    """Fetch each feed (or the NAMEd ones) now and report: status, items, errors. Stores nothing."""
    import asyncio

    settings = load_settings()
    sources = _select(settings, names)
    results = asyncio.run(_fetch_now(settings, sources))
    reports = [check_result(source, result) for source, result in zip(sources, results, strict=True)]
    if as_json:
        click.echo(json.dumps(reports, ensure_ascii=False, indent=2))
        return
    width = max((len(source.name) for source in sources), default=4)
    for report in reports:
        if report["ok"]:
            newest = f", newest {report['newest'][:10]}" if report["newest"] else ""
            line = f"ok      HTTP {report['status']}, {report['items']} items{newest}"
            if report["warning"]:
                line += f" (warning: {report['warning']})"
        else:
            line = f"FAILED  {report['error']}"
        click.echo(f"{report['name']:<{width}}  {line}")
    failed = sum(not report["ok"] for report in reports)
    click.echo(f"\n{len(reports)} feeds checked: {len(reports) - failed} ok, {failed} failed")


# -- import / export ---------------------------------------------------------------------


def _toml_string(text: str) -> str:
    # A JSON string is a valid TOML basic string: same quotes and escapes (\" \\ \n \uXXXX).
    return json.dumps(text, ensure_ascii=False)


def feeds_toml(sources: Sequence[FeedSource], origin: str, today: datetime) -> str:
    """``[[feeds]]`` entries to append to a feed list."""
    lines = [f"\n# Imported from {origin} on {today:%Y-%m-%d}."]
    for source in sources:
        lines += ["", "[[feeds]]", f"name = {_toml_string(source.name)}", f"url = {_toml_string(source.url)}"]
        if source.tags:
            lines.append("tags = [" + ", ".join(_toml_string(tag) for tag in source.tags) + "]")
    return "\n".join(lines) + "\n"


def _new_sources(existing: Sequence[FeedSource], imported: Sequence[FeedSource]) -> tuple[list[FeedSource], list[str]]:
    urls = {source.url for source in existing}
    names = {source.name.casefold() for source in existing}
    new, skipped = [], []
    for source in imported:
        if source.url in urls or source.name.casefold() in names:
            skipped.append(source.name)
            continue
        urls.add(source.url)
        names.add(source.name.casefold())
        new.append(source)
    return new, skipped


def _append_validated(path: Path, addition: str) -> None:
    """Append, but only if the result still loads: a broken feed list would stop every poll."""
    from bot.config import load_feeds
    from bot.errors import ConfigError

    original = path.read_text(encoding="utf-8")
    separator = "" if not original or original.endswith("\n") else "\n"
    handle, temporary = tempfile.mkstemp(prefix=".feeds-", suffix=".toml", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as fh:
            fh.write(original + separator + addition)
        try:
            load_feeds(Path(temporary))
        except ConfigError as exc:
            raise ConfigClickError(f"import would break {path}: {exc}") from exc
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


@feeds.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def import_command(file: Path) -> None:
    """Add the feeds of an OPML FILE to the configured feed list (feeds.toml).

    Feeds already there (same URL or name) are skipped; the file's existing text is kept as is.
    """
    from bot.errors import ConfigError
    from bot.opml import read_opml

    settings = load_settings()
    target = settings.feeds_path
    if target.suffix.lower() in (".opml", ".xml"):
        raise ConfigClickError(f"the feed list {target} is itself OPML: edit it with your feed reader")
    try:
        imported = read_opml(file)
    except ConfigError as exc:
        raise ConfigClickError(str(exc)) from exc
    new, skipped = _new_sources(settings.feeds, imported)
    if new:
        addition = feeds_toml(new, file.name, datetime.now(UTC))
        _append_validated(target, addition)
    click.echo(f"imported {len(new)} feeds into {target}; skipped {len(skipped)} already configured")
    for name in skipped:
        click.echo(f"  skipped: {name}")


@feeds.command("export")
def export_command() -> None:
    """Print the configured feeds (not the listing pages) as OPML 2.0, for a feed reader or `feeds import`."""
    from bot.opml import write_opml

    settings = load_settings()
    # A listing page (page = true) is no feed: a feed reader would show it as a broken one.
    feeds_only = [source for source in settings.feeds if source.listing is None]
    click.echo(write_opml(feeds_only, created=datetime.now(UTC)), nl=False)


# -- discover ----------------------------------------------------------------------------

from bot.cli.discover import discover  # noqa: E402  (its own module: feeds.py stays small)

feeds.add_command(discover)


# -- unmute ------------------------------------------------------------------------------


@feeds.command("unmute")
@click.argument("name")
def unmute_command(name: str) -> None:
    """End the mute of feed NAME (set from Slack): its new alerts are posted again, held ones are not."""
    from bot.verdicts import end_mute

    session_factory = open_db(load_settings(), migrate=False)
    try:
        with session_factory.begin() as session:
            line = end_mute(session, name, datetime.now(UTC))
    except ValueError as exc:
        raise ConfigClickError(str(exc)) from None
    click.echo(line)
