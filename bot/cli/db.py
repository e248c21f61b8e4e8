"""``pressbot db``: schema migrations."""

from __future__ import annotations

import click

from bot.cli import load_settings, open_db


@click.group()
def db() -> None:
    """Database maintenance."""


@db.command()
def upgrade() -> None:
    """Apply migrations up to the newest (also done before poll and run)."""
    from bot.logs import redact

    settings = load_settings()
    open_db(settings, migrate=True)
    click.echo(f"database {redact(settings.database_url)} is up to date")
