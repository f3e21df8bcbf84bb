"""Read timeouts: a CRM that answers too late. A read that times out is sent again and nothing is lost; a
write whose answer never came — the CRM received it in full and applied it after the hub gave up — is not
applied twice (HubSpot: not yet, see HUBSPOT_RESENDS_CREATES)."""

from __future__ import annotations

import time

import pytest

from sandbox.common.faults import FaultConfig, FaultRule
from tests.faults.rig import SYSTEMS, Rig, assert_pushed_once, assert_synced_as_clean, push_one, sync

TIMEOUT = 0.25           # the client's read timeout in these tests
LATE = 0.5               # how late the CRM answers a faulted request
#: the request that creates each CRM's mirrored items: HubSpot's note batch create (not idempotent), the
#: Salesforce Task upsert by External_Id__c, the Dataverse $batch of task upserts by alternate key
WRITES = {"hubspot": ("POST", "/objects/notes/batch/create$"),
          "salesforce": ("PATCH", "/composite/sobjects/Task/External_Id__c$"),
          "dynamics": ("POST", "/\\$batch$")}


@pytest.mark.parametrize("system", SYSTEMS)
def test_reads_that_time_out_mid_sync_are_sent_again_and_lose_nothing(rig: Rig, system: str) -> None:
    emulator = rig.reset(system, FaultConfig(rules=[
        FaultRule(kind="timeout", method="GET", path="/", after=2, times=3, delay_seconds=LATE)]))
    engine = rig.database(f"slow-read-{system}")
    sync(engine, rig.connector(system, timeout=TIMEOUT))
    assert emulator.faults._rule_fired == [3], "the CRM did not hold three reads past the timeout"
    assert_synced_as_clean(rig, engine, system)


@pytest.mark.parametrize("system", ["hubspot", "salesforce", "dynamics"])
def test_a_write_answered_after_the_timeout_is_not_applied_twice(rig: Rig, system: str) -> None:
    """The CRM holds the first write past the client's timeout, then applies it (a server does not stop
    working on a request whose client went away)."""
    emulator = rig.reset(system, FaultConfig(rules=[
        FaultRule(kind="timeout", method=WRITES[system][0], path=WRITES[system][1], times=1,
                  delay_seconds=LATE)]))
    engine = rig.database(f"slow-write-{system}", rig.tagged)
    first = push_one(engine, rig.connector(system, timeout=TIMEOUT))
    assert emulator.faults._rule_fired == [1], "no write was held past the timeout"
    time.sleep(LATE + 0.3)   # the held write has landed by now
    emulator.faults.configure(FaultConfig())
    again = push_one(engine, rig.connector(system))
    assert not again.errors, again.errors
    assert first.outcome is not None and not first.errors
    if system == "hubspot":   # a create is not resent: the batch is reported unconfirmed, the next push settles it
        notes = [message for outcome in first.outcome.objects.values() for message in outcome.errors]
        assert first.outcome.failed and any("unconfirmed" in message for message in notes), notes
        settled = again.settled["hubspot"]
        assert settled.landed > 0 and settled.absent == 0, "the late batch is found by its markers, not resent"
    assert_pushed_once(rig, engine, system)
