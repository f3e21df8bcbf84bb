"""Pull throughput per CRM: the hub's full sync against a replay of its own GET requests (issue 18).

    python bench/throughput.py [--people 20000] [--repeat 3] [--postgres URL] [--systems hubspot ...]

For each CRM, in one run on the project's emulators (a child process, rate limits off, as `bench/pull.py`):
1. a full hub sync into a fresh SQLite database (and, with `--postgres`, a fresh PostgreSQL one);
2. the hub's GET requests, read back from the emulator's request log (path, query and the headers that shape a
   response — page size, annotations — never credentials), replayed in order on one keep-alive
   `httpx.Client`, each response decoded (orjson; CSV for Bulk API results) and dropped. A Salesforce query
   locator is the server's and expires, so a replayed `query/{locator}` follows the replayed query's own
   `nextRecordsUrl`; everything else is the recorded URL. Non-GET requests (none in a full pull today) are
   counted and left out, which only makes the replay faster;
3. for HubSpot, a `hubspot-api-client` loop making the same CRM object list requests (same object, limit,
   after, properties, associations, archived) through the SDK's generated models.

Printed per CRM and database: records, hub records/s, replay records/s, hub ÷ replay, SDK records/s (HubSpot's
CRM objects: the SDK has no email events API, so both sides count the CRM objects alone), hub ÷ SDK, email
events/s (hub, and replay of the events requests), and API calls per 1,000 records (targets: HubSpot ≤ 11,
Salesforce ≤ 1, Dataverse ≤ 1), and the hub's CPU per record in the sync process (all its threads) and in
the mapping worker process. `--repeat N` prints min/median/max of each figure over N runs.
Targets (issue 18): hub ≥ 0.5x replay, HubSpot ≥ 1.5x the SDK loop, email events ≥ 20,000/s.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import signal
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import NO_BUDGET, http_calls

SYSTEMS = ("hubspot", "salesforce", "dynamics")
TARGET_CALLS = {"hubspot": 11.0, "salesforce": 1.0, "dynamics": 1.0}
TOKEN = "sandbox-token"  # the emulators' default bearer token
EVENTS_OBJECT, EVENTS_PATH = "email_events", "/email/public/v1/events"
OBJECTS_PATH = "/crm/v3/objects/"
LOCATOR_ROUTE = "/query/{locator}"


# ---------------------------------------------------------------------------------------------- databases
@contextmanager
def database(kind: str, scratch: Path, postgres: str | None) -> Iterator[str]:
    """A fresh, migrated canonical database of `kind` ("sqlite" or "postgresql"); yields its URL."""
    from sqlalchemy import text

    from canonical.db import make_engine
    from canonical.schema import upgrade

    if kind == "sqlite":
        url = f"sqlite:///{scratch / f'hub-{uuid.uuid4().hex[:8]}.db'}"
        upgrade(make_engine(url))
        yield url
        return
    assert postgres is not None
    admin = make_engine(postgres, isolation_level="AUTOCOMMIT")
    name = f"n_throughput_{uuid.uuid4().hex[:8]}"
    try:
        with terminate_as_interrupt():
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
            url = admin.url.set(database=name).render_as_string(hide_password=False)
            engine = make_engine(url)
            upgrade(engine)
            engine.dispose()
            yield url
    finally:
        with interrupts_held():  # a second Ctrl-C must not cut the drop short
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """SIGTERM (a `kill`, a timeout) raises KeyboardInterrupt as Ctrl-C does, so the `finally` that drops the
    scratch database runs; by default SIGTERM ends the process at once and leaves the database behind."""
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """SIGINT and SIGTERM received in the block are held until it is done, then end the run as Ctrl-C does."""
    held: list[int] = []
    previous = {number: signal.signal(number, lambda signum, frame: held.append(signum)) for number in STOP_SIGNALS}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    if held:
        raise KeyboardInterrupt(f"signal {held[0]}")


def worker_cpu() -> float:
    """CPU seconds the mapping worker process has used so far (0 before it starts; Linux)."""
    from journeyhub.ingest.pipeline import WORKER

    total = 0.0
    for pid in WORKER.pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime
    return total


def hub_sync(env: dict[str, str], url: str, system: str) -> dict[str, float]:
    """A full sync of one CRM through the product's path; records and seconds, all and per kind, and the CPU
    it took in this process (every thread) and in the mapping worker: per-record CPU is what a loaded machine
    distorts least."""
    from flows import sync as sync_flow
    from journeyhub.settings import Settings

    settings = Settings.from_env({**env, **NO_BUDGET, "JOURNEYHUB_DATABASE_URL": url})
    try:
        cpu, worker, started = time.process_time(), worker_cpu(), time.perf_counter()
        result = sync_flow.sync_system(settings, system, full=True)  # type: ignore[arg-type]
        seconds = time.perf_counter() - started
        cpu, worker = time.process_time() - cpu, worker_cpu() - worker
    finally:
        sync_flow.close_connectors(settings)
    if result.error or any(item.status == "failed" for item in result.objects):
        raise RuntimeError(f"the {system} sync did not succeed: {result.problems()}")
    events = [item for item in result.objects if item.object_type == EVENTS_OBJECT]
    crm = [item for item in result.objects if item.object_type != EVENTS_OBJECT]
    return {"records": result.totals().records_read, "seconds": seconds, "cpu": cpu, "worker_cpu": worker,
            "events": sum(item.counts.records_read for item in events),
            "events_seconds": sum(item.seconds for item in events),
            "crm_records": sum(item.counts.records_read for item in crm),
            "crm_seconds": sum(item.seconds for item in crm)}


# ---------------------------------------------------------------------------------------------- replay
def logged_gets(sandbox: Any, system: str) -> tuple[list[dict[str, Any]], int]:
    """The HTTP GETs in the emulator's log, in arrival order, and how many other requests there were."""
    body = sandbox.endpoints[system].admin("GET", "requests")
    log = [entry for entry in body["log"] if not entry["route"].startswith("$batch:")]
    if len(log) < http_calls(body["counts"]):
        raise RuntimeError(f"the {system} request log kept {len(log)} of {http_calls(body['counts'])} requests")
    log.sort(key=lambda entry: entry["at"])
    gets = [entry for entry in log if entry["method"] == "GET"]
    return gets, len(log) - len(gets)


def decode(response: httpx.Response) -> Any:
    """What a client must do with each response before it can use it: parse it."""
    if "csv" in response.headers.get("content-type", ""):
        return list(csv.reader(io.StringIO(response.text)))
    return orjson.loads(response.content) if response.content else None


def moved_to_bulk(entry: dict[str, Any], body: dict[str, Any]) -> bool:
    """A Salesforce first load the hub reads through Bulk API 2.0 instead: its first REST batch's `totalSize` is
    above the threshold, and the hub drops that query's locator (`SalesforceReader._first_load`), so the replay
    does too (a full sync: every read is a first load)."""
    from connectors.salesforce.client import SalesforceConfig
    from connectors.salesforce.objects import SOBJECTS

    found = re.search(r"\bFROM\s+(\w+)", " ".join(parse_qs(entry["query"] or "").get("q", [])), re.IGNORECASE)
    spec = SOBJECTS.get(found.group(1)) if found else None
    return spec is not None and spec.bulk and int(body.get("totalSize") or 0) > SalesforceConfig.bulk_threshold


def replay(base_url: str, gets: list[dict[str, Any]]) -> dict[str, float]:
    """The same GETs, in order, on one keep-alive connection; seconds in all and for the events requests.

    A Salesforce query locator is the server's and expires, and the hub reads several objects at once, so the
    log interleaves their `query/{locator}` requests: each replayed query follows its own `nextRecordsUrl` to
    the end right away (but for a first load the hub moved to Bulk API 2.0, `moved_to_bulk`), and the logged
    locator requests are left out — the same number, checked."""
    seconds = events_seconds = 0.0
    logged_locators = followed = 0
    with httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120) as client:

        def get(url: str, entry: dict[str, Any]) -> Any:
            nonlocal seconds, events_seconds
            started = time.perf_counter()
            response = client.get(url, headers=entry.get("headers") or {})
            body = decode(response)
            elapsed = time.perf_counter() - started
            if response.status_code != entry["status"]:
                raise RuntimeError(f"replay of {entry['route']} answered {response.status_code}, "
                                   f"the hub's request {entry['status']}")
            seconds += elapsed
            if entry["path"].startswith(EVENTS_PATH):
                events_seconds += elapsed
            return body

        for entry in gets:
            if entry["route"].endswith(LOCATOR_ROUTE):
                logged_locators += 1
                continue
            body = get(entry["path"] + (f"?{entry['query']}" if entry["query"] else ""), entry)
            while isinstance(body, dict) and body.get("nextRecordsUrl") and not moved_to_bulk(entry, body):
                followed += 1
                body = get(body["nextRecordsUrl"], entry)
    if followed != logged_locators:
        raise RuntimeError(f"the replay followed {followed} query locators, the hub requested {logged_locators}")
    return {"seconds": seconds, "events_seconds": events_seconds}


def sdk_loop(base_url: str, gets: list[dict[str, Any]]) -> float:
    """The hub's CRM object list requests made through `hubspot-api-client`'s generated models; seconds."""
    from hubspot import HubSpot

    api = HubSpot(access_token=TOKEN, host=base_url, base_url=base_url).crm.objects.basic_api
    started = time.perf_counter()
    for entry in gets:
        if not entry["path"].startswith(OBJECTS_PATH) or entry["path"].count("/") != 4:
            continue
        query = parse_qs(entry["query"])
        listed = {name: [item for value in query.get(name, []) for item in value.split(",") if item]
                  for name in ("properties", "associations")}
        options: dict[str, Any] = {"limit": int(query.get("limit", ["10"])[0])}
        if "after" in query:
            options["after"] = query["after"][0]
        if "archived" in query:
            options["archived"] = query["archived"][0].lower() == "true"
        for name, values in listed.items():
            if values:
                options[name] = values
        api.get_page(entry["path"].rsplit("/", 1)[1], **options)
    return time.perf_counter() - started


# ---------------------------------------------------------------------------------------------- one run
def measure(sandbox: Any, system: str, kind: str, scratch: Path, postgres: str | None) -> dict[str, float]:
    sandbox.reset_request_logs()
    with database(kind, scratch, postgres) as url:
        hub = hub_sync(sandbox.env, url, system)
    calls = http_calls(sandbox.request_counts(system))
    gets, others = logged_gets(sandbox, system)
    base = sandbox.endpoints[system].url
    played = replay(base, gets)
    records = hub["records"]
    row = {"records": records, "hub": records / hub["seconds"], "replay": records / played["seconds"],
           "per_1000": 1000 * calls / max(records, 1), "skipped": others,
           "sync µs": 1e6 * hub["cpu"] / max(records, 1), "worker µs": 1e6 * hub["worker_cpu"] / max(records, 1)}
    row["hub/replay"] = row["hub"] / row["replay"]
    if hub["events"]:
        row["hub events/s"] = hub["events"] / hub["events_seconds"]
        row["replay events/s"] = hub["events"] / played["events_seconds"]
    if system == "hubspot":
        sdk_seconds = sdk_loop(base, gets)
        row["sdk"] = hub["crm_records"] / sdk_seconds
        row["hub/sdk"] = (hub["crm_records"] / hub["crm_seconds"]) / row["sdk"]
    return row


COLUMNS = ("records", "hub", "replay", "hub/replay", "sdk", "hub/sdk", "hub events/s", "replay events/s",
           "per_1000", "sync µs", "worker µs")
HEADINGS = ("records", "hub rec/s", "replay rec/s", "hub÷replay", "SDK rec/s", "hub÷SDK", "hub events/s",
            "replay events/s", "calls/1k", "CPU µs/rec sync", "CPU µs/rec worker")


def cell(values: list[float], name: str) -> str:
    if not values:
        return "—"
    fmt = "{:.2f}" if "/" in name and "events" not in name else "{:,.0f}"
    if name == "per_1000":
        fmt = "{:.2f}"
    if len(values) == 1:
        return fmt.format(values[0])
    return "/".join(fmt.format(value) for value in (min(values), statistics.median(values), max(values)))


def table(rows: dict[tuple[str, str], list[dict[str, float]]]) -> str:
    lines = ["| CRM | db | " + " | ".join(HEADINGS) + " |", "|---|---|" + "---|" * len(HEADINGS)]
    for (system, kind), runs in rows.items():
        cells = [cell([run[name] for run in runs if name in run], name) for name in COLUMNS]
        lines.append(f"| {system} | {kind} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def verdicts(rows: dict[tuple[str, str], list[dict[str, float]]]) -> list[str]:
    notes = []
    for (system, kind), runs in rows.items():
        median = {name: statistics.median([run[name] for run in runs]) for name in COLUMNS if name in runs[0]}
        checks = [("hub÷replay ≥ 0.5", median["hub/replay"] >= 0.5),
                  (f"calls/1k ≤ {TARGET_CALLS[system]:g}", median["per_1000"] <= TARGET_CALLS[system])]
        if "hub/sdk" in median:
            checks.append(("hub÷SDK ≥ 1.5", median["hub/sdk"] >= 1.5))
        if "hub events/s" in median:
            checks.append(("email events ≥ 20,000/s", median["hub events/s"] >= 20_000))
        skipped = max(run["skipped"] for run in runs)
        notes.append(f"{system} {kind} (medians): " + ", ".join(f"{name} {'OK' if ok else 'MISSED'}"
                                                               for name, ok in checks)
                     + (f"; {skipped:.0f} non-GET requests not replayed" if skipped else ""))
    return notes


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--people", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--postgres", help="server URL; a scratch database is created and dropped per sync")
    parser.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS))
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    from flows.process import tune_gc
    from sandbox.runtime import Sandbox

    tune_gc()  # the hub's side measured as the CLI runs it (the emulator child keeps Python's defaults)
    kinds = ["sqlite"] + (["postgresql"] if args.postgres else [])
    rows: dict[tuple[str, str], list[dict[str, float]]] = {(system, kind): [] for system in args.systems
                                                           for kind in kinds}
    print(f"generating and serving a world of {args.people:,} people ...", flush=True)
    with Sandbox(people=args.people, seed=args.seed, process=True, limits=False) as sandbox, \
            tempfile.TemporaryDirectory() as scratch:
        for round_ in range(args.repeat):
            for system in args.systems:
                for kind in kinds:
                    row = measure(sandbox, system, kind, Path(scratch), args.postgres)
                    rows[(system, kind)].append(row)
                    print(f"run {round_ + 1} {system} {kind}: " + ", ".join(
                        f"{name} {row[name]:,.2f}" for name in COLUMNS if name in row), flush=True)
    print()
    print(table(rows))
    for note in verdicts(rows):
        print(note)


if __name__ == "__main__":
    main()
