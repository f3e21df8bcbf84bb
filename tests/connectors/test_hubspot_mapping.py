"""The HubSpot mappings (mappings/hubspot/*.yaml): golden files and focused tables of the tricky rules.

Golden tests: `golden/hubspot/<object>.page.json` holds records as the connector reads them from the emulator
for the generated world (`generate(60, 7, ANCHOR)`; email events sampled); `<object>.golden.json` holds what
the mapping makes of them, reviewed by a person. A mapping change shows up as a diff of the golden file.
Regenerate both after a reviewed change with `HUBSPOT_GOLDEN_UPDATE=1 pytest tests/connectors/test_hubspot_mapping.py`.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import orjson
import pytest

from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.objects import OBJECTS
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.mapper import Mapper, MappingError
from sandbox.common.server import EmulatorServer
from sandbox.hubspot import HubSpotEmulator
from sandbox.world import generate
from tests.connectors.contract import mapping_fields

GOLDEN = Path(__file__).parent / "golden" / "hubspot"
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
UPDATE = os.environ.get("HUBSPOT_GOLDEN_UPDATE") == "1"
EVENTS_PER_TYPE = 3


@cache
def mappers() -> dict[str, Mapper]:
    return {name: Mapper("hubspot", spec) for name, spec in load_mappings(mappings_root(), "hubspot").items()}


def dumps(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS, default=str) + b"\n"


# ---------------------------------------------------------------------------------------------- golden files
def served_pages() -> dict[str, list[dict[str, Any]]]:
    """Every object type as the connector reads it from the emulator loaded with the generated world."""
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emu.load(generate(60, 7, ANCHOR).hubspot)
    out: dict[str, list[dict[str, Any]]] = {}
    with EmulatorServer(emu):
        hub = HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emu.base_url))
        for object_type in OBJECTS:
            records = [{"remote_id": r.remote_id, "deleted": r.deleted, "data": r.data, "extra": r.extra}
                       for page in hub.read(object_type, None, full=True, fields=mapping_fields(hub, object_type))
                       for r in page.records]
            out[object_type] = sample_events(records) if object_type == "email_events" else records
    return orjson.loads(orjson.dumps(out))


def sample_events(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    taken: dict[str, int] = {}
    sample = []
    for record in records:
        kind = record["data"]["type"]
        if taken.get(kind, 0) < EVENTS_PER_TYPE:
            taken[kind] = taken.get(kind, 0) + 1
            sample.append(record)
    return sample


def mapped(object_type: str, record: dict[str, Any]) -> dict[str, Any]:
    """What the mapping makes of one record, as JSON-able data."""
    out: dict[str, Any] = {"record": record["remote_id"]}
    try:
        result = mappers()[object_type].map(record["remote_id"], {**(record["data"] or {}), **record["extra"]})
    except MappingError as error:
        return {**out, "quarantine": {"reason": error.reason, "detail": error.detail}}
    if result.skipped:
        return {**out, "skipped": True}
    out["rows"] = [{"entity": row.entity, "key": row.key, "row": row.row,
                    "people": None if row.people is None else [list(person) for person in row.people]}
                   for row in result.rows]
    if result.merges:
        out["merges"] = result.merges
    if result.merged_into:
        out["merged_into"] = result.merged_into
    return out


@cache
def fixture_pages() -> dict[str, list[dict[str, Any]]]:
    if UPDATE:
        pages = served_pages()
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for object_type, records in pages.items():
            (GOLDEN / f"{object_type}.page.json").write_bytes(dumps(records))
            (GOLDEN / f"{object_type}.golden.json").write_bytes(dumps([mapped(object_type, r) for r in records]))
    return {object_type: orjson.loads((GOLDEN / f"{object_type}.page.json").read_bytes()) for object_type in OBJECTS}


@pytest.mark.parametrize("object_type", list(OBJECTS))
def test_the_mapping_of_a_served_page_matches_its_reviewed_golden_file(object_type: str) -> None:
    records = fixture_pages()[object_type]
    expected = orjson.loads((GOLDEN / f"{object_type}.golden.json").read_bytes())
    actual = orjson.loads(dumps([mapped(object_type, record) for record in records]))
    assert len(records) >= 4
    for want, got in zip(expected, actual, strict=True):
        assert got == want, f"{object_type} {want['record']}"


def test_the_page_fixtures_are_what_the_connector_reads_from_the_generated_world() -> None:
    served = served_pages()
    for object_type, records in fixture_pages().items():
        assert served[object_type] == records, f"{object_type}: regenerate the fixtures (see the module docstring)"


def test_the_golden_files_cover_the_cases_that_matter() -> None:
    pages = fixture_pages()
    contacts = [mapped("contacts", record) for record in pages["contacts"]]
    reasons = [c["quarantine"]["reason"] for c in contacts if "quarantine" in c]
    suffixes = {row["key"].rsplit("#", 1)[1] for c in contacts for row in c.get("rows", []) if "#" in row["key"]}
    assert reasons.count("invalid_email") == 5 and suffixes == {"first_form", "recent_form", "nps"}
    assert any(c.get("merges") for c in contacts)
    statuses = {m["rows"][0]["row"]["status"] for m in (mapped("deals", r) for r in pages["deals"])}
    assert statuses == {"open", "won", "lost"}
    outcomes = {m["rows"][0]["row"]["outcome"] for m in (mapped("email_events", r) for r in pages["email_events"])}
    assert {"sent", "delivered", "opened", "clicked", "bounced"} <= outcomes


# ---------------------------------------------------------------------------------------------- rule tables
def row(object_type: str, document: dict[str, Any], index: int = 0) -> dict[str, Any]:
    return mappers()[object_type].map("1", document).rows[index].row


def stage(closed: bool, won: bool, label: str = "Stage") -> dict[str, Any]:
    return {"label": label, "pipelineLabel": "Sales Pipeline", "displayOrder": 1, "isClosed": closed, "isWon": won}


DEAL = {"id": "1", "createdAt": "2025-01-01T00:00:00.000Z",
        "properties": {"dealname": "D", "createdate": "2025-01-01T00:00:00.000Z", "dealstage": "s",
                       "closedate": "2025-03-01T10:00:00.000Z"}}


@pytest.mark.parametrize(("extra", "properties", "status", "closed"), [
    ({"_stage": stage(True, True, "Closed Won")}, {}, "won", True),
    ({"_stage": stage(True, False, "Closed Lost")}, {}, "lost", True),
    ({"_stage": stage(False, False, "Contract Sent")}, {"hs_is_closed_won": "true"}, "open", False),
    ({}, {"hs_is_closed": "true", "hs_is_closed_won": "true"}, "won", False),
    ({}, {"hs_is_closed": "true", "hs_is_closed_won": "false"}, "lost", False),
    ({}, {}, "open", False),
])
def test_deals_win_and_lose_by_their_stage(extra: dict[str, Any], properties: dict[str, str], status: str,
                                           closed: bool) -> None:
    deal = row("deals", {**DEAL, "properties": {**DEAL["properties"], **properties}, **extra})
    assert deal["status"] == status
    assert (deal["closed_at"] == datetime(2025, 3, 1, 10, tzinfo=UTC)) is closed
    assert deal["stage_label"] == (extra["_stage"]["label"] if extra else None)


@pytest.mark.parametrize(("extra", "properties", "is_closed", "channel"), [
    ({"_stage": {**stage(True, False, "Closed")}}, {"source_type": "EMAIL"}, True, "email"),
    ({"_stage": {**stage(False, False, "Waiting on us")}}, {"source_type": "CHAT", "closed_date": "x"}, False, "chat"),
    ({}, {"hs_is_closed": "true", "source_type": "FORM"}, True, "web"),
    ({}, {"source_type": "CARRIER_PIGEON"}, False, "other"),
])
def test_tickets_close_in_a_closed_state_stage(extra: dict[str, Any], properties: dict[str, str], is_closed: bool,
                                               channel: str) -> None:
    ticket = row("tickets", {"id": "1", "properties": {"createdate": "2025-01-01T00:00:00Z", **properties}, **extra})
    assert (ticket["is_closed"], ticket["channel"]) == (is_closed, channel)


@pytest.mark.parametrize(("direction", "status", "expected"), [
    ("OUTBOUND", "COMPLETED", ("outbound", "completed")),
    ("INBOUND", "NO_ANSWER", ("inbound", "no_answer")),
    ("OUTBOUND", "BUSY", ("outbound", "busy")),
    ("INBOUND", "CANCELED", ("inbound", "cancelled")),
    ("OUTBOUND", "SOMETHING_NEW", ("outbound", None)),
    (None, None, (None, None)),
])
def test_call_direction_and_outcome(direction: str | None, status: str | None,
                                    expected: tuple[str | None, str | None]) -> None:
    call = row("calls", {"properties": {"hs_timestamp": "2025-01-01T00:00:00Z", "hs_call_direction": direction,
                                        "hs_call_status": status}})
    assert (call["kind"], call["channel"]) == ("call", "phone") and (call["direction"], call["outcome"]) == expected


@pytest.mark.parametrize(("outcome", "expected"), [
    ("COMPLETED", "completed"), ("CANCELED", "cancelled"), ("NO_SHOW", "no_show"), ("RESCHEDULED", "rescheduled"),
    ("SCHEDULED", "scheduled"), (None, None)])
def test_meeting_outcomes(outcome: str | None, expected: str | None) -> None:
    meeting = row("meetings", {"properties": {"hs_timestamp": "2025-01-01T09:00:00Z", "hs_meeting_outcome": outcome,
                                              "hs_meeting_start_time": "2025-01-01T10:00:00Z"}})
    assert meeting["outcome"] == expected and meeting["occurred_at"] == datetime(2025, 1, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize(("kind", "direction", "outcome"), [
    ("SENT", "outbound", "sent"), ("DELIVERED", "outbound", "delivered"), ("BOUNCE", "outbound", "bounced"),
    ("DROPPED", "outbound", "dropped"), ("OPEN", "inbound", "opened"), ("CLICK", "inbound", "clicked"),
    ("SPAMREPORT", "inbound", "spam_report"), ("DEFERRED", "outbound", "deferred")])
def test_email_event_types(kind: str, direction: str, outcome: str) -> None:
    event = mappers()["email_events"].map("1", {"id": "e", "created": 1_706_842_000_000, "type": kind,
                                                 "recipient": "Dana@Example.com", "emailCampaignId": 12})
    item = event.rows[0]
    assert (item.row["kind"], item.row["direction"], item.row["outcome"]) == ("marketing_email", direction, outcome)
    assert item.people == [("email:dana@example.com", None, True)]


def contact(**properties: str) -> dict[str, Any]:
    return {"id": "101", "properties": {"email": "dana@example.com", "lastname": "Cohen", **properties},
            "_associations": {"companies": ["55"]}}


def test_form_submissions_come_from_the_first_and_latest_conversion() -> None:
    once = mappers()["contacts"].map("101", contact(first_conversion_date="2025-01-01T00:00:00.000Z",
                                                    first_conversion_event_name="Demo", num_conversion_events="1",
                                                    recent_conversion_date="2025-01-01T00:00:00.000Z"))
    assert [r.key for r in once.rows] == ["hubspot:contacts:101", "hubspot:contacts:101#first_form"]
    twice = mappers()["contacts"].map("101", contact(
        first_conversion_date="2025-01-01T00:00:00.000Z", first_conversion_event_name="Demo",
        recent_conversion_date="2025-02-01T00:00:00.000Z", recent_conversion_event_name="Pricing",
        num_conversion_events="2"))
    forms = [r.row for r in twice.rows[1:]]
    assert [(f["kind"], f["subject"], f["occurred_at"].month) for f in forms] == [
        ("form_submission", "Demo", 1), ("form_submission", "Pricing", 2)]
    assert all(r.people == [("hubspot:contacts:101", None, True)] for r in twice.rows[1:])


def test_an_nps_answer_is_a_scored_survey_response() -> None:
    rows = mappers()["contacts"].map("101", contact(hs_feedback_last_nps_rating="9",
                                                    hs_feedback_last_survey_date="2025-05-05T12:00:00.000Z")).rows
    survey = rows[1].row
    assert (rows[1].key, survey["kind"], survey["score"], survey["score_max"]) == (
        "hubspot:contacts:101#nps", "survey_response", 9.0, 10.0)
    without_date = mappers()["contacts"].map("101", contact(hs_feedback_last_nps_rating="9")).rows
    assert len(without_date) == 1


def test_a_merge_survivor_names_the_contacts_merged_into_it() -> None:
    result = mappers()["contacts"].map("101", contact(hs_merged_object_ids="90;91"))
    assert result.merges == ["hubspot:contacts:90", "hubspot:contacts:91"]


@pytest.mark.parametrize("object_type", ["notes", "tasks", "calls", "meetings", "emails"])
def test_the_hubs_own_activities_are_skipped_and_others_are_not(object_type: str) -> None:
    mapper = mappers()[object_type]
    base = {"properties": {"hs_timestamp": "2025-01-01T00:00:00Z"}}
    assert mapper.map("1", {"properties": {**base["properties"], "journeyhub_item_id": "jh:item-1"}}).skipped
    assert not mapper.map("1", {"properties": {**base["properties"], "journeyhub_item_id": "someone else's"}}).skipped
    assert not mapper.map("1", base).skipped


def test_engagements_reach_their_people_deal_and_ticket_through_associations() -> None:
    note = mappers()["notes"].map("9", {"properties": {"hs_timestamp": "2025-01-01T00:00:00Z"}, "_associations": {
        "contacts": ["101", "102"], "deals": ["7"], "tickets": [], "companies": ["55"]}}).rows[0]
    assert note.people == [("hubspot:contacts:101", None, True), ("hubspot:contacts:102", None, False)]
    assert (note.row["deal_id"], note.row["ticket_id"], note.row["company_id"]) == (
        "hubspot:deals:7", None, "hubspot:companies:55")


def test_pipeline_stages_and_owners() -> None:
    won = row("pipelines", {"objectType": "deals", "pipelineId": "default", "pipelineLabel": "Sales Pipeline",
                            "id": "closedwon", "label": "Closed Won", "displayOrder": 5, "isClosed": True,
                            "isWon": True, "metadata": {"isClosed": "true", "probability": "1.0"}})
    assert (won["object_type"], won["stage_id"], won["is_closed"], won["is_won"], won["display_order"]) == (
        "deals", "closedwon", True, True, 5)
    owner = row("owners", {"id": "7", "email": "Rep@Example.com", "firstName": "Noa", "lastName": "Levi",
                           "archived": True, "_full_name": "Noa Levi"})
    assert owner == {"email": "rep@example.com", "name": "Noa Levi", "is_active": False, "custom": None}
