"""Two runs at once. Two syncs of the same CRM started together (two schedulers, a manual run beside a
scheduled one) store every record once and count it once — on SQLite and PostgreSQL — and two pushes of
the same CRM at once write every item once.

The same for two `journeyhub sync` processes on a paced CRM is proven by
tests/ingest/test_writer_lock.py::test_two_syncs_of_the_same_crm_at_once_store_and_count_every_record_once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text

from sandbox.common.faults import FaultConfig
from tests.e2e.hub import hub_environment, pull
from tests.faults.rig import SYSTEMS, Rig, assert_pushed_once, assert_synced_as_clean, push_one


def together(*jobs: Callable[[], Any]) -> list[Any]:
    """Runs the jobs in threads released at the same instant; their results (an exception is re-raised)."""
    start = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(index: int, job: Callable[[], Any]) -> None:
        start.wait()
        try:
            results[index] = job()
        except BaseException as error:
            results[index] = error

    threads = [threading.Thread(target=run, args=(i, job)) for i, job in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.mark.parametrize("system", SYSTEMS)
def test_two_syncs_of_a_crm_at_once_store_and_count_every_record_once(rig: Rig, engine: Engine,
                                                                       system: str) -> None:
    emulator = rig.reset(system, FaultConfig(latency_ms=6))   # a CRM slow enough for the runs to overlap

    def one_sync() -> Any:
        with hub_environment(rig.sandbox.env, database_url(engine)) as settings:
            return pull(settings, [system])[0]

    runs = together(one_sync, one_sync)
    assert all(run.status == "succeeded" for run in runs), [run.problems() for run in runs]
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT run_id, object_type, started_at, finished_at, records_read, inserted, updated, deleted "
            "FROM sync_run WHERE system = :system AND direction = 'pull'"), {"system": system}).all()
        stored = Counter(dict(connection.execute(text(
            "SELECT object_type, COUNT(*) FROM source_record WHERE system = :system GROUP BY object_type"),
            {"system": system}).all()))
    assert {row.run_id for row in rows} == {run.run_id for run in runs}
    first, second = sorted((min(r.started_at for r in rows if r.run_id == run.run_id),
                            max(r.finished_at for r in rows if r.run_id == run.run_id)) for run in runs)
    assert second[0] < first[1], "the two syncs did not overlap: the test proves nothing"
    clean = assert_synced_as_clean(rig, engine, system)
    assert emulator.requests.entries, "the CRM was read"
    counted: dict[str, Counter[str]] = {}
    for row in rows:
        counted.setdefault(row.object_type, Counter()).update(
            {"inserted": row.inserted, "deleted": row.deleted, "updated": row.updated})
    once = {name: +Counter({"inserted": c.inserted, "deleted": c.deleted, "updated": c.updated})
            for name, c in clean.items()}
    assert {name: +c for name, c in counted.items()} == once, "the two runs' statistics add up to one sync's"
    assert sum(run.totals().inserted for run in runs) == sum(c.inserted for c in clean.values())
    assert sum(stored.values()) >= sum(c.inserted for c in clean.values()) > 50


@pytest.mark.parametrize("system", SYSTEMS)
def test_two_pushes_of_a_crm_at_once_write_every_item_once(rig: Rig, system: str) -> None:
    emulator = rig.reset(system, FaultConfig(latency_ms=15))
    engine = rig.database(f"two-pushes-{system}", rig.tagged)
    reports = together(lambda: push_one(engine, rig.connector(system)), lambda: push_one(engine, rig.connector(system)))
    emulator.faults.configure(FaultConfig())
    for report in reports:
        assert not report.errors and report.outcome is not None and not report.outcome.failed, report.errors
    assert_pushed_once(rig, engine, system)
