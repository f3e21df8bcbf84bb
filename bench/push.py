"""Write-back: API calls per 1,000 records written to each CRM, and what a second push costs.

    python bench/push.py [--people 5000]

Pulls a generated world from the three emulators into a fresh SQLite database, tags it, pushes the unified
view back (journey fields and mirrored timeline items), then pushes again with nothing changed. Calls are
counted by the emulators' request logs — every request the push made, reads (current values, field checks)
included — and records are what the push reports as written.

Targets (issue 6): ≤ 11 calls per 1,000 records written to HubSpot, ≤ 6 to Salesforce, ≤ 2 to Dataverse; the
second push writes nothing.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

from harness import http_calls, hub_settings

SYSTEMS = ("hubspot", "salesforce", "dynamics")
TARGET = {"hubspot": 11.0, "salesforce": 6.0, "dynamics": 2.0}
WRITE_METHODS = ("POST", "PATCH", "PUT", "DELETE")


def written(report: object, system: str) -> int:
    outcome = report.outcome  # type: ignore[attr-defined]
    return sum(item.pushed for (name, _), item in outcome.objects.items() if name == system) if outcome else 0


def write_calls(counts: dict[str, int]) -> int:
    """Requests that change data (the emulators key their counts by `METHOD route`); searches and batch
    reads are POSTs that read, so they are excluded by route."""
    reading = ("/search", "/batch/read", "/query", "$batch-read")
    return sum(count for route, count in counts.items() if route.split(" ", 1)[0] in WRITE_METHODS
               and not route.startswith("$batch:") and not any(part in route for part in reading))


def main(people: int, seed: int = 7) -> None:
    from flows import sync as sync_flow
    from flows.runtime import hub_context
    from journeyhub.journey.tagger import Tagger
    from journeyhub.runs import new_run_id
    from journeyhub.writeback.push import push
    from sandbox.runtime import Sandbox

    print(f"generating and serving a world of {people} people ...", flush=True)
    with Sandbox(people=people, seed=seed, process=True, limits=False) as sandbox, \
            tempfile.TemporaryDirectory() as scratch, hub_settings(sandbox.env, Path(scratch) / "hub.db") as settings:
        for system in SYSTEMS:
            sync_flow.sync_system(settings, system)  # type: ignore[arg-type]
        context = hub_context(settings)
        Tagger(context.engine, context.lifecycle, context.identity).run(datetime.now(UTC))
        connectors = {system: sync_flow.connector_for(system, settings) for system in SYSTEMS}  # type: ignore[arg-type]
        for attempt in ("first push", "second push (nothing changed)"):
            sandbox.reset_request_logs()
            started = time.perf_counter()
            report = push(context.engine, context.writeback, list(SYSTEMS), run_id=new_run_id(),
                          connectors=connectors)  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            print(f"{attempt}: {seconds:.1f} s" + (f"; errors: {report.errors}" if report.errors else ""))
            for system in SYSTEMS:
                counts: Counter[str] = Counter(sandbox.request_counts(system))
                calls, writes, records = http_calls(counts), write_calls(counts), written(report, system)
                line = f"  {system:10} {records:>7,} records written, {calls:>4} calls ({writes} writing)"
                if records:
                    rate = 1000 * calls / records
                    verdict = "OK" if rate <= TARGET[system] else "OVER TARGET"
                    line += f" = {rate:.2f} per 1,000 (target ≤ {TARGET[system]:g}: {verdict})"
                print(line)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=5000)
    args = parser.parse_args()
    main(args.people)
