"""Idle gaps and the fixed cost per object type of one CRM's sync: object types pulled one after another
(`JOURNEYHUB_OBJECT_CONCURRENCY=1`) against several at once, side by side in one run (issue 18, "no idle
gaps"; target: fixed cost per object type < 0.3 s).

    python bench/gaps.py [--system hubspot] [--people 500] [--widths 1 4] [--repeat 3] [--rate BURST/PER_S]
                         [--latency-ms 100]

On one emulator world served by a child process (vendor rate limits off; the hub's own budget lifted unless
`--rate` sets it; `--latency-ms` delays every response like a vendor's round trip), each repeat runs every
width in turn: a full sync into a fresh SQLite database, then a no-change incremental sync of it. Per width it
prints the wall and CPU seconds of this process, each object's start and end (first batch started, last batch
ended, seconds from the sync's start), and the longest time in which no request was in flight (the emulator's
request log: arrival and duration of each request, the sync's start and end included). The fixed cost per
object type is the no-change sync's wall (and CPU) time divided by its object types. The summary gives
min / median / max over the repeats.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import hub_settings

FIGURES = ("full_wall", "full_cpu", "full_gap", "nochange_wall", "nochange_gap", "fixed_wall", "fixed_cpu")


class Timeline:
    """A `pull` that notes when each object's first batch started and its last one ended."""

    def __init__(self) -> None:
        from flows.sync import pull_batch_plain

        self.inner = pull_batch_plain
        self.spans: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, settings: Any, system: str, object_type: str, **kwargs: Any) -> Any:
        started = time.time()
        try:
            return self.inner(settings, system, object_type, **kwargs)
        finally:
            ended = time.time()
            with self._lock:
                span = self.spans.setdefault(object_type, [started, ended])
                span[1] = ended


def longest_idle(log: list[dict[str, Any]], start: float, end: float) -> float:
    """The longest stretch of [start, end] in which no logged request was in flight."""
    spans = sorted((entry["at"], entry["at"] + entry["duration_ms"] / 1000) for entry in log
                   if not entry["route"].startswith("$batch:"))
    longest, busy_until = 0.0, start
    for begin, finish in spans:
        longest = max(longest, begin - busy_until)
        busy_until = max(busy_until, finish)
    return max(longest, end - busy_until)


def one_sync(sandbox: Any, settings: Any, system: str, full: bool) -> tuple[dict[str, float], Any, Timeline]:
    from flows.sync import sync_system

    sandbox.reset_request_logs()
    timeline = Timeline()
    wall, cpu = time.time(), time.process_time()
    result = sync_system(settings, system, full=full, pull=timeline)
    wall_end, cpu_end = time.time(), time.process_time()
    log = sandbox.endpoints[system].admin("GET", "requests")["log"]
    failed = result.problems()
    if failed:
        raise SystemExit(f"the sync failed: {failed}")
    return ({"wall": wall_end - wall, "cpu": cpu_end - cpu, "gap": longest_idle(log, wall, wall_end),
             "objects": len(result.objects), "records": result.totals().records_read,
             "calls": len([e for e in log if not e["route"].startswith("$batch:")]), "start": wall},
            result, timeline)


def measure(sandbox: Any, system: str, width: int, scratch: Path, rate: str | None) -> dict[str, float]:
    env = {**sandbox.env, "JOURNEYHUB_OBJECT_CONCURRENCY": str(width)}
    database = scratch / f"hub-{width}-{time.monotonic_ns()}.db"
    with hub_settings(env, database) as settings:
        if rate:
            settings = type(settings).from_env({**env, "JOURNEYHUB_DATABASE_URL": f"sqlite:///{database}",
                                                f"JOURNEYHUB_RATE_{system.upper()}": rate})
        full, _, timeline = one_sync(sandbox, settings, system, True)
        spans = ", ".join(f"{name} {begin - full['start']:.2f}–{end - full['start']:.2f}"
                          for name, (begin, end) in timeline.spans.items())
        print(f"  width {width} full: {full['records']:,} records, {full['calls']} requests, wall {full['wall']:.2f} s,"
              f" CPU {full['cpu']:.2f} s, longest idle {full['gap']:.3f} s", flush=True)
        print(f"    objects (s from start): {spans}", flush=True)
        again, _, _ = one_sync(sandbox, settings, system, False)
        print(f"  width {width} no-change: {again['objects']} object types, {again['calls']} requests, wall "
              f"{again['wall']:.2f} s, longest idle {again['gap']:.3f} s, fixed cost per object type "
              f"{again['wall'] / again['objects']:.3f} s wall, {again['cpu'] / again['objects']:.3f} s CPU",
              flush=True)
        if rate:
            from flows import sync as sync_flow

            sync_flow.close_connectors(settings)
    return {"full_wall": full["wall"], "full_cpu": full["cpu"], "full_gap": full["gap"],
            "nochange_wall": again["wall"], "nochange_gap": again["gap"],
            "fixed_wall": again["wall"] / again["objects"], "fixed_cpu": again["cpu"] / again["objects"]}


def summary(rows: dict[int, list[dict[str, float]]]) -> str:
    lines = ["| width | " + " | ".join(FIGURES) + " |", "|---|" + "---|" * len(FIGURES)]
    for width, runs in rows.items():
        cells = []
        for name in FIGURES:
            values = sorted(run[name] for run in runs)
            cells.append(f"{values[0]:.3f} / {statistics.median(values):.3f} / {values[-1]:.3f}")
        lines.append(f"| {width} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n(seconds, min / median / max; fixed_* = no-change sync ÷ object types)"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=("hubspot", "dynamics", "salesforce"), default="hubspot")
    parser.add_argument("--people", type=int, default=500)
    parser.add_argument("--widths", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rate", help="the hub's API budget for the CRM, BURST/PER_SECOND (default: lifted)")
    parser.add_argument("--latency-ms", type=int, default=0, help="added to every emulator response (a vendor's "
                        "round trip; default 0: the hub's own costs alone)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from flows.process import tune_gc
    from sandbox.runtime import Sandbox

    tune_gc()
    logging.getLogger("journeyhub.flows").setLevel(logging.ERROR)  # the run logs' per-object notes
    rows: dict[int, list[dict[str, float]]] = {width: [] for width in args.widths}
    print(f"generating and serving a world of {args.people:,} people ...", flush=True)
    with Sandbox(people=args.people, seed=args.seed, process=True, limits=False) as sandbox, \
            tempfile.TemporaryDirectory() as scratch:
        if args.latency_ms:
            from sandbox.common.faults import FaultConfig

            sandbox.set_faults(args.system, FaultConfig(latency_ms=args.latency_ms))
        for round_ in range(args.repeat):
            order = args.widths if round_ % 2 == 0 else list(reversed(args.widths))  # drift hits both alike
            for width in order:
                print(f"run {round_ + 1}, {args.system}, width {width}", flush=True)
                rows[width].append(measure(sandbox, args.system, width, Path(scratch), args.rate))
    print()
    print(summary(rows))


if __name__ == "__main__":
    main()
