"""Sync a CRM from the emulators into a fresh SQLite database and dump its canonical tables, optionally under
cProfile — to check that a speed-up changes no canonical row (issue 18) and to see where a pull's time goes.

    python bench/canonical_dump.py --people 2000 --system hubspot [--objects email_events] \
        --out before.jsonl [--profile prof.out]

Two dumps of the same world compare with `diff` (or `cmp`). Times the sync writes (first/last seen, run ids,
updated_at) differ per run and are left out, as are generated ids (quarantine, sync_run).
"""

from __future__ import annotations

import argparse
import cProfile
import re
import sys
import tempfile
import time
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import NO_BUDGET

TABLES = ("source_record", "person_record", "company", "deal", "ticket", "interaction", "owner",
          "pipeline_stage", "association", "quarantine", "sync_state")
VOLATILE = {"first_seen_at", "last_seen_at", "updated_at", "last_run_id", "run_id", "deleted_at", "id_quarantine",
            "synced_at", "created_at_hub"}

DESCRIBED_AT = re.compile(r'"described_at":"[^"]*",?')


def dump(url: str, out: Path) -> int:
    """Every canonical row, sorted, without the columns a run stamps; returns the number of rows."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    count = 0
    with engine.connect() as connection, out.open("wb") as handle:
        for table in TABLES:
            result = connection.execute(text(f"SELECT * FROM {table}"))
            names = list(result.keys())
            lines = []
            for row in result:
                values = {name: value for name, value in zip(names, row, strict=True) if name not in VOLATILE}
                if table == "quarantine":
                    values.pop("id", None)
                if table == "sync_state" and isinstance(values.get("cursor"), str):  # a schema check's time
                    values["cursor"] = DESCRIBED_AT.sub("", values["cursor"])
                lines.append(orjson.dumps([table, values], option=orjson.OPT_SORT_KEYS, default=str))
            for line in sorted(lines):
                handle.write(line + b"\n")
            count += len(lines)
    engine.dispose()
    return count


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=2000)
    parser.add_argument("--system", default="hubspot")
    parser.add_argument("--objects", nargs="*")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--twice", action="store_true", help="sync again (idempotence: nothing new)")
    args = parser.parse_args()

    from canonical.db import make_engine
    from canonical.schema import upgrade
    from flows import sync as sync_flow
    from flows.process import tune_gc
    from journeyhub.settings import Settings
    from sandbox.runtime import Sandbox

    tune_gc()
    with Sandbox(people=args.people, seed=args.seed, process=True, limits=False) as sandbox, \
            tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{Path(scratch) / 'hub.db'}"
        upgrade(make_engine(url))
        settings = Settings.from_env({**sandbox.env, **NO_BUDGET, "JOURNEYHUB_DATABASE_URL": url})
        profiler = cProfile.Profile() if args.profile else None
        for round_ in range(2 if args.twice else 1):
            started = time.perf_counter()
            if profiler:
                profiler.enable()
            result = sync_flow.sync_system(settings, args.system, full=True, objects=args.objects)  # type: ignore[arg-type]
            if profiler:
                profiler.disable()
            seconds = time.perf_counter() - started
            for item in result.objects:
                counts = item.counts
                print(f"round {round_ + 1} {item.object_type}: {counts.records_read} read, {counts.inserted} ins, "
                      f"{counts.updated} upd, {counts.unchanged} same, {counts.quarantined} quar, "
                      f"{item.seconds:.2f}s ({counts.records_read / max(item.seconds, 1e-9):,.0f}/s)")
            print(f"round {round_ + 1}: {seconds:.2f}s")
        sync_flow.close_connectors(settings)
        if profiler:
            profiler.dump_stats(str(args.profile))
        print(f"{dump(url, args.out):,} rows -> {args.out}")


if __name__ == "__main__":
    main()
