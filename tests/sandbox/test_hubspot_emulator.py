"""The HubSpot emulator driven by the real `hubspot-api-client` 12 over loopback HTTP.

Responses are also checked against HubSpot's published OpenAPI specs (vendored in tests/sandbox/specs/hubspot;
HUBSPOT_SPEC_DIR may point at another copy). Three documented relaxations are applied to those specs
because HubSpot's live API returns values the generated specs do not allow: `null` property values on
records, `label: null` on unlabelled association types, and a string `subCategory` on batch errors.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import ApiException as ContactsApiException
from hubspot.crm.contacts import (
    BatchInputSimplePublicObjectBatchInputUpsert,
    BatchReadInputSimplePublicObjectId,
    PublicObjectSearchRequest,
    SimplePublicObjectBatchInputUpsert,
    SimplePublicObjectId,
    SimplePublicObjectInput,
    SimplePublicObjectInputForCreate,
)
from hubspot.crm.contacts.exceptions import NotFoundException, UnauthorizedException
from hubspot.crm.objects import ApiException as ObjectsApiException
from hubspot.crm.objects import BatchInputSimplePublicObjectBatchInputForCreate
from hubspot.crm.objects.notes import ApiException as NotesApiException
from openapi_schema_validator import OAS30Validator

from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.common.server import EmulatorServer
from sandbox.hubspot import HubSpotData, HubSpotEmulator
from sandbox.hubspot.util import iso_ms

# HubSpot's own specs, vendored in the project (specs/hubspot/README.md names their source)
SPEC_DIR = Path(os.environ.get("HUBSPOT_SPEC_DIR") or Path(__file__).resolve().parent / "specs" / "hubspot")
ISO_MS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
T0 = 1_704_067_200_000                       # 2024-01-01T00:00:00Z
HOUR = 3_600_000
CONTACTS = 130                               # ids 101..230; 231 is archived
NOW = 1_750_000_000.0                        # the fake wall clock of the shared emulator (2025-06-15)


# ----------------------------------------------------------------------------------------------- the world
def contact_times(i: int) -> tuple[int, int]:
    """Created in id order; modified in a different order (a permutation), so sorts are observable."""
    return T0 + i * HOUR, T0 + 200 * HOUR + ((i * 37) % CONTACTS) * HOUR


def record(id_: int, props: dict[str, Any], created: int, updated: int, archived: bool = False) -> dict:
    return {"id": str(id_), "properties": props, "createdAt": iso_ms(created), "updatedAt": iso_ms(updated),
            "archived": archived}


def world() -> HubSpotData:
    stages = ("subscriber", "lead", "customer")
    contacts = []
    for i in range(CONTACTS):
        created, updated = contact_times(i)
        props = {"email": f"c{101 + i}@example.com", "firstname": f"First{i}", "lastname": "Cohen" if i % 2
                 else "Levi", "lifecyclestage": stages[i % 3], "createdate": iso_ms(created),
                 "lastmodifieddate": iso_ms(updated)}
        if i % 4 == 0:
            props["phone"] = f"+97250000{i:04d}"
        contacts.append(record(101 + i, props, created, updated))
    contacts.append(record(231, {"email": "gone@example.com", "firstname": "Gone"}, T0, T0 + HOUR, archived=True))
    t = T0 + 500 * HOUR
    objects = {
        "contacts": contacts,
        "companies": [record(301, {"name": "Acme", "domain": "acme.io"}, t, t),
                      record(302, {"name": "Globex", "domain": "globex.io"}, t, t + 1)],
        "deals": [record(401, {"dealname": "Small", "amount": "9", "pipeline": "default", "dealstage": "closedwon",
                               "hs_is_closed": "true", "hs_is_closed_won": "true"}, t, t),
                  record(402, {"dealname": "Medium", "amount": "10", "pipeline": "default",
                               "dealstage": "appointmentscheduled"}, t, t + 1),
                  record(403, {"dealname": "Large", "amount": "1500.50", "pipeline": "default",
                               "dealstage": "closedlost"}, t, t + 2)],
        "tickets": [record(501, {"subject": "Login broken", "hs_pipeline": "support", "hs_pipeline_stage": "open",
                                 "hs_ticket_priority": "HIGH"}, t, t),
                    record(502, {"subject": "Invoice", "hs_pipeline": "support", "hs_pipeline_stage": "closed",
                                 "hs_ticket_priority": "LOW"}, t, t + 1)],
        "notes": [record(601, {"hs_timestamp": iso_ms(t), "hs_note_body": "<p>hello</p>"}, t, t)],
        "calls": [record(701, {"hs_timestamp": iso_ms(t), "hs_call_direction": "INBOUND",
                               "hs_call_status": "COMPLETED"}, t, t)],
        "meetings": [record(801, {"hs_timestamp": iso_ms(t), "hs_meeting_outcome": "COMPLETED"}, t, t)],
        "tasks": [record(901, {"hs_timestamp": iso_ms(t), "hs_task_type": "CALL"}, t, t)],
        "emails": [record(1001, {"hs_timestamp": iso_ms(t), "hs_email_direction": "INCOMING_EMAIL"}, t, t)],
    }
    associations = [("contacts", "101", "deals", "401", 4), ("contacts", "101", "companies", "301", 279),
                    ("contacts", "101", "companies", "301", 1), ("deals", "401", "companies", "301", 341),
                    ("notes", "601", "contacts", "101", 202), ("tickets", "501", "contacts", "102", 16),
                    ("calls", "701", "contacts", "101", 194)]
    owners = [{"id": str(10 + n), "email": f"owner{n}@example.com", "firstName": f"Owner{n}", "lastName": "X",
               "userId": 900 + n, "createdAt": iso_ms(T0), "updatedAt": iso_ms(T0), "archived": n == 3}
              for n in range(4)]
    pipelines = {"tickets": [{"id": "support", "label": "Support", "displayOrder": 0, "stages": [
        {"id": "open", "label": "Open", "displayOrder": 0, "metadata": {"ticketState": "OPEN"}},
        {"id": "closed", "label": "Closed", "displayOrder": 1, "metadata": {"ticketState": "CLOSED"}}]}]}
    types = ("SENT", "DELIVERED", "OPEN", "CLICK", "BOUNCE")
    events = [{"id": f"ev-{n:03d}", "created": T0 + (n // 2) * 1000, "type": types[n % 5],
               "recipient": f"c{101 + n % 5}@example.com", "portalId": 62515, "appId": 113,
               "emailCampaignId": 7 if n % 2 else 8, "sentBy": {"id": f"s-{n}", "created": T0}}
              for n in range(25)]
    return HubSpotData(objects=objects, associations=associations, owners=owners, pipelines=pipelines,
                       email_events=events)


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ----------------------------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[HubSpotEmulator, str, FakeClock]]:
    emulator = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emulator.load(world())
    clock = FakeClock(NOW)
    emulator.clock = clock
    with EmulatorServer(emulator) as server:
        yield emulator, server.url, clock


@pytest.fixture(scope="module")
def pristine() -> Iterator[tuple[HubSpotEmulator, str]]:
    """An emulator no test writes to, for tests that assert on the seeded world exactly."""
    emulator = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emulator.load(world())
    with EmulatorServer(emulator) as server:
        yield emulator, server.url


@pytest.fixture
def reader(pristine: tuple[HubSpotEmulator, str]) -> HubSpot:
    return hubspot(pristine[1])


@pytest.fixture
def emu(shared: tuple[HubSpotEmulator, str, FakeClock]) -> HubSpotEmulator:
    return shared[0]


@pytest.fixture
def url(shared: tuple[HubSpotEmulator, str, FakeClock]) -> str:
    return shared[1]


@pytest.fixture
def clock(shared: tuple[HubSpotEmulator, str, FakeClock]) -> FakeClock:
    return shared[2]


@pytest.fixture
def client(url: str) -> HubSpot:
    return hubspot(url)


@pytest.fixture
def fresh() -> Iterator[Callable[..., tuple[HubSpotEmulator, str]]]:
    """Starts a separate emulator (own store, faults and limits) for tests that change global state."""
    servers: list[EmulatorServer] = []

    def start(data: HubSpotData | None = None, **kwargs: Any) -> tuple[HubSpotEmulator, str]:
        emulator = HubSpotEmulator(**{"rate_limit_per_10s": None, "search_per_second": None, **kwargs})
        emulator.load(data if data is not None else world())
        server = EmulatorServer(emulator).start()
        servers.append(server)
        return emulator, server.url

    yield start
    for server in servers:
        server.stop()


def hubspot(url: str, token: str = "sandbox-token") -> HubSpot:
    return HubSpot(access_token=token, host=url, base_url=url)


def raw(response: Any) -> Any:
    """The JSON body of a `_preload_content=False` call of the generated client."""
    return orjson.loads(response.data)


def http(url: str, token: str = "sandbox-token") -> httpx.Client:
    return httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"})


def unique_email() -> str:
    return f"t-{uuid.uuid4().hex[:12]}@example.com"


# ----------------------------------------------------------------------------------------------- spec checks
@functools.cache
def _spec(name: str) -> dict[str, Any] | None:
    path = SPEC_DIR / name
    if not path.exists():
        return None
    spec = json.loads(path.read_text())
    schemas = spec["components"]["schemas"]
    for schema_name, schema in schemas.items():
        props = schema.get("properties", {})
        if schema_name.startswith("SimplePublic") and "additionalProperties" in props.get("properties", {}):
            props["properties"] = copy.deepcopy(props["properties"])
            props["properties"]["additionalProperties"]["nullable"] = True
    if "AssociationSpecWithLabel" in schemas:
        schemas["AssociationSpecWithLabel"]["properties"]["label"]["nullable"] = True
    if "StandardError" in schemas:
        schemas["StandardError"]["properties"]["subCategory"] = {"type": "string"}
    return spec


def assert_matches_spec(body: Any, spec_name: str, path: str, method: str, status: int | str) -> None:
    """`status` is the HTTP status or "default" (HubSpot's error envelope). Without the specs (see
    test_specs_are_available) only the behaviour assertions of the calling test run."""
    spec = _spec(spec_name)
    if spec is None:
        return
    response = spec["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    content = response["content"]
    schema = (content.get("application/json") or content["*/*"])["schema"]
    validator = OAS30Validator({**schema, "components": spec["components"]},
                               format_checker=OAS30Validator.FORMAT_CHECKER)
    problems = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(body)]
    assert not problems, f"{method.upper()} {path} {status} does not match {spec_name}: {problems[:5]}"


def test_specs_are_available() -> None:
    if _spec("contacts.json") is None:
        message = f"HubSpot OpenAPI specs not found in {SPEC_DIR} (set HUBSPOT_SPEC_DIR); responses were not " \
                  "validated against them"
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)


def test_spec_check_rejects_a_wrong_shape() -> None:
    if _spec("contacts.json") is None:
        pytest.skip(f"HubSpot OpenAPI specs not found in {SPEC_DIR}")
    with pytest.raises(AssertionError, match="does not match"):
        assert_matches_spec({"results": [{"id": 101, "properties": {}}]}, "contacts.json", "/crm/v3/objects/contacts",
                            "get", 200)


# ----------------------------------------------------------------------------------------------- lists
def test_get_all_pages_to_the_end(reader: HubSpot, pristine: tuple[HubSpotEmulator, str]) -> None:
    pristine[0].requests.reset()
    contacts = reader.crm.contacts.get_all(properties=["email", "lifecyclestage"])
    ids = [int(c.id) for c in contacts]
    assert ids[:CONTACTS] == list(range(101, 101 + CONTACTS))       # id order, archived 231 absent
    assert 231 not in ids
    assert all(c.properties["email"] and "lifecyclestage" in c.properties for c in contacts)
    assert pristine[0].requests.counts["GET /crm/v3/objects/contacts"] == 2  # 100 + the rest


def test_get_page_repeats_properties_on_every_page_and_link_omits_them(reader: HubSpot,
                                                                       pristine: tuple[HubSpotEmulator, str]) -> None:
    after, seen, pages = None, [], 0
    while True:
        page = reader.crm.contacts.basic_api.get_page(limit=40, after=after, properties=["lifecyclestage", "nope"],
                                                       archived=False)
        pages += 1
        for contact in page.results:
            assert set(contact.properties) == {"createdate", "hs_object_id", "lastmodifieddate", "lifecyclestage"}
            seen.append(contact.id)
        if page.paging is None:
            break
        assert "lifecyclestage" not in page.paging.next.link
        link = page.paging.next.link
        after = page.paging.next.after
    assert pages == 4 and len(seen) == len(set(seen)) == CONTACTS
    url = pristine[1]
    with http(url) as h:   # following the link as given returns the default properties (hubspot-api-python#248)
        linked = h.get(link.replace(url, "")).json()
    assert set(linked["results"][0]["properties"]) == {"createdate", "email", "firstname", "hs_object_id",
                                                     "lastmodifieddate", "lastname"}


def test_list_shape_defaults_archived_and_spec(reader: HubSpot, pristine: tuple[HubSpotEmulator, str]) -> None:
    url = pristine[1]
    body = raw(reader.crm.contacts.basic_api.get_page(limit=3, associations=["deals", "companies"],
                                                       _preload_content=False))
    assert_matches_spec(body, "contacts.json", "/crm/v3/objects/contacts", "get", 200)
    first = body["results"][0]
    assert first["id"] == "101" and first["archived"] is False
    assert set(first["properties"]) == {"createdate", "email", "firstname", "hs_object_id", "lastmodifieddate",
                                        "lastname"}
    assert ISO_MS.fullmatch(first["createdAt"]) and ISO_MS.fullmatch(first["updatedAt"])
    assert first["associations"]["deals"]["results"] == [{"id": "401", "type": "contact_to_deal"}]
    assert {a["type"] for a in first["associations"]["companies"]["results"]} == {
        "contact_to_company", "contact_to_company_unlabeled"}
    assert body["paging"]["next"]["link"].startswith(f"{url}/crm/v3/objects/contacts?after=")
    archived = raw(reader.crm.contacts.basic_api.get_page(archived=True, _preload_content=False))
    assert [r["id"] for r in archived["results"]] == ["231"] and archived["results"][0]["archived"] is True
    assert "paging" not in archived
    with http(url) as h:
        response = h.get("/crm/v3/objects/contacts", params={"limit": "500", "archived": "FALSE"})
        assert response.headers["content-type"] == "application/json;charset=utf-8"
        assert len(response.json()["results"]) == 100            # limit is capped at 100
        assert h.get("/crm/v3/objects/contacts?properties=email,phone&limit=1").json()["results"][0][
            "properties"]["phone"] == "+972500000000"            # comma list; values are strings
        assert h.get("/crm/v3/objects/contacts?after=%%%").status_code == 400


def test_get_by_id_email_and_404(reader: HubSpot) -> None:
    body = raw(reader.crm.contacts.basic_api.get_by_id("101", properties=["email", "phone"],
                                                        associations=["deals"], _preload_content=False))
    assert_matches_spec(body, "contacts.json", "/crm/v3/objects/contacts/{contactId}", "get", 200)
    assert body["properties"]["phone"] == "+972500000000"
    by_email = reader.crm.contacts.basic_api.get_by_id("c105@example.com", id_property="email")
    assert by_email.id == "105"
    with pytest.raises(NotFoundException) as missing:
        reader.crm.contacts.basic_api.get_by_id("999999")
    error = json.loads(missing.value.body)
    assert_matches_spec(error, "contacts.json", "/crm/v3/objects/contacts/{contactId}", "get", "default")
    assert error["status"] == "error" and error["category"] == "OBJECT_NOT_FOUND"
    uuid.UUID(error["correlationId"])
    with pytest.raises(NotFoundException):
        reader.crm.contacts.basic_api.get_by_id("231")                     # archived
    assert reader.crm.contacts.basic_api.get_by_id("231", archived=True).archived is True
    with pytest.raises(ContactsApiException) as bad:
        reader.crm.contacts.basic_api.get_by_id("First1", id_property="firstname")
    assert bad.value.status == 400


def test_other_type_spellings(url: str) -> None:
    with http(url) as h:
        assert h.get("/crm/v3/objects/0-3/401").json()["properties"]["dealname"] == "Small"
        assert h.get("/crm/v3/objects/deal/402").json()["id"] == "402"
        unknown = h.get("/crm/v3/objects/widgets")
        assert unknown.status_code == 400 and "widgets" in unknown.json()["message"]


# ----------------------------------------------------------------------------------------------- writes
def test_create_update_archive_contact(client: HubSpot, emu: HubSpotEmulator, clock: FakeClock) -> None:
    email = unique_email()
    created = client.crm.contacts.basic_api.create(
        SimplePublicObjectInputForCreate(properties={"email": email.upper(), "firstname": "Dana"}))
    assert created.properties["email"] == email                        # HubSpot lowercases emails
    assert created.properties["hs_object_id"] == created.id
    props_created = created.properties["createdate"]
    assert props_created == created.properties["lastmodifieddate"] == iso_ms(int(clock.now * 1000))
    with pytest.raises(ContactsApiException) as dup:
        client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email}))
    assert dup.value.status == 409
    body = json.loads(dup.value.body)
    assert body["category"] == "CONFLICT" and body["message"] == f"Contact already exists. Existing ID: {created.id}"

    clock.advance(5)
    same = client.crm.contacts.basic_api.update(created.id, SimplePublicObjectInput(properties={"firstname": "Dana"}))
    assert same.updated_at == created.updated_at                      # no value changed: updatedAt stays
    changed = client.crm.contacts.basic_api.update(created.id, SimplePublicObjectInput(
        properties={"lastname": "Cohen", "lifecyclestage": "customer"}))
    assert changed.updated_at > created.updated_at
    again = client.crm.contacts.basic_api.get_by_id(created.id, properties=["lastmodifieddate", "lastname"])
    assert again.properties["lastmodifieddate"] == iso_ms(int(clock.now * 1000))
    assert again.properties["lastname"] == "Cohen"

    for bad_props, code in (({"email": "not-an-email"}, "INVALID_EMAIL"), ({"no_such_prop": "x"},
                            "PROPERTY_DOESNT_EXIST"), ({"lifecyclestage": "astronaut"}, "INVALID_OPTION"),
                            ({"lastmodifieddate": "1"}, "READ_ONLY_VALUE")):
        with pytest.raises(ContactsApiException) as invalid:
            client.crm.contacts.basic_api.update(created.id, SimplePublicObjectInput(properties=bad_props))
        error = json.loads(invalid.value.body)
        assert invalid.value.status == 400 and error["category"] == "VALIDATION_ERROR"
        assert error["errors"][0]["code"] == code and error["message"].startswith("Property values were not valid")

    client.crm.contacts.basic_api.archive(created.id)
    with pytest.raises(NotFoundException):
        client.crm.contacts.basic_api.get_by_id(created.id)
    writes = {r["id"]: r for r in emu.dump_writes()["objects"]["contacts"]}
    assert writes[created.id]["writes"] == ["created", "archived"] and writes[created.id]["archived"] is True
    assert "101" not in writes                                          # seeded records are not in the dump


def test_engagement_rules(client: HubSpot, url: str) -> None:
    notes = client.crm.objects.notes.basic_api
    with pytest.raises(NotesApiException) as missing:
        notes.create(SimplePublicObjectInputForCreate(properties={"hs_note_body": "x"}))
    assert missing.value.status == 400 and "hs_timestamp" in json.loads(missing.value.body)["message"]
    for type_id in (999, 214):   # unknown, and note→deal used towards a contact id that is no deal
        with pytest.raises(NotesApiException) as bad_type:
            notes.create(SimplePublicObjectInputForCreate(
                properties={"hs_timestamp": "1706842000000"},
                associations=[{"to": {"id": "101"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                              "associationTypeId": type_id}]}]))
        assert bad_type.value.status == 400
    with pytest.raises(NotesApiException) as too_long:
        notes.create(SimplePublicObjectInputForCreate(properties={"hs_timestamp": "1706842000000",
                                                                  "hs_note_body": "x" * 65_537}))
    assert too_long.value.status == 400
    note = notes.create(SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "1706842000123", "hs_note_body": "x" * 65_536},
        associations=[{"to": {"id": "103"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                      "associationTypeId": 202}]}]))
    assert note.properties["hs_timestamp"] == "2024-02-02T02:46:40.123Z"   # epoch millis → ISO
    assert set(note.properties) >= {"hs_createdate", "hs_lastmodifieddate", "hs_object_id"}
    back = client.crm.associations.v4.basic_api.get_page("contacts", "103", "notes")
    assert [(r.to_object_id, r.association_types[0].type_id) for r in back.results] == [(note.id, 201)]


def test_deal_and_ticket_calculated_properties(client: HubSpot) -> None:
    deal = client.crm.deals.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"dealname": "Calc", "pipeline": "default", "dealstage": "closedwon", "amount": "12"}))
    read = client.crm.deals.basic_api.get_by_id(deal.id, properties=["hs_is_closed", "hs_is_closed_won"])
    assert read.properties["hs_is_closed"] == "true" and read.properties["hs_is_closed_won"] == "true"
    with pytest.raises(ObjectsApiException):
        client.crm.objects.basic_api.update("deals", deal.id, SimplePublicObjectInput(properties={"dealstage": "x"}))
    ticket = client.crm.tickets.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"subject": "S", "hs_pipeline": "support", "hs_pipeline_stage": "closed"}))
    assert client.crm.tickets.basic_api.get_by_id(ticket.id, properties=["closed_date"]).properties["closed_date"]


# ----------------------------------------------------------------------------------------------- search
def search_contacts(client: HubSpot, filters: list[dict], **kwargs: Any) -> Any:
    request = {"filterGroups": [{"filters": filters}] if filters else [], "limit": 200, **kwargs}
    return client.crm.objects.search_api.do_search("contacts", public_object_search_request=request)


def expected_window(start_ms: int) -> list[str]:
    rows = [(contact_times(i)[1], 101 + i) for i in range(CONTACTS) if contact_times(i)[1] >= start_ms]
    return [str(id_) for _, id_ in sorted(rows)]


def test_search_window_ascending_with_paging(reader: HubSpot) -> None:
    start = T0 + 230 * HOUR
    expected = expected_window(start)
    for value in (str(start), iso_ms(start), "2024-01-10T14:00:00+00:00"):
        after, ids, totals = "0", [], set()
        while after is not None:
            page = reader.crm.contacts.search_api.do_search(public_object_search_request=PublicObjectSearchRequest(
                filter_groups=[{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": value}]}],
                sorts=[{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}],
                properties=["email", "lastmodifieddate"], limit=30, after=after))
            totals.add(page.total)
            ids += [r.id for r in page.results]
            after = page.paging.next.after if page.paging else None
        assert ids == expected and totals == {len(expected)}
    newest_first = reader.crm.contacts.search_api.do_search(public_object_search_request={
        "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GT", "value": str(start)}]}],
        "sorts": [{"propertyName": "lastmodifieddate", "direction": "DESCENDING"}], "limit": 200})
    assert [r.id for r in newest_first.results] == expected[::-1][:-1]       # GT excludes the window start
    first = raw(reader.crm.contacts.search_api.do_search(
        public_object_search_request={"filterGroups": [{"filters": [
            {"propertyName": "lastmodifieddate", "operator": "GTE", "value": str(start)}]}], "limit": 2,
            "properties": ["email"]}, _preload_content=False))
    assert_matches_spec(first, "contacts.json", "/crm/v3/objects/contacts/search", "post", 200)
    assert first["paging"]["next"]["after"] == "2"


def test_search_operators(reader: HubSpot) -> None:
    def ids(*filters: dict, groups: list[list[dict]] | None = None, **kw: Any) -> list[str]:
        request = {"filterGroups": [{"filters": g} for g in (groups or [list(filters)])], "limit": 200, **kw}
        return [r.id for r in reader.crm.objects.search_api.do_search(
            "contacts", public_object_search_request=request).results]

    everyone = [str(i) for i in range(101, 101 + CONTACTS)]
    assert ids({"propertyName": "email", "operator": "EQ", "value": "C105@Example.com"}) == ["105"]
    assert ids({"propertyName": "hs_object_id", "operator": "IN", "values": ["104", "102", "231"]}) == ["102", "104"]
    phones = ids({"propertyName": "phone", "operator": "HAS_PROPERTY"})
    assert phones == [str(101 + i) for i in range(0, CONTACTS, 4)]
    assert len(ids({"propertyName": "phone", "operator": "NOT_HAS_PROPERTY"})) == CONTACTS - len(phones)
    assert ids({"propertyName": "lifecyclestage", "operator": "IN", "values": ["customer"]}) == [
        str(101 + i) for i in range(2, CONTACTS, 3)]
    assert len(ids({"propertyName": "lifecyclestage", "operator": "NOT_IN", "values": ["customer", "lead"]})) == 44
    assert ids({"propertyName": "lastname", "operator": "NEQ", "value": "cohen"}) == everyone[::2]
    assert ids({"propertyName": "email", "operator": "CONTAINS_TOKEN", "value": "*@example.com"}) == everyone
    assert ids({"propertyName": "firstname", "operator": "CONTAINS_TOKEN", "value": "first7"}) == ["108"]
    assert len(ids({"propertyName": "firstname", "operator": "NOT_CONTAINS_TOKEN", "value": "first7"})) == 129
    window = ids({"propertyName": "createdate", "operator": "BETWEEN", "value": str(T0 + HOUR),
                  "highValue": iso_ms(T0 + 3 * HOUR)})
    assert window == ["102", "103", "104"]
    assert ids(groups=[[{"propertyName": "email", "operator": "EQ", "value": "c101@example.com"}],
                       [{"propertyName": "hs_object_id", "operator": "LT", "value": "103"},
                        {"propertyName": "lastname", "operator": "EQ", "value": "Cohen"}]]) == ["101", "102"]
    assert ids({"propertyName": "hs_object_id", "operator": "LTE", "value": "103"},
               sorts=[{"propertyName": "firstname", "direction": "DESCENDING"}]) == ["103", "102", "101"]
    assert ids({"propertyName": "associations.deal", "operator": "EQ", "value": "401"}) == ["101"]
    assert ids(query="first12") == ["113", *map(str, range(221, 231))]     # prefix match: First12, First120…
    assert ids(query="first12 levi") == ["113", *map(str, range(221, 231, 2))]
    deals = reader.crm.objects.search_api.do_search("deals", public_object_search_request={
        "filterGroups": [{"filters": [{"propertyName": "amount", "operator": "GT", "value": "9.5"}]}],
        "sorts": ["-amount"]})
    assert [d.id for d in deals.results if int(d.id) < 500] == ["403", "402"]    # numeric, not "10" < "9"


def test_search_request_limits(client: HubSpot, emu: HubSpotEmulator) -> None:
    def status(request: dict) -> int:
        try:
            client.crm.objects.search_api.do_search("contacts", public_object_search_request=request)
        except ObjectsApiException as error:
            assert json.loads(error.body)["category"] == "VALIDATION_ERROR"
            return error.status
        return 200

    equal = {"propertyName": "email", "operator": "EQ", "value": "x@example.com"}
    assert status({"limit": 201}) == 400
    assert status({"limit": 200}) == 200
    assert status({"filterGroups": [{"filters": [equal]}] * 6}) == 400
    assert status({"filterGroups": [{"filters": [equal] * 11}]}) == 400
    assert status({"filterGroups": [{"filters": [equal] * 10}] * 3}) == 400          # 30 > 25 in total
    assert status({"filterGroups": [{"filters": [equal] * 5}] * 5}) == 200
    assert status({"filterGroups": [{"filters": [{"propertyName": "nope", "operator": "EQ", "value": "1"}]}]}) == 400
    assert status({"filterGroups": [{"filters": [{"propertyName": "email", "operator": "LIKE", "value": "1"}]}]}) == 400
    emu.search_limits.max_groups = 6
    try:
        assert status({"filterGroups": [{"filters": [equal]}] * 6}) == 200
    finally:
        emu.search_limits.max_groups = 5


def test_search_result_cap_at_ten_thousand(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    stamp = iso_ms(T0)
    contacts = [{"id": str(1000 + i), "properties": {"email": f"bulk{i}@example.com"}, "createdAt": stamp,
                 "updatedAt": iso_ms(T0 + i), "archived": False} for i in range(10_200)]
    _, base = fresh(HubSpotData(objects={"contacts": contacts}))
    client = hubspot(base)

    def page(after: int, limit: int) -> Any:
        return client.crm.contacts.search_api.do_search(public_object_search_request={
            "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], "limit": limit,
            "after": str(after)})

    last_allowed = page(9_800, 200)
    assert last_allowed.total == 10_200 and last_allowed.results[-1].id == str(1000 + 9_999)
    assert last_allowed.paging.next.after == "10000"        # HubSpot still offers the page it will refuse
    for after, limit in ((9_900, 200), (10_000, 10), (9_999, 2)):
        with pytest.raises(ContactsApiException) as capped:
            page(after, limit)
        body = json.loads(capped.value.body)
        assert capped.value.status == 400 and body["category"] == "VALIDATION_ERROR" and "10000" in body["message"]
        uuid.UUID(body["correlationId"])


def test_search_index_lag(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    emulator, base = fresh(search_index_lag_seconds=30)
    ticks = FakeClock(1000.0)
    emulator.monotonic = ticks
    emulator.store.monotonic = ticks
    client = hubspot(base)
    email = unique_email()
    client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": email}))
    request = {"filterGroups": [{"filters": [{"propertyName": "email", "operator": "EQ", "value": email}]}]}
    assert client.crm.contacts.search_api.do_search(public_object_search_request=request).total == 0
    assert search_contacts(client, [{"propertyName": "email", "operator": "EQ", "value": "c101@example.com"}]
                           ).total == 1                                # seeded records are indexed
    ticks.advance(31)
    assert client.crm.contacts.search_api.do_search(public_object_search_request=request).total == 1


# ----------------------------------------------------------------------------------------------- batch
def test_batch_create_update_archive_objects(client: HubSpot, emu: HubSpotEmulator) -> None:
    batch = client.crm.objects.notes.batch_api
    ok = batch.create(BatchInputSimplePublicObjectBatchInputForCreate(inputs=[
        {"properties": {"hs_timestamp": "1706842000000", "hs_note_body": f"n{n}"}, "associations": []}
        for n in range(2)]))
    assert ok.status == "COMPLETE" and len(ok.results) == 2 and not getattr(ok, "errors", None)
    with http(emu.base_url) as h:
        response = h.post("/crm/v3/objects/notes/batch/create", json={"inputs": [
            {"properties": {"hs_timestamp": "1706842000000"}}, {"properties": {"hs_note_body": "no timestamp"}}]})
        assert response.status_code == 207
        partial = response.json()
        assert_matches_spec(partial, "notes.json", "/crm/v3/objects/notes/batch/create", "post", 207)
        assert partial["numErrors"] == 1 and len(partial["results"]) == 1
        assert partial["errors"][0]["category"] == "VALIDATION_ERROR"
        created = h.post("/crm/v3/objects/notes/batch/create", json={"inputs": [
            {"properties": {"hs_timestamp": "1706842000000"}}]})
        assert created.status_code == 201
        assert_matches_spec(created.json(), "notes.json", "/crm/v3/objects/notes/batch/create", "post", 201)
        too_many = h.post("/crm/v3/objects/notes/batch/create", json={"inputs": [{"properties": {}}] * 101})
        assert too_many.status_code == 400

        ids = [r.id for r in ok.results]
        updated = h.post("/crm/v3/objects/notes/batch/update", json={"inputs": [
            {"id": ids[0], "properties": {"hs_note_body": "changed"}},
            {"id": "987654", "properties": {"hs_note_body": "x"}}]})
        assert updated.status_code == 207
        body = updated.json()
        assert [r["properties"]["hs_note_body"] for r in body["results"]] == ["changed"]
        assert body["errors"][0]["category"] == "OBJECT_NOT_FOUND" and body["errors"][0]["context"]["ids"] == [
            "987654"]
        duplicate_ids = h.post("/crm/v3/objects/notes/batch/update", json={"inputs": [
            {"id": ids[0], "properties": {}}, {"id": ids[0], "properties": {}}]})
        assert duplicate_ids.status_code == 400

        archived = h.post("/crm/v3/objects/notes/batch/archive", json={"inputs": [{"id": i} for i in ids]})
        assert archived.status_code == 204 and archived.content == b""
    assert client.crm.objects.notes.basic_api.get_page(archived=True).results[-1].id == ids[-1]


def test_batch_read(reader: HubSpot) -> None:
    result = raw(reader.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id="102"), SimplePublicObjectId(id="101")], properties=["email"],
        properties_with_history=["lifecyclestage"]), archived=False, _preload_content=False))
    assert_matches_spec(result, "contacts.json", "/crm/v3/objects/contacts/batch/read", "post", 200)
    assert [r["id"] for r in result["results"]] == ["102", "101"]
    history = result["results"][0]["propertiesWithHistory"]["lifecyclestage"]
    assert history[0]["value"] == "lead" and ISO_MS.fullmatch(history[0]["timestamp"])
    partial = raw(reader.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
        inputs=[SimplePublicObjectId(id="c103@example.com"), SimplePublicObjectId(id="nobody@example.com")],
        properties=["email"], properties_with_history=[], id_property="email"), _preload_content=False))
    assert_matches_spec(partial, "contacts.json", "/crm/v3/objects/contacts/batch/read", "post", 207)
    assert [r["id"] for r in partial["results"]] == ["103"]
    assert partial["errors"][0]["category"] == "OBJECT_NOT_FOUND"
    assert partial["errors"][0]["context"]["ids"] == ["nobody@example.com"]


def test_batch_upsert(client: HubSpot, url: str) -> None:
    fresh_email = unique_email()
    inputs = [SimplePublicObjectBatchInputUpsert(id="c104@example.com", id_property="email",
                                                 properties={"firstname": "Upserted"}),
              SimplePublicObjectBatchInputUpsert(id=fresh_email, id_property="email", properties={"lastname": "New"})]
    result = raw(client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs),
                                                      _preload_content=False))
    assert_matches_spec(result, "contacts.json", "/crm/v3/objects/contacts/batch/upsert", "post", 200)
    by_email = {r["properties"].get("email") or r["id"]: r for r in result["results"]}
    assert [r["new"] for r in result["results"]] == [False, True]
    assert result["results"][0]["id"] == "104" and result["results"][0]["properties"]["firstname"] == "Upserted"
    assert by_email[fresh_email]["properties"]["lastname"] == "New"
    repeat = client.crm.contacts.batch_api.upsert(BatchInputSimplePublicObjectBatchInputUpsert(inputs=inputs))
    assert [r.new for r in repeat.results] == [False, False]
    assert repeat.results[0].updated_at == client.crm.contacts.basic_api.get_by_id("104").updated_at
    with http(url) as h:
        response = h.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [
            {"idProperty": "email", "id": "c105@example.com", "properties": {"lastname": "Ok"}},
            {"idProperty": "email", "id": "bad@", "properties": {"firstname": "A"}}]})
        assert response.status_code == 207
        body = response.json()
        assert_matches_spec(body, "contacts.json", "/crm/v3/objects/contacts/batch/upsert", "post", 207)
        assert body["numErrors"] == 1 and body["errors"][0]["context"]["ids"] == ["bad@"]
        assert body["errors"][0]["category"] == "VALIDATION_ERROR"
        not_unique = h.post("/crm/v3/objects/contacts/batch/upsert", json={"inputs": [
            {"idProperty": "firstname", "id": "First1", "properties": {}}]})
        assert not_unique.status_code == 400 and not_unique.json()["category"] == "VALIDATION_ERROR"
        conflict = h.post("/crm/v3/objects/contacts/batch/create", json={"inputs": [
            {"properties": {"email": unique_email()}}, {"properties": {"email": "c106@example.com"}}]})
        assert conflict.status_code == 409 and conflict.json()["message"].endswith("Existing ID: 106")


# ----------------------------------------------------------------------------------------------- associations
def test_associations_v4(client: HubSpot, url: str) -> None:
    v4 = client.crm.associations.v4
    read = raw(v4.batch_api.get_page("contacts", "companies", {"inputs": [{"id": "101"}, {"id": "999999"}]},
                                     _preload_content=False))
    assert_matches_spec(read, "associations.json", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
                        "post", 207)
    assert read["results"] == [{"from": {"id": "101"}, "to": [{"toObjectId": "301", "associationTypes": [
        {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
        {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]}]}]
    assert read["errors"][0]["context"]["ids"] == ["999999"]

    created = raw(v4.batch_api.create("notes", "contacts", {"inputs": [
        {"from": {"id": "601"}, "to": {"id": str(i)}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                                "associationTypeId": 202}]} for i in (110, 111)]},
        _preload_content=False))
    assert_matches_spec(created, "associations.json",
                        "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/create", "post", 201)
    assert created["results"][0]["fromObjectTypeId"] == "0-46" and created["results"][0]["toObjectTypeId"] == "0-1"
    back = raw(v4.batch_api.get_page("contacts", "notes", {"inputs": [{"id": "110"}, {"id": "111"}]},
                                     _preload_content=False))
    assert_matches_spec(back, "associations.json", "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch/read",
                        "post", 200)
    assert [(r["from"]["id"], r["to"][0]["associationTypes"][0]["typeId"]) for r in back["results"]] == [
        ("110", 201), ("111", 201)]

    default = raw(v4.basic_api.create_default("deals", "402", "contacts", "112", _preload_content=False))
    assert_matches_spec(default, "associations.json",
                        "/crm/v4/objects/{fromObjectType}/{fromObjectId}/associations/default/{toObjectType}/"
                        "{toObjectId}", "put", 200)
    assert {r["associationSpec"]["associationTypeId"] for r in default["results"]} == {3, 4}
    labelled = raw(v4.basic_api.create("contacts", "112", "companies", "302", [
        {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 1}], _preload_content=False))
    assert labelled["labels"] == ["Primary"] and labelled["toObjectId"] == "302"
    with pytest.raises(Exception) as wrong:
        v4.basic_api.create("contacts", "112", "companies", "302", [
            {"associationCategory": "HUBSPOT_DEFINED", "associationTypeId": 4}])
    assert wrong.value.status == 400

    for n in (113, 114, 115):
        v4.basic_api.create_default("deals", "402", "contacts", str(n))
    first = v4.basic_api.get_page("deals", "402", "contacts", limit=2)
    rest = v4.basic_api.get_page("deals", "402", "contacts", limit=2, after=first.paging.next.after)
    assert [r.to_object_id for r in first.results + rest.results] == ["112", "113", "114", "115"]
    v4.basic_api.archive("contacts", "113", "deals", "402")
    assert "113" not in [r.to_object_id for r in v4.basic_api.get_page("deals", "402", "contacts").results]
    with http(url) as h:
        h.post("/crm/v4/associations/deals/contacts/batch/archive", json={"inputs": [
            {"from": {"id": "402"}, "to": [{"id": "114"}, {"id": "115"}]}]})
        assert [r["toObjectId"] for r in h.get("/crm/v4/objects/deals/402/associations/contacts").json()[
            "results"]] == ["112"]


# ----------------------------------------------------------------------------------------------- properties
def test_properties_and_groups(client: HubSpot, emu: HubSpotEmulator) -> None:
    listed = raw(client.crm.properties.core_api.get_all("deals", _preload_content=False))
    assert_matches_spec(listed, "properties.json", "/crm/v3/properties/{objectType}", "get", 200)
    types = {p["name"]: p["type"] for p in listed["results"]}
    assert types["amount"] == "number" and types["closedate"] == "datetime" and types["hs_is_closed"] == "bool"
    assert types["dealstage"] == "enumeration" and types["dealname"] == "string"
    stages = next(p for p in listed["results"] if p["name"] == "dealstage")["options"]
    assert {o["value"] for o in stages} >= {"closedwon", "closedlost"}
    contact_props = {p.name: p.type for p in client.crm.properties.core_api.get_all("contacts").results}
    assert not [name for name in contact_props if "journey" in name]
    assert contact_props["lastmodifieddate"] == "datetime" and contact_props["num_conversion_events"] == "number"

    group = client.crm.properties.groups_api.create("contacts", {"name": "journeyhub", "label": "Journey Hub"})
    assert group.name == "journeyhub"
    with pytest.raises(Exception) as dup_group:
        client.crm.properties.groups_api.create("contacts", {"name": "journeyhub", "label": "Again"})
    assert dup_group.value.status == 409
    body = raw(client.crm.properties.core_api.create("contacts", {
        "name": "journey_stage", "label": "Journey stage", "type": "enumeration", "fieldType": "select",
        "groupName": "journeyhub", "options": [{"label": "Awareness", "value": "awareness", "displayOrder": 0,
                                                "hidden": False},
                                               {"label": "Purchase", "value": "purchase", "displayOrder": 1,
                                                "hidden": False}]}, _preload_content=False))
    assert_matches_spec(body, "properties.json", "/crm/v3/properties/{objectType}", "post", 201)
    for bad in ({"name": "journey_stage", "label": "x", "type": "string", "fieldType": "text",
                 "groupName": "journeyhub"},
                {"name": "other", "label": "x", "type": "string", "fieldType": "select", "groupName": "journeyhub"},
                {"name": "other", "label": "x", "type": "enumeration", "fieldType": "select",
                 "groupName": "journeyhub"},
                {"name": "other", "label": "x", "type": "string", "fieldType": "text", "groupName": "nogroup"},
                {"label": "x", "type": "string", "fieldType": "text", "groupName": "journeyhub"}):
        with pytest.raises(Exception) as rejected:
            client.crm.properties.core_api.create("contacts", bad)
        assert rejected.value.status == (409 if bad.get("name") == "journey_stage" else 400)

    contact = client.crm.contacts.basic_api.update("107", SimplePublicObjectInput(
        properties={"journey_stage": "purchase"}))
    assert contact.properties["journey_stage"] == "purchase"
    with pytest.raises(ContactsApiException):
        client.crm.contacts.basic_api.update("107", SimplePublicObjectInput(properties={"journey_stage": "bogus"}))
    found = search_contacts(client, [{"propertyName": "journey_stage", "operator": "EQ", "value": "purchase"}])
    assert [r.id for r in found.results] == ["107"]

    client.crm.properties.core_api.create("notes", {"name": "journeyhub_id", "label": "Journey Hub id",
                                                    "type": "string", "fieldType": "text",
                                                    "groupName": "noteinformation", "hasUniqueValue": True})
    upsert = {"inputs": [{"idProperty": "journeyhub_id", "id": "jh-1", "properties": {
        "hs_timestamp": "1706842000000", "hs_note_body": "mirrored"}}]}
    first = client.crm.objects.notes.batch_api.upsert(upsert)
    second = client.crm.objects.notes.batch_api.upsert(upsert)
    assert first.results[0].new is True and second.results[0].new is False
    assert first.results[0].id == second.results[0].id
    dump = emu.dump_writes()
    assert [p["name"] for p in dump["properties"]["contacts"]] == ["journey_stage"]
    assert [g["name"] for g in dump["propertyGroups"]["contacts"]] == ["journeyhub"]
    batch = client.crm.properties.batch_api.read("contacts", {"archived": False, "inputs": [
        {"name": "email"}, {"name": "journey_stage"}]})
    assert [p.name for p in batch.results] == ["email", "journey_stage"]


# ----------------------------------------------------------------------------------------------- owners, pipelines
def test_owners(reader: HubSpot) -> None:
    first = raw(reader.crm.owners.owners_api.get_page(limit=2, _preload_content=False))
    assert_matches_spec(first, "crmOwners.json", "/crm/v3/owners", "get", 200)
    rest = reader.crm.owners.owners_api.get_page(limit=2, after=first["paging"]["next"]["after"])
    assert [o["id"] for o in first["results"]] + [o.id for o in rest.results] == ["10", "11", "12"]
    assert rest.paging is None
    archived = reader.crm.owners.owners_api.get_page(archived=True)
    assert [o.id for o in archived.results] == ["13"]
    owner = raw(reader.crm.owners.owners_api.get_by_id(901, id_property="userId", _preload_content=False))
    assert_matches_spec(owner, "crmOwners.json", "/crm/v3/owners/{ownerId}", "get", 200)
    assert owner["id"] == "11" and owner["type"] == "PERSON"


def test_pipelines(reader: HubSpot) -> None:
    deals = raw(reader.crm.pipelines.pipelines_api.get_all("deals", _preload_content=False))
    assert_matches_spec(deals, "pipelines.json", "/crm/v3/pipelines/{objectType}", "get", 200)
    stages = {s["id"]: s["metadata"] for s in deals["results"][0]["stages"]}
    assert stages["closedwon"] == {"isClosed": "true", "probability": "1.0"}
    tickets = raw(reader.crm.pipelines.pipelines_api.get_by_id("tickets", "support", _preload_content=False))
    assert_matches_spec(tickets, "pipelines.json", "/crm/v3/pipelines/{objectType}/{pipelineId}", "get", 200)
    assert [s["metadata"]["ticketState"] for s in tickets["stages"]] == ["OPEN", "CLOSED"]
    stage = reader.crm.pipelines.pipeline_stages_api.get_by_id("tickets", "support", "closed")
    assert stage.label == "Closed"
    with pytest.raises(Exception) as missing:
        reader.crm.pipelines.pipelines_api.get_by_id("deals", "nope")
    assert missing.value.status == 404


# ----------------------------------------------------------------------------------------------- email events
def test_legacy_email_events(reader: HubSpot) -> None:
    def call(**qs: Any) -> dict:
        response = reader.api_request({"method": "GET", "path": "/email/public/v1/events", "qs": qs})
        assert response.status_code == 200
        return response.json()

    seen, offset = [], None
    while True:
        page = call(limit=7, **({"offset": offset} if offset else {}))
        seen += [(e["created"], e["id"]) for e in page["events"]]
        offset = page["offset"]
        if not page["hasMore"]:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) == 25
    assert call(limit=7)["events"] == call(limit=7)["events"]          # stable
    opens = call(eventType="OPEN")["events"]
    assert opens and {e["type"] for e in opens} == {"OPEN"}
    assert {e["recipient"] for e in call(recipient="C102@example.com")["events"]} == {"c102@example.com"}
    assert {e["emailCampaignId"] for e in call(campaignId=7)["events"]} == {7}
    window = call(startTimestamp=T0 + 2000, endTimestamp=T0 + 4000)["events"]
    assert {e["created"] for e in window} == {T0 + 2000, T0 + 3000, T0 + 4000} and len(window) == 6
    assert len(call(limit=5000)["events"]) == 25


# ----------------------------------------------------------------------------------------------- auth, limits, faults
def test_bad_token_is_401(url: str) -> None:
    with pytest.raises(UnauthorizedException) as denied:
        hubspot(url, token="wrong").crm.contacts.basic_api.get_page()
    body = json.loads(denied.value.body)
    assert body["status"] == "error" and body["category"] == "INVALID_AUTHENTICATION"
    uuid.UUID(body["correlationId"])
    with httpx.Client(base_url=url) as anonymous:
        assert anonymous.get("/crm/v3/objects/contacts").json()["category"] == "INVALID_AUTHENTICATION"
        assert anonymous.get("/email/public/v1/events").status_code == 401


def test_token_expiry_and_oauth_refresh(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    _, base = fresh(faults=FaultConfig(token_ttl_requests=2))
    client = hubspot(base)
    client.crm.contacts.basic_api.get_page(limit=1)
    client.crm.contacts.basic_api.get_page(limit=1)
    with pytest.raises(UnauthorizedException) as expired:
        client.crm.contacts.basic_api.get_page(limit=1)
    assert json.loads(expired.value.body)["category"] == "EXPIRED_AUTHENTICATION"
    token = client.oauth.tokens_api.create(grant_type="refresh_token", client_id="id", client_secret="secret",
                                           refresh_token=HubSpotEmulator.default_refresh_token)
    assert token.expires_in == 1800 and token.token_type == "bearer"
    assert token.refresh_token == HubSpotEmulator.default_refresh_token
    assert hubspot(base, token.access_token).crm.contacts.basic_api.get_page(limit=1).results
    with pytest.raises(Exception) as bad_refresh:
        client.oauth.tokens_api.create(grant_type="refresh_token", client_id="id", client_secret="secret",
                                       refresh_token="unknown")
    assert bad_refresh.value.status == 400


def test_injected_faults_look_like_hubspot(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    emulator, base = fresh(faults=FaultConfig(rules=[
        FaultRule(kind="rate_limit", path=r"/crm/v3/objects/contacts$", times=1, retry_after=2)]))
    client = hubspot(base)
    with http(base) as h:
        limited = h.get("/crm/v3/objects/contacts")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "2"
        body = limited.json()
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
        uuid.UUID(body["correlationId"])
        assert h.get("/crm/v3/objects/contacts").status_code == 200      # the rule fired once
    emulator.faults.configure(FaultConfig(rules=[FaultRule(kind="rate_limit", path="/search$", retry_after=1)]))
    with pytest.raises(ContactsApiException) as search_limited:   # the client does not retry POSTs
        client.crm.contacts.search_api.do_search(public_object_search_request={"limit": 1})
    assert search_limited.value.status == 429 and search_limited.value.headers["Retry-After"] == "1"
    emulator.faults.configure(FaultConfig(rules=[
        FaultRule(kind="error", path=r"/crm/v3/objects/deals$", status=502, times=1)]))
    with pytest.raises(Exception) as failed:
        client.crm.deals.basic_api.get_page()
    assert failed.value.status == 502 and json.loads(failed.value.body)["status"] == "error"
    emulator.faults.configure(FaultConfig(vendor={"missing_scopes": [r"/crm/v3/objects/tickets"]}))
    with pytest.raises(Exception) as forbidden:
        client.crm.tickets.basic_api.get_page()
    scope_error = json.loads(forbidden.value.body)
    assert forbidden.value.status == 403 and scope_error["category"] == "MISSING_SCOPES"
    assert scope_error["errors"][0]["context"]["requiredGranularScopes"] == ["crm.objects.tickets.read"]


def test_rolling_ten_second_limit(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    emulator, base = fresh(rate_limit_per_10s=5)
    ticks = FakeClock(100.0)
    emulator.limiter.clock = ticks
    with http(base) as h:
        remaining = []
        for _ in range(5):
            response = h.get("/crm/v3/objects/contacts", params={"limit": "1"})
            assert response.headers["X-HubSpot-RateLimit-Max"] == "5"
            assert response.headers["X-HubSpot-RateLimit-Interval-Milliseconds"] == "10000"
            remaining.append(int(response.headers["X-HubSpot-RateLimit-Remaining"]))
            ticks.advance(1)
        assert remaining == [4, 3, 2, 1, 0]
        limited = h.get("/crm/v3/objects/contacts")
        assert limited.status_code == 429 and limited.headers["Retry-After"] == "5"
        body = limited.json()
        assert body["policyName"] == "TEN_SECONDLY_ROLLING" and body["errorType"] == "RATE_LIMIT"
        assert body["message"] == "You have reached your ten_secondly_rolling limit." and body["groupName"]
        ticks.advance(5)                  # the first request leaves the window
        assert h.get("/crm/v3/objects/contacts").status_code == 200
        assert h.get("/crm/v3/objects/contacts").status_code == 429


def test_search_limit_per_second(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    emulator, base = fresh(search_per_second=5, rate_limit_per_10s=190)
    ticks = FakeClock(100.0)
    emulator.search_limiter.clock = ticks
    client = hubspot(base)
    request = {"filterGroups": [], "limit": 1}
    for _ in range(5):
        response = client.crm.contacts.search_api.do_search(public_object_search_request=request,
                                                            _preload_content=False)
        assert "X-HubSpot-RateLimit-Max" not in response.headers
    with pytest.raises(ContactsApiException) as limited:
        client.crm.contacts.search_api.do_search(public_object_search_request=request)
    assert limited.value.status == 429 and json.loads(limited.value.body)["policyName"] == "SECONDLY"
    assert client.crm.contacts.basic_api.get_page(limit=1).results            # other endpoints unaffected
    ticks.advance(1.01)
    assert client.crm.contacts.search_api.do_search(public_object_search_request=request).total == CONTACTS


# ----------------------------------------------------------------------------------------------- merges, paging faults
def test_merge_endpoint_and_python_method(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    emulator, base = fresh()
    client = hubspot(base)
    with http(base) as h:
        merged = h.post("/crm/v3/objects/contacts/merge", json={"primaryObjectId": "102", "objectIdToMerge": "101"})
        assert merged.status_code == 200
        assert_matches_spec(merged.json(), "contacts.json", "/crm/v3/objects/contacts/merge", "post", 200)
    survivor = merged.json()
    assert survivor["id"] == "102" and survivor["properties"]["hs_merged_object_ids"] == "101"
    assert survivor["properties"]["hs_additional_emails"] == "c101@example.com"
    assert survivor["properties"]["phone"] == "+972500000000"          # filled from the merged contact
    assert "101" not in [c.id for c in client.crm.contacts.get_all()]
    assert client.crm.contacts.basic_api.get_by_id("101").id == "102"      # the old id resolves to the survivor
    deals = client.crm.contacts.basic_api.get_by_id("102", associations=["deals"]).associations["deals"].results
    assert [d.id for d in deals] == ["401"]                                # associations moved
    hits = search_contacts(client, [{"propertyName": "hs_object_id", "operator": "IN", "values": ["101", "102"]}])
    assert [r.id for r in hits.results] == ["102"]
    with pytest.raises(ContactsApiException) as taken:
        client.crm.contacts.basic_api.create(SimplePublicObjectInputForCreate(properties={"email": "c101@example.com"}))
    assert json.loads(taken.value.body)["message"].endswith("Existing ID: 102")
    again = emulator.merge_contacts("103", "102")
    assert again["properties"]["hs_merged_object_ids"] == "102;101"
    assert client.crm.contacts.basic_api.get_by_id("101").id == "103"
    assert emulator.dump_writes()["merges"] == [{"primaryObjectId": "102", "objectIdToMerge": "101", "via": "api"}]


def test_merge_during_sync(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    emulator, base = fresh(faults=FaultConfig(vendor={"merge_during_sync": True}))
    client = hubspot(base)
    seen, after = [], None
    while True:
        page = client.crm.contacts.basic_api.get_page(limit=50, after=after, properties=["hs_merged_object_ids"])
        seen += [c.id for c in page.results]
        if page.paging is None:
            break
        after = page.paging.next.after
    event = next(e for e in emulator.vendor_events if e["kind"] == "merge_during_sync")
    gone, survivor = event["objectIdToMerge"], event["primaryObjectId"]
    assert gone in seen and int(gone) < int(survivor)                  # merged away after it was read
    assert len(seen) == CONTACTS
    merged = client.crm.contacts.basic_api.get_by_id(survivor, properties=["hs_merged_object_ids"])
    assert merged.properties["hs_merged_object_ids"] == gone
    assert client.crm.contacts.basic_api.get_by_id(gone).id == survivor
    assert gone not in [c.id for c in client.crm.contacts.get_all()]


def test_mutate_during_paging(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    emulator, base = fresh(faults=FaultConfig(vendor={"mutate_during_paging": True}))
    clock = FakeClock(NOW)
    emulator.clock = clock
    client = hubspot(base)
    first_seen: dict[str, Any] = {}
    after = None
    while True:
        clock.advance(1)
        page = client.crm.contacts.basic_api.get_page(limit=40, after=after)
        for contact in page.results:
            first_seen.setdefault(contact.id, contact.updated_at)
        if page.paging is None:
            break
        after = page.paging.next.after
    touched = [e for e in emulator.vendor_events if e["kind"] == "mutate_during_paging"]
    assert len(touched) == 3
    now = {c.id: c.updated_at for c in client.crm.contacts.get_all()}
    moved = [id_ for id_ in first_seen if now[id_] != first_seen[id_]]
    assert touched[0]["ids"][0] in moved                             # already returned, changed afterwards
    assert all(first_seen[e["ids"][1]] == now[e["ids"][1]] for e in touched if len(e["ids"]) > 1)
    # a search paged by modification date now skips or repeats records, as it would on HubSpot
    ids, offset = [], "0"
    while offset is not None:
        clock.advance(1)
        page = client.crm.contacts.search_api.do_search(public_object_search_request={
            "filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE", "value": "0"}]}],
            "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], "limit": 40, "after": offset})
        ids += [r.id for r in page.results]
        offset = page.paging.next.after if page.paging else None
    assert len(ids) > len(set(ids))          # records changed behind the cursor come back at the end…
    assert set(now) - set(ids)               # …and the records that shifted into already-read offsets are missed


def test_dump_over_admin_api(fresh: Callable[..., tuple[HubSpotEmulator, str]]) -> None:
    _, base = fresh()
    client = hubspot(base)
    task = client.crm.objects.tasks.basic_api.create(SimplePublicObjectInputForCreate(
        properties={"hs_timestamp": "2024-02-02T03:04:05Z", "hs_task_subject": "Call back", "hs_task_type": "CALL"},
        associations=[{"to": {"id": "105"}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                      "associationTypeId": 204}]}]))
    client.crm.associations.v4.basic_api.archive("tasks", task.id, "contacts", "105")
    with httpx.Client(base_url=base) as admin:
        dump = admin.get("/__sandbox/dump").json()
    assert list(dump["objects"]) == ["tasks"]
    assert dump["objects"]["tasks"][0]["properties"]["hs_task_subject"] == "Call back"
    assert dump["associations"]["archived"] == [{
        "fromObjectType": "tasks", "fromObjectId": task.id, "toObjectType": "contacts", "toObjectId": "105",
        "associationTypeId": 204, "associationCategory": "HUBSPOT_DEFINED"}]
    assert dump["associations"]["created"] == []
