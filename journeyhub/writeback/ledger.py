"""The push's two records in the canonical database: the ledger (what landed where) and the intents (what is
about to be sent). Every batch goes: intents committed → batch sent → results and intent removal committed
together, so whatever instant a push dies, each write is either in the ledger or still an intent."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, tuple_
from sqlalchemy.engine import Connection

from canonical.models import WritebackIntent, WritebackLedger
from canonical.types import utcnow
from canonical.upsert import chunks, upsert
from journeyhub.writeback.plan import PlannedWrite

ITEM = ["system", "target_object_type", "target_remote_id", "item_key"]
ItemKey = tuple[str, str, str, str]


def item_key(write: PlannedWrite) -> ItemKey:
    return write.system, write.target_object_type, write.target_remote_id, write.item_key


def record_intents(connection: Connection, writes: Sequence[PlannedWrite], run_id: str) -> None:
    """The writes about to be sent (one row per item; a later intent for the same item replaces it)."""
    now = utcnow()
    rows = [{"system": write.system, "target_object_type": write.target_object_type,
             "target_remote_id": write.target_remote_id, "item_key": write.item_key,
             "remote_object_type": write.object_type, "action": write.action, "marker": write.marker,
             "remote_id": write.remote_id, "content_hash": write.content_hash, "payload": write.payload,
             "run_id": run_id, "recorded_at": now} for write in writes]
    if rows:
        upsert(connection, WritebackIntent, rows, conflict=ITEM,
               update=["remote_object_type", "action", "marker", "remote_id", "content_hash", "payload", "run_id",
                       "recorded_at"])


def clear_intents(connection: Connection, keys: Sequence[ItemKey]) -> None:
    columns = tuple_(*(getattr(WritebackIntent, name) for name in ITEM))
    for chunk in chunks(list(keys), 200):
        connection.execute(delete(WritebackIntent).where(columns.in_(list(chunk))))


def write_ledger(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Ledger rows (`status` pushed or failed). A failure keeps what was pushed before (remote id, payload)
    and only marks the failure."""
    pushed = [row for row in rows if row["status"] == "pushed"]
    failed = [row for row in rows if row["status"] == "failed"]
    if pushed:
        upsert(connection, WritebackLedger, pushed, conflict=ITEM,
               update=["remote_object_type", "remote_id", "content_hash", "payload", "status", "error",
                       "last_pushed_at", "run_id"])
    if failed:
        upsert(connection, WritebackLedger, failed, conflict=ITEM, update=["status", "error", "last_pushed_at",
                                                                           "run_id"])


def ledger_row(key: ItemKey, *, remote_object_type: str, remote_id: str | None, content_hash: str | None,
               payload: dict[str, Any] | None, error: str | None, run_id: str | None,
               at: datetime) -> dict[str, Any]:
    """One ledger row; `error` None means pushed."""
    system, target_object_type, target_remote_id, item = key
    return {"system": system, "target_object_type": target_object_type, "target_remote_id": target_remote_id,
            "item_key": item, "remote_object_type": remote_object_type, "remote_id": remote_id,
            "content_hash": content_hash if error is None else None, "payload": payload if error is None else None,
            "status": "pushed" if error is None else "failed", "error": None if error is None else error[:4000],
            "attempts": 1, "first_pushed_at": at, "last_pushed_at": at, "run_id": run_id}
