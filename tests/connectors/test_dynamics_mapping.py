"""The Dataverse mappings (mappings/dynamics/*.yaml) on real served rows and on the tricky rules.

Golden tests: `golden/dynamics/<set>.page.json` holds rows exactly as the emulator serves the generated world
to this connector (with the lookuplogicalname annotations); `<set>.mapped.json` is the reviewed result of
mapping them. Regenerate both after a deliberate change, then review the diff:

    python -m tests.connectors.test_dynamics_mapping
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.dynamics.objects import ENTITY_SETS
from connectors.dynamics.reader import to_record
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.mapper import MappedRecord, Mapper, MappingError

GOLDEN = Path(__file__).parent / "golden" / "dynamics"
MAPPINGS = load_mappings(mappings_root(), "dynamics")
ANCHOR = datetime(2026, 11, 22, tzinfo=UTC)
LOOKUP = "@Microsoft.Dynamics.CRM.lookuplogicalname"
CONTACT, LEAD, ACCOUNT = "0b1c2d3e-0000-4000-8000-000000000001", "0b1c2d3e-0000-4000-8000-000000000002", \
    "0b1c2d3e-0000-4000-8000-000000000003"
OPPORTUNITY, CASE, OWNER = "0b1c2d3e-0000-4000-8000-000000000004", "0b1c2d3e-0000-4000-8000-000000000005", \
    "0b1c2d3e-0000-4000-8000-000000000006"
ROW_ID = "0b1c2d3e-0000-4000-8000-0000000000ff"


def mapped(entity_set: str, row: dict[str, Any]) -> MappedRecord:
    record = to_record(ENTITY_SETS[entity_set], row)
    return Mapper("dynamics", MAPPINGS[entity_set]).map(record.remote_id, record.document())


def outcome(entity_set: str, row: dict[str, Any]) -> dict[str, Any]:
    """A JSON-able account of what the mapping does with one served row."""
    record = to_record(ENTITY_SETS[entity_set], row)
    try:
        result = Mapper("dynamics", MAPPINGS[entity_set]).map(record.remote_id, record.document())
    except MappingError as error:
        return {"remote_id": record.remote_id, "quarantine": error.reason, "detail": error.detail}
    return {"remote_id": record.remote_id, "skipped": result.skipped, "merged_into": result.merged_into,
            "rows": [{"entity": item.entity, "key": item.key, "people": item.people,
                      "row": {name: value.isoformat() if isinstance(value, datetime) else value
                              for name, value in item.row.items()}} for item in result.rows]}


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


@pytest.mark.parametrize("entity_set", sorted(ENTITY_SETS))
def test_served_rows_map_to_the_reviewed_golden_rows(entity_set: str) -> None:
    page = json.loads((GOLDEN / f"{entity_set}.page.json").read_text(encoding="utf-8"))
    golden = json.loads((GOLDEN / f"{entity_set}.mapped.json").read_text(encoding="utf-8"))
    assert page["value"], "the fixture holds served rows"
    assert json.loads(dumps([outcome(entity_set, row) for row in page["value"]])) == golden


def test_the_golden_pages_cover_the_worlds_bad_records_and_signals() -> None:
    quarantined = [item["quarantine"] for name in ("contacts", "leads")
                   for item in json.loads((GOLDEN / f"{name}.mapped.json").read_text(encoding="utf-8"))
                   if "quarantine" in item]
    assert sorted(set(quarantined)) == ["invalid_email", "missing_required_field"]
    kinds = {row["row"]["kind"] for item in json.loads((GOLDEN / "tasks.mapped.json").read_text(encoding="utf-8"))
             for row in item.get("rows", [])}
    assert {"survey_response", "referral", "task"} <= kinds


# ------------------------------------------------------------------------------------------ table tests
def stamp(**values: Any) -> dict[str, Any]:
    return {"createdon": "2025-03-01T09:00:00Z", "modifiedon": "2025-03-04T17:30:00Z", **values}


def lookup(name: str, guid: str | None, target: str | None) -> dict[str, Any]:
    return {name: guid} | ({f"{name}{LOOKUP}": target} if target else {})


@pytest.mark.parametrize(("state", "close", "status", "closed_at"), [
    (1, "2025-03-03T00:00:00Z", "won", "2025-03-03T00:00:00+00:00"),
    (2, "2025-03-02T15:45:00Z", "lost", "2025-03-02T00:00:00+00:00"),
    (1, None, "won", "2025-03-04T00:00:00+00:00"),          # closed by a PATCH: no actualclosedate
    (0, "2025-04-01T00:00:00Z", "open", None),
])
def test_opportunity_status_and_a_date_only_close_at_midnight_utc(state: int, close: str | None, status: str,
                                                                  closed_at: str | None) -> None:
    row = stamp(opportunityid=ROW_ID, name="Deal", statecode=state, actualclosedate=close, estimatedvalue=100.0,
                actualvalue=250.0 if state == 1 else None, **lookup("_parentcontactid_value", CONTACT, "contact"),
                **lookup("_customerid_value", ACCOUNT, "account"), **lookup("_parentaccountid_value", ACCOUNT,
                                                                            "account"))
    (deal,) = mapped("opportunities", row).rows
    assert deal.row["status"] == status
    assert (deal.row["closed_at"].isoformat() if deal.row["closed_at"] else None) == closed_at
    assert deal.row["amount"] == (250.0 if state == 1 else 100.0)
    assert deal.row["company_id"] == f"dynamics:accounts:{ACCOUNT}"
    assert deal.people == [(f"dynamics:contacts:{CONTACT}", None, True)], "the account customer is not a person"


@pytest.mark.parametrize(("state", "closed", "status"), [(0, False, "active"), (1, True, "resolved"),
                                                         (2, True, "cancelled")])
def test_incident_resolved_or_cancelled_is_closed_at_its_last_change(state: int, closed: bool, status: str) -> None:
    row = stamp(incidentid=ROW_ID, title="Broken", statecode=state, caseorigincode=2483, prioritycode=1,
                **lookup("_customerid_value", CONTACT, "contact"))
    (ticket,) = mapped("incidents", row).rows
    assert (ticket.row["is_closed"], ticket.row["status"], ticket.row["channel"], ticket.row["priority"]) == (
        closed, status, "social", "high")
    assert ticket.row["closed_at"] == (datetime(2025, 3, 4, 17, 30, tzinfo=UTC) if closed else None)
    assert ticket.row["opened_at"] == datetime(2025, 3, 1, 9, tzinfo=UTC)
    assert ticket.people == [(f"dynamics:contacts:{CONTACT}", None, True)] and ticket.row["company_id"] is None


@pytest.mark.parametrize(("outgoing", "state", "direction", "result"), [
    (True, 1, "outbound", "completed"), (True, 2, "outbound", "no_answer"), (False, 1, "inbound", "completed"),
    (True, 0, "outbound", "scheduled"), (None, 1, None, "completed"),
])
def test_phonecall_direction_and_state(outgoing: bool | None, state: int, direction: str | None,
                                       result: str) -> None:
    row = stamp(activityid=ROW_ID, subject="Call", directioncode=outgoing, statecode=state,
                actualend="2025-03-02T11:00:00Z", **lookup("_regardingobjectid_value", LEAD, "lead"))
    (call,) = mapped("phonecalls", row).rows
    assert (call.row["kind"], call.row["channel"], call.row["direction"], call.row["outcome"]) == (
        "call", "phone", direction, result)
    assert call.row["occurred_at"] == datetime(2025, 3, 2, 11, tzinfo=UTC)
    assert call.people == [(f"dynamics:leads:{LEAD}", None, True)]


@pytest.mark.parametrize(("state", "result"), [(1, "completed"), (2, "cancelled"), (3, "scheduled"),
                                               (0, "scheduled")])
def test_appointment_outcome_and_time_is_its_start(state: int, result: str) -> None:
    row = stamp(activityid=ROW_ID, subject="Demo", statecode=state, scheduledstart="2025-03-05T10:00:00Z",
                scheduledend="2025-03-05T11:00:00Z", **lookup("_regardingobjectid_value", OPPORTUNITY, "opportunity"))
    (meeting,) = mapped("appointments", row).rows
    assert (meeting.row["kind"], meeting.row["outcome"]) == ("meeting", result)
    assert meeting.row["occurred_at"] == datetime(2025, 3, 5, 10, tzinfo=UTC)
    assert meeting.row["deal_id"] == f"dynamics:opportunities:{OPPORTUNITY}" and meeting.people == []


@pytest.mark.parametrize(("outgoing", "status", "direction", "result"), [
    (True, 3, "outbound", "sent"), (False, 4, "inbound", "received"), (True, 1, "outbound", "not_started")])
def test_email_direction_and_status(outgoing: bool, status: int, direction: str, result: str) -> None:
    row = stamp(activityid=ROW_ID, subject="Re: quote", description="<p>Hello&nbsp;<b>there</b></p>",
                directioncode=outgoing, statecode=1, statuscode=status, actualend="2025-03-02T08:00:00Z",
                **lookup("_regardingobjectid_value", CONTACT, "contact"))
    (item,) = mapped("emails", row).rows
    assert (item.row["kind"], item.row["direction"], item.row["outcome"]) == ("email", direction, result)
    assert item.row["body"] == "Hello there"


@pytest.mark.parametrize(("category", "score", "kind", "expected"), [
    ("survey", 9, "survey_response", (9.0, 10.0)), ("Survey", None, "survey_response", (None, None)),
    ("referral", None, "referral", (None, None)), ("review", 8, "review", (8.0, 10.0)),
    ("follow-up", 7, "task", (None, None)), (None, None, "task", (None, None)),
])
def test_task_categories_are_journey_signals(category: str | None, score: int | None, kind: str,
                                             expected: tuple[float | None, float | None]) -> None:
    row = stamp(activityid=ROW_ID, subject="Task", category=category, new_surveyscore=score, statecode=1,
                statuscode=5, actualend="2025-03-03T12:00:00Z", **lookup("_regardingobjectid_value", CONTACT,
                                                                         "contact"))
    (item,) = mapped("tasks", row).rows
    assert item.row["kind"] == kind and (item.row["score"], item.row["score_max"]) == expected
    assert item.row["direction"] == (None if kind == "task" else "inbound")
    assert item.row["outcome"] == "completed"


def test_the_hubs_own_tasks_and_notes_are_skipped() -> None:
    task = stamp(activityid=ROW_ID, subject="Deal won (Salesforce)", new_externalid="jh:3f2a",
                 actualend="2025-03-03T12:00:00Z")
    assert mapped("tasks", task).skipped
    assert not mapped("tasks", {**task, "new_externalid": "crm-import-7"}).skipped
    note = stamp(annotationid=ROW_ID, subject="jh: ticket opened in HubSpot", notetext="…",
                 **lookup("_objectid_value", CONTACT, "contact"), objecttypecode="contact")
    assert mapped("annotations", note).skipped
    assert not mapped("annotations", {**note, "subject": "Call notes"}).skipped


@pytest.mark.parametrize("entity_set", ["phonecalls", "appointments", "emails"])
def test_activities_without_a_marker_column_are_skipped_by_their_subject(entity_set: str) -> None:
    row = stamp(activityid=ROW_ID, subject="jh: meeting held (Salesforce)", statecode=1,
                scheduledstart="2025-03-05T10:00:00Z", actualend="2025-03-05T11:00:00Z")
    assert mapped(entity_set, row).skipped
    assert not mapped(entity_set, {**row, "subject": "Meeting held"}).skipped


def test_a_note_belongs_to_what_it_is_attached_to() -> None:
    note = stamp(annotationid=ROW_ID, subject="Case note", notetext="x" * 5000, objecttypecode="incident",
                 **lookup("_objectid_value", CASE, "incident"), **lookup("_ownerid_value", OWNER, "systemuser"))
    (item,) = mapped("annotations", note).rows
    assert item.row["ticket_id"] == f"dynamics:incidents:{CASE}" and item.people == []
    assert item.row["owner_id"] == f"dynamics:systemusers:{OWNER}"
    assert len(item.row["body"]) == 4000, "long notes are kept, truncated to the canonical body size"


def test_a_qualified_lead_names_the_contact_it_became() -> None:
    lead = stamp(leadid=ROW_ID, lastname="Levi", emailaddress1=" Lia@Example.com ", statecode=1,
                 **lookup("_parentcontactid_value", CONTACT, "contact"))
    (person,) = mapped("leads", lead).rows
    assert person.row["converted_to"] == f"dynamics:contacts:{CONTACT}" and person.row["kind"] == "lead"
    assert person.row["email"] == "Lia@Example.com"
    (open_lead,) = mapped("leads", {**lead, "statecode": 0}).rows
    assert open_lead.row["converted_to"] is None


def test_a_contact_qualified_from_a_lead_carries_it_as_a_cross_reference() -> None:
    contact = stamp(contactid=ROW_ID, lastname="Levi", **lookup("_originatingleadid_value", LEAD, "lead"),
                    **lookup("_parentcustomerid_value", ACCOUNT, "account"))
    (person,) = mapped("contacts", contact).rows
    assert person.row["xrefs"] == [f"dynamics:leads:{LEAD}"]
    assert person.row["company_id"] == f"dynamics:accounts:{ACCOUNT}"


def test_a_merged_contact_points_at_its_master() -> None:
    loser = stamp(contactid=ROW_ID, lastname="Cohen", merged=True, statecode=1,
                  **lookup("_masterid_value", CONTACT, "contact"))
    assert mapped("contacts", loser).merged_into == f"dynamics:contacts:{CONTACT}"
    assert mapped("contacts", {**loser, "merged": False}).merged_into is None


def test_a_contact_whose_parent_is_a_contact_has_no_company() -> None:
    contact = stamp(contactid=ROW_ID, lastname="Lee", **lookup("_parentcustomerid_value", CONTACT, "contact"))
    (person,) = mapped("contacts", contact).rows
    assert person.row["company_id"] is None


# ------------------------------------------------------------------------------------------- fixtures
SAMPLE_KEYS = {  # the columns whose combinations a golden page should cover
    "contacts": ("merged", "_originatingleadid_value", "emailaddress1", "lastname", "_parentcustomerid_value"),
    "leads": ("statecode", "emailaddress1", "lastname"),
    "accounts": ("statecode",),
    "opportunities": ("statecode", "statuscode"),
    "incidents": ("statecode", "caseorigincode"),
    "phonecalls": ("directioncode", "statecode"),
    "appointments": ("statecode",),
    "emails": ("directioncode", "statuscode"),
    "tasks": ("category", "statuscode"),
    "annotations": ("objecttypecode",),
    "systemusers": ("isdisabled", "internalemailaddress"),
}


def _signature(entity_set: str, row: dict[str, Any]) -> tuple[Any, ...]:
    """What kind of row this is, for picking a few of each kind: emails as missing/ok/bad, names and lookups
    as present or not, everything else by value."""
    def shape(name: str) -> Any:
        value = row.get(name)
        if name in ("emailaddress1", "internalemailaddress"):
            text = str(value or "").strip()
            return "missing" if not text else "ok" if text.count("@") == 1 and text[0] != "@" else "bad"
        if name == "lastname" or name.startswith("_"):
            return bool(value)
        return value
    return tuple(shape(name) for name in SAMPLE_KEYS[entity_set])


def write_fixtures() -> None:
    """Capture golden pages from the emulator serving the generated world, and map them."""
    from connectors.dynamics import DynamicsConfig, DynamicsConnector
    from sandbox.common.server import EmulatorServer
    from sandbox.dynamics import DynamicsEmulator
    from sandbox.world import generate
    from tests.connectors.contract import mapping_fields

    world = generate(300, 7, ANCHOR)
    emulator = DynamicsEmulator(requests_per_5min=None)
    emulator.load(world.dynamics)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    with EmulatorServer(emulator) as server:
        hub = DynamicsConnector(DynamicsConfig(url=server.url, access_token="sandbox-token"))
        for entity_set in sorted(ENTITY_SETS):
            pages = hub.read(entity_set, None, full=True, fields=mapping_fields(hub, entity_set))
            rows = [record.data for page in pages for record in page.records
                    if record.data is not None and len(str(record.data)) < 4000
                    and record.remote_id != emulator.user_id]  # the emulator's own user: wall-clock stamps
            picked: dict[tuple[Any, ...], dict[str, Any]] = {}
            for row in rows:
                picked.setdefault(_signature(entity_set, row), row)
            page = {"value": list(picked.values())[:10]}
            (GOLDEN / f"{entity_set}.page.json").write_text(dumps(page), encoding="utf-8")
            (GOLDEN / f"{entity_set}.mapped.json").write_text(
                dumps([outcome(entity_set, row) for row in page["value"]]), encoding="utf-8")


if __name__ == "__main__":
    write_fixtures()
