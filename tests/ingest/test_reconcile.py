"""Nightly reconciliation through the connector protocol, on SQLite and PostgreSQL: a full re-read with the fields
its mapping reads (checked against the org, like a sync) tombstones what the CRM purged, keeps the rest, and
runs the connector's association pass."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, select, text

from canonical.models import SourceRecord
from connectors.dynamics import DynamicsConfig, DynamicsConnector
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.retry import RetryPolicy
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.reconcile import reconcile_object
from journeyhub.ingest.sync import pull_pages
from sandbox.common.server import EmulatorServer
from sandbox.dynamics import DynamicsData, DynamicsEmulator
from sandbox.hubspot import HubSpotData, HubSpotEmulator

FAST = RetryPolicy(max_attempts=2, max_seconds=5, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
IDS = [str(uuid.UUID(int=index + 1)) for index in range(3)]


def test_reconciliation_tombstones_what_the_crm_purged_and_nothing_else(engine: Engine) -> None:
    emulator = DynamicsEmulator(requests_per_5min=None)
    emulator.load(DynamicsData(rows={"contacts": [
        {"contactid": remote_id, "lastname": f"Person {index}", "emailaddress1": f"p{index}@example.com",
         "createdon": "2025-01-01T00:00:00Z", "modifiedon": "2025-01-01T00:00:00Z"}
        for index, remote_id in enumerate(IDS)]}))
    with EmulatorServer(emulator):
        connector = DynamicsConnector(DynamicsConfig(url=emulator.base_url, access_token="sandbox-token", retry=FAST))
        loader = PageLoader(engine, "dynamics", load_mappings(mappings_root(), "dynamics"), "reconcile-test")
        first = reconcile_object(engine, connector, loader, "contacts", run_id="reconcile-1")
        with emulator.lock:
            emulator.store.remove("contacts", IDS[1])   # purged: no tombstone will ever come
        second = reconcile_object(engine, connector, loader, "contacts", run_id="reconcile-2")
    with engine.connect() as connection:
        deleted = dict(connection.execute(select(SourceRecord.remote_id, SourceRecord.is_deleted)
                                          .where(SourceRecord.object_type == "contacts")).all())
    assert (first.purged, second.purged) == (0, 1)
    assert deleted == {IDS[0]: False, IDS[1]: True, IDS[2]: False}


STAMP = "2026-01-01T00:00:00.000Z"


def contacts(*ids: int) -> HubSpotData:
    return HubSpotData(objects={"contacts": [
        {"id": str(n), "properties": {"email": f"c{n}@example.com", "firstname": f"First{n}"},
         "createdAt": STAMP, "updatedAt": STAMP} for n in ids]})


def test_a_reconciliation_reads_the_mapped_fields_and_tombstones_what_is_gone(engine: Engine) -> None:
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emu.load(contacts(101, 102, 103))
    loader = PageLoader(engine, "hubspot", load_mappings(mappings_root(), "hubspot"), run_id="run-1")
    with EmulatorServer(emu):
        hub = HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emu.base_url))
        pull_pages(engine, hub, loader, "contacts")
        emu.load(contacts(101, 102))          # 103 purged: no tombstone will ever come for it
        done = reconcile_object(engine, hub, loader, "contacts", run_id="run-2")
    assert done.purged == 1
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT s.remote_id, s.is_deleted, p.first_name FROM source_record s "
                                       "JOIN person_record p ON p.id = s.id ORDER BY s.remote_id")).all()
        calls = connection.execute(text("SELECT api_calls FROM sync_run WHERE run_id = 'run-2'")).scalar_one()
    assert [tuple(row) for row in rows] == [("101", False, "First101"), ("102", False, "First102"),
                                            ("103", True, "First103")], "re-read with every mapped field"
    assert calls >= 3, "the describe, the live list and the archived list count toward the run"
