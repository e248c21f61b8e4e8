"""``pressbot alerts`` (the Slack outbox) and ``pressbot slack test``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import click

from bot.cli import ConfigClickError, load_settings, open_db, terminal_text
from bot.records import AlertStatus, ChangeKind

if TYPE_CHECKING:
    from bot.records import OutboxEntry

STATUSES = tuple(str(status) for status in AlertStatus)


class SlackRefused(click.ClickException):
    """Slack's own error, shown as is on one line; exit status 1."""

    exit_code = 1

    def show(self, file: Any = None) -> None:
        click.echo(self.format_message(), err=True)


@click.group()
def alerts() -> None:
    """The Slack outbox: what is pending or failed, and a retry once the cause is fixed."""


@alerts.command("list")
@click.option(
    "--status",
    "statuses",
    type=click.Choice(STATUSES),
    multiple=True,
    help="Only alerts with this status (repeatable). Default: pending and failed.",
)
@click.option("--all", "show_all", is_flag=True, help="Every alert, sent and held ones too.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
def list_command(statuses: tuple[str, ...], show_all: bool, as_json: bool) -> None:
    """List alerts, newest first."""
    from bot.store import outbox

    wanted = None if show_all else [AlertStatus(status) for status in statuses or ("pending", "failed")]
    session_factory = open_db(load_settings(), migrate=False)
    with session_factory() as session:
        entries = outbox.list_alerts(session, wanted)
    if as_json:
        click.echo(json.dumps([_entry_json(entry) for entry in entries], ensure_ascii=False, indent=2))
        return
    _print_table(entries)


def _entry_json(entry: OutboxEntry) -> dict[str, Any]:
    def iso(value: Any) -> str | None:
        return value.isoformat() if value is not None else None

    return {
        "id": entry.alert_id,
        "item_id": entry.item_id,
        "feed": entry.feed_name,
        "title": entry.title,
        "url": entry.url,
        "channel": entry.channel,
        "status": entry.status,
        "attempts": entry.attempts,
        "created_at": iso(entry.created_at),
        "next_attempt_at": iso(entry.next_attempt_at),
        "last_error": entry.last_error,
        "slack_ts": entry.slack_ts,
        "sent_at": iso(entry.sent_at),
        "edits": entry.edits,
        "replies": entry.replies,
        "changes_pending": entry.changes_pending,
        "changes_failed": entry.changes_failed,
    }


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _changes(entry: OutboxEntry) -> str:
    """Its edits and thread replies sent, and those waiting or failed (issue 18); "" when none."""
    sent = [_plural(entry.edits, "edit", "edits")] if entry.edits else []
    sent += [_plural(entry.replies, "reply", "replies")] if entry.replies else []
    waiting = [f"{entry.changes_pending} pending"] if entry.changes_pending else []
    waiting += [f"{entry.changes_failed} failed"] if entry.changes_failed else []
    return ", ".join(sent) + (f" ({', '.join(waiting)})" if waiting else "")


def _print_table(entries: list[OutboxEntry]) -> None:
    from rich.console import Console
    from rich.table import Table

    if not entries:
        click.echo("no alerts")
        return
    table = Table(box=None, header_style="bold")
    for column in ("id", "status", "channel", "feed", "title", "attempts", "error / sent", "edits / replies"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        sent = entry.status == AlertStatus.SENT
        detail = f"{entry.sent_at:%Y-%m-%d %H:%M} ts {entry.slack_ts}" if sent else entry.last_error
        table.add_row(
            str(entry.alert_id),
            entry.status,
            terminal_text(entry.channel),
            terminal_text(entry.feed_name),
            terminal_text(entry.title[:80]),
            str(entry.attempts),
            terminal_text(detail),
            _changes(entry),
        )
    Console(highlight=False, soft_wrap=False, markup=False).print(table)


@alerts.command("retry")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "retry_all", is_flag=True, help="Every failed alert.")
def retry(ids: tuple[int, ...], retry_all: bool) -> None:
    """Set failed alerts, and the failed edits and thread replies of posted ones, back
    to pending (by alert ID, or --all) once the cause is fixed.

    They are sent on the next poll. An alert whose earlier post could not be checked
    is posted again: look at the channel first. An edit or reply that may have reached
    Slack is looked for in the message or its thread before it is sent again.
    """
    from bot.store import changes, outbox

    if not ids and not retry_all:
        raise click.UsageError("give alert IDs or --all")
    if ids and retry_all:
        raise click.UsageError("give alert IDs or --all, not both")
    session_factory = open_db(load_settings(), migrate=False)
    with session_factory.begin() as session:
        count = outbox.retry_failed(session, None if retry_all else list(ids))
        retried = changes.retry_failed(session, None if retry_all else list(ids))
    click.echo(f"{count} alert{'s' if count != 1 else ''} set to pending")
    edits, replies = retried[ChangeKind.EDIT], retried[ChangeKind.REPLY]
    if edits or replies:
        click.echo(
            f"{edits} edit{'s' if edits != 1 else ''}, {replies} repl{'ies' if replies != 1 else 'y'}"
            " of posted alerts set to pending"
        )


@click.group()
def slack() -> None:
    """Slack checks."""


@slack.command("test")
@click.option("--channel", help="Post here instead of the default channel.")
def test_command(channel: str | None) -> None:
    """Post one test message to the default channel; print Slack's exact error if any."""
    from bot import deliver
    from bot.errors import DeliveryError

    settings = load_settings()
    if not settings.slack_token:
        raise ConfigClickError("SLACK_BOT_TOKEN is not set: nothing can be posted (alerts are printed instead)")
    target = channel or settings.slack.channel
    client = deliver.make_client(settings.slack_token, settings.slack_api_url)
    try:
        ts = deliver.post_test_message(client, target)
    except DeliveryError as exc:
        raise SlackRefused(f"Slack error posting to {target}: {exc}") from exc
    click.echo(f"ok: posted to {target} (ts {ts})")
