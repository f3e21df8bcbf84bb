"""Executing a write-back plan: batched writes per CRM object, one result per record, the ledger and the
conflicts recorded as the results come in.

Writes are sent in batches of the connector's request size (`write_batch_size`). Each batch's writes are
recorded as intents and committed before it is sent; its results, the intents' removal and its conflicts are
committed together after it returns (journeyhub.writeback.ledger), so a push killed at any instant leaves
every write either in the ledger or as an intent the next push settles (journeyhub.writeback.settle).

A record the CRM rejects (a per-record batch error) fails alone: it is logged with the vendor's error, left
`failed` in the ledger and planned again on the next run; the rest of its batch lands.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, and_, select
from sqlalchemy.engine import Connection

from canonical.db import transaction
from canonical.models import WritebackConflict
from canonical.types import utcnow
from connectors.base import Connector, FieldSpec, WriteResult
from connectors.errors import ConnectorError, FatalError, SkippableError, WriteUnconfirmed
from journeyhub.writeback.config import SystemPolicy
from journeyhub.writeback.ledger import clear_intents, item_key, ledger_row, record_intents, write_ledger
from journeyhub.writeback.plan import PlannedWrite

log = logging.getLogger("journeyhub.writeback")
MARKER_LABEL = "Journey Hub item id"


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


def prepare(connector: Connector, policy: SystemPolicy) -> list[str]:
    """Make sure the CRM has the fields the hub writes: the connector creates them where its API can, and
    otherwise raises one ConfigError listing what an admin must create. Returns the fields created."""
    fields: dict[str, list[FieldSpec]] = {
        target: [FieldSpec(rule.name, rule.type, rule.label) for rule in policy.fields if rule.policy != "crm_owns"]
        for target in policy.targets}
    if policy.mirror is not None:  # the marker is how an item is found again: a unique key where the CRM has one
        fields[policy.mirror.object] = [FieldSpec(policy.mirror.marker_field, "string", MARKER_LABEL, marker=True)]
    return connector.ensure_fields(fields, group=policy.property_group)


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
                if write.conflicts:
                    with transaction(self.engine) as connection:
                        self._conflicts(connection, [write])
                continue
            bucket = (write.system, write.object_type, write.action)
            self._pending[bucket].append(write)
            if len(self._pending[bucket]) >= self.connectors[write.system].write_batch_size(write.object_type):
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
        with transaction(self.engine) as connection:  # committed before the CRM sees anything
            record_intents(connection, writes, self.run_id)
        before = connector.api_calls
        try:
            results = connector.write(object_type, [write.op() for write in writes])
        except WriteUnconfirmed as error:  # sent, no answer: it may have landed. Not resent; its intents stay and
            self._unconfirmed(writes, error)  # the next push settles them by their markers
            return
        except ConnectorError as error:  # the whole batch failed (after retries): retried on the next run
            if isinstance(error, FatalError) and not isinstance(error, SkippableError):
                raise  # the intents stay: the next push settles whatever of this batch landed
            results = [WriteResult(key=write.item_key, ok=False, error=str(error), retriable=True) for write in writes]
        finally:
            self.outcome.api_calls[system] += connector.api_calls - before
        self._record(writes, results)

    def _unconfirmed(self, writes: list[PlannedWrite], error: WriteUnconfirmed) -> None:
        """A batch that may or may not have landed counts as failed in this run (so the run is not Completed)
        and is left as intents, which the next push looks up in the CRM before planning anything."""
        for write in writes:
            outcome = self.outcome.objects[(write.system, write.object_type)]
            outcome.failed += 1
        first = writes[0]
        self.outcome.objects[(first.system, first.object_type)].errors.append(
            f"{len(writes)} writes unconfirmed: {error.message}; the next push looks them up before writing")
        log.warning("%s: %d writes unconfirmed, left for the next push to settle: %s", first.system, len(writes),
                    error.message)

    def _record(self, writes: list[PlannedWrite], results: list[WriteResult]) -> None:
        """The batch's results, the removal of its intents and its conflicts, in one transaction."""
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
            rows.append(ledger_row(item_key(write), remote_object_type=write.object_type,
                                   remote_id=result.remote_id or write.remote_id, content_hash=write.content_hash,
                                   payload=write.payload, error=None if result.ok else (result.error or "rejected"),
                                   run_id=self.run_id, at=now))
        with transaction(self.engine) as connection:
            write_ledger(connection, rows)
            clear_intents(connection, [item_key(write) for write in writes])
            self._conflicts(connection, [write for write, result in zip(writes, results, strict=True) if result.ok])

    def _conflicts(self, connection: Connection, writes: list[PlannedWrite]) -> None:
        """Record each conflict once (the same disagreement seen again is not a new conflict)."""
        found = [(write, conflict) for write in writes for conflict in write.conflicts]
        if not found:
            return
        now = utcnow()
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
