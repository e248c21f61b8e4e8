"""The ``pressbot`` command line (also ``python -m bot``).

Commands live in the modules of this package and are imported only when run, so
``pressbot query`` never loads the fetching, parsing or Slack stack. Errors are
reported here only: configuration and usage errors give one line and exit 2,
anything unexpected exits 1 with the traceback logged.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import TYPE_CHECKING, Any

import click

from bot import __version__

if TYPE_CHECKING:
    from pathlib import Path

    from rich.text import Text
    from sqlalchemy.orm import Session, sessionmaker

    from bot.config import Settings
    from bot.records import FeedSource

log = logging.getLogger("bot")

COMMANDS: dict[str, tuple[str, str]] = {
    "poll": ("bot.cli.poll:poll", "One pass: fetch every feed, store, flag, deliver alerts."),
    "run": ("bot.cli.run:run", "The long-running scheduler (the Procfile's worker)."),
    "status": ("bot.cli.run:status", "Feed health, pending/failed alerts, the last pass."),
    "query": ("bot.cli.query:query", "Search stored items."),
    "feeds": ("bot.cli.feeds:feeds", "List, check, import and export feeds."),
    "db": ("bot.cli.db:db", "Database maintenance (migrations)."),
    "flags": ("bot.cli.flags:flags", "Test the flag rules on a labeled file."),
    "reflag": ("bot.cli.reflag:reflag", "Re-evaluate stored items after the rules change."),
    "alerts": ("bot.cli.alerts:alerts", "The Slack outbox: list, retry."),
    "slack": ("bot.cli.alerts:slack", "Slack checks."),
    "prune": ("bot.cli.query:prune", "Delete old items (flagged ones kept unless --all)."),
    "init": ("bot.cli.init:init", "Write an editable copy of the default configuration."),
    "feedback": ("bot.cli.feedback:feedback", "The team's verdicts on alerts: list, export, missed."),
    "digest": ("bot.cli.digest:digest", "A digest of the period in progress: --preview or --send."),
}


class ConfigClickError(click.ClickException):
    """A configuration or usage problem: one line on stderr, exit status 2."""

    exit_code = 2

    def show(self, file: Any = None) -> None:
        click.echo(f"pressbot: error: {self.format_message()}", err=True)


class CommandError(ConfigClickError):
    """The command could not do its job (a database unreachable…): one line, exit status 1."""

    exit_code = 1


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        module_name, attr = COMMANDS[cmd_name][0].split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:  # command not built yet
                return None
            raise
        command: click.Command = getattr(module, attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Help from the table above: listing commands must not import them all.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def configure_logging(verbose: int, log_json: bool = False) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    handler = logging.StreamHandler(sys.stderr)
    if log_json:
        from bot.logs import JsonFormatter

        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # slack-sdk logs "Failed to send a request…" at ERROR before pressbot says, in one
    # line, what failed (issue 14); -vv shows it.
    logging.getLogger("slack_sdk").setLevel(logging.CRITICAL if verbose < 2 else logging.DEBUG)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pressbot")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """pressbot: watch NGO and UN press feeds, flag reprisals and ICC news, alert Slack."""
    configure_logging(verbose)
    _verbosity[0] = verbose


def load_settings() -> Settings:
    from bot.config import load
    from bot.errors import ConfigError

    try:
        return load(read_opml=read_opml)
    except ConfigError as exc:
        raise ConfigClickError(str(exc)) from exc


def read_opml(path: Path) -> tuple[FeedSource, ...]:
    """An OPML feed list (bot.opml), imported only when the configured list is one."""
    from bot.opml import read_opml

    return read_opml(path)


def open_db(settings: Settings, *, migrate: bool) -> sessionmaker[Session]:
    """Engine + session factory for a command.

    ``migrate``: apply the migrations first (``poll``, ``run``, ``db upgrade``). Without
    it the database must already have the current schema, else one line and exit 2:
    every other command leaves a missing or unmigrated database as it is.
    """
    from bot.errors import ConfigError, SchemaError, StoreError
    from bot.store import check_database_url, check_schema, make_engine, make_session_factory
    from bot.store.migrate import upgrade

    try:
        check_database_url(settings.database_url)
        engine = make_engine(settings.database_url)
    except (ConfigError, StoreError) as exc:
        # An unusable DATABASE_URL is a configuration error.
        raise ConfigClickError(_first_line(exc)) from exc
    try:
        if migrate:
            upgrade(engine)
        else:
            check_schema(engine)
    except SchemaError as exc:
        raise ConfigClickError(_first_line(exc)) from exc
    except StoreError as exc:
        raise CommandError(_first_line(exc)) from exc
    return make_session_factory(engine)


_TERMINAL_CONTROLS = "".join(map(chr, [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0)]))


def terminal_text(value: object, style: str = "") -> Text:
    """Feed-controlled text for a rich table, never read as markup (a "[/]" in a title
    crashed ``alerts list``, "[link=…]" made a hyperlink) and without control characters
    (an escape sequence in a title must not drive the terminal)."""
    from rich.text import Text

    text = "" if value is None else str(value)
    return Text(text.translate(dict.fromkeys(map(ord, _TERMINAL_CONTROLS))), style=style)


def _first_line(exc: Exception) -> str:
    # Drivers add hints and SQLAlchemy a "Background on this error" link: one line is enough.
    return str(exc).strip().splitlines()[0]


# -v given: an error's one line is followed by its traceback (`pressbot run` logs at INFO anyway).
_verbosity = [0]


def _log_cause(exc: BaseException | None) -> None:
    if exc is not None and _verbosity[0]:
        log.error("the error in full:", exc_info=exc)


def main() -> None:
    from bot.errors import ConfigError, PressbotError

    try:
        # Without standalone mode click returns ctx.exit()'s code instead of exiting.
        code = cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted.", err=True)
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        _log_cause(exc.__cause__)
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"pressbot: error: {exc}", err=True)
        sys.exit(2)
    except PressbotError as exc:
        # A database that refuses writes, Slack refusing…: one line; -v adds the traceback.
        click.echo(f"pressbot: error: {_first_line(exc)}", err=True)
        _log_cause(exc)
        sys.exit(1)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception:
        log.exception("unexpected error")
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
