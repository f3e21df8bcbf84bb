"""Canonical upserts per second on SQLite and PostgreSQL.

Measures (1) the raw batch upsert of canonical rows (`canonical.upsert.upsert`, ON CONFLICT, inserting then
updating the same rows) and (2) the whole page loader (mapping + provenance + canonical rows + associations,
one transaction per page, written as a sync writes them: `OrderedWrites`).

    python bench/upsert_rate.py --rows 100000
    python bench/upsert_rate.py --rows 100000 --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python bench/upsert_rate.py --rows 20000 --postgres URL --pg-methods unnest,copy,executemany
Both databases are measured in one run, side by side, min / median / max over `--repeats` (default 3).
Targets: ≥ 20,000 rows/s on SQLite on a 2-core machine; the PostgreSQL page loader ≥ its SQLite rate.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from harness import scratch_postgres
from sqlalchemy import Engine

from canonical import pg_bulk
from canonical.db import make_engine
from canonical.models import Interaction
from canonical.schema import upgrade
from canonical.upsert import upsert
from connectors.base import Page, RemoteRecord
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.spec import MappingSpec
from journeyhub.ingest.write_behind import OrderedWrites

START = datetime(2025, 1, 1, tzinfo=UTC)
CALLS = MappingSpec.model_validate(yaml.safe_load("""
object: calls
entity: interaction
fields:
  kind: {value: call}
  channel: {value: phone}
  direction: {from: properties.hs_call_direction, map: {INBOUND: inbound, OUTBOUND: outbound}}
  outcome: {from: properties.hs_call_status, map: {COMPLETED: completed, NO_ANSWER: no_answer}}
  occurred_at: {from: properties.hs_timestamp, transform: datetime}
  subject: properties.hs_call_title
  body: properties.hs_call_body
people:
  - {from: _associations.contacts, ref: contacts}
"""))


def interaction_rows(count: int, version: int) -> list[dict[str, object]]:
    return [{"id": f"hubspot:calls:{i}", "kind": "call", "channel": "phone", "direction": "outbound",
             "outcome": "completed", "occurred_at": START + timedelta(minutes=i), "subject": f"Call {i} v{version}",
             "body": "Discussed renewal", "score": None, "score_max": None, "owner_id": "hubspot:owners:1",
             "company_id": None, "deal_id": None, "ticket_id": None, "custom": None} for i in range(count)]


def call_records(start: int, count: int) -> list[RemoteRecord]:
    return [RemoteRecord("calls", str(i), {"id": str(i), "properties": {
        "hs_call_direction": "OUTBOUND", "hs_call_status": "COMPLETED", "hs_call_title": f"Call {i}",
        "hs_call_body": "Discussed renewal", "hs_timestamp": (START + timedelta(minutes=i)).isoformat()}},
        extra={"_associations": {"contacts": [str(i % 5000)]}}) for i in range(start, start + count)]


def measure(engine: Engine, rows: int) -> dict[str, float]:
    """Rates of one repeat on a fresh, migrated database: raw upsert (insert, update) and the page loader."""
    upgrade(engine)
    rates = {}
    for version, verb in ((1, "insert"), (2, "update")):
        batch = interaction_rows(rows, version)
        started = time.perf_counter()
        with engine.begin() as connection:
            upsert(connection, Interaction, batch)
        rates[f"raw upsert ({verb}), rows/s"] = rows / (time.perf_counter() - started)
    loader = PageLoader(engine, "hubspot", {"calls": CALLS}, run_id="bench")
    page_size = 1000
    pages = [Page("calls", call_records(start, page_size), cursor=str(start)) for start in range(0, rows, page_size)]
    started = time.perf_counter()
    with OrderedWrites(loader, None, lambda counts: None) as writes:  # as a pull writes them
        for page in pages:
            writes.write(loader.prepare(page))
    rates["page loader, records/s"] = rows / (time.perf_counter() - started)
    return rates


@contextmanager
def sqlite_database() -> Iterator[Engine]:
    with tempfile.TemporaryDirectory() as folder:
        engine = make_engine(f"sqlite:///{Path(folder) / 'bench.db'}")
        try:
            yield engine
        finally:
            engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--postgres", help="server URL; a scratch database is created and dropped per repeat")
    parser.add_argument("--pg-methods", default=pg_bulk.METHOD,
                        help="comma-separated PostgreSQL batch methods to compare: unnest, copy, executemany")
    args = parser.parse_args()
    targets = ["sqlite"] + ([f"postgresql/{m}" for m in args.pg_methods.split(",")] if args.postgres else [])
    results: dict[str, dict[str, list[float]]] = {target: {} for target in targets}
    for _ in range(args.repeats):  # interleaved, so a busy moment on the machine hits every target alike
        for target in targets:
            if target == "sqlite":
                database = sqlite_database()
            else:
                pg_bulk.METHOD = target.split("/")[1]
                database = scratch_postgres(args.postgres, "jh_bench")
            with database as engine:
                for metric, rate in measure(engine, args.rows).items():
                    results[target].setdefault(metric, []).append(rate)
    pg_bulk.METHOD = "unnest"
    print(f"{args.rows:,} rows, {args.repeats} repeats; min / median / max per second "
          "(page loader: pages of 1,000, provenance + interaction + association + cursor, one transaction each)")
    print(f"{'':32}" + "".join(f"{target:>30}" for target in targets))
    for metric in results["sqlite"]:
        cells = []
        for target in targets:
            values = sorted(results[target][metric])
            cells.append(f"{values[0]:>9,.0f} /{statistics.median(values):>8,.0f} /{values[-1]:>8,.0f}")
        print(f"{metric:32}" + "".join(f"{cell:>30}" for cell in cells))
    if args.postgres:
        sqlite_median = statistics.median(results["sqlite"]["page loader, records/s"])
        for target in targets[1:]:
            ratio = statistics.median(results[target]["page loader, records/s"]) / sqlite_median
            print(f"page loader {target} ÷ sqlite (medians): {ratio:.2f}")


if __name__ == "__main__":
    main()
