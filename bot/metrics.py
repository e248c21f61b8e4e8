"""``pressbot run``'s health check and Prometheus metrics (``PRESSBOT_METRICS_PORT``; off by default).

``/metrics`` is prometheus_client's exposition of a registry of our own (never the
process-global one, so tests and embedders can hold several); ``/healthz`` answers 200
while the worker's last pass finished within twice the poll interval, 503 otherwise,
like miniflux's ``/healthcheck``. A *pass* is one run of the worker's due-feeds job
(every tick, 1–30 s): it claims whatever feeds are due, polls them and records the
outcome, so it fails while the database cannot be written. The worker feeds this
module; nothing here touches the database or the network beyond the listening socket.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    make_wsgi_app,
)

from bot.records import FeedStatus, PassCounts

if TYPE_CHECKING:
    from bot.records import PassSummary

log = logging.getLogger(__name__)

FEED_STATUSES = tuple(str(status) for status in FeedStatus)

# The start of each FetchResult/FeedReport error (bot.fetch, bot.http, bot.parse, bot.poll) → its kind.
_ERROR_KINDS = (
    ("http ", "http_status"), ("timeout", "timeout"), ("tls", "tls"), ("dns", "dns"), ("refused", "refused"),
    ("body too large", "too_large"), ("too many redirects", "redirects"), ("not a feed", "parse"),
    ("truncated xml", "parse"), ("feedparser", "parse"), ("empty body", "parse"), ("storing failed", "store"),
)


def error_kind(error: str) -> str:
    """A small fixed set of label values for the errors a feed can fail with (bounded cardinality)."""
    lowered = error.lower()
    for prefix, kind in _ERROR_KINDS:
        if lowered.startswith(prefix):
            return kind
    return "connection" if "connect" in lowered else "other"


class WorkerMetrics:
    """The worker's gauges and counters, and whether it is healthy."""

    def __init__(self, poll_interval_seconds: float, clock: Callable[[], float] = time.time) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        for collector in (ProcessCollector, PlatformCollector, GCCollector):  # memory, CPU, open files, GC
            collector(registry=self.registry)
        self.stale_after = 2 * poll_interval_seconds
        self._clock = clock
        self._last_finished: float | None = None
        self.passes = Counter("pressbot_passes", "Runs of the due-feeds job, by result (ok, failed).",
                              ["result"], registry=self.registry)
        self.last_pass_finished = Gauge("pressbot_last_pass_finished_timestamp_seconds",
                                        "When the last successful pass finished (Unix time).", registry=self.registry)
        self.last_pass_duration = Gauge("pressbot_last_pass_duration_seconds",
                                        "How long the last successful pass took.", registry=self.registry)
        self.feeds_polled = Counter("pressbot_feeds_polled", "Feeds polled, by outcome (fetched, not_modified, "
                                    "failed).", ["outcome"], registry=self.registry)
        self.fetch_errors = Counter("pressbot_fetch_errors", "Failed feed polls, by kind of error.", ["kind"],
                                    registry=self.registry)
        self.items_stored = Counter("pressbot_items_stored", "Releases stored, by change (new, updated).",
                                    ["change"], registry=self.registry)
        self.feeds = Gauge("pressbot_feeds", "Configured feeds by status (ok, new, failing, disabled).",
                           ["status"], registry=self.registry)
        self.failing_feeds = Gauge("pressbot_failing_feeds", "Enabled feeds whose last poll failed.",
                                   registry=self.registry)
        self.alerts = Gauge("pressbot_alerts", "Alerts in the outbox by status.", ["status"], registry=self.registry)
        # Every PassCounts field under its own name; feeds_polled and items_stored above are
        # the per-outcome views of five of them that dashboards already read (README).
        self.pass_counts = Counter("pressbot_pass_counts", "Every counter of the passes (poll --json's), by name.",
                                   ["count"], registry=self.registry)
        for result in ("ok", "failed"):
            self.passes.labels(result)
        for change in ("new", "updated"):
            self.items_stored.labels(change)
        for name in PassCounts().counts():
            self.pass_counts.labels(name)

    def pass_finished(self, duration_seconds: float) -> None:
        self._last_finished = self._clock()
        self.passes.labels("ok").inc()
        self.last_pass_finished.set(self._last_finished)
        self.last_pass_duration.set(duration_seconds)

    def pass_failed(self) -> None:
        self.passes.labels("failed").inc()

    def record_summary(self, summary: PassSummary) -> None:
        """What one batch of feeds did (several per pass when many are due)."""
        self.record_counts(summary.counts())
        self.feeds_polled.labels("fetched").inc(summary.fetched)
        self.feeds_polled.labels("not_modified").inc(summary.not_modified)
        self.feeds_polled.labels("failed").inc(summary.failed)
        for report in summary.reports:
            if report.error:
                self.fetch_errors.labels(error_kind(report.error)).inc()
        self.items_stored.labels("new").inc(summary.new_items)
        self.items_stored.labels("updated").inc(summary.updated_items)

    def record_counts(self, counts: Mapping[str, int]) -> None:
        """A batch's counters (``PassCounts.counts()``), each under its own name."""
        for name, count in counts.items():
            self.pass_counts.labels(name).inc(count)

    def record_state(self, feed_statuses: Iterable[str], alert_counts: Mapping[str, int]) -> None:
        counts = dict.fromkeys(FEED_STATUSES, 0)
        for status in feed_statuses:
            counts[status] = counts.get(status, 0) + 1
        for status, count in counts.items():
            self.feeds.labels(status).set(count)
        self.failing_feeds.set(counts[FeedStatus.FAILING])
        for status, count in alert_counts.items():
            self.alerts.labels(status).set(count)

    def health(self) -> tuple[bool, str]:
        if self._last_finished is None:
            return False, "no pass has finished yet"
        age = self._clock() - self._last_finished
        if age > self.stale_after:
            return False, f"the last pass finished {age:.0f}s ago (limit {self.stale_after:g}s)"
        return True, f"ok: the last pass finished {age:.0f}s ago"


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # a scrape every 15 s is not news
        pass


def make_app(metrics: WorkerMetrics) -> Callable[..., Any]:
    exposition = make_wsgi_app(metrics.registry)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if environ.get("PATH_INFO") != "/healthz":
            return exposition(environ, start_response)
        healthy, reason = metrics.health()
        body = (reason + "\n").encode()
        start_response("200 OK" if healthy else "503 Service Unavailable",
                       [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def serve(metrics: WorkerMetrics, host: str, port: int) -> WSGIServer:
    """Serve /metrics and /healthz on a daemon thread; ``server.server_port`` is the bound port (0 picks one)."""
    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    server = make_server(host, port, make_app(metrics), server_class=Server, handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
