"""Digests through ``pressbot run``'s jobs with a driven clock, against a local feed server and
the fake Slack Web API reached by the real WebClient (issue 19)."""

from __future__ import annotations

import json
import threading
from collections.abc import Collection, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.cli.stages import load_page_stages
from bot.config import Settings, load
from bot.scheduler.worker import Worker
from bot.schema import Alert, DigestRow, Item
from bot.store.verdicts import record_verdict
from tests import fakeslack
from tests.conftest import open_db, write_config
from tests.fakeslack import FakeSlack
from tests.feedserver import FeedServer

START = datetime(2026, 10, 21, 12, tzinfo=UTC)  # a Wednesday; Zurich leaves summer time on the 25th
WEEK_1_END = datetime(2026, 10, 26, 8, tzinfo=UTC)  # Monday 09:00 in Zurich (CET)
WEEK_2_END = datetime(2026, 11, 2, 8, tzinfo=UTC)
DIGEST = '[[digests]]\nname = "weekly"\nchannel = "#digest"\nevery = "weekly mon 09:00"\ntz = "Europe/Zurich"\n'
REPRISAL = "Several defenders faced reprisals for cooperating with the UN."
ICC = "Judges of the International Criminal Court issued an arrest warrant."


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class Newsroom:
    """One RSS feed whose releases appear as the driven clock reaches them."""

    def __init__(self, server: FeedServer) -> None:
        self.server = server
        self.items: list[str] = []
        self.publish_feed()

    def publish(self, key: str, title: str, text: str, at: datetime) -> None:
        self.items.insert(0, (
            f"<item><title>{title}</title><link>https://ngo.example/{key}</link><guid>{key}</guid>"
            f"<pubDate>{format_datetime(at)}</pubDate><description>{text}</description></item>"
        ))
        self.publish_feed()

    def publish_feed(self) -> None:
        body = ('<?xml version="1.0"?><rss version="2.0"><channel><title>NGO</title><link>https://ngo.example/</link>'
                + "".join(self.items) + "</channel></rss>")
        self.server.add("/feed.xml", body)


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    # Alerts go to a channel Slack does not know (failed at once, never paced): this is about digests.
    with FakeSlack(channels={"digest": "C0DIGEST00"}) as slack:
        yield slack


def settings_for(tmp_path: Path, server: FeedServer, fake: FakeSlack, database_url: str) -> Settings:
    feeds = [{"name": "NGO", "url": server.url("/feed.xml"), "interval": "1h"}]
    config = write_config(tmp_path, feeds, extra='[slack]\nchannel = "#elsewhere"\n' + DIGEST)
    return load({"PRESSBOT_CONFIG": str(config), "DATABASE_URL": database_url, "PRESSBOT_ALLOW_PRIVATE_NETWORKS": "1",
                 "SLACK_BOT_TOKEN": fake.token, "SLACK_API_URL": fake.url})


def digest_posts(fake: FakeSlack) -> list[dict[str, Any]]:
    """The digests' first messages in the channel, oldest first."""
    return [message for message in fake.posted("#digest")
            if (message.get("metadata") or {}).get("event_type") == "pressbot_digest"]


def text_of(message: dict[str, Any]) -> str:
    return json.dumps(message.get("blocks", []), ensure_ascii=False)


def new_worker(settings: Settings, factory: sessionmaker[Session], clock: Clock) -> Worker:
    return Worker(settings, factory, page_stages=load_page_stages, clock=clock, echo=lambda text: None)


def run_steps(workers: list[Worker], clock: Clock, steps: list[datetime], room: Newsroom,
              releases: dict[datetime, list[tuple[str, str, str]]], race: Collection[datetime] = ()) -> None:
    """At each time: publish what is due, then every worker runs its pass and delivery jobs at once.

    At a time in ``race`` the workers run only their delivery jobs, starting together.
    """
    for moment in steps:
        clock.now = moment
        for key, title, text in releases.get(moment, []):
            room.publish(key, title, text, moment)
        start = threading.Barrier(len(workers))

        def jobs(worker: Worker, moment: datetime = moment, start: threading.Barrier = start) -> None:
            if moment not in race:
                worker.run_job("due-feeds", worker.run_due)
            start.wait(30)
            worker.run_job("delivery", worker.deliver)

        threads = [threading.Thread(target=jobs, args=(worker,)) for worker in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)


def every(start: datetime, end: datetime, step: timedelta, *extra: datetime) -> list[datetime]:
    times = set(extra)
    while start <= end:
        times.add(start)
        start += step
    return sorted(times)


RELEASES = {
    START: [("r1", "Defenders punished after Geneva session", REPRISAL)],
    START + timedelta(days=1, hours=12): [
        ("r2", "Court issues a warrant", ICC), ("r3", "Annual report out", "Health."),
    ],
    START + timedelta(days=4): [("r4", "Warrant, and reprisals against witnesses", f"{ICC} {REPRISAL}")],
    WEEK_1_END + timedelta(minutes=1): [("r5", "Activists detained after UN visit", REPRISAL)],
    WEEK_1_END + timedelta(days=3, hours=16): [("r6", "ICC judges confirm charges", ICC)],
}


@pytest.mark.postgres
def test_two_workers_on_postgresql_post_one_digest_a_week_with_that_weeks_releases(
    tmp_path: Path, feed_server: FeedServer, fake: FakeSlack, postgres_url: str
) -> None:
    settings = settings_for(tmp_path, feed_server, fake, postgres_url)
    clock = Clock(START)
    factories = [open_db(postgres_url), open_db(postgres_url)]
    workers = [new_worker(settings, factory, clock) for factory in factories]
    # At each scheduled time (and a few seconds after), both workers' delivery jobs start together.
    race = [end + timedelta(seconds=seconds) for end in (WEEK_1_END, WEEK_2_END) for seconds in (1, 2)]
    steps = every(START, WEEK_2_END + timedelta(hours=12), timedelta(hours=12), *RELEASES, *race)
    room = Newsroom(feed_server)
    run_steps(workers, clock, [step for step in steps if step < WEEK_1_END], room, RELEASES)
    with factories[0].begin() as session:  # someone clicks "Not relevant" on r1's alert
        (alert_id,) = session.scalars(select(Alert.id).join(Item).where(Item.url == "https://ngo.example/r1")).all()
        record_verdict(session, alert_id=alert_id, user_id="U0READER", relevant=False, now=clock.now)
    # Slack takes half a second over each post: the other worker looks for due digests meanwhile.
    fake.always("chat.postMessage", fakeslack.accept_then_hang(0.5))
    run_steps(workers, clock, [step for step in steps if step >= WEEK_1_END], room, RELEASES, race)

    first, second = digest_posts(fake)  # exactly one per week
    assert "20 Oct" not in text_of(first)
    assert "Digest “weekly”: 19 Oct 09:00 – 26 Oct 2026 09:00 (Europe/Zurich)" in text_of(first)
    assert "3 flagged releases — reprisal 2 (1 marked not relevant) · icc 2" in text_of(first)
    assert "*reprisal* — 2 releases, 1 marked not relevant" in text_of(first)
    for title in ("Defenders punished after Geneva session", "Court issues a warrant",
                  "Warrant, and reprisals against witnesses"):
        assert title in text_of(first) and title not in text_of(second)
    assert "Annual report out" not in text_of(first)
    # Newest first within each flag.
    assert text_of(first).index("Warrant, and reprisals") < text_of(first).index("Defenders punished")
    assert "Digest “weekly”: 26 Oct 09:00 – 2 Nov 2026 09:00 (Europe/Zurich)" in text_of(second)
    assert "2 flagged releases — reprisal 1 · icc 1" in text_of(second)
    assert "Activists detained after UN visit" in text_of(second)  # first seen a minute after week 1 ended
    assert "Late" not in text_of(first) + text_of(second)
    with factories[0]() as session:
        rows = session.scalars(select(DigestRow).order_by(DigestRow.period_start)).all()
    assert [(row.status, row.period_end) for row in rows] == [
        ("skipped", datetime(2026, 10, 19, 7, tzinfo=UTC)), ("sent", WEEK_1_END), ("sent", WEEK_2_END)]
    for factory in factories:
        factory.kw["bind"].dispose()


def test_a_worker_stopped_over_the_scheduled_time_posts_it_once_on_its_next_pass_marked_late(
    tmp_path: Path, feed_server: FeedServer, fake: FakeSlack
) -> None:
    database_url = f"sqlite:///{tmp_path / 'late.db'}"
    settings = settings_for(tmp_path, feed_server, fake, database_url)
    clock = Clock(START)
    room = Newsroom(feed_server)
    run_steps([new_worker(settings, open_db(database_url), clock)], clock,
              [START, START + timedelta(days=4)], room, RELEASES)
    assert digest_posts(fake) == []
    # Stopped from Sunday until Tuesday: restarted, the first pass posts the missed week.
    restarted = new_worker(settings, open_db(database_url), clock)
    run_steps([restarted], clock, [WEEK_1_END + timedelta(days=1, hours=2), WEEK_1_END + timedelta(days=1, hours=3)],
              room, {})
    (late,) = digest_posts(fake)
    assert ":hourglass: Late: due Mon 26 Oct 09:00 (Europe/Zurich); nothing ran then." in text_of(late)
    assert "2 flagged releases — reprisal 2 · icc 1" in text_of(late)  # r1 and r4: r2 was never polled


def test_a_digest_whose_answer_was_lost_is_found_in_the_channel_not_posted_again(
    tmp_path: Path, feed_server: FeedServer, fake: FakeSlack
) -> None:
    database_url = f"sqlite:///{tmp_path / 'lost.db'}"
    settings = settings_for(tmp_path, feed_server, fake, database_url)
    clock = Clock(START)
    room = Newsroom(feed_server)
    run_steps([new_worker(settings, open_db(database_url), clock)], clock,
              [START, START + timedelta(days=4)], room, RELEASES)
    fake.script("chat.postMessage", fakeslack.accept_then_drop())  # Slack has it; the worker never hears
    run_steps([new_worker(settings, open_db(database_url), clock)], clock,
              [WEEK_1_END + timedelta(seconds=30)], room, {})
    assert len(digest_posts(fake)) == 1
    restarted = new_worker(settings, open_db(database_url), clock)
    run_steps([restarted], clock, [WEEK_1_END + timedelta(hours=1)], room, {})
    assert len(digest_posts(fake)) == 1
    assert fake.calls("conversations.history")  # looked for it by its metadata first
    with open_db(database_url)() as session:
        (row,) = session.scalars(select(DigestRow).where(DigestRow.status != "skipped")).all()
    assert row.status == "sent" and row.slack_ts == digest_posts(fake)[0]["ts"]


def test_a_period_is_recorded_once_and_a_second_insert_leaves_the_transaction_usable(
    db: Any, tmp_path: Path, feed_server: FeedServer, fake: FakeSlack
) -> None:
    from bot.digest import due_period
    from bot.store import digests as digest_store

    (spec,) = settings_for(tmp_path, feed_server, fake, "sqlite://").digests
    period = due_period(spec, WEEK_1_END + timedelta(minutes=1), datetime(2026, 10, 12, 7, tzinfo=UTC))
    assert period is not None
    with db.begin() as session:
        first = digest_store.record_period(session, spec, period, now=START, messages=[{"text": "a"}], releases=0)
        again = digest_store.record_period(session, spec, period, now=START, messages=[{"text": "b"}], releases=0)
        assert first is not None and again is None
        assert digest_store.newest_period_start(session, spec.name) == period.start  # still usable
    with db() as session:
        assert session.get_one(DigestRow, first).messages == [{"text": "a"}]


def test_a_thread_part_whose_answer_was_lost_is_found_among_the_replies_not_posted_again(
    tmp_path: Path, feed_server: FeedServer, fake: FakeSlack
) -> None:
    database_url = f"sqlite:///{tmp_path / 'thread.db'}"
    settings = settings_for(tmp_path, feed_server, fake, database_url)
    clock = Clock(START)
    room = Newsroom(feed_server)
    many = {START: [(f"m{n}", f"Human rights defenders face reprisals after cooperating with the UN, case {n}",
                     REPRISAL) for n in range(150)]}
    run_steps([new_worker(settings, open_db(database_url), clock)], clock, [START],
              room, many)
    # The first part is posted; Slack takes the second into the thread, and the answer is lost.
    fake.script("chat.postMessage", fakeslack.ok(), fakeslack.accept_then_drop())
    run_steps([new_worker(settings, open_db(database_url), clock)], clock,
              [WEEK_1_END + timedelta(seconds=30)], room, {})
    restarted = new_worker(settings, open_db(database_url), clock)
    run_steps([restarted], clock, [WEEK_1_END + timedelta(hours=1)], room, {})
    (first,) = digest_posts(fake)
    replies = fake.replies("#digest", first["ts"])
    parts = [reply["metadata"]["event_payload"]["part"] for reply in replies]
    with open_db(database_url)() as session:
        (row,) = session.scalars(select(DigestRow).where(DigestRow.status != "skipped")).all()
    assert row.status == "sent" and row.parts_sent == len(row.messages or ()) >= 2
    assert parts == list(range(1, row.parts_sent))  # each thread part once, in order
    assert fake.calls("conversations.replies")  # the lost one was looked for in the thread
    shown = "".join(json.dumps(message["blocks"]) for message in [first, *replies])
    assert all(f"case {n}>" in shown for n in range(150))
