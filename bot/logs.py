"""Log output for the long-running worker: JSON lines for log-parsing platforms, secrets redacted.

``configure_logging`` (bot.cli) puts ``JsonFormatter`` on the handler with
``--log-json``; ``install_redaction`` adds ``RedactSecrets`` to every root handler so
that no Slack token or database password reaches a log line, whatever logged it (our
code, slack-sdk's debug output, a traceback).
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from typing import Any

# Slack tokens: bot (xoxb-), app-level (xapp-), user (xoxp-), legacy and refresh tokens.
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposre]|app)-[A-Za-z0-9-]+")
# The password may hold "/" (generated ones do); the user name cannot hold ":".
_URL_PASSWORD = re.compile(r"(://[^:/@\s]+):[^@\s]*@")

# The attributes every LogRecord has; anything else came through ``extra=`` and is kept.
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime", "taskName"}
)


def redact(text: str) -> str:
    """``text`` with Slack tokens and URL passwords replaced."""
    text = _SLACK_TOKEN.sub(lambda match: match.group()[:5] + "***", text)
    return _URL_PASSWORD.sub(r"\1:***@", text)


class RedactSecrets(logging.Filter):
    """Rewrites a record's message and traceback before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            # Formatters reuse exc_text when it is set, so the redacted one is printed.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and any ``extra=`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return redact(json.dumps(entry, ensure_ascii=False, default=str))


def install_redaction() -> None:
    """Put ``RedactSecrets`` on every handler of the root logger (once)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(existing, RedactSecrets) for existing in handler.filters):
            handler.addFilter(RedactSecrets())
