"""Batch upserts are idempotent and update in place; timestamps round-trip as UTC on both dialects."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Engine, select, text

from canonical.models import Deal, SyncState
from canonical.upsert import fetch_by_ids, upsert


def _deal(i: int, **overrides: object) -> dict[str, object]:
    row = {"id": f"hubspot:deals:{i}", "name": f"Deal {i}", "amount": float(i), "currency": "ILS",
           "pipeline": "default", "stage": "s", "stage_label": "S", "status": "open",
           "opened_at": datetime(2025, 1, 1, tzinfo=UTC) + timedelta(hours=i), "closed_at": None,
           "owner_id": None, "company_id": None, "custom": {"n": i}}
    row.update(overrides)
    return row


def test_upsert_inserts_then_updates_without_duplicates(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, Deal, [_deal(i) for i in range(5000)])
    with engine.begin() as connection:
        upsert(connection, Deal, [_deal(i, status="won", amount=99.5) for i in range(2500, 5000)])
    with engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM deal")).scalar() == 5000
        won = connection.execute(text("SELECT COUNT(*), SUM(amount) FROM deal WHERE status = 'won'")).one()
    assert won[0] == 2500 and won[1] == pytest.approx(2500 * 99.5)


def test_upsert_with_restricted_update_columns_keeps_the_others(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, Deal, [_deal(1, name="first")])
        upsert(connection, Deal, [_deal(1, name="second", amount=7.0)], update=["amount"])
        found = fetch_by_ids(connection, Deal, ["hubspot:deals:1", "missing"], ["name", "amount"])
    assert found == {"hubspot:deals:1": ("first", 7.0)}


def test_upsert_with_nothing_to_update_ignores_conflicts(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, SyncState, [{"system": "hubspot", "object_type": "contacts"}], update=[])
        upsert(connection, SyncState, [{"system": "hubspot", "object_type": "contacts"}], update=[])
        assert connection.execute(text("SELECT COUNT(*) FROM sync_state")).scalar() == 1


def test_timestamps_round_trip_as_aware_utc(engine: Engine) -> None:
    local = datetime(2025, 3, 4, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    with engine.begin() as connection:
        upsert(connection, Deal, [_deal(1, opened_at=local)])
        stored = connection.execute(select(Deal.opened_at)).scalar_one()
    assert stored == local and stored.tzinfo is not None and stored.utcoffset() == timedelta(0)


def test_sqlite_stores_iso_8601_utc_text(sqlite_engine: Engine) -> None:
    with sqlite_engine.begin() as connection:
        upsert(connection, Deal, [_deal(1, opened_at=datetime(2025, 3, 4, 10, 0, tzinfo=UTC))])
        raw = connection.execute(text("SELECT opened_at FROM deal")).scalar_one()
    assert raw == "2025-03-04T10:00:00.000000Z"


def test_remembered_timestamp_text_is_the_instants_whatever_its_zone(sqlite_engine: Engine) -> None:
    """SQLite text is remembered per value; equal instants written in other zones share it correctly."""
    utc = datetime(2025, 3, 4, 10, 0, tzinfo=UTC)
    plus_two = datetime(2025, 3, 4, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    with sqlite_engine.begin() as connection:
        upsert(connection, Deal, [_deal(1, opened_at=utc), _deal(2, opened_at=plus_two),
                                  _deal(3, opened_at=plus_two + timedelta(microseconds=1))])
        raw = connection.execute(text("SELECT opened_at FROM deal ORDER BY id")).scalars().all()
    assert raw == ["2025-03-04T10:00:00.000000Z", "2025-03-04T10:00:00.000000Z", "2025-03-04T10:00:00.000001Z"]


def test_naive_datetimes_are_refused(sqlite_engine: Engine) -> None:
    with pytest.raises(Exception, match="timezone-aware"), sqlite_engine.begin() as connection:
        upsert(connection, Deal, [_deal(1, opened_at=datetime(2025, 1, 1))])
