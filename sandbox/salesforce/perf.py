"""How fast the emulator serves 2,000-record SOQL batches (`python -m sandbox.salesforce.perf`).

Seeds N Contacts, runs the incremental-sync query (`queryAll … WHERE SystemModstamp > … ORDER BY
SystemModstamp, Id`, 15 fields) and pages it to the end over HTTP three ways:

- cold: first pass, every record projected and serialised;
- warm: second pass, serialised records come from the fragment cache;
- simple-salesforce: `query_more` through the real client (JSON decoding into OrderedDicts included),
  the number a connector actually sees.

Prints batches/second for each and the server-side time per batch from the request log.
"""

from __future__ import annotations

import argparse
import time

import requests

from sandbox.common.emulator import Emulator
from sandbox.common.server import EmulatorServer
from sandbox.salesforce.data import SalesforceData
from sandbox.salesforce.emulator import SalesforceEmulator

FIELDS = ("Id, FirstName, LastName, Email, Phone, MobilePhone, AccountId, OwnerId, LeadSource, MasterRecordId, "
          "IsDeleted, CreatedDate, LastModifiedDate, SystemModstamp, Journey_Stage__c")
QUERY = f"SELECT {FIELDS} FROM Contact WHERE SystemModstamp > 2020-01-01T00:00:00Z ORDER BY SystemModstamp, Id"


def contacts(count: int) -> SalesforceData:
    return SalesforceData({"Contact": [
        {"FirstName": f"First{index}", "LastName": f"Last{index}", "Email": f"person{index}@example.com",
         "Phone": "+1 555 0100", "LeadSource": "Web", "Journey_Stage__c": "awareness",
         "CreatedDate": "2024-01-01T00:00:00.000+0000",
         "SystemModstamp": f"2024-{1 + index % 12:02d}-{1 + index % 28:02d}T{index % 24:02d}:"
                           f"{index % 60:02d}:00.000+0000"}
        for index in range(count)]})


def page_raw(session: requests.Session, base: str, headers: dict[str, str]) -> tuple[int, float]:
    first = session.get(f"{base}/services/data/v59.0/queryAll/", params={"q": QUERY}, headers=headers).json()
    url = first.get("nextRecordsUrl")
    batches, started = 0, time.perf_counter()
    while url:
        reply = session.get(base + url, headers=headers)
        batches += 1
        url = reply.json().get("nextRecordsUrl")
    return batches, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=40_000)
    args = parser.parse_args()

    emulator = SalesforceEmulator()
    started = time.perf_counter()
    emulator.load(contacts(args.records))
    print(f"loaded {args.records} contacts in {time.perf_counter() - started:.2f}s")
    with EmulatorServer(emulator) as server:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {Emulator.default_token}"}
        for label in ("cold", "warm"):
            emulator.requests.reset()
            batches, elapsed = page_raw(session, server.url, headers)
            log = [entry for entry in emulator.requests.snapshot()["log"] if entry["route"].endswith("{locator}")]
            server_ms = sum(entry["duration_ms"] for entry in log) / max(1, len(log))
            print(f"{label:>17}: {batches / elapsed:7.1f} batches/s of 2,000 records over HTTP "
                  f"(server {server_ms:.1f} ms/batch)")

        from requests.adapters import HTTPAdapter
        from simple_salesforce import Salesforce  # the real client, through an https→http adapter

        class ToLocal(HTTPAdapter):
            def send(self, request, **kw):  # type: ignore[no-untyped-def,override]
                request.url = request.url.replace("https://", "http://", 1)
                return super().send(request, **kw)

        client_session = requests.Session()
        client_session.mount("https://", ToLocal())
        sf = Salesforce(instance_url=server.url, session_id=Emulator.default_token, session=client_session)
        result = sf.query(QUERY, include_deleted=True)
        batches, started = 0, time.perf_counter()
        while not result["done"]:
            result = sf.query_more(result["nextRecordsUrl"], identifier_is_url=True)
            batches += 1
        print(f"simple-salesforce: {batches / (time.perf_counter() - started):7.1f} batches/s "
              "(client-side JSON decoding included)")


if __name__ == "__main__":
    main()
