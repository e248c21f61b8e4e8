"""``/pressbot digest`` and ``/pressbot feeds`` through slack-sdk's real SocketModeClient against
a fake Slack on 127.0.0.1 (issue 19)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from bot.config import load
from bot.records import FlagMatch
from bot.schema import Feed
from bot.socketmode import start_socket_mode
from bot.store import verdicts as verdict_store
from tests.conftest import open_db, write_config
from tests.fakesocketmode import FakeSocketModeSlack
from tests.helpers import add_alert


@pytest.fixture(scope="module")
def connected(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSocketModeSlack]:
    """One socket-mode client for the module: closing one waits out its 3 s socket read timeout."""
    slack = FakeSocketModeSlack().start()
    directory = tmp_path_factory.mktemp("digest-slack")
    start = datetime.now(UTC) - timedelta(hours=1)
    digests = "".join(
        f'[[digests]]\nname = "{name}"\nchannel = "#digest"\nevery = "daily {start:%H:%M}"\ntz = "UTC"\n'
        f"flags = {flags}\n"
        for name, flags in (("daily", '["icc", "reprisal"]'), ("icc-only", '["icc"]'))
    )
    config = write_config(directory, [{"name": "ISHR", "url": "https://ishr.example/feed/"}], extra=digests)
    database_url = f"sqlite:///{directory / 'pressbot.db'}"
    factory = open_db(database_url)
    add_alert(factory, title="ICC prosecutor seeks warrants <!channel>", feed_name="ISHR")
    add_alert(factory, title="Defenders face reprisals", feed_name="FIDH", url="https://fidh.example/1",
              matches=(FlagMatch("reprisal", "reprisals", "Defenders face reprisals."),))
    with factory.begin() as session:
        session.execute(update(Feed).where(Feed.name == "FIDH").values(
            consecutive_failures=4, last_error="HTTP 503 <!here>", failing_since=start))
        session.add(Feed(name="OMCT", url="https://omct.example/", configured_url="https://omct.example/",
                         enabled=False, disabled_reason="410 Gone"))
        ishr = session.scalars(select(Feed.id).where(Feed.name == "ISHR")).one()
        verdict_store.mute_feed(session, ishr, until=datetime.now(UTC) + timedelta(days=7), by="U0MUTER")
    settings = load({"PRESSBOT_CONFIG": str(config), "DATABASE_URL": database_url,
                     "SLACK_APP_TOKEN": "xapp-1-A111-fake", "SLACK_BOT_TOKEN": "xoxb-fake",
                     "SLACK_API_URL": slack.api_url})
    with pytest.MonkeyPatch.context() as monkeypatch:
        for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            monkeypatch.delenv(proxy, raising=False)
        client = start_socket_mode(settings, factory)
        yield slack
        client.close()
    slack.stop()


def ask(slack: FakeSocketModeSlack, text: str) -> dict[str, Any]:
    before = len(slack.responses)
    envelope_id = slack.send_slash_command(text)
    slack.wait_for(lambda: len(slack.responses) > before)
    slack.wait_for(lambda: {"envelope_id": envelope_id} in slack.acks)  # acknowledged, as Slack wants
    return slack.responses[before]


def test_slash_digest_answers_the_asker_with_this_period_so_far(connected: FakeSocketModeSlack) -> None:
    reply = ask(connected, "digest daily")
    assert reply["response_type"] == "ephemeral"
    blocks = json.dumps(reply["blocks"], ensure_ascii=False)
    assert "Digest “daily” so far:" in blocks and "2 flagged releases — icc 1 · reprisal 1" in blocks
    assert "<https://fidh.example/1|Defenders face reprisals>" in blocks
    assert "<!channel>" not in blocks and "&lt;!channel&gt;" in blocks
    only_icc = json.dumps(ask(connected, "digest icc-only")["blocks"], ensure_ascii=False)
    assert "1 flagged release — icc 1" in only_icc and "Defenders face reprisals" not in only_icc


def test_slash_digest_without_a_name_among_several_or_a_wrong_one_lists_the_names(
    connected: FakeSocketModeSlack
) -> None:
    assert "`/pressbot digest NAME` with one of `daily`, `icc-only`" in ask(connected, "digest")["text"]
    assert "No digest is named `weekly`; configured: `daily`, `icc-only`" in ask(connected, "digest weekly")["text"]


def test_slash_feeds_lists_the_failing_disabled_and_muted_feeds(connected: FakeSocketModeSlack) -> None:
    reply = ask(connected, "feeds")
    blocks = json.dumps(reply["blocks"], ensure_ascii=False)
    assert reply["response_type"] == "ephemeral"
    assert "3 feeds: 1 failing, 1 disabled, 1 muted" in blocks
    assert "*FIDH* — failing since" in blocks and "4 failures in a row: HTTP 503 &lt;!here&gt;" in blocks
    assert "*OMCT* — disabled: 410 Gone" in blocks
    assert "*ISHR* — muted by <@U0MUTER> until" in blocks and "`/pressbot unmute ISHR`" in blocks


def test_a_search_for_other_words_is_still_a_search(connected: FakeSocketModeSlack) -> None:
    reply = ask(connected, "prosecutor warrants")
    assert "2 releases for `prosecutor warrants`" in json.dumps(reply["blocks"], ensure_ascii=False)


def test_a_stray_path_is_not_opened(tmp_path: Path) -> None:
    # The zone name comes from the config file: a path must never be read as one.
    config = write_config(tmp_path, [], extra='[[digests]]\nname = "x"\nchannel = "#d"\nevery = "daily 09:00"\n'
                          'tz = "/etc/passwd"\n')
    with pytest.raises(Exception, match="unknown time zone"):
        load({"PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"})
