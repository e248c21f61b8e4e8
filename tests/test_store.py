"""The store's item functions on a real database: upsert, flags and their alerts, one release across feeds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from bot.records import (
    AlertDecision,
    AlertStatus,
    ArticleText,
    FeedSource,
    FlagMatch,
    HoldReason,
    ParsedItem,
    Route,
    StoredFeed,
    StoredItem,
)
from bot.schema import Alert, FlagMatchRow, Item
from bot.store import feeds as feed_store
from bot.store import items as item_store

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
ICC = FlagMatch("icc", "International Criminal Court", "The International Criminal Court ruled.")
REPRISAL = FlagMatch("reprisal", "reprisals", "Defenders faced reprisals.")


def parsed(key: str, title: str = "A release", url: str | None = None, content: str = "Body.") -> ParsedItem:
    return ParsedItem(key=key, url=url or f"https://ishr.example/{key}", title=title, teaser="", content=content,
                      published=NOW - timedelta(hours=1), updated=None, guid=key)


def decision(channel: str = "#pressbot", *flags: str, hold: HoldReason | None = None) -> AlertDecision:
    return AlertDecision(channel=channel, flags=flags or ("icc",), route=Route.DEFAULT, hold=hold)


def feeds(db: sessionmaker[Session], *names: str) -> dict[str, StoredFeed]:
    with db.begin() as session:
        sources = [FeedSource(name=name, url=f"https://{name.lower()}.example/") for name in names]
        feed_store.sync_feeds(session, sources)
    with db() as session:
        found = feed_store.stored_feeds(session, list(feed_store.feed_names(session)))
    return {feed.name: feed for feed in found.values()}


def upsert(db: sessionmaker[Session], feed: StoredFeed, items: list[ParsedItem],
           articles: dict[str, ArticleText] | None = None) -> item_store.UpsertResult:
    with db.begin() as session:
        return item_store.upsert_items(session, feed, items, articles or {}, NOW)


def flag(db: sessionmaker[Session], item: StoredItem, matches: list[FlagMatch],
         decisions: list[AlertDecision]) -> list[AlertDecision]:
    with db.begin() as session:
        return item_store.record_flags(session, item, matches, decisions, now=NOW)


def alerts(db: sessionmaker[Session]) -> list[tuple[int, str, str, list[str] | None]]:
    with db() as session:
        rows = session.execute(select(Alert.item_id, Alert.channel, Alert.status, Alert.flags).order_by(Alert.id))
        return [tuple(row) for row in rows]  # type: ignore[misc]


# -- upsert ------------------------------------------------------------------------------


def test_upsert_inserts_new_items_then_skips_what_did_not_change(db: sessionmaker[Session]) -> None:
    ishr = feeds(db, "ISHR")["ISHR"]
    first = upsert(db, ishr, [parsed("a"), parsed("b")])
    again = upsert(db, ishr, [parsed("a"), parsed("b")])

    assert [item.key for item in first.new] == ["a", "b"] and all(item.item_id for item in first.new)
    assert first.new[0].feed_name == "ISHR" and first.new[0].first_seen == NOW
    assert (again.new, again.updated, again.unchanged) == ([], [], 2)


def test_upsert_updates_a_changed_item_in_place(db: sessionmaker[Session]) -> None:
    ishr = feeds(db, "ISHR")["ISHR"]
    [stored] = upsert(db, ishr, [parsed("a")]).new
    result = upsert(db, ishr, [parsed("a", title="A corrected release")])

    assert result.new == [] and [item.item_id for item in result.updated] == [stored.item_id]
    assert result.updated[0].title == "A corrected release"
    with db() as session:
        assert session.scalars(select(Item.title)).all() == ["A corrected release"]


def test_upsert_keeps_the_page_text_and_counts_failed_attempts(db: sessionmaker[Session]) -> None:
    ishr = feeds(db, "ISHR")["ISHR"]
    failed = {"a": ArticleText(url="https://ishr.example/a", text=None, error="HTTP 503")}
    [stored] = upsert(db, ishr, [parsed("a")], failed).new
    retried = upsert(db, ishr, [parsed("a")], {"a": ArticleText(url="https://ishr.example/a", text="Full text.")})

    assert stored.full_text is None and [item.full_text for item in retried.updated] == ["Full text."]
    with db() as session:
        row = session.scalars(select(Item)).one()
        assert (row.full_text_attempts, row.full_text_error) == (2, None)
        assert item_store.keys_wanting_full_text(session, ishr.feed_id, max_attempts=3) == set()


# -- flags and their alerts --------------------------------------------------------------


def test_record_flags_creates_one_alert_per_decided_channel_once(db: sessionmaker[Session]) -> None:
    [item] = upsert(db, feeds(db, "ISHR")["ISHR"], [parsed("a")]).new
    decisions = [decision("#icc", "icc"), decision("#pressbot", "reprisal")]

    created = flag(db, item, [ICC, REPRISAL], decisions)
    again = flag(db, item, [ICC, REPRISAL], decisions)

    assert created == decisions and again == []
    assert alerts(db) == [
        (item.item_id, "#icc", "pending", ["icc"]),
        (item.item_id, "#pressbot", "pending", ["reprisal"]),
    ]
    with db() as session:
        assert sorted(session.scalars(select(FlagMatchRow.flag))) == ["icc", "reprisal"]
        assert item_store.flags_of(session, item.item_id) == ["icc", "reprisal"]


def test_a_held_decision_creates_a_held_alert(db: sessionmaker[Session]) -> None:
    [item] = upsert(db, feeds(db, "ISHR")["ISHR"], [parsed("a")]).new
    flag(db, item, [ICC], [decision(hold=HoldReason.FIRST_PASS)])
    with db() as session:
        assert session.execute(select(Alert.status, Alert.hold_reason)).all() == [("held", "first_pass")]


def test_a_waiting_alert_takes_the_flags_now_routed_to_its_channel(db: sessionmaker[Session]) -> None:
    [item] = upsert(db, feeds(db, "ISHR")["ISHR"], [parsed("a")]).new
    flag(db, item, [ICC], [decision("#pressbot", "icc")])
    flag(db, item, [ICC, REPRISAL], [decision("#pressbot", "icc", "reprisal")])
    assert alerts(db) == [(item.item_id, "#pressbot", "pending", ["icc", "reprisal"])]


def test_unflagging_withdraws_unsent_alerts_but_not_one_being_posted(db: sessionmaker[Session]) -> None:
    [quiet, busy] = upsert(db, feeds(db, "ISHR")["ISHR"], [parsed("a"), parsed("b")]).new
    flag(db, quiet, [ICC], [decision()])
    flag(db, busy, [ICC], [decision()])
    with db.begin() as session:
        row = session.scalars(select(Alert).where(Alert.item_id == busy.item_id)).one()
        row.posting_started_at = NOW

    assert flag(db, quiet, [], []) == [] and flag(db, busy, [], []) == []
    assert alerts(db) == [(busy.item_id, "#pressbot", AlertStatus.PENDING, ["icc"])]
    with db() as session:
        assert session.scalars(select(FlagMatchRow)).all() == []


# -- one release, several feeds ----------------------------------------------------------


def test_a_release_in_two_feeds_by_its_stable_key_is_alerted_once_per_channel(db: sessionmaker[Session]) -> None:
    both = feeds(db, "UN News", "UN News Africa")
    [all_news] = upsert(db, both["UN News"], [parsed("un-news:1151234", url="https://news.un.org/a")]).new
    [africa] = upsert(db, both["UN News Africa"], [parsed("un-news:1151234", url="https://news.un.org/b")]).new

    assert len(flag(db, all_news, [ICC], [decision()])) == 1
    assert flag(db, africa, [ICC], [decision(), decision("#africa")]) == [decision("#africa")]


def test_the_same_link_in_another_feed_is_the_same_release(db: sessionmaker[Session]) -> None:
    both = feeds(db, "ISHR", "ISHR French")
    [english] = upsert(db, both["ISHR"], [parsed("1", url="https://ishr.example/x")]).new
    [french] = upsert(db, both["ISHR French"], [parsed("99", url="https://ishr.example/x")]).new
    flag(db, english, [ICC], [decision()])
    assert flag(db, french, [ICC], [decision()]) == []


def test_plain_guids_and_links_shared_within_one_feed_are_no_identity(db: sessionmaker[Session]) -> None:
    both = feeds(db, "ISHR", "ICJ")
    [ishr_one] = upsert(db, both["ISHR"], [parsed("1")]).new
    [icj_one] = upsert(db, both["ICJ"], [parsed("1", url="https://icj.example/1")]).new
    press_page = "https://ishr.example/press"
    first, second = upsert(db, both["ISHR"], [parsed("p1", url=press_page), parsed("p2", url=press_page)]).new

    for item in (ishr_one, icj_one, first, second):
        assert len(flag(db, item, [ICC], [decision()])) == 1


def test_a_held_copy_elsewhere_does_not_stand_in_for_an_alert(db: sessionmaker[Session]) -> None:
    both = feeds(db, "UN News", "UN News Africa")
    [old] = upsert(db, both["UN News"], [parsed("un-news:7")]).new
    [fresh] = upsert(db, both["UN News Africa"], [parsed("un-news:7")]).new
    flag(db, old, [ICC], [decision(hold=HoldReason.FIRST_PASS)])
    assert flag(db, fresh, [ICC], [decision()]) == [decision()]
