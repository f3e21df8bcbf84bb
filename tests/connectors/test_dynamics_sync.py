"""Syncing the generated world's Dataverse part into the canonical database: counts and quarantines, the
cost of an unchanged incremental sync, kill-and-resume in both kill modes during the initial load and a
delta read, and the emulator's faults (throttling, server errors, expiring tokens, rows changing and
contacts merging while the hub pages)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from canonical.db import make_engine
from canonical.schema import upgrade
from connectors.dynamics import DynamicsConfig, DynamicsConnector
from connectors.dynamics.objects import ENTITY_SETS
from connectors.retry import RetryPolicy
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.loader import Counts, PageLoader
from journeyhub.ingest.sync import pull_pages
from sandbox.common.faults import FaultConfig
from sandbox.common.server import EmulatorServer
from sandbox.dynamics import DynamicsEmulator
from sandbox.dynamics import writes as dataverse_writes
from sandbox.world import generate
from tests.connectors.resume import run_sync

ANCHOR = datetime(2026, 11, 22, tzinfo=UTC)
WORLD = generate(300, 7, ANCHOR)
MAPPINGS = load_mappings(mappings_root(), "dynamics")
STORMY = RetryPolicy(max_attempts=12, max_seconds=60, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
# systemusers → owner rows cannot be stored yet (see test_users_become_owners); every other table is synced
SYNCED = [name for name in ENTITY_SETS if name != "systemusers"]
QUARANTINED = {(item["record"].split(":")[1], item["record"].split(":")[2]): item["reason"]
               for item in WORLD.truth["quarantined"] if item["record"].startswith("dynamics:")}
SNAPSHOT = {  # what "the same canonical rows" means: everything but bookkeeping times and run ids
    "source_record": "id, entity, canonical_id, is_deleted, merged_into, raw_hash, remote_created_at, "
                     "remote_updated_at",
    "person_record": "id, kind, email, phone, first_name, last_name, full_name, company_id, owner_id, converted_to, "
                     "xrefs, custom",
    "company": "*", "deal": "*", "ticket": "*", "interaction": "*", "owner": "*",
    "association": "from_id, to_id, system, label, is_primary, source_id, is_deleted",
    "quarantine": "system, object_type, remote_id, reason, resolved_at IS NULL",
}


# ------------------------------------------------------------------------------------------------ helpers
@contextmanager
def dataverse(faults: FaultConfig | None = None, page_size: int = 5000) -> Iterator[DynamicsEmulator]:
    """The world's Dataverse part on a fresh emulator (`page_size`: the server's maximum page size)."""
    emulator = DynamicsEmulator(faults, requests_per_5min=None, max_page_size=page_size)
    emulator.load(WORLD.dynamics)
    with EmulatorServer(emulator):
        yield emulator


def static(emulator: DynamicsEmulator, retry: RetryPolicy = STORMY) -> DynamicsConnector:
    return DynamicsConnector(DynamicsConfig(url=emulator.base_url, access_token="sandbox-token", retry=retry))


def login(emulator: DynamicsEmulator) -> DynamicsConnector:
    """Client credentials, as `Sandbox.login_env` configures them."""
    return DynamicsConnector(DynamicsConfig(
        url=emulator.base_url, token_url=f"{emulator.base_url}/sandbox-tenant/oauth2/v2.0/token",
        client_id="sandbox-client", client_secret="sandbox-secret", retry=STORMY))


def sqlite(path: Path) -> Engine:
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def sync(engine: Engine, connector: DynamicsConnector, sets: list[str] = SYNCED) -> dict[str, Counts]:
    loader = PageLoader(engine, "dynamics", MAPPINGS, run_id=str(uuid.uuid4()))
    return {name: pull_pages(engine, connector, loader, name).counts for name in sets}


def rows(engine: Engine, sql: str, **params: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql), params)]


def snapshot(engine: Engine) -> dict[str, list[tuple[str, ...]]]:
    return {table: sorted(tuple(str(value) for value in row) for row in rows(engine, f"SELECT {columns} FROM {table}"))
            for table, columns in SNAPSHOT.items()}


def world_rows(entity_set: str) -> list[dict[str, Any]]:
    return WORLD.dynamics.rows[entity_set]


def assert_mirrors(engine: Engine, emulator: DynamicsEmulator) -> None:
    """The database holds every emulator row once, at its latest version; merge losers are tombstoned."""
    for entity_set in SYNCED:
        with emulator.lock:
            served = {pk: row["modifiedon"] for pk, row in emulator.store.state(entity_set).rows.items()}
        stored = {remote_id: (deleted, modified) for remote_id, deleted, modified in rows(
            engine, "SELECT remote_id, is_deleted, remote_updated_at FROM source_record WHERE object_type = :t",
            t=entity_set)}
        expected = set(served) - {pk for (name, pk) in QUARANTINED if name == entity_set}
        assert set(stored) == expected, entity_set
        for pk in expected:
            assert str(stored[pk][1]).replace(" ", "T").startswith(served[pk][:19]), (entity_set, pk)


# -------------------------------------------------------------------------------------- full + incremental
def test_a_full_sync_stores_every_table_and_an_unchanged_one_costs_a_call_per_table(engine: Engine) -> None:
    with dataverse() as emulator:
        connector = static(emulator)
        full = sync(engine, connector)
        for entity_set in SYNCED:
            quarantined = sum(1 for (name, _) in QUARANTINED if name == entity_set)
            assert full[entity_set].records_read == len(world_rows(entity_set)), entity_set
            assert full[entity_set].inserted == len(world_rows(entity_set)) - quarantined, entity_set
        assert {(name, pk): reason for _, name, pk, reason, _ in snapshot(engine)["quarantine"]} == QUARANTINED
        counts = dict(rows(engine, "SELECT object_type, COUNT(*) FROM source_record GROUP BY object_type"))
        assert counts == {name: len(world_rows(name)) - sum(1 for (n, _) in QUARANTINED if n == name)
                          for name in SYNCED}
        assert rows(engine, "SELECT COUNT(*) FROM person_record")[0][0] == counts["contacts"] + counts["leads"]
        assert rows(engine, "SELECT COUNT(*) FROM interaction")[0][0] == sum(
            counts[name] for name in ("phonecalls", "appointments", "emails", "tasks", "annotations"))
        losers = {(row["contactid"], row["_masterid_value"]) for row in world_rows("contacts") if row.get("merged")}
        assert losers, "the world merges Dataverse contacts"
        assert set(rows(engine, "SELECT remote_id, merged_into FROM source_record WHERE object_type = 'contacts' "
                                "AND is_deleted")) == {(loser, f"dynamics:contacts:{master}")
                                                       for loser, master in losers}
        before = snapshot(engine)
        calls = connector.api_calls
        again = sync(engine, connector)
        assert connector.api_calls - calls <= len(SYNCED)
        assert all(counts.api_calls <= 1 and counts.records_read == 0 for counts in again.values())
        assert snapshot(engine) == before


def test_users_become_owners(sqlite_engine: Engine) -> None:
    with dataverse() as emulator:
        counts = sync(sqlite_engine, static(emulator), ["systemusers"])["systemusers"]
    assert counts.inserted == len(world_rows("systemusers")) + 1, "the world's users and the application user"
    assert rows(sqlite_engine, "SELECT COUNT(*) FROM owner")[0][0] == counts.inserted


# --------------------------------------------------------------------------------------------- resume
def child_env(emulator: DynamicsEmulator, database: Path) -> dict[str, str]:
    return {"DYNAMICS_URL": emulator.base_url, "DYNAMICS_ACCESS_TOKEN": "sandbox-token",
            "JOURNEYHUB_DATABASE_URL": f"sqlite:///{database}"}


def touch_and_churn(emulator: DynamicsEmulator, changed: int) -> None:
    """Another user edits `changed` contacts, deletes three and creates two (a delta read of several pages)."""
    table = emulator.schema.tables["contacts"]
    with emulator.lock:
        ids = sorted(emulator.store.state("contacts").rows)
        for remote_id in ids[:changed]:
            emulator.touch("contacts", remote_id)
        for remote_id in ids[-3:]:
            emulator.store.remove("contacts", remote_id)
        for number in range(2):
            row = dataverse_writes.new_row(table, str(uuid.uuid4()), {"lastname": f"New {number}", "statecode": 0,
                                                                     "statuscode": 1},
                                           now=emulator.store.now_text(), version=emulator.store.next_version(),
                                           user_id=emulator.user_id)
            emulator.store.put("contacts", row)


def test_a_sync_killed_during_the_initial_load_resumes_to_the_same_rows(tmp_path: Path) -> None:
    with dataverse(page_size=20) as emulator:
        baseline = sqlite(tmp_path / "baseline.db")
        sync(baseline, static(emulator), ["contacts"])
        for mode in ("committed", "mid-transaction"):
            database = tmp_path / f"{mode}.db"
            sqlite(database).dispose()
            env = child_env(emulator, database)
            assert run_sync("dynamics", "contacts", env, kill_after_pages=2, mode=mode) is None
            resumed = run_sync("dynamics", "contacts", env)
            assert resumed is not None and resumed["records_read"] == len(world_rows("contacts")) - (
                40 if mode == "committed" else 20), "the resumed run continues where the committed pages end"
            assert snapshot(make_engine(f"sqlite:///{database}")) == snapshot(baseline), mode


def test_a_sync_killed_during_a_delta_read_resumes_to_the_same_rows(tmp_path: Path) -> None:
    with dataverse(page_size=20) as emulator:
        databases = {name: sqlite(tmp_path / f"{name}.db") for name in ("baseline", "committed", "mid-transaction")}
        for engine in databases.values():
            sync(engine, static(emulator), ["contacts"])
        touch_and_churn(emulator, changed=60)
        delta = sync(databases["baseline"], static(emulator), ["contacts"])["contacts"]
        assert (delta.records_read, delta.deleted) == (65, 3)
        for mode in ("committed", "mid-transaction"):
            env = child_env(emulator, tmp_path / f"{mode}.db")
            assert run_sync("dynamics", "contacts", env, kill_after_pages=2, mode=mode) is None
            assert run_sync("dynamics", "contacts", env) is not None
            assert snapshot(databases[mode]) == snapshot(databases["baseline"]), mode


# --------------------------------------------------------------------------------------------- faults
@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[tuple[str, ...]]]:
    """The canonical rows of an undisturbed full sync."""
    engine = sqlite(tmp_path_factory.mktemp("clean") / "hub.db")
    with dataverse() as emulator:
        sync(engine, static(emulator))
    return snapshot(engine)


def faulted_statuses(emulator: DynamicsEmulator) -> list[int]:
    return [entry.status for entry in emulator.requests.entries if entry.fault]


@pytest.mark.parametrize("faults", [
    FaultConfig(seed=3, rate_limit_rate=0.35, retry_after=0),
    FaultConfig(seed=4, error_rate=0.3, error_status=503, retry_after=0),
], ids=["429-storm", "random-5xx"])
def test_throttling_and_server_errors_change_nothing_but_the_bill(sqlite_engine: Engine, faults: FaultConfig,
                                                                  clean: dict[str, list[tuple[str, ...]]]) -> None:
    with dataverse(faults, page_size=40) as emulator:
        connector = static(emulator)
        sync(sqlite_engine, connector)
        assert faulted_statuses(emulator), "the emulator did refuse requests"
        assert connector.api_calls == len(emulator.requests.entries)
    assert snapshot(sqlite_engine) == clean


def test_a_token_expiring_mid_sync_is_replaced_without_losing_a_page(sqlite_engine: Engine,
                                                                     clean: dict[str, list[tuple[str, ...]]]) -> None:
    with dataverse(FaultConfig(token_ttl_requests=4), page_size=40) as emulator:
        connector = login(emulator)
        sync(sqlite_engine, connector)
        token_calls = emulator.requests.counts["POST /{tenant}/oauth2/v2.0/token"]
        refused = [entry for entry in emulator.requests.entries if entry.status == 401]
        assert token_calls >= 4 and len(refused) == token_calls - 1, "one 401 per expiry, then a new token"
        assert connector.api_calls == len(emulator.requests.entries), "token calls are counted too"
    assert snapshot(sqlite_engine) == clean


def test_rows_saved_while_the_hub_pages_are_stored_once_at_their_latest_version(sqlite_engine: Engine) -> None:
    with dataverse(FaultConfig(vendor={"mutate_during_paging": True}), page_size=20) as emulator:
        connector = static(emulator)
        sync(sqlite_engine, connector)
        assert emulator.mutations, "rows were saved by someone else during the read"
        sync(sqlite_engine, connector)
        assert_mirrors(sqlite_engine, emulator)


def test_contacts_merged_during_a_sync_end_up_tombstoned_and_repointed(sqlite_engine: Engine) -> None:
    with dataverse(FaultConfig(vendor={"merge_during_sync": True}), page_size=20) as emulator:
        connector = static(emulator)
        sync(sqlite_engine, connector)
        ((_, master, loser),) = emulator.merges
        sync(sqlite_engine, connector)
        assert_mirrors(sqlite_engine, emulator)
    loser_key, master_key = f"dynamics:contacts:{loser}", f"dynamics:contacts:{master}"
    assert rows(sqlite_engine, "SELECT is_deleted, merged_into FROM source_record WHERE id = :id", id=loser_key) == [
        (True, master_key)]
    assert rows(sqlite_engine, "SELECT COUNT(*) FROM association WHERE to_id = :id AND NOT is_deleted",
                id=loser_key) == [(0,)]
