"""The journey flow: resolve identities → tag lifecycle stages → assign segments."""

from __future__ import annotations

from datetime import datetime

from prefect import flow, task
from prefect.cache_policies import NO_CACHE

from flows.process import tune_gc
from flows.runtime import hub_context, publish_journey, run_log, run_name, under_prefect
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
def journey(as_of: datetime | None = None, full: bool = False) -> TagSummary:
    """Resolve identities, tag stages with evidence and assign segments as of a time (default: now)."""
    tune_gc()  # a deployment's flow run is its process's entry (flows/process.py)
    settings = Settings()
    plan = resolve_identities(settings, full)
    summary = assign_segments(settings, tag_lifecycle(settings, plan, as_of))
    run_log("journey: %d customers (%d new, %d merged), %d re-evaluated, %d histories changed; stages %s; "
            "segments %s", summary.customers, summary.new_customers, summary.merges, summary.evaluated,
            summary.history_changed, summary.stages, summary.segments)
    publish_journey(settings, summary)
    return summary


def run_journey(settings: Settings, *, as_of: datetime | None = None, full: bool = False) -> TagSummary:
    """Through the flow when a Prefect server is configured (ops see the run), else directly."""
    if under_prefect():
        return journey(as_of=as_of, full=full)
    return tagger(settings).run(as_of, full=full)
