"""Writing through sObject Collections against the Salesforce emulator: updates, idempotent upserts by
External ID, isolated per-record failures, the call budget, and the describe-based checks the write-back
uses (fields an admin must create, current values)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from connectors.base import FieldSpec, WriteOp
from connectors.errors import ConfigError
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.mapper import Mapper
from sandbox.common.server import EmulatorServer
from sandbox.salesforce import SalesforceEmulator
from sandbox.world import generate
from tests.connectors.contract import mapping_fields

FAST = RetryPolicy(max_attempts=3, max_seconds=5, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
JOURNEY_FIELDS = [("Journey_Stage__c", "text"), ("Journey_Segment__c", "text"),
                  ("Journey_Stage_Entered_At__c", "datetime"), ("Last_Interaction_At__c", "datetime"),
                  ("Last_Interaction_Channel__c", "text")]
JOURNEY_SPECS = [(name, "string" if kind == "text" else kind) for name, kind in JOURNEY_FIELDS]


@pytest.fixture(scope="module")
def world() -> Any:
    return generate(300, 7, datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0))


@pytest.fixture
def emulator(world: Any) -> Iterator[SalesforceEmulator]:
    em = SalesforceEmulator()
    em.load(world.salesforce)
    with EmulatorServer(em):
        yield em


def connector(em: SalesforceEmulator) -> SalesforceConnector:
    return SalesforceConnector(SalesforceConfig(instance_url=em.base_url, access_token="sandbox-token", retry=FAST))


def live(em: SalesforceEmulator, sobject: str) -> list[dict[str, Any]]:
    return sorted((r for r in em.records(sobject) if not r.get("IsDeleted")), key=lambda r: r["Id"])


def calls(em: SalesforceEmulator) -> dict[str, int]:
    return {route: n for route, n in em.requests.counts.items() if n}


def mirror(index: int, contact: str, **data: Any) -> WriteOp:
    """A mirrored interaction as the write-back sends it: a completed Task keyed by the hub's External ID."""
    return WriteOp("upsert", f"item-{index}", external_id=("External_Id__c", f"jh:interaction:{index}"),
                   associations=[("Contact", contact)],
                   data={"Subject": f"Call from the service desk #{index}", "Status": "Completed",
                         "ActivityDate": "2025-06-01", "Type": "Call", "TaskSubtype": "Call", "IsClosed": True,
                         **data})


def test_contact_and_lead_updates_land_and_report_per_record(emulator: SalesforceEmulator) -> None:
    contacts, leads = live(emulator, "Contact")[:3], live(emulator, "Lead")[:2]
    stage = {"Journey_Stage__c": "purchase", "Journey_Segment__c": "new",
             "Journey_Stage_Entered_At__c": "2025-03-04T00:00:00.000+0000"}
    client = connector(emulator)
    results = client.write("Contact", [WriteOp("update", f"c{i}", remote_id=r["Id"], data=stage)
                                       for i, r in enumerate(contacts)])
    results += client.write("Lead", [WriteOp("update", f"l{i}", remote_id=r["Id"], data=stage)
                                     for i, r in enumerate(leads)])
    assert [(r.key, r.ok, r.created) for r in results] == [("c0", True, False), ("c1", True, False),
                                                           ("c2", True, False), ("l0", True, False),
                                                           ("l1", True, False)]
    for record in contacts + leads:
        assert emulator.record(record["Id"])["Journey_Stage__c"] == "purchase"  # type: ignore[index]
    assert calls(emulator)["PATCH /services/data/v{version}/composite/sobjects"] == 2


def test_upserts_by_external_id_are_idempotent_and_cheap(emulator: SalesforceEmulator) -> None:
    contacts = [r["Id"] for r in live(emulator, "Contact")]
    before = len(emulator.records("Task"))
    ops = [mirror(index, contacts[index % len(contacts)]) for index in range(1000)]
    client = connector(emulator)
    first = client.write("Task", ops)
    assert all(r.ok and r.created for r in first) and [r.key for r in first] == [op.key for op in ops]
    assert client.api_calls <= 6, calls(emulator)       # 5 collections of 200 + one describe
    assert calls(emulator)["PATCH /services/data/v{version}/composite/sobjects/{sobject}/{field}"] == 5
    written = emulator.record(first[7].remote_id)
    assert written is not None and written["WhoId"] == contacts[7] and written["External_Id__c"] == "jh:interaction:7"
    assert written["TaskSubtype"] == "Task", "create-only TaskSubtype is not sent (an update would reject it)"

    again = connector(emulator).write("Task", [mirror(i, contacts[i % len(contacts)], Subject="Renamed")
                                               for i in range(1000)])
    assert all(r.ok and r.created is False for r in again)
    assert [r.remote_id for r in again] == [r.remote_id for r in first], "updated in place"
    assert len(emulator.records("Task")) == before + 1000, "no duplicates"
    assert emulator.record(first[0].remote_id)["Subject"] == "Renamed"  # type: ignore[index]

    # the hub's own Tasks never come back in as interactions
    task_mapping = Mapper("salesforce", load_mappings(mappings_root(), "salesforce")["Task"])
    mine = [record for page in client.read("Task", None, fields=mapping_fields(client, "Task"))
            for record in page.records
            if (record.data or {}).get("External_Id__c", "") and record.data["External_Id__c"].startswith("jh:")]
    assert len(mine) == 1000 and all(task_mapping.map(r.remote_id, r.document()).skipped for r in mine)


def test_a_bad_record_fails_alone_and_the_others_land(emulator: SalesforceEmulator) -> None:
    contacts = [r["Id"] for r in live(emulator, "Contact")]
    client = connector(emulator)
    results = client.write("Task", [
        mirror(1, contacts[0]),
        mirror(2, "0030W0000000000QAA"),                      # a Contact that does not exist
        mirror(3, contacts[1], Status="Finished"),             # not a value of the restricted picklist
        mirror(4, contacts[2], Rating__c=5),                   # a field this org does not have
        mirror(5, contacts[3]),
    ])
    assert [r.ok for r in results] == [True, False, False, False, True]
    assert "INVALID_CROSS_REFERENCE_KEY" in (results[1].error or "") and "WhoId" in (results[1].error or "")
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in (results[2].error or "")
    assert "Rating__c" in (results[3].error or "") and "admin must create" in (results[3].error or "")
    assert emulator.record(results[4].remote_id) is not None  # type: ignore[arg-type]
    updates = client.write("Contact", [WriteOp("update", "ok", remote_id=contacts[0], data={"Email": "a@b.co"}),
                                       WriteOp("update", "bad", remote_id=contacts[1], data={"Email": "not-an-email"}),
                                       WriteOp("update", "no-id", data={"Email": "c@d.co"})])
    assert [(r.key, r.ok) for r in updates] == [("ok", True), ("bad", False), ("no-id", False)]
    assert "INVALID_EMAIL_ADDRESS" in (updates[1].error or "") and "needs the record's id" in (updates[2].error or "")


def test_mixed_operations_answer_in_op_order(emulator: SalesforceEmulator) -> None:
    contacts = [r["Id"] for r in live(emulator, "Contact")]
    client = connector(emulator)
    created = client.write("Task", [WriteOp("create", "new", data={"Subject": "Created", "Status": "Completed"},
                                            associations=[("Contact", contacts[0])])])[0]
    assert created.ok and created.created and created.remote_id
    results = client.write("Task", [
        WriteOp("update", "u", remote_id=created.remote_id, data={"Subject": "Edited"}),
        mirror(9, contacts[1]),
        WriteOp("delete", "d", remote_id=created.remote_id),
    ])
    assert [(r.key, r.ok) for r in results] == [("u", True), ("item-9", True), ("d", True)]
    assert emulator.record(created.remote_id)["IsDeleted"] is True  # type: ignore[arg-type,index]


def test_missing_fields_are_listed_for_an_admin_with_their_types(world: Any) -> None:
    em = SalesforceEmulator(custom_fields=False)
    em.load({"Contact": [{"LastName": "Only", "CreatedDate": "2025-01-01T00:00:00.000+0000"}]})
    with EmulatorServer(em):
        client = connector(em)
        with pytest.raises(ConfigError) as error:
            client.ensure_fields({"Contact": [FieldSpec(name, kind) for name, kind in JOURNEY_SPECS],
                                  "Task": [FieldSpec("External_Id__c", marker=True)]})
        assert "6 field(s)" in error.value.message and "an admin must create" in error.value.message
        assert "Contact.Journey_Stage__c (Text(40))" in error.value.message
        assert "Contact.Last_Interaction_At__c (Date/Time)" in error.value.message
        assert "Task.External_Id__c (Text(255), External ID, Unique)" in error.value.message
        assert client.writer.missing_fields("Task", [("External_Id__c", "external_id"), ("Subject", "text")]) == [
            "External_Id__c"]
        contact = em.records("Contact")[0]["Id"]
        [result] = client.write("Contact", [WriteOp("update", "x", remote_id=contact, data=dict.fromkeys(
            [name for name, _ in JOURNEY_FIELDS], "v"))])
        assert not result.ok and "Journey_Stage__c" in (result.error or "")


def test_fields_of_the_wrong_type_or_not_an_external_id_count_as_missing(emulator: SalesforceEmulator) -> None:
    client = connector(emulator)
    assert client.ensure_fields({"Contact": [FieldSpec(name, kind) for name, kind in JOURNEY_SPECS],
                                 "Task": [FieldSpec("External_Id__c", marker=True)]}) == []
    assert client.writer.missing_fields("Contact", [("Journey_Stage__c", "datetime"), ("Name", "text"),
                                                    ("Email", "external_id")]) == ["Journey_Stage__c", "Name", "Email"]


def test_an_external_id_that_is_not_unique_is_refused_as_the_mirror_key(emulator: SalesforceEmulator) -> None:
    task = emulator.schema["Task"]  # the schema is shared by every emulator: this one gets its own Task
    fields = {**task.fields, "External_Id__c": replace(task.fields["External_Id__c"], unique=False)}
    with emulator.lock:  # an org whose External_Id__c was created without "Unique"
        emulator.schema = {**emulator.schema, "Task": replace(task, fields=fields)}
    with pytest.raises(ConfigError, match=r"Task\.External_Id__c \(Text\(255\), External ID, Unique\)"):
        connector(emulator).ensure_fields({"Task": [FieldSpec("External_Id__c", marker=True)]})


def test_current_values_are_read_200_ids_per_call(emulator: SalesforceEmulator) -> None:
    contacts = live(emulator, "Contact")
    ids = [*(r["Id"] for r in contacts[:120]), "0030W0000000000QAA"]
    client = connector(emulator)
    current = client.read_current("Contact", ids, ["Email", "Journey_Stage__c"])
    assert set(current) == set(ids[:-1]) and current[ids[0]] == {
        "Id": ids[0], "Email": contacts[0]["Email"], "Journey_Stage__c": None}
    leads = [r["Id"] for r in live(emulator, "Lead")][:140]
    client.read_current("Lead", leads * 2, ["Email"])
    assert calls(emulator)["GET /services/data/v{version}/composite/sobjects/{sobject}"] == 1 + 2
