"""The connector contract, run against the Dataverse emulator over loopback (change-tracked contacts)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from connectors.base import FieldSpec
from connectors.dynamics import DynamicsConfig, DynamicsConnector
from connectors.retry import RetryPolicy
from sandbox.common.faults import FaultConfig
from sandbox.common.server import EmulatorServer
from sandbox.dynamics import DynamicsData, DynamicsEmulator
from sandbox.dynamics import writes as dataverse_writes
from tests.connectors.contract import ConnectorContract, Harness, WriteContract, WriteHarness, checked_fields

FAST = RetryPolicy(max_attempts=3, max_seconds=5, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
NS = uuid.UUID("3d1f8a52-2b7c-4f0e-9a51-6c2e0d4b7a19")
CONTACTS = 320


def seed() -> DynamicsData:
    rows = [{"contactid": str(uuid.uuid5(NS, f"contact/{i}")), "firstname": "Test", "lastname": f"Person {i:03d}",
             "emailaddress1": f"person{i}@example.com", "createdon": "2025-01-01T00:00:00Z",
             "modifiedon": f"2025-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z"} for i in range(CONTACTS)]
    return DynamicsData(rows={"contacts": rows})


@pytest.fixture(scope="module", params=["full", "plain"])
def emulator(request: pytest.FixtureRequest) -> Iterator[DynamicsEmulator]:
    em = DynamicsEmulator(requests_per_5min=None, org=request.param)
    em.load(seed())
    with EmulatorServer(em):
        yield em


@pytest.fixture(scope="module")
def failing_url() -> Iterator[str]:
    em = DynamicsEmulator(FaultConfig(error_rate=1.0, error_status=503, retry_after=0), requests_per_5min=None)
    with EmulatorServer(em) as server:
        yield server.url


def connector(url: str, token: str = "sandbox-token") -> DynamicsConnector:
    return DynamicsConnector(DynamicsConfig(url=url, access_token=token, page_size=100, retry=FAST))


@pytest.fixture
def harness(emulator: DynamicsEmulator, failing_url: str) -> Harness:
    def live_ids() -> set[str]:
        with emulator.lock:
            return set(emulator.store.state("contacts").rows)

    def touch(remote_id: str) -> None:
        with emulator.lock:
            emulator.touch("contacts", remote_id)

    def delete(remote_id: str) -> None:
        with emulator.lock:
            emulator.store.remove("contacts", remote_id)

    def create() -> str:
        remote_id = str(uuid.uuid4())
        table = emulator.schema.tables["contacts"]
        with emulator.lock:
            row = dataverse_writes.new_row(table, remote_id, {"lastname": "Created", "statecode": 0, "statuscode": 1},
                                           now=emulator.store.now_text(), version=emulator.store.next_version(),
                                           user_id=emulator.user_id)
            emulator.store.put("contacts", row)
        return remote_id

    client = connector(emulator.base_url)
    return Harness(connector=client, object_type="contacts", live_ids=live_ids, touch=touch, delete=delete,
                   create=create, bad_token_connector=lambda: connector(emulator.base_url, "nope"),
                   failing_connector=lambda: connector(failing_url), fields=checked_fields(client, "contacts"),
                   keeps_deleted=False)  # Dataverse keeps no deleted rows (merged ones stay, deactivated)


@pytest.fixture(scope="module")
def bare_url() -> Iterator[str]:
    em = DynamicsEmulator(requests_per_5min=None, custom_columns=False)  # nobody created the hub's columns
    with EmulatorServer(em) as server:
        yield server.url


@pytest.fixture(scope="module")
def write_emulator() -> Iterator[DynamicsEmulator]:
    """The full org: write-back runs where an admin created the hub's fields (`bare_url` is an org where
    nobody did, for what `ensure_fields` says then)."""
    em = DynamicsEmulator(requests_per_5min=None)
    em.load(seed())
    with EmulatorServer(em):
        yield em


@pytest.fixture
def write_harness(write_emulator: DynamicsEmulator, bare_url: str) -> WriteHarness:
    def raw_record(remote_id: str, columns: list[str]) -> dict[str, Any]:
        response = httpx.get(f"{write_emulator.base_url}/api/data/v9.2/contacts({remote_id})",
                             params={"$select": ",".join(columns)}, headers={"Authorization": "Bearer sandbox-token"})
        response.raise_for_status()
        return response.json()

    def count_marked(marker: str) -> int:
        with write_emulator.lock:
            return sum(1 for row in write_emulator.store.all_rows("tasks") if row.get("new_externalid") == marker)

    with write_emulator.lock:
        contacts = sorted(write_emulator.store.state("contacts").rows)
    return WriteHarness(connector=connector(write_emulator.base_url), person_type="contacts", person_ids=contacts[10:],
                        missing_person_id=str(uuid.uuid5(NS, "nobody")),
                        fields=[FieldSpec("new_journeystage"), FieldSpec("new_stageenteredon", "datetime")],
                        mirror_object="tasks", marker_field="new_externalid", raw_record=raw_record,
                        count_marked=count_marked, bare_connector=lambda: connector(bare_url))


class TestDynamicsContract(ConnectorContract, WriteContract):
    def test_a_full_read_is_paged_and_counts_its_calls(self, harness: Harness) -> None:
        pages = list(harness.connector.read("contacts", None, full=True))
        assert len(pages) >= 4 and max(len(page.records) for page in pages) == 100
        assert sum(page.api_calls for page in pages) == len(pages)

    def test_describe_names_columns_as_the_web_api_serves_them(self, harness: Harness) -> None:
        fields = harness.connector.describe("contacts").fields
        assert fields["emailaddress1"].type == "String"
        assert fields["_parentcustomerid_value"].type == "Customer"
        assert not fields["emailaddress1"].custom
        if "new_journeystage" in fields:   # the full org; a plain one has no custom columns at all
            assert fields["new_journeystage"].custom
        else:
            assert not any(field.custom for field in fields.values())
