"""Pull connectors: API calls per 1,000 records, HubSpot sync speed against the bare SDK, and memory.

    python bench/pull.py calls  [--people 20000]           # calls per 1,000 records, full and no-change, per CRM
    python bench/pull.py speed  [--records 50000]           # HubSpot sync into SQLite vs a bare SDK paging loop
    python bench/pull.py memory [--records 10000 100000]    # peak RSS of a HubSpot contacts sync
    python bench/pull.py all                                # the three, with their defaults

Targets (issue 4): HubSpot ≤ 11 calls per 1,000 records including associations, Salesforce ≤ 1, Dataverse ≤ 1;
a no-change incremental sync ≤ 1 call per object type; a full HubSpot sync into the canonical database
≥ 1.5x the records/s of a bare `hubspot-api-client` loop that discards what it reads; peak memory flat from
10k to 100k records and under 300 MB (issue 18: 1,000,000 records < 300 MB and <= 1.2x 100,000).

The emulators always run in a child process, so client and server never share an interpreter lock and the
memory figures are the sync's alone. Calls are counted by the emulators' request logs (what the vendor would
bill), not by the connectors' own counters.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import http_calls, hub_settings

SYSTEMS = ("hubspot", "salesforce", "dynamics")
TARGET_FULL = {"hubspot": 11.0, "salesforce": 1.0, "dynamics": 1.0}
TOKEN = "sandbox-token"  # the emulators' default bearer token


# ---------------------------------------------------------------------------------------------- helpers
@contextmanager
def hubspot_child(records: int) -> Iterator[str]:
    """A HubSpot emulator with `records` synthetic contacts, served by a child process; yields its URL."""
    child = subprocess.Popen([sys.executable, __file__, "serve-hubspot", "--records", str(records)],
                             stdout=subprocess.PIPE, stdin=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError("the HubSpot emulator child did not start")
        yield line.split()[1]
    finally:
        child.terminate()
        child.wait(timeout=20)


def serve_hubspot(records: int) -> None:
    """Child process: seed, serve, print `READY url`, run until terminated."""
    from sandbox.common.server import EmulatorServer
    from sandbox.hubspot.emulator import HubSpotEmulator

    emulator = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    emulator.load(synthetic_contacts(records))
    with EmulatorServer(emulator) as server:
        print(f"READY {server.url}", flush=True)
        sys.stdin.read()  # until the parent closes the pipe or terminates us


FIRST = ("Noa", "Yosef", "Layla", "Omar", "Emily", "James", "נועה", "محمد")
LAST = ("Cohen", "Levi", "Haddad", "Khalil", "Smith", "Brown", "כהן", "حداد")
PHONE_FORMS = ("+9725{:08d}", "05{}-{:07d}", "+1 415 {:03d} {:04d}", "972-3-{:07d}")


def phone(i: int) -> str:
    """A distinct number for each i below 10 million, in one of four formats."""
    form = i % 4
    if form == 0:
        return PHONE_FORMS[0].format(i)
    if form == 1:
        return PHONE_FORMS[1].format(i % 10, i)
    if form == 2:
        return PHONE_FORMS[2].format(200 + (i // 10_000) % 800, i % 10_000)
    return PHONE_FORMS[3].format(i)


def synthetic_contacts(count: int) -> Any:
    """Contacts as HubSpot returns them: every email and phone different (no cache flatters the sync),
    phones in the formats CRMs hold, names in Hebrew, Arabic and English."""
    from sandbox.hubspot.data import HubSpotData

    contacts = []
    for i in range(count):
        stamp = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.000Z"
        contacts.append({"id": str(1000 + i), "createdAt": stamp, "updatedAt": stamp, "archived": False,
                         "properties": {"email": f" Person.{i}@Example.com ", "firstname": FIRST[i % 8],
                                        "lastname": LAST[(i // 8) % 8], "phone": phone(i),
                                        "company": f"Company {i % 997}", "jobtitle": "Buyer", "lifecyclestage": "lead",
                                        "hs_lead_status": "NEW",
                                        "createdate": stamp, "lastmodifieddate": stamp, "hs_object_id": str(1000 + i),
                                        "hubspot_owner_id": str(1 + i % 20)}})
    return HubSpotData(objects={"contacts": contacts})


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------------------------------------- calls
def calls(people: int, seed: int = 7) -> dict[str, dict[str, float]]:
    """Full then no-change incremental sync of each CRM of a generated world; calls counted by the emulators."""
    from flows import sync as sync_flow
    from sandbox.runtime import Sandbox

    print(f"generating and serving a world of {people} people ...", flush=True)
    results: dict[str, dict[str, float]] = {}
    with Sandbox(people=people, seed=seed, process=True, limits=False) as sandbox, \
            tempfile.TemporaryDirectory() as scratch, hub_settings(sandbox.env, Path(scratch) / "hub.db") as settings:
        for system in SYSTEMS:
            sandbox.reset_request_logs()
            started = time.perf_counter()
            full = sync_flow.sync_system(settings, system)  # type: ignore[arg-type]
            seconds = time.perf_counter() - started
            full_calls = http_calls(sandbox.request_counts(system))
            records = full.totals().records_read
            sandbox.reset_request_logs()
            again = sync_flow.sync_system(settings, system)  # type: ignore[arg-type]
            idle_calls = http_calls(sandbox.request_counts(system))
            objects = len(again.objects)
            idle = {item.object_type: item.counts.api_calls for item in again.objects}
            results[system] = {"records": records, "full_calls": full_calls, "per_1000": 1000 * full_calls / records,
                               "idle_calls": idle_calls, "objects": objects, "idle_read": again.totals().records_read,
                               "seconds": seconds}
            verdict = "OK" if results[system]["per_1000"] <= TARGET_FULL[system] else "OVER TARGET"
            print(f"{system:10} full: {records:>8,} records, {full_calls:>5} calls = "
                  f"{results[system]['per_1000']:.2f} per 1,000 (target ≤ {TARGET_FULL[system]:g}: {verdict}), "
                  f"{seconds:.1f} s; no-change: {idle_calls} calls for {objects} object types, "
                  f"{again.totals().records_read} records read", flush=True)
            for item in full.objects:
                print(f"           {item.object_type:28} {item.counts.records_read:>8,} records "
                      f"{item.counts.api_calls:>5} calls; no-change {idle.get(item.object_type, 0)} calls "
                      "(the connector's own count)")
    return results


# ---------------------------------------------------------------------------------------------- speed
def sdk_loop(url: str, properties: list[str], associations: list[str]) -> int:
    """What a bare `hubspot-api-client` user writes: page the list endpoint to the end, discard the models."""
    from hubspot import HubSpot

    api = HubSpot(access_token=TOKEN, host=url, base_url=url).crm.contacts.basic_api
    read, after = 0, None
    while True:
        page = api.get_page(limit=100, after=after, properties=properties, associations=associations or None)
        read += len(page.results)
        after = page.paging.next.after if page.paging and page.paging.next else None
        if not after:
            return read


def hub_sync(url: str, scratch: Path, round_: int) -> int:
    """A full HubSpot contacts sync into a fresh SQLite canonical database, through the product's path."""
    from flows import sync as sync_flow
    from journeyhub.journey import keys

    # every round parses its phones afresh, as a first sync in a new process would; the mapping worker keeps
    # its own cache, but its 16,384 entries never hit on more distinct numbers than that read in order
    keys._e164.cache_clear()
    env = {"HUBSPOT_BASE_URL": url, "HUBSPOT_ACCESS_TOKEN": TOKEN}
    with hub_settings(env, scratch / f"speed-{round_}.db") as settings:
        result = sync_flow.sync_system(settings, "hubspot", objects=["contacts"], full=True)
    if result.error or any(item.status == "failed" for item in result.objects):  # quarantined records are fine
        raise RuntimeError(f"the sync did not succeed: {result.error or result.objects}")
    return result.totals().records_read


def speed(records: int, rounds: int = 3) -> float:
    """Records/s of both, alternating, best of `rounds` each; returns the ratio hub / SDK."""
    from connectors.hubspot.objects import OBJECTS
    from journeyhub.config import load_mappings, mappings_root

    spec = OBJECTS["contacts"]
    paths = load_mappings(mappings_root(), "hubspot")["contacts"].source_paths()
    fields = dict.fromkeys(field.name for field in map(spec.source_field, paths) if field is not None)
    properties, associations = spec.request_properties(fields), list(spec.associations)  # what the hub asks for
    best = {"sdk": 0.0, "hub": 0.0}
    with hubspot_child(records) as url, tempfile.TemporaryDirectory() as scratch:
        for round_ in range(rounds):
            for name in ("sdk", "hub"):
                started = time.perf_counter()
                read = (sdk_loop(url, properties, associations) if name == "sdk"
                        else hub_sync(url, Path(scratch), round_))
                rate = read / (time.perf_counter() - started)
                best[name] = max(best[name], rate)
                print(f"round {round_ + 1} {name}: {read:,} records at {rate:,.0f} records/s", flush=True)
    ratio = best["hub"] / best["sdk"]
    verdict = "OK" if ratio >= 1.5 else "UNDER TARGET"
    print(f"best: bare SDK loop {best['sdk']:,.0f} records/s, hub sync into SQLite {best['hub']:,.0f} records/s "
          f"= {ratio:.2f}x (target ≥ 1.5x: {verdict})")
    return ratio


# ---------------------------------------------------------------------------------------------- memory
def memory_child(url: str) -> None:
    """Child process: one full contacts sync; prints records read, this process's peak RSS and the mapping
    worker's (0 when the sync did not use it)."""
    from journeyhub.ingest.pipeline import WORKER

    with tempfile.TemporaryDirectory() as scratch:
        read = hub_sync(url, Path(scratch), 0)
    worker = sum(peak_of(pid) for pid in WORKER.pids())
    print(f"RESULT {read} {peak_rss_mb():.1f} {worker:.1f}", flush=True)


def peak_of(pid: int) -> float:
    """A running process's peak RSS in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def memory(sizes: list[int]) -> dict[int, float]:
    peaks: dict[int, float] = {}
    for size in sizes:
        with hubspot_child(size) as url:
            output = subprocess.run([sys.executable, __file__, "memory-child", "--url", url],
                                    capture_output=True, text=True, check=True).stdout
        line = next(line for line in output.splitlines() if line.startswith("RESULT "))
        read, peak, worker = int(line.split()[1]), float(line.split()[2]), float(line.split()[3])
        peaks[size] = peak + worker
        print(f"{read:>8,} contacts synced: peak RSS {peak + worker:.0f} MB (sync {peak:.0f} MB + mapping worker "
              f"{worker:.0f} MB)", flush=True)
    if len(peaks) > 1:
        low, high = peaks[min(peaks)], peaks[max(peaks)]
        verdict = "OK" if high < 300 and high <= 1.2 * low else "NOT MET"
        print(f"growth from {min(peaks):,} to {max(peaks):,} records: {high - low:+.0f} MB, {high / low:.2f}x "
              f"(target < 300 MB and <= 1.2x: {verdict})")
    return peaks


# ---------------------------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("calls").add_argument("--people", type=int, default=20_000)
    sub.add_parser("speed").add_argument("--records", type=int, default=50_000)
    sub.add_parser("memory").add_argument("--records", type=int, nargs="+", default=[10_000, 100_000])
    sub.add_parser("all")
    sub.add_parser("serve-hubspot").add_argument("--records", type=int, required=True)
    sub.add_parser("memory-child").add_argument("--url", required=True)
    args = parser.parse_args(argv)
    if args.command == "serve-hubspot":
        serve_hubspot(args.records)
        return
    from flows.process import tune_gc

    tune_gc()  # the hub's side measured as the CLI runs it (the emulator child keeps Python's defaults)
    if args.command == "memory-child":
        memory_child(args.url)
    elif args.command == "calls":
        calls(args.people)
    elif args.command == "speed":
        speed(args.records)
    elif args.command == "memory":
        memory(args.records)
    else:
        calls(20_000)
        speed(50_000)
        memory([10_000, 100_000])


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    main()
