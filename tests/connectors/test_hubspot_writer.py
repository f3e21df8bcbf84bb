"""Writing back to HubSpot against the emulator: batched updates and creates with associations, 207 partial
failures, the hub's properties, current values for conflict checks, call counts, and loop safety."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.base import FieldSpec, MarkedRecord, WriteOp
from connectors.errors import ConfigError
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.retry import RetryPolicy
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.mapper import Mapper
from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.common.server import EmulatorServer
from sandbox.hubspot import HubSpotData, HubSpotEmulator
from tests.connectors.contract import mapping_fields

FAST = RetryPolicy(max_attempts=3, max_seconds=10, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
CONTACTS = 1_050
JOURNEY = [FieldSpec("journey_stage", "string", "Journey stage"),
           FieldSpec("journey_stage_entered_at", "datetime", "Journey stage entered at"),
           FieldSpec("journeyhub_email_opens", "number", "Marketing email opens")]
MARKER = [FieldSpec("journeyhub_item_id", "string", "Journey Hub item id", marker=True)]


def seed() -> HubSpotData:
    stamp = "2026-01-01T00:00:00.000Z"
    return HubSpotData(objects={"contacts": [
        {"id": str(1000 + i), "properties": {"email": f"person{i}@example.com", "lastname": f"Person {i}"},
         "createdAt": stamp, "updatedAt": stamp} for i in range(CONTACTS)]})


@pytest.fixture
def emulator() -> Iterator[HubSpotEmulator]:
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emu.load(seed())
    with EmulatorServer(emu):
        yield emu


@pytest.fixture
def hub(emulator: HubSpotEmulator) -> HubSpotConnector:
    return HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emulator.base_url, retry=FAST))


def calls(emulator: HubSpotEmulator) -> dict[str, int]:
    return dict(emulator.requests.snapshot(False)["counts"])


def stored(emulator: HubSpotEmulator, object_type: str, remote_id: str) -> dict[str, str | None]:
    with emulator.lock:
        return dict(emulator.store.types[object_type].records[remote_id].props)


def test_ensure_properties_creates_the_group_and_properties_once(hub: HubSpotConnector,
                                                                 emulator: HubSpotEmulator) -> None:
    assert hub.ensure_fields({"contacts": JOURNEY}, group="journeyhub") == [spec.name for spec in JOURNEY]
    emulator.requests.reset()
    assert hub.ensure_fields({"contacts": JOURNEY}, group="journeyhub") == []
    assert sum(calls(emulator).values()) == 1, "with everything in place it is one read"
    created = {d["name"]: (d["type"], d["fieldType"], d["groupName"]) for d in emulator.dump_writes()["properties"]
               ["contacts"]}
    assert created == {"journey_stage": ("string", "text", "journeyhub"),
                       "journey_stage_entered_at": ("datetime", "date", "journeyhub"),
                       "journeyhub_email_opens": ("number", "number", "journeyhub")}
    assert [g["name"] for g in emulator.dump_writes()["propertyGroups"]["contacts"]] == ["journeyhub"]
    # a second property set in the same, existing group: the group's 409 is fine
    assert hub.ensure_fields({"contacts": [FieldSpec("journey_segment", label="Journey segment")]},
                             group="journeyhub") == ["journey_segment"]


def test_a_property_of_another_type_is_a_config_error(hub: HubSpotConnector) -> None:
    with pytest.raises(ConfigError, match="email is string, the hub needs number"):
        hub.ensure_fields({"contacts": [FieldSpec("email", "number", "Email")]}, group="journeyhub")


def test_contact_updates_are_batched_and_partial_failures_map_to_their_ops(hub: HubSpotConnector,
                                                                             emulator: HubSpotEmulator) -> None:
    hub.ensure_fields({"contacts": JOURNEY}, group="journeyhub")
    entered = datetime(2026, 3, 4, 5, 6, 7, 890_000, tzinfo=UTC)
    ops = [WriteOp("update", f"jh:c{i}", {"journey_stage": "purchase", "journey_stage_entered_at": entered,
                                          "journeyhub_email_opens": i}, remote_id=str(1000 + i)) for i in range(250)]
    ops[7] = WriteOp("update", "jh:bad-date", {"journey_stage_entered_at": "yesterday-ish"}, remote_id="1007")
    ops[8] = WriteOp("update", "jh:gone", {"journey_stage": "purchase"}, remote_id="999999")
    ops[9] = WriteOp("update", "jh:no-id", {"journey_stage": "purchase"})
    emulator.requests.reset()
    results = hub.write("contacts", ops)
    assert [r.key for r in results] == [op.key for op in ops], "one result per op, in op order"
    assert calls(emulator) == {"POST /crm/v3/objects/contacts/batch/update": 3}
    failed = {r.key: r for r in results if not r.ok}
    assert set(failed) == {"jh:bad-date", "jh:gone", "jh:no-id"}
    assert "INVALID_DATETIME" in (failed["jh:bad-date"].error or "")
    assert "OBJECT_NOT_FOUND" in (failed["jh:gone"].error or "") and not failed["jh:gone"].retriable
    assert all(r.remote_id == op.remote_id and r.created is False for r, op in zip(results, ops, strict=True) if r.ok)
    values = stored(emulator, "contacts", "1042")
    assert values["journey_stage"] == "purchase" and values["journeyhub_email_opens"] == "42"
    assert values["journey_stage_entered_at"] == "2026-03-04T05:06:07.890Z"


def test_1000_updates_take_at_most_11_calls(hub: HubSpotConnector, emulator: HubSpotEmulator) -> None:
    hub.ensure_fields({"contacts": JOURNEY}, group="journeyhub")   # a portal set up before
    emulator.requests.reset()
    hub.ensure_fields({"contacts": JOURNEY}, group="journeyhub")   # what each write-back run checks
    results = hub.write("contacts", [WriteOp("update", f"k{i}", {"journey_stage": "education"},
                                             remote_id=str(1000 + i)) for i in range(1_000)])
    assert all(r.ok for r in results)
    assert sum(calls(emulator).values()) <= 11, calls(emulator)


def test_notes_are_created_with_their_contact_association_and_marker(hub: HubSpotConnector,
                                                                       emulator: HubSpotEmulator) -> None:
    hub.ensure_fields({"notes": MARKER}, group="journeyhub")
    ops = [WriteOp("create", f"jh:item-{i}", {"hs_timestamp": datetime(2026, 2, 1, tzinfo=UTC),
                                               "hs_note_body": f"<p>Journey item {i}</p>"},
                   associations=[("contacts", str(1000 + i))]) for i in range(150)]
    ops[3] = WriteOp("create", "jh:no-time", {"hs_note_body": "no timestamp"}, associations=[("contacts", "1003")])
    ops[4] = WriteOp("create", "jh:bad-assoc", {"hs_timestamp": "2026-02-01T00:00:00Z"},
                     associations=[("owners", "1")])
    ops[5] = WriteOp("create", "jh:no-contact", {"hs_timestamp": "2026-02-01T00:00:00Z"},
                     associations=[("contacts", "999999")])
    emulator.requests.reset()
    results = hub.write("notes", ops)
    # two failures HubSpot reports without naming their inputs: each is sent once more on its own to tell them apart
    assert calls(emulator) == {"POST /crm/v3/objects/notes/batch/create": 4}
    by_key = {r.key: r for r in results}
    assert not by_key["jh:no-time"].ok and "REQUIRED_PROPERTY" in (by_key["jh:no-time"].error or "")
    assert "999999" not in (by_key["jh:no-time"].error or "")
    assert not by_key["jh:no-contact"].ok and "999999" in (by_key["jh:no-contact"].error or "")
    assert not by_key["jh:bad-assoc"].ok and "owners" in (by_key["jh:bad-assoc"].error or "")
    created = [r for r in results if r.ok]
    assert len(created) == 147 and all(r.created and r.remote_id for r in created)
    assert len({r.remote_id for r in created}) == 147
    note = stored(emulator, "notes", by_key["jh:item-10"].remote_id or "")
    assert note["journeyhub_item_id"] == "jh:item-10" and note["hs_note_body"] == "<p>Journey item 10</p>"
    links = {(a["fromObjectId"], a["toObjectId"], a["associationTypeId"])
             for a in emulator.dump_writes()["associations"]["created"]}
    assert (by_key["jh:item-10"].remote_id, "1010", 202) in links

    updated = hub.write("notes", [WriteOp("update", "jh:item-10", {"hs_note_body": "<p>changed</p>"},
                                          remote_id=by_key["jh:item-10"].remote_id)])
    assert updated[0].ok and stored(emulator, "notes", updated[0].remote_id or "")["hs_note_body"] == "<p>changed</p>"


def test_the_hubs_own_notes_are_skipped_when_pulled(hub: HubSpotConnector) -> None:
    hub.ensure_fields({"notes": MARKER}, group="journeyhub")
    hub.write("notes", [WriteOp("create", "jh:mirror-1", {"hs_timestamp": "2026-02-01T00:00:00Z",
                                                           "hs_note_body": "mirrored"},
                                associations=[("contacts", "1001")])])
    mapper = Mapper("hubspot", load_mappings(mappings_root(), "hubspot")["notes"])
    records = [r for page in hub.read("notes", None, full=True, fields=mapping_fields(hub, "notes"))
               for r in page.records]
    assert len(records) == 1 and records[0].data["properties"]["journeyhub_item_id"] == "jh:mirror-1"
    assert mapper.map(records[0].remote_id, records[0].document()).skipped


def test_read_current_returns_the_asked_properties_of_the_records_that_exist(hub: HubSpotConnector,
                                                                             emulator: HubSpotEmulator) -> None:
    emulator.requests.reset()
    current = hub.read_current("contacts", [str(1000 + i) for i in range(150)] + ["999999"], ["email", "lastname"])
    assert len(current) == 150 and "999999" not in current
    assert current["1005"] == {"email": "person5@example.com", "lastname": "Person 5"}
    assert calls(emulator) == {"POST /crm/v3/objects/contacts/batch/read": 2}


def test_a_throttled_batch_fails_its_ops_as_retriable() -> None:
    emu = HubSpotEmulator(FaultConfig(rules=[FaultRule(kind="rate_limit", path="batch/update", times=10)]),
                          rate_limit_per_10s=None)
    emu.load(seed())
    with EmulatorServer(emu):
        hub = HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emu.base_url, retry=FAST))
        results = hub.write("contacts", [WriteOp("update", "a", {"lastname": "X"}, remote_id="1000"),
                                         WriteOp("update", "b", {"lastname": "Y"}, remote_id="1001")])
    assert [(r.ok, r.retriable) for r in results] == [(False, True), (False, True)]
    assert "rate limited" in (results[0].error or "")


def test_duplicate_records_in_one_write_go_into_separate_batches(hub: HubSpotConnector,
                                                                 emulator: HubSpotEmulator) -> None:
    results = hub.write("contacts", [WriteOp("update", "first", {"lastname": "One"}, remote_id="1000"),
                                     WriteOp("update", "second", {"lastname": "Two"}, remote_id="1000")])
    assert all(r.ok for r in results) and stored(emulator, "contacts", "1000")["lastname"] == "Two"


def test_an_update_of_a_merged_away_contact_lands_on_the_survivor(hub: HubSpotConnector,
                                                                  emulator: HubSpotEmulator) -> None:
    emulator.merge_contacts("1001", "1002")
    results = hub.write("contacts", [WriteOp("update", "to-loser", {"lastname": "Merged"}, remote_id="1002"),
                                     WriteOp("update", "plain", {"lastname": "Plain"}, remote_id="1003")])
    assert [(r.ok, r.remote_id) for r in results] == [(True, "1001"), (True, "1003")]
    assert stored(emulator, "contacts", "1001")["lastname"] == "Merged"


def test_notes_created_a_moment_ago_are_found_by_marker_where_search_does_not_see_them_yet() -> None:
    """A push killed right after a batch create landed is settled at once: the lookup reads associations and
    records, not the search index (which HubSpot updates seconds after a create)."""
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None, search_index_lag_seconds=600)
    emu.load(seed())
    with EmulatorServer(emu):
        hub = HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emu.base_url, retry=FAST))
        hub.ensure_fields({"notes": MARKER}, group="journeyhub")
        markers = [f"jh:lag-{i}" for i in range(3)]
        created = hub.write("notes", [WriteOp("create", marker, {"hs_timestamp": "2026-02-01T00:00:00Z",
                                                                 "journeyhub_item_id": marker},
                                              associations=[("contacts", str(1000 + i))])
                                      for i, marker in enumerate(markers)])
        searched = hub.client.call(hub.client.objects_search.do_search, "notes", {"filterGroups": [{"filters": [
            {"propertyName": "journeyhub_item_id", "operator": "IN", "values": markers}]}]}, what="search notes")
        assert searched["total"] == 0, "the search index has not caught up yet"
        emu.requests.reset()
        found = hub.find_mirrored("notes", "journeyhub_item_id", [
            MarkedRecord(marker, ("contacts", str(1000 + i))) for i, marker in enumerate(markers)]
            + [MarkedRecord("jh:never-sent", ("contacts", "1005"))])
    assert found == {result.key: result.remote_id for result in created}
    assert calls(emu) == {"POST /crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read": 1,
                          "POST /crm/v3/objects/notes/batch/read": 1}
