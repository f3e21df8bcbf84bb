"""Executing a write-back plan: batched writes per CRM object, one result per record, the ledger and the
conflicts recorded as the results come in.

A record the CRM rejects (a 207 error, a per-record Salesforce error, a failed `$batch` part) fails alone:
it is logged with the vendor's error, left `failed` in the ledger and planned again on the next run; the
rest of its batch lands.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, select

from canonical.db import transaction
from canonical.models import WritebackConflict, WritebackLedger
from canonical.types import utcnow
from canonical.upsert import upsert
from connectors.base import Connector, WriteResult
from connectors.errors import ConfigError, ConnectorError, FatalError, SkippableError
from journeyhub.writeback.config import SystemPolicy
from journeyhub.writeback.plan import PlannedWrite

log = logging.getLogger("journeyhub.writeback")
FLUSH = 1000
LOGICAL_NAMES = {"contacts": "contact", "leads": "lead", "tasks": "task", "annotations": "annotation"}
SALESFORCE_TYPES = {"string": "Text", "datetime": "Date/Time", "number": "Number"}
DATAVERSE_TYPES = {"string": "Single line of text", "datetime": "Date and time", "number": "Whole number"}


@dataclass
class ObjectOutcome:
    """Counts for one (system, object) — a row of the ops table."""

    pushed: int = 0
    failed: int = 0
    unchanged: int = 0
    conflicts: int = 0
    errors: list[str] = field(default_factory=list)


@dataclass
class PushOutcome:
    objects: dict[tuple[str, str], ObjectOutcome] = field(default_factory=lambda: defaultdict(ObjectOutcome))
    api_calls: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    @property
    def failed(self) -> int:
        return sum(outcome.failed for outcome in self.objects.values())


def prepare(system: str, connector: Connector, policy: SystemPolicy) -> None:
    """Make sure the CRM has the fields the hub writes: HubSpot properties are created; Salesforce and
    Dataverse fields cannot be created through their REST APIs, so a missing one stops with the list."""
    fields = [(rule.name, rule.type) for rule in policy.fields if rule.policy != "crm_owns"]
    if system == "hubspot":
        group = policy.property_group or "journeyhub"
        for target in policy.targets:
            connector.ensure_properties(target, group, "Journey Hub",  # type: ignore[attr-defined]
                                        [(rule.name, rule.label or rule.name, rule.type) for rule in policy.fields])
        if policy.mirror is not None:
            connector.ensure_properties(policy.mirror.object, group, "Journey Hub",  # type: ignore[attr-defined]
                                        [(policy.mirror.marker_field, "Journey Hub item id", "string")])
        return
    needed = {target: fields for target in policy.targets}
    if policy.mirror is not None:  # the marker is the upsert key: it must be an external id / alternate key
        needed[policy.mirror.object] = [(policy.mirror.marker_field, "external_id" if system == "salesforce"
                                         else "string")]
    missing: list[str] = []
    for object_type, columns in needed.items():
        if system == "salesforce":
            absent = connector.missing_fields(object_type, columns)  # type: ignore[attr-defined]
            missing += [f"{object_type}.{name} ({_type(SALESFORCE_TYPES, columns, name)})" for name in absent]
        else:
            absent = connector.missing_columns(LOGICAL_NAMES.get(object_type, object_type.rstrip("s")),  # type: ignore[attr-defined]
                                               columns)
            missing += [f"{object_type}.{name} ({_type(DATAVERSE_TYPES, columns, name)})" for name in absent]
    if missing:
        raise ConfigError(system, f"{len(missing)} field(s) the hub writes are missing; an admin must create: "
                                  f"{', '.join(missing)} (see README, 'Fields to create in the CRMs')")


def _type(names: dict[str, str], columns: list[tuple[str, str]], name: str) -> str:
    kind = dict(columns).get(name, "string")
    if name.lower().endswith(("external_id__c", "externalid")):
        return f"{names['string']}, external id / alternate key, unique"
    return names.get(kind, kind)


class Executor:
    def __init__(self, engine: Engine, connectors: dict[str, Connector], run_id: str) -> None:
        self.engine = engine
        self.connectors = connectors
        self.run_id = run_id
        self.outcome = PushOutcome()
        self._pending: dict[tuple[str, str, str], list[PlannedWrite]] = defaultdict(list)

    def run(self, writes: Iterable[PlannedWrite]) -> PushOutcome:
        for write in writes:
            key = (write.system, write.object_type)
            if not write.writes:
                self.outcome.objects[key].unchanged += 1
                self._conflicts([write])
                continue
            bucket = (write.system, write.object_type, write.action)
            self._pending[bucket].append(write)
            if len(self._pending[bucket]) >= FLUSH:
                self._flush(bucket)
        for bucket in list(self._pending):
            self._flush(bucket)
        return self.outcome

    def _flush(self, bucket: tuple[str, str, str]) -> None:
        writes = self._pending.pop(bucket, [])
        if not writes:
            return
        system, object_type, _ = bucket
        connector = self.connectors[system]
        before = connector.api_calls
        try:
            results = connector.write(object_type, [write.op() for write in writes])
        except ConnectorError as error:  # the whole batch failed (after retries): retried on the next run
            if isinstance(error, FatalError) and not isinstance(error, SkippableError):
                raise
            results = [WriteResult(key=write.item_key, ok=False, error=str(error), retriable=True) for write in writes]
        self.outcome.api_calls[system] += connector.api_calls - before
        self._record(writes, results)

    def _record(self, writes: list[PlannedWrite], results: list[WriteResult]) -> None:
        now = utcnow()
        rows: list[dict[str, Any]] = []
        for write, result in zip(writes, results, strict=True):
            outcome = self.outcome.objects[(write.system, write.object_type)]
            if result.ok:
                outcome.pushed += 1
            else:
                outcome.failed += 1
                outcome.errors.append(f"{write.target_object_type} {write.target_remote_id} {write.item_key}: "
                                      f"{result.error}")
                log.warning("%s rejected %s for %s %s: %s", write.system, write.object_type,
                            write.target_object_type, write.target_remote_id, result.error)
            rows.append({
                "system": write.system, "target_object_type": write.target_object_type,
                "target_remote_id": write.target_remote_id, "item_key": write.item_key,
                "remote_object_type": write.object_type, "remote_id": result.remote_id or write.remote_id,
                "content_hash": write.content_hash if result.ok else None,
                "payload": write.payload if result.ok else None, "status": "pushed" if result.ok else "failed",
                "error": None if result.ok else (result.error or "rejected")[:4000], "attempts": 1,
                "first_pushed_at": now, "last_pushed_at": now, "run_id": self.run_id})
        with transaction(self.engine) as connection:
            ok_rows = [row for row in rows if row["status"] == "pushed"]
            failed_rows = [row for row in rows if row["status"] == "failed"]
            conflict = ["system", "target_object_type", "target_remote_id", "item_key"]
            if ok_rows:
                upsert(connection, WritebackLedger, ok_rows, conflict=conflict,
                       update=["remote_object_type", "remote_id", "content_hash", "payload", "status", "error",
                               "last_pushed_at", "run_id"])
            if failed_rows:  # keep what was pushed before (remote id, payload); only mark the failure
                upsert(connection, WritebackLedger, failed_rows, conflict=conflict,
                       update=["status", "error", "last_pushed_at", "run_id"])
        self._conflicts([write for write, result in zip(writes, results, strict=True) if result.ok])

    def _conflicts(self, writes: list[PlannedWrite]) -> None:
        """Record each conflict once (the same disagreement seen again is not a new conflict)."""
        found = [(write, conflict) for write in writes for conflict in write.conflicts]
        if not found:
            return
        now = utcnow()
        with transaction(self.engine) as connection:
            for write, conflict in found:
                exists = connection.execute(select(WritebackConflict.id).where(and_(
                    WritebackConflict.system == write.system,
                    WritebackConflict.target_remote_id == write.target_remote_id,
                    WritebackConflict.field == conflict.field,
                    WritebackConflict.hub_value == _text(conflict.hub_value),
                    WritebackConflict.crm_value == _text(conflict.crm_value)))).first()
                if exists:
                    continue
                connection.execute(WritebackConflict.__table__.insert().values(
                    run_id=self.run_id, system=write.system, target_object_type=write.target_object_type,
                    target_remote_id=write.target_remote_id, field=conflict.field,
                    hub_value=_text(conflict.hub_value), crm_value=_text(conflict.crm_value),
                    policy=conflict.policy, resolution=conflict.resolution, detected_at=now))
                self.outcome.objects[(write.system, write.object_type)].conflicts += 1


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.isoformat() if isinstance(value, datetime) else str(value)
