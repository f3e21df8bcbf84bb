"""The org profiles (sandbox/common/org.py) seen through the vendors' client libraries: a `plain` org lacks the
hub's custom fields and the edition/integration fields, its metadata says so, and a request naming a field the
org does not have is answered the way each vendor documents — in both profiles, the same rules."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
import requests
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import (
    BatchReadInputSimplePublicObjectId,
    Filter,
    FilterGroup,
    PublicObjectSearchRequest,
    SimplePublicObjectId,
    SimplePublicObjectInput,
)
from hubspot.crm.properties import PropertyCreate, PropertyGroupCreate
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import SalesforceMalformedRequest
from typer.testing import CliRunner

from sandbox.runtime import Sandbox
from tests.sandbox.test_salesforce_emulator import local_session

ANCHOR = datetime(2026, 3, 15, tzinfo=UTC)
TOKEN = "sandbox-token"
EDITION_PROPERTIES = {"hs_feedback_last_nps_rating", "hs_feedback_last_survey_date", "salesforcecontactid",
                      "salesforceleadid"}
SF_CUSTOM = {"Task": {"Survey_Score__c", "Review_Rating__c", "External_Id__c"},
             "Contact": {"Journey_Stage__c", "Journey_Segment__c", "Journey_Stage_Entered_At__c",
                         "Last_Interaction_At__c", "Last_Interaction_Channel__c"}}
DV_CUSTOM = {"task": {"new_surveyscore", "new_externalid"},
             "contact": {"new_journeystage", "new_journeysegment", "new_lastinteractionchannel", "new_stageenteredon",
                         "new_lastinteractionon"}}


@pytest.fixture(scope="module")
def orgs() -> Iterator[dict[str, Sandbox]]:
    with Sandbox(people=150, seed=5, anchor=ANCHOR, org="full", limits=False) as full, \
            Sandbox(people=150, seed=5, anchor=ANCHOR, org="plain", limits=False) as plain:
        yield {"full": full, "plain": plain}


def hubspot(sandbox: Sandbox) -> HubSpot:
    url = sandbox.hubspot.url
    return HubSpot(access_token=TOKEN, host=url, base_url=url)


def salesforce(sandbox: Sandbox) -> Salesforce:
    url = sandbox.salesforce.url
    return Salesforce(instance_url=url, session_id=TOKEN, session=local_session(_Port(url)))


class _Port:
    """What `local_session` needs of a server: its port."""

    def __init__(self, url: str) -> None:
        self.port = int(url.rsplit(":", 1)[1])


def dataverse(sandbox: Sandbox) -> httpx.Client:
    return httpx.Client(base_url=f"{sandbox.dynamics.url}/api/data/v9.2/", timeout=30,
                        headers={"Authorization": f"Bearer {TOKEN}", "Accept": "application/json",
                                 "OData-MaxVersion": "4.0", "OData-Version": "4.0"})


def a_contact_id(sandbox: Sandbox) -> str:
    return next(key.split(":")[2] for person in sandbox.truth["persons"] for key in person["records"]
                if key.startswith("hubspot:contacts:"))


# ================================================================================================ HubSpot
def test_hubspot_plain_portal_has_no_edition_or_integration_properties(orgs: dict[str, Sandbox]) -> None:
    for org, sandbox in orgs.items():
        client = hubspot(sandbox)
        names = {p.name for p in client.crm.properties.core_api.get_all("contacts").results}
        groups = {g.name for g in client.crm.properties.groups_api.get_all("contacts").results}
        assert {"email", "firstname", "lifecyclestage", "hs_merged_object_ids"} <= names
        if org == "plain":
            assert not names & EDITION_PROPERTIES
            assert not groups & {"feedbackinformation", "salesforceinformation"}
            assert not any(p.name.startswith(("journey", "journeyhub")) for p in
                           client.crm.properties.core_api.get_all("contacts").results)
        else:
            assert names >= EDITION_PROPERTIES and "salesforceinformation" in groups


def test_hubspot_reads_leave_out_properties_the_portal_does_not_have(orgs: dict[str, Sandbox]) -> None:
    """HubSpot's objects API: "If any of the specified properties are not present on the requested object(s),
    they will be ignored" (list, read by id, batch read; the emulator does the same for a search's list)."""
    asked = ["email", "hs_feedback_last_nps_rating", "salesforcecontactid", "no_such_property"]
    for org, sandbox in orgs.items():
        contacts = hubspot(sandbox).crm.contacts
        contact_id = a_contact_id(sandbox)
        listed = contacts.basic_api.get_page(limit=5, properties=asked).results[0].properties
        one = contacts.basic_api.get_by_id(contact_id, properties=asked).properties
        batch = contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
            properties=asked, inputs=[SimplePublicObjectId(id=contact_id)])).results[0].properties
        found = contacts.search_api.do_search(PublicObjectSearchRequest(properties=asked, limit=3)).results[0]
        for properties in (listed, one, batch, found.properties):
            assert "email" in properties and "no_such_property" not in properties
            present = EDITION_PROPERTIES & set(properties)
            assert present == (set() if org == "plain" else {"hs_feedback_last_nps_rating", "salesforcecontactid"})


def test_hubspot_filter_or_sort_on_a_property_the_portal_lacks_is_refused(orgs: dict[str, Sandbox]) -> None:
    feedback = Filter(property_name="hs_feedback_last_nps_rating", operator="HAS_PROPERTY")
    for org, sandbox in orgs.items():
        search = hubspot(sandbox).crm.contacts.search_api
        request = PublicObjectSearchRequest(filter_groups=[FilterGroup(filters=[feedback])], limit=1)
        if org == "full":
            assert search.do_search(request).total > 0
            continue
        with pytest.raises(ContactsApiException) as refused:
            search.do_search(request)
        assert refused.value.status == 400
        body = json.loads(refused.value.body)
        assert body["category"] == "VALIDATION_ERROR" and "hs_feedback_last_nps_rating" in body["message"]
        with pytest.raises(ContactsApiException) as unsortable:
            search.do_search(PublicObjectSearchRequest(sorts=["salesforcecontactid"], limit=1))
        assert unsortable.value.status == 400


def test_hubspot_plain_portal_takes_the_hubs_own_properties(orgs: dict[str, Sandbox]) -> None:
    client = hubspot(orgs["plain"])
    contact_id = a_contact_id(orgs["plain"])
    with pytest.raises(ContactsApiException) as unknown:
        client.crm.contacts.basic_api.update(contact_id, SimplePublicObjectInput(properties={"journey_stage": "x"}))
    assert unknown.value.status == 400 and "PROPERTY_DOESNT_EXIST" in unknown.value.body
    client.crm.properties.groups_api.create("contacts", PropertyGroupCreate(name="journeyhub", label="Journey Hub"))
    client.crm.properties.core_api.create("contacts", PropertyCreate(
        name="journey_stage", label="Journey stage", type="string", field_type="text", group_name="journeyhub"))
    client.crm.contacts.basic_api.update(contact_id, SimplePublicObjectInput(properties={"journey_stage": "purchase"}))
    assert client.crm.contacts.basic_api.get_by_id(contact_id, properties=["journey_stage"]).properties[
        "journey_stage"] == "purchase"


# ================================================================================================ Salesforce
def test_salesforce_plain_describe_has_no_custom_fields(orgs: dict[str, Sandbox]) -> None:
    for org, sandbox in orgs.items():
        sf = salesforce(sandbox)
        for sobject, custom in SF_CUSTOM.items():
            fields = {f["name"]: f for f in getattr(sf, sobject).describe()["fields"]}
            assert (custom & set(fields)) == (set() if org == "plain" else custom)
            assert not any(f["custom"] for f in fields.values()) or org == "full"
        task_type = next(f for f in sf.Task.describe()["fields"] if f["name"] == "Type")
        task_types = {value["value"] for value in task_type["picklistValues"]}
        assert ({"Survey", "Referral", "Review"} <= task_types) == (org == "full")


NO_SUCH_COLUMN = re.compile(r"^\nSELECT Id, Survey_Score__c FROM Task\n {11}\^\nERROR at Row:1:Column:12\n"
                            r"No such column 'Survey_Score__c' on entity 'Task'\. If you are attempting to use a "
                            r"custom field, be sure to append the '__c' after the custom field name\. Please "
                            r"reference your WSDL or the describe call for the appropriate names\.$")


def test_salesforce_soql_naming_an_absent_field_fails_with_invalid_field(orgs: dict[str, Sandbox]) -> None:
    """Salesforce answers 400 `[{"message": "…ERROR at Row:1:Column:12\\nNo such column …", "errorCode":
    "INVALID_FIELD"}]` for query and queryAll; a Bulk API 2.0 job is refused at creation (INVALIDJOB)."""
    sf = salesforce(orgs["plain"])
    for run in (sf.query, lambda q: sf.query_all(q, include_deleted=True)):
        with pytest.raises(SalesforceMalformedRequest) as refused:
            run("SELECT Id, Survey_Score__c FROM Task")
        assert refused.value.status == 400
        [error] = refused.value.content
        assert error["errorCode"] == "INVALID_FIELD" and NO_SUCH_COLUMN.match(error["message"]), error
    with pytest.raises(SalesforceMalformedRequest) as in_where:
        sf.query("SELECT Id FROM Contact WHERE Journey_Stage__c = 'purchase'")
    assert in_where.value.content[0]["errorCode"] == "INVALID_FIELD"
    assert "No such column 'Journey_Stage__c' on entity 'Contact'" in in_where.value.content[0]["message"]
    job = requests.post(f"{orgs['plain'].salesforce.url}/services/data/v59.0/jobs/query",
                        headers={"Authorization": f"Bearer {TOKEN}"},
                        json={"operation": "queryAll", "query": "SELECT Id, Survey_Score__c FROM Task"})
    assert job.status_code == 400
    assert job.json()[0]["errorCode"] == "INVALIDJOB" and "INVALID_FIELD" in job.json()[0]["message"]
    assert "No such column 'Survey_Score__c'" in job.json()[0]["message"]
    full = salesforce(orgs["full"]).query("SELECT Id, Survey_Score__c FROM Task LIMIT 1")
    assert full["totalSize"] == 1 and "Survey_Score__c" in full["records"][0]


# ================================================================================================ Dataverse
def test_dataverse_plain_metadata_has_no_custom_columns(orgs: dict[str, Sandbox]) -> None:
    for org, sandbox in orgs.items():
        with dataverse(sandbox) as client:
            for logical, custom in DV_CUSTOM.items():
                listed = client.get(f"EntityDefinitions(LogicalName='{logical}')/Attributes",
                                    params={"$select": "LogicalName,IsCustomAttribute"}).json()["value"]
                names = {a["LogicalName"] for a in listed}
                assert (names & custom) == (set() if org == "plain" else custom)
                assert any(a["IsCustomAttribute"] for a in listed) == (org == "full")
            keys = client.get("EntityDefinitions(LogicalName='task')/Keys").json()["value"]
            assert [k["LogicalName"] for k in keys] == ([] if org == "plain" else ["new_externalid"])


def test_dataverse_select_or_filter_naming_an_absent_column_fails(orgs: dict[str, Sandbox]) -> None:
    """Microsoft's "Troubleshoot Dataverse Web API client errors": 400 `{"error": {"code": "0x0", "message":
    "Could not find a property named 'x' on type 'Microsoft.Dynamics.CRM.task'."}}` (the code is 0x0)."""
    expected = {"error": {"code": "0x0", "message": "Could not find a property named 'new_surveyscore' on type "
                                                    "'Microsoft.Dynamics.CRM.task'."}}
    with dataverse(orgs["plain"]) as client:
        for params in ({"$select": "subject,new_surveyscore"}, {"$filter": "new_surveyscore ge 9"},
                       {"$select": "subject", "$orderby": "new_surveyscore desc"}):
            refused = client.get("tasks", params=params)
            assert (refused.status_code, refused.json()) == (400, expected), params
        assert client.get("tasks", params={"$select": "subject,category", "$top": "1"}).status_code == 200
    with dataverse(orgs["full"]) as client:
        assert client.get("tasks", params={"$select": "subject,new_surveyscore", "$top": "1"}).status_code == 200


# ================================================================================================ driving it
def test_the_serve_child_process_and_the_cli_take_the_org(tmp_path: Path) -> None:
    with Sandbox(people=30, seed=2, anchor=ANCHOR, org="plain", process=True) as child:
        names = {p.name for p in hubspot(child).crm.properties.core_api.get_all("contacts").results}
        assert not names & EDITION_PROPERTIES
        with dataverse(child) as client:
            assert client.get("tasks", params={"$select": "new_surveyscore"}).status_code == 400
        assert (child.org, child.history) == ("plain", True)
    from cli.app import app

    result = CliRunner().invoke(app, ["sandbox", "generate", "--people", "30", "--seed", "2", "--anchor",
                                      "2026-03-15", "--org", "plain", "--no-history", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    truth = json.loads((tmp_path / "truth.json").read_text())
    assert (truth["org"], truth["history"]) == ("plain", False)
    refused = CliRunner().invoke(app, ["sandbox", "generate", "--org", "bare", "--out", str(tmp_path)])
    assert refused.exit_code != 0 and "unknown org profile 'bare'" in str(refused.exception)
