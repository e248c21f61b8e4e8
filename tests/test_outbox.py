"""The Slack outbox on a real database: claims, leases, outcomes, retries."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy.orm import Session, sessionmaker

from bot.records import DeliveryOutcome
from bot.store import outbox
from tests.conftest import open_db
from tests.helpers import NOW, add_alert, alert_row

NO_JITTER = outbox.Backoff(base_seconds=60, max_seconds=3600, random=lambda: 0.0)


def claim(
    session_factory: sessionmaker[Session],
    worker: str = "w1",
    now: datetime = NOW,
    limit: int = 10,
    lease: float = 300,
) -> list[int]:
    with session_factory.begin() as session:
        alerts = outbox.claim_alerts(session, worker=worker, now=now, lease_seconds=lease, limit=limit)
    return [alert.alert_id for alert in alerts]


def test_claim_returns_due_pending_alerts_with_item_and_matches(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db, summary="Short summary.")
    with db.begin() as session:
        [alert] = outbox.claim_alerts(session, worker="w1", now=NOW, lease_seconds=300, limit=10)
    assert alert.alert_id == alert_id
    assert (alert.feed_name, alert.title, alert.url, alert.summary) == (
        "ISHR",
        "ICC prosecutor seeks warrants",
        "https://ishr.example/news/1",
        "Short summary.",
    )
    assert alert.matches[0].flag == "icc" and alert.published == NOW - timedelta(hours=1)
    assert not alert.outcome_unknown
    row = alert_row(db, alert_id)
    assert row.claimed_by == "w1" and row.claimed_until == NOW + timedelta(seconds=300)


def test_claim_falls_back_to_the_teaser_when_no_summary_yet(db: sessionmaker[Session]) -> None:
    add_alert(db, content="Teaser text about the ICC.")
    with db.begin() as session:
        [alert] = outbox.claim_alerts(session, worker="w1", now=NOW, lease_seconds=300, limit=10)
    assert alert.summary == "Teaser text about the ICC."


@pytest.mark.parametrize(
    ("fields", "claimable"),
    [
        ({"status": "held"}, False),
        ({"status": "sent"}, False),
        ({"status": "failed"}, False),
        ({"next_attempt_at": NOW + timedelta(seconds=1)}, False),
        ({"next_attempt_at": NOW}, True),
        ({"claimed_by": "w2", "claimed_until": NOW + timedelta(minutes=1)}, False),
        ({"claimed_by": "w2", "claimed_until": NOW - timedelta(seconds=1)}, True),
        ({"claimed_by": "w1", "claimed_until": NOW + timedelta(minutes=1)}, True),
    ],
    ids=["held", "sent", "failed", "not-yet-due", "due-now", "leased-by-other", "lease-expired", "own-lease"],
)
def test_claim_takes_only_due_unleased_pending_alerts(
    db: sessionmaker[Session], fields: dict[str, object], claimable: bool
) -> None:
    alert_id = add_alert(db, **fields)  # type: ignore[arg-type]
    assert claim(db) == ([alert_id] if claimable else [])


def test_two_workers_never_claim_the_same_alert(db: sessionmaker[Session]) -> None:
    ids = [add_alert(db, title=f"Release {n}") for n in range(5)]
    first = claim(db, "w1", limit=3)
    second = claim(db, "w2", limit=10)
    assert first == ids[:3] and second == ids[3:]
    assert claim(db, "w3") == []


def test_claim_skips_excluded_alerts(db: sessionmaker[Session]) -> None:
    ids = [add_alert(db, title=f"Release {n}") for n in range(3)]
    with db.begin() as session:
        claimed = outbox.claim_alerts(
            session, worker="w1", now=NOW, lease_seconds=60, limit=10, exclude={ids[0]}
        )
    assert [alert.alert_id for alert in claimed] == ids[1:]


def test_postgres_claims_skip_rows_locked_by_another_transaction(postgres_url: str) -> None:
    factory = open_db(postgres_url)
    ids = [add_alert(factory, title=f"Release {n}") for n in range(4)]
    with factory.begin() as first:
        mine = outbox.claim_alerts(first, worker="w1", now=NOW, lease_seconds=60, limit=2)
        # w1 has not committed: w2 must neither wait nor take w1's rows.
        with factory.begin() as second:
            theirs = outbox.claim_alerts(second, worker="w2", now=NOW, lease_seconds=60, limit=10)
    assert [a.alert_id for a in mine] == ids[:2]
    assert [a.alert_id for a in theirs] == ids[2:]
    factory.kw["bind"].dispose()


def test_mark_posting_needs_the_workers_own_claim(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db)
    claim(db, "w1")
    with db.begin() as session:
        assert not outbox.mark_posting(session, alert_id, NOW, worker="w2", lease_seconds=60)
        assert outbox.mark_posting(session, alert_id, NOW, worker="w1", lease_seconds=60)
    row = alert_row(db, alert_id)
    assert row.posting_started_at == NOW and row.attempts == 1


def test_an_alert_marked_posting_without_a_ts_is_claimed_as_outcome_unknown(
    db: sessionmaker[Session],
) -> None:
    alert_id = add_alert(db, posting_started_at=NOW - timedelta(minutes=5), attempts=1)
    with db.begin() as session:
        [alert] = outbox.claim_alerts(session, worker="w1", now=NOW, lease_seconds=60, limit=10)
    assert alert.alert_id == alert_id and alert.outcome_unknown
    assert alert.posting_started_at == NOW - timedelta(minutes=5)


def record(db: sessionmaker[Session], outcome: DeliveryOutcome, backoff: outbox.Backoff = NO_JITTER) -> str:
    with db.begin() as session:
        return outbox.record_outcome(session, outcome, now=NOW, backoff=backoff)


def test_record_sent_stores_ts_and_releases_the_claim(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db)
    claim(db)
    assert record(db, DeliveryOutcome(alert_id, sent=True, slack_ts="1700000000.000100")) == "sent"
    row = alert_row(db, alert_id)
    assert (row.status, row.slack_ts, row.sent_at, row.claimed_by) == ("sent", "1700000000.000100", NOW, None)


def test_transient_failure_stays_pending_with_backoff_and_forgets_an_unsent_post(
    db: sessionmaker[Session],
) -> None:
    alert_id = add_alert(db, attempts=3, posting_started_at=NOW)
    claim(db)
    assert record(db, DeliveryOutcome(alert_id, sent=False, error="network: refused")) == "pending"
    row = alert_row(db, alert_id)
    assert row.next_attempt_at == NOW + timedelta(seconds=120)  # 60 · 2² halved (no jitter)
    assert row.last_error == "network: refused" and row.posting_started_at is None and row.claimed_by is None


def test_a_failure_that_may_have_posted_keeps_posting_started_at(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db, attempts=1, posting_started_at=NOW)
    record(db, DeliveryOutcome(alert_id, sent=False, error="network: timeout", maybe_posted=True))
    assert alert_row(db, alert_id).posting_started_at == NOW


def test_retry_after_is_a_lower_bound_on_the_backoff(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db, attempts=1)
    record(db, DeliveryOutcome(alert_id, sent=False, error="ratelimited", retry_after_seconds=900))
    assert alert_row(db, alert_id).next_attempt_at == NOW + timedelta(seconds=900)


def test_permanent_failure_marks_failed_with_the_error(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db)
    assert record(db, DeliveryOutcome(alert_id, sent=False, error="invalid_auth", permanent=True)) == "failed"
    row = alert_row(db, alert_id)
    assert (row.status, row.last_error, row.next_attempt_at) == ("failed", "invalid_auth", None)


def test_an_outcome_for_an_alert_no_longer_pending_changes_nothing(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db, status="sent", slack_ts="1.2")
    assert record(db, DeliveryOutcome(alert_id, sent=False, error="x", permanent=True)) == "sent"
    assert alert_row(db, alert_id).last_error is None


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap() -> None:
    top = outbox.Backoff(base_seconds=30, max_seconds=600, random=lambda: 0.999999)
    bottom = outbox.Backoff(base_seconds=30, max_seconds=600, random=lambda: 0.0)
    assert [round(bottom.delay(n)) for n in (1, 2, 3, 10)] == [15, 30, 60, 300]
    assert [round(top.delay(n)) for n in (1, 2, 3, 10)] == [30, 60, 120, 600]
    assert bottom.delay(1, retry_after=45) == 45


def test_retry_failed_sets_failed_alerts_pending_and_due(db: sessionmaker[Session]) -> None:
    failed = [
        add_alert(db, title=f"F{n}", status="failed", last_error="invalid_auth", posting_started_at=NOW)
        for n in range(3)
    ]
    sent = add_alert(db, title="S", status="sent")
    with db.begin() as session:
        assert outbox.retry_failed(session, [failed[0]]) == 1
    with db.begin() as session:
        assert outbox.retry_failed(session, [sent]) == 0
        assert outbox.retry_failed(session) == 2
    row = alert_row(db, failed[0])
    assert (row.status, row.next_attempt_at, row.posting_started_at) == ("pending", None, None)
    assert claim(db) == failed


def test_list_alerts_and_counts(db: sessionmaker[Session]) -> None:
    pending = add_alert(db, title="P")
    failed = add_alert(db, title="F", status="failed", last_error="channel_not_found", channel="#gone")
    add_alert(db, title="H", status="held")
    with db() as session:
        entries = outbox.list_alerts(session, ["pending", "failed"])
        everything = outbox.list_alerts(session)
        counts = outbox.alert_counts(session)
    assert [e.alert_id for e in entries] == [failed, pending]
    assert entries[0].last_error == "channel_not_found" and entries[0].channel == "#gone"
    assert entries[0].feed_name == "ISHR" and entries[0].title == "F"
    assert len(everything) == 3
    assert counts == {"pending": 1, "sent": 0, "failed": 1, "held": 1}


def test_release_claims_hands_alerts_back(db: sessionmaker[Session]) -> None:
    alert_id = add_alert(db)
    claim(db, "w1")
    with db.begin() as session:
        outbox.release_claims(session, [alert_id])
    assert claim(db, "w2") == [alert_id]
