"""Nightly reconciliation through the connector protocol, on SQLite and PostgreSQL against the Dataverse
emulator: a full re-read tombstones what the CRM purged, keeps the rest, and runs the connector's
association pass (nothing to do for Dataverse)."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, select

from canonical.models import SourceRecord
from connectors.dynamics import DynamicsConfig, DynamicsConnector
from connectors.retry import RetryPolicy
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.reconcile import reconcile_object
from sandbox.common.server import EmulatorServer
from sandbox.dynamics import DynamicsData, DynamicsEmulator

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
