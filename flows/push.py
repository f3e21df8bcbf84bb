"""The push flow: write the unified view back into every CRM (one task per CRM), or plan it (dry run)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from flows.process import tune_gc
from flows.runtime import final_state, hub_context, outcome, publish_push, refused, run_log, run_name, under_prefect
from flows.sync import connector_for
from journeyhub.runs import new_run_id
from journeyhub.settings import Settings, SystemName
from journeyhub.writeback.push import PushReport, push


def push_plain(settings: Settings, system: SystemName, *, dry_run: bool = False, run_id: str | None = None,
               export: Path | None = None) -> PushReport:
    """Plan one CRM's write-back and, unless a dry run, execute it (a dry run's connector only formats)."""
    context = hub_context(settings)
    return push(context.engine, context.writeback, [system], run_id=run_id or new_run_id(), dry_run=dry_run,
                connectors={system: connector_for(system, settings)}, export=export)


push_system = task(name="push-crm", cache_policy=NO_CACHE, task_run_name="push-{system}",
                   tags=["crm-push"])(push_plain)


def push_problems(reports: list[PushReport]) -> list[str]:
    """One line per CRM whose push did not run and per object with records the CRM rejected."""
    lines = [f"{system}: push not run: {error}" for report in reports for system, error in report.errors.items()]
    return lines + [f"{system} {object_type} push {'failed' if not outcome.pushed else 'partial'}: "
                    f"{outcome.failed} record(s) rejected" for report in reports if report.outcome
                    for (system, object_type), outcome in sorted(report.outcome.objects.items()) if outcome.failed]


def push_status(reports: list[PushReport]) -> str:
    """`succeeded`; `failed` when no CRM's push worked (not run, or every record rejected); else `partial`."""
    if not push_problems(reports):
        return "succeeded"

    def worked(report: PushReport, system: str) -> bool:
        outcomes = report.outcome.objects.items() if report.outcome else []
        objects = [item for (name, _), item in outcomes if name == system]
        return system not in report.errors and not (objects and all(o.failed and not o.pushed for o in objects))

    return "partial" if any(worked(report, system) for report in reports for system in report.systems) else "failed"


def pushed(reports: list[PushReport]) -> int:
    return sum(item.pushed for report in reports if report.outcome for item in report.outcome.objects.values())


@flow(name="push", flow_run_name=run_name("push", "systems"), log_prints=True)
def push_flow(systems: list[SystemName] | None = None, dry_run: bool = False) -> State[Any]:
    """Write stage, segment, last interaction and the other CRMs' timeline items into every CRM."""
    tune_gc()  # a deployment's flow run is its process's entry (flows/process.py)
    settings = Settings()
    if (stop := refused(settings)) is not None:
        return stop
    chosen = systems or settings.enabled_systems()
    futures = [push_system.submit(settings, system, dry_run=dry_run) for system in chosen]
    reports = [future.result() for future in futures]
    for report in reports:
        run_log("push %s%s: planned %s", ", ".join(report.systems) or "-", " (dry run)" if report.dry_run else "",
                dict(report.planned()))
        for system, error in report.errors.items():
            run_log("push %s not run: %s", system, error, level=40)
    publish_push(reports)
    status = push_status(reports)
    message = "; ".join(push_problems(reports)) or (
        f"planned {sum(sum(report.planned().values()) for report in reports)} writes (dry run)" if dry_run else
        f"pushed {pushed(reports)} records")
    return final_state(status, message, reports)


def run_push(settings: Settings, systems: list[SystemName], *, dry_run: bool = False,
             export: Path | None = None) -> list[PushReport]:
    """Through the flow when a Prefect server is configured, else directly (exports need the direct path)."""
    if under_prefect() and export is None:
        return outcome(push_flow(systems, dry_run=dry_run, return_state=True))
    run_id = new_run_id()
    reports = []
    for system in systems:
        path = export
        if export is not None and len(systems) > 1:
            path = export.with_name(f"{export.stem}-{system}{export.suffix}")
        reports.append(push_plain(settings, system, dry_run=dry_run, run_id=run_id, export=path))
    return reports
