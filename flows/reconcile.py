"""The nightly reconciliation flow: hard-delete detection by id sets and the association re-check."""

from __future__ import annotations

from functools import partial

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.process import tune_gc
from flows.runtime import hub_context, run_log, run_name
from flows.sync import connector_for, ordered_objects
from journeyhub.config import load_mappings
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.reconcile import APPEND_ONLY, Reconciled, reconcile_object
from journeyhub.ingest.writer_lock import writer_lock
from journeyhub.runs import new_run_id
from journeyhub.settings import Settings, SystemName


@task(name="reconcile-object", cache_policy=NO_CACHE, task_run_name="reconcile-{system}-{object_type}",
      retries=1, retry_delay_seconds=60)
def reconcile_one(settings: Settings, system: SystemName, object_type: str, run_id: str) -> Reconciled:
    context = hub_context(settings)
    loader = PageLoader(context.engine, system, load_mappings(context.mappings, system), run_id, context.identity)
    with writer_lock(context.engine, system, object_type, on_wait=partial(
            run_log, "%s %s: another run is writing it; reconciling it once that run is done", system, object_type)):
        return reconcile_object(context.engine, connector_for(system, settings), loader, object_type, run_id=run_id)


@flow(name="reconcile", flow_run_name=run_name("reconcile", "systems"), log_prints=True)
def reconcile(systems: list[SystemName] | None = None) -> dict[str, list[Reconciled]]:
    """Re-read every object's ids, tombstone records purged from the CRMs, re-check HubSpot associations."""
    tune_gc()  # a deployment's flow run is its process's entry (flows/process.py)
    settings = Settings()
    context = hub_context(settings)
    run_id = new_run_id()
    results: dict[str, list[Reconciled]] = {}
    for system in systems or settings.enabled_systems():
        objects = [name for name in ordered_objects(load_mappings(context.mappings, system)) if name not in APPEND_ONLY]
        results[system] = [reconcile_one(settings, system, object_type, run_id) for object_type in objects]
        print(f"{system}: " + ", ".join(f"{item.object_type} {item.purged} purged" for item in results[system]))
    return results
