"""Salesforce emulator: a loopback server that answers like Salesforce's REST API, closely enough that the
real `simple-salesforce` 1.12.10 works against it unmodified.

Served (under `/services/data/vNN.0/`, trailing slashes tolerated, bearer auth, `Sforce-Limit-Info` on
every REST response, errors as JSON arrays `[{"message", "errorCode"[, "fields"]}]`):

- `query`, `queryAll`, `query/{locator}` — the SOQL subset in `soql.py`, 2,000-record batches
  (`Sforce-Query-Options: batchSize=200..2000`), relative `nextRecordsUrl`, expiring locators;
- `sobjects`, `sobjects/{Obj}`, `…/describe`, record GET/POST/PATCH/DELETE, upsert/GET/DELETE by external
  ID, `…/updated` and `…/deleted` (getUpdated/getDeleted windows);
- `composite/sobjects` (create, update, delete, retrieve, upsert) and `composite` (≤25 subrequests,
  `@{ref.field}` references, allOrNone);
- `limits` (daily API counter; exhausting it answers 403 REQUEST_LIMIT_EXCEEDED);
- Bulk API 2.0 query jobs `jobs/query…` with CSV results;
- login: `POST /services/oauth2/token` and the SOAP `POST /services/Soap/u/{ver}`.

Modules: `data` (the `SalesforceData` contract, dependency-free), `schema` (objects, fields, describe),
`ids`/`times` (id checksums, time formats), `store` (records, indexes, write rules, merges), `soql`
(parser, compiler, executor), `query`, `rest`, `bulk`, `auth` (endpoints), `routing` (plumbing),
`emulator` (`SalesforceEmulator`). What the emulator does and deliberately does not do, and where it
departs from Salesforce: `QUIRKS.md` beside this file.

Importing `sandbox.salesforce.data` (or `SalesforceData` from here) does not load the server stack.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.salesforce.data import SalesforceData

if TYPE_CHECKING:
    from sandbox.salesforce.emulator import SalesforceEmulator

__all__ = ["SalesforceData", "SalesforceEmulator"]


def __getattr__(name: str) -> Any:
    if name == "SalesforceEmulator":
        from sandbox.salesforce.emulator import SalesforceEmulator

        return SalesforceEmulator
    raise AttributeError(name)
