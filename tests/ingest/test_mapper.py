"""The mapping language: values, transforms, refs, people, derived rows, skips, and quarantine reasons."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml

from journeyhub.ingest.mapper import Mapper, MappingError, get_path
from journeyhub.ingest.spec import MappingSpec
from journeyhub.yamlconf import ConfigFileError, load_yaml_model


def spec(text: str) -> MappingSpec:
    return MappingSpec.model_validate(yaml.safe_load(text))


CONTACTS = spec("""
object: contacts
entity: person
fields:
  kind: {value: contact}
  email: {from: properties.email}
  first_name: properties.firstname
  last_name: properties.lastname
  phone: {from: [properties.phone, properties.mobilephone]}
  owner_id: {from: properties.hubspot_owner_id, ref: owners}
  company_id: {from: _associations.companies, transform: first, ref: companies}
  xrefs: {from: properties.salesforcecontactid, ref: salesforce:Contact, transform: {split: ";"}}
custom:
  lead_status: properties.hs_lead_status
merges: {from: properties.hs_merged_object_ids, transform: {split: ";"}, ref: contacts}
derived:
  - suffix: first_form
    when: {path: properties.first_conversion_date, present: true}
    fields:
      kind: {value: form_submission}
      channel: {value: web}
      direction: {value: inbound}
      occurred_at: {from: properties.first_conversion_date, transform: datetime}
      subject: properties.first_conversion_event_name
""")


def contact(**properties: object) -> dict[str, object]:
    return {"id": "101", "properties": {"email": "Dana@Example.com", "firstname": "Dana", "lastname": "Cohen",
                                        **properties}, "_associations": {"companies": ["55", "56"]}}


def test_maps_a_contact_with_refs_custom_fields_and_a_derived_form_submission() -> None:
    record = Mapper("hubspot", CONTACTS).map("101", contact(
        mobilephone="050-1234567", hubspot_owner_id="7", salesforcecontactid="003A;003B", hs_lead_status="NEW",
        first_conversion_date="1706842000000", first_conversion_event_name="Demo form",
        hs_merged_object_ids="90;91"))
    person, form = record.rows
    assert person.key == "hubspot:contacts:101"
    assert person.row["phone"] == "050-1234567" and person.row["full_name"] == "Dana Cohen"
    assert person.row["owner_id"] == "hubspot:owners:7" and person.row["company_id"] == "hubspot:companies:55"
    assert person.row["xrefs"] == ["salesforce:Contact:003A", "salesforce:Contact:003B"]
    assert person.row["custom"] == {"lead_status": "NEW"}
    assert record.merges == ["hubspot:contacts:90", "hubspot:contacts:91"]
    assert form.key == "hubspot:contacts:101#first_form" and form.entity == "interaction"
    assert form.row["occurred_at"] == datetime.fromtimestamp(1706842000, UTC)
    assert form.people == [("hubspot:contacts:101", None, True)]


def test_derived_rows_appear_only_when_their_condition_holds() -> None:
    assert len(Mapper("hubspot", CONTACTS).map("101", contact()).rows) == 1


@pytest.mark.parametrize(("email", "reason"), [("dana@@example.com", "invalid_email"),
                                               ("no-at-sign.example.com", "invalid_email")])
def test_a_malformed_email_is_a_quarantine_reason(email: str, reason: str) -> None:
    with pytest.raises(MappingError) as error:
        Mapper("hubspot", CONTACTS).map("101", contact(email=email))
    assert error.value.reason == reason and email in error.value.detail


def test_a_person_without_name_email_or_phone_is_missing_required_fields() -> None:
    with pytest.raises(MappingError) as error:
        Mapper("hubspot", CONTACTS).map("9", {"properties": {}})
    assert error.value.reason == "missing_required_field"


TASKS = spec("""
object: Task
entity: interaction
skip_when: {path: External_Id__c, startswith: "jh:"}
fields:
  kind:
    cases:
      - {when: {path: Type, equals: Survey}, value: survey_response}
      - {when: {path: TaskSubtype, equals: Call}, value: call}
    default: task
  channel: {from: TaskSubtype, map: {Call: phone, Email: email}, default: other}
  direction: {from: CallType, map: {Inbound: inbound, Outbound: outbound}, default: null}
  outcome: {from: Status, map: {Completed: completed}, default: null}
  occurred_at: {from: [CompletedDateTime, ActivityDate], transform: datetime, required: true}
  score: {from: Survey_Score__c, transform: float}
  score_max: {value: 10, when: {path: Type, equals: Survey}}
  deal_id: {from: WhatId, ref: {prefix: {"006": Opportunity}}}
people:
  - {from: WhoId, ref: {prefix: {"003": Contact, "00Q": Lead}}}
""")


def test_cases_maps_prefix_refs_and_people_from_a_polymorphic_lookup() -> None:
    record = Mapper("salesforce", TASKS).map("00T1", {
        "TaskSubtype": "Call", "CallType": "Inbound", "Status": "Completed", "ActivityDate": "2025-02-01",
        "WhoId": "00Q000000000001AAA", "WhatId": "001000000000001AAA"})
    row = record.rows[0]
    assert (row.row["kind"], row.row["channel"], row.row["direction"], row.row["outcome"]) == (
        "call", "phone", "inbound", "completed")
    assert row.row["deal_id"] is None  # an Account WhatId is not a deal
    assert row.people == [("salesforce:Lead:00Q000000000001AAA", None, True)]


def test_a_survey_task_carries_its_score_and_scale() -> None:
    row = Mapper("salesforce", TASKS).map("00T2", {"Type": "Survey", "TaskSubtype": "Task",
                                                     "ActivityDate": "2025-02-01", "Survey_Score__c": 9}).rows[0]
    assert (row.row["kind"], row.row["score"], row.row["score_max"]) == ("survey_response", 9.0, 10.0)


def test_the_hubs_own_write_backs_are_skipped() -> None:
    assert Mapper("salesforce", TASKS).map("00T3", {"External_Id__c": "jh:abc", "ActivityDate": "2025-01-01"}).skipped


def test_a_missing_required_value_and_an_unknown_map_value_are_errors() -> None:
    with pytest.raises(MappingError, match="occurred_at"):
        Mapper("salesforce", TASKS).map("00T4", {"TaskSubtype": "Task"})
    strict = spec("""
object: Task
entity: interaction
fields:
  kind: {value: call}
  direction: {from: CallType, map: {Inbound: inbound}}
  occurred_at: {from: ActivityDate, transform: datetime}
""")
    with pytest.raises(MappingError) as error:
        Mapper("salesforce", strict).map("1", {"CallType": "Sideways", "ActivityDate": "2025-01-01"})
    assert error.value.reason == "invalid_value" and "Sideways" in error.value.detail


def test_the_record_says_nothing_about_people_when_the_path_is_absent() -> None:
    deals = spec("""
object: deals
entity: deal
fields:
  opened_at: {from: createdAt, transform: datetime}
people:
  - {from: _associations.contacts, ref: contacts}
""")
    mapper = Mapper("hubspot", deals)
    assert mapper.map("1", {"createdAt": "2025-01-01T00:00:00Z"}).rows[0].people is None
    linked = mapper.map("1", {"createdAt": "2025-01-01T00:00:00Z", "_associations": {"contacts": ["5", "6"]}})
    assert linked.rows[0].people == [("hubspot:contacts:5", None, True), ("hubspot:contacts:6", None, False)]
    silent = mapper.map("1", {"createdAt": "2025-01-01T00:00:00Z", "_associations": {"contacts": []}})
    assert silent.rows[0].people == []


def test_email_refs_are_normalised() -> None:
    events = spec("""
object: email_events
entity: interaction
fields:
  kind: {value: marketing_email}
  occurred_at: {from: created, transform: datetime}
people:
  - {from: recipient, ref: email}
""")
    row = Mapper("hubspot", events).map("e1", {"created": 1706842000000, "recipient": "  DANA@Example.COM "}).rows[0]
    assert row.people == [("email:dana@example.com", None, True)]


def test_get_path_walks_lists_with_a_star() -> None:
    doc = {"associations": {"contacts": {"results": [{"id": "1"}, {"id": "2"}]}}}
    assert get_path(doc, "associations.contacts.results.*.id") == ["1", "2"]
    assert get_path(doc, "associations.deals.results.*.id") is not None


BAD_MAPPING = """object: contacts
entity: person
fields:
  kind: {value: contact}
  emial: properties.email
  phone: {from: properties.phone, transform: [strip, sparkle]}
"""


def test_mapping_files_fail_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "contacts.yaml"
    path.write_text(BAD_MAPPING)
    with pytest.raises(ConfigFileError) as error:
        load_yaml_model(path, MappingSpec)
    assert f"{path}:6: fields.phone.transform" in str(error.value) and "sparkle" in str(error.value)
    path.write_text(BAD_MAPPING.replace("[strip, sparkle]", "[strip]"))
    with pytest.raises(ConfigFileError) as error:
        load_yaml_model(path, MappingSpec)
    assert f"{path}:5: fields.emial: Value error, person has no field(s) 'emial'" in str(error.value)


def test_a_loaded_file_is_cached_until_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "contacts.yaml"
    path.write_text(BAD_MAPPING.replace("[strip, sparkle]", "[strip]").replace("emial", "email"))
    first = load_yaml_model(path, MappingSpec)
    assert load_yaml_model(path, MappingSpec) is first
    path.write_text(BAD_MAPPING.replace("[strip, sparkle]", "[strip, lower]").replace("emial", "email"))
    changed = load_yaml_model(path, MappingSpec)
    assert changed is not first and changed.fields["phone"].transform == ["strip", "lower"]


def test_every_packaged_mapping_is_valid() -> None:
    from journeyhub.config import check_all, mappings_root

    checked, problems = check_all(mappings_root())
    assert problems == [] and len(checked) >= 3


def test_collect_gathers_every_path_and_prefix_refs_can_name_another_crm() -> None:
    people = spec("""
object: contacts
entity: person
fields:
  email: properties.email
  xrefs:
    from: [properties.salesforcecontactid, properties.salesforceleadid]
    collect: true
    transform: {split: ";"}
    ref: {prefix: {"003": "salesforce:Contact", "00Q": "salesforce:Lead"}}
""")
    row = Mapper("hubspot", people).map("1", {"properties": {
        "email": "a@x.io", "salesforcecontactid": "003A;003B", "salesforceleadid": "00QZ"}}).rows[0]
    assert row.row["xrefs"] == ["salesforce:Contact:003A", "salesforce:Contact:003B", "salesforce:Lead:00QZ"]
    alone = Mapper("hubspot", people).map("2", {"properties": {"email": "b@x.io", "salesforceleadid": "00QY"}})
    assert alone.rows[0].row["xrefs"] == ["salesforce:Lead:00QY"]


@pytest.mark.parametrize("name", ["Ana\x00Maria", "Ana\udfffMaria", "Ana Maria"])
def test_clean_flag_matches_the_document_and_leaves_rows_as_they_were(name: str) -> None:
    """The loader's hash serialisation says whether a document needs cleaning; a clean one maps to the same
    rows without the per-value scan, a dirty one is never taken for clean."""
    from connectors.base import RemoteRecord
    from journeyhub.ingest.loader import payload_digest, payload_hash

    record = RemoteRecord("contacts", "1", {"properties": {"firstname": name, "email": "a@example.com"}})
    raw_hash, clean = payload_digest(record, record.document())
    assert raw_hash == payload_hash(record)
    assert clean is (name == "Ana Maria")
    mapper = Mapper("hubspot", CONTACTS)
    rows = mapper.map("1", record.document(), clean=clean).rows
    assert [row.row for row in rows] == [row.row for row in mapper.map("1", record.document()).rows]
    assert rows[0].row["first_name"] in ("AnaMaria", "Ana\ufffdMaria", "Ana Maria")
