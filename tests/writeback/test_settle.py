"""Settling what a dead push left, on SQLite and PostgreSQL, against the HubSpot emulator: intents recorded as
the executor records them, the CRM deciding which landed, the ledger learning exactly those."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, select

from canonical.db import transaction
from canonical.models import WritebackIntent, WritebackLedger
from connectors.base import FieldSpec, WriteOp
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.retry import RetryPolicy
from journeyhub.config import load_config_file, mappings_root
from journeyhub.writeback.ledger import record_intents
from journeyhub.writeback.plan import PlannedWrite
from journeyhub.writeback.push import push
from journeyhub.writeback.settle import settle
from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.common.server import EmulatorServer
from sandbox.hubspot import HubSpotData, HubSpotEmulator

FAST = RetryPolicy(max_attempts=2, max_seconds=5, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
STAMP = "2026-01-01T00:00:00.000Z"
MARKER = "journeyhub_item_id"


@pytest.fixture
def emulator() -> Iterator[HubSpotEmulator]:
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None, search_index_lag_seconds=600)
    emu.load(HubSpotData(objects={"contacts": [
        {"id": str(remote_id), "properties": {"email": f"p{remote_id}@example.com"}, "createdAt": STAMP,
         "updatedAt": STAMP} for remote_id in (1001, 1002, 1003)]}))
    with EmulatorServer(emu):
        yield emu


def connector(emu: HubSpotEmulator) -> HubSpotConnector:
    hub = HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emu.base_url, retry=FAST))
    hub.ensure_fields({"contacts": [FieldSpec("journey_stage")], "notes": [FieldSpec(MARKER, marker=True)]})
    return hub


def planned(target: str, item_key: str, action: str, *, marker: str | None = None,
            payload: dict[str, Any] | None = None) -> PlannedWrite:
    return PlannedWrite(system="hubspot", object_type="notes" if marker else "contacts", action=action,
                        customer_id="cus_1", target_object_type="contacts", target_remote_id=target,
                        item_key=item_key, values={}, content_hash=f"hash-{item_key}",
                        payload=payload or {"marker": marker}, marker=marker)


def ledger(engine: Engine) -> dict[str, tuple[Any, ...]]:
    with engine.connect() as connection:
        rows = connection.execute(select(WritebackLedger.item_key, WritebackLedger.remote_id,
                                         WritebackLedger.content_hash, WritebackLedger.status)).all()
    return {row[0]: tuple(row[1:]) for row in rows}


def test_unconfirmed_writes_are_settled_by_what_the_crm_holds(engine: Engine, emulator: HubSpotEmulator) -> None:
    hub = connector(emulator)
    # what the dead push got through before it died: two notes created, one contact's fields written
    landed = hub.write("notes", [WriteOp("create", marker, {"hs_timestamp": STAMP, MARKER: marker},
                                         associations=[("contacts", target)])
                                 for marker, target in (("jh:one", "1001"), ("jh:two", "1002"))])
    hub.write("contacts", [WriteOp("update", "f", {"journey_stage": "purchase"}, remote_id="1001")])
    with transaction(engine) as connection:
        record_intents(connection, [
            planned("1001", "item-one", "create", marker="jh:one"),
            planned("1002", "item-two", "update", marker="jh:two"),     # an update: did its content land?
            planned("1003", "item-three", "create", marker="jh:three"),  # never sent
            planned("1001", "fields", "update", payload={"journey_stage": "purchase"}),
            planned("1002", "fields", "update", payload={"journey_stage": "purchase"}),  # never sent
        ], "run-that-died")
    emulator.requests.reset()
    policy = load_config_file(mappings_root(), "writeback.yaml").system("hubspot")
    settled = settle(engine, "hubspot", hub, policy)
    assert (settled.landed, settled.absent) == (3, 2)
    assert ledger(engine) == {
        "item-one": (landed[0].remote_id, "hash-item-one", "pushed"),   # created as sent: nothing to resend
        "item-two": (landed[1].remote_id, None, "pushed"),              # known now, content sent once more
        "fields": ("1001", "hash-fields", "pushed")}
    with engine.connect() as connection:
        assert connection.execute(select(WritebackIntent.id)).first() is None
    assert sum(emulator.requests.snapshot(False)["counts"].values()) == 3, "one association read, two batch reads"


def test_a_crm_whose_leftovers_cannot_be_settled_is_not_pushed(engine: Engine) -> None:
    emu = HubSpotEmulator(FaultConfig(rules=[FaultRule(kind="error", path="/crm/v4/associations", times=100)]),
                          rate_limit_per_10s=None, search_per_second=None)
    with EmulatorServer(emu):
        hub = connector(emu)
        with transaction(engine) as connection:
            record_intents(connection, [planned("1001", "item-one", "create", marker="jh:one")], "run-that-died")
        emu.requests.reset()
        report = push(engine, load_config_file(mappings_root(), "writeback.yaml"), ["hubspot"], run_id="next",
                      connectors={"hubspot": hub})
        counts = emu.requests.snapshot(False)["counts"]
    assert "hubspot" in report.errors and report.systems == [] and report.outcome is not None
    assert not [route for route in counts if route.startswith("POST /crm/v3/objects/")], "nothing planned or sent"
    with engine.connect() as connection:
        assert len(connection.execute(select(WritebackIntent.id)).all()) == 1, "the intent waits for the next push"
