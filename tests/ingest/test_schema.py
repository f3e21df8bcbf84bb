"""The mappings decide what is read, checked against each org's own schema first (journeyhub.ingest.schema):
a field added only in a mapping YAML is read on the next sync on every CRM, a misspelled one is reported by
name (by the sync and by `config check --online`), a missing optional one is a warning said once, and the
org's describe is cached, refreshed on a schedule and on a "field not found" answer."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from connectors.salesforce import SalesforceConfig, SalesforceConnector
from flows.sync import sync_system
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.schema import SCHEMA_MAX_AGE, load_state, plan_read
from journeyhub.ingest.spec import MappingSpec
from sandbox.common.server import EmulatorServer
from sandbox.runtime import Sandbox
from sandbox.salesforce import SalesforceData, SalesforceEmulator
from sandbox.world import generate
from tests.e2e.hub import hub_environment

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
#: per CRM: the person object, a field its default mapping does not read, where the world gets a value of it,
#: and a field of the default mapping to misspell
CASES = {
    "hubspot": ("contacts", "properties.loyalty_tier", "properties.firstname", "properties.fristname"),
    "salesforce": ("Contact", "Title", "FirstName", "FristName"),
    "dynamics": ("contacts", "jobtitle", "firstname", "fristname"),
}


def url_of(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def world() -> Any:
    """A small world whose contacts carry a value in a field no default mapping reads (a custom HubSpot
    property, Salesforce's standard Title, Dataverse's standard jobtitle)."""
    world = generate(60, 3, ANCHOR)
    for contact in world.hubspot.objects["contacts"]:
        contact["properties"]["loyalty_tier"] = f"tier-{contact['id']}"
    for contact in world.salesforce.records["Contact"]:
        contact["Title"] = f"title-{contact['Id']}"
    for contact in world.dynamics.rows["contacts"]:
        contact["jobtitle"] = f"job-{contact['contactid']}"
    return world


@pytest.fixture
def sandbox(world: Any) -> Iterator[Sandbox]:
    with Sandbox(world=world, anchor=ANCHOR, limits=False) as running:
        yield running


def copy_mappings(tmp_path: Path) -> Path:
    target = tmp_path / "mappings"
    shutil.copytree(mappings_root(), target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def edit(path: Path, old: str, new: str) -> None:
    content = path.read_text()
    assert old in content, f"{path}: {old!r}"
    path.write_text(content.replace(old, new, 1))


def custom_values(engine: Engine, system: str, key: str) -> dict[str, Any]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, custom FROM person_record WHERE id LIKE :prefix"),
                                  {"prefix": f"{system}:%"}).all()
    values = {}
    for record_id, custom in rows:
        custom = json.loads(custom) if isinstance(custom, str) else custom
        values[record_id] = (custom or {}).get(key)
    return values


# ---------------------------------------------------------------------------------------------- mapping paths
def test_every_path_a_mapping_reads_is_found_with_the_rules_that_read_it() -> None:
    contacts = load_mappings(mappings_root(), "hubspot")["contacts"].source_paths()
    assert contacts["properties.email"] == ["email"]
    assert contacts["properties.hs_feedback_last_nps_rating"] == ["nps.score", "nps (when)"]
    assert contacts["properties.num_conversion_events"] == ["recent_form (when)"]
    assert contacts["properties.hs_merged_object_ids"] == ["merges"]
    assert contacts["_associations.calls"] == ["linked"]
    tasks = load_mappings(mappings_root(), "dynamics")["tasks"].source_paths()
    assert tasks["new_externalid"] == ["skip_when"] and tasks["new_surveyscore"] == ["score", "score_max"]
    assert tasks["_lookup._regardingobjectid_value"][:2] == ["company_id", "deal_id"]  # a typed ref's column


def test_presence_must_name_a_path_the_mapping_reads() -> None:
    with pytest.raises(ValueError, match=r"presence names 'properties\.fristname', which no rule"):
        MappingSpec.model_validate({"object": "contacts", "entity": "person", "fields": {
            "kind": {"value": "contact"}, "first_name": "properties.firstname"},
            "presence": {"properties.fristname": "optional"}})
    with pytest.raises(ValueError, match=r"presence is `required`, `optional`"):
        MappingSpec.model_validate({"object": "contacts", "entity": "person", "fields": {
            "kind": {"value": "contact"}, "first_name": "properties.firstname"},
            "presence": {"properties.firstname": {"required": True, "optional": "both"}}})


# ---------------------------------------------------------------------------------------------- per CRM
@pytest.mark.parametrize("system", list(CASES))
def test_a_field_added_only_in_the_mapping_yaml_is_read_on_the_next_sync(
        engine: Engine, tmp_path: Path, sandbox: Sandbox, system: str) -> None:
    object_type, path, _, _ = CASES[system]
    mappings = copy_mappings(tmp_path)
    with hub_environment(sandbox.env, url_of(engine), mappings) as settings:
        first = sync_system(settings, system, objects=[object_type])  # type: ignore[arg-type]
        assert first.status == "succeeded" and first.totals().inserted > 0
        assert set(custom_values(engine, system, "added").values()) == {None}
        edit(mappings / system / f"{object_type}.yaml", "custom:\n", f"custom:\n  added: {path}\n")
        second = sync_system(settings, system, objects=[object_type])  # type: ignore[arg-type]
        third = sync_system(settings, system, objects=[object_type])  # type: ignore[arg-type]
    assert second.status == "succeeded" and second.warnings == []
    values = custom_values(engine, system, "added")
    prefix = {"hubspot": "tier-", "salesforce": "title-", "dynamics": "job-"}[system]
    stored = [value for value in values.values() if value is not None]
    assert stored and all(value.startswith(prefix) for value in stored), values
    expected = {"hubspot": len(sandbox.world.hubspot.objects["contacts"]),
                "salesforce": len(sandbox.world.salesforce.records["Contact"]),
                "dynamics": len(sandbox.world.dynamics.rows["contacts"])}[system]
    quarantined = first.totals().quarantined
    assert len(stored) == expected - quarantined - first.totals().deleted, \
        "records that did not change got the new field too (the object was read again in full)"
    assert third.totals().inserted + third.totals().updated == 0, "once read in full, incremental again"


@pytest.mark.parametrize("system", list(CASES))
def test_a_misspelled_field_fails_its_object_by_name_and_the_rest_syncs(
        sqlite_engine: Engine, tmp_path: Path, sandbox: Sandbox, system: str) -> None:
    object_type, _, right, wrong = CASES[system]
    mappings = copy_mappings(tmp_path)
    edit(mappings / system / f"{object_type}.yaml", f"first_name: {right}\n", f"first_name: {wrong}\n")
    name = wrong.split(".")[-1]
    with hub_environment(sandbox.env, url_of(sqlite_engine), mappings) as settings:
        result = sync_system(settings, system)  # type: ignore[arg-type]
    failed = {item.object_type: item.error for item in result.objects if item.status == "failed"}
    assert list(failed) == [object_type] and result.error is None, "that object only; the CRM goes on"
    message = failed[object_type] or ""
    assert message.startswith(f"{system} {object_type}: {name} is not in this org")
    assert f"mappings/{system}/{object_type}.yaml" in message and "first_name" in message
    assert f"presence: {{{wrong}: optional}}" in message
    assert all(item.status in ("succeeded", "partial") for item in result.objects if item.object_type != object_type)
    with sqlite_engine.connect() as connection:
        assert connection.execute(text("SELECT COUNT(*) FROM person_record WHERE id LIKE :p"),
                                  {"p": f"{system}:{object_type}:%"}).scalar_one() == 0, "no silent NULLs"

    check = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", "config", "check", "--online"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=120,
                           env={**_clean_env(), **sandbox.env, "JOURNEYHUB_MAPPINGS_DIR": str(mappings),
                                "COLUMNS": "250"})
    assert check.returncode == 2, check.stdout + check.stderr
    assert f"{system} {object_type}: {name} is not in this org" in check.stdout
    assert "Traceback" not in check.stdout + check.stderr


def _clean_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items()
            if not key.startswith(("HUBSPOT_", "SALESFORCE_", "DYNAMICS_", "JOURNEYHUB_"))}


# ---------------------------------------------------------------------------------------------- the cache
TASKS = [{"Subject": f"Call {index}", "Status": "Completed", "TaskSubtype": "Call", "Type": "Call",
          "CallType": "Outbound", "CallDisposition": "Completed", "ActivityDate": "2025-05-01",
          "CreatedDate": "2025-05-01T10:00:00.000+0000", "SystemModstamp": "2025-05-01T10:00:00.000+0000"}
         for index in range(5)]


@pytest.fixture
def salesforce_full() -> Iterator[SalesforceEmulator]:
    em = SalesforceEmulator()
    em.load(SalesforceData(records={"Task": TASKS}))
    with EmulatorServer(em):
        yield em


def salesforce(em: SalesforceEmulator) -> SalesforceConnector:
    return SalesforceConnector(SalesforceConfig(instance_url=em.base_url, access_token="sandbox-token"))


def test_the_orgs_describe_is_cached_and_refreshed_on_a_schedule_and_for_a_new_field(
        engine: Engine, salesforce_full: SalesforceEmulator) -> None:
    client, spec = salesforce(salesforce_full), load_mappings(mappings_root(), "salesforce")["Task"]
    now = datetime.now(UTC)
    first = plan_read(engine, client, spec, now=now)
    assert first.refreshed and first.api_calls == 1 and "Survey_Score__c" in first.fields
    assert not first.missing and not first.reread
    cached = plan_read(engine, client, spec, now=now + SCHEMA_MAX_AGE / 2)
    assert not cached.refreshed and cached.api_calls == 0 and cached.fields == first.fields
    assert plan_read(engine, client, spec, now=now + SCHEMA_MAX_AGE + timedelta(seconds=1)).refreshed
    grown = spec.model_copy(update={"custom": {**spec.custom, "priority": spec.custom["task_type"].model_copy(
        update={"from_": "Priority"})}})
    asked = plan_read(engine, client, grown, now=now + timedelta(seconds=2))
    assert asked.refreshed, "a field the cache does not know is described at once"
    assert "Priority" in asked.fields and asked.reread, "the fields read grew: read everything once"
    state = load_state(engine, "salesforce", "Task")
    assert state is not None and "Priority" in state["present"] and state["reread"] is True


def test_a_field_deleted_since_the_describe_is_described_again_and_left_out(
        engine: Engine, salesforce_full: SalesforceEmulator, tmp_path: Path) -> None:
    """The cache says the org has Survey_Score__c; the org (a different one now) refuses it: the sync
    describes again, warns once and stores every record."""
    spec = load_mappings(mappings_root(), "salesforce")["Task"]
    assert "Survey_Score__c" in plan_read(engine, salesforce(salesforce_full), spec).fields
    plain = SalesforceEmulator(custom_fields=False)
    plain.load(SalesforceData(records={"Task": TASKS}))
    env = {"SALESFORCE_INSTANCE_URL": "", "SALESFORCE_ACCESS_TOKEN": "sandbox-token"}
    with EmulatorServer(plain):
        env["SALESFORCE_INSTANCE_URL"] = plain.base_url
        with hub_environment(env, url_of(engine)) as settings:
            result = sync_system(settings, "salesforce", objects=["Task"])
        refused = plain.requests.snapshot()["log"]
    (task,) = result.objects
    assert task.status == "succeeded" and task.counts.inserted == len(TASKS), task.error
    assert [warning.split(";")[0] for warning in task.warnings] == [
        "salesforce Task: External_Id__c not in this org", "salesforce Task: Survey_Score__c not in this org",
        "salesforce Task: Review_Rating__c not in this org"], "each said once"
    assert sum(1 for entry in refused if entry["route"].startswith("GET /services/data/v{version}/sobjects/{sobject}"
                                                                    "/describe")) == 1


def test_a_missing_write_back_marker_is_looked_for_on_every_run(engine: Engine) -> None:
    """External_Id__c recognises the hub's own mirrored Tasks: until an admin creates it the org is described on
    every run (the push may start writing it any moment), the other fields from the cache."""
    plain = SalesforceEmulator(custom_fields=False)
    plain.load(SalesforceData(records={"Task": TASKS}))
    spec = load_mappings(mappings_root(), "salesforce")["Task"]
    with EmulatorServer(plain):
        client = salesforce(plain)
        first = plan_read(engine, client, spec)
        assert "External_Id__c" in [use.name for use in first.missing_optional]
        assert plan_read(engine, client, spec).refreshed, "described again at once"
        contacts = plan_read(engine, client, load_mappings(mappings_root(), "salesforce")["Contact"])
        assert not plan_read(engine, client, load_mappings(mappings_root(), "salesforce")["Contact"]).refreshed
        assert contacts.missing == []


def test_hubspot_asks_for_its_marker_before_the_first_push_creates_it(engine: Engine) -> None:
    """HubSpot ignores a property it lacks, so the notes' marker is asked for while it is missing: the hub's
    first note after the push that created it is recognised at once, however fresh the cached describe."""
    from connectors.base import FieldSpec, WriteOp
    from connectors.hubspot import HubSpotConfig, HubSpotConnector
    from journeyhub.ingest.loader import PageLoader
    from journeyhub.ingest.sync import pull_pages
    from sandbox.hubspot import HubSpotData, HubSpotEmulator

    emu = HubSpotEmulator(org="plain", rate_limit_per_10s=None, search_per_second=None)
    emu.load(HubSpotData(objects={"contacts": [{"id": "101", "properties": {"email": "a@example.com"},
                                                "createdAt": "2026-01-01T00:00:00.000Z",
                                                "updatedAt": "2026-01-01T00:00:00.000Z"}]}))
    specs = load_mappings(mappings_root(), "hubspot")
    with EmulatorServer(emu):
        hub = HubSpotConnector(HubSpotConfig(access_token="sandbox-token", base_url=emu.base_url))
        before = plan_read(engine, hub, specs["notes"])
        assert [use.name for use in before.missing_optional] == ["journeyhub_item_id"]
        assert "journeyhub_item_id" in before.fields
        hub.ensure_fields({"notes": [FieldSpec("journeyhub_item_id", "string", "Item", marker=True)]},
                          group="journeyhub")
        hub.write("notes", [WriteOp("create", "jh:mirror-1", {"hs_timestamp": "2026-02-01T00:00:00Z",
                                                               "hs_note_body": "mirrored"},
                                    associations=[("contacts", "101")])])
        cached = plan_read(engine, hub, specs["notes"])
        assert not cached.refreshed and cached.fields == before.fields
        batch = pull_pages(engine, hub, PageLoader(engine, "hubspot", specs, run_id="t"), "notes",
                           fields=cached.fields)
    assert (batch.counts.records_read, batch.counts.skipped, batch.counts.inserted) == (1, 1, 0)


def test_an_org_whose_schema_may_not_be_read_is_read_unchecked_with_one_warning(engine: Engine) -> None:
    from connectors.hubspot import HubSpotConfig, HubSpotConnector
    from sandbox.common.faults import FaultConfig
    from sandbox.hubspot import HubSpotData, HubSpotEmulator

    emu = HubSpotEmulator(FaultConfig(vendor={"missing_scopes": ["/crm/v3/properties/contacts"]}),
                          rate_limit_per_10s=None, search_per_second=None)
    emu.load(HubSpotData(objects={"contacts": []}))
    spec = load_mappings(mappings_root(), "hubspot")["contacts"]
    with EmulatorServer(emu):
        plan = plan_read(engine, HubSpotConnector(HubSpotConfig(access_token="sandbox-token",
                                                                base_url=emu.base_url)), spec)
    assert plan.problem() is None and "firstname" in plan.fields and "hs_feedback_last_nps_rating" in plan.fields
    (warning,) = plan.warnings()
    assert warning.startswith("hubspot contacts: the org's schema cannot be read (") and "read unchecked" in warning
    assert "crm.schemas.custom.read" in warning
    assert load_state(engine, "hubspot", "contacts") is None, "nothing cached: described again next time"
