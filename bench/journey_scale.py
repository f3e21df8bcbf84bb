"""Identity resolution + lifecycle tagging at scale: 200,000 customers and 1,000,000 interactions.

Builds a synthetic canonical database (people in one to three CRMs with case/format variants of the same
email and phone, deals, tickets, interactions linked to them), then times a full `Tagger.run` (resolve
identities → customer links → stages with history → segments) and a second, incremental run with nothing
changed; reports peak memory.

    python bench/journey_scale.py                      # SQLite, 200k people / 1M interactions
    python bench/journey_scale.py --postgres postgresql://postgres@127.0.0.1:5432/postgres
    python bench/journey_scale.py --profile /tmp/journey.prof   # cProfile of this process's full run
    python bench/journey_scale.py --customers 1000000 --runs 3  # scale; min/median/max of 3 runs on one data set
    python bench/journey_scale.py --compare --postgres URL --customers 200000 --runs 3  # both, side by side
`--compare` runs SQLite and then PostgreSQL on the same generated data and checks that both passes reach the same
outcome (every record's customer and match, every customer's golden record, journey columns and segment, every
stage-history row: a digest of each, compared), then prints the PostgreSQL ÷ SQLite ratio of the median full runs.
Target: under 60 s on SQLite on a 2-core machine. Each timing is also given in CPU seconds (this process and its
rule-evaluation workers), steadier than wall time on a shared machine.
"""

from __future__ import annotations

import argparse
import cProfile
import functools
import hashlib
import json
import multiprocessing
import random
import resource
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from harness import scratch_postgres
from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from canonical.db import make_engine, transaction
from canonical.models import Association, Deal, Interaction, PersonRecord, SourceRecord, Ticket
from canonical.schema import upgrade
from canonical.upsert import chunks, upsert
from journeyhub.config import load_config_file, mappings_root
from journeyhub.journey import links
from journeyhub.journey.clustering import collate
from journeyhub.journey.dbio import stream_rows, write_insert
from journeyhub.journey.facts import moment
from journeyhub.journey.identity import IdentityResolver
from journeyhub.journey.keys import email_key, keys_fingerprint, phone_key
from journeyhub.journey.tagger import Tagger

AS_OF = datetime(2026, 11, 1, tzinfo=UTC)
START = AS_OF - timedelta(days=730)
KINDS = [("marketing_email", "email", "outbound", "sent"), ("marketing_email", "email", "inbound", "opened"),
         ("marketing_email", "email", "inbound", "clicked"), ("call", "phone", "outbound", "completed"),
         ("call", "phone", "inbound", "no_answer"), ("meeting", "meeting", None, "completed"),
         ("email", "email", "inbound", None), ("note", "other", None, None),
         ("form_submission", "web", "inbound", None), ("survey_response", "web", "inbound", None)]


def when(rng: random.Random) -> datetime:
    return START + timedelta(seconds=rng.randrange(730 * 86400))


def write(connection: Connection, model: Any, rows: list[dict[str, Any]]) -> None:
    """Setup rows as the page loader would store them: `upsert` on SQLite; on PostgreSQL, whose upsert path is
    another helper's subject and made the setup of a 200k run take ~20 minutes, one COPY per table (fresh tables:
    nothing to conflict with), the columns' defaults filled as the models declare them."""
    if connection.dialect.name != "postgresql" or not rows:
        upsert(connection, model, rows)
        return
    table = model.__table__
    defaults = {column.name: column.default.arg for column in table.columns
                if column.name not in rows[0] and column.default is not None and column.default.is_scalar}
    now = {column.name for column in table.columns if column.name not in rows[0] and column.default is not None
           and column.default.is_callable}
    stamp = datetime.now(UTC)
    columns = [*rows[0], *defaults, *now]
    write_insert(connection, table.name, columns, [(*row.values(), *defaults.values(), *[stamp] * len(now))
                                                    for row in rows])


def build(engine: Engine, people: int, interactions: int, seed: int = 1) -> dict[str, int]:
    """The synthetic canonical data, written in batches as the page loader writes it (match keys included:
    the loader computes them as records arrive). Setup; not part of the timing."""
    rng = random.Random(seed)
    identity = load_config_file(mappings_root(), "identity.yaml")
    fingerprint = keys_fingerprint(identity)
    counts = {"person_records": 0, "interactions": 0, "deals": 0, "tickets": 0}
    records: list[str] = []
    for block in chunks(range(people), 20_000):
        sources, persons = [], []
        for person in block:
            email = f"person{person}@example.com"
            phone = f"05{person % 10}-{person:07d}"[:11]
            for system, object_type, variant in (("hubspot", "contacts", email),
                                                 ("salesforce", "Contact", email.upper()),
                                                 ("dynamics", "contacts", f" {email} ")):
                if system != "hubspot" and rng.random() > (0.3 if system == "salesforce" else 0.15):
                    continue
                key = f"{system}:{object_type}:{person}"
                created = when(rng)
                sources.append({"id": key, "system": system, "object_type": object_type, "remote_id": str(person),
                                "entity": "person", "remote_created_at": created, "remote_updated_at": created,
                                "first_seen_at": created, "last_seen_at": created, "is_deleted": False})
                written = phone if system == "dynamics" else None
                persons.append({"id": key, "kind": "contact", "email": variant, "phone": written, "first_name": "Dana",
                                "last_name": f"Cohen {person}", "full_name": f"Dana Cohen {person}",
                                "email_key": email_key(variant, identity), "phone_key": phone_key(written, identity),
                                "keys_version": fingerprint})
                records.append(key)
        with transaction(engine) as connection:
            write(connection, SourceRecord, sources)
            write(connection, PersonRecord, persons)
        counts["person_records"] += len(persons)
    for block in chunks(range(interactions), 50_000):
        rows, links = [], []
        for index in block:
            kind, channel, direction, outcome = KINDS[index % len(KINDS)]
            key = f"hubspot:calls:{index}"
            rows.append({"id": key, "kind": kind, "channel": channel, "direction": direction, "outcome": outcome,
                         "occurred_at": when(rng), "subject": None, "body": None,
                         "score": 9.0 if kind == "survey_response" and index % 3 == 0 else None,
                         "score_max": 10.0 if kind == "survey_response" else None, "owner_id": None,
                         "company_id": None, "deal_id": None, "ticket_id": None, "custom": None})
            links.append({"from_id": key, "to_id": records[rng.randrange(len(records))], "system": "hubspot",
                          "label": None, "is_primary": True, "source_id": key, "is_deleted": False})
        with transaction(engine) as connection:
            write(connection, Interaction, rows)
            write(connection, Association, links)
        counts["interactions"] += len(rows)
    deals, tickets, links = [], [], []
    for index in range(people // 3):
        opened = when(rng)
        status = rng.choice(["open", "won", "won", "lost"])
        key = f"salesforce:Opportunity:{index}"
        deals.append({"id": key, "name": f"Deal {index}", "amount": 1000.0, "currency": "ILS", "pipeline": None,
                      "stage": None, "stage_label": None, "status": status, "opened_at": opened,
                      "closed_at": opened + timedelta(days=30) if status != "open" else None, "owner_id": None,
                      "company_id": None, "custom": None})
        links.append({"from_id": key, "to_id": records[rng.randrange(len(records))], "system": "salesforce",
                      "label": None, "is_primary": True, "source_id": key, "is_deleted": False})
    for index in range(people // 5):
        key = f"dynamics:incidents:{index}"
        tickets.append({"id": key, "subject": "Help", "body": None, "status": "Active", "is_closed": False,
                        "priority": None, "channel": "support", "opened_at": when(rng), "closed_at": None,
                        "owner_id": None, "company_id": None, "custom": None})
        links.append({"from_id": key, "to_id": records[rng.randrange(len(records))], "system": "dynamics",
                      "label": None, "is_primary": True, "source_id": key, "is_deleted": False})
    with transaction(engine) as connection:
        write(connection, Deal, deals)
        write(connection, Ticket, tickets)
        write(connection, Association, links)
    counts["deals"], counts["tickets"] = len(deals), len(tickets)
    return counts


def cpu_seconds() -> tuple[float, float]:
    """CPU time used so far by this process and by its finished child processes (the evaluation workers)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def cpu_since(start: tuple[float, float]) -> str:
    own, workers = (now - then for now, then in zip(cpu_seconds(), start, strict=True))
    return f"CPU {own + workers:.1f} s: {own:.1f} s here, {workers:.1f} s in workers"


def peak_mb() -> float:
    """This process's peak resident size (MB) since it started: the kernel's high-water mark of its own memory
    (`VmHWM`). Not `ru_maxrss`, which a spawned child inherits from the process it was forked from before its
    exec — here the parent that built the data set, whose size it then reported (339 MB on both databases at
    200k customers, the passes' own peak being lower)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:  # no /proc (not Linux): the closest figure the platform gives
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


PHASES: dict[str, float] = {}
PEAKS: dict[str, float] = {}  # peak resident size of this process when the phase last ended (MB)


def timed(owner: Any, name: str, label: str) -> None:
    """Wrap `owner.name` so its wall time adds up under `label` (the per-phase figures the benchmark prints)."""
    original = getattr(owner, name)

    @functools.wraps(original)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            PHASES[label] = PHASES.get(label, 0.0) + time.perf_counter() - started
            PEAKS[label] = peak_mb()

    setattr(owner, name, wrapper)


def phases() -> str:
    text = ", ".join(f"{label} {seconds:.1f} s (peak {PEAKS[label]:.0f} MB)" for label, seconds in PHASES.items())
    PHASES.clear()
    PEAKS.clear()
    return text


timed(IdentityResolver, "resolve", "identities")
timed(links, "refresh", "links")
timed(Tagger, "_write_batch", "stage writes")
timed(Tagger, "tag", "stages (incl. writes)")
timed(Tagger, "_segments", "segments")


RESET_TABLES = ("stage_history", "customer_link", "customer", "sync_state", "person_record")


def reset(engine: Engine) -> None:
    """Back to the state before the first pass (what identity resolution and tagging wrote goes), so a further
    full run measures the same work on the same data. On PostgreSQL the deleted and updated row versions are then
    vacuumed: the first pass met tables without any, as a server with autovacuum on (every production server;
    not always a test machine's) would have them by the next pass."""
    with engine.begin() as connection:
        for sql in ("DELETE FROM stage_history", "DELETE FROM customer_link", "DELETE FROM customer",
                    "DELETE FROM sync_state",
                    "UPDATE person_record SET customer_id = NULL, match_rule = NULL, match_evidence = NULL"):
            connection.execute(text(sql))
    if engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.exec_driver_sql(f"VACUUM (ANALYZE) {', '.join(RESET_TABLES)}")


def spread(values: list[float]) -> str:
    return f"min {min(values):.1f} / median {statistics.median(values):.1f} / max {max(values):.1f} s"


# what a pass decides, per table: the columns compared between databases (not when it was computed)
OUTCOME = {"person_record": "id, customer_id, match_rule, match_evidence",
           "customer": "id, email, first_name, last_name, full_name, phone, first_seen_at, merged_into_id, "
                       "first_purchase_at, last_activity_at, last_return_at, last_interaction_at, "
                       "last_interaction_channel, segment, segment_since",
           "stage_history": "customer_id, stage, stage_order, entered_at, exited_at, rule_id, ruleset_version, "
                            "evidence_type, evidence_id"}
ORDER = {"person_record": "id", "customer": "id", "stage_history": "customer_id, entered_at, stage"}


def outcome(engine: Engine) -> dict[str, str]:
    """A digest of each table's outcome, read in code-point order (the same on both databases) and streamed:
    timestamps as aware datetimes whichever way the database stores them."""
    digests = {}
    with engine.connect() as connection:
        order = collate(connection)
        for table, columns in OUTCOME.items():
            digest, count = hashlib.sha256(), 0
            keys = ", ".join(f"{key}{order}" if key != "entered_at" else key for key in ORDER[table].split(", "))
            for rows in stream_rows(connection, f"SELECT {columns} FROM {table} ORDER BY {keys}", (), 20_000):
                for row in rows:
                    digest.update(repr(tuple(moment(value) if _is_time(value) else value for value in row)).encode())
                count += len(rows)
            digests[table] = f"{count} rows, {digest.hexdigest()[:16]}"
        connection.rollback()
    return digests


def _is_time(value: Any) -> bool:
    """A stored timestamp: a datetime (PostgreSQL) or SQLite's fixed-width UTC text."""
    return isinstance(value, datetime) or (isinstance(value, str) and len(value) == 27 and value.endswith("Z")
                                           and value[4] == "-" and value[10] == "T")


def measure(engine: Engine, label: str, people: int, interactions: int, profile: str | None = None,
            runs: int = 1, report: str | None = None) -> None:
    upgrade(engine)
    started = time.perf_counter()
    counts = build(engine, people, interactions)
    print(f"{label}: built {counts} in {time.perf_counter() - started:.0f} s", flush=True)
    # the passes run in a fresh process: its peak RSS is the journey pass's own, not the synthetic setup's
    url = engine.url.render_as_string(hide_password=False)
    engine.dispose()
    child = multiprocessing.get_context("spawn").Process(target=passes, args=(url, label, profile, runs, report))
    child.start()
    child.join()
    if child.exitcode:
        raise SystemExit(f"{label}: the measured passes failed (exit {child.exitcode})")


def passes(url: str, label: str, profile: str | None, runs: int, report: str | None = None) -> None:
    """Full + no-change runs, timed, in this (fresh) process; with `report`, the median full run and the
    outcome's digests written there as JSON (after the peak memory is taken)."""
    engine = make_engine(url)
    root = mappings_root()
    tagger = Tagger(engine, load_config_file(root, "lifecycle.yaml"), load_config_file(root, "identity.yaml"))
    fulls, unchanged = [], []
    for run in range(runs):
        if run:
            reset(engine)
        profiler = cProfile.Profile() if profile and not run else None
        started, cpu = time.perf_counter(), cpu_seconds()
        if profiler:
            profiler.enable()
        plan = tagger.resolve()
        resolved = time.perf_counter()
        summary = tagger.assign_segments(tagger.tag(plan, AS_OF))
        total = time.perf_counter() - started
        if profiler:
            profiler.disable()
            profiler.dump_stats(profile)
        fulls.append(total)
        print(f"{label}: full run {total:.1f} s (identities + links {resolved - started:.1f} s, stages + segments "
              f"{total - (resolved - started):.1f} s): {summary.customers} customers, {summary.evaluated} evaluated; "
              f"{cpu_since(cpu)}", flush=True)
        print(f"{label}: phases {phases()}", flush=True)
        with engine.connect() as connection:
            history = connection.execute(text("SELECT COUNT(*) FROM stage_history")).scalar()
        print(f"{label}: {history} stage-history rows; stages {summary.stages}; segments {summary.segments}",
              flush=True)
        started, cpu = time.perf_counter(), cpu_seconds()
        again = tagger.run(AS_OF)
        unchanged.append(time.perf_counter() - started)
        print(f"{label}: incremental run with no changes {unchanged[-1]:.1f} s ({again.evaluated} evaluated, "
              f"{again.history_changed} changed; {cpu_since(cpu)}; {phases()})", flush=True)
    if runs > 1:
        print(f"{label}: {runs} runs: full {spread(fulls)}; no-change {spread(unchanged)}", flush=True)
    print(f"{label}: peak memory {peak_mb():.0f} MB (this process, since it started)", flush=True)
    if report:
        Path(report).write_text(json.dumps({"full": statistics.median(fulls), "outcome": outcome(engine)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", "--people", dest="people", type=int, default=200_000,
                        help="people to generate (each in one to three CRMs); default 200,000")
    parser.add_argument("--interactions", type=int, help="default: five per person (1,000,000 for 200,000)")
    parser.add_argument("--postgres", help="server URL; a scratch database is created and dropped")
    parser.add_argument("--runs", type=int, default=1, help="full + no-change runs on the same data (min/median/max)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of this process's full run (pstats)")
    parser.add_argument("--compare", action="store_true",
                        help="SQLite, then PostgreSQL (--postgres): same data, outcomes compared, time ratio")
    args = parser.parse_args()
    if args.compare and not args.postgres:
        parser.error("--compare needs --postgres URL")
    args.interactions = args.interactions if args.interactions is not None else 5 * args.people
    if args.compare:
        compare(args)
        return
    if args.postgres:
        with scratch_postgres(args.postgres, "jh_bench") as engine:
            measure(engine, "postgresql", args.people, args.interactions, args.profile, args.runs)
        return
    with tempfile.TemporaryDirectory() as folder:
        measure(make_engine(f"sqlite:///{Path(folder) / 'bench.db'}"), "sqlite", args.people, args.interactions,
                args.profile, args.runs)


def compare(args: argparse.Namespace) -> None:
    """Both databases on the same data, one after the other: same outcome, and the time ratio."""
    with tempfile.TemporaryDirectory() as folder:
        reports = {label: str(Path(folder) / f"{label}.json") for label in ("sqlite", "postgresql")}
        measure(make_engine(f"sqlite:///{Path(folder) / 'bench.db'}"), "sqlite", args.people, args.interactions,
                None, args.runs, reports["sqlite"])
        with scratch_postgres(args.postgres, "jh_bench") as engine:
            measure(engine, "postgresql", args.people, args.interactions, None, args.runs, reports["postgresql"])
        sqlite, postgres = (json.loads(Path(reports[label]).read_text()) for label in ("sqlite", "postgresql"))
    same = sqlite["outcome"] == postgres["outcome"]
    print(f"outcome sqlite {sqlite['outcome']}")
    print(f"outcome postgresql {postgres['outcome']}")
    print(f"outcomes {'identical' if same else 'DIFFER'}; full run (medians) postgresql ÷ sqlite: "
          f"{postgres['full'] / sqlite['full']:.2f} ({postgres['full']:.1f} s / {sqlite['full']:.1f} s)", flush=True)
    if not same:
        raise SystemExit("the two databases reached different outcomes")


if __name__ == "__main__":
    main()
