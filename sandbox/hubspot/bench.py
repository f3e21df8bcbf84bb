"""How fast the HubSpot emulator serves list pages: `python -m sandbox.hubspot.bench [contacts] [seconds]`.

Seeds N contacts (default 100,000), serves them on loopback and pages `GET /crm/v3/objects/contacts` with
`limit=100` and 8 requested properties from a keep-alive `http.client` connection (the body is read, and
parsed only to follow the cursor), then pages a modified-date search window (`limit=200`). The client runs in
the same process, so the numbers are a floor for what a separate process sees.
"""

from __future__ import annotations

import http.client
import sys
import time
from urllib.parse import urlencode

import orjson

from sandbox.common.server import EmulatorServer
from sandbox.hubspot.data import HubSpotData
from sandbox.hubspot.emulator import HubSpotEmulator

PROPERTIES = ("email", "firstname", "lastname", "phone", "company", "lifecyclestage", "hs_lead_status",
              "hubspot_owner_id")


def world(count: int) -> HubSpotData:
    contacts = []
    for i in range(count):
        stamp = f"2024-01-01T{(i // 3600) % 24:02d}:{(i // 60) % 60:02d}:{i % 60:02d}.000Z"
        contacts.append({"id": str(1000 + i), "createdAt": stamp, "updatedAt": stamp, "archived": False,
                         "properties": {"email": f"c{i}@example.com", "firstname": "Dana", "lastname": "Cohen",
                                        "phone": "+972500000000", "company": "Acme", "lifecyclestage": "lead",
                                        "hs_lead_status": "NEW", "hubspot_owner_id": "1"}})
    return HubSpotData(objects={"contacts": contacts})


def main(count: int = 100_000, seconds: float = 5.0) -> None:
    emulator = HubSpotEmulator(rate_limit_per_10s=None, search_per_second=None)
    started = time.perf_counter()
    emulator.load(world(count))
    print(f"load {count} contacts: {time.perf_counter() - started:.2f} s")
    query = urlencode([("limit", "100"), *[("properties", name) for name in PROPERTIES]])
    headers = {"Authorization": f"Bearer {emulator.default_token}", "Content-Type": "application/json"}
    with EmulatorServer(emulator) as server:
        connection = http.client.HTTPConnection("127.0.0.1", server.port)
        pages, after, started = 0, "", time.perf_counter()
        while time.perf_counter() - started < seconds:
            connection.request("GET", f"/crm/v3/objects/contacts?{query}{after}", headers=headers)
            body = orjson.loads(connection.getresponse().read())
            pages += 1
            cursor = body.get("paging", {}).get("next", {}).get("after")
            after = f"&after={cursor}" if cursor else ""
        elapsed = time.perf_counter() - started
        print(f"list: {pages / elapsed:.0f} pages/s of 100 records ({pages * 100 / elapsed:.0f} records/s)")
        search = {"filterGroups": [{"filters": [{"propertyName": "lastmodifieddate", "operator": "GTE",
                                                 "value": "0"}]}],
                  "sorts": [{"propertyName": "lastmodifieddate", "direction": "ASCENDING"}], "limit": 200,
                  "properties": list(PROPERTIES)}
        pages, offset, started = 0, "0", time.perf_counter()
        while offset is not None and pages < 50:
            connection.request("POST", "/crm/v3/objects/contacts/search",
                               body=orjson.dumps({**search, "after": offset}), headers=headers)
            body = orjson.loads(connection.getresponse().read())
            pages += 1
            offset = body.get("paging", {}).get("next", {}).get("after")
        elapsed = time.perf_counter() - started
        print(f"search: {pages / elapsed:.0f} pages/s of 200 records over a {count}-record window "
              "(first page evaluates the query, later pages reuse it)")
        durations = [entry["duration_ms"] for entry in emulator.requests.snapshot()["log"]
                     if entry["route"] == "GET /crm/v3/objects/contacts"]
        durations.sort()
        print(f"list handler time (median): {durations[len(durations) // 2]:.3f} ms")


if __name__ == "__main__":
    main(*(int(sys.argv[1]),) if len(sys.argv) > 1 else (), *(float(sys.argv[2]),) if len(sys.argv) > 2 else ())
