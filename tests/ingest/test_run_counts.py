"""Run statistics counted once: two loaders storing the same pages at the same moment on PostgreSQL report
each record as inserted by exactly one of them. The counts come from what the provenance statement did
(`INSERT … ON CONFLICT … WHERE changed RETURNING (xmax = 0)`), not from the read before it — which both
loaders make before either commits (forced here with a barrier; normally the writer lock keeps pulls of one
object apart, tests/ingest/test_writer_lock.py, but the counts must not depend on it)."""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from connectors.base import Page, RemoteRecord
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.loader import Counts, PageLoader

MAPPINGS = load_mappings(mappings_root(), "hubspot")
STAMP = datetime(2026, 1, 2, tzinfo=UTC)


def calls(start: int, count: int, version: int) -> list[RemoteRecord]:
    return [RemoteRecord("calls", str(i), {"id": str(i), "properties": {
        "hs_call_title": f"call {i} v{version}", "hs_call_body": "b", "hs_timestamp": "2026-01-02T03:04:05Z",
        "hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED"}}, created_at=STAMP, modified_at=STAMP)
        for i in range(start, start + count)]


def race(engine: Engine, monkeypatch: pytest.MonkeyPatch, version: int) -> list[Counts]:
    """Two runs store the same two pages at once; each classifies a page before either writes it."""
    barriers = [threading.Barrier(2, timeout=5) for _ in range(2)]   # the n-th classification of each run
    seen: dict[int, int] = {}
    real = PageLoader._changed

    def classify_then_wait(self: PageLoader, *args: Any) -> Any:
        changed = real(self, *args)
        n = seen[id(self)] = seen.get(id(self), -1) + 1
        # how many times a run classifies depends on what the other committed meanwhile: the race is forced
        # where both get here, and never turns into a hang
        if n < len(barriers):
            with contextlib.suppress(threading.BrokenBarrierError):
                barriers[n].wait()
        return changed

    monkeypatch.setattr(PageLoader, "_changed", classify_then_wait)
    totals = [Counts(), Counts()]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        loader = PageLoader(engine, "hubspot", MAPPINGS, run_id=f"run-{index}")
        try:
            for start in (0, 40):
                totals[index].add(loader.store(Page("calls", calls(start, 40, version), cursor=str(start))))
        except BaseException as error:  # reported by the test thread
            errors.append(error)
            for barrier in barriers:
                barrier.abort()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    monkeypatch.setattr(PageLoader, "_changed", real)
    assert not errors, errors
    return totals


def test_two_concurrent_runs_count_each_record_once(engine_pg_clean: Engine,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = race(engine_pg_clean, monkeypatch, version=1)
    assert first.inserted + second.inserted == 80
    assert (first.updated, second.updated) == (0, 0)
    assert first.unchanged + second.unchanged == 80  # the other run's rows: found stored already, left alone
    for counts in (first, second):
        assert counts.inserted + counts.unchanged == counts.records_read == 80
    with engine_pg_clean.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM interaction")).scalar() == 80
    first, second = race(engine_pg_clean, monkeypatch, version=2)  # every record changed: updated once
    assert (first.inserted, second.inserted) == (0, 0)
    assert first.updated + second.updated == 80
    assert first.unchanged + second.unchanged == 80
    with engine_pg_clean.connect() as connection:
        assert connection.execute(text(
            "SELECT count(*) FROM interaction WHERE subject LIKE '% v2'")).scalar() == 80
