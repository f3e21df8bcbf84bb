"""The HubSpot emulator's in-memory CRM: records per object type, their indexes, associations, and the
write rules HubSpot applies (validation, server-maintained timestamps, unique values, merges).

Everything here runs under the emulator's lock; nothing here knows about HTTP.

Indexes per object type (all plain lists/dicts):
- `active` / `archived`: record ids as ints, sorted — list paging is a bisect plus a slice, O(page);
- `mod_index`: (modified-ms, id, record) of active records, sorted — search windows on the modified property scan
  only the window;
- `unique`: value → id for contact `email` and every `hasUniqueValue` property;
- `version`: bumped on every change, so search results can be cached between pages of one query.
"""

from __future__ import annotations

import time
from bisect import bisect_left, insort
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.hubspot.errors import HubSpotError, conflict, invalid_properties, validation
from sandbox.hubspot.objects import (
    ASSOCIATION_TYPES,
    OBJECT_TYPES,
    AssociationType,
    ObjectType,
    association_type,
)
from sandbox.hubspot.properties import PIPELINE_PROPERTIES, PropertyRegistry
from sandbox.hubspot.util import is_canonical, iso_ms, parse_number, parse_time_ms

SEED_SOURCE = "CRM_UI"
API_SOURCE = "INTEGRATION"
#: the property the vendor faults bump to move `updatedAt` without touching data the hub cares about
TOUCH_PROPERTY = "hs_updated_by_user_id"


class Record:
    __slots__ = ("archived", "archived_at", "created_at", "created_ms", "history", "id", "mod_ms", "num",
                 "props", "seeded", "updated_at", "updated_ms", "writes", "written")

    def __init__(self, id_: str, props: dict[str, str | None], created_ms: int, updated_ms: int,
                 created_at: str | None = None, updated_at: str | None = None) -> None:
        self.id = id_
        self.num = int(id_)
        self.props = props
        self.created_ms = created_ms
        self.created_at = created_at or iso_ms(created_ms)
        self.updated_ms = updated_ms
        self.updated_at = updated_at or iso_ms(updated_ms)
        self.mod_ms = updated_ms
        self.archived = False
        self.archived_at: str | None = None
        self.history: dict[str, list[tuple[str, int, str]]] | None = None
        self.seeded = False
        self.writes: list[str] | None = None   # "created"/"updated"/"archived" through the API, for the dump
        self.written = float("-inf")             # monotonic time of the last API write (search index lag)


class TypeStore:
    """The records of one object type with their indexes."""

    def __init__(self, ot: ObjectType, registry: PropertyRegistry) -> None:
        self.ot = ot
        self.registry = registry
        self.records: dict[str, Record] = {}
        self.active: list[int] = []
        self.archived: list[int] = []
        self.mod_index: list[tuple[int, int, Record]] = []   # (mod, id) is unique: records never compare
        self.merged_into: dict[str, str] = {}
        self.unique: dict[str, dict[str, str]] = {}
        #: unique properties whose seeded values repeat (the index then only knows the first record)
        self.unique_duplicates: set[str] = set()
        self.version = 0
        self.search_cache: OrderedDict[Any, list[Record]] = OrderedDict()
        if ot.name == "contacts":
            self.unique["email"] = {}
        for name in registry.unique_names():
            self.unique.setdefault(name, {})

    def record_by_num(self, num: int) -> Record:
        return self.records[str(num)]

    def changed(self) -> None:
        self.version += 1

    def index_key(self, value: str | None) -> str | None:
        return None if value is None else value.lower()

    def _index_add(self, rec: Record) -> None:
        self.mod_index.insert(bisect_left(self.mod_index, (rec.mod_ms, rec.num)), (rec.mod_ms, rec.num, rec))

    def _index_remove(self, rec: Record) -> None:
        key = (rec.mod_ms, rec.num)
        index = bisect_left(self.mod_index, key)
        if index < len(self.mod_index) and self.mod_index[index][:2] == key:
            del self.mod_index[index]

    def unique_owner(self, name: str, value: str | None) -> str | None:
        key = self.index_key(value)
        return None if key is None else self.unique[name].get(key)


class AssociationStore:
    """Both directions of every association: (type, id) → to_type → to_id → sorted association type ids."""

    def __init__(self) -> None:
        self.links: dict[tuple[str, str], dict[str, dict[str, list[int]]]] = {}

    def _add_one(self, ft: str, fid: str, tt: str, tid: str, type_id: int) -> bool:
        types = self.links.setdefault((ft, fid), {}).setdefault(tt, {}).setdefault(tid, [])
        if type_id in types:
            return False
        insort(types, type_id)
        return True

    def add(self, ft: str, fid: str, tid: str, atype: AssociationType) -> bool:
        new = self._add_one(ft, fid, atype.to_type, tid, atype.type_id)
        self._add_one(atype.to_type, tid, ft, fid, atype.reverse_id)
        return new

    def _remove_one(self, ft: str, fid: str, tt: str, tid: str, type_ids: Iterable[int] | None) -> list[int]:
        by_type = self.links.get((ft, fid), {}).get(tt)
        if not by_type or tid not in by_type:
            return []
        if type_ids is None:
            return by_type.pop(tid)
        removed = [t for t in by_type[tid] if t in set(type_ids)]
        by_type[tid] = [t for t in by_type[tid] if t not in removed]
        if not by_type[tid]:
            del by_type[tid]
        return removed

    def remove(self, ft: str, fid: str, tt: str, tid: str, type_ids: Iterable[int] | None = None) -> list[int]:
        """Removes the given types (all when None) in both directions; returns the forward ids removed."""
        type_ids = None if type_ids is None else list(type_ids)
        removed = self._remove_one(ft, fid, tt, tid, type_ids)
        reverse = None if type_ids is None else [ASSOCIATION_TYPES[t].reverse_id for t in removed]
        self._remove_one(tt, tid, ft, fid, reverse)
        return removed

    def targets(self, ft: str, fid: str, tt: str) -> dict[str, list[int]]:
        return self.links.get((ft, fid), {}).get(tt, {})

    def drop(self, t: str, id_: str) -> list[tuple[str, str, list[int]]]:
        """Removes every association of (t, id) both ways; returns what it had."""
        had = []
        for tt, by_id in list(self.links.pop((t, id_), {}).items()):
            for tid, types in by_id.items():
                had.append((tt, tid, types))
                self._remove_one(tt, tid, t, id_, None)
        return had


class Store:
    """All object types, associations, pipelines and owners of one emulated portal."""

    def __init__(self, clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic, *, plain: bool = False) -> None:
        self.clock = clock
        self.monotonic = monotonic
        self.registries = {name: PropertyRegistry(name, plain=plain) for name in OBJECT_TYPES}
        self.types = {name: TypeStore(ot, self.registries[name]) for name, ot in OBJECT_TYPES.items()}
        self.assoc = AssociationStore()
        #: (type, id) of an archived record → the associations it had (to_type → to_id → type ids): gone from
        #: the live graph, still listed on the archived record itself (they come back with a restore)
        self.archived_links: dict[tuple[str, str], dict[str, dict[str, list[int]]]] = {}
        self.pipelines: dict[str, list[dict[str, Any]]] = {}
        self.stage_index: dict[str, dict[str, dict[str, Any]]] = {}
        self.next_id = 1
        # what was written through the API, for dump_writes()
        self.assoc_created: dict[tuple[str, str, str, str, int], None] = {}
        self.assoc_archived: dict[tuple[str, str, str, str, int | None], None] = {}
        self.props_created: dict[str, dict[str, None]] = {name: {} for name in OBJECT_TYPES}
        self.groups_created: dict[str, dict[str, None]] = {name: {} for name in OBJECT_TYPES}
        self.merges: list[dict[str, str]] = []

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def allocate_id(self) -> str:
        id_ = self.next_id
        self.next_id += 1
        return str(id_)

    # ------------------------------------------------------------------ pipelines
    def set_pipelines(self, object_type: str, pipelines: list[dict[str, Any]]) -> None:
        self.pipelines[object_type] = pipelines
        stages: dict[str, dict[str, Any]] = {}
        for pipeline in pipelines:
            for stage in pipeline.get("stages", []):
                stages.setdefault(stage["id"], {"pipeline": pipeline["id"], "metadata": stage.get("metadata", {})})
                stages[f"{pipeline['id']}/{stage['id']}"] = {"pipeline": pipeline["id"],
                                                              "metadata": stage.get("metadata", {})}
        self.stage_index[object_type] = stages
        pipe_prop, stage_prop = PIPELINE_PROPERTIES[object_type]
        registry = self.registries[object_type]
        registry.set_options(pipe_prop, [{"label": p["label"], "value": p["id"], "displayOrder": p.get(
            "displayOrder", i), "hidden": False} for i, p in enumerate(pipelines)])
        seen: dict[str, dict[str, Any]] = {}
        for pipeline in pipelines:
            for stage in pipeline.get("stages", []):
                seen.setdefault(stage["id"], {"label": stage["label"], "value": stage["id"],
                                              "displayOrder": len(seen), "hidden": False})
        registry.set_options(stage_prop, list(seen.values()))

    def stage_metadata(self, object_type: str, pipeline: str | None, stage: str) -> dict[str, Any] | None:
        stages = self.stage_index.get(object_type, {})
        found = stages.get(f"{pipeline}/{stage}") if pipeline else None
        found = found or stages.get(stage)
        return found["metadata"] if found else None

    # ------------------------------------------------------------------ lookups
    def lookup(self, ts: TypeStore, value: str, id_property: str | None = None, *,
               archived: bool = False) -> Record | None:
        """A record by id (following merges) or by a unique property; None when missing."""
        if id_property and id_property != "hs_object_id":
            owner = ts.unique_owner(id_property, value) if id_property in ts.unique else None
            rec = ts.records.get(owner) if owner else None
        else:
            rec = ts.records.get(value)
            if rec is None and value in ts.merged_into:
                target = value
                while target in ts.merged_into:
                    target = ts.merged_into[target]
                rec = ts.records.get(target)
        if rec is None or rec.archived != archived:
            return None
        return rec

    def check_id_property(self, ts: TypeStore, id_property: str | None) -> None:
        if id_property in (None, "", "hs_object_id"):
            return
        definition = ts.registry.get(id_property)
        if definition is None:
            raise validation(f"Property '{id_property}' does not exist on {ts.ot.name}")
        if id_property not in ts.unique:
            raise validation(f"'{id_property}' is not a unique property of {ts.ot.name}: idProperty must be a "
                             "property with hasUniqueValue=true" + (" or email" if ts.ot.name == "contacts" else ""))

    # ------------------------------------------------------------------ writes
    def prepare(self, ts: TypeStore, raw: Any, *, creating: bool, rec: Record | None = None) -> dict[str, Any]:
        """Validates written properties; returns them normalised or raises HubSpot's 400."""
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise validation("Invalid input JSON: properties must be an object of name → value")
        values: dict[str, Any] = {}
        problems = []
        registry = ts.registry
        for name, value in raw.items():
            normalized, problem = registry.normalize(name, value)
            if problem is not None:
                problems.append(problem)
            else:
                values[name] = normalized
        if creating:
            for name in ts.ot.required_on_create:
                if values.get(name) is None:
                    problems.append({"name": name, "error": "REQUIRED_PROPERTY",
                                     "message": f"{name} is required when creating {ts.ot.name}"})
        elif rec is not None:
            for name in ts.ot.required_on_create:
                if name in values and values[name] is None:
                    problems.append({"name": name, "error": "REQUIRED_PROPERTY",
                                     "message": f"{name} cannot be cleared on {ts.ot.name}"})
        if problems:
            raise invalid_properties(problems)
        self._check_unique(ts, values, rec)
        return values

    def _check_unique(self, ts: TypeStore, values: dict[str, Any], rec: Record | None) -> None:
        for name in ts.unique:
            value = values.get(name)
            if value is None:
                continue
            owner = ts.unique_owner(name, value)
            if owner is not None and (rec is None or owner != rec.id):
                if name == "email":
                    raise conflict(f"Contact already exists. Existing ID: {owner}")
                raise conflict(f"A {ts.ot.singular} with {name}={value} already exists. Existing ID: {owner}")

    def _set_modified(self, ts: TypeStore, rec: Record, now: int) -> None:
        if not rec.archived:
            ts._index_remove(rec)
        rec.updated_ms = now
        rec.updated_at = iso_ms(now)
        rec.props[ts.ot.modified_prop] = rec.updated_at
        rec.mod_ms = now
        if not rec.archived:
            ts._index_add(rec)

    def _assign(self, ts: TypeStore, rec: Record, values: dict[str, Any], now: int, source: str) -> list[str]:
        """Sets values that differ; keeps history and unique indexes. Returns the names that changed."""
        props = rec.props
        changed = []
        for name, value in values.items():
            old = props.get(name)
            if old == value:
                continue
            changed.append(name)
            if name in ts.unique:
                index = ts.unique[name]
                old_key, new_key = ts.index_key(old), ts.index_key(value)
                if old_key is not None and index.get(old_key) == rec.id:
                    del index[old_key]
                if new_key is not None:
                    index.setdefault(new_key, rec.id)
            props[name] = value
            if rec.history is None:
                rec.history = {}
            entries = rec.history.get(name)
            if entries is None:
                entries = rec.history[name] = []
                if old is not None:    # the value it had before any history was kept
                    entries.append((old, rec.created_ms, SEED_SOURCE if rec.seeded else API_SOURCE))
            if value is not None:
                entries.append((value, now, source))
        return changed

    def _computed(self, ts: TypeStore, rec: Record, changed: list[str], now: int) -> dict[str, Any]:
        """Values HubSpot calculates after a write (deal closed/won flags, ticket close date)."""
        name = ts.ot.name
        if name == "deals" and ("dealstage" in changed or "pipeline" in changed):
            stage = rec.props.get("dealstage")
            meta = self.stage_metadata("deals", rec.props.get("pipeline"), stage) if stage else None
            if meta is None:
                return {}
            closed = str(meta.get("isClosed", "false")).lower() == "true"
            probability = parse_number(str(meta.get("probability", ""))) or 0.0
            return {"hs_is_closed": "true" if closed else "false",
                    "hs_is_closed_won": "true" if closed and probability >= 1.0 else "false",
                    "hs_deal_stage_probability": str(meta.get("probability")) if "probability" in meta else None}
        if name == "tickets" and ("hs_pipeline_stage" in changed or "hs_pipeline" in changed):
            stage = rec.props.get("hs_pipeline_stage")
            meta = self.stage_metadata("tickets", rec.props.get("hs_pipeline"), stage) if stage else None
            if meta is None:
                return {}
            closed = str(meta.get("ticketState", "")).upper() == "CLOSED"
            out: dict[str, Any] = {"hs_is_closed": "true" if closed else "false"}
            if closed and not rec.props.get("closed_date") and "closed_date" not in changed:
                out["closed_date"] = iso_ms(now)
            return out
        return {}

    def create(self, ts: TypeStore, values: dict[str, Any], associations: list[tuple[AssociationType, str]],
               now: int) -> Record:
        """Creates a record from prepared values; `associations` were validated by `prepare_associations`."""
        id_ = self.allocate_id()
        rec = Record(id_, {}, now, now)
        iso = rec.created_at
        rec.props.update({"hs_object_id": id_, ts.ot.created_prop: iso, ts.ot.modified_prop: iso})
        self._assign(ts, rec, {k: v for k, v in values.items() if v is not None}, now, API_SOURCE)
        computed = self._computed(ts, rec, list(values), now)
        if computed:
            self._assign(ts, rec, computed, now, "CALCULATED")
        rec.written = self.monotonic()
        rec.writes = ["created"]
        ts.records[id_] = rec
        ts.active.append(rec.num)    # ids only grow, so appending keeps the list sorted
        ts._index_add(rec)
        for atype, to_id in associations:
            self.associate(ts.ot.name, id_, to_id, atype)
        ts.changed()
        return rec

    def update(self, ts: TypeStore, rec: Record, values: dict[str, Any], now: int) -> bool:
        """Applies prepared values; `updatedAt` moves only when a value actually changed."""
        changed = self._assign(ts, rec, values, now, API_SOURCE)
        if not changed:
            return False
        computed = self._computed(ts, rec, changed, now)
        if computed:
            self._assign(ts, rec, computed, now, "CALCULATED")
        self._set_modified(ts, rec, now)
        rec.written = self.monotonic()
        if rec.writes is None:
            rec.writes = []
        if "updated" not in rec.writes and "created" not in rec.writes:
            rec.writes.append("updated")
        ts.changed()
        return True

    def archive(self, ts: TypeStore, rec: Record, now: int) -> None:
        ts._index_remove(rec)
        del ts.active[bisect_left(ts.active, rec.num)]
        insort(ts.archived, rec.num)
        rec.archived = True
        rec.archived_at = iso_ms(now)
        for name in ts.unique:
            key = ts.index_key(rec.props.get(name))
            if key is not None and ts.unique[name].get(key) == rec.id:
                del ts.unique[name][key]
        self.stash_links(ts, rec)
        rec.written = self.monotonic()
        if rec.writes is None:
            rec.writes = []
        rec.writes.append("archived")
        ts.changed()

    def stash_links(self, ts: TypeStore, rec: Record) -> None:
        """An archived record leaves the association graph (HubSpot: its activities are "unassociated"); what it
        had stays readable on the archived record itself."""
        had = self.assoc.drop(ts.ot.name, rec.id)
        if had:
            links = self.archived_links.setdefault((ts.ot.name, rec.id), {})
            for to_type, to_id, types in had:
                links.setdefault(to_type, {})[to_id] = list(types)
        self.associations_changed(ts.ot.name, *{to_type for to_type, _, _ in had})

    def archived_targets(self, from_type: str, from_id: str, to_type: str) -> dict[str, list[int]]:
        return self.archived_links.get((from_type, from_id), {}).get(to_type, {})

    def touch(self, ts: TypeStore, rec: Record, now: int) -> None:
        """A change HubSpot itself might make (a workflow, a calculated property): `updatedAt` moves."""
        current = parse_number(rec.props.get(TOUCH_PROPERTY)) or 0
        self._assign(ts, rec, {TOUCH_PROPERTY: str(int(current) + 1)}, now, "CALCULATED")
        self._set_modified(ts, rec, now)
        rec.written = self.monotonic()
        ts.changed()

    # ------------------------------------------------------------------ associations
    def prepare_associations(self, from_type: str, raw: Any) -> list[tuple[AssociationType, str]]:
        """Inline `associations` of a create: [{"to": {"id"}, "types": [{associationCategory, associationTypeId}]}]."""
        if raw in (None, []):
            return []
        if not isinstance(raw, list):
            raise validation("associations must be a list")
        out = []
        for item in raw:
            to_id = str((item or {}).get("to", {}).get("id", "")) if isinstance(item, dict) else ""
            types = item.get("types") if isinstance(item, dict) else None
            if not to_id or not isinstance(types, list) or not types:
                raise validation("Each association needs to.id and at least one type")
            for spec in types:
                atype = self.association_spec(from_type, None, spec)
                found = self.lookup(self.types[atype.to_type], to_id)
                if found is None:
                    raise validation(f"The {OBJECT_TYPES[atype.to_type].singular} with id {to_id} does not exist, "
                                     f"so it cannot be associated (association type {atype.type_id})")
                out.append((atype, found.id))
        return out

    def association_spec(self, from_type: str, to_type: str | None, spec: Any) -> AssociationType:
        if not isinstance(spec, dict):
            raise validation("An association type must be {associationCategory, associationTypeId}")
        category = spec.get("associationCategory") or spec.get("category") or "HUBSPOT_DEFINED"
        raw_id = spec.get("associationTypeId", spec.get("typeId"))
        try:
            type_id = int(raw_id)
        except (TypeError, ValueError):
            raise validation(f"associationTypeId {raw_id!r} is not a number") from None
        atype = association_type(type_id, category)
        if atype is None or atype.from_type != from_type or (to_type is not None and atype.to_type != to_type):
            target = to_type or "the target object"
            raise validation(f"{category} association type {type_id} is not valid between {from_type} and "
                             f"{target}")
        return atype

    def associations_changed(self, *object_types: str) -> None:
        """Searches can filter on `associations.<type>`, so cached results of both sides go stale."""
        for object_type in object_types:
            self.types[object_type].changed()

    def associate(self, from_type: str, from_id: str, to_id: str, atype: AssociationType) -> None:
        if self.assoc.add(from_type, from_id, to_id, atype):
            self.assoc_created[(from_type, from_id, atype.to_type, to_id, atype.type_id)] = None
            self.associations_changed(from_type, atype.to_type)
        self.assoc_archived.pop((from_type, from_id, atype.to_type, to_id, atype.type_id), None)

    def dissociate(self, from_type: str, from_id: str, to_type: str, to_id: str,
                   type_ids: Iterable[int] | None = None) -> None:
        removed = self.assoc.remove(from_type, from_id, to_type, to_id, type_ids)
        if removed:
            self.associations_changed(from_type, to_type)
        for type_id in removed:
            self.assoc_archived[(from_type, from_id, to_type, to_id, type_id)] = None
            self.assoc_created.pop((from_type, from_id, to_type, to_id, type_id), None)

    # ------------------------------------------------------------------ merges
    def merge(self, primary_id: str, merged_id: str, now: int, via: str) -> Record:
        """Merges contact `merged_id` into `primary_id` the way HubSpot does (the primary keeps its id)."""
        ts = self.types["contacts"]
        primary = self.lookup(ts, str(primary_id))
        merged = self.lookup(ts, str(merged_id))
        if primary is None or merged is None:
            missing = primary_id if primary is None else merged_id
            raise HubSpotError(404, "OBJECT_NOT_FOUND", f"Contact {missing} does not exist or is archived")
        if primary.id == merged.id:
            raise validation("Cannot merge a contact with itself")
        system = {"hs_object_id", "createdate", "lastmodifieddate", "email", "hs_merged_object_ids",
                  "hs_additional_emails", TOUCH_PROPERTY}
        values: dict[str, Any] = {name: value for name, value in merged.props.items()
                                  if value not in (None, "") and name not in system
                                  and primary.props.get(name) in (None, "")}
        emails = [e for e in (primary.props.get("hs_additional_emails") or "").split(";") if e]
        for email in [merged.props.get("email"), *(merged.props.get("hs_additional_emails") or "").split(";")]:
            if email and email != primary.props.get("email") and email not in emails:
                emails.append(email)
        if emails:
            values["hs_additional_emails"] = ";".join(emails)
        ids = [i for i in (primary.props.get("hs_merged_object_ids") or "").split(";") if i]
        for id_ in [merged.id, *(merged.props.get("hs_merged_object_ids") or "").split(";")]:
            if id_ and id_ not in ids:
                ids.append(id_)
        values["hs_merged_object_ids"] = ";".join(ids)
        self._assign(ts, primary, values, now, "MERGE")
        self._set_modified(ts, primary, now)
        primary.written = self.monotonic()
        for to_type, to_id, types in self.assoc.drop("contacts", merged.id):
            self.associations_changed(to_type)
            for type_id in types:
                atype = association_type(type_id)
                if atype is not None and not (to_type == "contacts" and to_id == primary.id):
                    self.assoc.add("contacts", primary.id, to_id, atype)
        ts._index_remove(merged)
        del ts.active[bisect_left(ts.active, merged.num)]
        del ts.records[merged.id]
        ts.merged_into[merged.id] = primary.id
        for name, index in ts.unique.items():
            key = ts.index_key(merged.props.get(name))
            if key is not None and index.get(key) == merged.id:
                index[key] = primary.id
        if via == "api":
            if primary.writes is None:
                primary.writes = []
            if "updated" not in primary.writes and "created" not in primary.writes:
                primary.writes.append("updated")
        self.merges.append({"primaryObjectId": primary.id, "objectIdToMerge": merged.id, "via": via})
        ts.changed()
        return primary

    # ------------------------------------------------------------------ seeding
    def seed_record(self, ts: TypeStore, raw: dict[str, Any]) -> set[str]:
        """Adds one record of the generated world; returns the names of properties nobody defined."""
        id_ = str(raw["id"])
        if not id_.isdigit() or id_[0] == "0":
            raise ValueError(f"HubSpot ids are positive integers without leading zeros; got {ts.ot.name} {id_!r}")
        if id_ in ts.records:
            raise ValueError(f"duplicate {ts.ot.name} id {id_}")
        props: dict[str, str | None] = dict(raw.get("properties") or {})
        for name, value in props.items():
            if value is not None and type(value) is not str:
                props[name] = _as_string(value)
        ot = ts.ot
        created_raw, updated_raw = raw.get("createdAt"), raw.get("updatedAt")
        created = _time(created_raw) or parse_time_ms(props.get(ot.created_prop))
        updated = _time(updated_raw) or parse_time_ms(props.get(ot.modified_prop))
        if created is None or updated is None:
            raise ValueError(f"{ot.name} {id_} needs createdAt and updatedAt")
        rec = Record(id_, props, created, updated,
                     created_raw if isinstance(created_raw, str) and is_canonical(created_raw) else None,
                     updated_raw if isinstance(updated_raw, str) and is_canonical(updated_raw) else None)
        props["hs_object_id"] = id_
        if props.get(ot.created_prop) is None:
            props[ot.created_prop] = rec.created_at
        modified = props.get(ot.modified_prop)
        if modified is None:
            props[ot.modified_prop] = rec.updated_at
        elif modified != rec.updated_at:
            rec.mod_ms = parse_time_ms(modified) or updated
        rec.seeded = True
        ts.records[id_] = rec
        if raw.get("archived"):
            rec.archived = True
            archived_at = _time(raw.get("archivedAt"))
            rec.archived_at = iso_ms(archived_at) if archived_at is not None else rec.updated_at
        if rec.num >= self.next_id:
            self.next_id = rec.num + 1
        return props.keys() - ts.registry.defs.keys()

    def rebuild_indexes(self, ts: TypeStore) -> None:
        ts.active = sorted(r.num for r in ts.records.values() if not r.archived)
        ts.archived = sorted(r.num for r in ts.records.values() if r.archived)
        ts.mod_index = sorted(((r.mod_ms, r.num, r) for r in ts.records.values() if not r.archived),
                              key=_mod_key)
        ts.unique_duplicates.clear()
        for name in ts.unique:
            index: dict[str, str] = {}
            for num in ts.active:
                rec = ts.records[str(num)]
                key = ts.index_key(rec.props.get(name))
                if key is not None:
                    if key in index:
                        ts.unique_duplicates.add(name)
                    else:
                        index[key] = rec.id
            ts.unique[name] = index
        ts.changed()


def _mod_key(entry: tuple[int, int, Record]) -> tuple[int, int]:
    return entry[0], entry[1]


def _as_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _time(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return int(value)
    return parse_time_ms(str(value))
