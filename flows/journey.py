"""The journey flow: resolve identities → tag lifecycle stages → assign segments."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from flows.process import tune_gc
from flows.runtime import (
    final_state,
    hub_context,
    outcome,
    publish_journey,
    refused,
    run_log,
    run_name,
    under_prefect,
)
from journeyhub.journey.tagger import Tagger, TagPlan, TagSummary
from journeyhub.settings import Settings


def tagger(settings: Settings) -> Tagger:
    context = hub_context(settings)
    return Tagger(context.engine, context.lifecycle, context.identity)


@task(name="resolve-identities", cache_policy=NO_CACHE)
def resolve_identities(settings: Settings, full: bool) -> TagPlan:
    return tagger(settings).resolve(full=full)


@task(name="tag-lifecycle", cache_policy=NO_CACHE)
def tag_lifecycle(settings: Settings, plan: TagPlan, as_of: datetime | None) -> TagSummary:
    return tagger(settings).tag(plan, as_of or plan.started)


@task(name="assign-segments", cache_policy=NO_CACHE)
def assign_segments(settings: Settings, summary: TagSummary) -> TagSummary:
    return tagger(settings).assign_segments(summary)


@flow(name="journey", flow_run_name=run_name("journey"), log_prints=True)
def journey(as_of: datetime | None = None, full: bool = False) -> State[Any]:
    """Resolve identities, tag stages with evidence and assign segments as of a time (default: now)."""
    tune_gc()  # a deployment's flow run is its process's entry (flows/process.py)
    settings = Settings()
    if (stop := refused(settings)) is not None:
        return stop
    plan = resolve_identities(settings, full)
    summary = assign_segments(settings, tag_lifecycle(settings, plan, as_of))
    message = (f"{summary.customers} customers ({summary.new_customers} new, {summary.merges} merged), "
               f"{summary.evaluated} re-evaluated, {summary.history_changed} histories changed")
    run_log("journey: %s; stages %s; segments %s", message, summary.stages, summary.segments)
    publish_journey(settings, summary)
    return final_state("succeeded", message, summary)  # a step that fails raises: the run ends Failed


def run_journey(settings: Settings, *, as_of: datetime | None = None, full: bool = False) -> TagSummary:
    """Through the flow when a Prefect server is configured (ops see the run), else directly."""
    if under_prefect():
        return outcome(journey(as_of=as_of, full=full, return_state=True))
    return tagger(settings).run(as_of, full=full)
