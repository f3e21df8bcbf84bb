"""History does not depend on the day the hub was installed (journey.md: history does not shrink). A first
sync of an org where records were archived (HubSpot), deleted into the recycle bin (Salesforce) or merged
(Salesforce, Dataverse) before install gives the same customers, stages and entered-at times as a hub that was
installed before, synced, and then saw those records removed and merged. (A HubSpot merge cannot be replayed:
the merged-away contact exists nowhere in the world, only in the survivor's `hs_merged_object_ids`; both
hubs read it that way.)"""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text

from flows import sync as sync_flow
from sandbox.runtime import Sandbox
from sandbox.truthcheck import check
from sandbox.world import generate
from tests.conftest import truncate_all
from tests.e2e.hub import hub_environment, pull, tag

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
PEOPLE, SEED = 250, 43         # a world whose history holds archived contacts and activities, and Opportunities
                               # (with their contact roles) in Salesforce's recycle bin


def before_removals(after: Any, before: Any) -> Any:
    """The world `after` shows, as it was before its readable removals: archived HubSpot records live again,
    Salesforce recycle-bin records as they were before the delete (records gone for good stay gone)."""
    world = copy.deepcopy(after)
    for rows in world.hubspot.objects.values():
        for row in rows:
            if row.get("archived"):
                row["archived"] = False
                row.pop("archivedAt", None)
    for sobject, rows in world.salesforce.records.items():
        earlier = {row["Id"]: row for row in before.salesforce.records[sobject]}
        rows[:] = [copy.deepcopy(earlier[row["Id"]]) if row.get("IsDeleted") and not earlier[row["Id"]].get(
            "IsDeleted") else row for row in rows]
        for row in rows:
            if row.get("MasterRecordId"):                   # a merge loser, not merged yet
                row.update(IsDeleted=False, MasterRecordId=None)
    for rows in (world.dynamics.rows["contacts"], world.dynamics.rows["leads"]):
        for row in rows:
            if row.get("merged"):
                row.update(merged=False, _masterid_value=None, statecode=0, statuscode=1)
    return world


def merges_of(after: Any) -> dict[str, list[tuple[str, str, str]]]:
    """(object, master, loser) of every Salesforce and Dataverse merge `after` shows."""
    salesforce = [(sobject, row["MasterRecordId"], row["Id"]) for sobject, rows in after.salesforce.records.items()
                  for row in rows if row.get("MasterRecordId")]
    dynamics = [(entity_set, row["_masterid_value"], row[key]) for entity_set, key in (("contacts", "contactid"),
                                                                                       ("leads", "leadid"))
                for row in after.dynamics.rows[entity_set] if row.get("merged")]
    return {"salesforce": salesforce, "dynamics": dynamics}


def remove_as_after(sandbox: Sandbox, after: Any) -> dict[str, int]:
    """Archive and delete, through the emulators, what `after` shows archived or in the recycle bin."""
    done = {"archived": 0, "deleted": 0, "merged": 0}
    hubspot, salesforce, dynamics = sandbox.hubspot.emulator, sandbox.salesforce.emulator, sandbox.dynamics.emulator
    with hubspot.lock:
        for object_type, rows in after.hubspot.objects.items():
            types = hubspot.store.types[object_type]
            for row in rows:
                if row.get("archived"):
                    hubspot.store.archive(types, types.records[row["id"]], hubspot.now_ms())
                    done["archived"] += 1
    with salesforce.lock:
        for sobject, rows in after.salesforce.records.items():
            if sobject == "OpportunityContactRole":
                continue                      # they go with their Opportunity (cascade delete)
            for row in rows:
                if row.get("IsDeleted") and not row.get("MasterRecordId"):
                    salesforce.store.delete(sobject, row["Id"])
                    done["deleted"] += 1
        for sobject, master, loser in merges_of(after)["salesforce"]:
            salesforce.store.merge(sobject, master, loser)
            done["merged"] += 1
    for entity_set, master, loser in merges_of(after)["dynamics"]:
        with dynamics.lock:
            dynamics.merge(entity_set, master, loser)
        done["merged"] += 1
    return done


def merged_away(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return {row[0] for row in connection.execute(text(
            "SELECT id FROM source_record WHERE merged_into IS NOT NULL AND is_deleted = :yes"), {"yes": True})}


def verdicts(engine: Engine) -> dict[frozenset[str], tuple[Any, ...]]:
    """Each customer as the set of its person records → (stage, entered at, segment)."""
    with engine.connect() as connection:
        members: dict[str, set[str]] = {}
        for record_id, customer_id in connection.execute(text("SELECT id, customer_id FROM person_record")):
            members.setdefault(customer_id, set()).add(record_id)
        state = {row[0]: tuple(row[1:]) for row in connection.execute(text(
            "SELECT customer_id, lifecycle_stage, lifecycle_stage_entered_at, segment FROM customer_360"))}
    return {frozenset(records): state.get(customer) for customer, records in members.items() if customer}


@pytest.mark.slow
def test_a_first_sync_after_records_were_removed_equals_a_hub_installed_before_them(engine: Engine) -> None:
    after = generate(PEOPLE, SEED, ANCHOR, org="full", history=True)
    before = before_removals(after, generate(PEOPLE, SEED, ANCHOR, org="full", history=False))
    url = engine.url.render_as_string(hide_password=False)

    with Sandbox(world=before, anchor=ANCHOR, limits=False) as sandbox, hub_environment(sandbox.env, url) as settings:
        assert all(sync.status == "succeeded" for sync in pull(settings))
        hubspot = sync_flow.connector_for("hubspot", settings)
        hubspot.reader.config = replace(hubspot.reader.config, archived_check_interval_seconds=0)  # type: ignore[attr-defined]
        removed = remove_as_after(sandbox, after)
        again = pull(settings)
        assert all(sync.status == "succeeded" for sync in again)
        deleted = {sync.system: sync.totals().deleted for sync in again}
        tag(settings, ANCHOR)
        installed_before = verdicts(engine)
        merged_before = merged_away(engine)
    assert removed["archived"] >= 5 and removed["deleted"] >= 5 and removed["merged"] >= 3
    assert deleted["hubspot"] == removed["archived"], "each archived record came as a tombstone"
    assert deleted["salesforce"] >= removed["deleted"], "each deleted record (and its contact roles) too"
    losers = {f"{system}:{name}:{loser.lower() if system == 'dynamics' else loser}"
              for system, merges in merges_of(after).items() for name, _, loser in merges}
    assert losers <= merged_away(engine), "each merge loser is tombstoned and points at its survivor"

    truncate_all(engine)
    with Sandbox(world=after, anchor=ANCHOR, limits=False) as sandbox, hub_environment(sandbox.env, url) as settings:
        first = pull(settings)
        assert all(sync.status == "succeeded" for sync in first)
        tag(settings, ANCHOR)
        installed_after = verdicts(engine)
        report = check(engine, after.truth)
    assert report.perfect, report.problems
    assert installed_after == installed_before
    assert merged_away(engine) == merged_before
    with engine.connect() as connection:
        kept = connection.execute(text(
            "SELECT COUNT(*) FROM association a JOIN source_record s ON s.id = a.source_id "
            "WHERE s.object_type = 'OpportunityContactRole' AND s.is_deleted = :yes AND a.is_deleted = :no"),
            {"yes": True, "no": False}).scalar_one()
    assert kept >= 1, "an Opportunity's contact roles deleted with it still attribute it"
