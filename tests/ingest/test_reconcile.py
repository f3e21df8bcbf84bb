"""Nightly reconciliation re-reads an object in full with the fields its mapping reads (checked against the org,
like a sync) and tombstones what the CRM no longer has."""

from __future__ import annotations

from sqlalchemy import Engine, text

from connectors.hubspot import HubSpotConfig, HubSpotConnector
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.reconcile import reconcile_object
from journeyhub.ingest.sync import pull_pages
from sandbox.common.server import EmulatorServer
from sandbox.hubspot import HubSpotData, HubSpotEmulator

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
