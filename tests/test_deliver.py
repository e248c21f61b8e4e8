"""Slack delivery: the real slack_sdk WebClient against a fake Slack on 127.0.0.1.

Acceptance 1–7 of the Slack issue run at the level of ``poll.deliver_alerts`` on a
real SQLite database, with alert rows inserted directly (the stub flag).
"""

from __future__ import annotations

import html
import itertools
import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from hypothesis import given, settings
from hypothesis import strategies as st
from slack_sdk import WebClient
from sqlalchemy.orm import Session, sessionmaker

from bot import deliver
from bot.cli import cli
from bot.config import AlertsSection, FullTextSection, PollSection, SchedulerSection, Settings, SlackSection
from bot.deliver import deliver_alerts
from bot.errors import DeliveryError
from bot.flag import compile_rules
from bot.records import AlertToSend, DeliveryStats, FeedSource, FlagMatch
from bot.store import outbox
from tests import fakeslack
from tests.conftest import open_db, write_config
from tests.fakeslack import FakeSlack
from tests.helpers import NOW, add_alert, alert_row

LATER = NOW + timedelta(hours=2)  # past any backoff a first failure sets
LEASE = 300


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def make_settings(
    fake: FakeSlack,
    *,
    token: str | None = "",
    feeds: tuple[FeedSource, ...] = (),
    flags: dict[str, Any] | None = None,
) -> Settings:
    return Settings(
        config_path=Path("pressbot.toml"),
        feeds_path=Path("feeds.toml"),
        database_url="sqlite://",
        feeds=feeds,
        poll=PollSection(),
        alerts=AlertsSection(),
        slack=SlackSection(channel="#pressbot"),
        fulltext=FullTextSection(),
        scheduler=SchedulerSection(lease=f"{LEASE}s"),
        flag_rules=compile_rules(flags or {}, source="test"),
        slack_token=fake.token if token == "" else token,
        slack_api_url=fake.url,
    )


class Sleeps(list[float]):
    """Records the waits a client asked for instead of waiting."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


def fast_client(fake: FakeSlack, sleeps: Sleeps | None = None, token: str | None = None) -> WebClient:
    return deliver.make_client(
        token or fake.token, fake.url, connect_retry_interval=0.01, sleep=sleeps if sleeps is not None else Sleeps()
    )


def run(
    db: sessionmaker[Session],
    fake: FakeSlack,
    *,
    now: datetime = NOW,
    dry_run: bool = False,
    client: WebClient | None = None,
    pacer: deliver.Pacer | None = None,
    worker: str = "w1",
    echo: list[str] | None = None,
    **setting: Any,
) -> DeliveryStats:
    return deliver.deliver_alerts(
        db,
        make_settings(fake, **setting),
        now=now,
        dry_run=dry_run,
        echo=(echo if echo is not None else []).append,
        worker=worker,
        client=client or fast_client(fake),
        pacer=pacer or deliver.Pacer(0),
    )


def posted_alert_ids(fake: FakeSlack, channel: str = "#pressbot") -> list[int]:
    """Alert ids of the messages Slack actually holds, in posting order."""
    return [m["metadata"]["event_payload"]["alert_id"] for m in fake.posted(channel)]


def add_alerts(db: sessionmaker[Session], count: int, **fields: Any) -> list[int]:
    return [add_alert(db, title=f"Release {n}", **fields) for n in range(count)]


# ---------------------------------------------------------------- acceptance 1–7


def test_each_alert_is_posted_once_with_well_formed_blocks_and_a_second_run_posts_nothing(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    ids = add_alerts(db, 5)
    stats = run(db, fake)
    assert (stats.sent, stats.pending, stats.failed) == (5, 0, 0)
    posts = fake.calls("chat.postMessage")
    assert len(posts) == 5 and all(p.answered == "ok" for p in posts)
    for body in fake.posts():
        assert fakeslack.message_problem(body) is None  # what Slack itself would check
        assert body["unfurl_links"] is False and body["unfurl_media"] is False
        assert body["blocks"][0]["text"]["text"].startswith("*<https://ishr.example/news/1|Release")
    assert posted_alert_ids(fake) == ids
    stored = {m["metadata"]["event_payload"]["alert_id"]: m["ts"] for m in fake.posted("#pressbot")}
    for alert_id in ids:
        row = alert_row(db, alert_id)
        assert (row.status, row.slack_ts, row.attempts, row.claimed_by) == ("sent", stored[alert_id], 1, None)

    again = run(db, fake, now=LATER)
    assert (again.sent, again.pending) == (0, 0)
    assert len(fake.calls("chat.postMessage")) == 5


def test_rate_limited_posts_wait_retry_after_and_every_alert_is_posted_once(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    ids = add_alerts(db, 4)
    fake.script("chat.postMessage", *[fakeslack.rate_limited(1)] * 3)
    sleeps = Sleeps()
    stats = run(db, fake, client=fast_client(fake, sleeps))
    assert stats.sent == 4 and stats.pending == 0
    assert [p.answered for p in fake.calls("chat.postMessage")] == ["ratelimited"] * 3 + ["ok"] * 4
    assert len(sleeps) == 3 and all(1.0 <= s < 2.0 for s in sleeps)  # Retry-After plus jitter
    assert posted_alert_ids(fake) == ids


def test_retry_after_is_really_waited_by_the_default_client(db: sessionmaker[Session], fake: FakeSlack) -> None:
    add_alerts(db, 1)
    fake.script("chat.postMessage", fakeslack.rate_limited(1))
    settings_ = make_settings(fake)
    stats = deliver_alerts(db, settings_, now=NOW, dry_run=False, echo=print, worker="w1", pacer=deliver.Pacer(0))
    limited, accepted = fake.calls("chat.postMessage")
    assert stats.sent == 1 and accepted.at - limited.at >= 1.0


def test_rate_limit_outlasting_the_retries_leaves_the_channel_for_later(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    ids = add_alerts(db, 3)
    other = add_alert(db, title="Elsewhere", channel="#icc")
    fake.script("chat.postMessage", *[fakeslack.rate_limited(30)] * 4)
    stats = run(db, fake)
    # The first alert gave up after 3 waits; #pressbot waits; #icc still gets its post.
    assert stats.sent == 1 and posted_alert_ids(fake, "#icc") == [other]
    first = alert_row(db, ids[0])
    assert first.status == "pending" and first.last_error == "ratelimited"
    assert first.next_attempt_at is not None and first.next_attempt_at >= NOW + timedelta(seconds=30)
    assert all(alert_row(db, i).attempts == 0 for i in ids[1:])
    later = run(db, fake, now=LATER)
    assert later.sent == 3 and posted_alert_ids(fake) == ids


def test_slack_unreachable_keeps_every_alert_pending_and_the_next_pass_posts_each_once(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    ids = add_alerts(db, 3)
    fake.stop()
    stats = run(db, fake)
    assert (stats.sent, stats.pending, stats.failed) == (0, 3, 0)
    rows = [alert_row(db, i) for i in ids]
    assert all(r.status == "pending" and r.claimed_by is None for r in rows)
    assert rows[0].last_error is not None and "Connection refused" in rows[0].last_error
    assert rows[0].posting_started_at is None  # refused: Slack never saw it, no history check
    fake.start()  # same port: Slack is back
    stats = run(db, fake, now=LATER)
    assert (stats.sent, stats.pending) == (3, 0)
    assert posted_alert_ids(fake) == ids and len(fake.calls("chat.postMessage")) == 3
    assert fake.calls("conversations.history") == []


def test_server_errors_keep_alerts_pending_and_the_retry_checks_history_first(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    ids = add_alerts(db, 2)
    fake.script("chat.postMessage", fakeslack.server_error(503))
    stats = run(db, fake)
    assert (stats.sent, stats.pending) == (0, 2)
    assert alert_row(db, ids[0]).last_error == "HTTP 503"
    stats = run(db, fake, now=LATER)
    assert stats.sent == 2 and posted_alert_ids(fake) == ids
    assert len(fake.calls("conversations.history")) == 1  # only for the alert a 503 may have posted


def test_a_post_accepted_but_whose_answer_was_lost_is_found_in_history_not_posted_again(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    ids = add_alerts(db, 3)
    fake.script("chat.postMessage", fakeslack.accept_then_drop())
    stats = run(db, fake)
    assert stats.sent == 0 and posted_alert_ids(fake) == ids[:1]
    assert alert_row(db, ids[0]).posting_started_at is not None
    stats = run(db, fake, now=LATER)
    assert stats.sent == 3
    assert posted_alert_ids(fake) == ids  # the first one exactly once
    assert len(fake.calls("chat.postMessage")) == 3
    assert alert_row(db, ids[0]).slack_ts == fake.posted("#pressbot")[0]["ts"]


def test_a_crash_after_slack_accepted_and_before_recording_does_not_post_twice(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    [alert_id] = add_alerts(db, 1)
    # A worker claims, commits mark_posting, posts, and dies before record_outcome.
    with db.begin() as session:
        [alert] = outbox.claim_alerts(session, worker="crashed", now=NOW, lease_seconds=LEASE, limit=1)
    with db.begin() as session:
        assert outbox.mark_posting(session, alert_id, NOW, worker="crashed", lease_seconds=LEASE)
    assert deliver.post_alert(fast_client(fake), alert).sent
    # Restart: while the dead worker's lease runs nobody touches the alert; then it is found.
    assert run(db, fake, now=NOW + timedelta(seconds=10)).sent == 0
    stats = run(db, fake, now=NOW + timedelta(seconds=LEASE + 60))
    assert stats.sent == 1 and len(fake.calls("chat.postMessage")) == 1
    row = alert_row(db, alert_id)
    assert (row.status, row.slack_ts) == ("sent", fake.posted("#pressbot")[0]["ts"])


def test_an_unknown_outcome_that_history_cannot_settle_fails_instead_of_guessing(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    [alert_id] = add_alerts(db, 1, posting_started_at=NOW - timedelta(minutes=5), attempts=1)
    fake.always("conversations.history", fakeslack.slack_error("missing_scope"))
    stats = run(db, fake)
    assert stats.failed == 1 and fake.calls("chat.postMessage") == []
    error = alert_row(db, alert_id).last_error or ""
    assert "missing_scope" in error and f"alerts retry {alert_id}" in error
    # The operator looked at the channel and asks for a retry: it is posted, once.
    with db.begin() as session:
        assert outbox.retry_failed(session, [alert_id]) == 1
    assert run(db, fake, now=LATER).sent == 1 and posted_alert_ids(fake) == [alert_id]


def test_a_token_error_on_an_alert_that_may_be_posted_keeps_its_trace_and_warns(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    [first] = add_alerts(db, 1)
    [unknown] = add_alerts(db, 1, posting_started_at=NOW - timedelta(minutes=5), attempts=1)
    fake.always("chat.postMessage", fakeslack.slack_error("invalid_auth"))
    stats = run(db, fake)
    assert stats.failed == 2
    row = alert_row(db, unknown)
    assert row.posting_started_at is not None  # the next attempt looks in the channel first
    assert "may already be in #pressbot" in (row.last_error or "")
    assert alert_row(db, first).last_error == "invalid_auth"


@pytest.mark.parametrize("error", ["invalid_auth", "account_inactive", "token_revoked"])
def test_a_token_error_fails_every_alert_with_it_once_and_is_not_retried(
    db: sessionmaker[Session], fake: FakeSlack, error: str
) -> None:
    ids = add_alerts(db, 3)
    fake.always("chat.postMessage", fakeslack.slack_error(error))
    stats = run(db, fake)
    assert (stats.sent, stats.failed, stats.pending) == (0, 3, 0)
    assert len(fake.calls("chat.postMessage")) == 1  # the others fail without asking again
    assert all((alert_row(db, i).status, alert_row(db, i).last_error) == ("failed", error) for i in ids)
    assert run(db, fake, now=LATER).failed == 0 and len(fake.calls("chat.postMessage")) == 1
    fake.always("chat.postMessage", None)  # the operator fixed the token
    with db.begin() as session:
        assert outbox.retry_failed(session) == 3
    assert run(db, fake, now=LATER).sent == 3 and posted_alert_ids(fake) == ids


def test_a_wrong_token_is_slacks_invalid_auth(db: sessionmaker[Session], fake: FakeSlack) -> None:
    [alert_id] = add_alerts(db, 1)
    stats = run(db, fake, client=fast_client(fake, token="xoxb-wrong"))
    assert stats.failed == 1 and alert_row(db, alert_id).last_error == "invalid_auth"


def test_channel_not_found_fails_that_channels_alerts_and_others_still_post(
    db: sessionmaker[Session], fake: FakeSlack
) -> None:
    missing = [add_alert(db, title=f"Lost {n}", channel="#nowhere") for n in range(2)]
    fine = add_alerts(db, 2)
    stats = run(db, fake)
    assert (stats.sent, stats.failed) == (2, 2)
    assert [alert_row(db, i).last_error for i in missing] == ["channel_not_found"] * 2
    assert [b["channel"] for b in fake.posts()].count("#nowhere") == 1
    assert posted_alert_ids(fake) == fine


PAYLOADS = {
    "channel": "<!channel> urgent",
    "here": "<!here> look",
    "everyone": "<!everyone>",
    "user": "ping <@U012ABC>",
    "usergroup": "<!subteam^S123|@lawyers>",
    "room": "join <#C0123ABC|general>",
    "link": "<http://evil.example|ohchr.org>",
    "entity": "&lt;!channel&gt; &amp; &lt;",
}


def _without_own_markup(text: str, url: str) -> str:
    """The text minus the bot's one link (its label kept) and quote markers: what feed text became."""
    text = re.sub(re.escape(f"<{url}|") + "([^<>]*)>", r"\1", text, count=1)
    return text.replace("\n> ", "\n")


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@pytest.mark.parametrize("payload", list(PAYLOADS.values()), ids=list(PAYLOADS))
def test_feed_text_never_reaches_slack_unescaped(db: sessionmaker[Session], fake: FakeSlack, payload: str) -> None:
    sentence = f"The International Criminal Court {payload} said."
    add_alert(
        db,
        title=f"ICC {payload}",
        feed_name=f"News {payload}",
        summary=f"Summary {payload}",
        matches=(FlagMatch("icc", "International Criminal Court", sentence),),
    )
    assert run(db, fake).sent == 1
    [request] = fake.calls("chat.postMessage")
    body = json.loads(request.raw)  # exactly what reached the server
    for text in _strings(body):
        text = _without_own_markup(text, "https://ishr.example/news/1")
        assert "<" not in text and ">" not in text, text
    escaped = html.escape(payload, quote=False)
    assert escaped in body["blocks"][0]["text"]["text"]  # title
    assert escaped in body["blocks"][-2]["text"]["text"]  # summary, before the buttons
    assert escaped in body["text"]
    # Shown to readers as written: Slack decodes the entities once.
    assert html.unescape(body["blocks"][-2]["text"]["text"]) == f"Summary {payload}"


def test_a_30000_character_release_posts_within_slack_limits(db: sessionmaker[Session], fake: FakeSlack) -> None:
    words = ("reprisals against defenders & <witnesses> " * 800)[:30_000]
    flags = tuple(FlagMatch(f"flag{n}", "reprisals", f"{words[:15_000]} reprisals {words[:15_000]}") for n in range(60))
    alert_id = add_alert(db, title=words[:2_000], content=words, summary=words, matches=flags)
    assert run(db, fake).sent == 1
    [body] = fake.posts()
    assert fakeslack.message_problem(body) is None
    assert len(body["blocks"]) <= 50 and len(body["text"]) <= 40_000
    assert all(len(t) <= 3000 for t in _strings(body["blocks"]))
    summary = body["blocks"][-2]["text"]["text"]
    assert body["blocks"][-1]["type"] == "actions"  # the buttons survive the cut
    assert summary.endswith("…") and not summary[:-1].endswith("&am")  # cut at a word, never in an entity
    assert alert_row(db, alert_id).status == "sent"


# ---------------------------------------------------------------- no token, dry run, pacing, workers


def test_without_a_token_alerts_are_printed_and_stay_pending(db: sessionmaker[Session], fake: FakeSlack) -> None:
    ids = add_alerts(db, 2)
    lines: list[str] = []
    stats = run(db, fake, token=None, echo=lines)
    assert (stats.printed, stats.pending, stats.sent) == (2, 2, 0)
    assert fake.requests == []
    text = "\n".join(lines)
    assert "Release 0" in text and "https://ishr.example/news/1" in text and "icc:" in text
    assert all(alert_row(db, i).status == "pending" and alert_row(db, i).claimed_by is None for i in ids)


def test_dry_run_neither_posts_nor_changes_alerts(db: sessionmaker[Session], fake: FakeSlack) -> None:
    [alert_id] = add_alerts(db, 1)
    stats = run(db, fake, dry_run=True)
    assert stats.sent == 0 and stats.printed == 1 and fake.requests == []
    row = alert_row(db, alert_id)
    assert (row.status, row.attempts, row.claimed_by, row.posting_started_at) == ("pending", 0, None, None)


def test_posts_to_one_channel_are_paced(db: sessionmaker[Session], fake: FakeSlack) -> None:
    add_alerts(db, 3)
    add_alert(db, title="Other channel", channel="#icc")
    assert run(db, fake, pacer=deliver.Pacer(0.3)).sent == 4
    times = [r.at for r in fake.calls("chat.postMessage") if r.body["channel"] == "#pressbot"]
    assert all(later - earlier >= 0.28 for earlier, later in itertools.pairwise(times))


def test_pacer_spaces_each_channel_on_its_own_clock() -> None:
    now = [100.0]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds

    pacer = deliver.Pacer(1.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait("#a")
    pacer.wait("#b")
    pacer.wait("#a")
    now[0] += 5
    pacer.wait("#a")
    assert sleeps == [1.0]


def test_concurrent_workers_post_each_alert_exactly_once(db: sessionmaker[Session], fake: FakeSlack) -> None:
    ids = add_alerts(db, 12)
    results: list[DeliveryStats] = []

    def work(name: str) -> None:
        results.append(run(db, fake, worker=name))

    threads = [threading.Thread(target=work, args=(f"w{n}",)) for n in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(r.sent for r in results) == 12
    assert sorted(posted_alert_ids(fake)) == ids and len(fake.calls("chat.postMessage")) == 12


def test_an_alert_shows_only_the_flags_routed_to_its_channel(db: sessionmaker[Session], fake: FakeSlack) -> None:
    both = (
        FlagMatch("icc", "ICC", "The ICC ruled."),
        FlagMatch("reprisal", "reprisals", "Defenders faced reprisals."),
    )
    # The policy's decisions, stored on the rows when the pass created them (test_policy.py).
    add_alert(db, channel="#icc", matches=both, flags=["icc"])
    add_alert(db, title="Same release, default channel", matches=both, flags=["reprisal"])
    flags = {"icc": {"en": ["ICC"], "channel": "#icc"}, "reprisal": {"en": ["reprisals"]}}
    assert run(db, fake, flags=flags).sent == 2
    icc, default = fake.posts()
    assert "*icc*" in json.dumps(icc["blocks"]) and "reprisal" not in json.dumps(icc["blocks"])
    assert "*reprisal*" in json.dumps(default["blocks"]) and "*icc*" not in json.dumps(default["blocks"])


def test_a_feed_channel_takes_every_flag(db: sessionmaker[Session], fake: FakeSlack) -> None:
    both = (FlagMatch("icc", "ICC", "The ICC ruled."), FlagMatch("reprisal", "reprisals", "Reprisals."))
    add_alert(db, channel="#reprisals", matches=both, flags=["icc", "reprisal"])
    feeds = (FeedSource(name="ISHR", url="https://ishr.example/feed", channel="#reprisals"),)
    flags = {"icc": {"en": ["ICC"], "channel": "#icc"}}
    assert run(db, fake, feeds=feeds, flags=flags).sent == 1
    blocks = json.dumps(fake.posts()[0]["blocks"])
    assert "*icc*" in blocks and "*reprisal*" in blocks


# ---------------------------------------------------------------- the message, pure


def alert_to_send(**fields: Any) -> AlertToSend:
    base: dict[str, Any] = {
        "alert_id": 42,
        "channel": "#pressbot",
        "item_id": 7,
        "feed_name": "ISHR",
        "title": "ICC: reprisals against witnesses must stop",
        "url": "https://ishr.ch/news/icc-reprisals/",
        "published": datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        "summary": "The International Service for Human Rights calls on the Court to protect witnesses.",
        "matches": (
            FlagMatch("icc", "ICC", "Witnesses before the ICC have been threatened."),
            FlagMatch("reprisal", "reprisals", "Such reprisals against witnesses must stop."),
        ),
    }
    base.update(fields)
    return AlertToSend(**base)


def test_build_message_layout() -> None:
    message = deliver.build_message(alert_to_send())
    title, context, icc, reprisal, summary, actions = message["blocks"]
    assert title["text"]["text"] == "*<https://ishr.ch/news/icc-reprisals/|ICC: reprisals against witnesses must stop>*"
    assert context["elements"][0]["text"] == "ISHR · 2 Nov 2026, 09:30 UTC"
    assert icc["text"]["text"] == ":triangular_flag_on_post: *icc*\n> Witnesses before the *ICC* have been threatened."
    assert reprisal["text"]["text"].endswith("> Such *reprisals* against witnesses must stop.")
    assert summary["text"]["text"].startswith("The International Service")
    assert all(b.get("text", {}).get("verbatim", True) for b in message["blocks"])
    assert [element["action_id"] for element in actions["elements"]] == [
        "pressbot_relevant", "pressbot_not_relevant", "pressbot_alert_menu"]
    assert [element.get("value") for element in actions["elements"]] == ["42", "42", None]
    assert actions["elements"][2]["options"][0]["text"]["text"] == "Mute this feed for 7 days"
    assert message["text"] == "[icc, reprisal] ICC: reprisals against witnesses must stop — ISHR"
    assert message["metadata"] == {"event_type": "pressbot_alert", "event_payload": {"alert_id": 42}}


@pytest.mark.parametrize(
    ("url", "link"),
    [
        ("https://ishr.ch/a?x=1&y=2", "<https://ishr.ch/a?x=1&amp;y=2|"),
        ("https://ishr.ch/a|b<c>d", "<https://ishr.ch/a%7Cb%3Cc%3Ed|"),
        ("https://ishr.ch/a b", "<https://ishr.ch/a%20b|"),
        ("javascript:alert(1)", None),
        ("ftp://ishr.ch/file", None),
        ("//ishr.ch/relative", None),
        (None, None),
    ],
    ids=["ampersand", "control-characters", "space", "javascript", "ftp", "no-scheme", "none"],
)
def test_only_http_urls_become_links_and_cannot_break_out(url: str | None, link: str | None) -> None:
    text = deliver.build_message(alert_to_send(url=url))["blocks"][0]["text"]["text"]
    if link is None:
        assert "<" not in text and text == "*ICC: reprisals against witnesses must stop*"
    else:
        assert text.startswith("*" + link) and text.count("<") == 1


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("<!channel>", "&lt;!channel&gt;"),
        ("<@U012ABC>", "&lt;@U012ABC&gt;"),
        ("<#C0123|general>", "&lt;#C0123|general&gt;"),
        ("<http://evil.example|ohchr.org>", "&lt;http://evil.example|ohchr.org&gt;"),
        ("&lt;", "&amp;lt;"),
        ("Tom & Jerry", "Tom &amp; Jerry"),
    ],
    ids=["channel", "user", "room", "disguised-link", "pre-escaped", "ampersand"],
)
def test_escape_slack(raw: str, escaped: str) -> None:
    assert deliver.escape_slack(raw) == escaped


@given(st.text())
def test_escaped_text_never_opens_a_control_sequence(text: str) -> None:
    escaped = deliver.escape_slack(text)
    assert "<!" not in escaped and "<@" not in escaped and "<" not in escaped and ">" not in escaped
    assert escaped.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&") == text


@settings(max_examples=60, deadline=None)
@given(st.text(min_size=1), st.text(), st.text(min_size=1))
def test_no_feed_text_opens_a_control_sequence_anywhere_in_a_message(title: str, summary: str, sentence: str) -> None:
    alert = alert_to_send(
        title=title, summary=summary, feed_name=sentence, matches=(FlagMatch("icc", "ICC", sentence),)
    )
    message = deliver.build_message(alert)
    for text in _strings({"blocks": message["blocks"], "text": message["text"]}):
        text = _without_own_markup(text, "https://ishr.ch/news/icc-reprisals/")
        assert "<" not in text and ">" not in text


@pytest.mark.parametrize("limit", [5, 10, 50, 3000])
def test_escape_within_fits_the_limit_and_cuts_at_a_word(limit: int) -> None:
    text = "Judges & <prosecutors> of the International Criminal Court " * 200
    escaped = deliver.escape_within(text, limit)
    assert len(escaped) <= limit and escaped.endswith("…")
    assert not escaped.rstrip("…").endswith(("&", "&a", "&am", "&amp", "&l", "&lt", "&g", "&gt"))


def test_the_phrase_is_shown_bold_in_a_long_sentence_cut_around_it() -> None:
    sentence = "word " * 500 + "the International Criminal Court ruled " + "more " * 500
    match = FlagMatch("icc", "international criminal court", sentence)
    text = deliver.build_message(alert_to_send(matches=(match,)))["blocks"][2]["text"]["text"]
    assert "*International Criminal Court*" in text and text.count("…") == 2 and len(text) < 600


def test_format_for_terminal_is_readable() -> None:
    text = deliver.format_for_terminal(alert_to_send())
    assert text.splitlines()[0] == "[icc, reprisal] ICC: reprisals against witnesses must stop  (alert 42 → #pressbot)"
    assert "https://ishr.ch/news/icc-reprisals/" in text and "icc: “Witnesses before the ICC" in text


# ---------------------------------------------------------------- Slack's answers


@pytest.mark.parametrize(
    ("action", "permanent", "maybe_posted", "error"),
    [
        (fakeslack.slack_error("channel_not_found"), True, False, "channel_not_found"),
        (fakeslack.slack_error("msg_too_long"), True, False, "msg_too_long"),
        (fakeslack.slack_error("internal_error"), False, True, "internal_error"),
        (fakeslack.server_error(500), False, True, "HTTP 500"),
        (fakeslack.rate_limited(7), False, False, "ratelimited"),
        (fakeslack.drop(), False, True, None),
    ],
    ids=["channel_not_found", "msg_too_long", "internal_error", "http-500", "429-exhausted", "dropped"],
)
def test_post_alert_classifies_slacks_answer(
    fake: FakeSlack, action: fakeslack.Action, permanent: bool, maybe_posted: bool, error: str | None
) -> None:
    fake.always("chat.postMessage", action)
    outcome = deliver.post_alert(fast_client(fake), alert_to_send())
    assert not outcome.sent and outcome.permanent is permanent and outcome.maybe_posted is maybe_posted
    if error is not None:
        assert outcome.error == error
    if error == "ratelimited":
        assert outcome.retry_after_seconds == 7


def test_find_posted_pages_through_history_by_metadata(fake: FakeSlack) -> None:
    client = fast_client(fake)
    for n in range(450):  # more than two pages of 200
        fake.messages["C0PRESSBOT"].append({"type": "message", "ts": f"{1_790_000_000 + n}.000001", "text": "x"})
    fake.messages["C0PRESSBOT"].insert(
        0,
        {
            "type": "message",
            "ts": "1789999999.000001",
            "text": "old",
            "metadata": {"event_type": "pressbot_alert", "event_payload": {"alert_id": 5}},
        },
    )
    assert deliver.find_posted(client, "#pressbot", 5, None) == "1789999999.000001"
    assert deliver.find_posted(client, "#pressbot", 6, None) is None
    assert len(fake.calls("conversations.history")) == 6
    after = datetime.fromtimestamp(1_790_000_100, UTC)
    assert deliver.find_posted(client, "C0PRESSBOT", 5, after) is None


def test_find_posted_reports_unreadable_history(fake: FakeSlack) -> None:
    fake.always("conversations.history", fakeslack.slack_error("not_in_channel"))
    with pytest.raises(DeliveryError, match="not_in_channel") as info:
        deliver.find_posted(fast_client(fake), "#pressbot", 1, None)
    assert info.value.permanent


# ---------------------------------------------------------------- the commands


@pytest.fixture
def cli_env(tmp_path: Path, fake: FakeSlack) -> dict[str, str]:
    config = write_config(tmp_path, [{"name": "ISHR", "url": "https://ishr.example/feed"}])
    return {
        "PRESSBOT_CONFIG": str(config),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_API_URL": fake.url,
        "SLACK_CHANNEL": "#pressbot",
    }


def invoke(env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env=env)


def migrated_db(env: dict[str, str]) -> sessionmaker[Session]:
    assert invoke(env, "db", "upgrade").exit_code == 0
    return open_db(env["DATABASE_URL"])


def test_alerts_list_shows_pending_and_failed_alerts(cli_env: dict[str, str]) -> None:
    factory = migrated_db(cli_env)
    pending = add_alert(factory, title="Pending one")
    failed = add_alert(factory, title="Failed one", status="failed", last_error="channel_not_found", channel="#x")
    add_alert(factory, title="Sent one", status="sent", slack_ts="1.1", sent_at=NOW)
    result = invoke(cli_env, "alerts", "list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    assert [(a["id"], a["status"], a["last_error"]) for a in listed] == [
        (failed, "failed", "channel_not_found"),
        (pending, "pending", None),
    ]
    assert listed[0]["feed"] == "ISHR" and listed[0]["channel"] == "#x"
    table = invoke(cli_env, "alerts", "list", "--status", "sent")
    assert table.exit_code == 0 and "Sent one" in table.output and "Pending one" not in table.output


def test_alerts_retry_by_id_and_all(cli_env: dict[str, str]) -> None:
    factory = migrated_db(cli_env)
    failed = [add_alert(factory, title=f"F{n}", status="failed", last_error="invalid_auth") for n in range(3)]
    result = invoke(cli_env, "alerts", "retry", str(failed[0]))
    assert (result.exit_code, result.output) == (0, "1 alert set to pending\n")
    assert invoke(cli_env, "alerts", "retry", "--all").output == "2 alerts set to pending\n"
    assert alert_row(factory, failed[2]).status == "pending"
    assert invoke(cli_env, "alerts", "retry").exit_code == 2


def test_slack_test_posts_one_message_and_prints_its_ts(cli_env: dict[str, str], fake: FakeSlack) -> None:
    result = invoke(cli_env, "slack", "test")
    assert result.exit_code == 0, result.output
    [message] = fake.posted("#pressbot")
    assert result.output == f"ok: posted to #pressbot (ts {message['ts']})\n"


@pytest.mark.parametrize("error", ["invalid_auth", "channel_not_found", "not_in_channel"])
def test_slack_test_prints_slacks_exact_error(cli_env: dict[str, str], fake: FakeSlack, error: str) -> None:
    fake.always("chat.postMessage", fakeslack.slack_error(error))
    result = invoke(cli_env, "slack", "test")
    assert result.exit_code == 1
    assert result.stderr == f"Slack error posting to #pressbot: {error}\n"


def test_slack_test_without_a_token_is_a_configuration_error(cli_env: dict[str, str], fake: FakeSlack) -> None:
    result = invoke({**cli_env, "SLACK_BOT_TOKEN": ""}, "slack", "test")
    assert result.exit_code == 2 and "SLACK_BOT_TOKEN" in result.stderr and len(result.stderr.splitlines()) == 1
    assert fake.requests == []


# ---------------------------------------------------------------- the whole pass


def _rss(items: list[tuple[str, str, datetime]]) -> str:
    entries = "".join(
        f"<item><title>{html.escape(title)}</title><link>https://rights.example/news/{n}</link>"
        f'<guid isPermaLink="false">r-{n}</guid><pubDate>{published:%a, %d %b %Y %H:%M:%S} GMT</pubDate>'
        f"<description>{html.escape(text)}</description></item>"
        for n, (title, text, published) in enumerate(items)
    )
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>Rights</title>{entries}</channel></rss>'


def test_a_first_poll_posts_only_recent_flagged_releases_then_nothing(
    feed_server: Any, tmp_path: Path, fake: FakeSlack
) -> None:
    now = datetime.now(UTC)
    text = "Several defenders faced reprisals for cooperating with the United Nations."
    old = [(f"Old release {n}", text, now - timedelta(days=10 + n)) for n in range(50)]
    recent = [
        ("<!channel> Defenders face reprisals", text, now - timedelta(hours=2)),
        ("Witnesses threatened <@U012ABC>", text, now - timedelta(hours=3)),
    ]
    url = feed_server.add("/rights.xml", _rss(old + recent))
    config = write_config(tmp_path, [{"name": "Rights", "url": url}], extra="[fulltext]\nenabled = false\n")
    env = {
        "PRESSBOT_CONFIG": str(config),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'poll.db'}",
        "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
        "PRESSBOT_FEEDS": "",
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_API_URL": fake.url,
        "SLACK_CHANNEL": "#pressbot",
    }
    first = invoke(env, "poll", "--json")
    assert first.exit_code == 0, first.output
    summary = json.loads(first.stdout.strip().splitlines()[-1])
    assert (summary["alerts_sent"], summary["alerts_pending"]) == (2, 0)
    assert summary["alerts_held_back"] == 50
    bodies = fake.posts()
    assert len(bodies) == 2
    assert len({b["metadata"]["event_payload"]["alert_id"] for b in bodies}) == 2
    for body in bodies:  # parse may drop what looks like markup; whatever is left is escaped
        link = re.match(r"\*<(https://rights\.example/news/\d+)\|", body["blocks"][0]["text"]["text"])
        assert link is not None
        assert all("<" not in _without_own_markup(t, link.group(1)) for t in _strings(body))
    assert any("&lt;@U012ABC&gt;" in body["text"] for body in bodies)
    second = invoke(env, "poll", "--json")
    assert second.exit_code == 0 and json.loads(second.stdout.strip().splitlines()[-1])["alerts_sent"] == 0
    assert len(fake.posts()) == 2


def _sentences(text: str) -> list[str]:
    return [part for part in text.strip().rstrip("…").split(". ") if part.strip()]


def test_a_summary_has_at_most_three_sentences_in_slack_and_query(
    feed_server: Any, tmp_path: Path, fake: FakeSlack
) -> None:
    """Issue 14 item 20: a release of many short sentences is summed up in three at most."""
    text = " ".join(
        f"Defenders faced reprisals in city {n}." if n % 2 else f"The court heard witness {n} today."
        for n in range(12)
    )  # twelve sentences of ~34 characters: a 400-character summary has room for ten
    release = ("Defenders face reprisals", text, datetime.now(UTC) - timedelta(hours=1))
    url = feed_server.add("/rights.xml", _rss([release]))
    config = write_config(tmp_path, [{"name": "Rights", "url": url}], extra="[fulltext]\nenabled = false\n")
    env = {
        "PRESSBOT_CONFIG": str(config),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'poll.db'}",
        "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
        "PRESSBOT_FEEDS": "",
        "SLACK_BOT_TOKEN": fake.token,
        "SLACK_API_URL": fake.url,
        "SLACK_CHANNEL": "#pressbot",
    }
    polled = invoke(env, "poll", "--json")
    assert polled.exit_code == 0, polled.output
    queried = invoke(env, "query", "--format", "json")
    assert queried.exit_code == 0, queried.output

    (body,) = fake.posts()
    posted = body["blocks"][-2]["text"]["text"]
    (hit,) = json.loads(queried.stdout)
    assert 1 <= len(_sentences(posted)) <= 3, posted
    assert 1 <= len(_sentences(hit["summary"])) <= 3, hit["summary"]
    assert "Defenders faced reprisals in city 1" in posted and "Defenders faced reprisals in city 1" in hit["summary"]
