"""The connector contract against the HubSpot emulator (real SDK over loopback), plus what is particular to
HubSpot: the search lookback catching late-indexed records, request shapes, and error translation."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from connectors.base import FieldSpec
from connectors.errors import FatalError, PermissionDenied, RateLimited, SkippableError, UpstreamError
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.client import http_error
from connectors.retry import RetryPolicy
from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.common.server import EmulatorServer
from sandbox.hubspot import HubSpotData, HubSpotEmulator
from sandbox.world import generate
from tests.connectors.contract import (
    ConnectorContract,
    Harness,
    WriteContract,
    WriteHarness,
    checked_fields,
    drain,
    ids,
    mapping_fields,
)

FAST = RetryPolicy(max_attempts=3, max_seconds=10, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)


def connector(url: str, token: str = "sandbox-token", **options: object) -> HubSpotConnector:
    return HubSpotConnector(HubSpotConfig(access_token=token, base_url=url, retry=FAST, **options))  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=["full", "plain"])
def emulator(request: pytest.FixtureRequest) -> Iterator[HubSpotEmulator]:
    """A portal of each org profile (`plain`: no Service Hub or Salesforce integration properties, and
    records archived before install)."""
    emu = HubSpotEmulator(org=request.param)  # HubSpot's rate limits on: 190 calls / 10 s, search 5 / s
    emu.load(generate(300, 7, ANCHOR, org=request.param).hubspot)
    with EmulatorServer(emu):
        yield emu


@pytest.fixture(scope="module")
def failing_url() -> Iterator[str]:
    emu = HubSpotEmulator(FaultConfig(error_rate=1.0, error_status=503), rate_limit_per_10s=None)
    with EmulatorServer(emu) as server:
        yield server.url


def make_contact(emu: HubSpotEmulator, email: str) -> str:
    with emu.lock:
        ts = emu.store.types["contacts"]
        values = emu.store.prepare(ts, {"email": email, "lastname": "Created"}, creating=True)
        return emu.store.create(ts, values, [], emu.now_ms()).id


@pytest.fixture
def harness(emulator: HubSpotEmulator, failing_url: str) -> Harness:
    contacts = emulator.store.types["contacts"]

    def live_ids() -> set[str]:
        with emulator.lock:
            return {str(num) for num in contacts.active}

    def touch(remote_id: str) -> None:
        with emulator.lock:
            emulator.store.touch(contacts, contacts.records[remote_id], emulator.now_ms())

    def delete(remote_id: str) -> None:
        with emulator.lock:
            emulator.store.archive(contacts, contacts.records[remote_id], emulator.now_ms())

    counter = iter(range(10_000))
    # archived records are listed on every incremental read here, so a delete shows up at once
    hub = connector(emulator.base_url, archived_check_interval_seconds=0)
    return Harness(
        connector=hub, fields=checked_fields(hub, "contacts"),
        object_type="contacts", live_ids=live_ids, touch=touch, delete=delete,
        create=lambda: make_contact(emulator, f"created{next(counter)}@contract.example"),
        bad_token_connector=lambda: connector(emulator.base_url, token="pat-na1-wrong"),
        failing_connector=lambda: connector(failing_url))


@pytest.fixture(scope="module")
def bare_url() -> Iterator[str]:
    emu = HubSpotEmulator(rate_limit_per_10s=None)  # a portal where the hub never created its properties
    with EmulatorServer(emu) as server:
        yield server.url


@pytest.fixture(scope="module")
def write_emulator() -> Iterator[HubSpotEmulator]:
    """The full org: write-back runs where an admin created the hub's fields (`bare_url` is an org where
    nobody did, for what `ensure_fields` says then)."""
    emu = HubSpotEmulator()
    emu.load(generate(300, 7, ANCHOR).hubspot)
    with EmulatorServer(emu):
        yield emu


@pytest.fixture
def write_harness(write_emulator: HubSpotEmulator, bare_url: str) -> WriteHarness:
    hub = connector(write_emulator.base_url)
    fields = [FieldSpec("journey_stage", label="Journey stage"),
              FieldSpec("journey_stage_entered_at", "datetime", "Journey stage entered at"),
              FieldSpec("journeyhub_email_opens", "number", "Marketing email opens")]
    hub.ensure_fields({"contacts": fields, "notes": [FieldSpec("journeyhub_item_id", marker=True)]},
                      group="journeyhub")
    with write_emulator.lock:
        contacts = sorted(write_emulator.store.types["contacts"].active)

    def raw_record(remote_id: str, properties: list[str]) -> dict[str, Any]:
        response = httpx.get(f"{write_emulator.base_url}/crm/v3/objects/contacts/{remote_id}",
                             params={"properties": ",".join(properties)},
                             headers={"Authorization": "Bearer sandbox-token"})
        response.raise_for_status()
        return response.json()

    def count_marked(marker: str) -> int:
        with write_emulator.lock:
            notes = write_emulator.store.types["notes"]
            return sum(1 for num in notes.active if notes.records[str(num)].props.get("journeyhub_item_id") == marker)

    return WriteHarness(connector=hub, person_type="contacts", person_ids=[str(num) for num in contacts[10:]],
                        missing_person_id="999999999", fields=fields, mirror_object="notes",
                        marker_field="journeyhub_item_id", raw_record=raw_record, count_marked=count_marked,
                        bare_connector=lambda: connector(bare_url))


class TestHubSpotContract(ConnectorContract, WriteContract):
    def test_pages_report_their_calls_and_repeat_properties_and_associations(
            self, harness: Harness, emulator: HubSpotEmulator) -> None:
        emulator.requests.reset()
        hub = harness.connector
        before = hub.api_calls
        pages = list(hub.read("contacts", None, full=True, fields=mapping_fields(hub, "contacts")))
        assert len(pages) >= 3 and sum(page.api_calls for page in pages) == hub.api_calls - before == len(pages)
        lists = [entry for entry in emulator.requests.snapshot()["log"]
                 if entry["route"] == "GET /crm/v3/objects/contacts"]
        assert len(lists) == len(pages)
        assert all("properties=email" in entry["query"] and "associations=companies" in entry["query"]
                   and "limit=100" in entry["query"] for entry in lists), "every page asks for the same shape"
        record = pages[0].records[0]
        assert "associations" not in (record.data or {}) and set(record.extra["_associations"]) == {"companies"}

    def test_a_second_incremental_read_costs_one_search_and_skips_the_archived_listing(
            self, emulator: HubSpotEmulator) -> None:
        hub = connector(emulator.base_url)  # default: archived records listed at most once an hour
        _, cursor = drain(hub.read("contacts", None, full=True))
        emulator.requests.reset()
        pages, _ = drain(hub.read("contacts", cursor))
        assert ids(pages) == [] and emulator.requests.snapshot(False)["counts"] == {
            "POST /crm/v3/objects/contacts/search": 1}

    def test_a_killed_full_load_continues_from_its_cursor(self, harness: Harness) -> None:
        hub = harness.connector
        pages = hub.read("contacts", None, full=True)
        first = next(pages)
        pages.close()
        assert json.loads(first.cursor or "")["mode"] == "full"
        rest, _ = drain(hub.read("contacts", first.cursor))
        assert sorted(ids([first, *rest], deleted=False)) == sorted(harness.live_ids())


def test_the_lookback_catches_records_the_search_index_shows_late() -> None:
    """Record A is modified before record B but indexed after it: the read that sees B moves the watermark
    past A; only the lookback window brings A back on the next read (without it A is lost)."""
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None, search_index_lag_seconds=1.0)
    emu.load(HubSpotData(objects={"contacts": [
        {"id": "101", "properties": {"email": "seed@example.com", "lastname": "Seed"},
         "createdAt": "2026-01-01T00:00:00.000Z", "updatedAt": "2026-01-01T00:00:00.000Z"}]}))
    tick = [100.0]
    emu.monotonic = lambda: tick[0]
    with EmulatorServer(emu):
        hub, blind = connector(emu.base_url), connector(emu.base_url, lookback_seconds=0)
        _, cursor = drain(hub.read("contacts", None, full=True))
        later = make_contact(emu, "later@example.com")                     # modified now, indexed at 101
        tick[0], wall = 105.0, emu.clock()
        emu.clock = lambda: wall - 5                                        # modified 5 s earlier ...
        earlier = make_contact(emu, "earlier@example.com")                 # ... but indexed only at 106
        emu.clock = lambda: wall
        tick[0] = 102.0
        pages, cursor = drain(hub.read("contacts", cursor))
        assert ids(pages) == [later]
        tick[0] = 110.0
        assert ids(drain(blind.read("contacts", cursor))[0]) == [], "no lookback: the late record is lost"
        assert ids(drain(hub.read("contacts", cursor))[0]) == [earlier]


def test_describe_reports_properties_with_their_type_and_whether_they_are_custom(emulator: HubSpotEmulator) -> None:
    hub = connector(emulator.base_url)
    hub.ensure_fields({"contacts": [FieldSpec("journey_stage", label="Journey stage")]}, group="journeyhub")
    fields = hub.describe("contacts").fields
    assert (fields["email"].type, fields["email"].custom) == ("string", False)
    assert fields["journey_stage"].custom and fields["journey_stage"].updateable
    assert not fields["hs_object_id"].updateable
    assert "recipient" in hub.describe("email_events").fields


def test_missing_scopes_name_the_scope_to_grant() -> None:
    emu = HubSpotEmulator(FaultConfig(vendor={"missing_scopes": ["/crm/v3/objects/deals"]}), rate_limit_per_10s=None)
    with EmulatorServer(emu), pytest.raises(PermissionDenied) as error:
        drain(connector(emu.base_url).read("deals", None, full=True))
    assert "crm.objects.deals.read" in error.value.message


def test_429_waits_as_told_and_5xx_and_timeouts_are_retried_and_counted() -> None:
    emu = HubSpotEmulator(FaultConfig(rules=[
        FaultRule(kind="rate_limit", path="/crm/v3/objects/companies", times=1, retry_after=1),
        FaultRule(kind="error", path="/crm/v3/objects/companies", times=1, status=502),
        FaultRule(kind="timeout", path="/crm/v3/objects/companies", times=1, delay_seconds=1)]),
        rate_limit_per_10s=None)
    emu.load(HubSpotData(objects={"companies": [
        {"id": "7", "properties": {"name": "Acme"}, "createdAt": "2026-01-01T00:00:00.000Z",
         "updatedAt": "2026-01-01T00:00:00.000Z"}]}))
    patient = RetryPolicy(max_attempts=4, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
    with EmulatorServer(emu):
        hub = HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emu.base_url, retry=patient,
                                             timeout_seconds=0.3))
        pages, _ = drain(hub.read("companies", None, full=True))
    # the fourth attempt answers; the full load then lists the archived records (one more call, none archived)
    assert ids(pages) == ["7"] and pages[0].api_calls == 4 and hub.api_calls == 5


@pytest.mark.parametrize(("status", "body", "headers", "expected", "says"), [
    (429, b'{"policyName":"SECONDLY","message":"You have reached your secondly limit."}', {}, RateLimited, "SECONDLY"),
    (404, b'{"message":"Object not found","category":"OBJECT_NOT_FOUND"}', {}, SkippableError, "record 55"),
    (400, b'{"status":"error","message":"Property values were not valid","category":"VALIDATION_ERROR",'
          b'"errors":[{"message":"INVALID_EMAIL: bad@","code":"INVALID_EMAIL"}]}', {}, FatalError, "INVALID_EMAIL"),
    (503, b"", {}, UpstreamError, "503"),
])
def test_http_errors_become_the_class_that_says_what_to_do(status: int, body: bytes, headers: dict[str, str],
                                                           expected: type, says: str) -> None:
    error = http_error(status, body, headers, "read contacts", "55" if status == 404 else None)
    assert type(error) is expected and says in error.message
    if status == 429:
        assert error.retry_after == 1.0  # type: ignore[attr-defined]


def test_a_daily_limit_stops_the_run_instead_of_retrying() -> None:
    error = http_error(429, b'{"policyName":"DAILY"}', {"Retry-After": "3600"}, "search contacts", None)
    assert isinstance(error, FatalError) and "daily" in error.message


def test_archived_records_come_with_their_last_properties_and_their_own_sides_associations() -> None:
    """HubSpot unassociates an archived contact from its activities; the archived record still lists them. A
    first full load and a later archived check both bring it as a tombstone with those properties and links."""
    stamp = "2026-01-01T00:00:00.000Z"
    emu = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emu.load(HubSpotData(objects={
        "contacts": [{"id": str(n), "properties": {"email": f"c{n}@example.com", "lastname": f"C{n}"},
                      "createdAt": stamp, "updatedAt": stamp} for n in (101, 102)],
        "calls": [{"id": "201", "properties": {"hs_timestamp": stamp}, "createdAt": stamp, "updatedAt": stamp}]},
        associations=[("calls", "201", "contacts", "101", 194), ("calls", "201", "contacts", "102", 194)]))
    with EmulatorServer(emu):
        hub = connector(emu.base_url, archived_check_interval_seconds=0)
        fields = mapping_fields(hub, "contacts")
        with emu.lock:
            contacts = emu.store.types["contacts"]
            emu.store.archive(contacts, contacts.records["101"], emu.now_ms())
        pages, cursor = drain(hub.read("contacts", None, full=True, fields=fields))
        (first,) = [record for page in pages for record in page.records if record.deleted]
        assert first.remote_id == "101" and first.data and first.data["properties"]["lastname"] == "C101"
        assert first.extra["_associations"]["calls"] == ["201"], "its own side still lists the call"
        live = next(record for page in pages for record in page.records if record.remote_id == "102")
        assert set(live.extra["_associations"]) == {"companies"}, "live records: only what the object table reads"
        assert json.loads(cursor or "")["mode"] == "incremental"

        with emu.lock:
            emu.store.archive(contacts, contacts.records["102"], emu.now_ms())
        pages, _ = drain(hub.read("contacts", cursor, fields=fields))
        later = next(record for page in pages for record in page.records if record.remote_id == "102")
        assert later.deleted and later.data and later.data["properties"]["email"] == "c102@example.com"
        assert later.extra["_associations"]["calls"] == ["201"]
