"""The set-based PostgreSQL batch writes (`canonical.pg_bulk`) give the rows SQLite's statements give: upserts
with a key given twice (last wins), plain inserts, keyed updates, id lookups, every column type — and an
over-long identifier is refused, never silently cut (an explicit varchar(n) cast would cut it)."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine, text

from canonical.models import Deal, Interaction
from canonical.upsert import fetch_by_ids, insert_rows, update_rows, upsert

STAMP = datetime(2025, 3, 4, 5, 6, 7, 890123, tzinfo=UTC)


def deal(i: int, **overrides: object) -> dict[str, object]:
    row = {"id": f"hubspot:deals:{i}", "name": f"Deal {i}", "amount": i if i % 2 else float(i) + 0.5,
           "currency": "ILS", "pipeline": "default", "stage": "s", "stage_label": "S", "status": "open",
           "opened_at": STAMP, "closed_at": None, "owner_id": None, "company_id": None,
           "custom": {"n": i, "nested": {"list": [1, "two", None]}} if i % 3 else None}
    row.update(overrides)
    return row


def table(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


def test_batches_write_the_same_rows_on_both_databases(engine: Engine) -> None:
    with engine.begin() as connection:
        upsert(connection, Deal, [deal(i) for i in range(6)] + [deal(2, name="twice, last wins")])
        upsert(connection, Deal, [deal(4, status="won", amount=7)], update=["status", "amount"])
        update_rows(connection, Deal, "id", [{"id": "hubspot:deals:5", "stage_label": "updated", "closed_at": STAMP},
                                            {"id": "hubspot:deals:1", "stage_label": None, "closed_at": None}])
        insert_rows(connection, Interaction, [{"id": "hubspot:calls:1", "kind": "call", "channel": "phone",
                                               "occurred_at": STAMP, "score": 3, "custom": {"a": "b"}}])
        found = fetch_by_ids(connection, Deal, [f"hubspot:deals:{i}" for i in (0, 2, 9)], ["name", "status"])
    assert found == {"hubspot:deals:0": ("Deal 0", "open"), "hubspot:deals:2": ("twice, last wins", "open")}
    rows = table(engine, "SELECT id, name, amount, status, stage_label, closed_at IS NOT NULL, opened_at "
                         "FROM deal ORDER BY id")
    assert [row[:6] for row in rows] == [
        ("hubspot:deals:0", "Deal 0", 0.5, "open", "S", False),
        ("hubspot:deals:1", "Deal 1", 1.0, "open", None, False),
        ("hubspot:deals:2", "twice, last wins", 2.5, "open", "S", False),
        ("hubspot:deals:3", "Deal 3", 3.0, "open", "S", False),
        ("hubspot:deals:4", "Deal 4", 7.0, "won", "S", False),
        ("hubspot:deals:5", "Deal 5", 5.0, "open", "updated", True)]
    custom = table(engine, "SELECT custom FROM deal WHERE id = 'hubspot:deals:5'")[0][0]
    custom = custom if isinstance(custom, dict) else __import__("json").loads(str(custom))
    assert custom == {"n": 5, "nested": {"list": [1, "two", None]}}
    assert table(engine, "SELECT score, kind FROM interaction") == [(3.0, "call")]


def test_an_over_long_identifier_is_refused_on_postgresql_not_cut(engine_pg_clean: Engine) -> None:
    with pytest.raises(psycopg.DataError, match="too long"), engine_pg_clean.begin() as connection:
        upsert(connection, Deal, [deal(1, owner_id="x" * 400)])
    assert table(engine_pg_clean, "SELECT count(*) FROM deal") == [(0,)]
