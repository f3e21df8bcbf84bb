"""The Salesforce mappings: golden files per sObject (a raw page as the emulator serves the generated world →
canonical rows), and table tests of the rules that are easy to get wrong, checked down to the lifecycle
signals they must (or must not) fire.

Regenerate the page fixtures and goldens after a deliberate change, then review the diff:
    JH_UPDATE_GOLDEN=1 /tmp/venv/bin/python -m pytest tests/connectors/test_salesforce_mapping.py -q
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.base import RemoteRecord
from journeyhub.config import load_config_file, load_mappings, mappings_root
from journeyhub.ingest.mapper import MappedRecord, Mapper, MappingError
from journeyhub.journey.lifecycle import CustomerFacts, DealFact, InteractionFact, RuleSet

GOLDEN = Path(__file__).parent / "golden" / "salesforce"
OBJECTS = ("Contact", "Lead", "Account", "Opportunity", "OpportunityContactRole", "Case", "Task", "Event",
           "EmailMessage", "User")
ANCHOR = datetime(2026, 1, 1, tzinfo=UTC)
SPECS = load_mappings(mappings_root(), "salesforce")
RULES = RuleSet(load_config_file(mappings_root(), "lifecycle.yaml"))

CONTACT, LEAD = "0030W00002tmJawQAE", "00Q0W00002tmJawUAE"
OPPORTUNITY, CASE = "0060W00002tmJawQAE", "5000W00002tmJawQAE"
ACCOUNT, USER = "0010W0000bfTDb8QAG", "0050W00002tmJawQAE"


def mapped(object_type: str, record: dict[str, Any]) -> MappedRecord:
    return Mapper("salesforce", SPECS[object_type]).map(record.get("Id", "x"), record)


def row(object_type: str, record: dict[str, Any]) -> dict[str, Any]:
    return mapped(object_type, record).rows[0].row


def render(result: MappedRecord | MappingError) -> dict[str, Any]:
    """A mapping outcome as JSON: rows (with their people), merges and skips, or the quarantine reason."""
    if isinstance(result, MappingError):
        return {"quarantine": result.reason, "detail": result.detail}
    return {"skipped": result.skipped, "merged_into": result.merged_into,
            "rows": [{"entity": item.entity, "key": item.key, "people": item.people,
                      "row": {name: value.isoformat() if isinstance(value, datetime) else value
                              for name, value in item.row.items()}} for item in result.rows]}


def map_fixture(object_type: str, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for item in records:
        source = RemoteRecord(object_type, item["remote_id"], item["data"], deleted=item["deleted"])
        try:
            result: MappedRecord | MappingError = Mapper("salesforce", SPECS[object_type]).map(
                source.remote_id, source.document())
        except MappingError as error:
            result = error
        out.append({"remote_id": source.remote_id, "deleted": source.deleted, **render(result)})
    return json.loads(json.dumps(out, default=str))


# ------------------------------------------------------------------------------------------------ goldens
@pytest.mark.parametrize("object_type", OBJECTS)
def test_a_served_page_maps_to_the_reviewed_golden_rows(object_type: str) -> None:
    page_file, golden_file = GOLDEN / "pages" / f"{object_type}.json", GOLDEN / f"{object_type}.json"
    if os.environ.get("JH_UPDATE_GOLDEN"):
        _regenerate()
    records = json.loads(page_file.read_text())
    assert len(records) >= 3, "the fixture covers several kinds of record"
    assert map_fixture(object_type, records) == json.loads(golden_file.read_text())


_DONE: list[bool] = []


def _signature(object_type: str, data: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a record a different case for its mapping (one fixture record per signature)."""
    keys = {
        "Contact": lambda d: (d["IsDeleted"], d["LastName"] is None, d["AccountId"] is None, d["Phone"] is None),
        "Lead": lambda d: (d["IsConverted"], d["Status"], d["MobilePhone"] is None),
        "Account": lambda d: (d["Industry"],),
        "Opportunity": lambda d: (d["IsWon"], d["IsClosed"]),
        "OpportunityContactRole": lambda d: (d["Role"], d["IsPrimary"]),
        "Case": lambda d: (d["Status"], d["Origin"]),
        "Task": lambda d: (d["Type"], d["TaskSubtype"], d["CallType"], d["CallDisposition"], d["Status"]),
        "Event": lambda d: (d["Type"], d["WhatId"] is None),
        "EmailMessage": lambda d: (d["Incoming"], d["ParentId"] is None),
        "User": lambda d: (d["IsActive"], d["Username"].startswith("hub@")),
    }
    return keys[object_type](data)


def _regenerate() -> None:
    """Read the generated world through the connector from the emulator and keep a few records per case."""
    if _DONE:
        return
    from connectors.salesforce import SalesforceConfig, SalesforceConnector
    from sandbox.common.server import EmulatorServer
    from sandbox.salesforce import SalesforceEmulator
    from sandbox.world import generate
    from tests.connectors.contract import mapping_fields

    emulator = SalesforceEmulator()
    emulator.load(generate(300, 7, ANCHOR).salesforce)
    (GOLDEN / "pages").mkdir(parents=True, exist_ok=True)
    with EmulatorServer(emulator) as server:
        connector = SalesforceConnector(SalesforceConfig(instance_url=server.url, access_token="sandbox-token"))
        for object_type in OBJECTS:
            chosen: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
            for page in connector.read(object_type, None, full=True, fields=mapping_fields(connector, object_type)):
                for record in page.records:
                    assert record.data is not None
                    if object_type == "User" and record.data["Username"].startswith("hub@"):
                        continue  # the emulator's API user is created at load time (its stamps are "now")
                    group = chosen.setdefault(_signature(object_type, record.data), [])
                    if len(group) < 3:
                        group.append({"remote_id": record.remote_id, "deleted": record.deleted, "data": record.data})
            records = [item for group in chosen.values() for item in group][:24]
            (GOLDEN / "pages" / f"{object_type}.json").write_text(json.dumps(records, indent=1, ensure_ascii=False))
            (GOLDEN / f"{object_type}.json").write_text(
                json.dumps(map_fixture(object_type, records), indent=1, ensure_ascii=False))
    _DONE.append(True)


# ------------------------------------------------------------------------------------------------ lifecycle
def signals(*, interactions: list[dict[str, Any]] = (), deals: list[dict[str, Any]] = (),  # type: ignore[assignment]
            as_of: datetime = ANCHOR) -> set[str]:
    """The lifecycle signals mapped rows fire for one customer as of `as_of`."""
    facts = CustomerFacts("c1", interactions=[_fact(item, str(index)) for index, item in enumerate(interactions)],
                          deals=[DealFact(str(index), item["status"], item["opened_at"], item["closed_at"])
                                 for index, item in enumerate(deals)])
    found, _ = RULES.occurrences(facts, as_of)
    return {name for name, items in found.items() if items}


# ------------------------------------------------------------------------------------------------ deals
OPP = {"Id": OPPORTUNITY, "Name": "Renewal", "Amount": 1200.0, "AccountId": ACCOUNT, "OwnerId": USER,
       "CreatedDate": "2025-03-01T09:30:00.000+0000", "CloseDate": "2025-04-15"}


@pytest.mark.parametrize(("stage", "closed", "won", "status", "closed_at"), [
    ("Closed Won", True, True, "won", datetime(2025, 4, 15, tzinfo=UTC)),
    ("Closed Lost", True, False, "lost", datetime(2025, 4, 15, tzinfo=UTC)),
    ("Negotiation/Review", False, False, "open", None),
])
def test_opportunities_are_won_lost_or_open_and_close_at_midnight_utc(stage: str, closed: bool, won: bool,
                                                                      status: str, closed_at: datetime | None) -> None:
    deal = row("Opportunity", {**OPP, "StageName": stage, "IsClosed": closed, "IsWon": won})
    assert (deal["status"], deal["closed_at"], deal["stage"]) == (status, closed_at, stage)
    assert deal["opened_at"] == datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    assert deal["company_id"] == f"salesforce:Account:{ACCOUNT}" and deal["owner_id"] == f"salesforce:User:{USER}"
    fired = signals(deals=[deal])
    assert ("won_deal" in fired) == (status == "won") and "deal_created" in fired
    if status == "won":  # a call that morning is after the purchase: the close is 00:00 UTC, not end of day
        morning = row("Task", {**TASK, "TaskSubtype": "Call", "CallType": "Inbound",
                               "CompletedDateTime": "2025-04-15T08:00:00.000+0000"})
        journey = RULES.evaluate(CustomerFacts("c1", deals=[DealFact("d", "won", deal["opened_at"],
                                                                     deal["closed_at"])],
                                               interactions=[_fact(morning)]), ANCHOR)
        assert journey.entries["engagement"].time == datetime(2025, 4, 15, 8, tzinfo=UTC)


def test_an_opportunity_contact_role_is_a_relation_from_the_deal_to_the_contact() -> None:
    relation = row("OpportunityContactRole", {"Id": "00K0W00002tmJawQAE", "OpportunityId": OPPORTUNITY,
                                              "ContactId": CONTACT, "Role": "Decision Maker", "IsPrimary": True})
    assert relation == {"from_id": f"salesforce:Opportunity:{OPPORTUNITY}", "to_id": f"salesforce:Contact:{CONTACT}",
                        "label": "Decision Maker", "is_primary": True, "custom": None}
    with pytest.raises(MappingError) as error:
        mapped("OpportunityContactRole", {"Id": "00K1", "OpportunityId": OPPORTUNITY, "ContactId": None})
    assert error.value.reason == "missing_required_field"


# ------------------------------------------------------------------------------------------------ tickets
@pytest.mark.parametrize(("status", "closed"), [("Closed", True), ("Working", False)])
def test_a_case_is_a_ticket_closed_only_when_salesforce_says_so(status: str, closed: bool) -> None:
    record = mapped("Case", {"Id": CASE, "Subject": "Broken", "Status": status, "IsClosed": closed,
                             "Priority": "High", "Origin": "Chat", "ContactId": CONTACT,
                             "CreatedDate": "2025-05-01T10:00:00.000+0000",
                             "ClosedDate": "2025-05-03T10:00:00.000+0000"})
    ticket = record.rows[0].row
    assert (ticket["is_closed"], ticket["closed_at"] is not None) == (closed, closed)
    assert (ticket["priority"], ticket["channel"]) == ("high", "chat")
    assert record.rows[0].people == [(f"salesforce:Contact:{CONTACT}", None, True)]


# ------------------------------------------------------------------------------------------------ tasks
TASK = {"Id": "00T0W00002tmJawUAE", "WhoId": CONTACT, "WhatId": None, "Subject": "Call", "Status": "Completed",
        "TaskSubtype": "Task", "Type": "Other", "ActivityDate": "2025-06-01", "OwnerId": USER,
        "CompletedDateTime": "2025-06-01T12:00:00.000+0000", "External_Id__c": None}


def _fact(item: dict[str, Any], key: str = "i") -> InteractionFact:
    return InteractionFact(key, item["kind"], item["channel"], item["direction"], item["outcome"],
                           item["occurred_at"], item["score"], item["score_max"])


@pytest.mark.parametrize(("call_type", "disposition", "direction", "outcome", "signal"), [
    ("Outbound", "Completed", "outbound", "completed", "completed_outbound_call"),
    ("Outbound", "No Answer", "outbound", "no_answer", None),
    ("Outbound", "Left Voicemail", "outbound", "no_answer", None),
    ("Inbound", "Busy", "inbound", "busy", "inbound_call"),
    ("Inbound", None, "inbound", "completed", "inbound_call"),       # no Call Result: the task's Status
    ("Outbound", "Interested", "outbound", "other", None),          # an org's own Call Result value
    ("Internal", "Completed", None, "completed", None),
])
def test_call_tasks_read_direction_from_call_type_and_outcome_from_call_disposition(
        call_type: str, disposition: str | None, direction: str | None, outcome: str, signal: str | None) -> None:
    call = row("Task", {**TASK, "TaskSubtype": "Call", "Type": "Call", "CallType": call_type,
                        "CallDisposition": disposition})
    assert (call["kind"], call["channel"], call["direction"], call["outcome"]) == ("call", "phone", direction,
                                                                                   outcome)
    fired = signals(interactions=[call]) & {"completed_outbound_call", "inbound_call"}
    assert fired == ({signal} if signal else set())


@pytest.mark.parametrize(("extra", "kind", "score", "score_max", "signal"), [
    ({"Type": "Survey", "Survey_Score__c": 9.0}, "survey_response", 9.0, 10.0, "promoter_score"),
    ({"Type": "Survey", "Survey_Score__c": 8.0}, "survey_response", 8.0, 10.0, "survey_answered"),
    ({"Type": "Review", "Review_Rating__c": 4.0}, "review", 4.0, 5.0, "positive_review"),
    ({"Type": "Review", "Review_Rating__c": 3.0}, "review", 3.0, 5.0, "review_written"),
    ({"Type": "Review"}, "review", None, None, "positive_review"),     # unrated reviews count as positive
    ({"Type": "Referral"}, "referral", None, None, "referral"),
    ({"Type": "Other", "Survey_Score__c": 10.0}, "task", None, None, None),   # a stray score on a to-do
])
def test_journey_task_types_carry_their_scores(extra: dict[str, Any], kind: str, score: float | None,
                                               score_max: float | None, signal: str | None) -> None:
    item = row("Task", {**TASK, **extra})
    assert (item["kind"], item["score"], item["score_max"]) == (kind, score, score_max)
    assert item["occurred_at"] == datetime(2025, 6, 1, 12, tzinfo=UTC)
    fired = signals(interactions=[item])
    if signal:
        assert signal in fired
    if extra.get("Survey_Score__c") == 8.0 or extra.get("Review_Rating__c") == 3.0:
        assert not fired & {"promoter_score", "positive_review"}


def test_open_to_dos_and_notes_never_count_as_an_interaction_with_the_customer() -> None:
    todo = row("Task", {**TASK, "Status": "Not Started", "CompletedDateTime": None, "ActivityDate": "2025-07-01"})
    assert (todo["kind"], todo["outcome"], todo["occurred_at"]) == ("task", "not_started",
                                                                    datetime(2025, 7, 1, tzinfo=UTC))
    note = row("Task", {**TASK, "Subject": "Note: prefers WhatsApp"})
    assert signals(interactions=[todo, note]) == set()


def test_the_hubs_own_tasks_and_events_are_skipped() -> None:
    assert mapped("Task", {**TASK, "External_Id__c": "jh:interaction:42"}).skipped
    assert mapped("Event", {**EVENT, "External_Id__c": "jh:interaction:43"}).skipped
    assert not mapped("Task", {**TASK, "External_Id__c": "crm-import-7"}).skipped


def test_a_task_reaches_its_person_deal_and_ticket_through_polymorphic_lookups() -> None:
    on_lead = mapped("Task", {**TASK, "WhoId": LEAD, "WhatId": OPPORTUNITY}).rows[0]
    assert on_lead.people == [(f"salesforce:Lead:{LEAD}", None, True)]
    assert on_lead.row["deal_id"] == f"salesforce:Opportunity:{OPPORTUNITY}" and on_lead.row["ticket_id"] is None
    on_case = row("Task", {**TASK, "WhatId": CASE})
    assert on_case["ticket_id"] == f"salesforce:Case:{CASE}" and on_case["deal_id"] is None


# ------------------------------------------------------------------------------------------------ events
EVENT = {"Id": "00U0W00002tmJawUAE", "WhoId": CONTACT, "Subject": "Demo", "Type": "Meeting", "OwnerId": USER,
         "StartDateTime": "2025-09-01T10:00:00.000+0000", "EndDateTime": "2025-09-01T11:00:00.000+0000",
         "External_Id__c": None}


def test_an_event_that_took_place_is_a_held_meeting_and_a_future_one_is_not() -> None:
    past = row("Event", EVENT)
    future = row("Event", {**EVENT, "StartDateTime": "2026-03-01T10:00:00.000+0000",
                           "EndDateTime": "2026-03-01T11:00:00.000+0000"})
    for item in (past, future):
        assert (item["kind"], item["channel"], item["outcome"]) == ("meeting", "meeting", None)
    assert past["occurred_at"] == datetime(2025, 9, 1, 10, tzinfo=UTC)
    assert past["custom"] == {"ends_at": "2025-09-01T11:00:00+00:00"}
    assert "meeting_held" in signals(interactions=[past])
    assert "meeting_held" not in signals(interactions=[future])
    assert "meeting_held" in signals(interactions=[future], as_of=datetime(2026, 3, 2, tzinfo=UTC))


# ------------------------------------------------------------------------------------------------ emails
EMAIL = {"Id": "02s0W00002tmJawQAE", "Subject": "Re: pricing", "TextBody": "Thanks!", "Status": "3",
         "FromAddress": "rep@journeyhub-demo.co.il", "ToAddress": "Dana.Cohen@Example.co.il; cc@example.com",
         "MessageDate": "2025-02-02T08:00:00.000+0000", "ParentId": None, "RelatedToId": CONTACT}


def test_an_outgoing_email_reaches_its_recipients_by_address() -> None:
    record = mapped("EmailMessage", {**EMAIL, "Incoming": False}).rows[0]
    assert (record.row["direction"], record.row["outcome"]) == ("outbound", "sent")
    assert record.people == [("email:dana.cohen@example.co.il", None, True), ("email:cc@example.com", None, False)]
    assert not signals(interactions=[record.row]) & {"inbound_email", "email_engaged"}


def test_an_incoming_email_reaches_its_sender_and_its_case() -> None:
    record = mapped("EmailMessage", {**EMAIL, "Incoming": True, "Status": "1", "ParentId": CASE,
                                     "FromAddress": " Dana.Cohen@Example.co.il ",
                                     "ToAddress": "support@journeyhub-demo.co.il"}).rows[0]
    assert (record.row["direction"], record.row["outcome"]) == ("inbound", "received")
    assert record.people == [("email:dana.cohen@example.co.il", None, True)]
    assert record.row["ticket_id"] == f"salesforce:Case:{CASE}"
    assert "inbound_email" in signals(interactions=[record.row])


# ------------------------------------------------------------------------------------------------ people
PERSON = {"FirstName": "Dana", "LastName": "Cohen", "Email": "Dana.Cohen@example.co.il", "Phone": None,
          "MobilePhone": "+972 50-123-4567", "OwnerId": USER, "MasterRecordId": None, "IsDeleted": False}


def test_a_converted_lead_points_at_its_contact() -> None:
    lead = row("Lead", {**PERSON, "Id": LEAD, "Company": "Yarden Energy", "Status": "Closed - Converted",
                        "IsConverted": True, "ConvertedContactId": CONTACT, "ConvertedAccountId": ACCOUNT,
                        "ConvertedDate": "2024-06-21"})
    assert (lead["kind"], lead["converted_to"], lead["phone"]) == ("lead", f"salesforce:Contact:{CONTACT}",
                                                                   "+972 50-123-4567")
    assert lead["custom"]["company_name"] == "Yarden Energy" and lead["custom"]["converted_at"].startswith("2024-06-21")
    open_lead = row("Lead", {**PERSON, "Id": LEAD, "Company": "X", "Status": "Working - Contacted",
                             "IsConverted": False, "ConvertedContactId": None})
    assert open_lead["converted_to"] is None


def test_a_merged_contact_is_a_tombstone_pointing_at_the_survivor() -> None:
    winner = "0030W00005nQ3axQAC"
    loser = mapped("Contact", {**PERSON, "Id": CONTACT, "IsDeleted": True, "MasterRecordId": winner,
                               "AccountId": ACCOUNT})
    assert loser.merged_into == f"salesforce:Contact:{winner}"
    assert loser.rows[0].row["company_id"] == f"salesforce:Account:{ACCOUNT}"
    assert mapped("Contact", {**PERSON, "Id": CONTACT}).merged_into is None


def test_a_contact_without_a_last_name_is_quarantined_as_salesforce_requires_one() -> None:
    with pytest.raises(MappingError) as error:
        mapped("Contact", {**PERSON, "Id": CONTACT, "LastName": None})
    assert error.value.reason == "missing_required_field" and "last_name" in error.value.detail
