"""The pull flows' side of the schema check (journeyhub.ingest.schema): which fields to read of an object, each
missing optional field logged once per run, and the run's list of them as an artifact."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from connectors.base import Connector
from flows.runtime import in_flow_run, run_log
from journeyhub.ingest.loader import Counts
from journeyhub.ingest.schema import ReadPlan, SchemaMismatch, plan_read
from journeyhub.ingest.spec import MappingSpec


def read_plan(engine: Engine, connector: Connector, spec: MappingSpec, row: int, counts: Counts,
              warnings: list[str], *, refresh: bool = False) -> ReadPlan:
    """The fields to read of one object, checked against the org: a missing optional field is logged (once:
    `warnings` holds what this run said already); a missing required one fails the object (SchemaMismatch).
    The describe's calls count toward the object's."""
    plan = plan_read(engine, connector, spec, refresh=refresh, run_row_id=row)
    counts.api_calls += plan.api_calls
    for warning in plan.warnings():
        if warning not in warnings:
            warnings.append(warning)
            run_log("%s", warning, level=30)
    problem = plan.problem()
    if problem:
        raise SchemaMismatch(problem)
    return plan


def publish_warnings(result: Any) -> None:
    """The fields one CRM's org lacks, as a markdown artifact of the flow run (one line each)."""
    if not result.warnings or not in_flow_run():
        return
    from prefect.artifacts import create_markdown_artifact

    lines = "\n".join(f"- {warning}" for warning in result.warnings)
    create_markdown_artifact(key=f"{result.system}-fields", markdown=f"**{result.system}: fields this org lacks "
                             f"(not read)**\n\n{lines}", description=f"{result.system}: missing optional fields")
