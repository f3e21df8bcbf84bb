"""`journeyhub sync`: pull the CRMs into the canonical database — a live table on a terminal, one line per
object as it finishes elsewhere, one JSON document with `--json`; exit 1 unless every object succeeded."""

from __future__ import annotations

import time
from contextlib import nullcontext
from typing import Any

import typer
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from cli import context, output, stop
from cli.context import console, fail
from journeyhub.ingest.loader import Counts

COUNT_COLUMNS = ("read", "inserted", "updated", "unchanged", "deleted", "quarantined", "skipped", "API calls")


def count_values(counts: Counts) -> list[int]:
    return [counts.records_read, counts.inserted, counts.updated, counts.unchanged, counts.deleted,
            counts.quarantined, counts.skipped, counts.api_calls]


def sync_document(results: list[Any], full: bool) -> dict[str, Any]:
    """What `--json` prints: the run, each CRM and each object with its counts (as in `sync_run`)."""
    return {"command": "sync", "run_id": results[0].run_id if results else None,
            "mode": "full" if full else "incremental", "status": overall(results),
            "systems": [{"system": result.system, "status": result.status, "error": result.error,
                         "totals": result.totals().as_dict(), "warnings": list(result.warnings),
                         "objects": [{"object": item.object_type, "status": item.status, "error": item.error,
                                      "seconds": round(item.seconds, 3), **item.counts.as_dict()}
                                     for item in result.objects]}
                        for result in results]}


def overall(results: list[Any]) -> str:
    statuses = {result.status for result in results}
    return "succeeded" if statuses <= {"succeeded"} else "failed" if statuses == {"failed"} else "partial"


class LiveRows:
    """The terminal's live table: per CRM, the object being pulled, its counts so far and rate (the objects
    that finished are printed above it as lines)."""

    def __init__(self) -> None:
        self.rows: dict[str, tuple[str, Counts, float]] = {}
        self.updated: dict[str, float] = {}
        self.started = time.monotonic()
        self.live: Live | None = None

    def render(self) -> Table:
        grid = Table(title=f"Pulling… {time.monotonic() - self.started:.0f} s")
        for column in ("system", "object", *COUNT_COLUMNS[:2], "records/s"):
            grid.add_column(column, justify="left" if column in {"system", "object"} else "right")
        for system, (object_type, counts, since) in self.rows.items():
            rate = counts.records_read / max(time.monotonic() - since, 1e-6)
            grid.add_row(system, object_type, str(counts.records_read), str(counts.inserted), f"{rate:,.0f}")
        return grid

    def __call__(self, system: str, object_type: str, counts: Counts) -> None:
        now, current = time.monotonic(), self.rows.get(system)
        # a CRM's objects are pulled one after another: the next one started when the last batch before it ended
        since = current[2] if current and current[0] == object_type else self.updated.get(system, self.started)
        self.rows[system] = (object_type, Counts().add(counts), since)
        self.updated[system] = now
        if self.live is not None:
            self.live.update(self.render())


def print_results(results: list[Any], full: bool) -> None:
    title = f"Sync {'(full)' if full else '(incremental)'} — run {results[0].run_id}: {overall(results)}"
    if output.live():
        output.table(title, ["system", "object", "status", *COUNT_COLUMNS, "error"],
                     [(result.system, item.object_type, item.status, *count_values(item.counts),
                       (item.error or "")[:80]) for result in results for item in result.objects],
                     keys=2, numeric=COUNT_COLUMNS)
    else:  # the objects were printed as they finished: one line per CRM
        output.table(title, ["system", "status", "objects", *COUNT_COLUMNS],
                     [(result.system, result.status, len(result.objects), *count_values(result.totals()))
                      for result in results], keys=1)
    for result in results:
        if result.error:
            output.say(f"[red]✗ {output.escape(result.system)}: {output.escape(result.error)}[/]")


def sync(system: list[str] = typer.Option(None, "--system", help="hubspot, salesforce or dynamics (repeatable; "
                                                                 "default: every configured CRM)"),
         full: bool = typer.Option(False, "--full", help="re-read everything instead of changes since the cursor"),
         as_json: bool = typer.Option(False, "--json", help="print one JSON document (see README) instead"),
         ) -> None:
    """Pull contacts, companies, deals, tickets and activities from the CRMs, incrementally."""
    from flows.runtime import ProgressLog, run_log
    from flows.sync import run_sync

    settings = context.checked_settings()
    context.engine(settings)
    systems = context.chosen_systems(settings, system)
    stop.on_stop("sync", "the cursors of the committed pages are kept; the next `journeyhub sync` continues "
                         "from there")
    live_rows = LiveRows()
    logged = ProgressLog(run_log, every=10.0 if output.live() and not as_json else 5.0)

    def progress(system_name: str, object_type: str, counts: Counts) -> None:
        live_rows(system_name, object_type, counts)
        logged(system_name, object_type, counts)

    terminal = output.live() and not as_json
    display = Live(live_rows.render(), console=console, refresh_per_second=4, transient=True) if terminal \
        else nullcontext()
    with output.run_log_lines(to_stderr=as_json), display as live:
        live_rows.live = live
        results = run_sync(settings, systems, full=full, progress=progress)  # type: ignore[arg-type]
    if as_json:
        output.emit_json(sync_document(results, full))
    else:
        print_results(results, full)
    for warning in (warning for result in results for warning in result.warnings):  # fields the org lacks
        output.note(f"[yellow]warning:[/] {escape(warning)}")
    for note in (note for result in results for note in result.quarantine_notes()):  # bad data, not a failure
        output.note(f"[yellow]note:[/] {escape(note)} (reasons: `journeyhub status`)")
    problems = [line for result in results for line in result.problems()]
    if problems:
        more = f"; and {len(problems) - 5} more" if len(problems) > 5 else ""
        raise fail(f"not every object succeeded: {'; '.join(problems[:5])}{more}")
