"""Settling a push that died: the intents it left are resolved against the CRM before anything is planned.

An intent left behind is a write whose batch may or may not have landed (the push died before, during or
after sending it). The CRM decides, looked up in batches:
- a **mirrored item** by its marker (`Connector.find_mirrored`). Found: the ledger learns its remote id — with
  the content hash when the write was a create (a created record holds exactly what was sent), without it for
  an update or upsert (which may not have landed), so that one is sent once more, by id or external id, which
  changes nothing twice. Not found: nothing was written and the planner plans it again.
- **journey fields** by the record's current values (`Connector.read_current`). All as sent: the ledger
  records what landed. Otherwise the update is planned again (an update by id is idempotent).
Either way the intent is removed in the transaction that writes the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, select

from canonical.db import transaction
from canonical.models import WritebackIntent
from canonical.types import utcnow
from connectors.base import Connector, MarkedRecord
from journeyhub.writeback import render
from journeyhub.writeback.config import SystemPolicy
from journeyhub.writeback.ledger import ItemKey, clear_intents, ledger_row, write_ledger

CHUNK = 1000


@dataclass
class Settled:
    """What a push found of the writes a previous one left unconfirmed."""

    landed: int = 0          # found in the CRM: recorded in the ledger
    absent: int = 0          # not there (or not as sent): planned again

    @property
    def total(self) -> int:
        return self.landed + self.absent


def settle(engine: Engine, system: str, connector: Connector, policy: SystemPolicy) -> Settled:
    """Resolves every intent a previous push of `system` left, CHUNK at a time."""
    settled = Settled()
    while True:
        with engine.connect() as connection:
            intents = list(connection.execute(select(WritebackIntent).where(WritebackIntent.system == system)
                                              .order_by(WritebackIntent.id).limit(CHUNK)).mappings())
        if not intents:
            return settled
        rows = [*_mirrored(connector, policy, [i for i in intents if i["marker"]]),
                *_fields(connector, policy, [i for i in intents if not i["marker"]])]
        with transaction(engine) as connection:
            write_ledger(connection, rows)
            clear_intents(connection, [_key(intent) for intent in intents])
        settled.landed += len(rows)
        settled.absent += len(intents) - len(rows)


def _key(intent: Any) -> ItemKey:
    return intent["system"], intent["target_object_type"], intent["target_remote_id"], intent["item_key"]


def _landed(intent: Any, remote_id: str, content_hash: str | None) -> dict[str, Any]:
    return ledger_row(_key(intent), remote_object_type=intent["remote_object_type"], remote_id=remote_id,
                      content_hash=content_hash, payload=intent["payload"], error=None, run_id=intent["run_id"],
                      at=intent["recorded_at"] or utcnow())


def _mirrored(connector: Connector, policy: SystemPolicy, intents: list[Any]) -> Iterable[dict[str, Any]]:
    if not intents or policy.mirror is None:
        return
    by_object: dict[str, list[Any]] = defaultdict(list)
    for intent in intents:
        by_object[intent["remote_object_type"]].append(intent)
    for object_type, group in by_object.items():
        found = connector.find_mirrored(object_type, policy.mirror.marker_field, [
            MarkedRecord(intent["marker"], (intent["target_object_type"], intent["target_remote_id"]))
            for intent in group])
        for intent in group:
            if intent["marker"] in found:
                landed_as_sent = intent["action"] == "create"
                yield _landed(intent, found[intent["marker"]], intent["content_hash"] if landed_as_sent else None)


def _fields(connector: Connector, policy: SystemPolicy, intents: list[Any]) -> Iterable[dict[str, Any]]:
    types = {rule.name: rule.type for rule in policy.fields}
    by_object: dict[str, list[Any]] = defaultdict(list)
    for intent in intents:
        by_object[intent["target_object_type"]].append(intent)
    for object_type, group in by_object.items():
        names = sorted({name for intent in group for name in (intent["payload"] or {}) if name in types})
        current = connector.read_current(object_type, [intent["target_remote_id"] for intent in group], names)
        lowered = {str(key).lower(): values for key, values in current.items()}
        for intent in group:
            values = current.get(intent["target_remote_id"]) or lowered.get(str(intent["target_remote_id"]).lower())
            sent = {name: value for name, value in (intent["payload"] or {}).items() if name in types}
            if values is not None and all(render.normalized(types[name], values.get(name))
                                          == render.normalized(types[name], value) for name, value in sent.items()):
                yield _landed(intent, intent["target_remote_id"], intent["content_hash"])
