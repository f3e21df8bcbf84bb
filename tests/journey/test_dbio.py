"""The journey's bulk writes (`dbio.write_upsert`, `write_update`) store the same values on both dialects — on
PostgreSQL as one statement over binary arrays — and a value its column cannot take is refused, not cut."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg
import pytest
from sqlalchemy import Engine

from canonical.db import transaction
from journeyhub.journey.dbio import fetch_rows, time_writer, write_update, write_upsert
from journeyhub.journey.facts import moment

COLUMNS = ("id", "email", "first_seen_at", "created_at", "updated_at")
SEEN = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _customers(engine: Engine) -> dict[str, tuple[object, ...]]:
    with engine.connect() as connection:
        rows = fetch_rows(connection, "SELECT id, email, first_seen_at, segment, segment_since FROM customer", ())
    return {row[0]: (row[1], moment(row[2]), row[3], moment(row[4])) for row in rows}


def test_upserts_and_updates_store_each_row_once_with_its_values(engine: Engine) -> None:
    stamp = time_writer(engine.dialect.name)
    rows = [(f"cus_{index:04d}", f"p{index}@example.com" if index % 3 else None, stamp(SEEN), stamp(SEEN),
             stamp(SEEN)) for index in range(2500)]
    with transaction(engine) as connection:
        write_upsert(connection, "customer", COLUMNS, "id", ("email", "updated_at"), rows)
    later = datetime(2026, 4, 2, tzinfo=UTC)
    with transaction(engine) as connection:  # half of them again, one with a new address; the first seen stays
        write_upsert(connection, "customer", COLUMNS, "id", ("email", "updated_at"),
                     [("cus_0001", "new@example.com", stamp(later), stamp(later), stamp(later))])
        write_update(connection, "customer", ("segment", "segment_since"),
                     [("active" if index % 2 else "new", stamp(later), f"cus_{index:04d}") for index in range(1250)])
    stored = _customers(engine)
    assert len(stored) == 2500
    assert stored["cus_0001"] == ("new@example.com", SEEN, "active", later)
    assert stored["cus_0002"] == ("p2@example.com", SEEN, "new", later)
    assert stored["cus_0003"] == (None, SEEN, "active", later)
    assert stored["cus_2498"] == ("p2498@example.com", SEEN, None, None)


@pytest.mark.postgres
def test_a_value_longer_than_its_column_is_refused_not_cut(engine_pg_clean: Engine) -> None:
    with transaction(engine_pg_clean) as connection:
        write_upsert(connection, "customer", ("id",), "id", (), [("cus_1",)])
    with pytest.raises(psycopg.DataError, match="too long"), transaction(engine_pg_clean) as connection:
        write_update(connection, "customer", ("segment",), [("x" * 33, "cus_1")])
    with pytest.raises(psycopg.DataError, match="too long"), transaction(engine_pg_clean) as connection:
        write_upsert(connection, "customer", ("id", "segment"), "id", ("segment",), [("cus_2", "x" * 33)])
    assert _customers(engine_pg_clean) == {"cus_1": (None, None, None, None)}
