"""A "Not relevant" click through ``pressbot run`` (issue 19): the real SocketModeClient against a
fake Socket Mode server, the real WebClient against the fake Web API, both on 127.0.0.1."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from bot.deliver.message import NOT_RELEVANT_ACTION
from bot.schema import AlertChange, VerdictRow
from tests.conftest import REPO, write_config
from tests.fakeslack import FakeSlack
from tests.fakesocketmode import FakeSocketModeSlack
from tests.feedserver import FeedServer
from tests.helpers import ICC_WARRANT, releases_rss

pytestmark = pytest.mark.slow

ACK_LIMIT = 3.0  # Slack's: an envelope not acknowledged within 3 s is sent again


def run_env(config: Path, database_url: str, **extra: str) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(("PRESSBOT_", "SLACK_", "DATABASE_URL", "HTTP_PROXY", "HTTPS_PROXY",
                                        "http_proxy", "https_proxy"))}
    return {**inherited, "PRESSBOT_CONFIG": str(config), "DATABASE_URL": database_url,
            "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", **extra}


def counts(database_url: str) -> tuple[int, int]:
    engine = create_engine(database_url)
    with engine.connect() as connection:
        verdicts = connection.scalar(select(func.count()).select_from(VerdictRow.__table__))
        edits = connection.scalar(select(func.count()).select_from(AlertChange.__table__))
    engine.dispose()
    return int(verdicts or 0), int(edits or 0)


def test_a_not_relevant_click_through_run_is_one_verdict_and_one_edit_retries_and_strangers_ignored(
    feed_server: FeedServer, tmp_path: Path,
) -> None:
    now = datetime.now(UTC)
    feed_server.add("/rights.xml", releases_rss([("icc-1", ICC_WARRANT, now - timedelta(minutes=10))]))
    socket = FakeSocketModeSlack().start()
    fake = FakeSlack(socket_mode_url=socket.ws_url).start()
    config = write_config(tmp_path, [{"name": "Rights", "url": feed_server.url("/rights.xml"), "interval": "5s"}])
    database_url = f"sqlite:///{tmp_path / 'run.db'}"
    env = run_env(config, database_url, SLACK_BOT_TOKEN=fake.token, SLACK_APP_TOKEN="xapp-1-A111-fake",
                  SLACK_API_URL=fake.url, SLACK_CHANNEL="#pressbot")
    with (tmp_path / "run.err").open("w") as err:
        process = subprocess.Popen([sys.executable, "-m", "bot", "run"], env=env, cwd=tmp_path,
                                   stdout=subprocess.DEVNULL, stderr=err)
    try:
        [message] = socket.wait_for(lambda: fake.posted("#pressbot"), timeout=60)
        socket.wait_for(lambda: socket._connections, timeout=60)
        alert_id = str(message["metadata"]["event_payload"]["alert_id"])
        click = socket.block_actions(action_id=NOT_RELEVANT_ACTION, channel_id="C0PRESSBOT",
                                     message_ts=message["ts"], value=alert_id)
        first = socket.send_envelope("interactive", click)
        [update] = socket.wait_for(lambda: fake.calls("chat.update"), timeout=30)
        ack = socket.ack_seconds(first)
        assert ack is not None and ack < ACK_LIMIT
        assert update.body["ts"] == message["ts"] and update.body["channel"] == "C0PRESSBOT"
        assert "Marked not relevant by <@U0ANA>" in json.dumps(update.body["blocks"])
        assert counts(database_url) == (1, 1)

        retry = socket.send_envelope("interactive", {**click, "retry_attempt": 1, "retry_reason": "timeout"})
        foreign = socket.send_envelope("interactive", socket.block_actions(
            action_id="someone_elses_approve", channel_id="C0PRESSBOT", message_ts=message["ts"], value=alert_id))
        stranger = socket.send_envelope("interactive", socket.block_actions(
            action_id=NOT_RELEVANT_ACTION, channel_id="C0PRESSBOT", message_ts="1600000000.000001", value="1"))
        socket.wait_for(lambda: all(socket.ack_seconds(envelope) is not None
                                    for envelope in (retry, foreign, stranger)), timeout=10)
        time.sleep(3)  # a second edit, had one been queued, would be delivered at once
        assert len(fake.calls("chat.update")) == 1 and counts(database_url) == (1, 1)
        assert all((socket.ack_seconds(envelope) or ACK_LIMIT) < ACK_LIMIT for envelope in (retry, foreign, stranger))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(60)
        fake.stop()
        socket.stop()
    log = (tmp_path / "run.err").read_text()
    ignored = [line for line in log.splitlines() if "ignored a Slack action" in line]
    assert len(ignored) == 2, log
    assert sum("someone_elses_approve" in line for line in ignored) == 1
    assert sum("no alert pressbot posted" in line for line in ignored) == 1
    assert "Traceback" not in log and len(fake.posts()) == 1
