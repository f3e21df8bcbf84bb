"""The Dataverse emulator driven the way a connector drives Dataverse: plain httpx.

Query encoding via `params=`, nextLinks followed verbatim, change tracking with delta links, upserts with
If-Match / If-None-Match, @odata.bind, $batch with change sets, the token endpoint, throttling and faults.
The batch response is parsed back with the standard library's MIME parser, not the emulator's own code.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from email import message_from_bytes

import httpx
import pytest

from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.common.server import EmulatorServer
from sandbox.dynamics import DynamicsData, DynamicsEmulator

NS = uuid.UUID("5b0e8f2c-1d2a-4c3b-8e9f-0a1b2c3d4e5f")
BULK = 3000
ANNOTATIONS = 'odata.include-annotations="*"'


def gid(name: str) -> str:
    return str(uuid.uuid5(NS, name))


CONTOSO, FABRIKAM = gid("account/contoso"), gid("account/fabrikam")
DANA, ANN, OBRIEN = gid("contact/dana"), gid("contact/ann"), gid("contact/obrien")
LEAD = gid("lead/1")
OPP = gid("opportunity/1")
CASE = gid("incident/1")
SURVEY_TASK, PHONE, EMAIL, MEETING = gid("task/survey"), gid("phonecall/1"), gid("email/1"), gid("appointment/1")
NOTE = gid("annotation/1")
OWNER = gid("systemuser/owner")


def world() -> DynamicsData:
    base = {"createdon": "2024-01-05T09:00:00Z", "modifiedon": "2024-01-05T09:00:00Z"}
    rows: dict[str, list[dict]] = {
        "systemusers": [{"systemuserid": OWNER, "firstname": "Olive", "lastname": "Owner",
                         "internalemailaddress": "olive@contoso.example", **base}],
        "accounts": [
            {"accountid": CONTOSO, "name": "Contoso", "websiteurl": "https://contoso.example",
             "_ownerid_value": OWNER, "versionnumber": 5000, **base},
            {"accountid": FABRIKAM, "name": "Fabrikam", **base},
        ],
        "contacts": [
            {"contactid": DANA, "firstname": "Dana", "lastname": "Cohen", "emailaddress1": "dana.cohen@example.co.il",
             "_parentcustomerid_value": CONTOSO, "_ownerid_value": OWNER, "statecode": 0,
             "createdon": "2024-01-10T08:00:00Z", "modifiedon": "2024-02-01T10:00:00Z",
             "new_journeystage": "purchase"},
            {"contactid": ANN, "firstname": "Ann", "lastname": "Lee", "emailaddress1": "ann@example.com",
             "_parentcustomerid_value": DANA, "createdon": "2024-01-11T08:00:00Z",
             "modifiedon": "2024-02-03T10:00:00Z"},
            {"contactid": OBRIEN, "firstname": "Sean", "lastname": "O'Brien", "emailaddress1": "o'brien@x.io",
             "createdon": "2024-01-12T08:00:00Z", "modifiedon": "2023-12-31T23:59:59Z", "statecode": 1,
             "statuscode": 2},
        ],
        "leads": [{"leadid": LEAD, "firstname": "Lia", "lastname": "Levi", "emailaddress1": "lia@example.com",
                   "companyname": "Levi Ltd", "leadsourcecode": 8, **base}],
        "opportunities": [{"opportunityid": OPP, "name": "Big deal", "estimatedvalue": 12000.5,
                           "_customerid_value": CONTOSO, "_parentcontactid_value": DANA, **base}],
        "incidents": [{"incidentid": CASE, "title": "Broken", "ticketnumber": "CAS-01001-ABCDEF",
                       "prioritycode": 1, "caseorigincode": 2, "_customerid_value": DANA, **base}],
        "tasks": [{"activityid": SURVEY_TASK, "subject": "NPS survey", "category": "survey", "new_surveyscore": 9,
                   "new_externalid": "hub:o'brien-1", "_regardingobjectid_value": DANA, "statecode": 1,
                   "statuscode": 5, "actualend": "2024-02-02T12:00:00Z", **base}],
        "phonecalls": [{"activityid": PHONE, "subject": "Call", "directioncode": True,
                        "_regardingobjectid_value": DANA, **base}],
        "emails": [{"activityid": EMAIL, "subject": "Hello", "directioncode": False, "statuscode": 4,
                    "statecode": 1, "_regardingobjectid_value": LEAD, **base}],
        "appointments": [{"activityid": MEETING, "subject": "Demo", "scheduledstart": "2024-02-05T10:00:00Z",
                          "scheduledend": "2024-02-05T11:00:00Z", "_regardingobjectid_value": OPP, **base}],
        "annotations": [{"annotationid": NOTE, "subject": "Note", "notetext": "hi", "_objectid_value": DANA,
                         **base}],
    }
    rows["contacts"] += [
        {"contactid": gid(f"bulk/{i}"), "firstname": "Bulk", "lastname": f"Person {i:05d}",
         "emailaddress1": f"bulk{i}@example.com", "createdon": "2023-06-01T00:00:00Z",
         "modifiedon": f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z"}
        for i in range(BULK)
    ]
    return DynamicsData(rows=rows)


TOTAL_CONTACTS = BULK + 3


@pytest.fixture(scope="module")
def emulator() -> Iterator[DynamicsEmulator]:
    em = DynamicsEmulator(requests_per_5min=None)
    em.load(world())
    with EmulatorServer(em):
        yield em


def make_client(url: str, token: str = "sandbox-token") -> httpx.Client:
    return httpx.Client(base_url=f"{url}/api/data/v9.2/", timeout=30, headers={
        "Authorization": f"Bearer {token}", "Accept": "application/json", "OData-MaxVersion": "4.0",
        "OData-Version": "4.0", "If-None-Match": "null"})


@pytest.fixture(scope="module")
def client(emulator: DynamicsEmulator) -> Iterator[httpx.Client]:
    with make_client(emulator.base_url) as c:
        yield c


def follow(client: httpx.Client, url: str, prefer: str, params: dict | None = None) -> list[dict]:
    """All pages of a query, following @odata.nextLink verbatim with the same Prefer header."""
    pages = []
    response = client.get(url, params=params, headers={"Prefer": prefer})
    while True:
        assert response.status_code == 200, response.text
        pages.append(response.json())
        link = pages[-1].get("@odata.nextLink")
        if not link:
            return pages
        response = client.get(link, headers={"Prefer": prefer})


def error(response: httpx.Response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["message"]


# ------------------------------------------------------------------------------------------------ queries
def test_params_encoding_and_literal_urls_agree(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    params = {"$select": "fullname,emailaddress1", "$filter": "modifiedon gt 2024-02-01T00:00:00Z"}
    encoded = client.get("contacts", params=params)
    assert "%24select" in str(encoded.request.url) and "+gt+" in str(encoded.request.url)
    literal = client.get("contacts?$select=fullname,emailaddress1&$filter=modifiedon%20gt%202024-02-01T00:00:00Z")
    assert encoded.status_code == literal.status_code == 200
    assert encoded.json() == literal.json()
    body = encoded.json()
    assert body["@odata.context"] == f"{emulator.base_url}/api/data/v9.2/$metadata#contacts(fullname,emailaddress1)"
    assert [r["contactid"] for r in body["value"]] == sorted([DANA, ANN])
    dana = next(r for r in body["value"] if r["contactid"] == DANA)
    assert list(dana) == ["@odata.etag", "fullname", "emailaddress1", "contactid"]
    assert dana["fullname"] == "Dana Cohen"
    version = emulator.store.get("contacts", DANA)["versionnumber"]
    assert dana["@odata.etag"] == f'W/"{version}"'
    assert encoded.headers["OData-Version"] == "4.0"
    assert encoded.headers["Content-Type"].startswith("application/json; odata.metadata=minimal")


def test_full_rows_shape(client: httpx.Client) -> None:
    row = client.get(f"contacts({DANA})").json()
    assert row["@odata.context"].endswith("$metadata#contacts/$entity")
    assert row["_parentcustomerid_value"] == CONTOSO and row["_ownerid_value"] == OWNER
    assert row["statecode"] == 0 and row["statuscode"] == 1 and row["merged"] is False
    assert row["createdon"] == "2024-01-10T08:00:00Z" and row["new_journeystage"] == "purchase"
    assert "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname" not in row
    assert row["middlename"] is None and isinstance(row["versionnumber"], int)


def test_query_errors_match_dataverse(client: httpx.Client) -> None:
    assert error(client.get("contacts", params={"$select": "fullname,nmae"})) == (
        400, "0x0", "Could not find a property named 'nmae' on type 'Microsoft.Dynamics.CRM.contact'.")
    assert error(client.get("contacts", params={"$filter": "foo eq 1"}))[2] == (
        "Could not find a property named 'foo' on type 'Microsoft.Dynamics.CRM.contact'.")
    assert error(client.get("Account")) == (404, "0x8006088a", "Resource not found for the segment 'Account'.")
    assert error(client.get("Contacts", params={"$top": "1"}))[:2] == (404, "0x8006088a")
    status, _, message = error(client.get("contacts", params={"$skip": "10"}))
    assert status == 400 and "$skip" in message
    status, _, message = error(client.get("contacts", params={"$filter": "statecode eq 'x'"}))
    assert status == 400 and "incompatible types" in message
    status, _, message = error(client.get("contacts", params={"$filter": "lastname eqq 'x'"}))
    assert status == 400 and message.startswith("Syntax error at position")
    assert error(client.get("contacts", params={"$orderby": "nope desc"}))[0] == 400
    missing = gid("nobody")
    assert error(client.get(f"contacts({missing})")) == (
        404, "0x80040217", f"contact With Id = {missing} Does Not Exist")
    assert client.put("contacts", json={}).status_code == 405


def names(client: httpx.Client, flt: str, entity_set: str = "contacts", field: str = "fullname") -> list[str]:
    response = client.get(entity_set, params={"$select": field, "$filter": flt, "$orderby": f"{field} asc"})
    assert response.status_code == 200, response.text
    return [r[field] for r in response.json()["value"]]


def test_filter_language(client: httpx.Client) -> None:
    assert names(client, "lastname eq 'O''Brien'") == ["Sean O'Brien"]
    assert names(client, "emailaddress1 eq 'DANA.COHEN@EXAMPLE.CO.IL'") == ["Dana Cohen"]   # case-insensitive
    assert names(client, "contains(fullname,'BRIEN') or startswith(lastname,'coh')") == ["Dana Cohen",
                                                                                        "Sean O'Brien"]
    assert names(client, "endswith(emailaddress1,'.co.il')") == ["Dana Cohen"]
    assert names(client, f"_parentcustomerid_value eq {CONTOSO}") == ["Dana Cohen"]
    assert names(client, f"_parentcustomerid_value eq {DANA.upper()}") == ["Ann Lee"]
    assert names(client, "_parentcustomerid_value ne null and statecode eq 0") == ["Ann Lee", "Dana Cohen"]
    assert names(client, "modifiedon lt 2024-01-01 and not (firstname eq 'Bulk')") == ["Sean O'Brien"]
    assert names(client, "modifiedon ge 2024-02-03T10:00:00.000Z") == ["Ann Lee"]
    assert names(client, "modifiedon gt 2024-02-03T09:59:59.5Z") == ["Ann Lee"]
    assert names(client, "modifiedon ge 2024-02-03T12:00:00+02:00") == ["Ann Lee"]
    assert names(client, "(statecode eq 1 or merged eq true) and firstname ne 'Bulk'") == ["Sean O'Brien"]
    assert names(client, "estimatedvalue gt 12000 and estimatedvalue le 12000.5", "opportunities", "name") == [
        "Big deal"]
    assert names(client, f"activityid eq {SURVEY_TASK} and new_surveyscore ge 9", "tasks", "subject") == [
        "NPS survey"]


def test_orderby_top_and_count(client: httpx.Client) -> None:
    body = client.get("contacts", params={"$select": "lastname,modifiedon", "$orderby": "modifiedon desc,lastname",
                                          "$top": "3", "$count": "true"}).json()
    assert body["@odata.count"] == TOTAL_CONTACTS
    assert [r["lastname"] for r in body["value"]] == ["Lee", "Cohen", "O'Brien"]
    assert "@odata.nextLink" not in body


def test_paging_follows_next_links_verbatim(client: httpx.Client) -> None:
    pages = follow(client, "contacts", "odata.maxpagesize=1000", {"$select": "fullname", "$top": "5"})
    assert [len(p["value"]) for p in pages] == [1000, 1000, 1000, 3]         # $top ignored with maxpagesize
    ids = [r["contactid"] for p in pages for r in p["value"]]
    assert len(ids) == len(set(ids)) == TOTAL_CONTACTS
    link = pages[0]["@odata.nextLink"]
    assert link.startswith("http://127.0.0.1:") and "$skiptoken=%3Ccookie%20pagenumber=%222%22" in link
    response = client.get("contacts", params={"$select": "fullname"}, headers={"Prefer": "odata.maxpagesize=7"})
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=7"
    big = client.get("contacts", params={"$select": "fullname"}, headers={"Prefer": "odata.maxpagesize=9000"})
    assert big.headers["Preference-Applied"] == "odata.maxpagesize=5000"
    assert len(big.json()["value"]) == TOTAL_CONTACTS and "@odata.nextLink" not in big.json()


def test_paging_with_filter_and_descending_order(client: httpx.Client) -> None:
    params = {"$select": "modifiedon", "$filter": "firstname eq 'Bulk'", "$orderby": "modifiedon desc"}
    pages = follow(client, "contacts", "odata.maxpagesize=700", params)
    stamps = [r["modifiedon"] for p in pages for r in p["value"]]
    assert len(stamps) == BULK and stamps == sorted(stamps, reverse=True)
    assert len({r["contactid"] for p in pages for r in p["value"]}) == BULK


def test_annotations_only_when_asked(client: httpx.Client) -> None:
    plain = client.get(f"contacts({ANN})", params={"$select": "_parentcustomerid_value,statecode"}).json()
    assert set(plain) == {"@odata.context", "@odata.etag", "_parentcustomerid_value", "statecode", "contactid"}
    rich = client.get("contacts", params={"$select": "_parentcustomerid_value,statecode,createdon",
                                          "$filter": "firstname ne 'Bulk'"}, headers={"Prefer": ANNOTATIONS})
    assert rich.headers["Preference-Applied"] == ANNOTATIONS
    rows = {r["contactid"]: r for r in rich.json()["value"]}
    lookup = "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname"
    assert rows[DANA][lookup] == "account" and rows[ANN][lookup] == "contact"       # resolved by GUID
    assert rows[DANA]["_parentcustomerid_value@OData.Community.Display.V1.FormattedValue"] == "Contoso"
    assert rows[ANN]["_parentcustomerid_value@Microsoft.Dynamics.CRM.associatednavigationproperty"] == \
        "parentcustomerid_contact"
    assert rows[OBRIEN]["statecode@OData.Community.Display.V1.FormattedValue"] == "Inactive"
    assert rows[DANA]["createdon@OData.Community.Display.V1.FormattedValue"] == "1/10/2024 8:00 AM"
    assert lookup not in rows[OBRIEN]                                              # null lookup: no annotation
    keys = list(rows[DANA])
    assert keys.index(lookup) < keys.index("_parentcustomerid_value")
    only = client.get(f"tasks({SURVEY_TASK})", params={"$select": "_regardingobjectid_value,statuscode"},
                      headers={"Prefer": 'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"'})
    body = only.json()
    assert body["_regardingobjectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "contact"
    assert not any("FormattedValue" in k for k in body)


def test_alternate_key_reads(client: httpx.Client) -> None:
    response = client.get("tasks(new_externalid='hub:o''brien-1')", params={"$select": "subject"})
    assert response.status_code == 200 and response.json()["activityid"] == SURVEY_TASK
    assert error(client.get("tasks(new_externalid='nope')")) == (
        404, "0x80040217", "A record with the specified key values does not exist in task entity")
    assert error(client.get("contacts(emailaddress1='dana.cohen@example.co.il')")) == (
        400, "0x80060890", "The specified key attributes are not a defined key for the contact entity")
    assert client.get(f"contacts(contactid={DANA})").json()["contactid"] == DANA


def test_activitypointers_view(client: httpx.Client) -> None:
    body = client.get("activitypointers", params={"$select": "activitytypecode,subject",
                                                  "$filter": f"_regardingobjectid_value eq {DANA}"}).json()
    kinds = sorted((r["activitytypecode"], r["activityid"]) for r in body["value"])
    assert [k for k, _ in kinds] == ["phonecall", "task"]
    everything = client.get("activitypointers", params={"$select": "activitytypecode"}).json()["value"]
    assert {r["activitytypecode"] for r in everything} >= {"task", "phonecall", "email", "appointment"}
    assert client.post("activitypointers", json={"subject": "x"}).status_code == 405


# ------------------------------------------------------------------------------------------------- writes
def test_create_returns_entity_id_and_sets_server_columns(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    response = client.post("contacts", json={"firstname": "Noa", "lastname": "Bar", "createdon": "2001-01-01T00:00:00Z",
                                             "parentcustomerid_account@odata.bind": f"/accounts({FABRIKAM})"})
    assert response.status_code == 204 and response.content == b""
    entity_id = response.headers["OData-EntityId"]
    new_id = entity_id.rsplit("(", 1)[1].rstrip(")")
    assert entity_id == f"{emulator.base_url}/api/data/v9.2/contacts({new_id})" and new_id == new_id.lower()
    row = client.get(entity_id).json()
    assert row["fullname"] == "Noa Bar" and row["_parentcustomerid_value"] == FABRIKAM
    assert row["createdon"] != "2001-01-01T00:00:00Z" and row["createdon"] == row["modifiedon"]
    assert row["_ownerid_value"] == emulator.user_id and row["statecode"] == 0 and row["statuscode"] == 1
    assert row["versionnumber"] > 5000

    chosen = gid("client-chosen")
    created = client.post("contacts?$select=fullname", headers={"Prefer": "return=representation"},
                          json={"contactid": chosen, "lastname": "Chosen",
                                "overriddencreatedon": "2020-05-01T12:30:00+02:00"})
    assert created.status_code == 201 and created.headers["Preference-Applied"] == "return=representation"
    assert created.json()["contactid"] == chosen and set(created.json()) == {
        "@odata.context", "@odata.etag", "fullname", "contactid"}
    assert client.get(f"contacts({chosen})").json()["createdon"] == "2020-05-01T10:30:00Z"
    duplicate = client.post("contacts", json={"contactid": chosen, "lastname": "Again"})
    assert duplicate.status_code == 412
    never = gid("never-written")
    refused = client.post("contacts?$select=nope", headers={"Prefer": "return=representation"},
                          json={"contactid": never, "lastname": "Never"})
    assert refused.status_code == 400 and client.get(f"contacts({never})").status_code == 404


def test_patch_semantics(client: httpx.Client) -> None:
    target = gid("patch/target")
    assert client.patch(f"contacts({target})", json={"lastname": "Upserted"}).status_code == 204   # upsert!
    assert client.get(f"contacts({target})").json()["lastname"] == "Upserted"
    missing = gid("patch/missing")
    assert error(client.patch(f"contacts({missing})", json={"lastname": "x"}, headers={"If-Match": "*"}))[:2] == (
        404, "0x80040217")
    assert client.get(f"contacts({missing})").status_code == 404
    assert error(client.patch(f"contacts({target})", json={"lastname": "x"}, headers={"If-None-Match": "*"}))[0] == 412
    current = client.get(f"contacts({target})").json()["@odata.etag"]
    stale = client.patch(f"contacts({target})", json={"lastname": "Stale"}, headers={"If-Match": 'W/"1"'})
    assert error(stale) == (412, "0x80060882",
                            "The version of the existing record doesn't match the RowVersion property provided.")
    ok = client.patch(f"contacts({target})", json={"firstname": "Up"},
                      headers={"If-Match": current, "Prefer": "return=representation"})
    assert ok.status_code == 200 and ok.json()["fullname"] == "Up Upserted" and ok.json()["@odata.etag"] != current
    fresh = gid("patch/fresh")
    made = client.patch(f"contacts({fresh})", json={"lastname": "Fresh"}, headers={"Prefer": "return=representation",
                                                                                   "If-None-Match": "*"})
    assert made.status_code == 201 and made.json()["contactid"] == fresh
    assert error(client.patch(f"contacts({target})", json={"contactid": gid("other")}))[0] == 400
    assert client.patch(f"contacts({target})", json={"contactid": target, "jobtitle": "CTO"}).status_code == 204
    direct = client.patch(f"contacts({target})", json={"_parentcustomerid_value": CONTOSO})
    assert error(direct)[1] == "0x80048d19" and "Navigation properties" in error(direct)[2]
    unknown = client.patch(f"contacts({target})", json={"citty": "Lyon"})
    assert error(unknown)[1] == "0x80048d19" and "The property 'citty' does not exist" in error(unknown)[2]
    assert client.delete(f"contacts({target})").status_code == 204
    assert client.delete(f"contacts({target})").status_code == 404


def test_alternate_key_upsert(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    url = "tasks(new_externalid='hub:timeline:42')"
    first = client.patch(url, json={"subject": "Referral", "category": "referral",
                                    "regardingobjectid_contact_task@odata.bind": f"/contacts({DANA})"})
    assert first.status_code == 204
    task_id = first.headers["OData-EntityId"].rsplit("(", 1)[1].rstrip(")")
    second = client.patch(url, json={"subject": "Referral (edited)"}, headers={"Prefer": "return=representation"})
    assert second.status_code == 200 and second.json()["activityid"] == task_id
    assert second.json()["new_externalid"] == "hub:timeline:42" and second.json()["_regardingobjectid_value"] == DANA
    assert client.patch(url, json={"subject": "x"}, headers={"If-None-Match": "*"}).status_code == 412
    assert client.patch("tasks(new_externalid='hub:none')", json={"subject": "x"},
                        headers={"If-Match": "*"}).status_code == 404
    changed = client.patch(url, json={"new_externalid": "hub:other"})
    assert changed.status_code == 400
    clash = client.post("tasks", json={"subject": "dup", "new_externalid": "HUB:TIMELINE:42"})
    assert error(clash)[:2] == (412, "0x80060892")
    assert emulator.store.get("activitypointers", task_id)["activitytypecode"] == "task"


def test_odata_bind_navigation_properties(client: httpx.Client) -> None:
    note = gid("note/bound")
    assert client.patch(f"annotations({note})", json={
        "subject": "Synced", "notetext": "from HubSpot",
        "objectid_lead@odata.bind": f"leads({LEAD})"}).status_code == 204
    row = client.get(f"annotations({note})", headers={"Prefer": ANNOTATIONS}).json()
    assert row["_objectid_value"] == LEAD and row["objecttypecode"] == "lead"
    assert row["_objectid_value@Microsoft.Dynamics.CRM.lookuplogicalname"] == "lead"
    contact = client.post("contacts", headers={"Prefer": "return=representation"}, json={
        "lastname": "Child", "parentcustomerid_contact@odata.bind": f"/contacts({DANA})",
        "originatingleadid@odata.bind": f"{client.base_url}leads({LEAD})"}).json()
    assert contact["_parentcustomerid_value"] == DANA and contact["_originatingleadid_value"] == LEAD
    cleared = client.patch(f"contacts({contact['contactid']})", headers={"Prefer": "return=representation"},
                           json={"parentcustomerid_contact@odata.bind": None})
    assert cleared.json()["_parentcustomerid_value"] is None
    wrong_type = client.post("tasks", json={"regardingobjectid_contact_task@odata.bind": f"/accounts({CONTOSO})"})
    assert error(wrong_type)[:2] == (400, "0x80048d19")
    bad_nav = client.post("tasks", json={"regardingobjectid_contact@odata.bind": f"/contacts({DANA})"})
    assert error(bad_nav)[0] == 400 and "undeclared property" in error(bad_nav)[2]
    garbage = client.post("tasks", json={"regardingobjectid_contact_task@odata.bind": "not a url"})
    assert error(garbage)[0] == 400
    missing = client.post("tasks", json={"regardingobjectid_contact_task@odata.bind": f"/contacts({gid('x')})"})
    assert error(missing)[:2] == (404, "0x80040217")
    call = client.post("phonecalls", headers={"Prefer": "return=representation"}, json={
        "subject": "c", "regardingobjectid_contact_phonecall@odata.bind": f"/contacts({ANN})",
        "ownerid@odata.bind": f"/systemusers({OWNER})"}).json()
    assert call["_regardingobjectid_value"] == ANN and call["_ownerid_value"] == OWNER
    email = client.post("emails", headers={"Prefer": "return=representation"}, json={
        "subject": "e", "directioncode": True, "regardingobjectid_contact_email@odata.bind": f"/contacts({DANA})",
        "email_activity_parties": [
            {"participationtypemask": 1, "partyid_systemuser@odata.bind": f"/systemusers({OWNER})"},
            {"participationtypemask": 2, "partyid_contact@odata.bind": f"/contacts({DANA})"}]}).json()
    assert email["sender"] == "olive@contoso.example" and email["torecipients"] == "dana.cohen@example.co.il"
    meeting = client.post("appointments", json={"subject": "m", "regardingobjectid_contact_appointment@odata.bind":
                                                f"/contacts({DANA})"})
    assert meeting.status_code == 204
    for nav, target in (("objectid_account", f"/accounts({CONTOSO})"),
                        ("objectid_opportunity", f"/opportunities({OPP})"),
                        ("objectid_incident", f"/incidents({CASE})"), ("objectid_contact", f"/contacts({DANA})")):
        assert client.post("annotations", json={"subject": nav, f"{nav}@odata.bind": target}).status_code == 204
    for nav, target in (("customerid_account", f"/accounts({CONTOSO})"), ("customerid_contact", f"/contacts({ANN})")):
        response = client.post("opportunities", headers={"Prefer": "return=representation"},
                               json={"name": nav, f"{nav}@odata.bind": target})
        assert response.json()["_customerid_value"] == target.split("(")[1][:-1]
    lead = client.post("leads", headers={"Prefer": "return=representation"},
                       json={"lastname": "L", "parentcontactid@odata.bind": f"/contacts({DANA})"}).json()
    assert lead["_parentcontactid_value"] == DANA


def test_validation_and_state_pairing(client: httpx.Client) -> None:
    too_long = client.post("tasks", json={"subject": "x" * 201})
    assert error(too_long) == (400, "0x80044331", "A validation error occurred.  The length of the 'subject' "
                               "attribute of the 'task' entity exceeded the maximum allowed length of '200'.")
    assert error(client.post("tasks", json={"subject": "s", "new_surveyscore": 11}))[:2] == (400, "0x80044331")
    assert error(client.post("incidents", json={"title": "t", "prioritycode": 99}))[0] == 400
    assert error(client.post("contacts", json={"lastname": 5}))[:2] == (400, "0x80048d19")
    assert error(client.post("contacts", json={"new_stageenteredon": "yesterday"}))[0] == 400
    done = client.post("tasks", headers={"Prefer": "return=representation"},
                       json={"subject": "done", "statecode": 1}).json()
    assert (done["statecode"], done["statuscode"]) == (1, 5)                 # default status of the state
    bad = client.patch(f"tasks({done['activityid']})", json={"statuscode": 2})
    assert error(bad)[0] == 400 and "is not a valid status code for state code TaskState.Completed" in error(bad)[2]
    reopened = client.patch(f"tasks({done['activityid']})", json={"statecode": 0, "statuscode": 3},
                            headers={"Prefer": "return=representation"}).json()
    assert (reopened["statecode"], reopened["statuscode"]) == (0, 3)
    stamped = client.patch(f"contacts({ANN})", headers={"Prefer": "return=representation"},
                           json={"new_stageenteredon": "2024-03-01T12:00:00.123+01:00", "new_journeystage": "loyal"})
    assert stamped.json()["new_stageenteredon"] == "2024-03-01T11:00:00Z"


def test_single_property_endpoints(client: httpx.Client) -> None:
    target = client.post("contacts", headers={"Prefer": "return=representation"}, json={"lastname": "Prop"}).json()
    url = f"contacts({target['contactid']})/firstname"
    assert client.put(url, json={"value": "Pia"}).status_code == 204
    assert client.get(url).json()["value"] == "Pia"
    assert client.delete(url).status_code == 204
    assert client.get(f"contacts({target['contactid']})").json()["firstname"] is None


# -------------------------------------------------------------------------------------------- change tracking
def delta_read(client: httpx.Client, url: str, prefer: str = "odata.maxpagesize=1000") -> tuple[list[dict], str]:
    pages = follow(client, url, prefer)
    rows = [r for p in pages for r in p["value"]]
    return rows, pages[-1]["@odata.deltaLink"]


def test_change_tracking_round_trip(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    pages = follow(client, "contacts", "odata.track-changes,odata.maxpagesize=1000", {"$select": "fullname"})
    first = client.get("contacts", params={"$select": "fullname"},
                       headers={"Prefer": "odata.track-changes,odata.maxpagesize=1000"})
    assert first.headers["Preference-Applied"] == "odata.maxpagesize=1000,odata.track-changes"
    assert all("@odata.deltaLink" not in p for p in pages[:-1]) and "@odata.nextLink" not in pages[-1]
    initial = [r for p in pages for r in p["value"]]
    assert len(initial) == len({r["contactid"] for r in initial}) == len(emulator.store.tables["contacts"].rows)
    delta_link = pages[-1]["@odata.deltaLink"]
    assert delta_link.startswith(f"{emulator.base_url}/api/data/v9.2/contacts?$select=fullname&$deltatoken=")
    assert "%21" in delta_link

    created = client.post("contacts", json={"firstname": "Delta", "lastname": "New"}).headers["OData-EntityId"]
    new_id = created.rsplit("(", 1)[1].rstrip(")")
    assert client.patch(f"contacts({ANN})", json={"jobtitle": "Changed"}).status_code == 204
    assert client.delete(f"contacts({OBRIEN})").status_code == 204
    ghost = client.post("contacts", json={"lastname": "Ghost"}).headers["OData-EntityId"].rsplit("(", 1)[1][:-1]
    assert client.delete(f"contacts({ghost})").status_code == 204

    response = client.get(delta_link)
    body = response.json()
    assert body["@odata.context"].endswith("$metadata#contacts(fullname)/$delta")
    changed = [r for r in body["value"] if "contactid" in r]
    removed = [r for r in body["value"] if "reason" in r]
    assert [r["contactid"] for r in changed] == [new_id, ANN]                    # by version
    assert body["value"].index(removed[0]) > body["value"].index(changed[-1])   # deletes last
    assert {r["id"] for r in removed} == {OBRIEN, ghost}                         # created+deleted still shows
    assert removed[0] == {"@odata.context": f"{emulator.base_url}/api/data/v9.2/$metadata#contacts/$deletedEntity",
                          "id": OBRIEN, "reason": "deleted"}
    again = client.get(body["@odata.deltaLink"]).json()
    assert again["value"] == [] and again["@odata.deltaLink"]
    count = client.get(f"contacts/$count?$deltatoken={delta_link.split('$deltatoken=')[1]}")
    assert count.text == "4"


def test_delta_pages_under_maxpagesize(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    rows, link = delta_read(client, "accounts?$select=name", "odata.track-changes,odata.maxpagesize=1000")
    assert {r["accountid"] for r in rows} >= {CONTOSO, FABRIKAM}
    made = [client.post("accounts", json={"name": f"A{i}"}).headers["OData-EntityId"] for i in range(5)]
    doomed = [m.rsplit("(", 1)[1][:-1] for m in made[:2]]
    for pk in doomed:
        client.delete(f"accounts({pk})")
    pages = follow(client, link, "odata.maxpagesize=2")
    entries = [r for p in pages for r in p["value"]]
    assert [len(p["value"]) for p in pages] == [2, 2, 1]
    assert "@odata.deltaLink" in pages[-1] and "@odata.nextLink" not in pages[-1]
    assert [r["name"] for r in entries if "name" in r] == ["A2", "A3", "A4"]
    assert sorted(r["id"] for r in entries if "id" in r) == sorted(doomed)


def test_change_tracking_rejections(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    for option, value in (("$filter", "statecode eq 0"), ("$orderby", "fullname"), ("$top", "5"),
                          ("$expand", "parentcustomerid_account")):
        response = client.get("contacts", params={option: value}, headers={"Prefer": "odata.track-changes"})
        assert error(response)[0] == 400
        assert error(response)[2] == f'The "{option}" query parameter isn\'t supported when Change Tracking is enabled.'
    untracked = client.get("systemusers", headers={"Prefer": "odata.track-changes"})
    assert error(untracked)[:2] == (400, "0x80072491")
    _, link = delta_read(client, "leads", "odata.track-changes")
    garbage = client.get("leads?$deltatoken=banana")
    assert error(garbage) == (400, "0x80044352",
                              "Version stamp associated with the client has expired. Please perform a full sync.")
    emulator.expire_change_tracking("leads")
    assert error(client.get(link))[:2] == (400, "0x80044352")
    _, fresh = delta_read(client, "leads", "odata.track-changes")
    assert client.get(fresh).status_code == 200
    old_clock = emulator.clock
    try:
        emulator.clock = lambda: old_clock() + __import__("datetime").timedelta(days=8)
        assert error(client.get(fresh))[:2] == (400, "0x80044352")
    finally:
        emulator.clock = old_clock


# ----------------------------------------------------------------------------------------------- $batch
def batch_request(boundary: str, parts: list) -> bytes:
    """A $batch body as a connector writes it: CRLF lines, application/http parts, optional change sets."""
    out: list[str] = []
    for part in parts:
        out.append(f"--{boundary}")
        if isinstance(part, tuple) and part[0] == "changeset":
            inner = f"changeset_{uuid.uuid4().hex}"
            out += [f"Content-Type: multipart/mixed; boundary={inner}", ""]
            for index, (method, url, body) in enumerate(part[1], 1):
                out += [f"--{inner}", "Content-Type: application/http", "Content-Transfer-Encoding: binary",
                        f"Content-ID: {index}", "", f"{method} {url} HTTP/1.1",
                        "Content-Type: application/json; type=entry", "", body or ""]
            out.append(f"--{inner}--")
        else:
            method, url, body = part
            out += ["Content-Type: application/http", "Content-Transfer-Encoding: binary", "",
                    f"{method} {url} HTTP/1.1", *(["Content-Type: application/json", ""] if body else [""]),
                    body or ""]
    out.append(f"--{boundary}--")
    return "\r\n".join(out).encode() + b"\r\n"


def batch_responses(response: httpx.Response) -> list:
    """Parse a batch response with the stdlib MIME parser: [(status, headers, body) | [changeset items]]."""
    assert b"\r\n" in response.content and b"\n\n" not in response.content.replace(b"\r\n", b"")
    message = message_from_bytes(b"Content-Type: " + response.headers["Content-Type"].encode() + b"\r\n\r\n"
                                 + response.content)
    assert message.is_multipart()

    def http(part) -> tuple[int, dict, str]:
        assert part.get_content_type() == "application/http"
        assert part["Content-Transfer-Encoding"] == "binary"
        raw = part.get_payload()
        head, _, body = raw.replace("\r\n", "\n").partition("\n\n")
        status_line, *header_lines = head.split("\n")
        assert status_line.startswith("HTTP/1.1 ")
        headers = dict(line.split(": ", 1) for line in header_lines)
        if part["Content-ID"]:
            headers["Content-ID"] = part["Content-ID"]
        return int(status_line.split()[1]), headers, body.strip()

    items: list = []
    for part in message.get_payload():
        if part.is_multipart():
            assert part.get_boundary().startswith("changesetresponse_")
            items.append([http(p) for p in part.get_payload()])
        else:
            items.append(http(part))
    return items


def post_batch(client: httpx.Client, body: bytes, boundary: str, prefer: str | None = None) -> httpx.Response:
    headers = {"Content-Type": f'multipart/mixed; boundary="{boundary}"'}
    if prefer:
        headers["Prefer"] = prefer
    return client.post("$batch", content=body, headers=headers)


def test_batch_change_set_with_references(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    emulator.requests.reset()
    boundary = f"batch_{uuid.uuid4().hex}"
    body = batch_request(boundary, [
        ("changeset", [
            ("POST", "/api/data/v9.2/contacts", '{"firstname":"Batch","lastname":"Person"}'),
            ("POST", f"{emulator.base_url}/api/data/v9.2/tasks",
             '{"subject":"From batch","regardingobjectid_contact_task@odata.bind":"$1"}'),
            ("PATCH", "$1", '{"jobtitle":"Batched"}'),
        ]),
        ("GET", "/api/data/v9.2/contacts?$select=jobtitle&$filter=lastname%20eq%20'Person'", None),
    ])
    response = post_batch(client, body, boundary)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("multipart/mixed; boundary=batchresponse_")
    changeset, query = batch_responses(response)
    assert [status for status, _, _ in changeset] == [204, 204, 204]
    assert [h["Content-ID"] for _, h, _ in changeset] == ["1", "2", "3"]
    contact_url = changeset[0][1]["OData-EntityId"]
    task_url = changeset[1][1]["OData-EntityId"]
    assert query[0] == 200 and query[1]["Content-Type"].startswith("application/json")
    assert [r["jobtitle"] for r in httpx.Response(200, content=query[2]).json()["value"]] == ["Batched"]
    task = client.get(task_url).json()
    assert task["_regardingobjectid_value"] == contact_url.rsplit("(", 1)[1][:-1]
    counts = emulator.requests.snapshot(with_log=False)["counts"]
    assert counts["POST /api/data/v9.2/$batch"] == 1
    assert counts["$batch:POST /api/data/v9.2/contacts"] == 1
    assert counts["$batch:POST /api/data/v9.2/tasks"] == 1
    assert counts["$batch:GET /api/data/v9.2/contacts"] == 1


def test_batch_change_set_is_atomic(client: httpx.Client) -> None:
    boundary = "batch_atomic"
    body = batch_request(boundary, [
        ("changeset", [
            ("POST", "/api/data/v9.2/contacts", '{"lastname":"RolledBack"}'),
            ("POST", "/api/data/v9.2/tasks", '{"subject":"' + "x" * 300 + '"}'),
        ]),
        ("POST", "/api/data/v9.2/contacts", '{"lastname":"AfterFailure"}'),
    ])
    response = post_batch(client, body, boundary)
    assert response.status_code == 400                               # stops at the first failure
    (failed,) = batch_responses(response)
    assert failed[0] == 400 and httpx.Response(400, content=failed[2]).json()["error"]["code"] == "0x80044331"
    assert client.get("contacts", params={"$filter": "lastname eq 'RolledBack' or lastname eq 'AfterFailure'"}
                      ).json()["value"] == []

    response = post_batch(client, body, boundary, prefer="odata.continue-on-error")
    assert response.status_code == 200 and response.headers["Preference-Applied"] == "odata.continue-on-error"
    failed, after = batch_responses(response)
    assert failed[0] == 400 and after[0] == 204
    survivors = client.get("contacts", params={"$select": "lastname",
                                               "$filter": "lastname eq 'RolledBack' or lastname eq 'AfterFailure'"})
    assert [r["lastname"] for r in survivors.json()["value"]] == ["AfterFailure"]


def test_batch_independent_requests_and_limits(client: httpx.Client) -> None:
    boundary = "batch_plain"
    body = batch_request(boundary, [
        ("GET", "/api/data/v9.2/WhoAmI", None),
        ("GET", f"/api/data/v9.2/contacts({gid('nobody')})", None),
        ("GET", "accounts?$select=name&$top=1", None),
    ])
    response = post_batch(client, body, boundary, prefer="odata.continue-on-error")
    statuses = [item[0] for item in batch_responses(response)]
    assert statuses == [200, 404, 200]
    stopped = post_batch(client, body, boundary)
    assert stopped.status_code == 404 and [i[0] for i in batch_responses(stopped)] == [200, 404]
    get_in_changeset = batch_request(boundary, [("changeset", [("GET", "/api/data/v9.2/contacts", None)])])
    assert post_batch(client, get_in_changeset, boundary).status_code == 400
    too_many = batch_request(boundary, [("GET", "WhoAmI", None)] * 1001)
    assert post_batch(client, too_many, boundary).status_code == 400
    assert client.post("$batch", content=b"x", headers={"Content-Type": "application/json"}).status_code == 400


# --------------------------------------------------------------------------------------------- metadata
def attribute_types(client: httpx.Client, logical: str) -> dict[str, str]:
    response = client.get(f"EntityDefinitions(LogicalName='{logical}')/Attributes",
                          params={"$select": "LogicalName,AttributeType"})
    assert response.status_code == 200, response.text
    return {a["LogicalName"]: a["AttributeType"] for a in response.json()["value"]}


def test_metadata_lists_custom_columns_keys_and_tracking(client: httpx.Client) -> None:
    contact = attribute_types(client, "contact")
    assert {k: contact[k] for k in ("new_journeystage", "new_journeysegment", "new_lastinteractionchannel",
                                    "new_stageenteredon", "new_lastinteractionon")} == {
        "new_journeystage": "String", "new_journeysegment": "String", "new_lastinteractionchannel": "String",
        "new_stageenteredon": "DateTime", "new_lastinteractionon": "DateTime"}
    assert contact["parentcustomerid"] == "Customer" and contact["statecode"] == "State"
    assert "new_journeystage" in attribute_types(client, "lead")
    task = attribute_types(client, "task")
    assert task["new_externalid"] == "String" and task["new_surveyscore"] == "Integer"
    keys = client.get("EntityDefinitions(LogicalName='task')/Keys").json()["value"]
    assert [(k["LogicalName"], k["KeyAttributes"]) for k in keys] == [("new_externalid", ["new_externalid"])]
    assert client.get("EntityDefinitions(LogicalName='contact')/Keys").json()["value"] == []
    tracked = client.get("EntityDefinitions", params={"$filter": "ChangeTrackingEnabled eq true",
                                                      "$select": "LogicalName,EntitySetName"}).json()["value"]
    sets = {t["EntitySetName"] for t in tracked}
    assert {"contacts", "leads", "accounts", "opportunities", "incidents", "tasks", "annotations"} <= sets
    assert "systemusers" not in sets
    assert all(set(t) == {"LogicalName", "EntitySetName", "MetadataId"} for t in tracked)
    custom = client.get("EntityDefinitions(LogicalName='contact')/Attributes",
                        params={"$filter": "IsCustomAttribute eq true", "$select": "LogicalName"}).json()["value"]
    assert {a["LogicalName"] for a in custom} == {"new_journeystage", "new_journeysegment",
                                                  "new_lastinteractionchannel", "new_stageenteredon",
                                                  "new_lastinteractionon"}


def test_without_custom_columns() -> None:
    em = DynamicsEmulator(custom_columns=False)
    with EmulatorServer(em) as server, make_client(server.url) as c:
        contact = attribute_types(c, "contact")
        assert "new_journeystage" not in contact and "emailaddress1" in contact
        assert "new_externalid" not in attribute_types(c, "task")
        assert c.get("EntityDefinitions(LogicalName='task')/Keys").json()["value"] == []
        refused = c.post("contacts", json={"lastname": "x", "new_journeystage": "purchase"})
        assert error(refused)[:2] == (400, "0x80048d19")
        assert error(c.get("contacts", params={"$select": "new_journeystage"}))[0] == 400


def test_whoami_is_the_application_user(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    body = client.get("WhoAmI").json()
    assert body["UserId"] == emulator.user_id and body["OrganizationId"] and body["BusinessUnitId"]
    assert client.get("WhoAmI()").json()["UserId"] == emulator.user_id
    user = client.get(f"systemusers({emulator.user_id})").json()
    assert user["accessmode"] == 4 and user["applicationid"]


# ------------------------------------------------------------------------------------- auth and throttling
def test_token_endpoint_and_token_expiry() -> None:
    em = DynamicsEmulator(FaultConfig(token_ttl_requests=3), tenant_id="t-1", client_id="app", client_secret="s3cret")
    with EmulatorServer(em) as server, httpx.Client(base_url=server.url) as raw:
        form = {"grant_type": "client_credentials", "client_id": "app", "client_secret": "s3cret",
                "scope": "https://org.crm.dynamics.com/.default"}
        issued = raw.post("/t-1/oauth2/v2.0/token", data=form)
        assert issued.status_code == 200
        token = issued.json()
        assert token["token_type"] == "Bearer" and token["expires_in"] == 3599 and token["ext_expires_in"] == 3599
        bad = raw.post("/t-1/oauth2/v2.0/token", data={**form, "client_secret": "nope"})
        assert bad.status_code == 401 and bad.json()["error"] == "invalid_client"
        assert bad.json()["error_codes"] == [7000215] and "AADSTS7000215" in bad.json()["error_description"]
        assert raw.post("/t-1/oauth2/v2.0/token", data={**form, "scope": "https://x"}).json()["error"] == \
            "invalid_scope"
        assert raw.post("/other/oauth2/v2.0/token", data=form).status_code == 400

        with make_client(server.url, token["access_token"]) as c:
            assert [c.get("WhoAmI").status_code for _ in range(3)] == [200, 200, 200]
            expired = c.get("WhoAmI")
            assert expired.status_code == 401 and expired.headers["WWW-Authenticate"].startswith("Bearer ")
            assert "authorization_uri=" in expired.headers["WWW-Authenticate"]
        fresh = raw.post("/t-1/oauth2/v2.0/token", data=form).json()["access_token"]
        with make_client(server.url, fresh) as c:
            assert c.get("WhoAmI").status_code == 200
        with make_client(server.url, "forged") as c:
            assert c.get("WhoAmI").status_code == 401


def test_injected_429_and_5xx_carry_retry_after() -> None:
    faults = FaultConfig(rules=[FaultRule(kind="rate_limit", path="/contacts", retry_after=2.2),
                                FaultRule(kind="error", path="/accounts", status=503, retry_after=3)])
    em = DynamicsEmulator(faults)
    with EmulatorServer(em) as server, make_client(server.url) as c:
        throttled = c.get("contacts")
        assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
        assert throttled.json()["error"]["code"] == "0x80072322"
        assert c.get("contacts").status_code == 200
        unavailable = c.get("accounts")
        assert unavailable.status_code == 503 and unavailable.headers["Retry-After"] == "3"
        assert unavailable.json()["error"]["code"].startswith("0x")
        assert c.get("accounts").status_code == 200


def test_service_protection_limit() -> None:
    em = DynamicsEmulator(requests_per_5min=5)
    with EmulatorServer(em) as server, make_client(server.url) as c:
        remaining = [int(c.get("WhoAmI").headers["x-ms-ratelimit-burst-remaining-xrm-requests"]) for _ in range(2)]
        assert remaining == [4, 3]
        boundary = "batch_sp"
        body = batch_request(boundary, [("GET", "WhoAmI", None), ("GET", "WhoAmI", None)])
        batch = post_batch(c, body, boundary, prefer="odata.continue-on-error")     # 1 + 2 inner requests
        assert [i[0] for i in batch_responses(batch)] == [200, 200]
        limited = c.get("WhoAmI")
        assert limited.status_code == 429
        assert error(limited) == (429, "0x80072322",
                                  "Number of requests exceeded the limit of 5 over time window of 300 seconds.")
        assert 0 < int(limited.headers["Retry-After"]) <= 300
        em.reset_service_protection()
        assert c.get("WhoAmI").status_code == 200


# ---------------------------------------------------------------------------------------- merges and faults
def small_world(count: int) -> DynamicsData:
    return DynamicsData(rows={"contacts": [
        {"contactid": gid(f"small/{i}"), "lastname": f"S{i:03d}", "emailaddress1": f"s{i % (count - 1)}@x.io",
         "createdon": "2024-01-01T00:00:00Z", "modifiedon": f"2024-01-{1 + i % 28:02d}T00:00:00Z"}
        for i in range(count)]})


def test_merge_contacts(client: httpx.Client, emulator: DynamicsEmulator) -> None:
    _, link = delta_read(client, "contacts?$select=merged,_masterid_value,statecode", "odata.track-changes")
    master = client.post("contacts", headers={"Prefer": "return=representation"}, json={"lastname": "Master"}).json()
    loser = client.post("contacts", headers={"Prefer": "return=representation"}, json={"lastname": "Loser"}).json()
    child = client.post("tasks", headers={"Prefer": "return=representation"}, json={
        "subject": "t", "regardingobjectid_contact_task@odata.bind": f"/contacts({loser['contactid']})"}).json()
    _, link = delta_read(client, link, "odata.maxpagesize=5000")
    emulator.merge_contacts(master["contactid"], loser["contactid"])
    merged = client.get(f"contacts({loser['contactid']})").json()
    assert merged["merged"] is True and merged["_masterid_value"] == master["contactid"]
    assert (merged["statecode"], merged["statuscode"]) == (1, 2) and merged["versionnumber"] > loser["versionnumber"]
    assert client.get(f"tasks({child['activityid']})").json()["_regardingobjectid_value"] == master["contactid"]
    rows, _ = delta_read(client, link, "odata.maxpagesize=5000")
    assert {r["contactid"] for r in rows} == {master["contactid"], loser["contactid"]}
    via_api = client.post("Merge", json={
        "Target": {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": master["contactid"]},
        "Subordinate": {"@odata.type": "Microsoft.Dynamics.CRM.contact", "contactid": ANN},
        "PerformParentingChecks": False})
    assert via_api.status_code == 204 and client.get(f"contacts({ANN})").json()["merged"] is True


def test_mutate_during_paging() -> None:
    em = DynamicsEmulator(FaultConfig(vendor={"mutate_during_paging": True}))
    em.load(small_world(30))
    with EmulatorServer(em) as server, make_client(server.url) as c:
        pages = follow(c, "contacts", "odata.maxpagesize=10", {"$select": "modifiedon", "$orderby": "modifiedon asc"})
        ids = [r["contactid"] for p in pages for r in p["value"]]
        assert set(ids) == {gid(f"small/{i}") for i in range(30)}                # nothing lost
        assert len(ids) == len(set(ids)) + 1                                     # the returned row comes again
        assert len(em.mutations) == 2
        again = follow(c, "contacts", "odata.maxpagesize=10", {"$select": "modifiedon"})
        assert len(em.mutations) == 4 and sum(len(p["value"]) for p in again) == 30  # key order: nothing moves


def test_merge_during_sync() -> None:
    em = DynamicsEmulator(FaultConfig(vendor={"merge_during_sync": 1}))
    em.load(small_world(30))
    with EmulatorServer(em) as server, make_client(server.url) as c:
        pages = follow(c, "contacts", "odata.track-changes,odata.maxpagesize=10", {"$select": "lastname"})
        assert len(em.merges) == 1
        _, master, loser = em.merges[0]
        assert em.store.get("contacts", loser)["emailaddress1"] == em.store.get("contacts", master)["emailaddress1"]
        rows, _ = delta_read(c, pages[-1]["@odata.deltaLink"])
        assert loser in {r["contactid"] for r in rows}     # changed after the snapshot: shows in the next delta
        assert c.get(f"contacts({loser})").json()["_masterid_value"] == master


def test_dump_writes_and_load_contract(emulator: DynamicsEmulator) -> None:
    dump = emulator.dump_writes()
    assert any(r.get("lastname") == "Upserted" and r["@removed"] == {"reason": "deleted"}
               for r in dump["contacts"] if "@removed" in r)
    assert any(r.get("new_externalid") == "hub:timeline:42" for r in dump["tasks"])
    assert all(r["contactid"] != DANA for r in dump["contacts"])                  # seeded, never written
    with pytest.raises(ValueError, match="unknown column"):
        DynamicsEmulator().load(DynamicsData(rows={"contacts": [{"contactid": gid("x"), "parentcustomerid": CONTOSO}]}))
    with pytest.raises(ValueError, match="unknown entity set"):
        DynamicsEmulator().load(DynamicsData(rows={"Contacts": []}))


def test_large_page_is_fast(client: httpx.Client) -> None:
    started = time.perf_counter()
    body = client.get("contacts", headers={"Prefer": "odata.maxpagesize=5000"}).json()
    assert len(body["value"]) >= TOTAL_CONTACTS - 5
    assert time.perf_counter() - started < 2.0


def test_orderby_including_the_primary_key_pages(client: httpx.Client) -> None:
    params = {"$select": "modifiedon", "$filter": "firstname eq 'Bulk'", "$orderby": "modifiedon asc,contactid asc"}
    pages = follow(client, "contacts", "odata.maxpagesize=1000", params)
    rows = [r for p in pages for r in p["value"]]
    assert len(rows) == len({r["contactid"] for r in rows}) == BULK
    assert [(r["modifiedon"], r["contactid"]) for r in rows] == sorted((r["modifiedon"], r["contactid"]) for r in rows)
    assert client.get("contacts/", params={"$top": "1"}).status_code == 200
