"""`push`: plan the write-back and, unless it is a dry run, execute it — per CRM, recorded as runs.

A real push first makes sure each CRM has the hub's fields and settles what an earlier push left
unconfirmed (journeyhub.writeback.settle); only then is anything planned, so a push that died at any instant
is followed by one that writes nothing twice. Two pushes of one CRM never run at once (`PUSH_LOCK`)."""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from connectors.base import Connector
from journeyhub.ingest.writer_lock import writer_lock
from journeyhub.runs import close_run, open_run
from journeyhub.writeback.config import WritebackConfig
from journeyhub.writeback.execute import Executor, PushOutcome, prepare
from journeyhub.writeback.plan import PlannedWrite, Planner, PlanSummary
from journeyhub.writeback.settle import Settled, settle

log = logging.getLogger("journeyhub.writeback")
#: the writer lock (journeyhub.ingest.writer_lock) a push holds for each CRM it writes: a second push of that
#: CRM waits, then settles and plans against what the first one confirmed — instead of settling the first
#: one's in-flight writes as "not landed" and creating them again
PUSH_LOCK = "writeback-push"
WAITING = "%s: another push is writing to it; waiting for it to finish"


@dataclass
class PushReport:
    dry_run: bool
    systems: list[str]
    plan: PlanSummary
    outcome: PushOutcome | None = None
    errors: dict[str, str] = field(default_factory=dict)   # system → the error that stopped it
    settled: dict[str, Settled] = field(default_factory=dict)  # system → what an earlier push left unconfirmed

    def planned(self, system: str | None = None) -> Counter[str]:
        counts: Counter[str] = Counter()
        for (planned_system, _, action), count in self.plan.actions.items():
            if system is None or planned_system == system:
                counts[action] += count
        return counts


def export_plan(rows: list[dict[str, Any]], path: Path) -> None:
    """The per-record plan as CSV or JSON (by the file's extension)."""
    if path.suffix.lower() == ".json":
        path.write_text(json.dumps(rows, indent=1, ensure_ascii=False, default=str), encoding="utf-8")
        return
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["system"])
        writer.writeheader()
        writer.writerows(rows)


def push(engine: Engine, config: WritebackConfig, systems: list[str], *, run_id: str,
         connectors: Mapping[str, Connector], dry_run: bool = False, export: Path | None = None) -> PushReport:
    """Plan every enabled system's write-back; execute it unless `dry_run` (a dry run makes no CRM calls:
    its connectors only format values). A CRM whose setup or settling fails (missing fields, rejected
    credentials, no answer) is reported and skipped — nothing is planned for it; the others are pushed."""
    if dry_run:
        return _push(engine, config, systems, run_id=run_id, connectors=connectors, dry_run=True, export=export)
    with ExitStack() as held:   # one push per CRM at a time; taken in order, so two pushes cannot deadlock
        for system in sorted(set(systems)):
            held.enter_context(writer_lock(engine, system, PUSH_LOCK, on_wait=partial(log.warning, WAITING, system)))
        return _push(engine, config, systems, run_id=run_id, connectors=connectors, export=export)


def _push(engine: Engine, config: WritebackConfig, systems: list[str], *, run_id: str,
          connectors: Mapping[str, Connector], dry_run: bool = False, export: Path | None = None) -> PushReport:
    systems = [system for system in systems if config.system(system) is not None]
    if missing := [system for system in systems if system not in connectors]:
        raise ValueError(f"push needs a connector for {', '.join(missing)} (a dry run too: connectors format "
                         "the values it plans)")
    report = PushReport(dry_run=dry_run, systems=systems, plan=PlanSummary())
    exported: list[dict[str, Any]] = []
    if not dry_run:
        for system in list(systems):
            policy = config.system(system)
            assert policy is not None
            try:
                prepare(connectors[system], policy)
                settled = report.settled[system] = settle(engine, system, connectors[system], policy)
                if settled.total:
                    log.warning("%s: an earlier push died with %d writes unconfirmed; %d had landed (now in the "
                                "ledger), %d are planned again", system, settled.total, settled.landed,
                                settled.absent)
            except Exception as error:
                report.errors[system] = str(error)
                systems.remove(system)

    def planned() -> Any:
        for write in Planner(engine, config, connectors).plan(systems):
            report.plan.add(write)
            if export is not None:
                exported.append(write.row())
            yield write

    if dry_run:
        for _ in planned():
            pass
    else:
        rows = {system: open_run(engine, run_id, "push", system, "*") for system in systems}
        executor = Executor(engine, dict(connectors), run_id)
        try:
            report.outcome = executor.run(planned())
        except Exception as error:
            for row in rows.values():
                close_run(engine, row, "failed", str(error))
            raise
        for system, row in rows.items():
            close_run(engine, row, *_status(report.outcome, system), **_counts(report.outcome, system))
    if export is not None:
        export_plan(exported, export)
    return report


def _status(outcome: PushOutcome, system: str) -> tuple[str, str | None]:
    errors = [error for (name, _), item in outcome.objects.items() if name == system for error in item.errors]
    return ("partial", "; ".join(errors[:5])) if errors else ("succeeded", None)


def _counts(outcome: PushOutcome, system: str) -> dict[str, int]:
    items = [item for (name, _), item in outcome.objects.items() if name == system]
    return {"pushed": sum(i.pushed for i in items), "failed": sum(i.failed for i in items),
            "unchanged": sum(i.unchanged for i in items), "conflicts": sum(i.conflicts for i in items),
            "api_calls": outcome.api_calls.get(system, 0)}


__all__ = ["PlannedWrite", "PushReport", "export_plan", "push"]
