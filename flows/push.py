"""The push flow: write the unified view back into every CRM (one task per CRM), or plan it (dry run)."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.process import tune_gc
from flows.runtime import hub_context, publish_push, run_log, run_name, under_prefect
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


@flow(name="push", flow_run_name=run_name("push", "systems"), log_prints=True)
def push_flow(systems: list[SystemName] | None = None, dry_run: bool = False) -> list[PushReport]:
    """Write stage, segment, last interaction and the other CRMs' timeline items into every CRM."""
    tune_gc()  # a deployment's flow run is its process's entry (flows/process.py)
    settings = Settings()
    chosen = systems or settings.enabled_systems()
    futures = [push_system.submit(settings, system, dry_run=dry_run) for system in chosen]
    reports = [future.result() for future in futures]
    for report in reports:
        run_log("push %s%s: planned %s", ", ".join(report.systems) or "-", " (dry run)" if report.dry_run else "",
                dict(report.planned()))
        for system, error in report.errors.items():
            run_log("push %s not run: %s", system, error, level=40)
    publish_push(reports)
    return reports


def run_push(settings: Settings, systems: list[SystemName], *, dry_run: bool = False,
             export: Path | None = None) -> list[PushReport]:
    """Through the flow when a Prefect server is configured, else directly (exports need the direct path)."""
    if under_prefect() and export is None:
        return push_flow(systems, dry_run=dry_run)
    run_id = new_run_id()
    reports = []
    for system in systems:
        path = export
        if export is not None and len(systems) > 1:
            path = export.with_name(f"{export.stem}-{system}{export.suffix}")
        reports.append(push_plain(settings, system, dry_run=dry_run, run_id=run_id, export=path))
    return reports
