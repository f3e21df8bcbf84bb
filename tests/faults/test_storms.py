"""429 storms and 5xx during a push, in every CRM: the throttled and refused batches are sent again until
they pass, and each item lands exactly once.

The same faults during a sync are proven per CRM where the connectors are tested (see docs/reliability.md):
tests/connectors/test_hubspot_sync.py::test_a_429_storm_and_random_5xx_end_with_the_same_rows,
tests/connectors/test_salesforce_sync.py::test_429_and_503_storms_are_ridden_out,
tests/connectors/test_dynamics_sync.py::test_throttling_and_server_errors_change_nothing_but_the_bill."""

from __future__ import annotations

import pytest

from sandbox.common.faults import FaultConfig, FaultRule
from tests.faults.rig import SYSTEMS, Rig, assert_pushed_once, push_one

#: each CRM's write requests (HubSpot batch create/update, Salesforce sObject Collections, Dataverse $batch)
WRITES = {"hubspot": "/batch/(create|update)$", "salesforce": "/composite/sobjects", "dynamics": "/\\$batch$"}


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_push_through_a_429_and_5xx_storm_writes_every_item_once(rig: Rig, system: str) -> None:
    """Every request may be refused (random 429s and 503s), and the first four writes are: two 429s, then
    a 502 and a 503 (refused before the CRM applied anything)."""
    emulator = rig.reset(system, FaultConfig(seed=5, rate_limit_rate=0.15, error_rate=0.15, retry_after=0, rules=[
        FaultRule(kind="rate_limit", path=WRITES[system], times=2, retry_after=0),
        FaultRule(kind="error", path=WRITES[system], times=1, status=502),
        FaultRule(kind="error", path=WRITES[system], times=1, status=503)]))
    engine = rig.database(f"storm-{system}", rig.tagged)
    report = push_one(engine, rig.connector(system))
    refused = [entry for entry in emulator.requests.snapshot()["log"] if entry["fault"]]
    assert emulator.faults._rule_fired == [2, 1, 1], "the writes were not refused"
    assert sum(entry["fault"] == "rate_limit" for entry in refused) >= 2
    assert {entry["status"] for entry in refused if entry["fault"] == "error"} >= {502, 503}
    assert not report.errors and report.outcome is not None and not report.outcome.failed, report.errors
    emulator.faults.configure(FaultConfig())
    assert_pushed_once(rig, engine, system)
