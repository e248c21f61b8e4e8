"""``pressbot poll``: one pass over every enabled feed."""

from __future__ import annotations

import json
import signal
import string
import sys
from collections.abc import Mapping
from contextlib import ExitStack
from typing import TYPE_CHECKING, Any

import click

from bot.cli import load_settings, open_db
from bot.records import ReportStatus

if TYPE_CHECKING:
    from bot.records import FetchResult, PassSummary


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Fetch, store and flag, but post nothing and leave alerts as they are."
)
@click.option("--json", "as_json", is_flag=True, help="Print the pass summary as one JSON object.")
def poll(dry_run: bool, as_json: bool) -> None:
    """One pass: fetch every enabled feed, store new releases, flag them, deliver alerts."""
    from bot.cli.stages import load_page_stages
    from bot.poll import summary_json
    from bot.scheduler import poll_once

    settings = load_settings()
    session_factory = open_db(settings, migrate=True)
    if not settings.feeds:
        click.echo(f"pressbot: warning: no feeds configured in {settings.feeds_path}", err=True)
    # SIGTERM as Ctrl-C: the pass then gives its claims back before the process ends.
    signal.signal(signal.SIGTERM, _interrupt)
    with ExitStack() as stack:
        progress = None
        if sys.stderr.isatty() and not as_json:
            progress = stack.enter_context(_progress(len(settings.feeds)))
        # Alerts printed without a token go to stdout; with --json they would break
        # the JSON document, so they go to stderr then.
        echo = (lambda text: click.echo(text, err=True)) if as_json else click.echo
        summary = poll_once(
            settings,
            session_factory,
            page_stages=load_page_stages,
            dry_run=dry_run,
            on_fetched=progress.fetched if progress else None,
            on_pages=progress.pages if progress else None,
            echo=echo,
        )
    if as_json:
        click.echo(json.dumps(summary_json(summary), ensure_ascii=False))
    if summary.interrupted:
        click.echo(f"pressbot: interrupted: {interrupted_line(summary)}", err=True)
        sys.exit(130)  # as a shell reports a Ctrl-C
    if not as_json:
        click.echo(format_summary(summary))


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _interrupt(signum: int, _frame: object) -> None:
    # As Ctrl-C: inside the pass's event loop, asyncio's own SIGINT handler cancels the
    # fetches and the pass stores what it had; elsewhere it is KeyboardInterrupt.
    signal.raise_signal(signal.SIGINT)


def interrupted_line(summary: PassSummary) -> str:
    """What an interrupted pass kept, in one line."""
    stored = summary.fetched + summary.not_modified + summary.failed
    return (f"{_count(stored, 'feed')} of {summary.feeds} stored ({summary.new_items} new items), "
            "the rest left for the next poll; no alert posted")


class _progress:
    """A progress bar on stderr while feeds, then release pages, are fetched (only on a terminal)."""

    def __init__(self, total: int) -> None:
        from rich.console import Console
        from rich.progress import Progress

        self._progress = Progress(console=Console(stderr=True), transient=True)
        self._task = self._progress.add_task("fetching feeds", total=total)

    def __enter__(self) -> _progress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def fetched(self, result: FetchResult) -> None:
        self._progress.advance(self._task)

    def pages(self, done: int, total: int) -> None:
        """The release-page phase: the bar starts over for its pages."""
        self._progress.update(self._task, description="fetching release pages", completed=done, total=total)


# The summary's count lines, in parts; a part marked True shows only when one of its
# counts is not 0. Each placeholder is a PassCounts field; "{n:reply/replies}" is "1
# reply", "2 replies". A counter no part names is still printed (``count_lines``).
SUMMARY_LINES: tuple[tuple[tuple[str, bool], ...], ...] = (
    (("{feeds:feed/feeds}: {fetched} fetched, {not_modified} not modified, {failed} failed; "
      "{new_items} new items, {updated_items} updated, {flagged} flagged", False),),
    (("alerts: {alerts_sent} sent, {alerts_pending} pending, {alerts_failed} failed", False),
     # Held: an old release on a feed's first pass, or one dated before a prune.
     (", {alerts_held_back} older flagged releases held back (not news: see alerts list --status held)", True)),
    (("changes to posted alerts: {edits_sent:edit/edits}, {replies_sent:reply/replies} sent; "
      "{changes_pending} pending, {changes_failed} failed", True),),
)


class _CountFormatter(string.Formatter):
    def format_field(self, value: Any, format_spec: str) -> str:
        if "/" in format_spec:
            one, many = format_spec.split("/", 1)
            return f"{value} {one if value == 1 else many}"
        return str(super().format_field(value, format_spec))


def _names(template: str) -> list[str]:
    return [name for _text, name, _spec, _conversion in string.Formatter().parse(template) if name]


def count_lines(counts: Mapping[str, int]) -> list[str]:
    """The pass's counters in words (``PassCounts.counts()``): SUMMARY_LINES, then any counter they do not name."""
    formatter, lines = _CountFormatter(), []
    for parts in SUMMARY_LINES:
        shown = [template for template, optional in parts
                 if not optional or any(counts[name] for name in _names(template))]
        if shown:
            lines.append("".join(formatter.vformat(template, (), counts) for template in shown))
    named = {name for parts in SUMMARY_LINES for template, _optional in parts for name in _names(template)}
    others = [f"{name.replace('_', ' ')} {count}" for name, count in counts.items() if name not in named]
    if others:
        lines.append("also: " + ", ".join(others))
    return lines


def format_summary(summary: PassSummary) -> str:
    lines = []
    width = max((len(report.name) for report in summary.reports), default=4)
    for report in summary.reports:
        if report.status == ReportStatus.FAILED:
            detail = f"FAILED  {report.error}"
        elif report.status == ReportStatus.NOT_MODIFIED:
            detail = "not modified"
        else:
            detail = (
                f"ok      {report.new_items} new, {report.updated_items} updated, {report.flagged} flagged"
            )
            if report.note:
                detail += f" ({report.note})"
        lines.append(f"{report.name:<{width}}  {detail}")
    lines.append("")
    lines.extend(count_lines(summary.counts()))
    return "\n".join(lines)
