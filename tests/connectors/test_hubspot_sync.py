"""Syncing the generated world's HubSpot part into the canonical database through the real loader: row counts,
quarantine, no-change incrementals, kill-and-resume, faults (429 storms, 5xx, records changing and merging
while a sync pages, the search result cap) and association reconciliation."""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from canonical.db import make_engine
from canonical.schema import upgrade
from connectors.base import Page
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.objects import OBJECTS
from connectors.retry import RetryPolicy
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.sync import pull_pages
from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.common.server import EmulatorServer
from sandbox.hubspot import HubSpotData, HubSpotEmulator
from sandbox.runtime import Sandbox
from sandbox.world import World, generate
from tests.connectors.resume import run_sync

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=8, max_seconds=30, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
CRM = [name for name, spec in OBJECTS.items() if spec.kind == "crm"]
STORED = list(OBJECTS)
TABLES = {"person_record": "id, kind, email, phone, first_name, last_name, full_name, company_id, owner_id, "
                           "converted_to, xrefs, custom",
          "company": "*", "deal": "*", "ticket": "*", "interaction": "*",
          "owner": "*", "pipeline_stage": "*",
          "association": "from_id, to_id, system, label, is_primary, source_id, is_deleted",
          "source_record": "id, entity, remote_created_at, remote_updated_at, is_deleted, merged_into, raw_hash",
          "quarantine": "system, object_type, remote_id, reason, detail"}


@cache
def world() -> World:
    return generate(300, 7, ANCHOR)


@pytest.fixture
def emulator() -> Iterator[HubSpotEmulator]:
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emu.load(world().hubspot)
    with EmulatorServer(emu):
        yield emu


def hub(emu: HubSpotEmulator, **options: Any) -> HubSpotConnector:
    return HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emu.base_url,
                                          retry=options.pop("retry", FAST), **options))


def loader(engine: Engine) -> PageLoader:
    return PageLoader(engine, "hubspot", load_mappings(mappings_root(), "hubspot"), run_id="test")


def sync(engine: Engine, connector: HubSpotConnector, objects: list[str], *, full: bool = False) -> dict[str, Any]:
    return {name: batch.counts for name, batch in sync_batches(engine, connector, objects, full=full).items()}


def sync_batches(engine: Engine, connector: HubSpotConnector, objects: list[str], *,
                 full: bool = False) -> dict[str, Any]:
    store = loader(engine)
    return {name: pull_pages(engine, connector, store, name, full=full) for name in objects}


def scalar(engine: Engine, sql: str) -> Any:
    with engine.connect() as connection:
        return connection.execute(text(sql)).scalar()


def snapshot(engine: Engine, *, live_only: bool = False) -> dict[str, list[tuple[Any, ...]]]:
    """Canonical rows and provenance without the hub's own bookkeeping times, for comparing two databases.
    `live_only` leaves out deleted and merged-away records and the rows derived from them (a contact's form
    submissions: the loader does not tombstone those with their contact — reported)."""
    out = {}
    with engine.connect() as connection:
        gone = {row[0] for row in connection.execute(text("SELECT id FROM source_record WHERE is_deleted = true"))}
        for table, columns in TABLES.items():
            rows = [tuple(str(value) for value in row)
                    for row in connection.execute(text(f"SELECT {columns} FROM {table}"))]
            if live_only and table not in ("quarantine",):
                rows = [row for row in rows if row[0] not in gone and row[0].split("#")[0] not in gone]
            out[table] = sorted(rows)
    return out


def sqlite_at(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def touch(emu: HubSpotEmulator, object_type: str, ids: list[str]) -> None:
    with emu.lock:
        store = emu.store.types[object_type]
        for remote_id in ids:
            emu.store.touch(store, store.records[remote_id], emu.now_ms())


def live(emu: HubSpotEmulator, object_type: str) -> list[str]:
    with emu.lock:
        return [str(num) for num in emu.store.types[object_type].active]


# ---------------------------------------------------------------------------------------------- full sync
def expected_rows() -> dict[str, int]:
    data, truth = world().hubspot, world().truth
    bad = [q for q in truth["quarantined"] if q["record"].startswith("hubspot:")]
    contacts = data.objects["contacts"]

    def having(*names: str) -> int:
        return sum(1 for c in contacts if all(c["properties"].get(n) for n in names))

    forms = having("first_conversion_date") + sum(
        1 for c in contacts if c["properties"].get("recent_conversion_date")
        and c["properties"].get("num_conversion_events") not in (None, "0", "1"))
    surveys = having("hs_feedback_last_nps_rating", "hs_feedback_last_survey_date")
    engagements = sum(len(data.objects[name]) for name in ("calls", "meetings", "notes", "tasks", "emails"))
    return {"person_record": len(contacts) - len(bad), "company": len(data.objects["companies"]),
            "deal": len(data.objects["deals"]), "ticket": len(data.objects["tickets"]),
            "interaction": engagements + len(data.email_events) + forms + surveys, "quarantine": len(bad),
            "owner": len(data.owners),
            "pipeline_stage": sum(len(p["stages"]) for pipelines in data.pipelines.values() for p in pipelines)}


def test_a_full_sync_stores_the_world_and_a_second_sync_stores_nothing_for_one_call_each(
        engine: Engine, emulator: HubSpotEmulator) -> None:
    connector = hub(emulator)
    counts = sync(engine, connector, STORED)
    for table, expected in expected_rows().items():
        assert scalar(engine, f"SELECT count(*) FROM {table}") == expected, table
    truth = {(q["record"], q["reason"]) for q in world().truth["quarantined"] if q["record"].startswith("hubspot:")}
    with engine.connect() as connection:
        stored = {(f"hubspot:{row[0]}:{row[1]}", row[2]) for row in connection.execute(text(
            "SELECT object_type, remote_id, reason FROM quarantine"))}
    assert stored == truth, "exactly the world's bad records are quarantined, each for its reason"
    assert sum(c.quarantined for c in counts.values()) == len(truth)
    merged = [c for c in world().hubspot.objects["contacts"] if c["properties"].get("hs_merged_object_ids")]
    assert merged and scalar(engine, "SELECT count(*) FROM source_record WHERE merged_into IS NOT NULL") == sum(
        len(c["properties"]["hs_merged_object_ids"].split(";")) for c in merged)
    records, calls = sum(c.records_read for c in counts.values()), sum(c.api_calls for c in counts.values())
    assert calls * 1000 / records < 5, f"{calls} calls for {records} records"
    crm = sum(counts[name].records_read for name in CRM)
    assert sum(counts[name].api_calls for name in CRM) <= crm / 100 + 2 * len(CRM), "about one list call per 100"

    before = snapshot(engine)
    emulator.requests.reset()
    again = sync(engine, connector, STORED)
    assert all(c.inserted == c.updated == c.deleted == 0 for c in again.values()), again
    assert snapshot(engine) == before
    per_object = emulator.requests.snapshot(False)["counts"]
    assert sum(per_object.values()) <= len(STORED) and all(n == 1 for n in per_object.values()), per_object


# ---------------------------------------------------------------------------------------------- resume
def test_every_object_type_resumes_from_any_committed_page(sqlite_engine: Engine, tmp_path: Path,
                                                           emulator: HubSpotEmulator) -> None:
    """Stopping after each page (a `max_pages` boundary is what a kill right after a commit leaves behind)
    and starting again ends with exactly the rows of an uninterrupted sync."""
    connector = hub(emulator, page_size=40)
    baseline = sqlite_at(tmp_path / "baseline.db")
    pages = {name: batch.pages for name, batch in sync_batches(baseline, connector, STORED).items()}
    assert pages["contacts"] == 8 and pages["email_events"] == 8   # contacts: 7 live pages, 1 of archived ones
    store = loader(sqlite_engine)
    for name in STORED:
        for _ in range(pages[name]):
            assert pull_pages(sqlite_engine, connector, store, name, max_pages=1).pages == 1
    assert snapshot(sqlite_engine) == snapshot(baseline)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(world=world(), anchor=ANCHOR, limits=False) as running:
        yield running


@pytest.mark.parametrize(("mode", "mapping"), [("committed", "here"), ("mid-transaction", "here"),
                                               ("committed", "worker"), ("mid-transaction", "worker")])
def test_a_killed_full_and_incremental_sync_resume_to_the_rows_of_an_uninterrupted_one(
        tmp_path: Path, sandbox: Sandbox, mode: str, mapping: str) -> None:
    """`worker`: pages are mapped in the worker process from the first page on (a page is in flight there
    when the sync dies), and the worker does not outlive the killed sync."""
    emulator = sandbox.hubspot.emulator
    assert isinstance(emulator, HubSpotEmulator)
    killed, clean = tmp_path / "killed.db", tmp_path / "clean.db"
    env = {**sandbox.env, "JOURNEYHUB_DATABASE_URL": f"sqlite:///{killed}",
           "RESUME_WORKER_PIDS": str(tmp_path / "worker.json")}
    env.update({"JOURNEYHUB_MAP_IN_WORKER_AFTER": "0"} if mapping == "worker" else {"JOURNEYHUB_MAP_IN_WORKER": "0"})
    for path in (killed, clean):
        sqlite_at(path).dispose()
    assert run_sync("hubspot", "contacts", env, kill_after_pages=2, mode=mode) is None
    if mapping == "worker":
        assert_gone(json.loads((tmp_path / "worker.json").read_text()))
    run_sync("hubspot", "contacts", env)
    sync(make_engine(f"sqlite:///{clean}"), hub(emulator), ["contacts"])
    assert snapshot(make_engine(f"sqlite:///{killed}")) == snapshot(make_engine(f"sqlite:///{clean}"))

    # changes: 250 touched (two search pages), one created, one merge
    contacts = live(emulator, "contacts")
    touch(emulator, "contacts", contacts[:250])
    emulator.merge_contacts(contacts[10], contacts[11])
    with emulator.lock:
        store = emulator.store.types["contacts"]
        emulator.store.create(store, emulator.store.prepare(store, {"email": "new@example.com", "lastname": "New"},
                                                            creating=True), [], emulator.now_ms())
    shutil.copy(clean, tmp_path / "before.db")
    assert run_sync("hubspot", "contacts", env, kill_after_pages=1, mode=mode) is None
    resumed = run_sync("hubspot", "contacts", env)
    assert resumed is not None and resumed["records_read"] > 0
    sync(make_engine(f"sqlite:///{clean}"), hub(emulator), ["contacts"])
    after = snapshot(make_engine(f"sqlite:///{killed}"))
    assert after == snapshot(make_engine(f"sqlite:///{clean}"))
    assert after != snapshot(make_engine(f"sqlite:///{tmp_path / 'before.db'}")), "the incremental stored changes"


def assert_gone(pids: list[int]) -> None:
    """The processes exit within a few seconds."""
    assert pids, "the mapping worker was not running when the sync died"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()
                 and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]
        if not alive:
            return
        time.sleep(0.1)
    raise AssertionError(f"the mapping worker outlived the killed sync: {alive}")


def test_a_sync_stopped_every_two_pages_makes_progress_past_a_crowded_lookback_window(sqlite_engine: Engine) -> None:
    """1,200 records already stored share the watermark's millisecond, so every read's lookback window
    starts with six pages of records to drop. Stopped every two pages (as the sync flow's tasks are), reads
    must still get through: pages without records are not yielded and the cursor keeps the search position."""
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    stamp = "2026-01-01T00:00:00.000Z"
    emu.load(HubSpotData(objects={"companies": [
        {"id": str(100_000 + i), "properties": {"name": f"Company {i}"}, "createdAt": stamp, "updatedAt": stamp}
        for i in range(1_200)]}))
    with EmulatorServer(emu):
        connector, store = hub(emu), loader(sqlite_engine)
        assert pull_pages(sqlite_engine, connector, store, "companies").counts.inserted == 1_200
        with emu.lock:   # the watermark now sits at the 1,200 records' time; 450 change after it
            companies = emu.store.types["companies"]
            for i, remote_id in enumerate(list(companies.records)[:450]):
                emu.store.update(companies, companies.records[remote_id], {"name": f"Renamed {i}"},
                                 emu.now_ms() + i // 100)
        stored, pulls = 0, 0
        while pulls < 10:
            pulls += 1
            batch = pull_pages(sqlite_engine, connector, store, "companies", max_pages=2)
            stored += batch.counts.updated
            if batch.done:
                break
        assert stored == 450 and pulls <= 4
        with emu.lock:   # and 350 deletions: four pages of tombstones in the archived listing
            for remote_id in list(companies.records)[-350:]:
                emu.store.archive(companies, companies.records[remote_id], emu.now_ms())
        eager = hub(emu, archived_check_interval_seconds=0)
        deleted, pulls = 0, 0
        while pulls < 10:
            pulls += 1
            batch = pull_pages(sqlite_engine, eager, store, "companies", max_pages=2)
            deleted += batch.counts.deleted
            if batch.done:
                break
    assert deleted == 350 and pulls <= 4
    assert scalar(sqlite_engine, "SELECT count(*) FROM company WHERE name LIKE 'Renamed%'") == 450


# ---------------------------------------------------------------------------------------------- faults
def test_a_429_storm_and_random_5xx_end_with_the_same_rows(sqlite_engine: Engine, tmp_path: Path,
                                                           emulator: HubSpotEmulator) -> None:
    objects = ["contacts", "deals", "calls"]
    baseline = sqlite_at(tmp_path / "baseline.db")
    sync(baseline, hub(emulator), objects)
    emulator.requests.reset()
    emulator.faults.configure(FaultConfig(seed=3, error_rate=0.15, rules=[
        FaultRule(kind="rate_limit", path="/crm/v3/objects/contacts", times=5, retry_after=1)]))
    connector = hub(emulator)
    sync(sqlite_engine, connector, objects)
    assert snapshot(sqlite_engine) == snapshot(baseline)
    log = emulator.requests.snapshot()["log"]
    assert sum(1 for e in log if e["fault"] == "rate_limit") == 5 and any(e["fault"] == "error" for e in log)
    assert connector.api_calls == len(log), "every attempt is counted"

    touch(emulator, "contacts", live(emulator, "contacts")[:150])   # the same for an incremental sync
    emulator.faults.configure(FaultConfig(seed=4, error_rate=0.15, rules=[
        FaultRule(kind="rate_limit", path="/search", times=4, retry_after=1),
        FaultRule(kind="rate_limit", path="/crm/v4/associations", times=2, retry_after=1)]))
    sync(sqlite_engine, connector, ["contacts"])
    assert sum(1 for e in emulator.requests.snapshot()["log"] if e["fault"] == "rate_limit") == 5 + 4 + 2
    emulator.faults.configure(FaultConfig())
    sync(baseline, hub(emulator), ["contacts"])
    assert snapshot(sqlite_engine) == snapshot(baseline)


def test_email_events_survive_429s_5xx_and_a_stale_offset(emulator: HubSpotEmulator) -> None:
    clean = [r.remote_id for page in hub(emulator).read("email_events", None) for r in page.records]
    emulator.faults.configure(FaultConfig(seed=5, error_rate=0.2, rules=[
        FaultRule(kind="rate_limit", path="/email/public/v1/events", times=3, retry_after=1)]))
    pages = hub(emulator).read("email_events", None)
    first = next(pages)
    pages.close()
    assert json.loads(first.cursor or "")["resume"]["offset"], "a read killed half-way resumes from its offset"
    rest = [r.remote_id for page in hub(emulator).read("email_events", first.cursor) for r in page.records]
    assert [r.remote_id for r in first.records] + rest == clean and len(clean) == len(world().hubspot.email_events)
    assert {e["fault"] for e in emulator.requests.snapshot()["log"] if e["fault"]} == {"rate_limit", "error"}
    # an offset HubSpot no longer accepts (400): the read starts its window again, and still misses nothing
    emulator.faults.configure(FaultConfig(rules=[FaultRule(kind="error", path="/email/public/v1/events", status=400)]))
    again = {r.remote_id for page in hub(emulator).read("email_events", first.cursor) for r in page.records}
    assert again == set(clean)


def test_records_changing_and_merging_while_a_sync_pages_are_not_lost(sqlite_engine: Engine, tmp_path: Path,
                                                                      emulator: HubSpotEmulator) -> None:
    objects = ["contacts", "calls"]
    emulator.faults.configure(FaultConfig(vendor={"mutate_during_paging": True, "merge_during_sync": 1}))
    connector = hub(emulator, page_size=40, lookback_seconds=0)   # no overlap window to hide a late watermark
    sync(sqlite_engine, connector, objects)
    events = emulator.vendor_events
    assert {e["kind"] for e in events} == {"mutate_during_paging", "merge_during_sync"}
    sync(sqlite_engine, connector, objects)   # the incremental after the full load picks up what changed under it
    emulator.faults.configure(FaultConfig())
    truth = sqlite_at(tmp_path / "truth.db")
    sync(truth, hub(emulator), objects)       # a clean read of the final state
    assert snapshot(sqlite_engine, live_only=True) == snapshot(truth, live_only=True)
    merge = next(e for e in events if e["kind"] == "merge_during_sync")
    loser, survivor = f"hubspot:contacts:{merge['objectIdToMerge']}", f"hubspot:contacts:{merge['primaryObjectId']}"
    with sqlite_engine.connect() as connection:
        row = connection.execute(text("SELECT is_deleted, merged_into FROM source_record WHERE id = :id"),
                                 {"id": loser}).one()
        assert tuple(row) == (True, survivor)
        assert connection.execute(text("SELECT count(*) FROM association WHERE to_id = :id"),
                                  {"id": loser}).scalar() == 0, "the loser's relations point at the survivor"


def test_more_changes_than_the_search_cap_are_read_by_rewindowing() -> None:
    """HubSpot refuses to page a search past 10,000 results; 10,500 changed records are read anyway."""
    count = 10_500
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    stamp = "2026-01-01T00:00:00.000Z"
    emu.load(HubSpotData(objects={"companies": [
        {"id": str(100_000 + i), "properties": {"name": f"Company {i}"}, "createdAt": stamp, "updatedAt": stamp}
        for i in range(count)]}))
    with EmulatorServer(emu):
        connector = hub(emu)
        cursor = None
        for page in connector.read("companies", None, full=True):
            cursor = page.cursor
        base = emu.now_ms()
        with emu.lock:
            store = emu.store.types["companies"]
            for i, remote_id in enumerate(list(store.records)):
                emu.store.touch(store, store.records[remote_id], base + i // 3)   # three records per millisecond
        emu.requests.reset()
        seen = [r.remote_id for page in connector.read("companies", cursor) for r in page.records]
        log = emu.requests.snapshot()["log"]
    assert len(seen) == count == len(set(seen))
    assert all(entry["status"] == 200 for entry in log)
    assert len(log) <= count / 200 + 2


# ---------------------------------------------------------------------------------------------- associations
def test_reconciliation_replaces_associations_that_changed_without_a_modification(
        sqlite_engine: Engine, emulator: HubSpotEmulator) -> None:
    connector = hub(emulator)
    sync(sqlite_engine, connector, ["deals"])
    deal = world().hubspot.objects["deals"][0]["id"]
    key = f"hubspot:deals:{deal}"
    with emulator.lock:
        linked = list(emulator.store.assoc.targets("deals", deal, "contacts"))
        other = next(c for c in live(emulator, "contacts") if c not in linked)
        for contact in linked:
            emulator.store.dissociate("deals", deal, "contacts", contact)
        from sandbox.hubspot.objects import ASSOCIATION_TYPES
        emulator.store.associate("deals", deal, other, ASSOCIATION_TYPES[3])
        emulator.store.touch(emulator.store.types["deals"], emulator.store.types["deals"].records[deal],
                             emulator.now_ms())
    sync(sqlite_engine, connector, ["deals"])
    linked_now = f"SELECT to_id FROM association WHERE from_id = '{key}'"
    assert scalar(sqlite_engine, linked_now) == f"hubspot:contacts:{other}"

    with emulator.lock:   # now an association change alone: updatedAt does not move
        emulator.store.dissociate("deals", deal, "contacts", other)
        emulator.store.associate("deals", deal, linked[0], ASSOCIATION_TYPES[3])
    assert sum(c.records_read for c in sync(sqlite_engine, connector, ["deals"]).values()) == 0
    emulator.requests.reset()
    pages: list[Page] = list(connector.reconcile_associations("deals", datetime.now(UTC) - timedelta(hours=1)))
    assert [r.remote_id for p in pages for r in p.records] == [deal] and all(p.cursor is None for p in pages)
    assert emulator.requests.snapshot(False)["counts"] == {
        "POST /crm/v3/objects/deals/search": 1, "GET /crm/v3/pipelines/{objectType}": 1,
        "POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read": 2}
    assert list(connector.reconcile_associations("companies")) == [], "read without associations: nothing to do"
    store = loader(sqlite_engine)
    for page in pages:
        store.store(page)
    assert scalar(sqlite_engine, linked_now) == f"hubspot:contacts:{linked[0]}"
