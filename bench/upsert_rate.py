"""Canonical upserts per second on SQLite and PostgreSQL.

Measures (1) the raw batch upsert of canonical rows (`canonical.upsert.upsert`, ON CONFLICT, inserting then
updating the same rows) and (2) the whole page loader (mapping + provenance + canonical rows + associations,
one transaction per page, as a sync stores data).

    python bench/upsert_rate.py --rows 200000
    python bench/upsert_rate.py --rows 200000 --postgres postgresql://postgres@127.0.0.1:5432/postgres
Target: ≥ 20,000 rows/s on SQLite on a 2-core machine.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml
from sqlalchemy import Engine, text

from canonical.db import make_engine
from canonical.models import Interaction
from canonical.schema import upgrade
from canonical.upsert import upsert
from connectors.base import Page, RemoteRecord
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.spec import MappingSpec

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


def measure(engine: Engine, rows: int, label: str) -> None:
    upgrade(engine)
    for version, verb in ((1, "insert"), (2, "update")):
        batch = interaction_rows(rows, version)
        started = time.perf_counter()
        with engine.begin() as connection:
            upsert(connection, Interaction, batch)
        elapsed = time.perf_counter() - started
        print(f"{label:10} raw upsert ({verb}) {rows:>8,} rows  {rows / elapsed:>10,.0f} rows/s")
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM interaction"))
    loader = PageLoader(engine, "hubspot", {"calls": CALLS}, run_id="bench")
    page_size = 1000
    started = time.perf_counter()
    for start in range(0, rows, page_size):
        loader.store(Page("calls", call_records(start, page_size), cursor=str(start)))
    elapsed = time.perf_counter() - started
    print(f"{label:10} page loader         {rows:>8,} recs  {rows / elapsed:>10,.0f} records/s "
          f"(pages of {page_size}: provenance + interaction + association + cursor, one transaction each)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--postgres", help="server URL; a scratch database is created and dropped")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        measure(make_engine(f"sqlite:///{Path(folder) / 'bench.db'}"), args.rows, "sqlite")
    if args.postgres:
        admin = make_engine(args.postgres, isolation_level="AUTOCOMMIT")
        name = f"jh_bench_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        engine = make_engine(str(admin.url.set(database=name).render_as_string(hide_password=False)))
        try:
            measure(engine, args.rows, "postgresql")
        finally:
            engine.dispose()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))


if __name__ == "__main__":
    main()
