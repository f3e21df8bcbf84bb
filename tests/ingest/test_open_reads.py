"""A pull split into batches keeps its read open between them (`pull_pages(keep_open=...)`): one read of the
CRM for the whole pull, the same rows, cursors and counts as one batch, and never a page lost or doubled when
something else moved the cursor, a batch failed or the pull ended early."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import Engine

from connectors.base import Page
from connectors.errors import RetriableError
from journeyhub.ingest import sync
from journeyhub.ingest.sync import Batch, close_read, pull_pages, reset_cursor
from tests.ingest.test_loader import rows
from tests.ingest.test_pipeline import Pages, contact_pages, loader, snapshot

RUN = "run-1"


class CountedReads(Pages):
    """`Pages`, also remembering the cursor each read started from."""

    def __init__(self, pages: list[Page], fail_after: int | None = None) -> None:
        super().__init__(pages, fail_after)
        self.started_from: list[str | None] = []

    def read(self, object_type: str, cursor: str | None, full: bool = False,
             fields: Sequence[str] | None = None) -> Iterator[Page]:
        self.started_from.append(cursor)
        skip = 0 if cursor is None else int(cursor[1:])  # contact_pages' cursors: c1, c2, …
        return super().read(object_type, cursor, full, fields) if skip == 0 else self._after(skip)

    def _after(self, skip: int) -> Iterator[Page]:
        for page in self.pages[skip:]:
            self.pages_read += 1
            yield page


def in_batches(engine: Engine, source: CountedReads, pages_per_batch: int, *, keep_open: str | None = RUN,
               worker_after: int | None = 0) -> list[Batch]:
    """Batches of one object to the end, as `flows.sync.pull_object` runs them, the read closed at the end."""
    batches: list[Batch] = []
    try:
        while True:
            batch = pull_pages(engine, source, loader(engine), "contacts",  # type: ignore[arg-type]
                               full=not batches, max_pages=pages_per_batch, worker_after=worker_after,
                               keep_open=keep_open)
            batches.append(batch)
            if batch.done or batch.counts.records_read == 0:
                return batches
    finally:
        close_read(RUN, "hubspot", "contacts")


def reading_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "read-ahead"]


@pytest.mark.parametrize("worker_after", [0, None], ids=["worker", "here"])
def test_batches_read_the_crm_once_and_store_what_one_batch_stores(engine: Engine, worker_after: int | None) -> None:
    pages = contact_pages(7, 30)
    whole = pull_pages(engine, CountedReads(pages), loader(engine), "contacts",  # type: ignore[arg-type]
                       full=True, worker_after=worker_after)
    expected = snapshot(engine)
    with engine.begin() as connection:
        for table in ("association", "quarantine", "sync_state", "person_record", "source_record"):
            connection.exec_driver_sql(f"DELETE FROM {table}")

    source = CountedReads(pages)
    batches = in_batches(engine, source, 2, worker_after=worker_after)
    assert source.started_from == [None], "one read for the whole pull, not one per batch"
    assert source.pages_read == 7
    assert [batch.pages for batch in batches] == [2, 2, 2, 1]
    assert [batch.done for batch in batches] == [False, False, False, True]
    assert snapshot(engine) == expected and expected["cursor"] == [("contacts", "c7")]
    total = Batch().counts
    for batch in batches:
        total.add(batch.counts)
    assert total == whole.counts and (total.inserted, total.quarantined) == (209, 1)
    assert not sync._open_reads and not reading_threads()


def test_without_keep_open_every_batch_reads_again_from_the_cursor(sqlite_engine: Engine) -> None:
    source = CountedReads(contact_pages(5, 10))
    batches = in_batches(sqlite_engine, source, 2, keep_open=None)
    assert source.started_from == [None, "c2", "c4"]
    assert [batch.pages for batch in batches] == [2, 2, 1]


def test_a_batch_goes_on_with_the_open_read_only_from_the_cursor_it_committed(engine: Engine) -> None:
    source = CountedReads(contact_pages(6, 10))
    first = pull_pages(engine, source, loader(engine), "contacts", full=True,  # type: ignore[arg-type]
                       max_pages=2, worker_after=0, keep_open=RUN)
    assert (first.pages, first.done) == (2, False) and len(sync._open_reads) == 1
    with engine.begin() as connection:  # someone else moved the cursor back (e.g. `journeyhub reset`)
        connection.exec_driver_sql("UPDATE sync_state SET cursor = 'c1'")
    rest = in_batches_after(engine, source)
    assert source.started_from == [None, "c1"], "the open read was dropped; the next read starts at c1"
    assert rows(engine, "SELECT cursor FROM sync_state") == [("c6",)]
    assert (rest.counts.unchanged, rest.counts.quarantined, rest.counts.inserted) == (9, 1, 40), \
        "page c2 came again and changed nothing; c3–c6 are new"
    assert rows(engine, "SELECT COUNT(*) FROM person_record") == [(59,)]
    assert not sync._open_reads and not reading_threads()


def in_batches_after(engine: Engine, source: CountedReads) -> Batch:
    """The rest of a pull in one batch, with keep_open as a flow's later batches pass it."""
    try:
        return pull_pages(engine, source, loader(engine), "contacts",  # type: ignore[arg-type]
                          worker_after=0, keep_open=RUN)
    finally:
        close_read(RUN, "hubspot", "contacts")


def test_a_batch_that_fails_drops_the_open_read_and_the_retry_loses_and_doubles_nothing(engine: Engine) -> None:
    pages = contact_pages(6, 10)
    source = CountedReads(pages, fail_after=3)  # the read fails on its fourth page
    pull_pages(engine, source, loader(engine), "contacts", full=True,  # type: ignore[arg-type]
               max_pages=2, worker_after=0, keep_open=RUN)
    with pytest.raises(RetriableError):
        pull_pages(engine, source, loader(engine), "contacts",  # type: ignore[arg-type]
                   max_pages=2, worker_after=0, keep_open=RUN)
    assert not sync._open_reads and not reading_threads(), "the failed read is gone with its thread"
    assert rows(engine, "SELECT cursor FROM sync_state") == [("c3",)], "the pages read before the failure are kept"
    source.fail_after = None
    retry = in_batches_after(engine, source)
    assert source.started_from == [None, "c3"]
    assert rows(engine, "SELECT cursor FROM sync_state") == [("c6",)]
    assert retry.counts.inserted == 30 and rows(engine, "SELECT COUNT(*) FROM person_record") == [(59,)]


def test_ending_a_pull_stops_its_reading_thread_and_leaves_unwritten_pages_to_the_next_read(
        sqlite_engine: Engine) -> None:
    source = CountedReads(contact_pages(6, 10))
    pull_pages(sqlite_engine, source, loader(sqlite_engine), "contacts", full=True,  # type: ignore[arg-type]
               max_pages=2, worker_after=0, keep_open=RUN)
    assert len(reading_threads()) == 1 and source.pages_read > 2, "the next pages are read ahead"
    close_read(RUN, "hubspot", "contacts")
    assert not sync._open_reads and not reading_threads()
    assert rows(sqlite_engine, "SELECT cursor FROM sync_state") == [("c2",)]
    reset_cursor(sqlite_engine, "hubspot", "contacts")
    again = pull_pages(sqlite_engine, source, loader(sqlite_engine), "contacts",  # type: ignore[arg-type]
                       worker_after=0, keep_open=RUN)
    close_read(RUN, "hubspot", "contacts")
    assert source.started_from == [None, None] and again.done and again.pages == 6
