"""Large pulls map their pages in a worker process: same rows, same order, same cursors, exact page reads."""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from typing import Any

import pytest
from sqlalchemy import Engine

from connectors.base import Page, SourceField
from connectors.errors import RetriableError
from journeyhub.config import load_config_file, mappings_root
from journeyhub.ingest import pipeline
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.sync import pull_pages
from tests.ingest.test_loader import contact, deal, mappings, rows

IDENTITY = load_config_file(mappings_root(), "identity.yaml")


class Pages:
    """A connector reading prepared pages: counts what was read, can fail after some pages."""

    system = "hubspot"

    def __init__(self, pages: list[Page], fail_after: int | None = None) -> None:
        self.pages = pages
        self.fail_after = fail_after
        self.pages_read = 0

    def fields_for(self, object_type: str, paths: Iterable[str]) -> dict[str, SourceField | None]:
        return dict.fromkeys(paths)     # the prepared pages hold whatever they hold

    def read(self, object_type: str, cursor: str | None, full: bool = False,
             fields: Sequence[str] | None = None) -> Iterator[Page]:
        for page in self.pages:
            if self.fail_after is not None and self.pages_read == self.fail_after:
                raise RetriableError("hubspot", "HTTP 503 after retries")
            self.pages_read += 1
            yield page


def contact_pages(count: int, size: int) -> list[Page]:
    """Pages of contacts with distinct emails, the first record of the second page malformed
    (quarantined); every page carries its own cursor."""
    pages = []
    for number in range(count):
        records = [contact(str(number * size + index), f"p{number * size + index}@x.io") for index in range(size)]
        if number == 1:
            records[0] = contact(records[0].remote_id, "broken@@x.io")
        pages.append(Page("contacts", records, cursor=f"c{number + 1}", api_calls=1))
    return pages


@pytest.fixture(autouse=True)
def worker(monkeypatch: pytest.MonkeyPatch) -> Iterator[pipeline._Worker]:
    """A worker of this test's own: not started yet."""
    fresh = pipeline._Worker()
    monkeypatch.setattr(pipeline, "WORKER", fresh)
    yield fresh
    fresh.reset()


def loader(engine: Engine) -> PageLoader:
    return PageLoader(engine, "hubspot", mappings(), run_id="run-1", identity=IDENTITY)


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "people": rows(engine, "SELECT id, email, phone, email_key, phone_key, keys_version FROM person_record "
                               "ORDER BY id"),
        "sources": rows(engine, "SELECT id, raw_hash, is_deleted FROM source_record ORDER BY id"),
        "quarantine": rows(engine, "SELECT remote_id, reason FROM quarantine ORDER BY remote_id"),
        "cursor": rows(engine, "SELECT object_type, cursor FROM sync_state"),
        "links": rows(engine, "SELECT from_id, to_id, is_primary FROM association ORDER BY from_id, to_id"),
    }


def test_pages_mapped_in_the_worker_store_exactly_what_mapping_here_stores(engine: Engine) -> None:
    pages = contact_pages(6, 50)
    here = pull_pages(engine, Pages(pages), loader(engine), "contacts")  # type: ignore[arg-type]
    expected = snapshot(engine)
    with engine.begin() as connection:
        for table in ("association", "quarantine", "sync_state", "person_record", "source_record"):
            connection.exec_driver_sql(f"DELETE FROM {table}")
    there = pull_pages(engine, Pages(pages), loader(engine), "contacts", worker_after=0)  # type: ignore[arg-type]
    assert there.counts == here.counts and there.pages == here.pages == 6
    assert (here.counts.inserted, here.counts.quarantined) == (299, 1)
    assert snapshot(engine) == expected
    assert expected["cursor"] == [("contacts", "c6")]
    assert all(key and version for (_, _, _, key, _, version) in expected["people"]), "match keys were computed"


def test_relations_and_duplicates_within_a_page_survive_the_trip(sqlite_engine: Engine) -> None:
    page = Page("deals", [deal("9", ["1", "2"]), deal("8", ["3"]), deal("9", ["2"])], cursor="d1")
    pull_pages(sqlite_engine, Pages([page]), loader(sqlite_engine), "deals",  # type: ignore[arg-type]
               worker_after=0)
    assert rows(sqlite_engine, "SELECT from_id, to_id FROM association ORDER BY from_id") == [
        ("hubspot:deals:8", "hubspot:contacts:3"), ("hubspot:deals:9", "hubspot:contacts:2")]


def spy_on(worker: pipeline._Worker, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The first remote id of every page sent to the worker."""
    sent: list[str] = []
    real = worker.submit

    def spy(job: pipeline.PrepareJob) -> Future[Any]:
        sent.append(job.records[0][0])
        return real(job)

    monkeypatch.setattr(worker, "submit", spy)
    return sent


def test_small_pulls_never_start_the_worker(sqlite_engine: Engine, worker: pipeline._Worker,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    sent = spy_on(worker, monkeypatch)
    batch = pull_pages(sqlite_engine, Pages(contact_pages(3, 40)), loader(sqlite_engine),  # type: ignore[arg-type]
                       "contacts", worker_after=1000)
    assert batch.counts.records_read == 120 and sent == [] and not worker.running


def test_the_worker_takes_over_once_a_pull_proves_large_and_then_serves_every_pull(
        sqlite_engine: Engine, worker: pipeline._Worker, monkeypatch: pytest.MonkeyPatch) -> None:
    sent = spy_on(worker, monkeypatch)
    batch = pull_pages(sqlite_engine, Pages(contact_pages(5, 40)), loader(sqlite_engine),  # type: ignore[arg-type]
                       "contacts", worker_after=80)
    assert sent == ["80", "120", "160"]  # pages 1–2 (80 records) here, the rest in the worker
    assert batch.pages == 5 and batch.counts.inserted == 199
    small = [Page("deals", [deal("1", ["1"])], cursor="d1")]
    pull_pages(sqlite_engine, Pages(small), loader(sqlite_engine), "deals", worker_after=80)  # type: ignore[arg-type]
    assert sent[-1] == "1", "a worker already up costs no start-up: small pulls use it too"


def test_the_worker_collects_garbage_between_pages_not_during_them(sqlite_engine: Engine,
                                                                   worker: pipeline._Worker) -> None:
    pull_pages(sqlite_engine, Pages(contact_pages(3, 20)), loader(sqlite_engine),  # type: ignore[arg-type]
               "contacts", worker_after=0)
    assert worker._executor is not None
    assert worker._executor.submit(gc.isenabled).result() is False  # no automatic collections in a page
    assert worker._executor.submit(gc.collect).result() == 0  # and none left behind after one


def test_a_read_failure_keeps_every_page_read_before_it(sqlite_engine: Engine) -> None:
    source = Pages(contact_pages(5, 20), fail_after=3)
    with pytest.raises(RetriableError):
        pull_pages(sqlite_engine, source, loader(sqlite_engine), "contacts",  # type: ignore[arg-type]
                   worker_after=0)
    assert rows(sqlite_engine, "SELECT cursor FROM sync_state") == [("c3",)]
    assert rows(sqlite_engine, "SELECT COUNT(*) FROM person_record") == [(59,)]


def test_max_pages_reads_exactly_that_many_pages(sqlite_engine: Engine) -> None:
    source = Pages(contact_pages(6, 10))
    batch = pull_pages(sqlite_engine, source, loader(sqlite_engine), "contacts",  # type: ignore[arg-type]
                       worker_after=0, max_pages=4)
    assert (source.pages_read, batch.pages, batch.done) == (4, 4, False)
    assert rows(sqlite_engine, "SELECT cursor FROM sync_state") == [("c4",)]


def test_a_dead_worker_is_replaced_by_mapping_here(sqlite_engine: Engine, worker: pipeline._Worker,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    def broken(job: pipeline.PrepareJob) -> Future[Any]:
        future: Future[Any] = Future()
        future.set_exception(BrokenProcessPool("killed by the OOM killer"))
        return future

    monkeypatch.setattr(worker, "submit", broken)
    with caplog.at_level(logging.WARNING, logger="journeyhub.sync"):
        batch = pull_pages(sqlite_engine, Pages(contact_pages(4, 25)), loader(sqlite_engine),  # type: ignore[arg-type]
                           "contacts", worker_after=0)
    assert (batch.pages, batch.counts.inserted, batch.counts.quarantined) == (4, 99, 1)
    assert "mapping worker process stopped" in caplog.text
    assert rows(sqlite_engine, "SELECT cursor FROM sync_state") == [("c4",)]
