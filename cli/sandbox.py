"""`journeyhub sandbox up|generate`: the local CRM emulators and the generated customer world."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.markup import escape

from cli import context, output, stop
from cli.context import UserError

sandbox_app = typer.Typer(help="Local HubSpot, Salesforce and Dataverse emulators with a generated world.",
                          no_args_is_help=True)


ORG_HELP = "org profile: full (every custom field the hub uses exists) or plain (a standard org without them)"
HISTORY_HELP = "seed records archived/deleted/merged before the hub's first sync (default: on for --org plain)"


def _org(value: str) -> str:
    from sandbox.common.org import ORGS

    if value not in ORGS:
        raise UserError(f"unknown org profile {value!r}; choose one of: {', '.join(ORGS)}")
    return value


@sandbox_app.command("generate")
def generate(people: int = typer.Option(2000, min=1, help="people in the world"),
             seed: int = typer.Option(7, help="same seed, same world"),
             anchor: str | None = typer.Option(None, help="the world's 'now' (default: today 00:00 UTC)"),
             out: Path = typer.Option(Path("sandbox-world"), help="folder for hubspot/salesforce/dynamics/truth.json"),
             org: str = typer.Option("full", help=ORG_HELP),
             history: bool | None = typer.Option(None, help=HISTORY_HELP),
             ) -> None:
    """Write a generated world (the three CRMs' records and the ground truth) as JSON files."""
    from sandbox.world import generate as make_world
    from sandbox.world import write_world

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    world = make_world(people, seed, context.moment("--anchor", anchor) or today,
                       org=_org(org), history=history)
    out.mkdir(parents=True, exist_ok=True)
    write_world(world, out)
    stages: dict[str, int] = {}
    for person in world.truth["persons"]:
        stages[person["stage"]] = stages.get(person["stage"], 0) + 1
    output.say(f"[green]✓[/] {people} people (seed {seed}) written to {out}/ — stages: "
               + ", ".join(f"{stage} {count}" for stage, count in sorted(stages.items())))


@sandbox_app.command("up")
def up(people: int = typer.Option(2000, min=1, help="people in the generated world"),
       seed: int = typer.Option(7, help="same seed, same world"),
       faults: str = typer.Option("none", help="fault profile: none, flaky, throttled, slow, expiring-token, chaos"),
       anchor: str | None = typer.Option(None, help="the world's 'now' (default: today 00:00 UTC)"),
       port_base: int = typer.Option(0, help="serve on PORT, PORT+1, PORT+2 (default: free ports)"),
       truth: Path | None = typer.Option(None, help="also write the ground truth to this JSON file"),
       org: str = typer.Option("full", help=ORG_HELP), history: bool | None = typer.Option(None, help=HISTORY_HELP),
       ) -> None:
    """Start the three emulators on loopback and print the variables that point Journey Hub at them."""
    from sandbox.common.faults import PROFILES
    from sandbox.runtime import Sandbox

    if faults not in PROFILES:
        raise UserError(f"unknown fault profile {faults!r}; choose one of: {', '.join(PROFILES)}")
    ports = {system: port_base + index for index, system in enumerate(("hubspot", "salesforce", "dynamics"))} \
        if port_base else None
    stop.on_stop("sandbox up", "the emulators are stopped (they keep nothing: the next `journeyhub sandbox up` "
                               "generates the same world again)")
    with Sandbox(people=people, seed=seed, anchor=context.moment("--anchor", anchor), faults=faults, ports=ports,
                 org=_org(org), history=history) as sandbox:
        if truth is not None:
            truth.write_text(json.dumps(sandbox.truth, indent=1, ensure_ascii=False), encoding="utf-8")
        output.say(f"# Journey Hub sandbox: {people} people, seed {seed}, faults {faults}, org {org}"
                   f"{' with pre-install history' if sandbox.history else ''}. Ctrl-C stops it.")
        print(sandbox.export_lines(), flush=True)
        output.say("# refreshable logins instead (token expiry tests):")
        for name, value in sandbox.login_env.items():
            if name not in sandbox.env:
                output.say(escape(f"#   export {name}={value}"))
        threading.Event().wait()  # until Ctrl-C or SIGTERM (cli.stop ends the command)
