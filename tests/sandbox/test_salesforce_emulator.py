"""The Salesforce emulator driven by the real simple-salesforce 1.12.10 (plus raw HTTP where the library
has no helper), through a transport adapter that sends its hard-coded https:// URLs to the emulator."""

from __future__ import annotations

import base64
import csv
import io
import json
import re
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import quote, urlsplit, urlunsplit

import pytest
import requests
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)

from sandbox.common.emulator import Emulator
from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.common.server import EmulatorServer
from sandbox.salesforce import SalesforceData, SalesforceEmulator
from sandbox.salesforce.ids import checksum, make_id, to18

SF_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000")
GENERATED = 4500


class ToLocal(HTTPAdapter):
    """Rewrites every https:// URL simple-salesforce builds to the emulator's http://127.0.0.1:PORT."""

    def __init__(self, netloc: str, **kw: object) -> None:
        self.netloc = netloc
        super().__init__(**kw)

    def send(self, request, **kw):  # type: ignore[no-untyped-def,override]
        parts = urlsplit(request.url)
        request.url = urlunsplit(("http", self.netloc, parts.path, parts.query, parts.fragment))
        return super().send(request, **kw)


def local_session(server: EmulatorServer) -> requests.Session:
    session = requests.Session()
    session.mount("https://", ToLocal(f"127.0.0.1:{server.port}"))
    return session


def direct_client(server: EmulatorServer, token: str = Emulator.default_token) -> Salesforce:
    return Salesforce(instance_url=server.url, session_id=token, session=local_session(server))


def sf_id(prefix: str, number: int) -> str:
    return make_id(prefix, number, pod="5g")


# ---------------------------------------------------------------------------------------------- seed data
OWNER = sf_id("005", 1)
ACME, GLOBEX = sf_id("001", 1), sf_id("001", 2)
DANA, ELI, GONE, NOPHONE = sf_id("003", 1), sf_id("003", 2), sf_id("003", 3), sf_id("003", 4)
LEAD = sf_id("00Q", 1)
WON, OPEN_OPP = sf_id("006", 1), sf_id("006", 2)
ROLE = sf_id("00K", 1)
CASE = sf_id("500", 1)
SURVEY_TASK, DUP_TASK_A, DUP_TASK_B = sf_id("00T", 1), sf_id("00T", 2), sf_id("00T", 3)
MEETING = sf_id("00U", 1)
EMAIL = sf_id("02s", 1)


def _stamp(day: int, hour: int = 0) -> str:
    return f"2024-03-{day:02d}T{hour:02d}:00:00.000+0000"


def seed() -> SalesforceData:
    contacts = [
        {"Id": DANA, "FirstName": "Dana", "LastName": "Cohen", "Email": "Dana.Cohen@example.co.il",
         "Phone": "+972 3 555 0101", "AccountId": ACME, "OwnerId": OWNER, "LeadSource": "Web",
         "CreatedDate": _stamp(1), "LastModifiedDate": _stamp(2), "SystemModstamp": _stamp(2),
         "IsDeleted": False, "MasterRecordId": None},
        {"Id": ELI, "FirstName": "Eli", "LastName": "Levi", "Email": "eli@globex.example", "Phone": "+1 555 0102",
         "AccountId": GLOBEX, "OwnerId": OWNER, "CreatedDate": _stamp(3), "LastModifiedDate": _stamp(4),
         "SystemModstamp": _stamp(4, 6)},
        {"Id": GONE, "FirstName": "Gil", "LastName": "Gone", "Email": "gil@example.com", "IsDeleted": True,
         "CreatedDate": _stamp(1), "LastModifiedDate": _stamp(5), "SystemModstamp": _stamp(5)},
        {"Id": NOPHONE, "LastName": "Nophone", "Email": None, "CreatedDate": _stamp(2), "SystemModstamp": _stamp(6)},
    ]
    contacts += [
        {"LastName": f"Gen{index:05d}", "FirstName": "Gene", "Email": f"gen{index}@example.org",
         "CreatedDate": "2024-01-01T00:00:00.000+0000",
         "SystemModstamp": f"2024-02-{1 + index % 28:02d}T{index % 24:02d}:{index % 60:02d}:00.000+0000"}
        for index in range(GENERATED)
    ]
    return SalesforceData(records={
        "User": [{"Id": OWNER, "Username": "olivia@acme.example", "FirstName": "Olivia", "LastName": "Owner",
                  "Email": "olivia@acme.example", "Alias": "oowner", "IsActive": True, "TimeZoneSidKey": "GMT",
                  "LocaleSidKey": "en_US", "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US",
                  "ProfileId": sf_id("00e", 1), "CreatedDate": _stamp(1), "SystemModstamp": _stamp(1)}],
        "Account": [
            {"Id": ACME, "Name": "Acme", "Website": "acme.example", "Industry": "Technology", "OwnerId": OWNER,
             "CreatedDate": _stamp(1), "SystemModstamp": _stamp(1)},
            {"Id": GLOBEX, "Name": "Globex", "CreatedDate": _stamp(1), "SystemModstamp": _stamp(1)},
        ],
        "Contact": contacts,
        "Lead": [{"Id": LEAD, "LastName": "Lead", "Company": "Initech", "Email": "lee@initech.example",
                  "Status": "Closed - Converted", "IsConverted": True, "ConvertedContactId": DANA,
                  "ConvertedAccountId": ACME, "ConvertedDate": "2024-03-01", "CreatedDate": _stamp(1),
                  "SystemModstamp": _stamp(1)}],
        "Opportunity": [
            {"Id": WON, "Name": "Acme renewal", "StageName": "Closed Won", "CloseDate": "2024-03-10",
             "Amount": 12000, "AccountId": ACME, "CreatedDate": _stamp(1), "SystemModstamp": _stamp(10)},
            {"Id": OPEN_OPP, "Name": "Globex pilot", "StageName": "Prospecting", "CloseDate": "2024-06-30",
             "AccountId": GLOBEX, "CreatedDate": _stamp(2), "SystemModstamp": _stamp(2)},
        ],
        "OpportunityContactRole": [{"Id": ROLE, "OpportunityId": WON, "ContactId": DANA, "Role": "Decision Maker",
                                    "IsPrimary": True, "CreatedDate": _stamp(1), "SystemModstamp": _stamp(1)}],
        "Case": [{"Id": CASE, "Subject": "Broken widget", "Status": "Closed", "Origin": "Email", "ContactId": DANA,
                  "AccountId": ACME, "CreatedDate": _stamp(3), "SystemModstamp": _stamp(4)}],
        "Task": [
            {"Id": SURVEY_TASK, "Subject": "NPS survey", "Type": "Survey", "Survey_Score__c": 9, "WhoId": DANA,
             "Status": "Completed", "TaskSubtype": "Task", "External_Id__c": "seed-survey-1",
             "ActivityDate": "2024-03-05", "CreatedDate": _stamp(5), "SystemModstamp": _stamp(5)},
            # a data-quality problem a real org can have: the same external id twice (loaded before it was unique)
            {"Id": DUP_TASK_A, "Subject": "Call", "External_Id__c": "dup-key", "CreatedDate": _stamp(5),
             "SystemModstamp": _stamp(5)},
            {"Id": DUP_TASK_B, "Subject": "Call again", "External_Id__c": "DUP-KEY", "CreatedDate": _stamp(5),
             "SystemModstamp": _stamp(5)},
        ],
        "Event": [{"Id": MEETING, "Subject": "Demo", "WhoId": DANA, "StartDateTime": "2024-03-07T10:00:00Z",
                   "EndDateTime": "2024-03-07T11:00:00Z", "CreatedDate": _stamp(6), "SystemModstamp": _stamp(6)}],
        "EmailMessage": [{"Id": EMAIL, "Subject": "Re: widget", "TextBody": "Thanks", "ParentId": CASE,
                          "Incoming": True, "Status": "3", "FromAddress": "dana.cohen@example.co.il",
                          "MessageDate": "2024-03-04T09:00:00.000+0000", "CreatedDate": _stamp(4),
                          "SystemModstamp": _stamp(4)}],
    })


@pytest.fixture(scope="module")
def emulator() -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.load(seed())
    return emulator


@pytest.fixture(scope="module")
def server(emulator: SalesforceEmulator):  # type: ignore[no-untyped-def]
    with EmulatorServer(emulator) as running:
        yield running


@pytest.fixture()
def sf(server: EmulatorServer) -> Salesforce:
    return direct_client(server)


@pytest.fixture()
def fresh():  # type: ignore[no-untyped-def]
    """A dedicated emulator for tests that change faults, limits or tokens."""
    servers: list[EmulatorServer] = []

    def start(data: SalesforceData | None = None, **kw: object) -> tuple[SalesforceEmulator, EmulatorServer]:
        emulator = SalesforceEmulator(**kw)  # type: ignore[arg-type]
        emulator.load(data or seed())
        running = EmulatorServer(emulator).start()
        servers.append(running)
        return emulator, running
    yield start
    for running in servers:
        running.stop()


def error_code(error: Exception) -> str:
    return error.content[0]["errorCode"]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- ids
def test_ids_have_checksums_and_15_char_ids_are_repaired() -> None:
    assert to18("001D000000IRFma") == "001D000000IRFmaIAH"      # the id in Salesforce's own examples
    assert to18("001d000000irfmaiah") == "001D000000IRFmaIAH"   # 18-char ids survive losing their case
    assert to18("001D000000IRFmaIAH") == "001D000000IRFmaIAH"
    assert to18("not-an-id") is None and to18("001D000000IRFm") is None
    new = make_id("003", 42)
    assert len(new) == 18 and new.startswith("003") and checksum(new[:15]) == new[15:]


# ---------------------------------------------------------------------------------------------- query
def test_query_pages_with_relative_next_records_url(sf: Salesforce) -> None:
    soql = "SELECT Id, LastName FROM Contact WHERE LastName LIKE 'gen%' ORDER BY LastName"
    first = sf.query(soql)
    assert first["totalSize"] == GENERATED and first["done"] is False and len(first["records"]) == 2000
    assert re.fullmatch(r"/services/data/v59\.0/query/01g\w{15}-2000", first["nextRecordsUrl"])
    second = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    assert second["nextRecordsUrl"].endswith("-4000") and len(second["records"]) == 2000
    last = sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert last["done"] is True and "nextRecordsUrl" not in last and len(last["records"]) == 500
    names = [record["LastName"] for page in (first, second, last) for record in page["records"]]
    assert names == sorted(names) and len(set(names)) == GENERATED
    record = first["records"][0]
    assert list(record) == ["attributes", "Id", "LastName"]
    assert record["attributes"] == {"type": "Contact", "url": f"/services/data/v59.0/sobjects/Contact/{record['Id']}"}
    # the locator is released after the last batch
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)
    assert error_code(error.value) == "INVALID_QUERY_LOCATOR"


def test_query_all_iter_honours_batch_size_header(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    emulator.requests.reset()
    soql = "SELECT Id FROM Contact WHERE LastName LIKE 'Gen%'"
    ids = [row["Id"] for row in sf.query_all_iter(soql, headers={"Sforce-Query-Options": "batchSize=500"})]
    assert len(ids) == len(set(ids)) == GENERATED
    counts = emulator.requests.snapshot(with_log=False)["counts"]
    assert counts["GET /services/data/v{version}/query"] == 1
    assert counts["GET /services/data/v{version}/query/{locator}"] == GENERATED // 500 - 1
    small = sf.query(soql, headers={"Sforce-Query-Options": "batchSize=50"})  # below the minimum: 200
    assert len(small["records"]) == 200


def test_query_hides_soft_deleted_rows_query_all_shows_them(sf: Salesforce) -> None:
    soql = "SELECT Id, IsDeleted FROM Contact WHERE LastName = 'Gone'"
    assert sf.query(soql)["totalSize"] == 0
    everything = sf.query(soql, include_deleted=True)
    assert [(row["Id"], row["IsDeleted"]) for row in everything["records"]] == [(GONE, True)]
    assert sf.query_all("SELECT Id FROM Contact WHERE IsDeleted = true", include_deleted=True)["totalSize"] == 1


def test_soql_filters_sorting_and_parent_fields(sf: Salesforce) -> None:
    rows = sf.query(
        "SELECT Id, Name, Email, Account.Name, Owner.Email FROM Contact "
        "WHERE SystemModstamp > 2024-03-01T00:00:00Z AND (Email LIKE '%example.co.il' OR Id IN "
        f"('{ELI[:15]}', '{NOPHONE}')) ORDER BY SystemModstamp DESC")["records"]
    assert [row["Id"] for row in rows] == [NOPHONE, ELI, DANA]  # 15-char id literal matched, newest first
    dana = rows[2]
    assert dana["Name"] == "Dana Cohen"
    account_url = f"/services/data/v59.0/sobjects/Account/{ACME}"
    assert dana["Account"] == {"attributes": {"type": "Account", "url": account_url}, "Name": "Acme"}
    assert dana["Owner"]["attributes"]["type"] == "User" and dana["Owner"]["Email"] == "olivia@acme.example"
    assert rows[0]["Account"] is None
    # string comparison is case-insensitive; != keeps nulls (SOQL, unlike SQL)
    assert sf.query("SELECT Id FROM Contact WHERE Email = 'DANA.COHEN@EXAMPLE.CO.IL'")["records"][0]["Id"] == DANA
    not_dana = sf.query("SELECT Id FROM Contact WHERE Email != 'dana.cohen@example.co.il' AND LastName != 'Gen%' "
                        "AND (NOT LastName LIKE 'Gen%')")
    assert {row["Id"] for row in not_dana["records"]} >= {ELI, NOPHONE}
    assert DANA not in {row["Id"] for row in not_dana["records"]}
    # NULL, NOT IN, NULLS LAST, OFFSET/LIMIT, dates and booleans
    assert [r["Id"] for r in sf.query("SELECT Id FROM Contact WHERE Email = null")["records"]] == [NOPHONE]
    ordered = sf.query(f"SELECT Id, Phone FROM Contact WHERE Id NOT IN ('{GONE}') AND LastName IN ('Cohen', 'levi', "
                       "'Nophone') ORDER BY Phone DESC NULLS FIRST, LastName LIMIT 2 OFFSET 1")["records"]
    assert [row["Id"] for row in ordered] == [DANA, ELI]
    won = sf.query("SELECT Name, IsWon FROM Opportunity WHERE IsClosed = TRUE AND CloseDate < 2024-04-01 "
                   "AND Amount >= 12000")["records"]
    assert [(row["Name"], row["IsWon"]) for row in won] == [("Acme renewal", True)]
    tasks = sf.query("SELECT Id, Who.Name, Who.Type, What.Name FROM Task WHERE Type = 'Survey'")["records"]
    assert tasks[0]["Who"]["attributes"]["type"] == "Name" and tasks[0]["Who"]["Name"] == "Dana Cohen"
    assert tasks[0]["Who"]["Type"] == "Contact" and tasks[0]["What"] is None
    assert sf.query("SELECT COUNT() FROM Contact WHERE LastName LIKE 'Gen01%'") == \
        {"totalSize": 1000, "done": True, "records": []}
    semi = sf.query("SELECT Id FROM Contact WHERE Id IN (SELECT ContactId FROM OpportunityContactRole)")
    assert [row["Id"] for row in semi["records"]] == [DANA]


def test_more_soql_forms(sf: Salesforce) -> None:
    deep = sf.query("SELECT Id, Account.Owner.Email FROM Contact WHERE Account.Owner.Email = 'olivia@acme.example' "
                    "WITH SECURITY_ENFORCED ORDER BY Account.Name")["records"]
    assert [row["Id"] for row in deep] == [DANA]
    assert deep[0]["Account"]["Owner"] == {
        "attributes": {"type": "User", "url": f"/services/data/v59.0/sobjects/User/{OWNER}"},
        "Email": "olivia@acme.example"}
    everything = sf.query(f"SELECT FIELDS(ALL) FROM Task WHERE Id = '{SURVEY_TASK}' LIMIT 1")["records"][0]
    assert everything["External_Id__c"] == "seed-survey-1" and everything["Survey_Score__c"] == 9.0
    with pytest.raises(SalesforceMalformedRequest):
        sf.query("SELECT FIELDS(ALL) FROM Task")  # FIELDS(ALL) needs LIMIT ≤ 200
    created = sf.Account.create({"Name": "Made today"})["id"]
    today = sf.query("SELECT Id FROM Account WHERE CreatedDate = TODAY AND Name LIKE 'Made%'")["records"]
    assert [row["Id"] for row in today] == [created]
    counted = sf.query("SELECT COUNT(Id) total FROM Contact WHERE LastName LIKE 'Gen%'")["records"]
    assert counted == [{"attributes": {"type": "AggregateResult"}, "total": GENERATED}]
    lowered = sf.query("select id, lastname from contact where lastname = 'cohen'")["records"]
    assert lowered[0]["LastName"] == "Cohen" and list(lowered[0]) == ["attributes", "Id", "LastName"]


def test_cached_batches_follow_writes(fresh) -> None:  # type: ignore[no-untyped-def]
    _, server = fresh()
    sf = direct_client(server)
    soql = "SELECT Id, Title FROM Contact WHERE LastName LIKE 'Gen%' ORDER BY LastName"
    warm = sf.query(soql)
    assert sf.query(soql)["records"] == warm["records"]      # served from the batch cache
    target = warm["records"][7]["Id"]
    sf.Contact.update(target, {"Title": "Edited"})
    again = {row["Id"]: row["Title"] for row in sf.query(soql)["records"]}
    assert again[target] == "Edited"
    sf.Contact.delete(target)
    assert target not in {row["Id"] for row in sf.query(soql)["records"]}
    assert target in {row["Id"] for row in sf.query(soql, include_deleted=True)["records"]}


@pytest.mark.parametrize(("soql", "code"), [
    ("SELECT Id FROM Contact WHERE LastName = 'a' AND Email = 'b' OR Phone = 'c'", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact WHERE", "MALFORMED_QUERY"),
    ("SELECT Id, LastName FROM Contact GROUP BY LastName", "MALFORMED_QUERY"),
    ("SELECT Id FROM Contact OFFSET 2001", "NUMBER_OUTSIDE_VALID_RANGE"),
    ("SELECT Id, Nope__c FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE SystemModstamp > '2024-01-01T00:00:00Z'", "INVALID_FIELD"),
    ("SELECT Id FROM Contact WHERE LastName = 5", "INVALID_FIELD"),
    ("SELECT Acount.Name FROM Contact", "INVALID_FIELD"),
    ("SELECT Id FROM Contactz", "INVALID_TYPE"),
    ("SELECT Id FROM Contact WHERE Id = 'nope'", "INVALID_QUERY_FILTER_OPERATOR"),
])
def test_soql_errors_surface_as_malformed_request(sf: Salesforce, soql: str, code: str) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query(soql)
    assert error.value.status == 400
    assert error_code(error.value) == code
    if code in ("MALFORMED_QUERY", "INVALID_FIELD", "INVALID_TYPE"):
        assert "ERROR at Row:1:Column:" in error.value.content[0]["message"]  # type: ignore[attr-defined]


# ---------------------------------------------------------------------------------------------- describe
def test_describe_lists_objects_and_the_admin_created_custom_fields(sf: Salesforce) -> None:
    objects = {entry["name"]: entry for entry in sf.describe()["sobjects"]}
    assert {name: objects[name]["keyPrefix"] for name in ("Contact", "Lead", "Account", "Opportunity",
                                                          "OpportunityContactRole", "Case", "Task", "Event",
                                                          "EmailMessage", "User")} == {
        "Contact": "003", "Lead": "00Q", "Account": "001", "Opportunity": "006", "OpportunityContactRole": "00K",
        "Case": "500", "Task": "00T", "Event": "00U", "EmailMessage": "02s", "User": "005"}
    contact = {field["name"]: field for field in sf.Contact.describe()["fields"]}
    assert contact["Journey_Stage__c"]["type"] == "string" and contact["Journey_Stage__c"]["length"] == 40
    assert contact["Journey_Stage__c"]["custom"] is True
    assert contact["Journey_Stage_Entered_At__c"]["type"] == "datetime"
    assert contact["LastName"]["nillable"] is False and contact["LastName"]["createable"] is True
    assert contact["SystemModstamp"]["updateable"] is False
    task = {field["name"]: field for field in sf.Task.describe()["fields"]}
    assert task["External_Id__c"]["externalId"] is True and task["External_Id__c"]["unique"] is True
    assert task["Survey_Score__c"]["type"] == "double"
    assert {"Survey", "Referral", "Review"} <= {value["value"] for value in task["Type"]["picklistValues"]}
    assert task["IsClosed"]["createable"] is False and task["TaskSubtype"]["updateable"] is False
    assert task["WhoId"]["referenceTo"] == ["Contact", "Lead"] and task["WhoId"]["relationshipName"] == "Who"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Nope__c.describe()


def test_org_without_the_custom_fields(fresh) -> None:  # type: ignore[no-untyped-def]
    _, server = fresh(SalesforceData({"Contact": [{"LastName": "Plain"}]}), custom_fields=False)
    sf = direct_client(server)
    names = {field["name"] for field in sf.Contact.describe()["fields"]}
    assert "Journey_Stage__c" not in names and "Email" in names
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Contact.create({"LastName": "X", "Journey_Stage__c": "purchase"})
    assert error_code(error.value) == "INVALID_FIELD"


# ---------------------------------------------------------------------------------------------- CRUD
def test_create_get_update_delete(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    created = sf.Contact.create({"LastName": "Mizrahi", "FirstName": "Noa", "Email": "noa@example.com",
                                 "AccountId": ACME[:15], "Journey_Stage__c": "consideration",
                                 "Last_Interaction_At__c": "2024-03-01T10:00:00Z"})
    assert created["success"] is True and created["errors"] == []
    new_id = created["id"]
    assert len(new_id) == 18 and new_id.startswith("003")
    record = sf.Contact.get(new_id)
    assert record["Name"] == "Noa Mizrahi" and record["AccountId"] == ACME and record["IsDeleted"] is False
    assert record["Last_Interaction_At__c"] == "2024-03-01T10:00:00.000+0000"
    assert SF_DATETIME.fullmatch(record["CreatedDate"]) and record["OwnerId"] == emulator.store.user_id
    assert list(sf.Contact.get(new_id, params={"fields": "Id,Email"})) == ["attributes", "Id", "Email"]
    assert sf.Contact.update(new_id, {"Journey_Stage__c": "purchase", "Phone": "+972 50 000 0000"}) == 204
    updated = sf.Contact.get(new_id)
    assert updated["Journey_Stage__c"] == "purchase"
    assert updated["SystemModstamp"] >= updated["LastModifiedDate"] >= record["LastModifiedDate"]
    assert sf.Contact.delete(new_id) == 204
    with pytest.raises(SalesforceResourceNotFound):
        sf.Contact.get(new_id)
    with pytest.raises(SalesforceResourceNotFound) as error:
        sf.Contact.update(new_id, {"Phone": "1"})
    assert error_code(error.value) == "ENTITY_IS_DELETED"
    gone = sf.query_all(f"SELECT Id, IsDeleted FROM Contact WHERE Id = '{new_id}'", include_deleted=True)
    assert gone["records"][0]["IsDeleted"] is True
    assert new_id in {row["Id"] for row in emulator.dump_writes()["Contact"]}


@pytest.mark.parametrize(("sobject", "body", "code", "fields"), [
    ("Contact", {"FirstName": "No last name"}, "REQUIRED_FIELD_MISSING", ["LastName"]),
    ("Lead", {"LastName": "X"}, "REQUIRED_FIELD_MISSING", ["Company"]),
    ("Opportunity", {"Name": "X"}, "REQUIRED_FIELD_MISSING", ["StageName", "CloseDate"]),
    ("Account", {"Website": "x.example"}, "REQUIRED_FIELD_MISSING", ["Name"]),
    ("Event", {"Subject": "x"}, "REQUIRED_FIELD_MISSING", ["DurationInMinutes", "ActivityDateTime"]),
    ("Task", {"Status": None}, "REQUIRED_FIELD_MISSING", ["Status"]),
    ("Task", {"IsClosed": True}, "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsClosed"]),
    ("Opportunity", {"Name": "X", "StageName": "Closed Won", "CloseDate": "2024-01-01", "IsWon": True},
     "INVALID_FIELD_FOR_INSERT_UPDATE", ["IsWon"]),
    ("Opportunity", {"Name": "X", "StageName": "Imaginary", "CloseDate": "2024-01-01"},
     "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", ["StageName"]),
    ("Contact", {"LastName": "X", "Email": "not-an-email"}, "INVALID_EMAIL_ADDRESS", ["Email"]),
    ("Contact", {"LastName": "X" * 81}, "STRING_TOO_LONG", ["LastName"]),
    ("Contact", {"LastName": "X", "AccountId": DANA}, "FIELD_INTEGRITY_EXCEPTION", ["AccountId"]),
    ("Contact", {"LastName": "X", "AccountId": "garbage"}, "MALFORMED_ID", ["AccountId"]),
    ("Task", {"WhoId": GONE}, "ENTITY_IS_DELETED", ["WhoId"]),
])
def test_create_validation(sf: Salesforce, sobject: str, body: dict, code: str, fields: list[str]) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        getattr(sf, sobject).create(body)
    assert error.value.content == [{"message": error.value.content[0]["message"],  # type: ignore[attr-defined]
                                    "errorCode": code, "fields": fields}]


def test_unknown_field_and_bad_json(sf: Salesforce) -> None:
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Contact.create({"LastName": "X", "Shoe_Size__c": 42})
    assert error.value.content == [{"message": "No such column 'Shoe_Size__c' on sobject of type Contact",  # type: ignore[attr-defined]
                                    "errorCode": "INVALID_FIELD"}]
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.restful("sobjects/Contact", method="POST", data="{not json")
    assert error_code(error.value) == "JSON_PARSER_ERROR"


def test_derived_read_only_fields(sf: Salesforce) -> None:
    opportunity = sf.Opportunity.create({"Name": "Deal", "StageName": "Closed Won", "CloseDate": "2024-05-01",
                                         "Amount": 1000})["id"]
    row = sf.Opportunity.get(opportunity)
    assert (row["IsClosed"], row["IsWon"], row["Probability"], row["ForecastCategoryName"]) == \
        (True, True, 100.0, "Closed")
    sf.Opportunity.update(opportunity, {"StageName": "Closed Lost"})
    assert (sf.Opportunity.get(opportunity)["IsClosed"], sf.Opportunity.get(opportunity)["IsWon"]) == (True, False)
    case = sf.Case.create({"Subject": "Help", "Origin": "Phone"})["id"]
    created = sf.Case.get(case)
    assert created["Status"] == "New" and created["IsClosed"] is False and re.fullmatch(r"\d{8}",
                                                                                       created["CaseNumber"])
    sf.Case.update(case, {"Status": "Closed"})
    closed = sf.Case.get(case)
    assert closed["IsClosed"] is True and SF_DATETIME.fullmatch(closed["ClosedDate"])
    task = sf.Task.create({"Subject": "Call", "WhoId": DANA, "TaskSubtype": "Call", "Type": "Call"})["id"]
    opened = sf.Task.get(task)
    assert (opened["Status"], opened["Priority"], opened["IsClosed"], opened["AccountId"]) == \
        ("Not Started", "Normal", False, ACME)
    sf.Task.update(task, {"Status": "Completed"})
    assert sf.Task.get(task)["IsClosed"] is True and sf.Task.get(task)["CompletedDateTime"]
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Task.update(task, {"TaskSubtype": "Email"})
    assert error_code(error.value) == "INVALID_FIELD_FOR_INSERT_UPDATE"
    event = sf.Event.create({"Subject": "Meet", "StartDateTime": "2024-05-01T09:00:00Z", "DurationInMinutes": 30,
                             "WhatId": OPEN_OPP})["id"]
    meeting = sf.Event.get(event)
    assert meeting["EndDateTime"] == "2024-05-01T09:30:00.000+0000" and meeting["AccountId"] == GLOBEX


# ---------------------------------------------------------------------------------------------- upsert
def test_upsert_by_external_id(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    key = "journeyhub:task:p00001:survey 1"
    path = f"External_Id__c/{quote(key, safe='')}"
    body = {"Subject": "Survey answered", "WhoId": DANA, "Type": "Survey", "Survey_Score__c": 10,
            "Status": "Completed", "ActivityDate": "2024-03-05"}
    first = sf.Task.upsert(path, body, raw_response=True)
    assert first.status_code == 201 and first.json()["created"] is True
    second = sf.Task.upsert(path, {**body, "Survey_Score__c": 8}, raw_response=True)
    assert second.status_code == 200 and second.json() == {"id": first.json()["id"], "success": True,
                                                           "errors": [], "created": False}
    fetched = sf.Task.get_by_custom_id("External_Id__c", "seed-survey-1")
    assert fetched["Id"] == SURVEY_TASK
    matches = [row for row in emulator.records("Task") if row["External_Id__c"] == key]
    assert len(matches) == 1 and matches[0]["Survey_Score__c"] == 8.0
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Task.upsert(path, {**body, "External_Id__c": key})
    assert error_code(error.value) == "INVALID_FIELD"
    with pytest.raises(SalesforceResourceNotFound):
        sf.Task.upsert("Subject/whatever", body)
    with pytest.raises(SalesforceMoreThanOneRecord) as many:
        sf.Task.upsert("External_Id__c/dup-key", {"Subject": "x"})
    assert sorted(many.value.content) == sorted(  # type: ignore[attr-defined]
        [f"/services/data/v59.0/sobjects/Task/{DUP_TASK_A}", f"/services/data/v59.0/sobjects/Task/{DUP_TASK_B}"])
    with pytest.raises(SalesforceMalformedRequest) as duplicate:
        sf.Task.create({"Subject": "again", "External_Id__c": key.upper()})  # unique is case-insensitive
    assert error_code(duplicate.value) == "DUPLICATE_VALUE"


# ---------------------------------------------------------------------------------------------- collections
def test_sobject_collections(sf: Salesforce) -> None:
    results = sf.restful("composite/sobjects", method="POST", json={"allOrNone": False, "records": [
        {"attributes": {"type": "Task"}, "Subject": "Call 1", "WhoId": DANA},
        {"attributes": {"type": "Contact"}, "FirstName": "No last name"},
        {"Subject": "no type"},
    ]})
    assert results[0]["success"] is True and results[0]["id"].startswith("00T")
    assert results[1] == {"success": False, "errors": [{"statusCode": "REQUIRED_FIELD_MISSING",
                                                        "message": "Required fields are missing: [LastName]",
                                                        "fields": ["LastName"]}]}
    assert results[2]["errors"][0]["statusCode"] == "INVALID_TYPE"
    before = sf.query("SELECT COUNT() FROM Account")["totalSize"]
    rolled = sf.restful("composite/sobjects", method="POST", json={"allOrNone": True, "records": [
        {"attributes": {"type": "Account"}, "Name": "Would be created"},
        {"attributes": {"type": "Account"}, "Website": "missing-name.example"},
    ]})
    assert rolled[0]["errors"][0]["statusCode"] == "ALL_OR_NONE_OPERATION_ROLLED_BACK"
    assert rolled[1]["errors"][0]["statusCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.query("SELECT COUNT() FROM Account")["totalSize"] == before
    updated = sf.restful("composite/sobjects", method="PATCH", json={"records": [
        {"attributes": {"type": "Task"}, "id": results[0]["id"], "Status": "Completed"},
        {"attributes": {"type": "Task"}, "Status": "Completed"},
    ]})
    assert updated[0] == {"id": results[0]["id"], "success": True, "errors": []}
    assert updated[1]["errors"][0]["statusCode"] == "MISSING_ARGUMENT"
    upserted = sf.restful("composite/sobjects/Task/External_Id__c", method="PATCH", json={"records": [
        {"attributes": {"type": "Task"}, "External_Id__c": "batch-1", "Subject": "One"},
        {"attributes": {"type": "Task"}, "External_Id__c": "seed-survey-1", "Subject": "NPS survey (edited)"},
    ]})
    assert [(row["success"], row["created"]) for row in upserted] == [(True, True), (True, False)]
    assert upserted[1]["id"] == SURVEY_TASK and sf.Task.get(SURVEY_TASK)["Subject"] == "NPS survey (edited)"
    again = sf.restful("composite/sobjects/Task/External_Id__c", method="PATCH", json={"records": [
        {"attributes": {"type": "Task"}, "External_Id__c": "batch-1", "Subject": "One again"}]})
    assert again[0]["created"] is False and again[0]["id"] == upserted[0]["id"]
    fetched = sf.restful("composite/sobjects/Task", params={"ids": f"{upserted[0]['id']},{SURVEY_TASK}",
                                                             "fields": "Id,Subject"})
    assert [row["Subject"] for row in fetched] == ["One again", "NPS survey (edited)"]
    deleted = sf.restful("composite/sobjects", method="DELETE",
                         params={"ids": f"{upserted[0]['id']},003000000000000AAA", "allOrNone": "false"})
    assert deleted[0] == {"id": upserted[0]["id"], "success": True, "errors": []}
    assert deleted[1]["success"] is False
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.restful("composite/sobjects", method="POST", json={"records": [
            {"attributes": {"type": "Task"}, "Subject": str(index)} for index in range(201)]})
    assert error_code(error.value) == "EXCEEDED_ID_LIMIT"


def test_composite_references_and_all_or_none(sf: Salesforce) -> None:
    body = {"allOrNone": False, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Contact", "referenceId": "person",
         "body": {"LastName": "Composite", "AccountId": ACME}},
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Task", "referenceId": "task",
         "body": {"Subject": "Follow up", "WhoId": "@{person.id}"}},
        {"method": "GET", "url": "/services/data/v59.0/sobjects/Task/@{task.id}?fields=Id,WhoId",
         "referenceId": "check"},
        {"method": "GET", "url": "/services/data/v59.0/query?q=SELECT+Id+FROM+Contact+WHERE+Id='@{person.id}'",
         "referenceId": "q"},
    ]}
    responses = sf.restful("composite", method="POST", json=body)["compositeResponse"]
    assert [row["httpStatusCode"] for row in responses] == [201, 201, 200, 200]
    person = responses[0]["body"]["id"]
    assert responses[0]["httpHeaders"]["Location"].endswith(person)
    assert responses[2]["body"]["WhoId"] == person and responses[3]["body"]["totalSize"] == 1
    halted = sf.restful("composite", method="POST", json={"allOrNone": True, "compositeRequest": [
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Account", "referenceId": "ok",
         "body": {"Name": "Rolled back"}},
        {"method": "POST", "url": "/services/data/v59.0/sobjects/Account", "referenceId": "bad", "body": {}},
        {"method": "GET", "url": "/services/data/v59.0/sobjects/Account/@{ok.id}", "referenceId": "after"},
    ]})["compositeResponse"]
    assert [row["httpStatusCode"] for row in halted] == [400, 400, 400]
    assert halted[0]["body"][0]["errorCode"] == "PROCESSING_HALTED"
    assert halted[1]["body"][0]["errorCode"] == "REQUIRED_FIELD_MISSING"
    assert sf.query("SELECT COUNT() FROM Account WHERE Name = 'Rolled back'")["totalSize"] == 0


# ---------------------------------------------------------------------------------------------- replication
def test_get_updated_and_get_deleted(sf: Salesforce) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    created = sf.Contact.create({"LastName": "Window"})["id"]
    doomed = sf.Contact.create({"LastName": "Doomed"})["id"]
    sf.Contact.delete(doomed)
    end = datetime.now(UTC) + timedelta(minutes=2)
    updated = sf.Contact.updated(start, end)
    assert created in updated["ids"] and doomed not in updated["ids"]
    assert SF_DATETIME.fullmatch(updated["latestDateCovered"])
    deleted = sf.Contact.deleted(start, end)
    assert doomed in [row["id"] for row in deleted["deletedRecords"]]
    assert SF_DATETIME.fullmatch(deleted["deletedRecords"][0]["deletedDate"])
    assert SF_DATETIME.fullmatch(deleted["earliestDateAvailable"])
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.Contact.updated(datetime.now(UTC) - timedelta(days=31), end)
    assert error_code(error.value) == "INVALID_REPLICATION_DATE"
    with pytest.raises(SalesforceMalformedRequest):
        sf.Contact.deleted(datetime.now(UTC) - timedelta(days=16), end)


# ---------------------------------------------------------------------------------------------- limits
def test_limits_and_api_usage_header(sf: Salesforce, emulator: SalesforceEmulator) -> None:
    sf.query("SELECT Id FROM Account")
    used = emulator.api_used
    assert sf.api_usage["api-usage"].used == used and sf.api_usage["api-usage"].total == 1_000_000
    limits = sf.limits()
    assert limits["DailyApiRequests"] == {"Max": 1_000_000, "Remaining": 1_000_000 - used - 1}
    assert "DailyBulkV2QueryJobs" in limits


def test_daily_limit_exhausted_answers_403(fresh) -> None:  # type: ignore[no-untyped-def]
    emulator, server = fresh(daily_api_limit=3)
    sf = direct_client(server)
    for _ in range(3):
        sf.query("SELECT Id FROM Account LIMIT 1")
    with pytest.raises(SalesforceRefusedRequest) as error:
        sf.query("SELECT Id FROM Account LIMIT 1")
    assert error.value.content == [{"message": "TotalRequests Limit exceeded.",  # type: ignore[attr-defined]
                                    "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
    assert emulator.api_used == 3


# ---------------------------------------------------------------------------------------------- bulk 2.0
def test_bulk2_query_yields_csv_pages(sf: Salesforce) -> None:
    soql = "SELECT Id, LastName, Email, Account.Name, CreatedDate FROM Contact WHERE LastName LIKE 'Gen%'"
    pages = list(sf.bulk2.Contact.query(soql, max_records=2000, wait=0))
    assert len(pages) == 3
    rows = [row for page in pages for row in csv.DictReader(io.StringIO(page))]
    assert len(rows) == GENERATED and len({row["Id"] for row in rows}) == GENERATED
    assert pages[0].splitlines()[0] == '"Id","LastName","Email","Account.Name","CreatedDate"'
    assert rows[0]["Account.Name"] == "" and rows[0]["CreatedDate"] == "2024-01-01T00:00:00.000Z"
    assert ',,"2024-01-01' in pages[0].splitlines()[1]  # null is an empty, unquoted value
    everything = "".join(sf.bulk2.Contact.query_all("SELECT Id, IsDeleted FROM Contact WHERE LastName = 'Gone'",
                                                    wait=0))
    assert f'"{GONE}","true"' in everything


def test_bulk2_job_lifecycle(fresh) -> None:  # type: ignore[no-untyped-def]
    _, server = fresh(bulk_poll_delay_seconds=1.2)  # UploadComplete < 0.6 s ≤ InProgress < 1.2 s ≤ JobComplete
    session = requests.Session()
    headers = {"Authorization": f"Bearer {Emulator.default_token}"}
    base = f"{server.url}/services/data/v59.0/jobs/query"
    created = session.post(base, json={"operation": "query", "query": "SELECT Id FROM Account"}, headers=headers)
    assert created.status_code == 200 and created.json()["state"] == "UploadComplete"
    job = created.json()["id"]
    assert job.startswith("750") and created.headers["Sforce-Limit-Info"].startswith("api-usage=")
    early = session.get(f"{base}/{job}/results", headers=headers)
    assert early.status_code == 400 and early.json()[0]["errorCode"] == "JOB_NOT_COMPLETE"
    time.sleep(0.7)
    assert session.get(f"{base}/{job}", headers=headers).json()["state"] == "InProgress"
    time.sleep(0.6)
    assert session.get(f"{base}/{job}", headers=headers).json()["state"] == "JobComplete"
    first = session.get(f"{base}/{job}/results", params={"maxRecords": 1}, headers=headers)
    assert first.headers["Sforce-NumberOfRecords"] == "1" and first.headers["Sforce-Locator"] != "null"
    second = session.get(f"{base}/{job}/results", params={"maxRecords": 5, "locator": first.headers["Sforce-Locator"]},
                         headers=headers)
    assert second.headers["Sforce-NumberOfRecords"] == "1" and second.headers["Sforce-Locator"] == "null"
    assert session.delete(f"{base}/{job}", headers=headers).status_code == 204
    other = session.post(base, json={"operation": "query", "query": "SELECT Id FROM Account"}, headers=headers).json()
    aborted = session.patch(f"{base}/{other['id']}", json={"state": "Aborted"}, headers=headers)
    assert aborted.json()["state"] == "Aborted"
    bad = session.post(base, json={"operation": "query", "query": "SELECT COUNT() FROM Account"}, headers=headers)
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALIDJOB"


# ---------------------------------------------------------------------------------------------- auth
def test_soap_login_with_security_token(server: EmulatorServer) -> None:
    session = local_session(server)
    sf = Salesforce(username="hub@sandbox.example", password="sandbox", security_token="sandbox", session=session)
    assert sf.sf_instance == f"127.0.0.1:{server.port}" and sf.session_id.startswith("00D")
    assert sf.query("SELECT Id FROM Account WHERE Name = 'Acme'")["records"][0]["Id"] == ACME
    with pytest.raises(SalesforceAuthenticationFailed) as error:
        Salesforce(username="hub@sandbox.example", password="wrong", security_token="sandbox", session=session)
    assert error.value.code == "INVALID_LOGIN"  # type: ignore[attr-defined]


def test_oauth_client_credentials_and_password_flows(server: EmulatorServer) -> None:
    session = local_session(server)
    sf = Salesforce(consumer_key="sandbox-client", consumer_secret="sandbox-secret", domain="acme.my",
                    session=session)
    assert sf.sf_instance == f"127.0.0.1:{server.port}"   # instance_url points back at the emulator
    assert sf.query("SELECT COUNT() FROM Opportunity")["totalSize"] >= 2
    password = Salesforce(username="hub@sandbox.example", password="sandboxsandbox", consumer_key="sandbox-client",
                          consumer_secret="sandbox-secret", session=session)
    assert password.limits()["DailyApiRequests"]["Max"] == 1_000_000
    with pytest.raises(SalesforceAuthenticationFailed):
        Salesforce(consumer_key="sandbox-client", consumer_secret="nope", domain="acme.my", session=session)
    raw = requests.post(f"{server.url}/services/oauth2/token",
                        data={"grant_type": "password", "client_id": "sandbox-client",
                              "client_secret": "sandbox-secret", "username": "hub@sandbox.example",
                              "password": "bad"})
    assert raw.status_code == 400
    assert raw.json() == {"error": "invalid_grant", "error_description": "authentication failure"}


def test_oauth_jwt_refresh_and_unsupported_grants(server: EmulatorServer, emulator: SalesforceEmulator) -> None:
    def jwt(claims: dict) -> str:
        def part(value: dict) -> str:
            return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")
        return f"{part({'alg': 'RS256'})}.{part(claims)}.c2lnbmF0dXJl"

    token_url = f"{server.url}/services/oauth2/token"
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    claims = {"iss": "sandbox-client", "sub": "hub@sandbox.example", "aud": "https://login.salesforce.com",
              "exp": int(time.time()) + 180}
    issued = requests.post(token_url, data={"grant_type": grant, "assertion": jwt(claims)}).json()
    assert issued["instance_url"] == server.url and issued["token_type"] == "Bearer"
    assert requests.get(f"{server.url}/services/data/v59.0/limits",
                        headers={"Authorization": f"Bearer {issued['access_token']}"}).ok
    stranger = requests.post(token_url, data={"grant_type": grant, "assertion": jwt({**claims, "sub": "x@y.z"})})
    assert stranger.status_code == 400 and stranger.json()["error"] == "invalid_grant"
    emulator.login.refresh_tokens.add("5Aep-refresh")
    refreshed = requests.post(token_url, data={"grant_type": "refresh_token", "refresh_token": "5Aep-refresh",
                                               "client_id": "sandbox-client"})
    assert refreshed.ok and refreshed.json()["access_token"].startswith("00D")
    unsupported = requests.post(token_url, data={"grant_type": "authorization_code", "code": "x"})
    assert unsupported.json() == {"error": "unsupported_grant_type", "error_description": "grant type not supported"}


def test_session_expiry_relogin_vs_direct_session(fresh) -> None:  # type: ignore[no-untyped-def]
    emulator, server = fresh()
    session = local_session(server)
    login_client = Salesforce(username="hub@sandbox.example", password="sandbox", security_token="sandbox",
                              session=session)
    emulator.faults.configure(FaultConfig(token_ttl_requests=2))
    for _ in range(5):
        assert login_client.query("SELECT Id FROM Account")["totalSize"] == 2
    logins = emulator.requests.snapshot(with_log=False)["counts"]["POST /services/Soap/u/{version}"]
    assert logins >= 2  # the first login plus transparent re-logins on INVALID_SESSION_ID
    direct = direct_client(server)
    emulator.tokens.add(Emulator.default_token)
    emulator.issue_token()  # restart the TTL counter
    direct.query("SELECT Id FROM Account")
    direct.query("SELECT Id FROM Account")
    with pytest.raises(SalesforceExpiredSession) as error:
        direct.query("SELECT Id FROM Account")
    assert error.value.content == [{"message": "Session expired or invalid",  # type: ignore[attr-defined]
                                    "errorCode": "INVALID_SESSION_ID"}]


def test_bad_token_is_401_json_array(server: EmulatorServer) -> None:
    reply = requests.get(f"{server.url}/services/data/v59.0/limits/", headers={"Authorization": "Bearer nope"})
    assert reply.status_code == 401
    assert reply.json() == [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]


# ---------------------------------------------------------------------------------------------- faults
def test_injected_server_errors_and_throttling(fresh) -> None:  # type: ignore[no-untyped-def]
    emulator, server = fresh(faults=FaultConfig(rules=[
        FaultRule(kind="error", path="/query", status=503, times=1),
        FaultRule(kind="rate_limit", path="/sobjects/Account", retry_after=2.5, times=1),
    ]))
    sf = direct_client(server)
    with pytest.raises(SalesforceGeneralError) as error:
        sf.query("SELECT Id FROM Account")
    assert error.value.status == 503 and error_code(error.value) == "SERVER_UNAVAILABLE"
    assert sf.query("SELECT Id FROM Account")["totalSize"] == 2
    throttled = requests.get(f"{server.url}/services/data/v59.0/sobjects/Account/{ACME}",
                             headers={"Authorization": f"Bearer {Emulator.default_token}"})
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "3"
    assert throttled.json()[0]["errorCode"] == "REQUEST_LIMIT_EXCEEDED"
    assert "Sforce-Limit-Info" in throttled.headers
    assert sf.Account.get(ACME)["Name"] == "Acme"
    faulted = [entry for entry in emulator.requests.snapshot()["log"] if entry["fault"]]
    assert [entry["fault"] for entry in faulted] == ["error", "rate_limit"]


def test_merge_is_visible_through_query_all_and_get_deleted(fresh) -> None:  # type: ignore[no-untyped-def]
    emulator, server = fresh()
    sf = direct_client(server)
    task = sf.Task.create({"Subject": "Call Eli", "WhoId": ELI})["id"]
    emulator.merge("Contact", DANA, ELI)
    loser = sf.query_all(f"SELECT Id, IsDeleted, MasterRecordId FROM Contact WHERE Id = '{ELI}'",
                         include_deleted=True)["records"][0]
    assert (loser["IsDeleted"], loser["MasterRecordId"]) == (True, DANA)
    assert sf.query(f"SELECT Id FROM Contact WHERE Id = '{ELI}'")["totalSize"] == 0
    assert sf.Task.get(task)["WhoId"] == DANA  # related records follow the survivor
    window = sf.Contact.deleted(datetime.now(UTC) - timedelta(minutes=5), datetime.now(UTC) + timedelta(minutes=2))
    assert ELI in [row["id"] for row in window["deletedRecords"]]


def test_merge_during_sync_fault(fresh) -> None:  # type: ignore[no-untyped-def]
    emulator, server = fresh(faults=FaultConfig(seed=3, vendor={"merge_during_sync": True}))
    emulator.load({"Contact": [
        {"LastName": "Twin", "Email": "twin@example.com", "CreatedDate": _stamp(1), "SystemModstamp": _stamp(1)},
        {"LastName": "Twin", "Email": "TWIN@example.com", "CreatedDate": _stamp(2), "SystemModstamp": _stamp(2)},
        {"LastName": "Solo", "Email": "solo@example.com"},
    ]})
    sf = direct_client(server)
    before = sf.query("SELECT Id FROM Contact")
    assert before["totalSize"] == 3   # the sync's read sees the pre-merge state
    assert len(emulator.merges) == 1
    _, master, loser = emulator.merges[0]
    after = sf.query_all("SELECT Id, IsDeleted, MasterRecordId FROM Contact", include_deleted=True)["records"]
    states = {row["Id"]: (row["IsDeleted"], row["MasterRecordId"]) for row in after}
    assert states[loser] == (True, master) and states[master] == (False, None)
    sf.query("SELECT Id FROM Contact")
    assert len(emulator.merges) == 1  # `true` merges once


def test_mutate_during_paging_fault(fresh) -> None:  # type: ignore[no-untyped-def]
    emulator, server = fresh(faults=FaultConfig(seed=1, vendor={"mutate_during_paging": True}))
    sf = direct_client(server)
    soql = "SELECT Id, SystemModstamp FROM Contact WHERE LastName LIKE 'Gen%' ORDER BY SystemModstamp, Id"
    first = sf.query(soql)
    seen = {row["Id"]: row["SystemModstamp"] for row in first["records"]}
    rest = sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)
    rest_rows = rest["records"]
    while not rest["done"]:
        rest = sf.query_more(rest["nextRecordsUrl"], identifier_is_url=True)
        rest_rows += rest["records"]
    assert len(emulator.mutations) == 1
    returned, pending = emulator.mutations[0]
    assert returned in seen and pending in {row["Id"] for row in rest_rows}
    newer = next(row["SystemModstamp"] for row in rest_rows if row["Id"] == pending)
    assert newer > max(seen.values())  # a value edited after the query ran shows up out of order
    assert emulator.record(returned)["SystemModstamp"] > seen[returned]  # type: ignore[index]


def test_query_locator_limit_and_unknown_locator(fresh) -> None:  # type: ignore[no-untyped-def]
    _, server = fresh(query_cursor_limit=2)
    sf = direct_client(server)
    soql = "SELECT Id FROM Contact WHERE LastName LIKE 'Gen%'"
    first, second, third = sf.query(soql), sf.query(soql), sf.query(soql)
    assert sf.query_more(third["nextRecordsUrl"], identifier_is_url=True)["records"]
    assert sf.query_more(second["nextRecordsUrl"], identifier_is_url=True)["records"]
    with pytest.raises(SalesforceMalformedRequest) as error:
        sf.query_more(first["nextRecordsUrl"], identifier_is_url=True)  # pushed out by the third cursor
    assert error_code(error.value) == "INVALID_QUERY_LOCATOR"
    with pytest.raises(SalesforceMalformedRequest):
        sf.query_more("01gHb0000000999AAA-2000", identifier_is_url=False)


# ---------------------------------------------------------------------------------------------- HTTP details
def test_routes_versions_and_unknown_resources(server: EmulatorServer) -> None:
    headers = {"Authorization": f"Bearer {Emulator.default_token}"}
    versions = requests.get(f"{server.url}/services/data/").json()
    assert {"label": "Winter '24", "url": "/services/data/v59.0", "version": "59.0"} in versions
    assert requests.get(f"{server.url}/services/data/v59.0/sobjects/Contact/describe/", headers=headers).ok
    missing = requests.get(f"{server.url}/services/data/v59.0/nothing/here", headers=headers)
    assert missing.status_code == 404 and missing.json()[0]["errorCode"] == "NOT_FOUND"
    old = requests.get(f"{server.url}/services/data/v20.0/limits", headers=headers)
    assert old.status_code == 404
    wrong = requests.put(f"{server.url}/services/data/v59.0/sobjects/Contact/{DANA}", headers=headers, json={})
    assert wrong.status_code == 405 and wrong.json()[0]["errorCode"] == "METHOD_NOT_ALLOWED"
    older = requests.patch(f"{server.url}/services/data/v45.0/sobjects/Task/External_Id__c/seed-survey-1",
                           headers=headers, json={"Subject": "v45 upsert"})
    assert older.status_code == 204  # before API 46 an upsert update answers 204


def test_load_rejects_data_the_schema_does_not_know() -> None:
    emulator = SalesforceEmulator()
    with pytest.raises(ValueError, match="Shoe_Size__c"):
        emulator.load({"Contact": [{"LastName": "X", "Shoe_Size__c": 42}]})
    with pytest.raises(ValueError, match="Widget__c"):
        emulator.load({"Widget__c": []})
    with pytest.raises(ValueError, match="key prefix"):
        emulator.load({"Contact": [{"Id": ACME, "LastName": "X"}]})
    with pytest.raises(ValueError, match="StageName 'Won' is not one of"):
        emulator.load({"Opportunity": [{"Name": "X", "StageName": "Won", "CloseDate": "2024-01-01"}]})
    with pytest.raises(ValueError, match="MasterRecordId"):
        emulator.load({"Opportunity": [{"Name": "X", "StageName": "Closed Won", "CloseDate": "2024-01-01",
                                        "MasterRecordId": WON}]})
    emulator.load({"User": [{"Username": "u@example.com", "LastName": "U", "MasterRecordId": None,
                             "IsDeleted": False}]})  # contract fields an object lacks are fine when empty
    assert {user["Username"] for user in emulator.records("User")} == {"u@example.com", "hub@sandbox.example"}
