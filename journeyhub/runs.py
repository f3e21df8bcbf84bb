"""Run bookkeeping: one `sync_run` row per (run, direction, system, object), opened before the work starts
and closed with its status and error, so ops see failed and running work, not only successes."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Engine, insert, select, update

from canonical.models import SyncRun
from canonical.types import utcnow

#: why a run still marked running was closed by the next run of its object
INTERRUPTED = "interrupted: its process stopped before it finished (killed, or its host died)"


def new_run_id() -> str:
    """The hub's run id: the Prefect flow-run id when running under Prefect, else a fresh one."""
    flow_run_id = current_flow_run_id()
    return flow_run_id or f"run-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:6]}"


def current_flow_run_id() -> str | None:
    """The Prefect flow run this code runs in (None outside one)."""
    from prefect.runtime import flow_run

    return str(flow_run.id) if flow_run.id else None


#: rows this process opened and has not closed yet (what an interrupted command marks failed on its way out)
_unfinished: dict[int, Engine] = {}


def open_run(engine: Engine, run_id: str, direction: str, system: str, object_type: str) -> int:
    with engine.begin() as connection:
        row = int(connection.execute(insert(SyncRun).values(
            run_id=run_id, flow_run_id=current_flow_run_id(), direction=direction, system=system,
            object_type=object_type, started_at=utcnow(), status="running",
        ).returning(SyncRun.id)).scalar_one())
    _unfinished[row] = engine
    return row


def close_run(engine: Engine, row_id: int, status: str, error: str | None = None, **counts: int) -> None:
    values: dict[str, object] = {"status": status, "finished_at": utcnow(), "error": error}
    values.update(counts)
    with engine.begin() as connection:
        connection.execute(update(SyncRun).where(SyncRun.id == row_id).values(**values))
    _unfinished.pop(row_id, None)


def close_unfinished(error: str) -> int:
    """Mark every run row this process left open as failed with `error` (a stopped command); how many."""
    rows = list(_unfinished.items())
    for row_id, engine in rows:
        close_run(engine, row_id, "failed", error)
    return len(rows)


def close_interrupted(engine: Engine, direction: str, system: str, object_type: str, *, keep: int) -> int:
    """Mark as failed the runs of this (direction, system, object) still `running` except row `keep`: called
    by the holder of the object's writer lock, so their processes are gone (killed, or their host died)."""
    with engine.begin() as connection:
        return connection.execute(update(SyncRun).where(
            SyncRun.direction == direction, SyncRun.system == system, SyncRun.object_type == object_type,
            SyncRun.status == "running", SyncRun.id != keep,
        ).values(status="failed", finished_at=utcnow(), error=INTERRUPTED)).rowcount


def run_rows(engine: Engine, run_id: str) -> list[SyncRun]:
    with engine.connect() as connection:
        rows = connection.execute(select(SyncRun).where(SyncRun.run_id == run_id).order_by(SyncRun.id))
        return [SyncRun.model_validate(row._mapping) for row in rows]


def duration(run: SyncRun) -> float | None:
    if run.started_at is None or run.finished_at is None:
        return None
    return (run.finished_at - run.started_at).total_seconds()


def since(start: datetime) -> float:
    return (utcnow() - start).total_seconds()
