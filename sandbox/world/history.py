"""History from before the hub was installed: records archived or deleted before its first sync, each kept
(or not) the way its vendor keeps them. The world's anchor is the install; merges are part of every world
already (stories.py: `hubspot_merge`, `salesforce_merge`, `dynamics_merge`).

- `archived` — HubSpot, deleted within its 90-day recycle bin: the record with its last properties,
  `archived: true` and `archivedAt`, listed with `archived=true`; its associations on its own side only. Readable.
- `recycle_bin` — Salesforce, deleted within its 15-day recycle bin: `IsDeleted = true`, LastModifiedDate =
  SystemModstamp = the delete, served by `queryAll` (an Opportunity's contact roles go with it). Readable.
- `purged` — HubSpot after 90 days, Salesforce after 15: nothing is left. Not readable.
- `deleted` — Dataverse: deleted rows are gone (only merged rows stay, deactivated). Not readable.

`choose_history` marks plan objects with a `Removal` (its own random stream, so the rest of the world is the
same with or without history); `apply_history` edits the rendered CRM data accordingly. An unreadable
removal is kept only when the person's verdict on what is left is still robust (oracle.is_robust) in
both org profiles, so the ground truth never hinges on a window edge.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from sandbox.common.org import ORGS
from sandbox.world.ids import DAY, HOUR, hubspot_time, iso_z, salesforce_time
from sandbox.world.model import DYNAMICS, HUBSPOT, MARKETING, SALESFORCE, Deal, Person, Plan, Record, Removal
from sandbox.world.oracle import evaluate_person, is_robust
from sandbox.world.orgview import object_key, readable_parts

#: share of people with something removed before install
SHARE = 0.08
#: the vendors' recycle-bin windows
HUBSPOT_BIN_DAYS, SALESFORCE_BIN_DAYS = 90, 15
Candidate = tuple[Any, str, int, int, bool]      # object, event, earliest, latest, readable


def choose_history(plan: Plan) -> None:
    """Marks what was archived or deleted before install (at most one object per chosen person)."""
    rng = random.Random(f"{plan.seed}/history")
    anchor = plan.anchor
    for person in plan.people:
        if rng.random() >= SHARE:
            continue
        options = [c for c in _candidates(person, anchor) if c[2] <= c[3]]
        rng.shuffle(options)
        for obj, event, lo, hi, readable in options:
            obj.removal = Removal(event, rng.randint(lo, hi), readable)
            if readable or _still_robust(person, anchor):
                person.cases.append(f"history_{event}")
                break
            obj.removal = None
    plan.history = True


def _candidates(person: Person, anchor: int) -> Iterator[Candidate]:
    case_tickets = {id(i.ticket) for i in person.interactions if i.ticket is not None and i.system == SALESFORCE}
    objects: list[Any] = [*person.deals, *person.tickets,
                          *(i for i in person.interactions if i.remote_id and i.kind != MARKETING)]
    objects += [r for r in person.records if r.system == HUBSPOT and r.exists and r.role == "primary"]
    for obj in objects:
        after = obj.modified + 60
        if obj.system == HUBSPOT:
            yield obj, "archived", max(after, anchor - (HUBSPOT_BIN_DAYS - 5) * DAY), anchor - HOUR, True
            if not isinstance(obj, Record):
                yield obj, "purged", after, anchor - (HUBSPOT_BIN_DAYS + 1) * DAY, False
        elif obj.system == SALESFORCE and id(obj) not in case_tickets:
            after += DAY          # past the rendered SystemModstamp, which may trail LastModifiedDate by a day
            yield obj, "recycle_bin", max(after, anchor - (SALESFORCE_BIN_DAYS - 1) * DAY), anchor - HOUR, True
            yield obj, "purged", after, anchor - (SALESFORCE_BIN_DAYS + 1) * DAY, False
        elif obj.system == DYNAMICS:
            yield obj, "deleted", after, anchor - HOUR, False


def _still_robust(person: Person, anchor: int) -> bool:
    """True when, in each org profile, the person's parts are robust now or were not robust before."""
    for org in ORGS:
        if _robust(person, org, anchor):
            continue
        saved = _lift_removals(person)
        before = _robust(person, org, anchor)
        _restore_removals(saved)
        if before:
            return False
    return True


def _robust(person: Person, org: str, anchor: int) -> bool:
    return all(is_robust(part, anchor, evaluate_person(part, anchor)) for part in readable_parts(person, org))


def _lift_removals(person: Person) -> list[tuple[Any, Removal]]:
    saved = [(obj, obj.removal) for obj in _objects(person) if obj.removal is not None]
    for obj, _ in saved:
        obj.removal = None
    return saved


def _restore_removals(saved: list[tuple[Any, Removal]]) -> None:
    for obj, removal in saved:
        obj.removal = removal


def _objects(person: Person) -> Iterator[Any]:
    yield from person.records
    yield from person.deals
    yield from person.tickets
    yield from person.interactions


# ------------------------------------------------------------------------------------------------ truth
def history_of(person: Person) -> list[dict[str, Any]]:
    """The person's records archived, deleted or merged before install, as the truth lists them."""
    events: list[tuple[int, dict[str, Any]]] = []
    for obj in _objects(person):
        if obj.removal is not None:
            removal = obj.removal
            events.append((removal.at, {"record": object_key(obj), "event": removal.event, "at": iso_z(removal.at),
                                        "readable": removal.readable}))
        if isinstance(obj, Record) and obj.merged_into is not None and obj.merged_at is not None:
            events.append((obj.merged_at, {"record": obj.source_key, "event": "merged", "at": iso_z(obj.merged_at),
                                           "readable": True, "into": obj.merged_into.source_key}))
    return [entry for _, entry in sorted(events, key=lambda e: (e[0], e[1]["record"]))]


# ------------------------------------------------------------------------------------------------ rendering
def apply_history(plan: Plan, hubspot: Any, salesforce: Any, dynamics: Any) -> None:
    """Edits the rendered seed data so each removal looks the way its vendor keeps it."""
    removed = [(obj, obj.removal) for person in plan.people for obj in _objects(person) if obj.removal is not None]
    admin = plan.owners[SALESFORCE][0].remote_id
    for obj, removal in removed:
        system, object_type, remote_id = object_key(obj).split(":", 2)
        if system == HUBSPOT:
            _hubspot(hubspot, object_type, remote_id, removal)
        elif system == SALESFORCE:
            _salesforce(salesforce.records, object_type, remote_id, removal, admin,
                        obj.role_id if isinstance(obj, Deal) else None)
        else:
            pk = {"opportunities": "opportunityid", "incidents": "incidentid",
                  "annotations": "annotationid"}.get(object_type, "activityid")
            _drop(dynamics.rows[object_type], lambda row, pk=pk, key=remote_id: row[pk] == key)


def _hubspot(data: Any, object_type: str, remote_id: str, removal: Removal) -> None:
    rows = data.objects[object_type]
    if removal.readable:
        row = next(row for row in rows if row["id"] == remote_id)
        row["archived"] = True
        row["archivedAt"] = hubspot_time(removal.at)
        return
    _drop(rows, lambda row: row["id"] == remote_id)
    data.associations[:] = [a for a in data.associations
                            if (a[0], a[1]) != (object_type, remote_id) and (a[2], a[3]) != (object_type, remote_id)]


def _salesforce(records: dict[str, list[dict]], sobject: str, remote_id: str, removal: Removal, admin: str,
                role_id: str | None) -> None:
    targets = [(sobject, remote_id)] + ([("OpportunityContactRole", role_id)] if role_id else [])
    for name, rid in targets:
        if removal.readable:
            row = next(row for row in records[name] if row["Id"] == rid)
            stamp = salesforce_time(removal.at)
            row.update({"IsDeleted": True, "LastModifiedDate": stamp, "LastModifiedById": admin,
                        "SystemModstamp": stamp})
        else:
            _drop(records[name], lambda row, rid=rid: row["Id"] == rid)


def _drop(rows: list[dict], matches: Callable[[dict], bool]) -> None:
    before = len(rows)
    rows[:] = [row for row in rows if not matches(row)]
    assert len(rows) == before - 1, "a removal must match exactly one seed row"
