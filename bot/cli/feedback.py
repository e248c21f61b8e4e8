"""``pressbot feedback``: the team's verdicts on alerts, as a list and as test data for ``flags test``.

    pressbot feedback list [--json]
    pressbot feedback export [--since WHEN] [-o FILE]   JSON Lines that `pressbot flags test` reads
    pressbot feedback missed URL FLAG                   a stored release FLAG did not catch
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import click

from bot.cli import ConfigClickError, load_settings, open_db, terminal_text

if TYPE_CHECKING:
    from bot.records import Verdict, VerdictExample

CLI_USER = "cli"  # who reported a miss from the command line (Slack verdicts carry a user id)


@click.group()
def feedback() -> None:
    """The team's verdicts on alerts: list, export (for `pressbot flags test`), missed."""


def _since(value: str | None) -> datetime | None:
    from bot.durations import parse_when

    if value is None:
        return None
    try:
        return parse_when(value, datetime.now(UTC))
    except ValueError as exc:
        raise ConfigClickError(f"--since: {exc}") from None


def _judgement(verdict: Verdict) -> str:
    if verdict.kind == "missed":
        return "missed"
    return "relevant" if verdict.relevant else "not relevant"


def verdict_json(verdict: Verdict) -> dict[str, Any]:
    return {
        "id": verdict.verdict_id,
        "kind": str(verdict.kind),
        "verdict": _judgement(verdict),
        "relevant": verdict.relevant,
        "flags": list(verdict.flags),
        "alert_id": verdict.alert_id,
        "item_id": verdict.item_id,
        "feed": verdict.feed_name,
        "title": verdict.title,
        "url": verdict.url,
        "user": verdict.user_id,
        "at": verdict.at.isoformat(),
    }


@feedback.command("list")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
@click.option("--since", "since_text", metavar="WHEN", help="Only verdicts since then (a date, or a span like 7d).")
def list_command(as_json: bool, since_text: str | None) -> None:
    """Every verdict, oldest first: who judged which release, for which flags."""
    from bot.store.verdicts import list_verdicts

    since = _since(since_text)
    with open_db(load_settings(), migrate=False)() as session:
        verdicts = list_verdicts(session, since=since)
    if as_json:
        click.echo(json.dumps([verdict_json(verdict) for verdict in verdicts], ensure_ascii=False, indent=2))
        return
    if not verdicts:
        click.echo("No verdicts yet: the alerts' Relevant / Not relevant buttons, or `pressbot feedback missed`.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("when", "verdict", "flags", "by", "feed", "title", box=None, header_style="bold")
    for verdict in verdicts:
        table.add_row(f"{verdict.at:%Y-%m-%d %H:%M}", _judgement(verdict), terminal_text(", ".join(verdict.flags)),
                      terminal_text(verdict.user_id), terminal_text(verdict.feed_name), terminal_text(verdict.title))
    Console(markup=False, highlight=False).print(table)


def example_json(example: VerdictExample) -> dict[str, Any]:
    """One labeled line as ``pressbot flags test`` reads it: the verdict's flags only, as labels.

    ``summary`` is the feed's teaser: the text the rules read beside title and content,
    so the rules of today flag the line as they flagged the release.
    """
    verdict = example.verdict
    line: dict[str, Any] = {"id": f"verdict-{verdict.verdict_id}", "feed": verdict.feed_name, "url": verdict.url}
    if example.language:
        line["lang"] = example.language
    line.update(title=verdict.title, summary=example.teaser, content=example.content)
    if example.full_text:
        line["full_text"] = example.full_text
    line["labels"] = {flag: verdict.relevant for flag in verdict.flags}
    line.update(verdict=_judgement(verdict), user=verdict.user_id, at=verdict.at.isoformat())
    return line


@feedback.command("export")
@click.option("--since", "since_text", metavar="WHEN", help="Only verdicts since then (a date, or a span like 7d).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE, not stdout.")
def export(since_text: str | None, output: Path | None) -> None:
    """The verdicts as JSON Lines for `pressbot flags test FILE`: a rule change measured against the team.

    A "not relevant" verdict on a release flagged icc is {"icc": false}, "relevant" and
    a reported miss are true; only the flags the verdict is about are labeled.
    """
    from bot.store.verdicts import verdict_examples

    since = _since(since_text)
    with open_db(load_settings(), migrate=False)() as session:
        examples = verdict_examples(session, since=since)
    if output is None:
        for example in examples:
            click.echo(json.dumps(example_json(example), ensure_ascii=False))
        return
    try:
        with output.open("w", encoding="utf-8") as file:
            _write_lines(file, examples)
    except OSError as exc:
        raise ConfigClickError(f"{output}: cannot write: {exc.strerror or exc}") from None
    click.echo(f"{len(examples)} verdict{'s' if len(examples) != 1 else ''} written to {output}", err=True)


def _write_lines(file: IO[str], examples: list[VerdictExample]) -> None:
    for example in examples:
        file.write(json.dumps(example_json(example), ensure_ascii=False) + "\n")


@feedback.command("missed")
@click.argument("url")
@click.argument("flag")
def missed(url: str, flag: str) -> None:
    """Report that FLAG missed the stored release at URL: a "relevant" verdict for that flag.

    The URL is matched as stored, or without tracking parameters and trailing slash.
    """
    from bot.verdicts import report_missed

    settings = load_settings()
    session_factory = open_db(settings, migrate=False)
    try:
        with session_factory.begin() as session:
            line = report_missed(
                session, url, flag, flags=settings.flag_rules.names, user_id=CLI_USER, now=datetime.now(UTC)
            )
    except ValueError as exc:
        raise ConfigClickError(str(exc)) from None
    click.echo(line)
