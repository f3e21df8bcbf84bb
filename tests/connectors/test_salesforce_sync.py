"""Syncing the generated world's Salesforce part into the canonical databases (SQLite and PostgreSQL):
counts and quarantine against the world, call budgets, Bulk API 2.0 vs REST, kill-and-resume, and the
vendor's faults (throttling, 5xx, expiring sessions, records edited or merged while the sync pages)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, inspect, text

from connectors.base import Page
from connectors.errors import AuthError, FieldNotFound
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce import reader as reader_module
from connectors.salesforce.reader import State, sf_time
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.schema import plan_read
from journeyhub.ingest.sync import Batch, close_read, pull_pages, read_cursor
from sandbox.common.faults import FaultConfig
from sandbox.common.server import EmulatorServer
from sandbox.salesforce import SalesforceData, SalesforceEmulator
from sandbox.world import generate
from tests.conftest import truncate_all
from tests.connectors.resume import run_sync

FAST = RetryPolicy(max_attempts=8, max_seconds=30, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
ORDER = ("User", "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Case", "Task", "Event",
         "EmailMessage")
SPECS = load_mappings(mappings_root(), "salesforce")
BATCH = 200
VOLATILE = {"first_seen_at", "last_seen_at", "updated_at", "deleted_at", "last_run_id", "run_id", "resolved_at",
            "occurrences", "customer_id", "match_rule", "match_evidence", "keys_version", "email_key", "phone_key",
            "id_1", "detail", "raw"}
SNAPSHOT_TABLES = ("source_record", "person_record", "company", "deal", "ticket", "interaction", "owner",
                   "association", "quarantine")


@pytest.fixture(scope="module")
def world() -> Any:
    return generate(300, 7, datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))


@pytest.fixture
def emulator(world: Any) -> Iterator[SalesforceEmulator]:
    em = SalesforceEmulator()
    em.load(world.salesforce)
    with EmulatorServer(em):
        yield em


def connector(em: SalesforceEmulator, **kw: Any) -> SalesforceConnector:
    options: dict[str, Any] = {"access_token": "sandbox-token", "batch_size": BATCH, "retry": FAST, **kw}
    return SalesforceConnector(SalesforceConfig(instance_url=em.base_url, **options))


def sync(engine: Engine, client: SalesforceConnector, objects: tuple[str, ...] = ORDER,
         full: bool = False) -> dict[str, tuple[Batch, int]]:
    """Pull each object to the end; (batch, API calls) per object."""
    loader = PageLoader(engine, "salesforce", SPECS, run_id="test")
    done = {}
    for object_type in objects:
        before = client.api_calls
        batch = pull_pages(engine, client, loader, object_type, full=full)
        done[object_type] = (batch, client.api_calls - before)
    return done


def snapshot(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """The canonical tables without bookkeeping columns (times of this run, identity's work)."""
    out = {}
    with engine.connect() as connection:
        for table in SNAPSHOT_TABLES:
            columns = [c["name"] for c in inspect(engine).get_columns(table) if c["name"] not in VOLATILE]
            rows = connection.execute(text(f"SELECT {', '.join(columns)} FROM {table}")).all()
            out[table] = sorted(tuple(_plain(value) for value in row) for row in rows)
    return out


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return json.dumps(json.loads(value), sort_keys=True)
        except ValueError:
            return value
    return value


def as_utc(value: datetime | str) -> datetime:
    """A stored time (SQLite hands back text on raw queries) as an aware UTC datetime."""
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC)


def count(engine: Engine, sql: str) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text(sql)).scalar_one())


# ------------------------------------------------------------------------------------------------ full sync
def test_a_full_sync_stores_the_world_and_a_second_sync_costs_one_call_per_object(
        engine: Engine, world: Any, emulator: SalesforceEmulator) -> None:
    records = world.salesforce.records
    client = connector(emulator)
    first = sync(engine, client)
    truth = {(q["record"].split(":")[1], q["record"].split(":")[2], q["reason"])
             for q in world.truth["quarantined"] if q["record"].startswith("salesforce:")}
    with engine.connect() as connection:
        quarantined = set(connection.execute(text("SELECT object_type, remote_id, reason FROM quarantine")).all())
    assert quarantined == truth and len(truth) == 2, "exactly the world's bad records, for the right reason"
    people = len(records["Contact"]) + len(records["Lead"]) - len(truth)
    assert count(engine, "SELECT COUNT(*) FROM person_record") == people
    assert count(engine, "SELECT COUNT(*) FROM company") == len(records["Account"])
    assert count(engine, "SELECT COUNT(*) FROM owner") == len(records["User"]) + 1, "+ the API user"
    assert count(engine, "SELECT COUNT(*) FROM deal") == len(records["Opportunity"])
    assert count(engine, "SELECT COUNT(*) FROM ticket") == len(records["Case"])
    assert count(engine, "SELECT COUNT(*) FROM interaction") == sum(
        len(records[name]) for name in ("Task", "Event", "EmailMessage"))
    assert count(engine, "SELECT COUNT(*) FROM association WHERE source_id LIKE 'salesforce:OpportunityContact%'"
                 ) == len(records["OpportunityContactRole"])
    losers = {r["Id"]: r["MasterRecordId"] for r in records["Contact"] if r.get("MasterRecordId")}
    with engine.connect() as connection:
        merged = dict(connection.execute(text("SELECT remote_id, merged_into FROM source_record "
                                              "WHERE merged_into IS NOT NULL")).all())
    assert merged == {rid: f"salesforce:Contact:{master}" for rid, master in losers.items()} and losers
    total = sum(batch.counts.records_read for batch, _ in first.values())
    calls = sum(calls for _, calls in first.values())
    pages = sum(batch.pages for batch, _ in first.values())
    assert calls == pages, "one call per page"
    assert pages <= len(ORDER) + total / BATCH

    second = sync(engine, client)
    for object_type, (batch, calls) in second.items():
        assert calls <= 1, f"{object_type}: a no-change incremental sync is one query"
        assert batch.pages == 0 and batch.counts.records_read == 0, f"{object_type} stored {batch.counts}"


# ------------------------------------------------------------------------------------------------ bulk
def test_a_bulk_first_load_gives_the_same_rows_as_the_rest_path(engine: Engine, emulator: SalesforceEmulator,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    objects = ("Contact", "Lead", "Opportunity", "Task", "EmailMessage")
    rest = connector(emulator)
    sync(engine, rest, objects)
    expected = snapshot(engine)
    truncate_all(engine)
    monkeypatch.setattr(reader_module, "BULK_CHUNK_PAGES", 1)   # several result locators per job
    bulk = connector(emulator, bulk_threshold=10)
    done = sync(engine, bulk, objects)
    assert snapshot(engine) == expected
    jobs = emulator.bulk.jobs.values()
    assert {job.sobject for job in jobs} == set(objects) and all(job.operation == "queryAll" for job in jobs)
    for object_type, (batch, _) in done.items():
        state = State.load(read_cursor(engine, "salesforce", object_type))
        assert state.bulk is None and state.since, f"{object_type}: the load ends on an incremental watermark"
        assert batch.pages == -(-batch.counts.records_read // BATCH)
    again = sync(engine, bulk, objects)
    assert all(calls <= 1 and batch.counts.records_read == 0 for batch, calls in again.values())


def test_a_failed_bulk_job_falls_back_to_rest(engine: Engine, world: Any) -> None:
    em = SalesforceEmulator(FaultConfig(vendor={"bulk_query_failure": True}))
    em.load(world.salesforce)
    with EmulatorServer(em):
        done = sync(engine, connector(em, bulk_threshold=10), ("Task",))
    assert done["Task"][0].counts.inserted == len(world.salesforce.records["Task"])


# ------------------------------------------------------------------------------------------------ resume
RESUME = [  # (path, first load or incremental, kill mode)
    ("rest", "full", "committed"),
    ("rest", "incremental", "mid-transaction"),
    ("bulk", "full", "mid-transaction"),
    ("bulk", "full", "committed"),
]


@pytest.mark.parametrize(("path", "phase", "mode"), RESUME)
def test_a_sync_killed_anywhere_resumes_to_exactly_the_same_rows(
        engine: Engine, emulator: SalesforceEmulator, path: str, phase: str, mode: str) -> None:
    env = {"JOURNEYHUB_DATABASE_URL": engine.url.render_as_string(hide_password=False),
           "SALESFORCE_INSTANCE_URL": emulator.base_url, "SALESFORCE_ACCESS_TOKEN": "sandbox-token",
           "SALESFORCE_BATCH_SIZE": str(BATCH), "SALESFORCE_BULK_THRESHOLD": "10" if path == "bulk" else "50000"}
    if phase == "incremental":
        sync(engine, connector(emulator), ("Task",))
        with emulator.lock:  # > 2 pages of changes: edits, deletes, a new record
            tasks = sorted(record["Id"] for record in emulator.store.live("Task"))
            for rid in tasks[:450]:
                emulator.store.touch(rid)
            for rid in tasks[450:455]:
                emulator.store.delete("Task", rid)
            emulator.store.create("Task", {"Subject": "Created later", "WhoId": None})
    assert run_sync("salesforce", "Task", env, kill_after_pages=1, mode=mode) is None
    counts = run_sync("salesforce", "Task", env)
    assert counts is not None and counts["records_read"] > 0
    resumed = snapshot(engine)
    truncate_all(engine)
    sync(engine, connector(emulator), ("Task",))  # the same data, read in one go
    assert resumed == snapshot(engine)


# ------------------------------------------------------------------------------------------------ faults
def test_429_and_503_storms_are_ridden_out(engine: Engine, world: Any) -> None:
    em = SalesforceEmulator(FaultConfig(seed=3, rate_limit_rate=0.25, error_rate=0.15, retry_after=0))
    em.load(world.salesforce)
    with EmulatorServer(em):
        client = connector(em)
        done = sync(engine, client, ("Contact", "Task"))
        faulted = em.requests.snapshot()["log"]
    assert sum(1 for entry in faulted if entry["fault"]) >= 2
    records = world.salesforce.records
    assert done["Task"][0].counts.inserted == len(records["Task"])
    assert done["Contact"][0].counts.inserted + done["Contact"][0].counts.deleted + \
        done["Contact"][0].counts.quarantined == len(records["Contact"])


def test_an_expiring_session_is_renewed_with_client_credentials_but_fatal_with_a_session_id(
        engine: Engine, world: Any) -> None:
    em = SalesforceEmulator(FaultConfig(token_ttl_requests=3))
    em.load(world.salesforce)
    with EmulatorServer(em):
        login = connector(em, access_token=None, client_id="sandbox-client", client_secret="sandbox-secret")
        done = sync(engine, login, ("Task", "EmailMessage"))
        assert done["Task"][0].counts.inserted == len(world.salesforce.records["Task"])
        assert em.requests.counts["POST /services/oauth2/token"] >= 2, "logged in again when the session expired"
        truncate_all(engine)
    em = SalesforceEmulator(FaultConfig(token_ttl_requests=1))  # the session expires after the first page
    em.load(world.salesforce)
    with EmulatorServer(em):
        em.tokens.add("static-session")
        with pytest.raises(AuthError, match="cannot be refreshed"):
            sync(engine, connector(em, access_token="static-session"), ("Task",))
        assert 0 < count(engine, "SELECT COUNT(*) FROM interaction") <= BATCH, "pages before the expiry are kept"


def test_records_edited_while_the_sync_pages_are_read_again_next_time(engine: Engine, world: Any) -> None:
    em = SalesforceEmulator(FaultConfig(seed=5, vendor={"mutate_during_paging": True}))
    em.load(world.salesforce)
    with EmulatorServer(em):
        client = connector(em)
        sync(engine, client, ("Task",))
        assert em.mutations, "the fault edited records while the query paged"
        sync(engine, client, ("Task",))
        with engine.connect() as connection:
            stored = dict(connection.execute(text(
                "SELECT remote_id, remote_updated_at FROM source_record WHERE object_type = 'Task'")).all())
        for record in em.records("Task"):
            modified = datetime.fromisoformat(record["LastModifiedDate"].replace("+0000", "+00:00"))
            assert as_utc(stored[record["Id"]]) == modified, record["Id"]


def test_a_merge_during_the_sync_tombstones_the_loser_and_points_it_at_the_survivor(
        engine: Engine, world: Any) -> None:
    em = SalesforceEmulator(FaultConfig(seed=2, vendor={"merge_during_sync": True}))
    em.load(world.salesforce)
    with EmulatorServer(em):
        client = connector(em)
        sync(engine, client, ("Contact",))
        assert len(em.merges) == 1
        sync(engine, client, ("Contact",))
    _, master, loser = em.merges[0]
    with engine.connect() as connection:
        row = connection.execute(text("SELECT is_deleted, merged_into FROM source_record WHERE remote_id = :id"),
                                 {"id": loser}).one()
    assert bool(row[0]) and row[1] == f"salesforce:Contact:{master}"


# ------------------------------------------------------------------------------------------------ reader
def ids(pages: list[Page], deleted: bool | None = None) -> list[str]:
    return [r.remote_id for page in pages for r in page.records if deleted is None or r.deleted == deleted]


def test_an_expired_query_locator_restarts_from_the_committed_watermark(emulator: SalesforceEmulator) -> None:
    client = connector(emulator)
    pages = client.read("Task", None)
    first = next(pages)
    with emulator.lock:
        emulator.cursors.clear()  # the server forgets the query (idle timeout, too many open cursors)
    rest = list(pages)
    seen = ids([first, *rest])
    assert len(seen) == len(set(seen)) == len(emulator.records("Task"))
    assert emulator.requests.counts["GET /services/data/v{version}/queryAll"] == 2, "the query ran again"


def test_hard_deletes_come_from_get_deleted_and_recycle_bin_rows_keep_their_data(
        world: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    shift = [timedelta(0)]
    em = SalesforceEmulator(clock=lambda: datetime.now(UTC) + shift[0])
    em.load(world.salesforce)
    with EmulatorServer(em):
        client = connector(em, deleted_check_interval_seconds=3600)
        pages = list(client.read("Case", None))
        state = State.load(pages[-1].cursor)
        assert state.deleted_checked is not None, "a first load covers deletions up to its start"
        cases = sorted(record["Id"] for record in em.records("Case"))
        shift[0] = timedelta(minutes=-5)  # deleted a few minutes ago, after the last check below
        with em.lock:
            for rid in cases[:3]:
                em.store.delete("Case", rid)
        state.deleted_checked = sf_time(datetime.now(UTC) - timedelta(hours=2))
        pages = list(client.read("Case", state.dump()))
        assert em.requests.counts["GET /services/data/v{version}/sobjects/{sobject}/deleted"] == 1
        tombstones = {r.remote_id: r for page in pages for r in page.records if r.deleted}
        assert set(tombstones) == set(cases[:3]) and all(r.data for r in tombstones.values())
        after = State.load(pages[-1].cursor)
        assert after.deleted_checked is not None and after.deleted_checked > state.deleted_checked
        assert not [p for p in client.read("Case", after.dump()) if p.records], "not due again within the hour"

        # rows purged from the recycle bin are gone from queryAll too: they come as bare tombstones
        monkeypatch.setattr(reader_module.ObjectRead, "_by_ids", lambda self, spec, state, chunk: {})
        pages = list(client.read("Case", state.dump()))
    bare = [r for page in pages for r in page.records if r.data is None]
    assert {r.remote_id for r in bare} == set(cases[:3]) and all(r.deleted for r in bare)


def test_an_org_without_the_custom_fields_still_syncs(engine: Engine) -> None:
    em = SalesforceEmulator(custom_fields=False)
    em.load(SalesforceData(records={"Task": [
        {"Subject": f"Call {index}", "Status": "Completed", "TaskSubtype": "Call", "Type": "Call",
         "CallType": "Outbound", "CallDisposition": "Completed", "ActivityDate": "2025-05-01",
         "CreatedDate": "2025-05-01T10:00:00.000+0000", "SystemModstamp": "2025-05-01T10:00:00.000+0000"}
        for index in range(5)]}))
    with EmulatorServer(em):
        client = connector(em)
        plan = plan_read(engine, client, SPECS["Task"])
        batch = pull_pages(engine, client, PageLoader(engine, "salesforce", SPECS, run_id="test"), "Task",
                           fields=plan.fields)
    assert batch.counts.inserted == 5 and plan.problem() is None
    assert plan.warnings() == [
        "salesforce Task: External_Id__c not in this org; the hub's own mirrored Tasks cannot be recognised (an "
        "admin creates External_Id__c before the first push)",
        "salesforce Task: Survey_Score__c not in this org; survey scores from Salesforce Tasks are not read",
        "salesforce Task: Review_Rating__c not in this org; review ratings from Salesforce Tasks are not read"]


def test_a_field_the_org_does_not_have_is_refused_by_name(emulator: SalesforceEmulator) -> None:
    """A field deleted since the org was described: queryAll answers INVALID_FIELD, which names it (the hub
    then describes the org again and reads without it: tests/ingest/test_schema.py)."""
    client = connector(emulator)
    with pytest.raises(FieldNotFound) as error:
        list(client.read("Task", None, fields=["Subject", "Retired_Score__c"]))
    assert error.value.fields == ["Retired_Score__c"] and "mappings/salesforce/Task.yaml" in error.value.message


def test_an_empty_object_costs_one_call_per_incremental_read(world: Any) -> None:
    em = SalesforceEmulator()
    em.load({"Contact": world.salesforce.records["Contact"][:3]})
    with EmulatorServer(em):
        client = connector(em)
        cursor = list(client.read("EmailMessage", None))[-1].cursor
        before = client.api_calls
        assert list(client.read("EmailMessage", cursor)) == [] and client.api_calls - before == 1


def test_a_pull_in_batches_with_its_read_kept_open_queries_once(engine: Engine, emulator: SalesforceEmulator) -> None:
    """Flows pull in batches (a Prefect task each); with the read kept open between them the object is one
    SOQL query followed to its end, as in one batch, where each batch of its own re-queries from the cursor."""

    def batched(keep_open: str | None) -> tuple[int, int, dict[str, list[tuple[Any, ...]]]]:
        truncate_all(engine)
        client = connector(emulator)
        loader = PageLoader(engine, "salesforce", SPECS, run_id="test")
        batches = 0
        try:
            while True:
                batch = pull_pages(engine, client, loader, "Task", full=batches == 0, max_pages=1, keep_open=keep_open)
                batches += 1
                if batch.done or batch.counts.records_read == 0:
                    break
        finally:
            close_read("run", "salesforce", "Task")
        return client.api_calls, batches, snapshot(engine)

    truncate_all(engine)
    whole_client = connector(emulator)
    whole = pull_pages(engine, whole_client, PageLoader(engine, "salesforce", SPECS, run_id="test"), "Task", full=True)
    expected = snapshot(engine)
    kept_calls, kept_batches, kept = batched("run")
    plain_calls, _, plain = batched(None)
    assert kept_batches > whole.pages >= 2, "a batch per page"
    assert kept_calls == whole_client.api_calls, "one query and its locators, as one batch"
    assert plain_calls > kept_calls, "batches of their own query again at each batch"
    assert kept == plain == expected
