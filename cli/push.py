"""`journeyhub push`: write the unified view into every CRM, or show the plan (`--dry-run`)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from cli import context
from cli.context import UserError, console, fail
from journeyhub.writeback.push import PushReport


def report_table(reports: list[PushReport]) -> Table:
    dry_run = all(report.dry_run for report in reports)
    table = Table(title="Write-back plan (dry run: nothing written)" if dry_run else "Write-back")
    for column in ("system", "object", "create", "update", "upsert", "unchanged", "pushed", "failed", "conflicts"):
        table.add_column(column, justify="left" if column in {"system", "object"} else "right")
    for report in reports:
        objects = sorted({(system, object_type) for system, object_type, _ in report.plan.actions})
        for system, object_type in objects:
            planned = {action: report.plan.actions.get((system, object_type, action), 0)
                       for action in ("create", "update", "upsert", "unchanged")}
            outcome = report.outcome.objects.get((system, object_type)) if report.outcome else None
            conflicts = sum(1 for s, _, _ in report.plan.conflicts if s == system) if object_type in {
                "contacts", "Contact", "Lead", "leads"} else 0
            table.add_row(system, object_type, *(str(planned[a]) for a in ("create", "update", "upsert", "unchanged")),
                          str(outcome.pushed) if outcome else "-", str(outcome.failed) if outcome else "-",
                          str(outcome.conflicts if outcome else conflicts))
    return table


def push(system: list[str] = typer.Option(None, "--system", help="hubspot, salesforce or dynamics (repeatable)"),
         dry_run: bool = typer.Option(False, "--dry-run", help="compute and show the plan without writing"),
         export: Path | None = typer.Option(None, help="write the per-record plan to this .csv or .json file"),
         ) -> None:
    """Push stage, segment, last interaction and the other CRMs' timeline items into every CRM."""
    from flows.push import run_push

    settings = context.settings()
    context.engine(settings)
    systems = context.chosen_systems(settings, system, require_credentials=not dry_run)
    if export is not None and export.suffix.lower() not in {".csv", ".json"}:
        raise UserError(f"--export {export}: use a .csv or .json file name")
    reports = run_push(settings, systems, dry_run=dry_run, export=export)  # type: ignore[arg-type]
    console.print(report_table(reports))
    for report in reports:
        for name, error in report.errors.items():
            console.print(f"[red]✗ {name}: {error}[/]", soft_wrap=True)
        for system_name, target, conflict in report.plan.conflicts[:10]:
            console.print(f"[yellow]conflict[/] {system_name} {target} {conflict.field}: CRM has "
                          f"{conflict.crm_value!r}, hub {conflict.hub_value!r} → {conflict.resolution}")
    if export is not None:
        console.print(f"plan written to {export}")
    if any(report.errors for report in reports):
        raise fail("write-back did not run for every CRM (see above)")
    if any(report.outcome and report.outcome.failed for report in reports):
        raise fail("some records were rejected by the CRM; they are retried on the next push")
