"""`journeyhub demo`: run the whole hub on local CRM emulators and SQLite, say what it did, and hand over —
where the database is, three commands to try next against it, the truth check's verdict; `--keep` (and
`--ui`) leave the emulators up with the `export …` lines that point the other commands at them."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import typer
from rich.markup import escape
from rich.panel import Panel

from cli import demo_run as demo
from cli import output, stop
from cli.context import console, fail


def records_per_crm(result: Any) -> None:
    output.table("Records pulled per CRM", ["CRM", "status", "objects", "read", "stored", "quarantined", "API calls"],
                 [(sync.system, sync.status, len(sync.objects), totals.records_read, totals.inserted,
                   totals.quarantined, totals.api_calls) for sync in result.syncs for totals in [sync.totals()]],
                 numeric={"objects", "read", "stored", "quarantined", "API calls"})


def pushed_back(result: Any) -> None:
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
    columns = ["CRM", "records with journey fields", "mirrored timeline items", "rejected", "conflicts", "API calls"]
    output.table("Pushed back into the CRMs", columns,
                 [(system, v["fields"], v["timeline items"], v["failed"], v["conflicts"], v["calls"])
                  for system, v in sorted(rows.items())], numeric=columns[1:])


def panel(title: str, lines: list[str]) -> None:
    """A titled block: a rich panel on a terminal, a heading and plain lines elsewhere."""
    if output.live():
        console.print(Panel("\n".join(lines), title=title, title_align="left"))
        return
    output.say(f"{title}:")
    for line in lines:
        output.say(f"  {line}")


def truth_line(report: Any) -> str:
    """The truth check in one line."""
    verdict = "matches the ground truth" if report.perfect else "[red]differs from the ground truth[/]"
    return (f"truth check: {verdict} — {report.share(report.resolved):.1%} of {report.persons} people resolved to "
            f"exactly one customer, {report.share(report.stage_correct):.1%} in the expected stage "
            f"({report.share(report.entered_correct):.1%} entered at the expected time), "
            f"{report.share(report.segment_correct):.1%} in the expected segment, "
            f"{report.quarantined_found}/{report.quarantined_expected} deliberately bad records quarantined")


def broken(result: Any) -> list[str]:
    """What went wrong (the world's deliberately bad records are quarantined, which the truth check counts)."""
    return list(result.problems())


def journeyhub_command() -> str:
    """How this user runs the command (`.venv/bin/journeyhub` after the README's quick start)."""
    return sys.argv[0] if Path(sys.argv[0]).name == "journeyhub" else "journeyhub"


def next_steps(run: demo.DemoRun) -> list[str]:
    """Three commands to try next against the demo database."""
    url = f"sqlite:///{run.database}"
    _, rows = demo.query(run.database, demo.PERSON_IN_THREE_CRMS)
    person = rows[0][0] if rows else "cus_…"
    return [f"JOURNEYHUB_DATABASE_URL={url} {journeyhub_command()} explain {person}",
            f'sqlite3 {run.database} "SELECT lifecycle_stage, segment, COUNT(*) FROM customer_360 GROUP BY 1, 2"',
            f"{journeyhub_command()} demo --ui" if not run.ui_url else f"open {run.ui_url}"]


def show(run: demo.DemoRun) -> bool:
    """Prints the summary and the handover; True when the run worked and matched the ground truth."""
    from canonical.db import make_engine
    from sandbox.truthcheck import check

    result = run.result
    if result is None:
        output.say(f"[red]the hub flow ended {run.state.type.value}: {escape(str(run.state.message))}[/]")
        return False
    records_per_crm(result)
    report = check(make_engine(f"sqlite:///{run.database}"), run.truth)
    _, ((customers,),) = demo.query(run.database, "SELECT COUNT(*) FROM customer_360")
    _, ((records,),) = demo.query(run.database, "SELECT COUNT(*) FROM customer_sources")
    panel("Identity and journey", [f"{customers} customers resolved from {records} contact and lead records in "
                                   "three CRMs.", truth_line(report)])
    for problem in report.problems[:5]:
        output.say(f"[yellow]  {escape(problem)}[/]")
    pushed_back(result)
    for title, sql in demo.DEMO_QUERIES.items():
        columns, rows = demo.query(run.database, sql)
        output.say(f"\n[bold]{escape(title)}[/]\n[cyan]{escape(sql)}[/]")
        output.table("", columns, rows, keys=1 if "funnel" in title else 2)
    problems = broken(result)
    for problem in problems:
        output.say(f"[red]✗ {escape(problem)}[/]")
    quarantined = sum(sync.totals().quarantined for sync in result.syncs)
    why = f" ({quarantined} records quarantined, as the world intends)" if quarantined else ""
    panel("Where things are", [
        f"database: [bold]{run.database}[/] (SQLite; the views customer_360, unified_timeline, lifecycle_funnel, …)",
        f"hub run: {result.status}{why} in {run.seconds:.0f} s" + (f" · {run.ui_url}" if run.ui_url else ""),
        truth_line(report)])
    panel("Try next", [escape(line) for line in next_steps(run)])
    return report.perfect and not problems


def keep_running(run: demo.DemoRun, sandbox_env: dict[str, str], api_url: str | None) -> None:
    """`--keep` / `--ui`: print what points other shells at the emulators (and the UI), wait for Ctrl-C."""
    exports = [f"export {name}={value}" for name, value in sandbox_env.items()]
    exports.append(f"export JOURNEYHUB_DATABASE_URL=sqlite:///{run.database}")
    if api_url:
        exports.append(f"export PREFECT_API_URL={api_url}/api")
    lines = ["The emulators" + (" and the Prefect server" if api_url else "") + " keep running; "
             "in another shell, point the other commands at them:", *exports,
             f"then e.g. `{journeyhub_command()} sync` or `{journeyhub_command()} status`. Ctrl-C here stops them."]
    if run.ui_url:
        lines.insert(0, f"Open the run in the Prefect UI: [bold link={run.ui_url}]{run.ui_url}[/]")
    panel("Kept running", lines)
    stop.on_stop("demo", f"the emulators{' and the Prefect server' if api_url else ''} are stopped; the demo "
                         f"database stays at {run.database}")
    threading.Event().wait()  # until Ctrl-C or SIGTERM (cli.stop ends the command)


def demo_command(people: int = typer.Option(2000, min=50, help="people in the generated world"),
                 seed: int = typer.Option(7, help="same seed, same world"),
                 workdir: Path = typer.Option(Path(".journeyhub-demo"), help="folder for the demo database"),
                 ui: bool = typer.Option(False, "--ui", help="run against a local Prefect server and keep it up "
                                                            "so the run can be inspected in the Prefect UI"),
                 keep: bool = typer.Option(False, "--keep", help="leave the emulators up afterwards and print the "
                                                                "`export …` lines that point other commands at them"),
                 ) -> None:
    """Run the whole hub on local CRM emulators and SQLite (no credentials, no server), then summarise."""
    from sandbox.runtime import Sandbox

    database = demo.prepare_workdir(workdir.resolve())
    home = workdir.resolve() / "prefect"
    os.environ.pop("PREFECT_API_URL", None)
    stop.on_stop("demo", "the emulators and Prefect servers are stopped; the demo database is incomplete "
                         "(run `journeyhub demo` again)")
    started = time.perf_counter()
    step = console.status("") if output.live() else nullcontext()
    with step as status, output.run_log_lines():
        def say(line: str) -> None:
            status.update(line) if status is not None else output.say(line)

        say(f"starting three CRM emulators with {people} generated people…")
        with Sandbox(people=people, seed=seed, process=True) as sandbox:
            truth = sandbox.truth
            server = demo.prefect_server(home) if ui else nullcontext()
            if ui:
                say("starting a local Prefect server…")
            with server as api_url:
                prefect_env = demo.quiet_prefect(home) | ({"PREFECT_API_URL": f"{api_url}/api"} if api_url else {})
                say("running the hub flow: pull → resolve identities → tag lifecycle → push back…")
                state, result, flow_run_id = demo.run_hub(sandbox.env, database, prefect_env)
                link = f"{api_url}/runs/flow-run/{flow_run_id}" if api_url and flow_run_id else None
                run = demo.DemoRun(database, state, result, truth, flow_run_id, link, time.perf_counter() - started)
                if status is not None:
                    status.stop()
                ok = show(run)
                if ui or keep:
                    keep_running(run, sandbox.env, api_url)
    if not ok:
        raise fail("the demo run did not complete cleanly (see above)")
