"""Object types of one CRM pulled at once (`flows.waves`): the same canonical rows and per-object counts as
one after another, on SQLite and PostgreSQL; a fatal error stops the CRM with one message; each read's
request counts stay its own under threads; the CRM's API budget still bounds the requests; a stop signal
starts no other pull."""

from __future__ import annotations

import contextvars
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import Engine, text

from canonical.db import make_engine
from canonical.schema import upgrade
from connectors.errors import AuthError
from connectors.meter import RequestMeter, counted_apart
from flows import limits
from flows import sync as sync_flow
from flows.sync import BatchResult, SystemSync, pull_batch_plain, sync_system
from flows.waves import run_wave
from journeyhub.ingest.readahead import ReadAhead
from journeyhub.settings import Settings
from sandbox.runtime import Sandbox
from tests.conftest import truncate_all
from tests.deploy.topology import budget, peak

TABLES = ("source_record", "person_record", "company", "deal", "ticket", "interaction", "owner",
          "pipeline_stage", "association", "quarantine", "sync_state")
#: what a run stamps (times, run ids, generated ids, a schema check's time)
VOLATILE = {"first_seen_at", "last_seen_at", "updated_at", "last_run_id", "run_id", "deleted_at", "id",
            "synced_at", "created_at_hub", "cursor"}
FREE = "1000000/1000000"


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(people=60, seed=3, limits=False) as running:
        yield running


def settings_for(sandbox: Sandbox, url: str, width: int, **extra: str) -> Settings:
    return Settings.from_env({**sandbox.env, "JOURNEYHUB_DATABASE_URL": url, "JOURNEYHUB_RATE_HUBSPOT": FREE,
                              "JOURNEYHUB_RATE_DYNAMICS": FREE, "JOURNEYHUB_OBJECT_CONCURRENCY": str(width),
                              **extra})


class Overlap:
    """A `pull` that records how many objects were being pulled at once (at most)."""

    def __init__(self, inner: Callable[..., BatchResult] = pull_batch_plain,
                 before: Callable[[str], None] | None = None) -> None:
        self.inner, self.before = inner, before
        self.active: set[str] = set()
        self.most = 0
        self._lock = threading.Lock()

    def __call__(self, settings: Settings, system: str, object_type: str, **kwargs: Any) -> BatchResult:
        with self._lock:
            self.active.add(object_type)
            self.most = max(self.most, len(self.active))
        try:
            if self.before is not None:
                self.before(object_type)
            time.sleep(0.05)  # long enough for the objects of a wave to meet
            return self.inner(settings, system, object_type, **kwargs)
        finally:
            with self._lock:
                self.active.discard(object_type)


def canonical_rows(engine: Engine) -> list[bytes]:
    rows = []
    with engine.connect() as connection:
        for table in TABLES:
            result = connection.execute(text(f"SELECT * FROM {table}"))
            names = list(result.keys())
            for row in result:
                values = {n: v for n, v in zip(names, row, strict=True) if n not in VOLATILE}
                rows.append(orjson.dumps([table, values], option=orjson.OPT_SORT_KEYS, default=str))
    return sorted(rows)


def per_object(result: SystemSync) -> list[tuple[str, str, tuple[int, ...]]]:
    return [(item.object_type, item.status, (item.counts.records_read, item.counts.inserted, item.counts.updated,
                                             item.counts.deleted, item.counts.quarantined, item.counts.api_calls))
            for item in result.objects]


def sync_both(sandbox: Sandbox, url: str, width: int) -> tuple[list[bytes], list[Any], int]:
    """Full then no-change syncs of HubSpot and Dataverse into the empty database `url` at `width`."""
    settings, overlap = settings_for(sandbox, url, width), Overlap()
    try:
        outcomes = [per_object(sync_system(settings, system, full=full, pull=overlap))
                    for full in (True, False) for system in ("hubspot", "dynamics")]
    finally:
        sync_flow.close_connectors(settings)
    engine = make_engine(url)
    try:
        return canonical_rows(engine), outcomes, overlap.most
    finally:
        engine.dispose()


def assert_same_at_any_width(sandbox: Sandbox, database: Callable[[int], str]) -> None:
    """`database(width)`: the URL of an empty database for the run at that width."""
    rows_one, outcomes_one, most_one = sync_both(sandbox, database(1), 1)
    rows_many, outcomes_many, most_many = sync_both(sandbox, database(4), 4)
    assert most_one == 1 and most_many >= 2, "the wide run pulled objects at once"
    assert all(status == "succeeded" for outcome in outcomes_many for _, status, _ in outcome)
    assert outcomes_many == outcomes_one, "same objects, in the same order, with the same counts and API calls"
    assert len(rows_many) > 500 and rows_many == rows_one


def test_pulled_at_once_the_rows_and_counts_are_those_of_one_after_another_on_sqlite(
        sandbox: Sandbox, tmp_path: Path) -> None:
    def database(width: int) -> str:
        url = f"sqlite:///{tmp_path / f'hub-{width}.db'}"
        upgrade(make_engine(url))
        return url

    assert_same_at_any_width(sandbox, database)


def test_pulled_at_once_the_rows_and_counts_are_those_of_one_after_another_on_postgresql(
        sandbox: Sandbox, postgres_engine: Engine, postgres_database: str) -> None:
    def database(width: int) -> str:
        truncate_all(postgres_engine)
        return postgres_database

    assert_same_at_any_width(sandbox, database)


def test_a_fatal_error_stops_the_crm_once_the_objects_in_flight_end(sandbox: Sandbox, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(make_engine(url))
    rejected = "HubSpot rejected the access token (401)"

    def reject(object_type: str) -> None:
        if object_type in ("calls", "email_events"):  # the first two of the interaction wave, pulled together
            time.sleep(0.2)
            raise AuthError("hubspot", rejected)

    settings = settings_for(sandbox, url, 2)
    try:
        result = sync_system(settings, "hubspot", pull=Overlap(before=reject))
    finally:
        sync_flow.close_connectors(settings)
    names = [item.object_type for item in result.objects]
    assert names[-2:] == ["calls", "email_events"], "both in flight ended; nothing after them started"
    assert {"emails", "meetings", "notes", "tasks"}.isdisjoint(names)
    assert all(item.status == "succeeded" for item in result.objects[:-2])
    assert result.error == f"hubspot: {rejected}" or rejected in (result.error or "")
    assert result.status == "partial"
    assert [line for line in result.problems() if rejected in line] == [result.problems()[0]]
    assert len(result.problems()) == 1, result.problems()
    with make_engine(url).connect() as connection:
        states = dict(connection.execute(text(
            "SELECT object_type, status FROM sync_run WHERE system = 'hubspot'")).all())
    assert states["calls"] == states["email_events"] == "failed" and "running" not in states.values()


def test_each_read_counts_its_own_requests_while_others_share_the_meter() -> None:
    meter, rounds = RequestMeter(), 200
    meet = threading.Barrier(3)
    pages: dict[str, list[int]] = {}

    def read(name: str, per_page: int) -> None:
        with counted_apart():
            counter = meter.pages()

            def source() -> Iterator[int]:  # the requests are sent in the read-ahead thread
                for _ in range(rounds):
                    for _ in range(per_page):
                        meter.request()
                    yield counter.take()

            meet.wait()
            pages[name] = list(ReadAhead(source()))

    threads = [threading.Thread(target=contextvars.copy_context().run, args=(read, name, per_page))
               for name, per_page in (("one", 1), ("two", 2), ("three", 3))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert pages == {"one": [1] * rounds, "two": [2] * rounds, "three": [3] * rounds}
    assert meter.calls == meter.total == 6 * rounds


def test_objects_pulled_at_once_keep_to_the_crm_budget(sandbox: Sandbox, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """The process's own budget shared by the pulling threads (no Prefect server: one test module of this
    worker may have started a Prefect test harness, whose limit would be another test's size), counted when each
    request is let go: the in-process emulator's own arrival stamps bunch up when its threads wait for the
    interpreter on a loaded machine."""
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.setattr(limits, "_api_url", lambda: None)
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(make_engine(url))
    rate, window = "2/4", 2.0  # a short window: enough requests to test it in a few seconds
    sent: list[float] = []
    let_go = RequestMeter.request

    def request(meter: RequestMeter) -> None:
        let_go(meter)
        sent.append(time.monotonic())

    monkeypatch.setattr(RequestMeter, "request", request)
    sandbox.reset_request_logs()
    settings, overlap = settings_for(sandbox, url, 4, JOURNEYHUB_RATE_HUBSPOT=rate), Overlap()
    try:
        result = sync_system(settings, "hubspot", objects=["calls", "emails", "meetings", "notes", "tasks"],
                             full=True, pull=overlap)
    finally:
        sync_flow.close_connectors(settings)
    assert result.status == "succeeded" and overlap.most >= 2
    assert len(sent) == len(sandbox.request_times("hubspot")), "every request the emulator saw was metered"
    allowed = budget(rate, window)
    assert len(sent) > allowed, "too few requests to put the budget to the test"
    assert peak(sent, window) <= allowed, f"{peak(sent, window)} requests in {window} s, budget {allowed}"


class Stopped(BaseException):
    """What `cli.stop` raises in the main thread on a stop signal."""


def _stop(signum: int, frame: object) -> None:
    raise Stopped(signum)


def test_a_stop_signal_during_a_wave_starts_no_other_pull_and_returns_at_once() -> None:
    started: list[str] = []
    release, ended = threading.Event(), {name: threading.Event() for name in "abcd"}

    def pull(name: str) -> str:
        started.append(name)
        release.wait(30)
        ended[name].set()
        return name

    previous = signal.signal(signal.SIGUSR1, _stop)
    try:
        threading.Timer(0.3, signal.pthread_kill, (threading.main_thread().ident, signal.SIGUSR1)).start()
        with pytest.raises(Stopped):
            run_wave(pull, list("abcd"), 2)
        assert not release.is_set() and sorted(started) == ["a", "b"], "returned with the two in flight"
    finally:
        signal.signal(signal.SIGUSR1, previous)
        release.set()
    assert ended["a"].wait(10) and ended["b"].wait(10)
    time.sleep(0.2)  # the pool's threads would have taken c and d by now, had they not been cancelled
    assert sorted(started) == ["a", "b"]
