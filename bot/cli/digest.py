"""``pressbot digest [NAME] --preview|--send``: the digest of the period in progress (issue 19)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click

from bot.cli import ConfigClickError, load_settings, open_db

if TYPE_CHECKING:
    from bot.config import Settings
    from bot.records import DigestSpec


def choose_digest(settings: Settings, name: str | None) -> DigestSpec:
    """The digest NAME names, or the only one; ConfigClickError (one line, exit 2) otherwise."""
    specs = settings.digests
    names = ", ".join(spec.name for spec in specs)
    if not specs:
        raise ConfigClickError(f"{settings.config_path}: no [[digests]] configured")
    if name is None:
        if len(specs) > 1:
            raise ConfigClickError(f"several digests are configured: name one of {names}")
        return specs[0]
    for spec in specs:
        if spec.name == name:
            return spec
    raise ConfigClickError(f"no digest named {name!r} (configured: {names})")


@click.command()
@click.argument("name", required=False)
@click.option("--preview", "action", flag_value="preview", help="Print the period in progress; post nothing.")
@click.option("--send", "action", flag_value="send", help="Post the period in progress now (once per period).")
@click.option("--retry", "action", flag_value="retry", help="Post its failed periods again, once the cause is fixed.")
def digest(name: str | None, action: str | None) -> None:
    """The digest of the period in progress, from its last scheduled time until now.

    --send posts it and records the period: a second --send, or the scheduled send at
    the period's end, posts nothing more.
    """
    if action is None:
        raise click.UsageError("give --preview (print it), --send (post it now) or --retry (post failed ones again)")
    settings = load_settings()
    spec = choose_digest(settings, name)
    now = datetime.now(UTC)
    if action == "preview":
        _preview(settings, spec, now)
    elif action == "retry":
        _retry(settings, spec, now)
    else:
        _send(settings, spec, now)


def _preview(settings: Settings, spec: DigestSpec, now: datetime) -> None:
    from bot.deliver.digest import preview_digest
    from bot.deliver.digestmessage import format_digest_for_terminal

    session_factory = open_db(settings, migrate=False)
    click.echo(format_digest_for_terminal(preview_digest(session_factory, spec, now)))


def _send(settings: Settings, spec: DigestSpec, now: datetime) -> None:
    from bot.cli import CommandError
    from bot.deliver import slack_client
    from bot.deliver.digest import send_digest_now
    from bot.digest import describe_period, period_so_far
    from bot.scheduler import make_worker_id

    client = slack_client(settings)
    if client is None:
        raise ConfigClickError("SLACK_BOT_TOKEN is not set: --send posts to Slack (--preview prints)")
    session_factory = open_db(settings, migrate=False)
    row, fresh = send_digest_now(session_factory, settings, spec, now=now, worker=make_worker_id("digest"),
                                 client=client)
    period = describe_period(period_so_far(spec, now), spec.tz)
    if not fresh:
        when = f" at {row.sent_at:%Y-%m-%d %H:%M} UTC" if row.sent_at else ""
        click.echo(f"digest {spec.name}: this period ({period.split(' – ')[0]} onwards) was {row.status}{when} "
                   "already; nothing posted")
        return
    if row.status == "sent":
        click.echo(f"digest {spec.name}: posted to {spec.channel} ({period})")
        return
    state = "will be retried by the next pass" if row.status == "pending" else "failed"
    raise CommandError(f"digest {spec.name}: not posted to {spec.channel}: {row.last_error} ({state})")


def _retry(settings: Settings, spec: DigestSpec, now: datetime) -> None:
    from bot.deliver import slack_client
    from bot.deliver.digest import retry_digest
    from bot.scheduler import make_worker_id

    client = slack_client(settings)
    if client is None:
        raise ConfigClickError("SLACK_BOT_TOKEN is not set: --retry posts to Slack")
    retried, sent = retry_digest(open_db(settings, migrate=False), settings, spec, now=now,
                                 worker=make_worker_id("digest"), client=client)
    click.echo(f"digest {spec.name}: {retried} failed period(s), {sent} posted now to {spec.channel}")
