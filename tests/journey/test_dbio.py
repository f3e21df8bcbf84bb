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


@pytest.mark.postgres
def test_a_batch_of_journey_updates_probes_the_key_index_instead_of_hashing_the_table(engine_pg_clean: Engine,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Hashing the whole table for every block made a pass's updates grow with the square of its size."""
    from canonical import pg_bulk
    from journeyhub.journey.dbio import analyze
    from journeyhub.journey.tagger import BatchResult, write_batch

    with transaction(engine_pg_clean) as connection:
        write_upsert(connection, "customer", ("id",), "id", (), [(f"cus_{index:05d}",) for index in range(20_000)])
        analyze(connection, "customer")
    plans: list[str] = []
    execute = pg_bulk.execute_arrays

    def explained(connection: object, sql: str, arrays: list[list[object]], *, fetch: bool = False) -> list[object]:
        plans.append("\n".join(row[0] for row in execute(connection, f"EXPLAIN {sql}", arrays, fetch=True)))
        return execute(connection, sql, arrays, fetch=fetch)

    monkeypatch.setattr(pg_bulk, "execute_arrays", explained)
    with transaction(engine_pg_clean) as connection:  # the tagger's batch: journey columns of 1,000 customers
        later = time_writer("postgresql")(SEEN)
        updates = [(later, None, None, None, "email", f"cus_{index:05d}") for index in range(0, 20_000, 20)]
        write_batch(connection, BatchResult([], [], [], updates))
        settings = connection.exec_driver_sql("SELECT current_setting('enable_hashjoin'), "
                                              "current_setting('enable_mergejoin')").one()
    assert len(plans) == 1 and "Index Scan using customer_pkey" in plans[0], plans
    assert tuple(settings) == ("on", "on")  # the rest of the transaction is planned as before
    with engine_pg_clean.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM customer WHERE last_interaction_channel = 'email'"
                                      ).scalar() == 1_000
