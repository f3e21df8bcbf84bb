"""HubSpot email events per second through what a pull does after reading a page (issue 18: ≥ 20,000/s).

    python bench/events_rate.py --events 20000 [--postgres URL] [--repeats 3] [--compare OLD_CHECKOUT]
    python bench/events_rate.py --postgres URL --explain   # where the server spends one page's time

Builds `--events` legacy email events in the emulator's shape (SENT, DELIVERED, OPEN, CLICK, BOUNCE, … with
`sentBy`, `url`, `category`), 1,000 a page, and times, per page:

* worker: `Preparer.parts` (mapping, validation, payload hashes) and pickling the parts, as the mapping
  worker process does (all pages first);
* writer: unpickling them, `PageLoader.assemble` and writing each page (one transaction per page) through
  `OrderedWrites`, as the sync process does — into a fresh database, then again for the same pages (a
  re-read: nothing written).

CPU time (`time.process_time`) is the steady figure on a shared host; the writer's wall time also counts
the database server (PostgreSQL). End to end is the events over worker + writer time (the two run in
separate processes in a pull, so a pipelined pull can do better, up to the slower side). `--compare` runs
the same measurement with another checkout's code (e.g. `git archive main | tar -x -C DIR`), alternating
with this one, so before and after share one load.
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import scratch_postgres

HERE = Path(__file__).resolve().parent
PAGE = 1000
TYPES = ("SENT", "DELIVERED", "OPEN", "CLICK", "BOUNCE", "PROCESSED", "DEFERRED", "DROPPED")
WEIGHTS = (30, 28, 20, 8, 3, 5, 3, 3)
WRITE_BEHIND = True  # `--explain` looks at one page's statements alone


def events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Email events shaped as the emulator serves them (sandbox/world/render_hubspot.py)."""
    rng = random.Random(seed)
    start = 1_700_000_000_000
    found = []
    for number in range(count):
        kind = rng.choices(TYPES, WEIGHTS)[0]
        campaign = 100 + rng.randrange(40)
        person = rng.randrange(max(count // 25, 1))
        h = f"{rng.getrandbits(128):032x}"
        event: dict[str, Any] = {
            "id": f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}", "created": start + number * 997,
            "type": kind, "recipient": f"person{person}@example{person % 7}.co.il", "portalId": 62515,
            "appId": 113, "emailCampaignId": campaign,
        }
        if kind != "SENT":
            event["sentBy"] = {"id": f"{h[:8]}-sent", "created": start + number * 997 - 5000}
        if kind == "CLICK":
            event["url"] = f"https://www.journeyhub-demo.co.il/offers/{campaign}"
        elif kind == "BOUNCE":
            event["category"] = "HARD_BOUNCE" if rng.random() < 0.7 else "MAILBOX_FULL"
        elif kind == "DELIVERED":
            event["response"] = "250 2.0.0 OK"
        found.append(event)
    return found


@contextmanager
def database(postgres: str | None) -> Iterator[Any]:
    """A fresh, migrated database: SQLite in a scratch folder, or a scratch database on the server."""
    from canonical.db import make_engine
    from canonical.schema import upgrade

    if postgres is None:
        with tempfile.TemporaryDirectory() as folder:
            engine = make_engine(f"sqlite:///{Path(folder) / 'events.db'}")
            upgrade(engine)
            try:
                yield engine
            finally:
                engine.dispose()
        return
    with scratch_postgres(postgres, "jh_events") as engine:
        upgrade(engine)
        yield engine


def measure(count: int, postgres: str | None) -> dict[str, float]:
    """µs of CPU per event for each side (and the writer's wall time), first write and re-read."""
    from connectors.base import Page
    from connectors.hubspot.records import event_record
    from journeyhub.config import load_mappings
    from journeyhub.ingest.loader import PageLoader, Preparer

    mappings = {"email_events": load_mappings(HERE.parent / "mappings", "hubspot")["email_events"]}
    raw = events(count)
    pages = [Page("email_events", [event_record(event) for event in raw[start:start + PAGE]], f"c{start}", 1)
             for start in range(0, count, PAGE)]
    preparer = Preparer("hubspot", mappings, None)
    result: dict[str, float] = {}
    with database(postgres) as engine:
        loader = PageLoader(engine, "hubspot", mappings, "bench-run")
        for round_ in ("write", "reread"):
            started = time.process_time()
            blobs = [pickle.dumps(preparer.parts("email_events", page.records), protocol=pickle.HIGHEST_PROTOCOL)
                     for page in pages]
            worker = time.process_time() - started
            done: list[Any] = []
            started, clock = time.process_time(), time.perf_counter()
            with ordered_writes(loader, done.append) as writes:
                for page, blob in zip(pages, blobs, strict=True):
                    writes.write(loader.assemble(page, pickle.loads(blob)))
            wall, writer = time.perf_counter() - clock, time.process_time() - started
            result[f"{round_} worker µs"] = worker / count * 1e6
            result[f"{round_} writer µs"] = writer / count * 1e6
            result[f"{round_} writer wall µs"] = wall / count * 1e6
            result[f"{round_} written"] = sum(counts.inserted + counts.updated for counts in done)
    return result


def ordered_writes(loader: Any, on_written: Any) -> Any:
    """The pages written as a pull writes them (`OrderedWrites`: on PostgreSQL the next page is staged while
    one is written); a checkout from before it, and `--explain`, write one page after the other."""
    try:
        from journeyhub.ingest.write_behind import OrderedWrites
    except ImportError:  # the old code
        pass
    else:
        if WRITE_BEHIND:
            return OrderedWrites(loader, None, on_written)

    class OneAfterAnother:
        def write(self, prepared: Any) -> None:
            on_written(loader.write(prepared))

        def __enter__(self) -> Any:
            return self

        def __exit__(self, *error: Any) -> None: ...

    return OneAfterAnother()


SUMMARY = ("Insert on", "Delete on", "Update on", "Conflict", "Tuples", "Buffers", "WAL", "Planning Time",
           "Execution Time")


def explain(postgres: str, count: int = 3000) -> None:
    """`EXPLAIN (ANALYZE, BUFFERS, WAL)` of each statement the writer sends for one page on PostgreSQL (the
    second page: the first also pays the connection's catalog warm-up), each run in a savepoint rolled back
    before the statement itself runs, so the page is written as usual. Statements reach the server through
    psycopg's cursor, whichever layer built them: that is where this looks."""
    import psycopg

    execute = psycopg.Cursor.execute
    pages = {"n": 0}

    def explained(cursor: Any, query: Any, params: Any = None, *args: Any, **kwargs: Any) -> Any:
        sql = query if isinstance(query, str) else str(query)
        if pages["n"] == 2 and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "SELECT")):
            cursor.connection.execute("SAVEPOINT explain_page")
            plan = [row[0] for row in execute(cursor, "EXPLAIN (ANALYZE, BUFFERS, WAL) " + sql, params).fetchall()]
            cursor.connection.execute("ROLLBACK TO SAVEPOINT explain_page")
            print("==", " ".join(sql.split())[:100])
            print("\n".join(f"   {line.strip()[:110]}" for line in plan if line.strip().startswith(SUMMARY)))
        return execute(cursor, query, params, *args, **kwargs)

    from journeyhub.ingest.loader import PageLoader

    write = PageLoader.write

    def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        pages["n"] += 1
        return write(self, *args, **kwargs)

    global WRITE_BEHIND
    WRITE_BEHIND = False
    psycopg.Cursor.execute = explained  # type: ignore[method-assign]
    PageLoader.write = counted  # type: ignore[method-assign]
    measure(count, postgres)


def run(checkout: Path | None, count: int, postgres: str | None) -> dict[str, float]:
    """One measurement in a fresh process, with `checkout`'s code (None: this one's)."""
    root = checkout or HERE.parent
    env = {**os.environ, "PYTHONPATH": str(root)}
    command = [sys.executable, str(HERE / "events_rate.py"), "--child", "--events", str(count)]
    if postgres:
        command += ["--postgres", postgres]
    output = subprocess.run(command, env=env, cwd=root, check=True, capture_output=True, text=True).stdout
    return json.loads(output.strip().splitlines()[-1])


def report(label: str, runs: list[dict[str, float]]) -> None:
    def spread(key: str) -> str:
        values = sorted(item[key] for item in runs)
        return " / ".join(f"{value:,.1f}" for value in (values[0], statistics.median(values), values[-1]))

    def rate(keys: tuple[str, ...]) -> str:
        values = sorted(1e6 / sum(item[key] for key in keys) for item in runs)
        return " / ".join(f"{value:,.0f}" for value in (values[0], statistics.median(values), values[-1]))

    print(f"{label} (min / median / max of {len(runs)}):")
    for round_ in ("write", "reread"):
        print(f"  {round_:6}: worker {spread(f'{round_} worker µs')} µs CPU/event ({rate((f'{round_} worker µs',))}/s)"
              f"; writer {spread(f'{round_} writer µs')} µs CPU ({rate((f'{round_} writer µs',))}/s), wall "
              f"{spread(f'{round_} writer wall µs')} µs ({rate((f'{round_} writer wall µs',))}/s); end to end "
              f"{rate((f'{round_} worker µs', f'{round_} writer wall µs'))} events/s; "
              f"{int(runs[0][f'{round_} written'])} written")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--postgres", help="server URL: also measure PostgreSQL (a scratch database per run)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare", type=Path, help="a checkout of the old code, measured alternately")
    parser.add_argument("--explain", action="store_true", help="with --postgres: EXPLAIN one page's statements")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.explain:
        if not args.postgres:
            parser.error("--explain needs --postgres")
        explain(args.postgres)
        return
    if args.child:
        sys.path.insert(0, str(Path.cwd()))
        from flows.process import tune_gc

        tune_gc()
        print(json.dumps(measure(args.events, args.postgres)))
        return
    for target in [None] + ([args.postgres] if args.postgres else []):
        name = "postgresql" if target else "sqlite"
        versions = ([("before", args.compare.resolve())] if args.compare else []) + [("after", None)]
        runs: dict[str, list[dict[str, float]]] = {label: [] for label, _ in versions}
        for _ in range(args.repeats):
            for label, checkout in versions:
                runs[label].append(run(checkout, args.events, target))
        for label, _ in versions:
            report(f"{name} {label}, {args.events:,} events", runs[label])


if __name__ == "__main__":
    main()
