"""`journeyhub demo`: run the whole hub on local CRM emulators and SQLite, then show what it did."""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import typer
from rich.panel import Panel
from rich.table import Table

from cli import demo_run as demo
from cli.context import console, fail


def _table(title: str, columns: list[str], rows: list[tuple[Any, ...]]) -> Table:
    table = Table(title=title, title_justify="left")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*("" if value is None else str(value) for value in row))
    return table


def records_per_crm(result: Any) -> Table:
    rows = []
    for sync in result.syncs:
        totals = sync.totals()
        rows.append((sync.system, sync.status, len(sync.objects), totals.records_read, totals.inserted,
                     totals.quarantined, totals.api_calls))
    return _table("Records pulled per CRM", ["CRM", "status", "objects", "read", "stored", "quarantined",
                                            "API calls"], rows)


def pushed_back(result: Any) -> Table:
    rows: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for report in result.pushes:
        for (system, object_type, action), count in report.plan.actions.items():
            key = "fields" if object_type in {"contacts", "Contact", "Lead", "leads"} else "timeline items"
            if action != "unchanged":
                rows[system][key] += count
        if report.outcome:
            for (system, _), outcome in report.outcome.objects.items():
                rows[system]["failed"] += outcome.failed
                rows[system]["conflicts"] += outcome.conflicts
            for system, calls in report.outcome.api_calls.items():
                rows[system]["calls"] += calls
    return _table("Pushed back into the CRMs", ["CRM", "records with journey fields", "mirrored timeline items",
                                               "rejected", "conflicts", "API calls"],
                  [(system, v["fields"], v["timeline items"], v["failed"], v["conflicts"], v["calls"])
                   for system, v in sorted(rows.items())])


def show(run: demo.DemoRun) -> bool:
    """Prints the summary; True when everything worked and matched the ground truth."""
    from sandbox.truthcheck import check

    result = run.result
    if result is None:
        console.print(f"[red]the hub flow ended {run.state.type.value}: {run.state.message}[/]")
        return False
    console.print(records_per_crm(result))
    engine_url = f"sqlite:///{run.database}"
    from canonical.db import make_engine

    report = check(make_engine(engine_url), run.truth)
    _, (customers,) = demo.query(run.database, "SELECT COUNT(*) FROM customer_360")
    _, (records,) = demo.query(run.database, "SELECT COUNT(*) FROM customer_sources")
    console.print(Panel(
        f"[bold]{customers[0]}[/] customers resolved from [bold]{records[0]}[/] contact and lead records in three "
        f"CRMs.\nAgainst the generated world's ground truth: {report.share(report.resolved):.1%} of people resolved "
        f"to exactly one customer, {report.share(report.stage_correct):.1%} in the expected stage "
        f"({report.share(report.entered_correct):.1%} entered at the expected time), "
        f"{report.share(report.segment_correct):.1%} in the expected segment; "
        f"{report.quarantined_found}/{report.quarantined_expected} deliberately bad records quarantined.",
        title="Identity and journey"))
    for problem in report.problems[:5]:
        console.print(f"[yellow]  {problem}[/]")
    columns, rows = demo.query(run.database, list(demo.DEMO_QUERIES.values())[1])
    console.print(_table("Lifecycle funnel", columns, rows))
    console.print(pushed_back(result))
    console.print(Panel(f"Database: [bold]{run.database}[/] (SQLite; open it with any SQL tool).\n"
                        f"Run: {result.status} in {run.seconds:.0f} s" + (f" · {run.ui_url}" if run.ui_url else ""),
                        title="Where things are"))
    for title, sql in demo.DEMO_QUERIES.items():
        columns, rows = demo.query(run.database, sql)
        console.print(f"\n[bold]{title}[/]\n[cyan]{sql}[/]", highlight=False)
        console.print(_table("", columns, rows))
    problems = result.problems()
    for problem in problems:
        console.print(f"[red]✗ {problem}[/]")
    return result.status == "succeeded" and report.perfect


def demo_command(people: int = typer.Option(2000, min=50, help="people in the generated world"),
                 seed: int = typer.Option(7, help="same seed, same world"),
                 workdir: Path = typer.Option(Path(".journeyhub-demo"), help="folder for the demo database"),
                 ui: bool = typer.Option(False, "--ui", help="run against a local Prefect server and keep it up "
                                                            "so the run can be inspected in the Prefect UI"),
                 ) -> None:
    """Run the whole hub on local CRM emulators and SQLite (no credentials, no server), then summarise."""
    from sandbox.runtime import Sandbox

    database = demo.prepare_workdir(workdir.resolve())
    home = workdir.resolve() / "prefect"
    for name in ("PREFECT_API_URL",):
        os.environ.pop(name, None)
    started = time.perf_counter()
    with console.status(f"Starting three CRM emulators with {people} generated people…") as status, \
            Sandbox(people=people, seed=seed, process=True) as sandbox:
        truth = sandbox.truth
        server = demo.prefect_server(home) if ui else None
        api_url = server.__enter__() if server is not None else None
        try:
            prefect_env = demo.quiet_prefect(home) | ({"PREFECT_API_URL": f"{api_url}/api"} if api_url else {})
            status.update("Running the hub flow: pull → resolve identities → tag lifecycle → push back…")
            state, result, flow_run_id = demo.run_hub(sandbox.env, database, prefect_env)
            link = f"{api_url}/runs/flow-run/{flow_run_id}" if api_url and flow_run_id else None
            run = demo.DemoRun(database, state, result, truth, flow_run_id, link, time.perf_counter() - started)
            status.stop()
            ok = show(run)
            if ui and link:
                console.print(Panel(f"Open the run in the Prefect UI: [bold link={link}]{link}[/]\n"
                                    "The emulators and the Prefect server keep running; press Ctrl-C to stop.",
                                    title="Prefect UI"))
                try:
                    while True:
                        time.sleep(1)
                except KeyboardInterrupt:
                    pass
        finally:
            if server is not None:
                server.__exit__(None, None, None)
    if not ok:
        raise fail("the demo run did not complete cleanly (see above)")
