"""The verdict table and feed mutes in the store (issue 19): what the Slack buttons, the
feedback commands, status and digests read and write."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from bot import policy
from bot.records import AlertPolicy, HoldReason, StoredItem, VerdictKind
from bot.schema import Alert, AlertChange, Feed, VerdictRow
from bot.store import changes, feeds, outbox
from bot.store import verdicts as store
from tests.helpers import NOW, add_alert

SENT = {"status": "sent", "slack_ts": "1700000000.000100", "slack_channel_id": "C0ALERTS"}


def verdict_rows(db: sessionmaker[Session]) -> list[tuple[int | None, str, bool]]:
    with db() as session:
        query = select(VerdictRow.alert_id, VerdictRow.user_id, VerdictRow.relevant)
        return [(alert_id, user_id, relevant) for alert_id, user_id, relevant in session.execute(query)]


def test_a_later_click_by_the_same_user_replaces_theirs_and_a_repeat_changes_nothing(
    db: sessionmaker[Session],
) -> None:
    alert_id = add_alert(db, **SENT)
    with db.begin() as session:
        first = store.record_verdict(session, alert_id=alert_id, user_id="U1", relevant=False, now=NOW,
                                     action_ts="1700000001.000001")
        again = store.record_verdict(session, alert_id=alert_id, user_id="U1", relevant=False, now=NOW,
                                     action_ts="1700000001.000001")
    assert first.changed and not again.changed
    assert first.verdict.flags == ("icc",) and first.verdict.kind == VerdictKind.ALERT
    with db.begin() as session:
        other = store.record_verdict(session, alert_id=alert_id, user_id="U2", relevant=True, now=NOW)
        changed = store.record_verdict(session, alert_id=alert_id, user_id="U1", relevant=True, now=NOW,
                                       action_ts="1700000009.000001")
        late = store.record_verdict(session, alert_id=alert_id, user_id="U1", relevant=False, now=NOW,
                                    action_ts="1700000005.000001")  # an older click delivered late
    assert other.changed and changed.changed and not late.changed
    assert sorted(verdict_rows(db)) == [(alert_id, "U1", True), (alert_id, "U2", True)]


def test_only_a_message_pressbot_posted_names_an_alert(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db, **SENT)
    with db() as session:
        assert store.alert_of_message(session, "C0ALERTS", "1700000000.000100") == alert_id
        assert store.alert_of_message(session, "C0ALERTS", "1700000000.999999") is None
        assert store.alert_of_message(session, "C0OTHER", "1700000000.000100") is None


def test_the_alert_carries_its_verdicts_for_the_edit(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db, **SENT)
    with db.begin() as session:
        store.record_verdict(session, alert_id=alert_id, user_id="U1", relevant=False, now=NOW)
        assert changes.queue_alert_edit(session, alert_id, NOW)
        assert not changes.queue_alert_edit(session, alert_id, NOW)  # one waiting edit shows both
        store.record_verdict(session, alert_id=alert_id, user_id="U2", relevant=True, now=NOW + timedelta(seconds=1))
    with db() as session:
        [alert] = outbox.alerts_to_send(session, [alert_id])
        assert session.scalar(select(func.count()).select_from(AlertChange)) == 1
    assert [(mark.user_id, mark.relevant) for mark in alert.verdicts] == [("U1", False), ("U2", True)]


def test_counts_per_flag_and_tallies_per_release(db: sessionmaker[Session]) -> None:
    first = add_alert(db, **SENT)
    second = add_alert(db, title="Reprisals against ICC witnesses", url="https://ishr.example/news/2", **SENT)
    with db.begin() as session:
        store.record_verdict(session, alert_id=first, user_id="U1", relevant=False, now=NOW)
        store.record_verdict(session, alert_id=first, user_id="U2", relevant=False, now=NOW)
        store.record_verdict(session, alert_id=second, user_id="U1", relevant=True, now=NOW)
        item_id = store.find_release(session, "https://ishr.example/news/2")
        assert item_id is not None
        store.record_missed(session, item_id=item_id, flag="reprisal", user_id="U1", now=NOW)
        assert not store.record_missed(session, item_id=item_id, flag="reprisal", user_id="U1", now=NOW).changed
    with db() as session:
        counts = store.verdict_counts(session, ["icc", "reprisal", "other"])
        tallies = store.verdict_tallies(session, [item_id])
        first_item = session.scalar(select(Alert.item_id).where(Alert.id == first))
        assert first_item is not None
        assert store.not_relevant_by_flag(session, [first_item, item_id]) == {"icc": 1}  # two users, one release
        assert store.not_relevant_by_flag(session, [item_id]) == {}
        listed = store.list_verdicts(session)
    assert (counts["icc"].relevant, counts["icc"].not_relevant, counts["icc"].missed) == (1, 2, 0)
    assert counts["icc"].precision == pytest.approx(1 / 3)
    assert (counts["reprisal"].missed, counts["reprisal"].precision) == (1, None)
    assert counts["other"].precision is None
    assert (tallies[item_id].relevant, tallies[item_id].not_relevant) == (1, 0)
    assert [verdict.kind for verdict in listed].count(VerdictKind.MISSED) == 1


@pytest.mark.parametrize(
    ("asked", "stored"),
    [
        ("https://ishr.example/news/1", "https://ishr.example/news/1"),
        ("https://ishr.example/news/1/", "https://ishr.example/news/1"),
        ("https://ISHR.example/news/1?utm_source=x&fbclid=y#top", "https://ishr.example/news/1"),
        ("https://ishr.example/news/1", "https://ishr.example/news/1/?utm_campaign=weekly"),
        ("https://ishr.example/news/1?id=7", "https://ishr.example/news/1/?id=7&utm_medium=mail"),
    ],
    ids=["as-stored", "trailing-slash", "tracking-asked", "tracking-stored", "real-parameter-kept"],
)
def test_a_missed_release_is_found_by_its_url_as_stored_or_canonicalised(
    db: sessionmaker[Session], asked: str, stored: str
) -> None:
    add_alert(db, url=stored)
    with db() as session:
        assert store.find_release(session, asked) is not None


@pytest.mark.parametrize(
    "asked", ["https://ishr.example/news/2", "https://ishr.example/news/1?id=8", "not a url", "https://other.example/news/1"],
    ids=["other-path", "other-parameter", "no-url", "other-host"],
)
def test_no_stored_release_has_another_url(db: sessionmaker[Session], asked: str) -> None:
    add_alert(db, url="https://ishr.example/news/1?id=7")
    with db() as session:
        assert store.find_release(session, asked) is None


def test_a_mute_is_stored_read_and_ended(db: sessionmaker[Session]) -> None:
    add_alert(db)
    with db.begin() as session:
        feed_id = store.feed_id_named(session, "ishr")
        assert feed_id is not None and store.feed_id_named(session, "nope") is None
        mute = store.mute_feed(session, feed_id, until=NOW + timedelta(days=7), by="U1")
    assert mute.active(NOW) and not mute.active(NOW + timedelta(days=7))
    with db.begin() as session:
        assert [m.name for m in store.muted_feeds(session, NOW)] == ["ISHR"]
        assert store.muted_feeds(session, NOW + timedelta(days=8)) == []
        assert feeds.stored_feed(session, feed_id).muted_until == NOW + timedelta(days=7)
        assert store.unmute_feed(session, feed_id) == mute
        assert store.feed_mute(session, feed_id) is None
        assert session.get_one(Feed, feed_id).muted_by is None


def test_a_muted_feed_holds_its_alerts_until_the_mute_ends() -> None:
    rules = AlertPolicy(default_channel="#pressbot", flag_channels={}, window=timedelta(hours=48))
    item = StoredItem(item_id=1, feed_id=1, feed_name="ISHR", key="k", url=None, title="t", teaser="", content="",
                      full_text=None, published=NOW, first_seen=NOW)

    def hold(muted_until: object) -> HoldReason | None:
        feed = feeds.StoredFeed(feed_id=1, name="ISHR", channel=None, full_text=False, first_pass=False,
                                pruned_before=None, muted_until=muted_until)  # type: ignore[arg-type]
        [decision] = policy.decide_alerts(item, {"icc"}, feed, rules, now=NOW, first_pass=False, check_pruned=True)
        return decision.hold

    assert hold(NOW + timedelta(seconds=1)) == HoldReason.MUTED
    assert hold(NOW) is None and hold(None) is None
