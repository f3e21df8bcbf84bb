"""The connector contract, run against the Salesforce emulator over loopback with the real simple-salesforce,
plus the Salesforce specifics of the client boundary: logins, refresh, error translation, call counting."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest

from connectors.base import FieldSpec
from connectors.errors import AuthError, ConfigError, PermissionDenied, RateLimited, UpstreamError
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from connectors.salesforce.objects import LOOKBACK_SECONDS
from connectors.salesforce.reader import parse_time
from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.common.server import EmulatorServer
from sandbox.salesforce import SalesforceData, SalesforceEmulator
from tests.connectors.contract import (
    ConnectorContract,
    Harness,
    WriteContract,
    WriteHarness,
    checked_fields,
    drain,
    ids,
)

FAST = RetryPolicy(max_attempts=3, max_seconds=5, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
CONTACTS = 450
BATCH = 200


def seed() -> SalesforceData:
    contacts = [{"FirstName": "Test", "LastName": f"Person {index:03d}", "Email": f"person{index}@example.com",
                 "CreatedDate": "2025-01-01T00:00:00.000+0000",
                 "SystemModstamp": f"2025-{1 + index % 12:02d}-{1 + index % 28:02d}T10:00:{index % 60:02d}.000+0000"}
                for index in range(CONTACTS)]
    return SalesforceData(records={"Contact": contacts})


@pytest.fixture(scope="module", params=["full", "plain"])
def emulator(request: pytest.FixtureRequest) -> Iterator[SalesforceEmulator]:
    em = SalesforceEmulator(org=request.param)
    em.load(seed())
    with EmulatorServer(em):
        yield em


@pytest.fixture(scope="module")
def failing_url() -> Iterator[str]:
    em = SalesforceEmulator(FaultConfig(error_rate=1.0, error_status=503, retry_after=0))
    with EmulatorServer(em) as server:
        yield server.url


def connector(url: str, token: str | None = "sandbox-token", **kw: object) -> SalesforceConnector:
    return SalesforceConnector(SalesforceConfig(instance_url=url, access_token=token, batch_size=BATCH, retry=FAST,
                                                **kw))  # type: ignore[arg-type]


@pytest.fixture
def harness(emulator: SalesforceEmulator, failing_url: str) -> Harness:
    def live_ids() -> set[str]:
        return {record["Id"] for record in emulator.records("Contact") if not record["IsDeleted"]}

    def touch(remote_id: str) -> None:
        with emulator.lock:
            emulator.store.touch(remote_id)

    def delete(remote_id: str) -> None:
        with emulator.lock:
            emulator.store.delete("Contact", remote_id)

    def create() -> str:
        with emulator.lock:
            return emulator.store.create("Contact", {"LastName": "Created", "Email": "created@example.com"})

    client = connector(emulator.base_url)
    return Harness(connector=client, object_type="Contact", live_ids=live_ids, touch=touch, delete=delete,
                   create=create, bad_token_connector=lambda: connector(emulator.base_url, "nope"),
                   failing_connector=lambda: connector(failing_url), fields=checked_fields(client, "Contact"))


@pytest.fixture(scope="module")
def bare_url() -> Iterator[str]:
    em = SalesforceEmulator(custom_fields=False)  # an org where nobody created the hub's fields
    with EmulatorServer(em) as server:
        yield server.url


@pytest.fixture(scope="module")
def write_emulator() -> Iterator[SalesforceEmulator]:
    """The full org: write-back runs where an admin created the hub's fields (`bare_url` is an org where
    nobody did, for what `ensure_fields` says then)."""
    em = SalesforceEmulator()
    em.load(seed())
    with EmulatorServer(em):
        yield em


@pytest.fixture
def write_harness(write_emulator: SalesforceEmulator, bare_url: str) -> WriteHarness:
    client = connector(write_emulator.base_url)

    def raw_record(remote_id: str, fields: list[str]) -> dict[str, Any]:
        response = httpx.get(f"{write_emulator.base_url}/services/data/v{client.config.api_version}/sobjects/Contact/"
                             f"{remote_id}", params={"fields": ",".join(fields)},
                             headers={"Authorization": "Bearer sandbox-token"})
        response.raise_for_status()
        return response.json()

    def count_marked(marker: str) -> int:
        return sum(1 for task in write_emulator.records("Task") if task.get("External_Id__c") == marker
                   and not task.get("IsDeleted"))

    live = sorted(record["Id"] for record in write_emulator.records("Contact") if not record["IsDeleted"])
    return WriteHarness(connector=client, person_type="Contact", person_ids=live[10:],
                        missing_person_id="0030W0000000000QAA",
                        fields=[FieldSpec("Journey_Stage__c"), FieldSpec("Last_Interaction_At__c", "datetime")],
                        mirror_object="Task", marker_field="External_Id__c", raw_record=raw_record,
                        count_marked=count_marked, bare_connector=lambda: connector(bare_url))


class TestSalesforceContract(ConnectorContract, WriteContract):
    def test_a_full_read_pages_by_query_batch_and_counts_its_calls(self, harness: Harness) -> None:
        fresh = connector(harness.connector.config.instance_url)  # type: ignore[attr-defined]
        pages = list(fresh.read("Contact", None, full=True))
        total = len(ids(pages))  # live records and recycle-bin tombstones
        assert all(len(page.records) <= BATCH for page in pages) and len(pages) == -(-total // BATCH)
        # one call per query batch, nothing else (the first batch's totalSize decides REST vs Bulk)
        assert sum(page.api_calls for page in pages) == fresh.api_calls == len(pages)
        stamps = [record.data["SystemModstamp"] for page in pages for record in page.records]  # type: ignore[index]
        assert stamps == sorted(stamps), "records come in SystemModstamp order (the watermark relies on it)"

    def test_soft_deleted_records_come_back_as_tombstones_that_keep_their_data(self, harness: Harness) -> None:
        _, cursor = drain(harness.connector.read("Contact", None, full=True, fields=harness.fields))
        victim = sorted(harness.live_ids())[5]
        harness.delete(victim)
        pages, _ = drain(harness.connector.read("Contact", cursor, fields=harness.fields))
        tombstone = next(r for page in pages for r in page.records if r.remote_id == victim)
        assert tombstone.deleted and tombstone.data is not None and tombstone.data["LastName"].startswith("Person")

    def test_the_cursor_is_a_watermark_with_the_ids_seen_at_it(self, harness: Harness) -> None:
        pages, cursor = drain(harness.connector.read("Contact", None, full=True))
        state = json.loads(cursor or "{}")
        stamps = {r.remote_id: r.data["SystemModstamp"] for page in pages for r in page.records}  # type: ignore[index]
        floor = (parse_time(state["since"]) - timedelta(seconds=LOOKBACK_SECONDS)).isoformat()
        assert state["since"] in stamps.values()
        assert {rid for rid, stamp in stamps.items() if stamp >= state["since"]} <= set(state["seen"])
        assert all(parse_time(stamp).isoformat() >= floor for stamp in state["seen"].values())
        assert len(state["seen"]) < len(stamps), "only the ids at (or just before) the watermark are kept"


# ------------------------------------------------------------------------------------------------ logins
def test_client_credentials_and_password_logins_reach_an_http_instance(emulator: SalesforceEmulator) -> None:
    logins = [
        connector(emulator.base_url, None, client_id="sandbox-client", client_secret="sandbox-secret"),
        connector(emulator.base_url, None, username="hub@sandbox.example", password="sandbox",
                  security_token="sandbox"),
    ]
    for login in logins:
        login.check()
        assert login.api_calls == 2, "one login call + one limits call"
        assert login.api_usage is not None and login.api_usage[1] == emulator.daily_api_limit


def test_wrong_login_credentials_are_an_auth_error_naming_what_to_check(emulator: SalesforceEmulator) -> None:
    with pytest.raises(AuthError, match="client id/secret"):
        connector(emulator.base_url, None, client_id="sandbox-client", client_secret="wrong").check()
    with pytest.raises(AuthError, match="username/password/security token"):
        connector(emulator.base_url, None, username="hub@sandbox.example", password="nope",
                  security_token="x").check()


def test_an_expired_session_logs_in_again_once_with_a_refreshable_login_only() -> None:
    em = SalesforceEmulator()
    em.load(SalesforceData(records={}))
    with EmulatorServer(em) as server:
        login = connector(server.url, None, client_id="sandbox-client", client_secret="sandbox-secret")
        login.check()
        em.tokens.expire_all()
        login.check()
        assert login.api_calls == 5, "login, limits, 401, login again, limits"
        em.tokens.add("static-session")
        static = connector(server.url, "static-session")
        static.check()
        em.tokens.expire_all()
        with pytest.raises(AuthError, match=r"cannot be refreshed.*SALESFORCE_CLIENT_ID"):
            static.check()


# ------------------------------------------------------------------------------------------------ errors
@pytest.fixture
def faulty() -> Iterator[tuple[SalesforceEmulator, EmulatorServer]]:
    em = SalesforceEmulator(daily_api_limit=3, custom_fields=False)
    em.load(seed())
    with EmulatorServer(em) as server:
        yield em, server


def test_vendor_errors_become_connector_errors_with_a_clear_message(faulty: tuple[SalesforceEmulator,
                                                                                 EmulatorServer]) -> None:
    _, server = faulty
    client = connector(server.url)
    with pytest.raises(ConfigError, match=r"Survey_Score__c.*mappings/salesforce/Task\.yaml"):
        client.client.call("query Task", lambda sf: sf.query("SELECT Id, Survey_Score__c FROM Task"),
                           sobject="Task")
    with pytest.raises(ConfigError, match="Widget__c"):
        client.describe("Widget__c")
    client.check()
    with pytest.raises(RateLimited, match="daily API request limit is exhausted") as limited:
        client.check()
    assert limited.value.retry_after and limited.value.retry_after >= 3600
    assert client.api_calls == 3 + FAST.max_attempts


def test_429_honours_retry_after_and_403_is_permission_denied() -> None:
    em = SalesforceEmulator(FaultConfig(rules=[FaultRule(kind="rate_limit", path="/limits", times=2,
                                                         retry_after=0)]))
    em.load(seed())
    with EmulatorServer(em) as server:
        client = connector(server.url)
        client.check()
        assert client.api_calls == 3, "two 429s retried, then the answer"
        error = client.client.translate(_refused(), "read Contact", "Contact")
        assert isinstance(error, PermissionDenied) and "read/edit permission on Contact" in error.message


def test_a_persistent_5xx_carries_no_fatal_error() -> None:
    em = SalesforceEmulator(FaultConfig(error_rate=1.0, error_status=500))
    with EmulatorServer(em) as server, pytest.raises(UpstreamError):
        connector(server.url).check()


def test_the_connector_objects_and_describe(emulator: SalesforceEmulator) -> None:
    client = connector(emulator.base_url)
    assert set(client.objects()) == {"Contact", "Lead", "Account", "Opportunity", "OpportunityContactRole", "Case",
                                     "Task", "Event", "EmailMessage", "User"}
    task = client.describe("Task")
    if emulator.org == "full":
        assert task.fields["External_Id__c"].external_id and task.fields["External_Id__c"].custom
    else:
        assert not any(field.custom for field in task.fields.values()), "a standard org has no custom fields"
    assert not task.fields["TaskSubtype"].updateable and not task.fields["IsClosed"].createable


def _refused() -> Exception:
    from simple_salesforce.exceptions import SalesforceRefusedRequest

    return SalesforceRefusedRequest("https://x/services/data/v59.0/query", 403, "query",
                                    [{"errorCode": "INSUFFICIENT_ACCESS", "message": "insufficient access rights"}])


def test_query_batches_are_decoded_by_orjson(emulator: SalesforceEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """A read's query batches are decoded by `connectors.jsonbody` (orjson), not by requests'
    `Response.json()` (an encoding guess and the standard library's decoder, ~4% of a sync's CPU)."""
    import requests

    from connectors import jsonbody

    decoded: list[int] = []
    decode = jsonbody.decode

    def counted(body: bytes) -> Any:
        decoded.append(len(body))
        return decode(body)

    def refused(self: requests.Response, **kwargs: Any) -> Any:
        raise AssertionError("Response.json() decoded a Salesforce answer")

    monkeypatch.setattr(jsonbody, "decode", counted)
    monkeypatch.setattr(requests.Response, "json", refused)
    pages = list(connector(emulator.base_url).read("Contact", None, full=True))
    assert sum(len(page.records) for page in pages) >= CONTACTS - 10
    assert len(decoded) >= -(-CONTACTS // BATCH)  # every batch, at least
