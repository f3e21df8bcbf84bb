"""Hostile values, synced through each CRM's real connector from its emulator into SQLite and PostgreSQL: NUL
in text and in JSON values, 200 KB text, RTL + emoji, quotes and backslashes, SQL-looking text, invalid
numbers and dates. Every object succeeds, and each odd value is stored, cleaned (docs/schema.md, "Values a
database cannot store") or quarantined — never a traceback, never a page lost. Lone surrogates, over-long
remote ids and a value the database itself refuses are fed straight to the page loader (no vendor's JSON
encoder emits a lone surrogate; the emulators' orjson refuses to)."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import DataError

from connectors.base import Connector, Page, RemoteRecord
from connectors.dynamics import DynamicsConfig, DynamicsConnector
from connectors.dynamics.objects import ENTITY_SETS
from connectors.hubspot import HubSpotConfig, HubSpotConnector
from connectors.hubspot.objects import OBJECTS
from connectors.retry import RetryPolicy
from connectors.salesforce import SalesforceConfig, SalesforceConnector
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest import loader as loader_module
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.sync import pull_pages
from sandbox.common.server import EmulatorServer
from sandbox.dynamics import DynamicsEmulator
from sandbox.hubspot import HubSpotEmulator
from sandbox.salesforce import SalesforceEmulator
from sandbox.world import World, generate

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
FAST = RetryPolicy(max_attempts=4, max_seconds=10, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)
LONG = 200_000  # characters of free text ("Ω", 400 KB of UTF-8): cut to the column, ending "…"
#: first names as the CRM holds them → as the canonical row holds them
FIRST_NAMES = [
    ("Ana\x00Maria", "AnaMaria"),  # NUL: removed
    ("\u202eمرحبا 👋🏽 שלום", "\u202eمرحبا 👋🏽 שלום"),  # RTL override, Arabic, emoji with a skin tone, Hebrew
    ("O'Brien \"Bob\" \\back\\slash\\", "O'Brien \"Bob\" \\back\\slash\\"),
    ("Robert'); DROP TABLE person_record;--", "Robert'); DROP TABLE person_record;--"),
]
JSON_NUL = ("Acme\x00 Ltd", "Acme Ltd")  # in a custom (JSON) field


@dataclass
class System:
    name: str
    emulator: Callable[[World], Any]
    connector: Callable[[Any], Connector]
    objects: list[str]
    people: tuple[str, str, str, str]  # records key, first name field, last name field, id field
    custom: tuple[str, str] | None  # source field, custom key it lands in
    deals: tuple[str, str, str, str] | None  # records key, number field, date field, id field (typed: None)
    long: tuple[str, str, str, str, int]  # records key, free-text field, id field, canonical column, its limit

    def records(self, world: World, key: str) -> list[dict[str, Any]]:
        if self.name == "hubspot":
            return world.hubspot.objects[key]
        return world.salesforce.records[key] if self.name == "salesforce" else world.dynamics.rows[key]

    def field(self, record: dict[str, Any]) -> dict[str, Any]:
        return record["properties"] if self.name == "hubspot" else record


def _hubspot(world: World) -> HubSpotEmulator:
    emulator = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emulator.load(world.hubspot)
    return emulator


def _salesforce(world: World) -> SalesforceEmulator:
    emulator = SalesforceEmulator()
    emulator.load(world.salesforce)
    return emulator


def _dynamics(world: World) -> DynamicsEmulator:
    emulator = DynamicsEmulator(None, requests_per_5min=None)
    emulator.load(world.dynamics)
    return emulator


SYSTEMS = {
    "hubspot": System(
        "hubspot", _hubspot,
        lambda em: HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=em.base_url, retry=FAST)),
        list(OBJECTS), ("contacts", "firstname", "lastname", "id"), ("company", "company_name"),
        ("deals", "amount", "closedate", "id"), ("contacts", "lastname", "id", "person_record.last_name", 200)),
    "salesforce": System(
        "salesforce", _salesforce,
        lambda em: SalesforceConnector(SalesforceConfig(instance_url=em.base_url, access_token="sandbox-token",
                                                        batch_size=200, retry=FAST)),
        ["User", "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Case", "Task", "Event",
         "EmailMessage"],
        ("Contact", "FirstName", "LastName", "Id"), ("LeadSource", "lead_source"),
        # Salesforce types its fields (an Amount is a double, LastName ≤ 80): its long text is a Description
        None, ("Task", "Description", "Id", "interaction.body", 4000)),
    "dynamics": System(  # systemusers → owners are not stored yet (tests/connectors/test_dynamics_sync.py)
        "dynamics", _dynamics,
        lambda em: DynamicsConnector(DynamicsConfig(url=em.base_url, access_token="sandbox-token", retry=FAST)),
        [name for name in ENTITY_SETS if name != "systemusers"],
        ("contacts", "firstname", "lastname", "contactid"), None,
        ("opportunities", "actualvalue", "createdon", "opportunityid"),
        ("contacts", "lastname", "contactid", "person_record.last_name", 200)),
}


@cache
def _world() -> World:
    return generate(60, 7, ANCHOR)


def hostile_world(system: System) -> tuple[World, dict[str, Any]]:
    """The small world with hostile values in its first people and deals; what was put where."""
    world = copy.deepcopy(_world())
    people_key, first, last, id_field = system.people
    people = [person for person in system.records(world, people_key)
              if system.field(person).get(last)][:len(FIRST_NAMES) + 1]
    planted: dict[str, Any] = {"first": {}, "long": None, "custom": None}
    for person, (value, _) in zip(people, FIRST_NAMES, strict=False):
        system.field(person)[first] = value
        planted["first"][str(person[id_field])] = value
    long_key, long_field, long_id, _, _ = system.long
    long_record = next(record for record in system.records(world, long_key) if record not in people[:-1])
    system.field(long_record)[long_field] = "Ω" * (LONG if system.name != "salesforce" else 32_000)
    planted["long"] = str(long_record[long_id])
    if system.custom is not None:
        system.field(people[0])[system.custom[0]] = JSON_NUL[0]
        planted["custom"] = str(people[0][id_field])
    planted["deals"] = []
    if system.deals is not None:
        deals_key, number, date, deal_id = system.deals
        deals = system.records(world, deals_key)[:2]
        system.field(deals[0])[number] = "12,5 €"  # not a number
        system.field(deals[1])[date] = "2025-02-30T25:61:00Z"  # not a date
        planted["deals"] = [str(deal[deal_id]) for deal in deals]
    return world, planted


@contextmanager
def serving(system: System, world: World) -> Iterator[Any]:
    emulator = system.emulator(world)
    with EmulatorServer(emulator):
        yield emulator


def rows(engine: Engine, sql: str, **params: Any) -> list[Any]:
    with engine.connect() as connection:
        return list(connection.execute(text(sql), params))


def key(system: System, object_type: str, remote_id: str) -> str:
    return f"{system.name}:{object_type}:{remote_id}"


@pytest.mark.parametrize("name", list(SYSTEMS))
def test_the_hostile_set_syncs_every_object_and_each_value_is_stored_cleaned_or_quarantined(
        engine: Engine, name: str) -> None:
    system = SYSTEMS[name]
    world, planted = hostile_world(system)
    with serving(system, world) as emulator:
        connector = system.connector(emulator)
        loader = PageLoader(engine, name, load_mappings(mappings_root(), name), run_id="hostile")
        batches = {object_type: pull_pages(engine, connector, loader, object_type) for object_type in system.objects}
    assert all(batch.done for batch in batches.values()), {k: b.done for k, b in batches.items()}
    people_key = system.people[0]
    stored = dict(rows(engine, "SELECT id, first_name FROM person_record WHERE id LIKE :s", s=f"{name}:%"))
    expected = dict(FIRST_NAMES)
    for remote_id, value in planted["first"].items():
        assert stored[key(system, people_key, remote_id)] == expected[value]
    long_key, _, _, column, limit = system.long
    table, column = column.split(".")
    (long_text,), = rows(engine, f"SELECT {column} FROM {table} WHERE id = :id",
                         id=key(system, long_key, planted["long"]))
    assert long_text == "Ω" * (limit - 1) + "…"
    raw_first = rows(engine, "SELECT raw FROM source_record WHERE id = :id",
                     id=key(system, people_key, next(iter(planted["first"]))))[0][0]
    raw_text = str(raw_first)
    assert "AnaMaria" in raw_text and "\x00" not in raw_text  # the raw JSON payload is cleaned too
    if planted["custom"] is not None:
        (custom,), = rows(engine, "SELECT custom FROM person_record WHERE id = :id",
                          id=key(system, people_key, planted["custom"]))
        custom = custom if isinstance(custom, dict) else __import__("json").loads(custom)
        assert custom[system.custom[1]] == JSON_NUL[1]
    quarantined = dict(((object_type, remote_id), (reason, detail)) for object_type, remote_id, reason, detail in
                       rows(engine, "SELECT object_type, remote_id, reason, detail FROM quarantine WHERE system = :s",
                            s=name))
    for remote_id in planted["deals"]:  # an invalid number or date is the mapping's invalid_value
        reason, detail = quarantined[(system.deals[0], remote_id)]  # type: ignore[index]
        assert reason == "invalid_value", detail
    assert not [item for item in quarantined.values() if item[0] == "database_error"]
    assert rows(engine, "SELECT count(*) FROM person_record")[0][0] > 0  # the SQL-looking name dropped nothing


CALLS = load_mappings(mappings_root(), "hubspot")


def call(remote_id: str, title: str, body: Any = "Discussed renewal") -> RemoteRecord:
    return RemoteRecord("calls", remote_id, {"id": remote_id, "properties": {
        "hs_call_title": title, "hs_call_body": body, "hs_timestamp": "2026-01-02T03:04:05Z",
        "hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED", "note": {"nested": title}}},
        created_at=ANCHOR, modified_at=ANCHOR)


def test_lone_surrogates_and_bad_remote_ids_are_cleaned_or_quarantined_at_the_loader(engine: Engine) -> None:
    loader = PageLoader(engine, "hubspot", CALLS, run_id="surrogates")
    page = Page("calls", [call("1", "half \ud800 a pair"), call("2", "fine"), call("x" * 201, "long id"),
                          call("bad\x00id", "nul id"), call("3", "nul\x00 and \udfff")], cursor="c1")
    counts = loader.store(page)
    assert (counts.inserted, counts.quarantined) == (3, 2)
    subjects = dict(rows(engine, "SELECT id, subject FROM interaction"))
    assert subjects == {"hubspot:calls:1": "half \ufffd a pair", "hubspot:calls:2": "fine",
                        "hubspot:calls:3": "nul and \ufffd"}
    raw = str(rows(engine, "SELECT raw FROM source_record WHERE id = 'hubspot:calls:3'")[0][0])
    assert "\ufffd" in raw and "\x00" not in raw
    reasons = rows(engine, "SELECT remote_id, reason, detail FROM quarantine ORDER BY remote_id")
    assert [(reason, "remote id" in detail) for _, reason, detail in reasons] == [("invalid_value", True)] * 2
    assert all(len(remote_id) <= 200 and "\x00" not in remote_id for remote_id, _, _ in reasons)
    assert rows(engine, "SELECT cursor FROM sync_state")[0][0] == "c1"


def test_a_record_the_database_refuses_is_quarantined_and_the_rest_of_its_page_is_stored(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    real = loader_module.upsert

    def refusing(connection: Any, model: Any, items: Any, **kwargs: Any) -> int:
        if any("poison" in str(item.get("subject", "")) for item in items):
            raise DataError("INSERT …", {}, Exception("value refused by the database (test)"))
        return real(connection, model, items, **kwargs)

    monkeypatch.setattr(loader_module, "upsert", refusing)
    loader = PageLoader(engine, "hubspot", CALLS, run_id="refused")
    page = Page("calls", [call(str(i), "poison" if i == 3 else f"call {i}") for i in range(6)], cursor="c2")
    counts = loader.store(page)
    assert (counts.inserted, counts.quarantined, counts.records_read) == (5, 1, 6)
    assert sorted(row[0] for row in rows(engine, "SELECT id FROM interaction")) == [
        f"hubspot:calls:{i}" for i in (0, 1, 2, 4, 5)]
    assert rows(engine, "SELECT count(*) FROM source_record WHERE id = 'hubspot:calls:3'")[0][0] == 0
    (remote_id, reason, detail), = rows(engine, "SELECT remote_id, reason, detail FROM quarantine")
    assert (remote_id, reason) == ("3", "database_error") and "refused by the database" in detail
    assert rows(engine, "SELECT cursor FROM sync_state")[0][0] == "c2"
    monkeypatch.setattr(loader_module, "upsert", real)  # fixed: read again, stored and resolved
    page = Page("calls", [call("3", "fixed")], cursor="c3")
    assert loader.store(page).inserted == 1
    assert rows(engine, "SELECT resolved_at IS NOT NULL FROM quarantine")[0][0]
