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


HUBSPOT_RESENDS_CREATES = pytest.mark.xfail(strict=True, reason=(
    "connectors/hubspot/client.py retries a notes batch/create after a read timeout (UpstreamError is "
    "retriable): HubSpot applied the first send late and the resend creates the batch again (241 notes for "
    "141 items). The fix spans modules: a create whose answer never came must not be resent but left as an "
    "intent (not a failed ledger row) for the next push to settle by its markers (journeyhub/writeback/"
    "execute.py clears the intents of a batch that raised a retriable error)"))


@pytest.mark.parametrize("system", [pytest.param("hubspot", marks=HUBSPOT_RESENDS_CREATES), "salesforce", "dynamics"])
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
    assert first.errors or first.outcome is not None
    assert_pushed_once(rig, engine, system)
