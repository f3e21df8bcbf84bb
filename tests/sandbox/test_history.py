"""History from before the hub was installed (sandbox/world/history.py), served by each emulator the way its
vendor keeps it, read through the vendors' client libraries from a generated plain org with history.

- HubSpot: a restorable delete keeps the record 90 days ("Restore deleted records", knowledge.hubspot.com);
  the objects API lists it with `archived=true` ("Whether to return only results that have been archived");
  its activities are "unassociated" from the live record ("Understand restorable and permanent contact
  deletions"). A merged contact's id resolves to the survivor, which lists it in `hs_merged_object_ids`.
- Salesforce: deleted records stay in the recycle bin for 15 days, visible to queryAll with IsDeleted = true
  (SOAP/REST API guide, queryAll); a merge deletes the losers, whose MasterRecordId names the master.
- Dataverse: deleted rows are gone; Merge deactivates the subordinate (statecode 1, merged = true,
  masterid = the master) instead of deleting it (Web API "Merge" action).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from hubspot import HubSpot
from hubspot.crm.contacts import BatchReadInputSimplePublicObjectId, SimplePublicObjectId
from hubspot.crm.objects import ApiException as ObjectsApiException
from hubspot.crm.objects import Filter, FilterGroup, PublicObjectSearchRequest

from sandbox.runtime import Sandbox
from tests.sandbox.test_org_profiles import hubspot, salesforce

ANCHOR = datetime(2026, 3, 15, tzinfo=UTC)
TOKEN = "sandbox-token"
ENGAGEMENTS = ("calls", "meetings", "notes", "tasks", "emails")
ALL_TYPES = ("contacts", "companies", "deals", "tickets", *ENGAGEMENTS)


@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(people=500, seed=7, anchor=ANCHOR, org="plain", limits=False) as running:
        yield running


@pytest.fixture(scope="module")
def events(sandbox: Sandbox) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """(event, system) → the truth's history entries, each with its object type and id split out."""
    found: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for person in sandbox.truth["persons"]:
        for entry in person.get("history", []):
            system, object_type, remote_id = entry["record"].split(":")
            found[(entry["event"], system)].append({**entry, "type": object_type, "id": remote_id,
                                                    "person": person})
    return found


def instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00").replace("+0000", "+00:00"))


def every_record(client: HubSpot, object_type: str, **kwargs: Any) -> list[Any]:
    api = client.crm.objects.basic_api
    out, after = [], None
    while True:
        page = api.get_page(object_type, limit=100, after=after, **kwargs)
        out += page.results
        if page.paging is None:
            return out
        after = page.paging.next.after


def linked(record: Any) -> set[tuple[str, str]]:
    return {(to_type, item.id) for to_type, found in (record.associations or {}).items() for item in found.results}


def seeded_links(sandbox: Sandbox, object_type: str, record_id: str) -> set[tuple[str, str]]:
    """The associations the world gave a record (either direction), as (to_type, to_id)."""
    links = set()
    for from_type, from_id, to_type, to_id, _ in sandbox.world.hubspot.associations:
        if (from_type, from_id) == (object_type, record_id):
            links.add((to_type, to_id))
        elif (to_type, to_id) == (object_type, record_id):
            links.add((from_type, from_id))
    return links


# ================================================================================================ HubSpot
def test_hubspot_archived_records_are_listed_with_archived_true_and_keep_their_own_associations(
        sandbox: Sandbox, events: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    archived = events[("archived", "hubspot")]
    assert {entry["type"] for entry in archived} >= {"contacts", "deals"}
    client = hubspot(sandbox)
    with_links = 0
    for entry in archived:
        object_type, record_id = entry["type"], entry["id"]
        others = [t for t in ALL_TYPES if t != object_type]
        listed = {r.id: r for r in every_record(client, object_type, archived=True, associations=others,
                                                properties=["hs_object_id", "createdate", "hs_createdate"])}
        record = listed[record_id]
        assert record.archived is True and record.archived_at == instant(entry["at"])
        assert record.properties["hs_object_id"] == record_id          # its last properties are still there
        expected = seeded_links(sandbox, object_type, record_id)
        assert linked(record) == expected                                # listed on its own side
        with_links += bool(expected)
        with pytest.raises(ObjectsApiException) as missing:
            client.crm.objects.basic_api.get_by_id(object_type, record_id)
        assert missing.value.status == 404
        assert client.crm.objects.basic_api.get_by_id(object_type, record_id, archived=True).archived is True
        for to_type, to_id in expected:                                  # …but gone from the live records
            live = client.crm.objects.basic_api.get_by_id(to_type, to_id, associations=[object_type])
            assert (object_type, record_id) not in linked(live)
        search = PublicObjectSearchRequest(filter_groups=[FilterGroup(filters=[
            Filter(property_name="hs_object_id", operator="EQ", value=record_id)])])
        assert client.crm.objects.search_api.do_search(object_type, search).total == 0
    assert with_links >= 2


def test_hubspot_merged_away_contacts_resolve_to_the_survivor_and_are_listed_nowhere(
        sandbox: Sandbox, events: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    merged = events[("merged", "hubspot")]
    assert merged
    client = hubspot(sandbox)
    active = {r.id for r in every_record(client, "contacts")}
    archived = {r.id for r in every_record(client, "contacts", archived=True)}
    for entry in merged:
        survivor = entry["into"].split(":")[2]
        assert entry["id"] not in active | archived and survivor in active | archived
        gone = survivor in archived           # the survivor itself was deleted later: only archived=true finds it
        got = client.crm.contacts.basic_api.get_by_id(entry["id"], properties=["hs_merged_object_ids"], archived=gone)
        assert got.id == survivor and entry["id"] in got.properties["hs_merged_object_ids"].split(";")
        read = client.crm.contacts.batch_api.read(BatchReadInputSimplePublicObjectId(
            properties=["email"], inputs=[SimplePublicObjectId(id=entry["id"])]), archived=gone)
        assert [r.id for r in read.results] == [survivor] and not getattr(read, "errors", None)
        assert entry["id"] not in entry["person"]["records"]            # the truth never counts merged-away ids


def test_hubspot_records_purged_before_install_are_gone(
        sandbox: Sandbox, events: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    purged = events[("purged", "hubspot")]
    assert purged
    api = hubspot(sandbox).crm.objects.basic_api
    for entry in purged:
        for archived in (False, True):
            with pytest.raises(ObjectsApiException) as missing:
                api.get_by_id(entry["type"], entry["id"], archived=archived)
            assert missing.value.status == 404
        assert entry["readable"] is False


# ================================================================================================ Salesforce
def test_salesforce_recycle_bin_is_served_by_query_all_only(
        sandbox: Sandbox, events: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    deleted = events[("recycle_bin", "salesforce")]
    assert {entry["type"] for entry in deleted} >= {"Opportunity", "Task"}
    sf = salesforce(sandbox)
    for entry in deleted:
        soql = f"SELECT Id, IsDeleted, SystemModstamp, LastModifiedDate FROM {entry['type']} WHERE Id = '{entry['id']}'"
        assert sf.query(soql)["totalSize"] == 0
        [row] = sf.query_all(soql, include_deleted=True)["records"]
        assert row["IsDeleted"] is True
        assert instant(row["SystemModstamp"]) == instant(row["LastModifiedDate"]) == instant(entry["at"])
        assert ANCHOR - timedelta(days=15) < instant(entry["at"]) < ANCHOR    # inside the recycle bin's 15 days
        if entry["type"] == "Opportunity":                 # its contact roles went with it
            roles = f"SELECT Id, IsDeleted FROM OpportunityContactRole WHERE OpportunityId = '{entry['id']}'"
            assert sf.query(roles)["totalSize"] == 0
            assert [r["IsDeleted"] for r in sf.query_all(roles, include_deleted=True)["records"]] == [True]
    task = next(entry for entry in deleted if entry["type"] == "Task")
    csv = "".join(sf.bulk2.Task.query_all(f"SELECT Id, IsDeleted FROM Task WHERE Id = '{task['id']}'", wait=0))
    assert f'"{task["id"]}","true"' in csv


def test_salesforce_merge_losers_are_deleted_and_name_their_master(
        sandbox: Sandbox, events: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    merged = events[("merged", "salesforce")]
    assert merged
    sf = salesforce(sandbox)
    for entry in merged:
        soql = f"SELECT Id, IsDeleted, MasterRecordId FROM Contact WHERE Id = '{entry['id']}'"
        assert sf.query(soql)["totalSize"] == 0
        [row] = sf.query_all(soql, include_deleted=True)["records"]
        assert row["IsDeleted"] is True and row["MasterRecordId"] == entry["into"].split(":")[2]
        assert entry["record"] in entry["person"]["records"]           # a loser still is that person's record


def test_salesforce_records_purged_before_install_are_gone(
        sandbox: Sandbox, events: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    purged = events[("purged", "salesforce")]
    assert purged
    sf = salesforce(sandbox)
    for entry in purged:
        found = sf.query_all(f"SELECT Id FROM {entry['type']} WHERE Id = '{entry['id']}'", include_deleted=True)
        assert found["totalSize"] == 0


# ================================================================================================ Dataverse
def test_dataverse_deleted_rows_are_gone_and_merged_rows_are_deactivated(
        sandbox: Sandbox, events: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    deleted, merged = events[("deleted", "dynamics")], events[("merged", "dynamics")]
    assert deleted and merged
    with httpx.Client(base_url=f"{sandbox.dynamics.url}/api/data/v9.2/", headers={
            "Authorization": f"Bearer {TOKEN}", "Accept": "application/json", "OData-Version": "4.0"}) as client:
        for entry in deleted:
            gone = client.get(f"{entry['type']}({entry['id']})")
            assert gone.status_code == 404 and gone.json()["error"]["code"] == "0x80040217"
        for entry in merged:
            row = client.get(f"contacts({entry['id']})", params={
                "$select": "merged,statecode,statuscode,_masterid_value"}).json()
            assert (row["merged"], row["statecode"], row["statuscode"]) == (True, 1, 2)
            assert row["_masterid_value"] == entry["into"].split(":")[2]
            assert entry["record"] in entry["person"]["records"]
