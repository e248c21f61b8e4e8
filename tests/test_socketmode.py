"""The /pressbot slash command: parsing, the Block Kit answer, and the round trip through
slack-sdk's real SocketModeClient against a fake Slack on 127.0.0.1."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.config import Settings, load
from bot.errors import ConfigError, QuerySyntaxError
from bot.query import MARK_END, MARK_START, QueryFilters, QueryHit
from bot.socketmode import parse_slash_query, render_hits, start_socket_mode
from tests.conftest import write_config
from tests.fakesocketmode import FakeSocketModeSlack
from tests.searchcorpus import archive, title_of

NOW = datetime(2025, 4, 1, 12, tzinfo=UTC)


# -- parsing (pure) ----------------------------------------------------------------------


def test_filters_come_out_of_the_text_and_the_rest_is_the_search() -> None:
    filters = parse_slash_query('icc visa since:30d flag:icc feed:"UN News" lang:fr limit:10 sort:date', now=NOW)
    assert filters == QueryFilters(
        text="icc visa", flags=("icc",), feeds=("UN News",), languages=("fr",),
        since=NOW - timedelta(days=30), limit=10, sort="date",
    )


def test_slack_escapes_and_curly_quotes_are_undone() -> None:
    filters = parse_slash_query("“criminal court” &amp; visa until:2025-03-31", now=NOW)
    assert filters.text == '"criminal court" & visa'
    assert filters.until == datetime(2025, 4, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    "text", ["visa since:someday", "visa limit:0", "visa limit:500", "visa sort:oldest"],
    ids=["since", "limit-zero", "limit-high", "sort"],
)
def test_a_bad_filter_value_is_a_query_error(text: str) -> None:
    with pytest.raises(QuerySyntaxError):
        parse_slash_query(text, now=NOW)


# -- the answer (pure) -------------------------------------------------------------------


def hit(**changes: object) -> QueryHit:
    values: dict[str, object] = {
        "item_id": 1, "feed_name": "ISHR", "title": "ICC staff face visa threats", "url": "https://ishr.example/1",
        "published": NOW, "first_seen": NOW, "language": "en", "summary": None, "flags": ("icc",),
        "matches": {"icc": ("ICC",)}, "snippet": f"staff face {MARK_START}visa{MARK_END} threats",
    }
    values.update(changes)
    return QueryHit(**values)  # type: ignore[arg-type]


def test_each_hit_is_a_linked_title_with_source_date_flags_and_bold_matches() -> None:
    message = render_hits([hit()], "visa")
    assert message["response_type"] == "ephemeral"
    section = message["blocks"][2]["text"]["text"]
    assert "*<https://ishr.example/1|ICC staff face visa threats>*" in section
    assert "_ISHR · 2025-04-01 · flags: icc_" in section
    assert "staff face *visa* threats" in section
    assert "1 release for `visa`" in message["blocks"][0]["elements"][0]["text"]


def test_feed_text_can_never_ping_or_disguise_a_link() -> None:
    message = render_hits([hit(title="<!channel> <https://evil.example|click>", snippet="<@U123> & <!here>")])
    rendered = json.dumps(message)
    assert "<!channel>" not in rendered and "<!here>" not in rendered and "<@U123>" not in rendered
    assert "&lt;!channel&gt;" in rendered and "&amp;" in rendered


def test_no_hits_says_so() -> None:
    assert "No stored release matches `nothing`" in render_hits([], "nothing")["text"]


# -- the round trip through the real socket-mode client ----------------------------------


@pytest.fixture(scope="module")
def slack() -> Iterator[FakeSocketModeSlack]:
    fake = FakeSocketModeSlack().start()
    yield fake
    fake.stop()


def settings_for(directory: Path, slack: FakeSocketModeSlack) -> Settings:
    config = write_config(directory, [{"name": "ISHR", "url": "https://ishr.example/feed/"}])
    return load({
        "PRESSBOT_CONFIG": str(config),
        "DATABASE_URL": f"sqlite:///{directory / 'pressbot.db'}",
        "SLACK_APP_TOKEN": "xapp-1-A111-fake",
        "SLACK_BOT_TOKEN": "xoxb-fake",
        "SLACK_API_URL": slack.api_url,
    })


@pytest.fixture(scope="module")
def connected(slack: FakeSocketModeSlack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FakeSocketModeSlack]:
    """One socket-mode client for the module: closing one waits out its 3 s socket read timeout."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        for proxy in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"):
            monkeypatch.delenv(proxy, raising=False)  # the SDK would send 127.0.0.1 through it
        settings = settings_for(tmp_path_factory.mktemp("socketmode"), slack)
        client = start_socket_mode(settings, archive(settings.database_url))
        yield slack
        client.close()


def next_reply(
    slack: FakeSocketModeSlack, replies: list[dict[str, Any]], text: str, **options: bool
) -> tuple[str, dict[str, Any]]:
    """Send one command and wait for the answer it produces."""
    before = len(replies)
    envelope_id = slack.send_slash_command(text, **options)
    slack.wait_for(lambda: len(replies) > before)
    return envelope_id, replies[before]


def test_a_slash_command_is_acked_and_answered_through_the_response_url(connected: FakeSocketModeSlack) -> None:
    envelope_id, reply = next_reply(connected, connected.responses, "visa flag:icc since:30d")
    assert connected.opened == ["xapp-1-A111-fake"]  # apps.connections.open with the app-level token
    assert {"envelope_id": envelope_id} in connected.acks
    assert reply["response_type"] == "ephemeral"
    sections = [block["text"]["text"] for block in reply["blocks"] if block["type"] == "section"]
    assert len(sections) == 1 and title_of("icc-visa") in sections[0] and "*visa*" in sections[0]


def test_without_a_response_url_the_answer_is_posted_ephemeral(connected: FakeSocketModeSlack) -> None:
    _, posted = next_reply(connected, connected.ephemeral, "represailles", response_url=False)
    assert posted["channel"] == "C111" and posted["user"] == "U111"
    assert title_of("burundi") in json.dumps(posted["blocks"], ensure_ascii=False)


def test_a_bad_query_gets_the_reason_and_the_usage(connected: FakeSocketModeSlack) -> None:
    _, reply = next_reply(connected, connected.responses, '"unclosed visa')
    assert "unbalanced quote" in reply["text"] and "/pressbot icc visa since:30d" in reply["text"]


def test_start_refuses_without_an_app_token(slack: FakeSocketModeSlack, tmp_path: Path) -> None:
    settings = replace(settings_for(tmp_path, slack), slack_app_token=None)
    with pytest.raises(ConfigError, match="SLACK_APP_TOKEN"):
        start_socket_mode(settings, archive(settings.database_url))
