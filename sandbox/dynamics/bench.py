"""Pages per second the Dataverse emulator serves over loopback HTTP.

    python -m sandbox.dynamics.bench [--rows 50000] [--rounds 3]

Reads every contact with `Prefer: odata.maxpagesize=5000` and `=500`, following nextLinks verbatim with one
keep-alive httpx client, for full rows and for a typical connector `$select`. Bodies are decoded with orjson
(what the emulator costs, plus transport); the `stdlib json` column shows the same read decoded with
`response.json()`, which is what dominates a plain-httpx client.
"""

from __future__ import annotations

import argparse
import json
import random
import time
import uuid

import httpx
import orjson

from sandbox.common.server import EmulatorServer
from sandbox.dynamics import DynamicsData, DynamicsEmulator

SELECT = ("fullname,firstname,lastname,emailaddress1,telephone1,mobilephone,_parentcustomerid_value,"
          "_ownerid_value,statecode,createdon,modifiedon")


def build(rows: int, seed: int = 7) -> DynamicsData:
    rnd = random.Random(seed)
    accounts = [str(uuid.UUID(int=rnd.getrandbits(128))) for _ in range(max(1, rows // 100))]
    contacts = [{
        "contactid": str(uuid.UUID(int=rnd.getrandbits(128))), "firstname": f"First{i}", "lastname": f"Last{i}",
        "emailaddress1": f"person{i}@example.com", "telephone1": "+972-3-555-0101", "mobilephone": "+972-54-555-0199",
        "_parentcustomerid_value": accounts[i % len(accounts)], "statecode": 0, "statuscode": 1,
        "createdon": "2024-01-01T00:00:00Z", "modifiedon": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T10:00:00Z",
        "new_journeystage": "purchase",
    } for i in range(rows)]
    return DynamicsData(rows={"contacts": contacts,
                              "accounts": [{"accountid": a, "name": f"Account {a[:4]}"} for a in accounts]})


def read_all(client: httpx.Client, page_size: int, select: str | None, decode) -> tuple[int, int, float]:
    url = "contacts" + (f"?$select={select}" if select else "")
    pages = rows = 0
    started = time.perf_counter()
    while url:
        response = client.get(url, headers={"Prefer": f"odata.maxpagesize={page_size}"})
        body = decode(response)
        pages += 1
        rows += len(body["value"])
        url = body.get("@odata.nextLink")
    return pages, rows, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    emulator = DynamicsEmulator(requests_per_5min=None)
    started = time.perf_counter()
    emulator.load(build(args.rows))
    print(f"load: {args.rows} contacts in {time.perf_counter() - started:.2f}s")
    with EmulatorServer(emulator) as server, httpx.Client(
            base_url=f"{server.url}/api/data/v9.2/", timeout=120,
            headers={"Authorization": f"Bearer {emulator.default_token}"}) as client:
        print(f"{'page':>5} {'columns':>8} {'KB/page':>8} {'pages/s':>9} {'rows/s':>9}   {'stdlib json pages/s':>19}")
        for select in (None, SELECT):
            for page_size in (5000, 500):
                best = None
                for _ in range(args.rounds):
                    result = read_all(client, page_size, select, lambda r: orjson.loads(r.content))
                    best = result if best is None or result[2] < best[2] else best
                assert best is not None
                pages, rows, seconds = best
                stdlib = read_all(client, page_size, select, lambda r: json.loads(r.content))
                size = len(client.get("contacts" + (f"?$select={select}" if select else ""),
                                      headers={"Prefer": f"odata.maxpagesize={page_size}"}).content) / 1024
                print(f"{page_size:>5} {'all' if select is None else 'select':>8} {size:>8.0f} "
                      f"{pages / seconds:>9.1f} {rows / seconds:>9.0f}   {stdlib[0] / stdlib[2]:>19.1f}")


if __name__ == "__main__":
    main()
