"""The hub flow: pull every enabled CRM (concurrently) → resolve identities → tag lifecycle → push back.

Each CRM's pull is its own subflow, so a failure in one does not stop the others. The run ends `Completed`
only when every object of every step succeeded (records quarantined as bad data are counted and named in its
message, never fatal); else `Partial` (a failed run named so: some object failed, some records were rejected
by a CRM) or `Failed` (no CRM could be pulled), the message naming them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from flows.journey import journey
from flows.limits import ensure_rate_limits
from flows.process import tune_gc
from flows.push import push_flow, push_problems
from flows.runtime import final_state, outcome, publish_hub, refused, run_log, run_name
from flows.sync import SystemSync, sync_crm
from journeyhub.journey.tagger import TagSummary
from journeyhub.settings import Settings, SystemName
from journeyhub.writeback.push import PushReport


@dataclass
class HubResult:
    systems: list[str]
    syncs: list[SystemSync] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)      # system → why its pull failed
    journey: TagSummary | None = None
    pushes: list[PushReport] = field(default_factory=list)

    @property
    def status(self) -> str:
        """`succeeded` when every object of every step succeeded; `failed` when no CRM could be pulled;
        else `partial`."""
        if not self.problems():
            return "succeeded"
        pulled = [sync for sync in self.syncs if sync.status != "failed"]
        return "failed" if not pulled else "partial"

    def problems(self) -> list[str]:
        """One line per CRM or object that failed or ended partial, pull and push."""
        lines = [f"{system}: pull failed: {reason}" for system, reason in self.failures.items()]
        lines += [line for sync in self.syncs for line in sync.problems()]
        return lines + push_problems(self.pushes)


@task(name="pull-crm", cache_policy=NO_CACHE, task_run_name="pull-{system}")
def pull_crm(system: SystemName, full: bool) -> SystemSync:
    """One CRM's pull, as its own subflow run (its page tasks and artifacts live there; its state says
    whether every object succeeded)."""
    return outcome(sync_crm(system=system, full=full, return_state=True))


@flow(name="hub", flow_run_name=run_name("hub", "systems"), log_prints=True)
def hub(systems: list[SystemName] | None = None, full: bool = False, push: bool = True, dry_run: bool = False,
        as_of: datetime | None = None) -> State[Any]:
    """Pull → resolve → tag → push for every enabled CRM (or `systems`).

    Parameters: `full` re-reads everything instead of changes since the cursors; `push=False` skips the
    write-back; `dry_run` plans the write-back without writing; `as_of` evaluates segments at that time.
    """
    tune_gc()  # a deployment's flow run is its process's entry (flows/process.py)
    settings = Settings()
    if (stop := refused(settings)) is not None:
        return stop
    chosen: list[SystemName] = list(systems or settings.enabled_systems())
    result = HubResult(systems=list(chosen))
    if not chosen:
        return Failed(message="no CRM is configured: set HUBSPOT_*, SALESFORCE_* or DYNAMICS_* credentials")
    ensure_rate_limits(settings, chosen)
    progress = create_progress_artifact(0.0, key="hub-progress", description="pull → tag → push")
    futures = {system: pull_crm.submit(system, full) for system in chosen}
    for system, future in futures.items():
        try:
            result.syncs.append(future.result())
        except Exception as error:
            result.failures[system] = f"{type(error).__name__}: {error}"
    update_progress_artifact(progress, 50.0)
    result.journey = journey(as_of=as_of)
    update_progress_artifact(progress, 70.0)
    stopped = set(result.failures) | {sync.system for sync in result.syncs if sync.error}  # e.g. rejected login
    pulled = [system for system in chosen if system not in stopped]
    if push and pulled:
        result.pushes = outcome(push_flow(pulled, dry_run=dry_run, return_state=True))
    update_progress_artifact(progress, 100.0)
    publish_hub(result)
    notes = [note for sync in result.syncs for note in sync.quarantine_notes()]
    message = "; ".join(result.problems() + notes) or "every CRM pulled, tagged and pushed"
    run_log("hub run %s: %s", result.status, message, level={"succeeded": 20, "partial": 30}.get(result.status, 40))
    return final_state(result.status, message, result)
