"""Write-back end to end on the sandbox: sync → tag → push.

Every system's copy of a customer carries the journey fields and the other systems' items; the dry run
predicts exactly what the real run writes; a record the CRM rejects fails alone and is retried on the next
run without duplicates; a second push writes nothing and leaves no intent; the next sync ingests none of the
hub's own items. On SQLite and PostgreSQL.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from canonical.db import make_engine
from canonical.schema import upgrade
from sandbox.runtime import Sandbox
from tests.conftest import truncate_all
from tests.e2e.hub import engine_of, hub_environment, pull, push_all, scalar, tag

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
WRITE_ROUTES = ("batch/create", "batch/update", "batch/upsert", "composite/sobjects", "$batch")


def writes(counts: dict[str, int]) -> int:
    return sum(count for route, count in counts.items() if any(marker in route for marker in WRITE_ROUTES))


def actions(report: Any) -> Counter[tuple[str, str, str]]:
    return Counter({key: count for key, count in report.plan.actions.items()})


def customer_in_all_three(engine: Any) -> tuple[str, dict[str, str]]:
    with engine.connect() as connection:
        customer = connection.execute(text(
            "SELECT s.customer_id FROM customer_sources s JOIN customer_360 c ON c.customer_id = s.customer_id "
            "WHERE s.is_deleted = false AND s.object_type IN ('contacts', 'Contact') "
            "GROUP BY s.customer_id HAVING COUNT(DISTINCT s.system) = 3 ORDER BY s.customer_id LIMIT 1")).scalar()
        records = dict(connection.execute(text(
            "SELECT system, remote_id FROM customer_sources WHERE customer_id = :c AND is_deleted = false "
            "AND object_type IN ('contacts', 'Contact') ORDER BY remote_id"), {"c": customer}).all())
    return customer, records


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def world(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Any:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('writeback') / 'hub.db'}"
        upgrade(make_engine(url))
    else:
        url = request.getfixturevalue("postgres_database")
        upgrade(make_engine(url))
        truncate_all(make_engine(url))
    with Sandbox(people=150, seed=31, anchor=ANCHOR) as sandbox, hub_environment(sandbox.env, url) as settings:
        pull(settings)
        tag(settings, ANCHOR)
        yield sandbox, settings


def test_write_back_end_to_end(world: Any, tmp_path: Path) -> None:
    sandbox, settings = world
    engine = engine_of(settings)
    customer, records = customer_in_all_three(engine)
    stage = scalar(engine, "SELECT lifecycle_stage FROM customer_360 WHERE customer_id = :c", c=customer)

    # A Dataverse contact disappears between the sync and the push: its writes must fail alone.
    dynamics = sandbox.dynamics.emulator
    with dynamics.lock:
        removed = dynamics.store.remove("contacts", records["dynamics"])

    dry = push_all(settings, dry_run=True)
    sandbox.reset_request_logs()
    assert all(writes(sandbox.request_counts(system)) == 0 for system in ("hubspot", "salesforce", "dynamics")), \
        "a dry run writes nothing"
    real = push_all(settings)
    assert actions(real) == actions(dry), "the dry run predicts exactly the real run's plan"
    outcome = real.outcome
    for (system, object_type, action), count in actions(dry).items():
        if action != "unchanged":
            done = outcome.objects[(system, object_type)]
            assert done.pushed + done.failed >= count
    failed = {key: item for key, item in outcome.objects.items() if item.failed}
    assert set(failed) <= {("dynamics", "contacts"), ("dynamics", "tasks")} and failed, "only the removed contact"
    assert all(records["dynamics"] in error for item in failed.values() for error in item.errors)
    planned = sum(count for (_, _, action), count in dry.plan.actions.items() if action != "unchanged")
    assert sum(item.pushed + item.failed for item in outcome.objects.values()) == planned

    # Every CRM's copy of the customer carries the journey fields and the other CRMs' items.
    hubspot = sandbox.dump_writes("hubspot")
    contact = next(r for r in hubspot["objects"]["contacts"] if r["id"] == records["hubspot"])
    assert contact["properties"]["journey_stage"] == stage
    notes = [r for r in hubspot["objects"].get("notes", []) if r["properties"].get("journeyhub_item_id")]
    note_ids = {a["fromObjectId"] for a in hubspot["associations"]["created"]
                if a["toObjectType"] == "contacts" and a["toObjectId"] == records["hubspot"]}
    assert {n["id"] for n in notes} & note_ids, "HubSpot shows the items of Salesforce and Dataverse"
    salesforce = sandbox.dump_writes("salesforce")
    sf_contact = next(r for r in salesforce["Contact"] if r["Id"] == records["salesforce"])
    assert sf_contact["Journey_Stage__c"] == stage
    assert any(t["WhoId"] == records["salesforce"] and t["External_Id__c"].startswith("jh:") and
               t["Status"] == "Completed" for t in salesforce["Task"])
    assert all(not t["External_Id__c"] or t["Subject"].startswith("[Journey Hub]") for t in salesforce["Task"])

    # The contact comes back: the next push retries exactly what failed, and nothing is duplicated.
    with dynamics.lock:
        dynamics.store.put("contacts", removed)
    retry = push_all(settings)
    retried = {key: count for key, count in retry.plan.actions.items() if key[2] != "unchanged"}
    assert set(retried) == {(s, o, a) for (s, o, a) in dry.plan.actions if (s, o) in failed and a != "unchanged"}
    assert retry.outcome.failed == 0
    dv_tasks = [row for row in dynamics.store.all_rows("tasks") if (row.get("new_externalid") or "").startswith("jh:")]
    markers = Counter(row["new_externalid"] for row in dv_tasks)
    assert markers and max(markers.values()) == 1, "one task per mirrored item, however often pushed"
    assert any(row["_regardingobjectid_value"] == records["dynamics"] for row in dv_tasks)

    # A second push with nothing new writes nothing, and a clean push leaves no intent behind.
    sandbox.reset_request_logs()
    quiet = push_all(settings)
    assert all(action == "unchanged" for _, _, action in quiet.plan.actions)
    assert sum(writes(sandbox.request_counts(system)) for system in ("hubspot", "salesforce", "dynamics")) == 0
    assert scalar(engine, "SELECT COUNT(*) FROM writeback_intent") == 0
    assert all(settled.total == 0 for settled in quiet.settled.values())

    # The next sync sees the hub's own items and skips them: no new interactions, no loop.
    interactions = scalar(engine, "SELECT COUNT(*) FROM interaction")
    syncs = pull(settings)
    skipped = sum(sync.totals().skipped for sync in syncs)
    assert scalar(engine, "SELECT COUNT(*) FROM interaction") == interactions
    mirrored = scalar(engine, "SELECT COUNT(*) FROM writeback_ledger WHERE item_key <> 'fields' AND status = 'pushed'")
    assert skipped == mirrored
    assert tag(settings, ANCHOR).history_changed == 0
    assert writes_after_resync(settings, sandbox) == 0


def writes_after_resync(settings: Any, sandbox: Any) -> int:
    """After pulling the CRMs' new state (our own writes), a push still has nothing to write."""
    sandbox.reset_request_logs()
    report = push_all(settings)
    assert all(action == "unchanged" for _, _, action in report.plan.actions), dict(report.plan.actions)
    return sum(writes(sandbox.request_counts(system)) for system in ("hubspot", "salesforce", "dynamics"))
