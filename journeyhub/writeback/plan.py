"""The write-back plan: for every customer's record in every CRM, which journey fields to write and which
timeline items from the other CRMs to mirror — compared with the ledger so a re-run plans nothing.

A dry run prints this plan; a real run executes exactly it, so the dry run predicts the real one. Values
are formatted by each CRM's connector (no calls are made while planning).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import Engine

from canonical.upsert import chunks
from connectors.base import MISSING, Connector, WriteOp
from journeyhub.writeback import facts, render
from journeyhub.writeback.config import SystemPolicy, WritebackConfig
from journeyhub.writeback.facts import LedgerEntry, Target, TimelineItem

FIELDS_KEY = "fields"
BATCH = 500


@dataclass(frozen=True)
class Conflict:
    field: str
    hub_value: Any
    crm_value: Any
    policy: str
    resolution: str  # wrote_hub | kept_crm


@dataclass
class PlannedWrite:
    system: str
    object_type: str               # the CRM object written (contacts, notes, Task, tasks, …)
    action: str                    # create | update | upsert | unchanged
    customer_id: str
    target_object_type: str
    target_remote_id: str
    item_key: str
    values: dict[str, Any]
    content_hash: str
    payload: dict[str, Any]
    remote_id: str | None = None
    marker: str | None = None      # a mirrored item's marker (how a crashed push finds it again)
    external_id: tuple[str, str] | None = None
    associations: list[tuple[str, str]] = field(default_factory=list)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return self.action != "unchanged"

    def op(self) -> WriteOp:
        kind = "update" if self.action == "update" else self.action
        return WriteOp(kind=kind, key=f"{self.target_object_type}:{self.target_remote_id}:{self.item_key}",  # type: ignore[arg-type]
                       data=self.values, remote_id=self.remote_id if kind == "update" else None,
                       external_id=self.external_id, associations=self.associations)

    def row(self) -> dict[str, Any]:
        """One line of the exported plan."""
        return {"system": self.system, "object": self.object_type, "action": self.action,
                "customer_id": self.customer_id, "target": f"{self.target_object_type}:{self.target_remote_id}",
                "item": self.item_key, "remote_id": self.remote_id or "",
                "fields": ", ".join(sorted(self.values)) if self.writes else "",
                "conflicts": "; ".join(f"{c.field}: crm={c.crm_value!r} hub={c.hub_value!r} → {c.resolution}"
                                       for c in self.conflicts)}


def content_hash(values: dict[str, Any]) -> str:
    return hashlib.sha1(orjson.dumps(values, option=orjson.OPT_SORT_KEYS, default=str)).hexdigest()


@dataclass
class PlanSummary:
    actions: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # (system, object, action)
    fields: Counter[tuple[str, str]] = field(default_factory=Counter)        # (system, field) written
    conflicts: list[tuple[str, str, Conflict]] = field(default_factory=list)

    def add(self, write: PlannedWrite) -> None:
        self.actions[(write.system, write.object_type, write.action)] += 1
        if write.writes:
            for name in write.values:
                self.fields[(write.system, name)] += 1
        self.conflicts += [(write.system, write.target_remote_id, conflict) for conflict in write.conflicts]


class Planner:
    def __init__(self, engine: Engine, config: WritebackConfig, connectors: Mapping[str, Connector]) -> None:
        self.engine = engine
        self.config = config
        self.connectors = connectors

    def plan(self, systems: Sequence[str]) -> Iterator[PlannedWrite]:
        """Every planned write (unchanged ones included), customer batch by customer batch."""
        active = [(system, policy) for system in systems if (policy := self.config.system(system)) is not None]
        with self.engine.connect() as connection:
            customers = facts.live_customers(connection)
        for batch in chunks(customers, BATCH):
            planned: list[PlannedWrite] = []
            with self.engine.connect() as connection:  # closed before yielding: the writer needs the database
                values = facts.journey_values(connection, batch)
                items = facts.timeline(connection, batch)
                for system, policy in active:
                    targets = facts.targets(connection, system, policy.targets, batch)
                    ledger = facts.ledger(connection, system, [target.remote_id for target in targets])
                    for target in targets:
                        planned += self._for_target(system, policy, target, values[target.customer_id],
                                                    items.get(target.customer_id, []), ledger)
            yield from planned

    # ------------------------------------------------------------------ per target
    def _for_target(self, system: str, policy: SystemPolicy, target: Target, values: dict[str, Any],
                    items: list[TimelineItem],
                    ledger: dict[tuple[str, str, str], LedgerEntry]) -> Iterator[PlannedWrite]:
        yield self._fields(system, policy, target, values, ledger.get((target.object_type, target.remote_id,
                                                                       FIELDS_KEY)))
        if policy.mirror is None or not target.primary:
            return
        mirror = policy.mirror
        chosen = [item for item in items if item.system != system and item.kind in mirror.kinds]
        for item in chosen[: mirror.max_items_per_customer]:
            yield self._item(system, policy, target, item, ledger.get((target.object_type, target.remote_id,
                                                                       item.key)))

    def _fields(self, system: str, policy: SystemPolicy, target: Target, values: dict[str, Any],
                entry: LedgerEntry | None) -> PlannedWrite:
        connector = self.connectors[system]
        written = dict(entry.payload or {}) if entry and entry.status == "pushed" else {}
        crm_newer = entry is None or entry.last_pushed_at is None or (
            target.last_seen_at is not None and target.last_seen_at > entry.last_pushed_at)
        to_write: dict[str, Any] = {}
        conflicts: list[Conflict] = []
        for rule in policy.fields:
            if rule.policy == "crm_owns":
                continue
            desired = connector.format_value(rule.type, render.hub_value(rule.type, values.get(rule.value)))
            raw = connector.field_value(target.raw, rule.name)
            crm = raw if crm_newer and raw is not MISSING else written.get(rule.name, raw)
            crm_value, hub_value = render.normalized(rule.type, crm), render.normalized(rule.type, desired)
            if crm_value == hub_value:
                continue
            someone_else = crm_value is not None and crm_value != render.normalized(rule.type, written.get(rule.name))
            if rule.policy == "fill_empty" and crm_value is not None:
                conflicts.append(Conflict(rule.name, desired, crm, rule.policy, "kept_crm"))
                continue
            if someone_else:
                conflicts.append(Conflict(rule.name, desired, crm, rule.policy, "wrote_hub"))
            to_write[rule.name] = desired
        payload = {**written, **to_write}
        return PlannedWrite(system=system, object_type=target.object_type,
                            action="update" if to_write else "unchanged", customer_id=target.customer_id,
                            target_object_type=target.object_type, target_remote_id=target.remote_id,
                            item_key=FIELDS_KEY, values=to_write, content_hash=content_hash(payload), payload=payload,
                            remote_id=target.remote_id, conflicts=conflicts)

    def _item(self, system: str, policy: SystemPolicy, target: Target, item: TimelineItem,
              entry: LedgerEntry | None) -> PlannedWrite:
        mirror = policy.mirror
        assert mirror is not None
        connector = self.connectors[system]
        item_marker = render.marker(system, target, item.key)
        values = connector.mirror_fields(mirror.object, render.mirrored(item, self.config.label(item.system),
                                                                        mirror.marker_field, item_marker))
        digest = content_hash(values)
        pushed = entry is not None and entry.status == "pushed"
        upsert = connector.mirror_mode(mirror.object) == "upsert"
        if pushed and entry.content_hash == digest:  # type: ignore[union-attr]
            action = "unchanged"
        elif upsert:
            action = "upsert"
        else:
            action = "update" if entry is not None and entry.remote_id else "create"
        return PlannedWrite(system=system, object_type=mirror.object, action=action, customer_id=target.customer_id,
                            target_object_type=target.object_type, target_remote_id=target.remote_id,
                            item_key=item.key, values=values, content_hash=digest, payload={"marker": item_marker},
                            remote_id=entry.remote_id if entry else None, marker=item_marker,
                            external_id=(mirror.marker_field, item_marker) if upsert else None,
                            associations=[(target.object_type, target.remote_id)])
