"""Verdicts, feedback and mutes (issue 19): the alert's buttons, the verdict's edit through the
outbox, `pressbot feedback`, `/pressbot missed|unmute`, and a muted feed on a driven clock."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot import deliver
from bot.cli import cli
from bot.cli.stages import load_page_stages
from bot.config import Settings, load
from bot.deliver.message import NOT_RELEVANT_ACTION, OVERFLOW_ACTION, RELEVANT_ACTION
from bot.records import AlertToSend, FlagMatch, VerdictMark
from bot.scheduler.worker import Worker
from bot.schema import Alert, AlertChange, Feed, Item, VerdictRow
from bot.socketmode import SlashCommandHandler
from bot.store import verdicts as verdict_store
from bot.verdicts import ActionHandler, answer_feedback, parse_alert_action, parse_feedback_command
from tests import fakeslack
from tests.conftest import open_db, write_config
from tests.fakeslack import FakeSlack
from tests.fakesocketmode import FakeSocketModeSlack
from tests.feedserver import FeedServer
from tests.helpers import ICC_WARRANT, releases_rss

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def click(channel_id: str, message_ts: str, action_id: str = NOT_RELEVANT_ACTION, value: str = "1",
          user_id: str = "U0ANA", action_ts: str = "1700000100.000001", selected: str | None = None) -> dict[str, Any]:
    """A block_actions payload as Slack sends it (trimmed to what pressbot reads, plus a little)."""
    action: dict[str, Any] = {"action_id": action_id, "block_id": "pressbot_alert_actions", "action_ts": action_ts}
    if selected is not None:
        action.update(type="overflow", selected_option={"value": selected, "text": {"type": "plain_text",
                                                                                     "text": selected}})
    else:
        action.update(type="button", value=value)
    return {
        "type": "block_actions", "user": {"id": user_id}, "team": {"id": "T111"},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel_id},
        "channel": {"id": channel_id}, "actions": [action],
    }


# -- the message (pure) -------------------------------------------------------------------------


def alert(**fields: Any) -> AlertToSend:
    values: dict[str, Any] = {
        "alert_id": 7, "channel": "#pressbot", "item_id": 1, "feed_name": "ISHR", "title": "ICC witnesses",
        "url": "https://ishr.example/1", "published": T0, "summary": "A summary.",
        "matches": (FlagMatch("icc", "ICC", "Witnesses before the ICC."),),
    }
    values.update(fields)
    return AlertToSend(**values)


def test_every_alert_has_the_buttons_and_a_verdict_shows_who_judged_it() -> None:
    plain = deliver.build_message(alert())
    assert fakeslack.message_problem(plain) is None
    assert plain["blocks"][-1]["type"] == "actions" and "Marked" not in json.dumps(plain)
    judged = deliver.build_message(alert(verdicts=(VerdictMark("U0ANA", False), VerdictMark("U0BEN", True),
                                                   VerdictMark("U0CAT", False))))
    context = judged["blocks"][-2]
    assert context["type"] == "context"
    assert context["elements"][0]["text"] == "Marked not relevant by <@U0ANA>, <@U0CAT> · Marked relevant by <@U0BEN>"
    assert fakeslack.message_problem(judged) is None


def test_only_a_slack_user_id_becomes_a_mention() -> None:
    message = deliver.build_message(alert(verdicts=(VerdictMark("<!channel>", False),)))
    assert "<!channel>" not in json.dumps(message) and "&lt;!channel&gt;" in json.dumps(message)


# -- the click, parsed (pure) -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"type": "view_submission"}, "type 'view_submission'"),
        (click("C1", "1.2", action_id="someone_elses_button"), "action id 'someone_elses_button' is not pressbot's"),
        (click("C1", "1.2", action_id=OVERFLOW_ACTION, selected="delete_everything"), "overflow option"),
        (click("C1", "not-a-ts"), "without a channel, message ts or user"),
        ({**click("C1", "1.2"), "actions": []}, "without exactly one action"),
        ("not even a dict", "type 'str'"),
    ],
    ids=["other-type", "foreign-action", "foreign-option", "bad-ts", "no-action", "not-a-dict"],
)
def test_anything_but_pressbots_own_click_is_named_in_one_line(payload: Any, reason: str) -> None:
    found = parse_alert_action(payload)
    assert isinstance(found, str) and reason in found and "\n" not in found


def test_pressbots_clicks_are_read() -> None:
    verdict = parse_alert_action(click("C1", "1.2", action_id=RELEVANT_ACTION, value="9"))
    mute = parse_alert_action(click("C1", "1.2", action_id=OVERFLOW_ACTION, selected="pressbot_mute_7d"))
    assert not isinstance(verdict, str) and verdict.relevant is True and verdict.value == "9"
    assert not isinstance(mute, str) and mute.mute_days == 7 and mute.relevant is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("icc visa", None),
        ("missed <https://x.example/a?utm_source=s|x.example/a> icc",
         ("missed", ("https://x.example/a?utm_source=s", "icc"))),
        ('unmute "UN News"', ("unmute", ("UN News",))),
        ("unmute UN News", ("unmute", ("UN News",))),
        ("missed https://x.example/a", "give the release's URL and the flag"),
        ("unmute", "give the feed's name"),
    ],
    ids=["search", "missed", "unmute-quoted", "unmute-words", "missed-no-flag", "unmute-no-name"],
)
def test_the_feedback_words_of_the_slash_command(text: str, expected: Any) -> None:
    found = parse_feedback_command(text)
    if isinstance(expected, tuple):
        assert found is not None and not isinstance(found, str) and (found.word, found.args) == expected
    elif expected is None:
        assert found is None
    else:
        assert isinstance(found, str) and expected in found


# -- a click on a posted alert, through the outbox -----------------------------------------------


REPRISAL = "Defenders faced reprisals for cooperating with the UN Human Rights Council."
NOTHING = "The annual report covers education and health budgets in detail."


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack() as server:
        yield server


def settings_for(tmp_path: Path, fake: FakeSlack, feeds: list[dict[str, Any]]) -> Settings:
    config = write_config(tmp_path, feeds)
    return load({"PRESSBOT_CONFIG": str(config), "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1", "SLACK_BOT_TOKEN": fake.token,
                 "SLACK_API_URL": fake.url, "SLACK_CHANNEL": "#pressbot", "DATABASE_URL": "sqlite://"})


@pytest.fixture
def posted(
    feed_server: FeedServer, tmp_path: Path, fake: FakeSlack, database_url: str
) -> Iterator[tuple[Worker, sessionmaker[Session], Clock]]:
    """A worker on a driven clock whose first pass posted two alerts (icc, reprisal) of feed "Rights"."""
    clock = Clock(T0)
    feed_server.add("/rights.xml", releases_rss([("icc-1", ICC_WARRANT, T0 - timedelta(hours=2)),
                                                 ("rep-1", REPRISAL, T0 - timedelta(hours=1)),
                                                 ("plain-1", NOTHING, T0 - timedelta(hours=1))]))
    settings = settings_for(tmp_path, fake, [{"name": "Rights", "url": feed_server.url("/rights.xml"),
                                              "interval": "1h"}])
    factory = open_db(database_url)
    worker = Worker(settings, factory, page_stages=load_page_stages, clock=clock, echo=lambda text: None)
    worker.sync_feeds()
    worker.run_due()
    assert len(fake.posts()) == 2
    yield worker, factory, clock
    factory.kw["bind"].dispose()


def first_message(fake: FakeSlack) -> tuple[str, str, str]:
    """(channel id, ts, alert id) of the first alert in #pressbot."""
    message = fake.posted("#pressbot")[0]
    return "C0PRESSBOT", message["ts"], str(message["metadata"]["event_payload"]["alert_id"])


def count(factory: sessionmaker[Session], table: Any) -> int:
    with factory() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_not_relevant_records_one_verdict_and_edits_the_message_once_even_when_slack_retries(
    posted: tuple[Worker, sessionmaker[Session], Clock], fake: FakeSlack,
) -> None:
    worker, factory, clock = posted
    channel_id, ts, alert_id = first_message(fake)
    handler = ActionHandler(factory, clock=clock)
    payload = click(channel_id, ts, value=alert_id)
    assert handler.handle(payload) == "verdict"
    assert handler.handle(payload) == "repeat"  # Slack delivered the same click again
    worker.deliver()
    worker.deliver()
    [update] = fake.calls("chat.update")
    assert update.body["ts"] == ts and update.body["channel"] == channel_id
    assert "Marked not relevant by <@U0ANA>" in json.dumps(update.body["blocks"])
    assert "Marked not relevant by <@U0ANA>" in json.dumps(fake.posted("#pressbot")[0]["blocks"])
    assert count(factory, VerdictRow) == 1 and count(factory, AlertChange) == 1
    assert len(fake.posts()) == 2  # nothing posted anew


def test_the_same_click_handled_twice_at_once_is_one_verdict_and_one_edit(
    posted: tuple[Worker, sessionmaker[Session], Clock], fake: FakeSlack,
) -> None:
    worker, factory, clock = posted
    channel_id, ts, alert_id = first_message(fake)
    handler = ActionHandler(factory, clock=clock)
    payload = click(channel_id, ts, value=alert_id)
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def take() -> None:
        start.wait()
        outcomes.append(handler.handle(payload))

    threads = [threading.Thread(target=take) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    worker.deliver()
    assert sorted(outcomes) == ["repeat", "verdict"]
    assert count(factory, VerdictRow) == 1 and count(factory, AlertChange) == 1
    assert len(fake.calls("chat.update")) == 1


def test_a_second_users_verdict_and_a_changed_mind_edit_again(
    posted: tuple[Worker, sessionmaker[Session], Clock], fake: FakeSlack,
) -> None:
    worker, factory, clock = posted
    channel_id, ts, alert_id = first_message(fake)
    handler = ActionHandler(factory, clock=clock)
    handler.handle(click(channel_id, ts, value=alert_id))
    worker.deliver()
    clock.now += timedelta(minutes=1)
    handler.handle(click(channel_id, ts, action_id=RELEVANT_ACTION, value=alert_id, user_id="U0BEN"))
    clock.now += timedelta(minutes=1)
    handler.handle(click(channel_id, ts, action_id=RELEVANT_ACTION, value=alert_id, action_ts="1700000200.000001"))
    worker.deliver()
    updates = fake.calls("chat.update")
    assert len(updates) == 2
    assert "Marked relevant by <@U0BEN>, <@U0ANA>" in json.dumps(updates[-1].body["blocks"])
    assert "not relevant" not in json.dumps(updates[-1].body["blocks"])
    assert count(factory, VerdictRow) == 2


def test_a_foreign_action_or_a_message_pressbot_did_not_post_is_ignored_and_logged_once(
    posted: tuple[Worker, sessionmaker[Session], Clock], fake: FakeSlack, caplog: pytest.LogCaptureFixture,
) -> None:
    worker, factory, clock = posted
    channel_id, ts, alert_id = first_message(fake)
    handler = ActionHandler(factory, clock=clock)
    with caplog.at_level(logging.INFO, logger="bot.verdicts"):
        assert handler.handle(click(channel_id, ts, action_id="other_app_approve", value=alert_id)) == "ignored"
        assert handler.handle(click(channel_id, "1699999999.000001", value=alert_id)) == "ignored"
        assert handler.handle(click("C0ICCALERT", ts, value=alert_id)) == "ignored"
        assert handler.handle(click(channel_id, ts, value="999")) == "ignored"  # not the alert this message is
    worker.deliver()
    lines = [record.getMessage() for record in caplog.records if record.name == "bot.verdicts"]
    assert len(lines) == 4 and all(line.startswith("ignored a Slack action") for line in lines), lines
    assert "other_app_approve" in lines[0] and "no alert pressbot posted" in lines[1]
    assert count(factory, VerdictRow) == 0 and fake.calls("chat.update") == []


def test_a_verdicts_edit_whose_answer_was_lost_is_not_made_twice(
    posted: tuple[Worker, sessionmaker[Session], Clock], fake: FakeSlack,
) -> None:
    worker, factory, clock = posted
    channel_id, ts, alert_id = first_message(fake)
    ActionHandler(factory, clock=clock).handle(click(channel_id, ts, value=alert_id))
    fake.script("chat.update", fakeslack.accept_then_drop())  # Slack edited it; the answer never came
    worker.deliver()
    with factory() as session:
        [change] = session.scalars(select(AlertChange))
        assert change.status == "pending" and change.posting_started_at is not None
    clock.now += timedelta(hours=2)  # past the retry backoff
    worker.deliver()
    assert len(fake.calls("chat.update")) == 1
    assert len(fake.calls("conversations.history")) >= 1  # read the message instead of editing it again
    with factory() as session:
        assert session.scalars(select(AlertChange.status)).all() == ["sent"]


# -- mute: a driven week ----------------------------------------------------------------------


def test_a_feed_muted_for_7_days_is_stored_and_held_then_alerts_resume_without_the_held_ones(
    posted: tuple[Worker, sessionmaker[Session], Clock], fake: FakeSlack, feed_server: FeedServer,
) -> None:
    worker, factory, clock = posted
    channel_id, ts, _ = first_message(fake)
    handler = ActionHandler(factory, clock=clock)
    mute = click(channel_id, ts, action_id=OVERFLOW_ACTION, selected="pressbot_mute_7d")
    assert handler.handle(mute) == "mute"
    assert handler.handle(mute) == "repeat"  # delivered twice
    releases = [("icc-1", ICC_WARRANT, T0 - timedelta(hours=2)), ("rep-1", REPRISAL, T0 - timedelta(hours=1))]
    for day in (1, 3, 6):  # new flagged releases while muted
        clock.now = T0 + timedelta(days=day)
        releases.append((f"muted-{day}", f"Day {day}. {ICC_WARRANT}", clock.now - timedelta(minutes=30)))
        feed_server.add("/rights.xml", releases_rss(releases))
        worker.run_due()
        worker.deliver()
    assert len(fake.posts()) == 2
    with factory() as session:
        held = session.execute(
            select(Item.title, Alert.status, Alert.hold_reason).join(Alert, Alert.item_id == Item.id)
            .where(Item.title.like("muted-%"))
        ).all()
    assert sorted((title[:7], status, why) for title, status, why in held) == [
        (f"muted-{day}", "held", "muted") for day in (1, 3, 6)]
    clock.now = T0 + timedelta(days=7, minutes=1)
    releases.append(("after", f"After the mute. {ICC_WARRANT}", clock.now - timedelta(minutes=5)))
    feed_server.add("/rights.xml", releases_rss(releases))
    worker.run_due()
    worker.deliver()
    clock.now += timedelta(hours=2)
    worker.run_due()
    worker.deliver()
    titles = [post["text"] for post in fake.posts()]
    assert len(titles) == 3 and "after" in titles[-1] and not any("muted-" in title for title in titles), titles


# -- the feedback commands ---------------------------------------------------------------------


def run_cli(env: dict[str, str], *args: str) -> Any:
    return CliRunner().invoke(cli, list(args), env=env)


def cli_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    config = tmp_path / "pressbot.toml"
    return {"PRESSBOT_CONFIG": str(config), "DATABASE_URL": database_url, "PRESSBOT_FEEDS": "", "SLACK_BOT_TOKEN": ""}


def one_line(result: Any, code: int = 2) -> str:
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in result.output, result.output
    return str(lines[0])


def test_ten_verdicts_exported_give_flags_test_exactly_their_confusion_matrix(
    feed_server: FeedServer, tmp_path: Path, fake: FakeSlack, database_url: str,
) -> None:
    clock = Clock(T0)
    texts = [(f"icc-{n}", f"Release {n}. {ICC_WARRANT}", T0 - timedelta(minutes=n)) for n in range(5)]
    texts += [(f"rep-{n}", f"Release {n}. {REPRISAL}", T0 - timedelta(minutes=10 + n)) for n in range(3)]
    texts += [(f"plain-{n}", f"Release {n}. {NOTHING}", T0 - timedelta(minutes=20 + n)) for n in range(2)]
    feed_server.add("/rights.xml", releases_rss(texts))
    settings = settings_for(tmp_path, fake, [{"name": "Rights", "url": feed_server.url("/rights.xml")}])
    factory = open_db(database_url)
    worker = Worker(settings, factory, page_stages=load_page_stages, clock=clock, echo=lambda text: None)
    worker.sync_feeds()
    worker.run_due()
    handler = ActionHandler(factory, clock=clock)
    by_slug = {message["text"].split("] ", 1)[1].split(":", 1)[0]: message for message in fake.posted("#pressbot")}
    judged = {"icc-0": False, "icc-1": False, "icc-2": True, "icc-3": True, "icc-4": True,
              "rep-0": False, "rep-1": True, "rep-2": True}
    for n, (slug, relevant) in enumerate(judged.items()):
        message = by_slug[slug]
        action_id = RELEVANT_ACTION if relevant else NOT_RELEVANT_ACTION
        handler.handle(click("C0PRESSBOT", message["ts"], action_id=action_id,
                             value=str(message["metadata"]["event_payload"]["alert_id"]), user_id=f"U0USER{n}"))
    env = {**cli_env(tmp_path, database_url), "PRESSBOT_CONFIG": str(settings.config_path)}
    missed = "https://rights.example/news/plain-0?utm_source=mail"
    assert run_cli(env, "feedback", "missed", missed, "icc").exit_code == 0
    assert run_cli(env, "feedback", "missed", "https://rights.example/news/plain-1/", "reprisal").exit_code == 0
    export = tmp_path / "feedback.jsonl"
    result = run_cli(env, "feedback", "export", "-o", str(export))
    assert result.exit_code == 0 and "10 verdicts written" in result.stderr, result.output
    lines = [json.loads(line) for line in export.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 10 and all(len(line["labels"]) == 1 for line in lines)
    assert {"title", "summary", "content", "labels"} <= set(lines[0])
    measured = run_cli(env, "flags", "test", str(export), "--json")
    assert measured.exit_code == 0, measured.output
    scores = json.loads(measured.stdout)["flags"]
    confusion = {flag: {key: scores[flag][key] for key in ("tp", "fp", "fn", "tn")} for flag in ("icc", "reprisal")}
    assert confusion == {"icc": {"tp": 3, "fp": 2, "fn": 1, "tn": 0}, "reprisal": {"tp": 2, "fp": 1, "fn": 1, "tn": 0}}
    status = json.loads(run_cli(env, "status", "--json").stdout)["verdicts"]
    assert status["icc"] == {"relevant": 3, "not_relevant": 2, "missed": 1, "precision": 0.6}
    assert status["reprisal"]["precision"] == pytest.approx(2 / 3) and status["reprisal"]["missed"] == 1
    listed = json.loads(run_cli(env, "feedback", "list", "--json").stdout)
    assert [entry["verdict"] for entry in listed].count("missed") == 2 and len(listed) == 10
    assert "Verdicts" in run_cli(env, "status").stdout
    factory.kw["bind"].dispose()


def test_bad_feedback_and_unmute_input_is_one_line_and_exit_2(
    posted: tuple[Worker, sessionmaker[Session], Clock], tmp_path: Path, database_url: str,
) -> None:
    worker, factory, _ = posted
    env = {**cli_env(tmp_path, database_url), "PRESSBOT_CONFIG": str(worker.settings.config_path)}
    assert "no stored release has the URL" in one_line(
        run_cli(env, "feedback", "missed", "https://rights.example/news/nope", "icc"))
    assert "unknown flag 'reprisals'" in one_line(
        run_cli(env, "feedback", "missed", "https://rights.example/news/plain-1", "reprisals"))
    assert "no feed named 'Nope'" in one_line(run_cli(env, "feeds", "unmute", "Nope"))
    assert "--since" in one_line(run_cli(env, "feedback", "export", "--since", "someday"))
    assert "--since" in one_line(run_cli(env, "feedback", "list", "--since", "someday"))
    assert "cannot write" in one_line(run_cli(env, "feedback", "export", "-o", str(tmp_path / "no" / "such" / "f")))
    assert count(factory, VerdictRow) == 0


def test_feeds_list_and_status_show_the_mute_and_who_set_it_and_unmute_ends_it(
    posted: tuple[Worker, sessionmaker[Session], Clock], fake: FakeSlack, tmp_path: Path, database_url: str,
) -> None:
    worker, factory, _ = posted
    channel_id, ts, _ = first_message(fake)
    slack = FakeSocketModeSlack().start()  # its /commands/… endpoint stands in for the response_url
    try:
        mute = {**click(channel_id, ts, action_id=OVERFLOW_ACTION, selected="pressbot_mute_7d"),
                "response_url": f"{slack.base}/commands/1"}
        ActionHandler(factory).handle(mute)
        [answer] = slack.wait_for(lambda: slack.responses)
    finally:
        slack.stop()
    assert answer["response_type"] == "ephemeral" and "\n" not in answer["text"]
    assert answer["text"].startswith("Rights is muted until") and "`/pressbot unmute Rights`" in answer["text"]
    env = {**cli_env(tmp_path, database_url), "PRESSBOT_CONFIG": str(worker.settings.config_path)}
    [listed] = json.loads(run_cli(env, "feeds", "list", "--json").stdout)
    assert listed["muted_by"] == "U0ANA" and listed["muted_until"] is not None
    [feed] = json.loads(run_cli(env, "status", "--json").stdout)["feeds"]
    assert feed["muted_by"] == "U0ANA" and feed["muted_until"] == listed["muted_until"]
    assert "muted until" in run_cli(env, "feeds", "list").stdout and "U0ANA" in run_cli(env, "status").stdout
    result = run_cli(env, "feeds", "unmute", "rights")
    assert result.exit_code == 0 and "Rights unmuted" in result.stdout
    [listed] = json.loads(run_cli(env, "feeds", "list", "--json").stdout)
    assert listed["muted_until"] is None and listed["muted_by"] is None
    assert "was not muted" in run_cli(env, "feeds", "unmute", "Rights").stdout


def test_feedback_list_never_creates_or_migrates_a_database(tmp_path: Path) -> None:
    config = write_config(tmp_path, [])
    database = tmp_path / "missing.db"
    result = run_cli({"PRESSBOT_CONFIG": str(config), "DATABASE_URL": f"sqlite:///{database}"}, "feedback", "list")
    one_line(result)
    assert not database.exists()


# -- /pressbot missed, /pressbot unmute ------------------------------------------------------------


def test_the_slash_command_reports_a_miss_and_unmutes_in_one_ephemeral_line(
    posted: tuple[Worker, sessionmaker[Session], Clock],
) -> None:
    worker, factory, clock = posted
    flags = worker.settings.flag_rules.names
    handler = SlashCommandHandler(factory, web_client=None, clock=clock, flags=flags)  # type: ignore[arg-type]

    def ask(text: str) -> str:
        reply = handler.feedback({"text": text, "user_id": "U0ANA"})
        assert reply is not None and reply["response_type"] == "ephemeral" and "\n" not in reply["text"]
        return str(reply["text"])

    assert ask("missed <https://rights.example/news/plain-1/?utm_medium=x> reprisal").startswith("recorded:")
    assert "already recorded" in ask("missed https://rights.example/news/plain-1 reprisal")
    assert "no stored release has the URL" in ask("missed https://rights.example/news/zzz icc")
    assert "unknown flag" in ask("missed https://rights.example/news/plain-1 nope")
    assert "no feed named" in ask("unmute Nope")
    with factory.begin() as session:
        feed_id = session.scalar(select(Feed.id))
        assert feed_id is not None
        verdict_store.mute_feed(session, feed_id, until=clock.now + timedelta(days=7), by="U0BEN")
    assert "Rights unmuted" in ask("unmute Rights")
    assert handler.feedback({"text": "icc visa"}) is None  # a search
    assert answer_feedback("missed", factory, flags=flags, user_id="U0ANA", now=clock.now) is not None
    with factory() as session:
        [(user, kind)] = session.execute(select(VerdictRow.user_id, VerdictRow.kind)).all()
    assert (user, kind) == ("U0ANA", "missed")
