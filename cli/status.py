"""`journeyhub status` and `journeyhub config check`: what the hub did lately, and whether it is set up."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from sqlalchemy import Engine, func, select

from canonical.models import Quarantine, SyncRun, SyncState
from cli import context
from cli.context import console, fail
from journeyhub.config import check_all, load_mappings, mappings_root
from journeyhub.settings import SYSTEMS, Settings

config_app = typer.Typer(help="Validate settings and configuration files.", no_args_is_help=True)


@config_app.command("check")
def config_check(online: bool = typer.Option(False, "--online", help="also check every field the mappings read "
                                             "against each configured CRM's own schema (reads no records)")
                 ) -> None:
    """Validate settings and every YAML file under mappings/; list which CRMs are enabled."""
    current = context.settings()
    root = mappings_root(current)
    checked, problems = check_all(root)
    problems = current.problems() + problems
    enabled = current.enabled_systems()
    table = Table(title="Journey Hub configuration", show_header=False)
    table.add_row("database", current.database_url.split("@")[-1] if "@" in current.database_url
                  else current.database_url)
    table.add_row("mappings", f"{root} ({len(checked)} files)")
    for system in SYSTEMS:
        table.add_row(system, "[green]enabled[/]" if system in enabled else "[dim]not configured[/]")
    console.print(table)
    if online and not problems:
        problems += check_fields_online(current, root)
    for problem in problems:
        console.print(f"[bold red]✗[/] {problem}", highlight=False, soft_wrap=True)
    if problems:
        raise fail(f"{len(problems)} configuration problem(s)", 2)
    if not enabled:
        console.print("[yellow]no CRM is configured yet: set HUBSPOT_ACCESS_TOKEN, SALESFORCE_INSTANCE_URL + "
                      "credentials, or DYNAMICS_URL + credentials (see README)[/]")
    console.print("[green]✓[/] configuration is valid")


def check_fields_online(current: Settings, root: Path) -> list[str]:
    """`config check --online`: each enabled CRM's mapped objects against the org's own schema (a describe per
    object, no records read), printed per CRM and object; returns the problems (missing required fields,
    CRMs that cannot be reached)."""
    from connectors.errors import ConnectorError
    from journeyhub.connections import open_connector
    from journeyhub.ingest.schema import check_online

    problems: list[str] = []
    for system in current.enabled_systems():
        try:
            connector = open_connector(system, current)
            try:
                plans = check_online(connector, load_mappings(root, system))
            finally:
                connector.close()
        except ConnectorError as error:
            problems.append(f"{system}: cannot check the fields against the org: {error.message}")
            continue
        table = Table(title=f"{system}: mapped fields against the org's schema", show_header=True)
        for column in ("object", "fields read", "missing"):
            table.add_column(column)
        for plan in plans:
            missing = [f"[red]✗ {use.name}[/] (required)" for use in plan.missing_required]
            missing += [f"[yellow]⚠ {use.name}[/] (optional)" for use in plan.missing_optional]
            table.add_row(plan.object_type, str(len(plan.fields)), ", ".join(missing) or "[green]✓[/]")
        console.print(table)
        for plan in plans:
            for warning in plan.warnings():
                console.print(f"[yellow]⚠[/] {warning}", highlight=False, soft_wrap=True)
            problem = plan.problem()
            if problem:
                problems.append(problem)
    return problems


def _latest_runs(engine: Engine) -> list[SyncRun]:
    latest = (select(func.max(SyncRun.id)).group_by(SyncRun.direction, SyncRun.system, SyncRun.object_type))
    with engine.connect() as connection:
        rows = connection.execute(select(SyncRun).where(SyncRun.id.in_(latest))
                                  .order_by(SyncRun.direction, SyncRun.system, SyncRun.object_type))
        return [SyncRun.model_validate(row._mapping) for row in rows]


def status() -> None:
    """Last run per system and object, persisted cursors, and open quarantine counts."""
    engine = context.engine()
    runs = _latest_runs(engine)
    table = Table(title="Last runs")
    for column in ("kind", "system", "object", "finished", "status", "read", "ins", "upd", "del",
                   "quar", "pushed", "failed", "calls", "error"):
        table.add_column(column, justify="right" if column in {"read", "ins", "upd", "del", "quar", "pushed",
                                                                "failed", "calls"} else "left")
    for run in runs:
        colour = {"succeeded": "green", "partial": "yellow", "failed": "red"}.get(run.status, "cyan")
        table.add_row(run.direction, run.system, run.object_type,
                      run.finished_at.strftime("%Y-%m-%d %H:%M") if run.finished_at else "running",
                      f"[{colour}]{run.status}[/]", str(run.records_read), str(run.inserted), str(run.updated),
                      str(run.deleted), str(run.quarantined), str(run.pushed), str(run.failed),
                      str(run.api_calls), (run.error or "")[:60])
    console.print(table if runs else "[dim]no runs yet: run `journeyhub sync`[/]")
    with engine.connect() as connection:
        cursors = connection.execute(select(SyncState).order_by(SyncState.system, SyncState.object_type)).all()
        quarantine = connection.execute(
            select(Quarantine.system, Quarantine.object_type, Quarantine.reason, func.count())
            .where(Quarantine.resolved_at.is_(None))
            .group_by(Quarantine.system, Quarantine.object_type, Quarantine.reason)).all()
    if cursors:
        cursor_table = Table(title="Cursors")
        for column in ("system", "object", "cursor", "updated"):
            cursor_table.add_column(column)
        for row in cursors:
            cursor_table.add_row(row.system, row.object_type, (row.cursor or "")[:70],
                                 row.updated_at.strftime("%Y-%m-%d %H:%M:%S") if row.updated_at else "")
        console.print(cursor_table)
    if quarantine:
        quarantine_table = Table(title="Quarantined records (open)")
        for column in ("system", "object", "reason", "records"):
            quarantine_table.add_column(column)
        for system, object_type, reason, count in quarantine:
            quarantine_table.add_row(system, object_type, reason, str(count))
        console.print(quarantine_table)
