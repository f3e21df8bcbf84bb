"""`journeyhub sync`: pull the CRMs into the canonical database, with live progress and a final table."""

from __future__ import annotations

import typer
from rich.live import Live
from rich.table import Table

from cli import context
from cli.context import UserError, console, fail
from journeyhub.ingest.loader import Counts


def counts_table(title: str, rows: list[tuple[str, str, str, Counts, str]]) -> Table:
    table = Table(title=title)
    for column in ("system", "object", "status", "read", "inserted", "updated", "unchanged", "deleted",
                   "quarantined", "skipped", "API calls", "error"):
        table.add_column(column, justify="right" if column not in {"system", "object", "status", "error"}
                         else "left", overflow="fold")
    for system, object_type, status, counts, error in rows:
        colour = {"succeeded": "green", "partial": "yellow", "failed": "red"}.get(status, "cyan")
        table.add_row(system, object_type, f"[{colour}]{status}[/]", *(str(value) for value in (
            counts.records_read, counts.inserted, counts.updated, counts.unchanged, counts.deleted,
            counts.quarantined, counts.skipped, counts.api_calls)), error[:80])
    return table


def sync(system: list[str] = typer.Option(None, "--system", help="hubspot, salesforce or dynamics (repeatable; "
                                                                 "default: every configured CRM)"),
         full: bool = typer.Option(False, "--full", help="re-read everything instead of changes since the cursor")
         ) -> None:
    """Pull contacts, companies, deals, tickets and activities from the CRMs, incrementally."""
    from flows.sync import run_sync

    settings = context.settings()
    context.engine(settings)
    for problem in settings.problems():
        raise UserError(problem)
    systems = context.chosen_systems(settings, system)
    live_rows: dict[tuple[str, str], Counts] = {}

    def render() -> Table:
        return counts_table("Pulling…", [(s, o, "running", c, "") for (s, o), c in live_rows.items()])

    with Live(render(), console=console, refresh_per_second=4, transient=True) as live:
        def progress(system_name: str, object_type: str, counts: Counts) -> None:
            live_rows[(system_name, object_type)] = counts
            live.update(render())

        results = run_sync(settings, systems, full=full, progress=progress)  # type: ignore[arg-type]
    rows = [(result.system, item.object_type, item.status, item.counts, item.error or "")
            for result in results for item in result.objects]
    console.print(counts_table(f"Sync {'(full)' if full else '(incremental)'} — run {results[0].run_id}", rows))
    for warning in (warning for result in results for warning in result.warnings):  # fields the org lacks
        console.print(f"[yellow]⚠ {warning}[/]", highlight=False, soft_wrap=True)
    failed = [result for result in results if result.status != "succeeded"]
    for result in failed:
        if result.error:
            console.print(f"[red]✗ {result.system}: {result.error}[/]")
    if any(result.status == "failed" or result.error for result in failed):
        raise fail("the sync did not complete for every CRM (see above)")
