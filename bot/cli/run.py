"""``pressbot run`` (the long-running worker) and ``pressbot status`` (what it has been doing)."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import signal
import threading
from dataclasses import asdict
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import click

from bot.cli import CommandError, ConfigClickError, configure_logging, load_settings, open_db, terminal_text
from bot.records import FeedHealth, FeedStatus, LastPass, VerdictCounts

if TYPE_CHECKING:
    from bot.config import Settings

log = logging.getLogger("bot.run")

# Procfile platforms send SIGTERM and kill at 30 s; 15 s for the job in flight leaves
# room to release claims and exit inside the 20 s we promise.
STOP_GRACE_SECONDS = 15.0
# Chatty at INFO: one line per HTTP request (httpx), per job run (APScheduler), per migration step.
_QUIET_LOGGERS = ("httpx", "httpcore", "apscheduler", "trafilatura", "urllib3", "alembic")


def _setup_logging(log_json: bool) -> None:
    from bot.logs import install_redaction

    root_level = logging.getLogger().level
    verbose = max(1, (logging.WARNING - root_level) // 10)  # a worker logs at INFO at least
    configure_logging(verbose, log_json)
    if verbose < 2:
        for name in _QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    install_redaction()


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, _frame: Any) -> None:
        if not stop.is_set():
            log.info("%s received: stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def _start_socket_mode(settings: Settings, session_factory: Any, scheduler: Any = None) -> Any:
    """Slack Socket Mode (slash commands, the alerts' buttons), when that module exists and SLACK_APP_TOKEN is set."""
    if not settings.slack_app_token or importlib.util.find_spec("bot.socketmode") is None:
        return None

    def deliver_now() -> None:
        # A verdict's edit is in the outbox: the delivery job runs now instead of within 15 s.
        if scheduler is not None:
            scheduler.modify_job("delivery", next_run_time=datetime.now(UTC))

    keeper = _SocketModeKeeper(settings, session_factory, deliver_now)
    keeper.start()
    return keeper


class _SocketModeKeeper:
    """Connects Socket Mode, and while ``run`` lives retries with backoff when Slack refuses.

    A revoked or mistyped app token gave a 30-line traceback once and ``/pressbot`` was
    never answered again (issue 14): each refusal is now one warning line, and the
    connection comes up as soon as the token is fixed.
    """

    FIRST_DELAY = 1.0
    MAX_DELAY = 300.0

    def __init__(self, settings: Settings, session_factory: Any, on_change: Any = None) -> None:
        self._settings = settings
        self._session_factory = session_factory
        self._on_change = on_change or (lambda: None)
        self._stop = threading.Event()
        self._handle: Any = None
        self._thread = threading.Thread(target=self._connect, name="socketmode-connect", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _connect(self) -> None:
        from bot import socketmode

        delay = self.FIRST_DELAY
        while not self._stop.is_set():
            try:
                self._handle = socketmode.start_socket_mode(self._settings, self._session_factory, self._on_change)
            except Exception as exc:  # the alerts matter more than slash commands: keep running
                log.warning("Socket Mode did not start (%s); retrying in %.0f s", _one_line(exc), delay)
                self._stop.wait(delay)
                delay = min(delay * 2, self.MAX_DELAY)
                continue
            log.info("Socket Mode started")
            return

    def close(self) -> None:
        self._stop.set()
        if self._handle is not None:
            self._handle.close()


def _one_line(exc: Exception) -> str:
    response = getattr(exc, "response", None)
    error = response.get("error") if response is not None and hasattr(response, "get") else None
    if error:
        return f"Slack answered {error}"
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _stop_socket_mode(handle: Any) -> None:
    close = next((getattr(handle, name) for name in ("close", "disconnect", "stop") if hasattr(handle, name)), None)
    if close is None:
        return
    # Closing a websocket can hang on a dead network; it must not eat the stop budget.
    thread = threading.Thread(target=close, name="socketmode-close", daemon=True)
    thread.start()
    thread.join(2.0)


@click.command()
@click.option("--log-json", is_flag=True, help="Log one JSON object per line (for platforms that parse logs).")
def run(log_json: bool) -> None:
    """The long-running scheduler: poll feeds as they fall due, deliver alerts, report feed health.

    Stops cleanly on SIGTERM or SIGINT (Ctrl-C) within 20 seconds.
    """
    from bot.cli.stages import load_page_stages
    from bot.errors import ConfigError
    from bot.scheduler import interval_warnings
    from bot.scheduler.worker import Worker, build_scheduler

    _setup_logging(log_json)
    settings = load_settings()
    try:
        warnings = interval_warnings(settings)
    except ConfigError as exc:
        raise ConfigClickError(str(exc)) from exc
    for warning in warnings:
        log.warning(warning)
    session_factory, unwritable = _open_worker_db(settings)
    stop = threading.Event()
    _stop_on_signals(stop)
    worker = Worker(
        settings, session_factory, page_stages=load_page_stages, echo=click.echo, metrics=_start_metrics(settings)
    )
    if unwritable:
        log.error("%s; passes paused, next try in %gs", unwritable, worker.backoff.failed())
    scheduler = build_scheduler(worker)
    scheduler.start()
    socket_mode = _start_socket_mode(settings, session_factory, scheduler)
    log.info(
        "worker %s started: %d feeds, Slack %s", worker.id, len(settings.feeds),
        "posting" if settings.slack_token else "not configured (alerts are printed)",
    )
    stop.wait()
    scheduler.shutdown(wait=False)
    _stop_socket_mode(socket_mode)
    if not worker.stop(grace=STOP_GRACE_SECONDS):
        # The job thread is stuck in I/O; waiting for it would outlive the platform's patience.
        logging.shutdown()
        os._exit(0)


def _open_worker_db(settings: Settings) -> tuple[Any, str | None]:
    """Migrate; a database that cannot be written but has the current schema is no reason to exit.

    The worker then starts with its passes paused and tries again, backing off, so it
    recovers by itself once the database is writable (a replica promoted, disk freed).
    Returns the session factory and the one-line problem, if any.
    """
    from bot.errors import UnwritableError

    try:
        return open_db(settings, migrate=True), None
    except CommandError as exc:
        if not isinstance(exc.__cause__, UnwritableError):
            raise
        return open_db(settings, migrate=False), exc.format_message()


def _start_metrics(settings: Settings) -> Any:
    """Prometheus /metrics and /healthz on PRESSBOT_METRICS_HOST:PORT, when the port is set."""
    if settings.metrics_port is None:
        return None
    from bot.metrics import WorkerMetrics, serve
    from bot.scheduler.worker import feed_intervals

    metrics = WorkerMetrics(poll_interval_seconds=min(feed_intervals(settings)))
    try:
        server = serve(metrics, settings.metrics_host, settings.metrics_port)
    except OSError as exc:
        raise CommandError(f"metrics: cannot listen on {settings.metrics_host}:{settings.metrics_port}: "
                           f"{exc.strerror or exc}") from exc
    host = f"[{settings.metrics_host}]" if ":" in settings.metrics_host else settings.metrics_host
    log.info("metrics and health check on http://%s:%d/metrics and /healthz", host, server.server_port)
    return metrics


# --- status ---------------------------------------------------------------------------


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def verdicts_json(counts: dict[str, VerdictCounts]) -> dict[str, Any]:
    """Per flag: the team's verdicts on its alerts, the precision they give, and misses reported."""
    return {
        flag: {"relevant": count.relevant, "not_relevant": count.not_relevant, "missed": count.missed,
               "precision": count.precision}
        for flag, count in counts.items()
    }


def status_json(
    feeds: list[FeedHealth],
    alerts: dict[str, int],
    last: LastPass | None,
    settings: Settings,
    verdicts: dict[str, VerdictCounts] | None = None,
) -> dict[str, Any]:
    from bot.cli.feeds import mute_json

    return {
        # Which configuration answered: PRESSBOT_CONFIG, ./config or the one shipped in the package.
        "config": str(settings.config_path.absolute()),
        "feeds_file": str(settings.feeds_path.absolute()),
        "feeds": [
            {
                "name": feed.name,
                "status": feed.status,
                "disabled_reason": feed.disabled_reason,
                "last_success": _iso(feed.last_success_at),
                "last_error": feed.last_error,
                "last_error_at": _iso(feed.last_error_at),
                "consecutive_failures": feed.consecutive_failures,
                "failing_since": _iso(feed.failing_since),
                "next_check": _iso(feed.next_check_at),
                "interval_seconds": feed.interval_seconds,
                "claimed_by": feed.claimed_by,
                **mute_json(feed.muted_until, feed.muted_by),
            }
            for feed in feeds
        ],
        "alerts": alerts,
        "verdicts": verdicts_json(verdicts or {}),
        "last_pass": None if last is None else {
            "started_at": _iso(last.started_at), "finished_at": _iso(last.finished_at), "worker": last.worker,
            **asdict(last.counts),
        },
    }


def relative(value: datetime | None, now: datetime) -> str:
    """'12 min ago', 'in 3 h', 'now' — what an operator reads at a glance."""
    if value is None:
        return "—"
    seconds = (value - now).total_seconds()
    if abs(seconds) < 5:
        return "now"
    span = abs(seconds)
    text = (f"{span:.0f} s" if span < 60 else f"{span / 60:.0f} min" if span < 3600
            else f"{span / 3600:.1f} h" if span < 172800 else f"{span / 86400:.0f} d")
    return f"in {text}" if seconds > 0 else f"{text} ago"


def _verdict_line(count: VerdictCounts) -> str:
    precision = f"precision {count.precision:.2f}" if count.precision is not None else "no alert judged yet"
    return (f"{count.flag}: {count.relevant} relevant, {count.not_relevant} not relevant ({precision}), "
            f"{count.missed} miss{'es' if count.missed != 1 else ''} reported")


def _print_status(
    feeds: list[FeedHealth],
    alerts: dict[str, int],
    last: LastPass | None,
    settings: Settings,
    verdicts: dict[str, VerdictCounts] | None = None,
) -> None:
    from rich.console import Console
    from rich.table import Table

    from bot.cli.feeds import mute_text

    now = datetime.now(UTC)
    styles = {FeedStatus.OK: "green", FeedStatus.NEW: "cyan", FeedStatus.FAILING: "yellow", FeedStatus.DISABLED: "red"}
    table = Table(title="Feeds")
    for column in ("Feed", "Status", "Last success", "Next check", "Failures", "Last error"):
        table.add_column(column, overflow="fold")
    for feed in feeds:
        state = feed.status
        next_check = "—" if not feed.enabled else relative(feed.next_check_at, now) if feed.next_check_at else "due now"
        if feed.claimed_by and feed.claimed_until and feed.claimed_until > now:
            next_check = f"being polled by {feed.claimed_by} (claim until {feed.claimed_until:%H:%M:%S})"
        error = {FeedStatus.DISABLED: feed.disabled_reason, FeedStatus.FAILING: feed.last_error}.get(state)
        muted = mute_text(feed.muted_until, feed.muted_by, now)
        shown = f"{state}, {muted}" if muted else str(state)
        table.add_row(terminal_text(feed.name), terminal_text(shown, styles[state]),
                      relative(feed.last_success_at, now), next_check, str(feed.consecutive_failures or ""),
                      terminal_text(error))
    console = Console(markup=False)
    console.print(f"Configuration: {settings.config_path.absolute()} (feeds: {settings.feeds_path.absolute()})",
                  highlight=False, soft_wrap=True)
    console.print(table)
    console.print(f"Alerts: {alerts.get('pending', 0)} pending, {alerts.get('failed', 0)} failed, "
                  f"{alerts.get('sent', 0)} sent", highlight=False)
    judged = [count for count in (verdicts or {}).values() if count.relevant or count.not_relevant or count.missed]
    if judged:
        console.print("Verdicts (as the team sees them): " + "; ".join(_verdict_line(count) for count in judged),
                      highlight=False, soft_wrap=True)
    if last is None:
        console.print("Last pass: none yet", highlight=False)
        return
    counts = last.counts
    console.print(
        f"Last pass: {relative(last.started_at, now)} by {last.worker}: {counts.feeds} feeds, {counts.fetched} "
        f"fetched, {counts.not_modified} not modified, {counts.failed} failed; {counts.new_items} new items, "
        f"{counts.flagged} flagged; alerts {counts.alerts_sent} sent", highlight=False,
    )


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def status(as_json: bool) -> None:
    """Each feed's health, pending and failed alerts, and the last pass."""
    from bot.store import outbox
    from bot.store import schedule as schedule_store
    from bot.store.verdicts import verdict_counts

    settings = load_settings()
    session_factory = open_db(settings, migrate=False)
    with session_factory() as session:
        feeds = schedule_store.all_feed_health(session)
        alerts = outbox.alert_counts(session)
        last = schedule_store.last_pass(session)
        verdicts = verdict_counts(session, settings.flag_rules.names)
    if as_json:
        click.echo(json.dumps(status_json(feeds, alerts, last, settings, verdicts), ensure_ascii=False))
    else:
        _print_status(feeds, alerts, last, settings, verdicts)
