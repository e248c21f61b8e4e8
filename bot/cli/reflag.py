"""``pressbot reflag``: flags are derived data; re-derive them after the rules change."""

from __future__ import annotations

import json

import click

from bot.cli import load_settings, open_db


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
def reflag(as_json: bool) -> None:
    """Re-evaluate every stored item with the current rules; report what changed."""
    from dataclasses import asdict

    from bot.reflag import reflag as run_reflag

    settings = load_settings()
    report = run_reflag(settings, open_db(settings, migrate=False))
    if as_json:
        click.echo(json.dumps(asdict(report)))
        return
    click.echo(f"{report.items} items re-evaluated")
    for name in sorted(set(report.newly_flagged) | set(report.unflagged)):
        click.echo(
            f"  {name}: {report.newly_flagged.get(name, 0)} newly flagged, {report.unflagged.get(name, 0)} unflagged"
        )
    if not report.newly_flagged and not report.unflagged:
        click.echo("  no flag changed")
    click.echo(f"{report.alerts} new alerts queued, {report.held} older releases held back")
