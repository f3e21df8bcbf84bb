"""The journey's bulk writes (`dbio.write_upsert`, `write_update`) store the same values on both dialects — on
PostgreSQL as one statement over binary arrays — and a value its column cannot take is refused, not cut."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

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
        updates = [(later, None, None, None, "email", "prospect", later, f"cus_{index:05d}")
                   for index in range(0, 20_000, 20)]
        write_batch(connection, BatchResult([], [], [], updates))
        settings = connection.exec_driver_sql("SELECT current_setting('enable_hashjoin'), "
                                              "current_setting('enable_mergejoin')").one()
    assert len(plans) == 1 and "Index Scan using customer_pkey" in plans[0], plans
    assert tuple(settings) == ("on", "on")  # the rest of the transaction is planned as before
    with engine_pg_clean.connect() as connection:
        assert connection.exec_driver_sql("SELECT COUNT(*) FROM customer WHERE last_interaction_channel = 'email'"
                                      ).scalar() == 1_000


@pytest.mark.postgres
def test_a_block_of_customers_facts_is_read_by_index_probes_not_by_hashing_whole_tables(
        engine_pg_clean: Engine) -> None:
    """With PostgreSQL's default page cost the planner read each block's interactions by scanning the whole
    interaction table into a hash (200,000 customers: most of a full pass's stage time); `index_probes` plans the
    block's facts as index probes, for that transaction only."""
    from journeyhub.journey.dbio import analyze, index_probes, write_insert
    from journeyhub.journey.facts import INTERACTIONS

    customers = [f"cus_{index:05d}" for index in range(20_000)]
    stamp = time_writer("postgresql")
    with transaction(engine_pg_clean) as connection:
        write_upsert(connection, "interaction", ("id", "kind", "channel", "occurred_at"), "id", (),
                     [(f"hubspot:emails:{index}", "email", "email", stamp(SEEN)) for index in range(100_000)])
        write_insert(connection, "customer_link", ("entity_id", "customer_id"),
                     [(f"hubspot:emails:{index}", customers[(index * 7919) % 20_000]) for index in range(100_000)])
        analyze(connection, "interaction", "customer_link")
    block = customers[5_000:5_200]  # a batch's share of the customers, as 2,000 of 200,000
    sql = "EXPLAIN " + INTERACTIONS.format(ids="= ANY(%s::text[])")

    with engine_pg_clean.connect() as connection:
        server = connection.exec_driver_sql("SELECT current_setting('random_page_cost')").scalar()

    def plan(*, tuned: bool) -> tuple[str, str]:
        with engine_pg_clean.connect() as connection:
            if tuned:
                index_probes(connection)
            else:  # PostgreSQL's default, whatever this server is configured with
                connection.exec_driver_sql("SET LOCAL random_page_cost = 4")
            rows = fetch_rows(connection, sql, ([*block],))
            setting = connection.exec_driver_sql("SELECT current_setting('random_page_cost')").scalar()
        return "\n".join(row[0].split("  (cost")[0] for row in rows if "(cost" in row[0]), setting  # plan nodes

    default, default_cost = plan(tuned=False)
    tuned, tuned_cost = plan(tuned=True)
    assert "Seq Scan on interaction" in default, default  # what the planner does by itself
    assert "Seq Scan" not in tuned and "Index Scan using interaction_pkey" in tuned, tuned
    assert (default_cost, tuned_cost) == ("4", "1.1")
    with engine_pg_clean.connect() as connection:  # a setting of that transaction only
        assert connection.exec_driver_sql("SELECT current_setting('random_page_cost')").scalar() == server


@pytest.mark.postgres
def test_a_batch_evaluation_reads_its_facts_planned_as_index_probes(engine_pg_clean: Engine,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from journeyhub.config import load_config_file, mappings_root
    from journeyhub.journey import tagger
    from journeyhub.journey.lifecycle import RuleSet

    costs: list[str] = []
    load_facts = tagger.load_facts

    def observed(connection: Any, customer_ids: list[str]) -> Any:
        costs.append(connection.exec_driver_sql("SELECT current_setting('random_page_cost')").scalar())
        return load_facts(connection, customer_ids)

    monkeypatch.setattr(tagger, "load_facts", observed)
    rules = RuleSet(load_config_file(mappings_root(), "lifecycle.yaml"))
    result = tagger.evaluate_batch(engine_pg_clean, rules, ["cus_1", "cus_2"], SEEN)
    assert costs == ["1.1"]
    assert result.changed == []  # customers without facts or history: nothing to write
