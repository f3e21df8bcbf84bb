"""Ordered write-behind: on PostgreSQL page n+1 is staged while page n's transaction runs, and the result is
exactly that of writing the pages one after the other."""

from __future__ import annotations

import random
import threading
from typing import Any

import pytest
from sqlalchemy import Engine, text

from connectors.base import Page
from connectors.base import RemoteRecord as Record
from journeyhub.ingest.loader import Counts, PageLoader, StagedPage
from journeyhub.ingest.write_behind import OrderedWrites
from tests.conftest import truncate_all
from tests.ingest.test_loader import contact, deal, mappings, rows

DUMP = {  # every column a page writes, but the time stamps of the write itself
    "source_record": "id, system, object_type, remote_id, entity, canonical_id, is_deleted, merged_into, raw, "
                     "raw_hash, last_run_id",
    "person_record": "id, email, last_name",
    "deal": "id, name",
    "interaction": "id, kind, occurred_at",
    "association": "from_id, to_id, label, is_primary, source_id, is_deleted",
    "sync_state": "object_type, cursor",
    "quarantine": "remote_id, reason, occurrences, resolved_at IS NULL",
}


def dump(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    return {table: rows(engine, f"SELECT {columns} FROM {table} ORDER BY 1, 2") for table, columns in DUMP.items()}


def write_all(loader: PageLoader, pages: list[Page], *, behind: bool) -> list[Counts]:
    done: list[Counts] = []
    if not behind:
        return [loader.store(page) for page in pages]
    with OrderedWrites(loader, None, done.append) as writes:
        for page in pages:
            writes.write(loader.prepare(page))
    return done


def random_pages(seed: int) -> list[Page]:
    """Contacts re-read across page boundaries, changed, deleted twice, merged, quarantined, with forms."""
    rng, pages = random.Random(seed), []
    for number in range(12):
        records = []
        for _ in range(rng.randint(1, 6)):
            remote_id = str(rng.randint(1, 15))
            roll = rng.random()
            if roll < 0.15:
                records.append(Record("contacts", remote_id, None, deleted=True))
            elif roll < 0.25:
                records.append(contact(remote_id, "bad@@x.io"))
            elif roll < 0.35:
                records.append(contact(remote_id, f"{remote_id}@x.io", hs_merged_object_ids=str(rng.randint(1, 15))))
            else:
                records.append(contact(remote_id, f"{remote_id}.{rng.randint(1, 2)}@x.io",
                                       form_date="2025-01-01T00:00:00Z"))
        pages.append(Page("contacts", records, cursor=f"c{number}", api_calls=1))
    return pages


@pytest.mark.postgres
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_rows_and_counts_are_those_of_one_page_after_the_other(engine_pg_clean: Engine, seed: int) -> None:
    pages = random_pages(seed)
    serial = write_all(PageLoader(engine_pg_clean, "hubspot", mappings(), "run-1"), pages, behind=False)
    expected = dump(engine_pg_clean)
    truncate_all(engine_pg_clean)
    behind = write_all(PageLoader(engine_pg_clean, "hubspot", mappings(), "run-1"), pages, behind=True)
    assert dump(engine_pg_clean) == expected
    assert behind == serial
    assert expected["sync_state"] == [("contacts", "c11")]


class Instrumented(PageLoader):
    """Records when each page is staged and written; a page's transaction can be held until told to go."""

    def __init__(self, engine: Engine, hold: threading.Event | None = None) -> None:
        super().__init__(engine, "hubspot", mappings(), "run-1")
        self.events: list[str] = []
        self.hold = hold

    def stage(self, prepared: Any) -> StagedPage:
        self.events.append(f"stage {prepared.page.cursor}")
        if self.hold is not None and prepared.page.cursor == "c2":
            self.hold.set()  # page c1's transaction may go on now that c2 is being staged
        return super().stage(prepared)

    def write_staged(self, staged: StagedPage, run_row_id: int | None = None) -> Counts:
        if self.hold is not None and staged.prepared.page.cursor == "c1":
            assert self.hold.wait(10), "page c2 was not staged while page c1's transaction was in flight"
        counts = super().write_staged(staged, run_row_id)
        self.events.append(f"written {staged.prepared.page.cursor}")
        return counts


@pytest.mark.postgres
def test_the_next_page_is_staged_while_the_one_before_is_written(engine_pg_clean: Engine) -> None:
    loader = Instrumented(engine_pg_clean, threading.Event())
    pages = [Page("contacts", [contact(str(n), f"{n}@x.io")], cursor=f"c{n}") for n in (1, 2, 3)]
    counts = write_all(loader, pages, behind=True)
    events = loader.events
    assert events.index("stage c2") < events.index("written c1") < events.index("stage c3")
    assert [event for event in events if event.startswith("written")] == ["written c1", "written c2", "written c3"]
    assert [c.inserted for c in counts] == [1, 1, 1]
    assert rows(engine_pg_clean, "SELECT cursor FROM sync_state") == [("c3",)]


@pytest.mark.postgres
def test_a_page_reading_what_the_page_in_flight_writes_is_staged_after_it(engine_pg_clean: Engine) -> None:
    """A tombstone re-read in the next page counts once, as when the pages are written one after the other."""
    loader = Instrumented(engine_pg_clean)
    loader.store(Page("contacts", [contact("1", "a@x.io")], cursor="c0"))
    gone = Record("contacts", "1", None, deleted=True)
    pages = [Page("contacts", [gone, contact("2", "b@x.io")], cursor="c1"),
             Page("contacts", [gone, contact("3", "c@x.io")], cursor="c2"),
             Page("deals", [deal("9", ["3"])], cursor="c3")]
    counts = write_all(loader, pages, behind=True)
    assert [(c.deleted, c.inserted, c.unchanged) for c in counts] == [(1, 1, 0), (0, 1, 1), (0, 1, 0)]
    events = loader.events
    assert events.index("written c1") < events.index("stage c2")  # c2 re-reads the tombstone c1 writes
    assert events.index("stage c3") < events.index("written c3") and events[-1] == "written c3"


@pytest.mark.postgres
def test_a_failed_page_stops_the_pages_after_it(engine_pg_clean: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    loader = Instrumented(engine_pg_clean)
    apply = loader._apply

    def refusing(connection: Any, page_rows: Any) -> Any:
        if "hubspot:contacts:2" in page_rows.written_keys():
            raise RuntimeError("disk full")
        return apply(connection, page_rows)

    monkeypatch.setattr(loader, "_apply", refusing)
    pages = [Page("contacts", [contact(str(n), f"{n}@x.io")], cursor=f"c{n}") for n in (1, 2, 3, 4)]
    with pytest.raises(RuntimeError, match="disk full"):
        write_all(loader, pages, behind=True)
    assert rows(engine_pg_clean, "SELECT cursor FROM sync_state") == [("c1",)]
    assert rows(engine_pg_clean, "SELECT remote_id FROM source_record") == [("1",)]
    assert "written c3" not in loader.events and "stage c4" not in loader.events


@pytest.mark.postgres
def test_a_page_in_flight_is_committed_before_close_returns_after_a_callers_error(engine_pg_clean: Engine) -> None:
    loader, done = PageLoader(engine_pg_clean, "hubspot", mappings(), "run-1"), []
    writes = OrderedWrites(loader, None, done.append)
    with pytest.raises(KeyError):
        try:
            writes.write(loader.prepare(Page("contacts", [contact("1", "a@x.io")], cursor="c1")))
            raise KeyError("the caller failed")
        finally:
            writes.close()
    assert rows(engine_pg_clean, "SELECT cursor FROM sync_state") == [("c1",)]
    assert [c.inserted for c in done] == [1]
    assert not [thread for thread in threading.enumerate() if thread.name.startswith("page-writer")]


def test_on_sqlite_pages_are_written_in_the_callers_thread(sqlite_engine: Engine) -> None:
    """SQLite classifies a page under its write lock, inside the transaction: no write-behind there."""
    loader, threads = PageLoader(sqlite_engine, "hubspot", mappings(), "run-1"), []
    writes = OrderedWrites(loader, None, lambda counts: threads.append(threading.current_thread()))
    writes.write(loader.prepare(Page("contacts", [contact("1", "a@x.io")], cursor="c1")))
    assert threads == [threading.current_thread()]  # written before write() returned
    assert not writes.behind
    assert rows(sqlite_engine, "SELECT cursor FROM sync_state") == [("c1",)]
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM person_record")).scalar() == 1
