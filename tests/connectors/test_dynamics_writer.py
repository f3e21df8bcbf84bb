"""Writing through `$batch` against the Dataverse emulator: updates, idempotent upserts, isolated failures,
calls per thousand records, and the metadata check for columns an admin must create."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.base import FieldSpec, WriteOp
from connectors.dynamics import DynamicsConfig, DynamicsConnector
from connectors.errors import ConfigError
from connectors.retry import RetryPolicy
from sandbox.common.server import EmulatorServer
from sandbox.dynamics import DynamicsData, DynamicsEmulator

FAST = RetryPolicy(max_attempts=3, max_seconds=5, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
NS = uuid.UUID("6a0c5e1d-8f2b-4a3c-9d4e-5f6a7b8c9d0e")
PEOPLE = 1100
JOURNEY_COLUMNS = [("new_journeystage", "string"), ("new_journeysegment", "string"),
                   ("new_lastinteractionchannel", "string"), ("new_stageenteredon", "datetime"),
                   ("new_lastinteractionon", "datetime")]


def gid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


CONTACTS = [gid(f"contact/{i}") for i in range(PEOPLE)]
LEAD = gid("lead/1")


def seed() -> DynamicsData:
    base = {"createdon": "2025-01-01T00:00:00Z", "modifiedon": "2025-01-01T00:00:00Z"}
    return DynamicsData(rows={
        "contacts": [{"contactid": remote_id, "lastname": f"Person {i}", "emailaddress1": f"p{i}@example.com", **base}
                     for i, remote_id in enumerate(CONTACTS)],
        "leads": [{"leadid": LEAD, "lastname": "Lead", **base}]})


def serve(**options: object) -> Iterator[DynamicsEmulator]:
    emulator = DynamicsEmulator(requests_per_5min=None, **options)  # type: ignore[arg-type]
    emulator.load(seed())
    with EmulatorServer(emulator):
        yield emulator


@pytest.fixture(scope="module")
def emulator() -> Iterator[DynamicsEmulator]:
    yield from serve()


@pytest.fixture(scope="module")
def bare_org() -> Iterator[DynamicsEmulator]:
    """An organisation where nobody created the hub's custom columns."""
    yield from serve(custom_columns=False)


def hub(emulator: DynamicsEmulator) -> DynamicsConnector:
    return DynamicsConnector(DynamicsConfig(url=emulator.base_url, access_token="sandbox-token", retry=FAST))


def http_calls(emulator: DynamicsEmulator) -> list[str]:
    """Requests that reached the server (a $batch's inner operations are logged apart, as `$batch:…`)."""
    return [entry.route for entry in emulator.requests.entries if not entry.route.startswith("$batch:")]


def task_upsert(key: str, contact: str, subject: str = "Support case opened in Salesforce") -> WriteOp:
    return WriteOp("upsert", key, {"subject": subject, "description": "Case 00001027: printer on fire",
                                   "actualend": datetime(2026, 3, 1, 10, 30, tzinfo=UTC), "statecode": 1,
                                   "statuscode": 5},
                   external_id=("new_externalid", f"jh:{key}"), associations=[("contacts", contact)])


def test_updates_change_only_the_named_rows_and_never_create_one(emulator: DynamicsEmulator) -> None:
    missing = gid("contact/missing")
    results = hub(emulator).write("contacts", [
        WriteOp("update", "a", {"new_journeystage": "purchase", "new_stageenteredon": datetime(2026, 2, 1, tzinfo=UTC)},
                remote_id=CONTACTS[0]),
        WriteOp("update", "gone", {"new_journeystage": "purchase"}, remote_id=missing)])
    assert results[0].ok and results[0].remote_id == CONTACTS[0]
    assert not results[1].ok and "404" in (results[1].error or "") and not results[1].retriable
    with emulator.lock:
        row = emulator.store.get("contacts", CONTACTS[0])
        assert emulator.store.get("contacts", missing) is None
    assert row is not None and (row["new_journeystage"], row["new_stageenteredon"]) == ("purchase",
                                                                                         "2026-02-01T00:00:00Z")


def test_task_upserts_by_alternate_key_are_idempotent(emulator: DynamicsEmulator) -> None:
    connector = hub(emulator)
    ops = [task_upsert("t-1", CONTACTS[1]), task_upsert("t-2", CONTACTS[2]), task_upsert("o'brien", CONTACTS[3])]
    first = connector.write("tasks", ops)
    again = connector.write("tasks", [task_upsert(op.key, op.associations[0][1], "Renamed") for op in ops])
    assert [(r.ok, r.created) for r in first] == [(True, True)] * 3
    assert [(r.ok, r.created) for r in again] == [(True, False)] * 3
    assert [r.remote_id for r in first] == [r.remote_id for r in again]
    with emulator.lock:
        tasks = [row for row in emulator.store.state("tasks").rows.values()
                 if (row["new_externalid"] or "").startswith("jh:")]
    assert sorted(row["new_externalid"] for row in tasks) == ["jh:o'brien", "jh:t-1", "jh:t-2"]
    by_key = {row["new_externalid"]: row for row in tasks}
    assert by_key["jh:t-1"]["_regardingobjectid_value"] == CONTACTS[1] and by_key["jh:t-1"]["subject"] == "Renamed"
    assert (by_key["jh:t-1"]["statecode"], by_key["jh:t-1"]["actualend"]) == (1, "2026-03-01T10:30:00Z")


def test_notes_are_upserted_by_their_deterministic_id(emulator: DynamicsEmulator) -> None:
    note_id = str(uuid.uuid5(NS, "mirror/hubspot:calls:77"))
    op = WriteOp("upsert", "n", {"subject": "jh: call logged in HubSpot", "notetext": "Outbound call, 4 min"},
                 remote_id=note_id, associations=[("leads", LEAD)])
    first, second = hub(emulator).write("annotations", [op]), hub(emulator).write("annotations", [op])
    assert (first[0].created, second[0].created) == (True, False) and first[0].remote_id == note_id
    with emulator.lock:
        note = emulator.store.get("annotations", note_id)
    assert note is not None and (note["_objectid_value"], note["objecttypecode"]) == (LEAD, "lead")


def test_a_failed_operation_does_not_stop_the_others(emulator: DynamicsEmulator) -> None:
    results = hub(emulator).write("tasks", [task_upsert("f-1", CONTACTS[4]),
                                            task_upsert("f-2", CONTACTS[5], subject="x" * 201),
                                            task_upsert("f-3", CONTACTS[6]),
                                            task_upsert("f-4", gid("contact/nobody"))])
    assert [r.ok for r in results] == [True, False, True, False]
    assert "0x80044331" in (results[1].error or "") and "subject" in (results[1].error or "")
    assert "404" in (results[3].error or "") and not any(r.retriable for r in results)


def test_a_thousand_writes_cost_one_call(emulator: DynamicsEmulator) -> None:
    emulator.requests.reset()
    ops = [WriteOp("update", f"u{i}", {"new_journeysegment": "active"}, remote_id=remote_id)
           for i, remote_id in enumerate(CONTACTS[:1000])]
    results = hub(emulator).write("contacts", ops)
    assert all(result.ok for result in results) and len(http_calls(emulator)) == 1
    emulator.requests.reset()
    more = [WriteOp("update", f"v{i}", {"new_journeysegment": "new"}, remote_id=remote_id)
            for i, remote_id in enumerate(CONTACTS[:1001])]
    assert all(result.ok for result in hub(emulator).write("contacts", more))
    assert http_calls(emulator) == ["POST /api/data/v9.2/$batch"] * 2, "at most 1,000 operations per batch"


def test_current_values_come_back_in_one_call(emulator: DynamicsEmulator) -> None:
    emulator.requests.reset()
    wanted = [*CONTACTS[:450], gid("contact/unknown")]
    current = hub(emulator).read_current("contacts", wanted, ["lastname", "emailaddress1"])
    assert len(current) == 450 and current[CONTACTS[7]] == {"lastname": "Person 7", "emailaddress1": "p7@example.com"}
    assert len(http_calls(emulator)) == 1


def test_missing_columns_are_listed_for_an_admin(emulator: DynamicsEmulator, bare_org: DynamicsEmulator) -> None:
    wanted = {"contacts": [FieldSpec(name, kind) for name, kind in JOURNEY_COLUMNS],  # type: ignore[arg-type]
              "tasks": [FieldSpec("new_externalid", marker=True)]}
    assert hub(emulator).ensure_fields(wanted) == []
    with pytest.raises(ConfigError) as error:
        hub(bare_org).ensure_fields(wanted)
    message = error.value.message
    assert "6 column(s)" in message and "an admin must create" in message
    assert "contacts.new_journeystage (Single line of text (100))" in message
    assert "contacts.new_stageenteredon (Date and time)" in message
    assert "tasks.new_externalid (Single line of text (255), with an alternate key on it)" in message
    assert hub(emulator).writer.missing_columns("task", [("new_externalid", "string"), ("subject", "datetime")]) == [
        "subject"], "a column of the wrong type cannot hold the value either"


def test_a_marker_column_without_an_alternate_key_is_refused(emulator: DynamicsEmulator) -> None:
    table = emulator.schema.tables["tasks"]
    keys = dict(table.alt_keys)
    with emulator.lock:  # the column exists, but nobody defined the key the upsert needs
        table.alt_keys.clear()
    try:
        with pytest.raises(ConfigError, match=r"tasks\.new_externalid \(.*alternate key"):
            hub(emulator).ensure_fields({"tasks": [FieldSpec("new_externalid", marker=True)]})
    finally:
        with emulator.lock:
            table.alt_keys.update(keys)


def test_writing_columns_that_do_not_exist_fails_every_operation_clearly(bare_org: DynamicsEmulator) -> None:
    results = hub(bare_org).write("contacts", [WriteOp("update", "a", {"new_journeystage": "purchase"},
                                                       remote_id=CONTACTS[0])])
    assert not results[0].ok and "new_journeystage" in (results[0].error or "")
