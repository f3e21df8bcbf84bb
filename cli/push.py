"""`journeyhub push`: write the unified view into every CRM, or show the plan (`--dry-run`); exit 1 when a
CRM's push did not run or the CRM rejected records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from cli import context, output, stop
from cli.context import UserError, fail
from journeyhub.writeback.push import PushReport

PLANNED = ("create", "update", "upsert", "unchanged")
PERSON_OBJECTS = {"contacts", "Contact", "Lead", "leads"}


def report_rows(reports: list[PushReport]) -> list[dict[str, Any]]:
    """One row per CRM and object: what was planned, pushed, rejected, and the conflicts."""
    rows = []
    for report in reports:
        for system, object_type in sorted({(system, object_type) for system, object_type, _ in report.plan.actions}):
            outcome = report.outcome.objects.get((system, object_type)) if report.outcome else None
            conflicts = sum(1 for s, _, _ in report.plan.conflicts if s == system) \
                if object_type in PERSON_OBJECTS else 0
            rows.append({"system": system, "object": object_type,
                         "planned": {action: report.plan.actions.get((system, object_type, action), 0)
                                     for action in PLANNED},
                         "pushed": outcome.pushed if outcome else None, "failed": outcome.failed if outcome else None,
                         "conflicts": outcome.conflicts if outcome else conflicts,
                         "errors": outcome.errors[:5] if outcome else []})
    return rows


def push_document(reports: list[PushReport], dry_run: bool) -> dict[str, Any]:
    """What `push --json` prints (the push rows of `sync_run` carry the same pushed/failed counts)."""
    from flows.push import push_status

    return {"command": "push", "dry_run": dry_run, "status": push_status(reports),
            "not_run": {system: error for report in reports for system, error in report.errors.items()},
            "objects": report_rows(reports),
            "conflicts": [{"system": system, "target": target, "field": conflict.field,
                           "crm_value": conflict.crm_value, "hub_value": conflict.hub_value,
                           "resolution": conflict.resolution}
                          for report in reports for system, target, conflict in report.plan.conflicts]}


def show(reports: list[PushReport], dry_run: bool) -> None:
    dry = "-" if dry_run else None
    output.table("Write-back plan (dry run: nothing written)" if dry_run else "Write-back",
                 ["system", "object", *PLANNED, "pushed", "failed", "conflicts"],
                 [(row["system"], row["object"], *row["planned"].values(),
                   dry or row["pushed"], dry or row["failed"], row["conflicts"]) for row in report_rows(reports)],
                 keys=2, numeric={*PLANNED, "pushed", "failed", "conflicts"})
    for report in reports:
        for name, error in report.errors.items():
            output.say(f"[red]✗ {name}: {output.escape(error)}[/]")
        for system_name, target, conflict in report.plan.conflicts[:10]:
            output.say(output.escape(f"conflict {system_name} {target} {conflict.field}: CRM has "
                                     f"{conflict.crm_value!r}, hub {conflict.hub_value!r} → {conflict.resolution}"))


def push(system: list[str] = typer.Option(None, "--system", help="hubspot, salesforce or dynamics (repeatable)"),
         dry_run: bool = typer.Option(False, "--dry-run", help="compute and show the plan without writing"),
         export: Path | None = typer.Option(None, help="write the per-record plan to this .csv or .json file"),
         as_json: bool = typer.Option(False, "--json", help="print one JSON document (see README) instead"),
         ) -> None:
    """Push stage, segment, last interaction and the other CRMs' timeline items into every CRM."""
    from flows.push import push_problems, run_push

    settings = context.checked_settings()
    context.engine(settings)
    systems = context.chosen_systems(settings, system, require_credentials=not dry_run)
    if export is not None and export.suffix.lower() not in {".csv", ".json"}:
        raise UserError(f"--export {export}: use a .csv or .json file name")
    stop.on_stop("push", "what the write-back ledger recorded is not sent again; run `journeyhub push` to finish")
    if not as_json:
        output.say(f"{'planning' if dry_run else 'pushing'} the journey into {', '.join(systems)}…")
    with output.run_log_lines(to_stderr=as_json):
        reports = run_push(settings, systems, dry_run=dry_run, export=export)  # type: ignore[arg-type]
    if as_json:
        output.emit_json(push_document(reports, dry_run))
    else:
        show(reports, dry_run)
        if export is not None:
            output.say(f"plan written to {output.escape(str(export))}")
    problems = push_problems(reports)
    if problems:
        raise fail(f"the push did not succeed everywhere: {'; '.join(problems[:5])}"
                   + ("; records the CRM rejected are retried on the next push"
                      if any(report.outcome and report.outcome.failed for report in reports) else ""))
