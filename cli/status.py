"""`journeyhub status` and `journeyhub config check`: what the hub did lately, and whether it is set up."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from sqlalchemy import Engine, func, select
from sqlalchemy.engine import make_url

from canonical.db import DatabaseError, check_connection, make_engine, redact
from canonical.models import Quarantine, SyncRun, SyncState
from cli import context, output
from cli.context import fail
from connectors.retry import RetryPolicy
from journeyhub.config import check_all, load_mappings, mappings_root
from journeyhub.settings import SYSTEMS, Settings

config_app = typer.Typer(help="Validate settings and configuration files.", no_args_is_help=True)
JSON_OPTION = typer.Option(False, "--json", help="print one JSON document (see README) instead")


@config_app.command("check")
def config_check(as_json: bool = JSON_OPTION,
                 online: bool = typer.Option(False, "--online", help="also connect to the database, try each "
                                             "configured CRM's credentials and check every field the mappings "
                                             "read against its own schema (reads no records)")
                 ) -> None:
    """Validate settings and every YAML file under mappings/; list which CRMs are enabled."""
    current = context.settings()
    root = mappings_root(current)
    checked, problems = check_all(root)
    problems = current.problems() + problems
    enabled = current.enabled_systems()
    fields: dict[str, list[dict[str, Any]]] = {}
    if online and not problems:
        problems += check_database_online(current.database_url)
        problems += check_fields_online(current, root, fields, show=not as_json)
    if as_json:
        output.emit_json({"command": "config check", "valid": not problems, "database": redact(current.database_url),
                          "mappings": str(root), "files_checked": len(checked),
                          "systems": {system: system in enabled for system in SYSTEMS}, "problems": problems,
                          **({"fields": fields} if online else {})})
    else:
        output.table("Journey Hub configuration", ["setting", "value"], [
            ("database", redact(current.database_url)), ("mappings", f"{root} ({len(checked)} files)"),
            *((system, "enabled" if system in enabled else "not configured") for system in SYSTEMS)],
            styles={"value": {"enabled": "green", "not configured": "dim"}})
        for problem in problems:
            output.say(f"[bold red]✗[/] {output.escape(problem)}")
    if problems:
        raise fail(f"{len(problems)} configuration problem(s)", 2)
    if as_json:
        return
    if not enabled:
        output.say("[yellow]no CRM is configured yet: set HUBSPOT_ACCESS_TOKEN, SALESFORCE_INSTANCE_URL + "
                   "credentials, or DYNAMICS_URL + credentials (see README)[/]")
    output.say("[green]✓[/] configuration is valid")


#: `config check --online` tries each CRM briefly: a dead host or a wrong token is a line, not minutes
ONLINE_RETRY = RetryPolicy(max_attempts=3, max_seconds=20.0, initial_wait=0.5, max_backoff=2.0)
DATABASE_CONNECT_SECONDS = 5


def check_database_online(url: str) -> list[str]:
    """`config check --online`: one `SELECT 1` on JOURNEYHUB_DATABASE_URL, connecting for a few seconds at
    most (a SQLite file that does not exist is said, not created)."""
    try:
        context.missing_database_file(url)
        parsed = make_url(url)
        if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
            parsed = parsed.update_query_dict({"connect_timeout": str(DATABASE_CONNECT_SECONDS)})
        db = make_engine(parsed.render_as_string(hide_password=False))
        try:
            check_connection(db)
        finally:
            db.dispose()
    except context.UserError as error:
        return [f"JOURNEYHUB_DATABASE_URL: {error}"]
    except DatabaseError as error:
        return [str(error)]
    return []


def check_fields_online(current: Settings, root: Path, found: dict[str, list[dict[str, Any]]], *,
                        show: bool = True) -> list[str]:
    """`config check --online`: each enabled CRM's mapped objects against the org's own schema (a describe per
    object, no records read), per CRM and object into `found` (and printed unless `show` is off); returns
    the problems (rejected credentials, missing required fields, CRMs that cannot be reached)."""
    from connectors.errors import AuthError, ConnectorError, HostUnreachable, Unreachable
    from journeyhub.connections import open_connector
    from journeyhub.ingest.schema import check_online

    problems: list[str] = []
    for system in current.enabled_systems():
        try:
            connector = open_connector(system, current, retry=ONLINE_RETRY)
            try:
                try:
                    connector.check()        # one cheap authenticated call
                except AuthError as error:
                    problems.append(f"{system}: the credentials were rejected: {error.message}")
                    continue
                plans = check_online(connector, load_mappings(root, system))
            finally:
                connector.close()
        except (Unreachable, HostUnreachable) as error:
            problems.append(f"{system}: cannot reach {error.host}: {error.message} — check {error.setting}"
                            if isinstance(error, Unreachable) else f"{system}: {error.message}")
            continue
        except ConnectorError as error:
            problems.append(f"{system}: cannot check the credentials and fields against the org: {error.message}")
            continue
        found[system] = [{"object": plan.object_type, "fields_read": len(plan.fields),
                          "missing_required": [use.name for use in plan.missing_required],
                          "missing_optional": [use.name for use in plan.missing_optional],
                          "warnings": list(plan.warnings())} for plan in plans]
        if show:
            output.table(f"{system}: mapped fields against the org's schema", ["object", "fields read", "missing"],
                         [(item["object"], item["fields_read"],
                           ", ".join([f"{name} (required)" for name in item["missing_required"]]
                                     + [f"{name} (optional)" for name in item["missing_optional"]]) or "none")
                          for item in found[system]], numeric={"fields read"})
            for item in found[system]:
                for warning in item["warnings"]:
                    output.say(f"[yellow]warning:[/] {output.escape(warning)}")
        problems += [problem for plan in plans if (problem := plan.problem())]
    return problems


def _latest_runs(engine: Engine) -> list[SyncRun]:
    latest = (select(func.max(SyncRun.id)).group_by(SyncRun.direction, SyncRun.system, SyncRun.object_type))
    with engine.connect() as connection:
        rows = connection.execute(select(SyncRun).where(SyncRun.id.in_(latest))
                                  .order_by(SyncRun.direction, SyncRun.system, SyncRun.object_type))
        return [SyncRun.model_validate(row._mapping) for row in rows]


RUN_COUNTS = ("records_read", "inserted", "updated", "unchanged", "deleted", "quarantined", "skipped", "pushed",
              "failed", "conflicts", "api_calls")


def status_document(engine: Engine, url: str) -> dict[str, Any]:
    """What `status --json` prints: the latest run row per direction, system and object, every cursor and
    the open quarantine per reason (the `sync_run`, `sync_state` and `quarantine` tables as they are)."""
    with engine.connect() as connection:
        cursors = connection.execute(select(SyncState).order_by(SyncState.system, SyncState.object_type)).all()
        quarantine = connection.execute(
            select(Quarantine.system, Quarantine.object_type, Quarantine.reason, func.count())
            .where(Quarantine.resolved_at.is_(None))
            .group_by(Quarantine.system, Quarantine.object_type, Quarantine.reason)
            .order_by(Quarantine.system, Quarantine.object_type, Quarantine.reason)).all()
    return {
        "command": "status", "database": redact(url),
        "runs": [{"run_id": run.run_id, "flow_run_id": run.flow_run_id, "direction": run.direction,
                  "system": run.system, "object": run.object_type, "status": run.status,
                  "started_at": run.started_at, "finished_at": run.finished_at, "error": run.error,
                  **{name: getattr(run, name) for name in RUN_COUNTS}} for run in _latest_runs(engine)],
        "cursors": [{"system": row.system, "object": row.object_type, "cursor": row.cursor,
                     "updated_at": row.updated_at, "run_id": row.run_id} for row in cursors],
        "quarantine": [{"system": system, "object": object_type, "reason": reason, "records": count}
                       for system, object_type, reason, count in quarantine]}


def status(as_json: bool = JSON_OPTION) -> None:
    """Last run per system and object, persisted cursors, and open quarantine counts."""
    current = context.settings()
    engine = context.engine(current)
    document = status_document(engine, current.database_url)
    if as_json:
        output.emit_json(document)
        return
    if not document["runs"]:
        output.say("[dim]no runs yet: run `journeyhub sync`[/]")
    else:
        output.table("Last runs", ["kind", "system", "object", "status", "finished", "read", "ins", "upd", "del",
                                   "quar", "pushed", "failed", "calls", "error"],
                     [(run["direction"], run["system"], run["object"], run["status"],
                       run["finished_at"] or "running", run["records_read"], run["inserted"], run["updated"],
                       run["deleted"], run["quarantined"], run["pushed"], run["failed"], run["api_calls"],
                       (run["error"] or "")[:60] if output.live() else run["error"] or "")
                      for run in document["runs"]],
                     keys=3, numeric={"read", "ins", "upd", "del", "quar", "pushed", "failed", "calls"})
    if document["cursors"]:
        output.table("Cursors", ["system", "object", "cursor", "updated"],
                     [(row["system"], row["object"], (row["cursor"] or "")[:70], row["updated_at"])
                      for row in document["cursors"]], keys=2)
    if document["quarantine"]:
        output.table("Quarantined records (open)", ["system", "object", "reason", "records"],
                     [(row["system"], row["object"], row["reason"], row["records"]) for row in document["quarantine"]],
                     keys=2)
