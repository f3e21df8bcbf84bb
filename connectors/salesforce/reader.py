"""Reading one sObject: REST queryAll pages ordered by SystemModstamp, Bulk API 2.0 for big first loads,
getDeleted windows for hard deletes — with a cursor that survives a kill at any point.

The cursor (a JSON string) holds the watermark: `since`, the newest SystemModstamp known to have no unread
record before it, and `seen`, the ids (with their stamps) already delivered at or within the lookback before
it. The next read asks `SystemModstamp >= since - lookback` and drops records delivered with an unchanged
stamp, so nothing is lost to late commits and nothing is delivered twice.

A record edited while the client pages shows up later in the same result with a stamp newer than the
query (Salesforce reads field values batch by batch). Such stamps never advance `since`: only stamps older
than the server time of the query's first answer (its `Date` header, the `ceiling`) do, because only those
are known to be in order. An edited record already delivered is then still ahead of the watermark and is
read again by the next incremental sync.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from simple_salesforce.format import format_soql

from connectors.base import Page, RemoteRecord
from connectors.errors import ConfigError, UpstreamError
from connectors.salesforce.client import BulkJobGone, QueryLocatorExpired, SalesforceClient, SalesforceConfig
from connectors.salesforce.objects import CURSOR_FIELD, DELETED_WINDOW_DAYS, LOOKBACK_SECONDS, SObject, sobject

log = logging.getLogger("journeyhub.connectors.salesforce")

CURSOR_VERSION = 1
MAX_RESTARTS = 3                 # INVALID_QUERY_LOCATOR restarts per read before giving up
ID_CHUNK = 300                   # ids per `Id IN (…)` query (keeps the GET URL well under 16 KB)
BULK_CHUNK_PAGES = 25            # a Bulk results request fetches this many pages' worth of rows
BULK_MAX_WAIT_SECONDS = 3600.0
NUMBER_TYPES = frozenset({"double", "currency", "percent"})


# ------------------------------------------------------------------------------------------------ times
def parse_time(value: str | None) -> datetime | None:
    """Salesforce datetimes (`…000+0000`, `…Z`, `+00:00`) as aware UTC datetimes."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


def sf_time(value: datetime) -> str:
    """The REST API's datetime form: `2024-02-01T10:00:00.000+0000`."""
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


# ------------------------------------------------------------------------------------------------ cursor
@dataclass
class State:
    """Everything the cursor remembers about one sObject."""

    since: str | None = None                       # watermark (a served SystemModstamp)
    seen: dict[str, str] = field(default_factory=dict)   # id → stamp delivered, at/within lookback of `since`
    deleted_checked: str | None = None             # getDeleted covered everything up to here
    optional: list[str] | None = None              # optional fields the org has (None: not described yet)
    described_at: str | None = None
    bulk: dict[str, Any] | None = None             # a first load running as a Bulk API 2.0 job

    @classmethod
    def load(cls, cursor: str | None) -> State:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if data.get("v") != CURSOR_VERSION:
            log.warning("ignoring a Salesforce cursor of another version; starting a full read")
            return cls()
        return cls(data.get("since"), dict(data.get("seen") or {}), data.get("deleted_checked"),
                   data.get("optional"), data.get("described_at"), data.get("bulk"))

    def dump(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "since": self.since, "seen": self.seen,
                           "deleted_checked": self.deleted_checked, "optional": self.optional,
                           "described_at": self.described_at, "bulk": self.bulk}, sort_keys=True)

    def bookkeeping(self) -> tuple[Any, ...]:
        """What a read must persist even without records. A watermark that moved past records already
        delivered is not: re-reading them costs nothing and a page would be a write for nothing."""
        return self.deleted_checked, self.optional, self.described_at, self.bulk

    @property
    def started(self) -> bool:
        """A first load has begun (an empty object's first load leaves only `deleted_checked` behind)."""
        return self.since is not None or bool(self.seen) or self.bulk is not None or self.deleted_checked is not None

    def delivered(self, record: dict[str, Any]) -> bool:
        """Already delivered with this very stamp (re-read inside the lookback)."""
        return self.seen.get(record["Id"]) == record.get(CURSOR_FIELD)

    def advance(self, records: list[dict[str, Any]], ceiling: datetime) -> None:
        """Take delivered records into the watermark; only stamps below `ceiling` move `since`."""
        since = parse_time(self.since)
        for record in records:
            stamp_text = record.get(CURSOR_FIELD)
            stamp = parse_time(stamp_text)
            if stamp is None:
                continue
            self.seen[record["Id"]] = stamp_text
            if stamp < ceiling and (since is None or stamp > since):
                since, self.since = stamp, stamp_text
        if since is not None:
            floor = since - timedelta(seconds=LOOKBACK_SECONDS)
            self.seen = {rid: text for rid, text in self.seen.items() if parse_time(text) >= floor}

    def lower_bound(self) -> datetime | None:
        since = parse_time(self.since)
        return None if since is None else since - timedelta(seconds=LOOKBACK_SECONDS)


# ------------------------------------------------------------------------------------------------ reader
class Reader:
    """Pages of one sObject; one instance per connector."""

    def __init__(self, client: SalesforceClient, config: SalesforceConfig) -> None:
        self.client = client
        self.config = config
        self._marker = 0                  # api_calls when the last page was handed out
        self._last: str | None = None     # the cursor of the last page handed out

    # ------------------------------------------------------------------ entry point
    def read(self, object_type: str, cursor: str | None, full: bool = False) -> Iterator[Page]:
        spec = sobject(object_type)
        start = None if full else cursor
        state = State.load(start)
        self._marker, self._last = self.client.api_calls, start
        if state.bulk is not None:
            yield from self._bulk(spec, state)
        elif not state.started:
            yield from self._first_load(spec, state)
        else:
            self._refresh_optional(spec, state)
            yield from self._rest(spec, state)
            if self._deleted_check_due(state):
                yield from self._deleted(spec, state)
        if state.bookkeeping() != State.load(self._last).bookkeeping():
            yield self._page(spec, [], state)  # no records, but a deleted check or a describe to remember

    def _first_load(self, spec: SObject, state: State) -> Iterator[Page]:
        """The first REST batch's `totalSize` decides: page on through REST, or drop the query (its locator
        expires by itself) and read the object through a Bulk API 2.0 job. No separate COUNT() call."""
        self._optional(spec, state)
        first = self._query(spec, self._soql(spec, state))
        state.deleted_checked = sf_time(first[1] - timedelta(minutes=1))
        total = int(first[0].get("totalSize") or 0)
        if spec.bulk and total > self.config.bulk_threshold:
            log.info("first load of %s (%d records) through Bulk API 2.0", spec.name, total)
            yield from self._bulk(spec, state)
        else:
            yield from self._rest(spec, state, first)

    # ------------------------------------------------------------------ pages
    def _page(self, spec: SObject, records: list[dict[str, Any]], state: State) -> Page:
        """A page of raw records with the cursor that follows them and the calls made since the last page."""
        calls, self._marker = self.client.api_calls - self._marker, self.client.api_calls
        self._last = state.dump()
        return Page(spec.name, [to_source_record(spec.name, record) for record in records], self._last,
                    api_calls=calls)

    # ------------------------------------------------------------------ optional fields (describe)
    def _optional(self, spec: SObject, state: State, *, fresh: bool = False) -> list[str]:
        if not spec.optional:
            state.optional = []
            return []
        fields = self.field_types(spec.name, fresh=fresh)
        present = [name for name in spec.optional if name in fields]
        skipped = [name for name in spec.optional if name not in fields]
        if skipped:
            log.warning("Salesforce %s has no %s: syncing without %s (create the field(s) to read them)",
                        spec.name, ", ".join(skipped), "it" if len(skipped) == 1 else "them")
        state.optional, state.described_at = present, sf_time(self.client.server_time())
        return present

    def _refresh_optional(self, spec: SObject, state: State) -> None:
        """Re-describe now and then, so a custom field an admin adds later starts being read."""
        described = parse_time(state.described_at)
        age = (datetime.now(UTC) - described).total_seconds() if described else None
        stale = age is None or age >= self.config.deleted_check_interval_seconds
        if state.optional is None or (spec.optional and stale):
            self._optional(spec, state, fresh=True)

    def field_types(self, name: str, *, fresh: bool = False) -> dict[str, str]:
        """{field: describe type} for `name`."""
        return {field: entry["type"] for field, entry in self.client.describe(name, fresh=fresh).items()}

    # ------------------------------------------------------------------ REST queryAll
    def _soql(self, spec: SObject, state: State) -> str:
        """`SELECT … FROM X [WHERE SystemModstamp >= since - lookback] ORDER BY SystemModstamp, Id`."""
        fields = ", ".join(spec.select(state.optional or []))
        text = format_soql("SELECT {:literal} FROM {:literal}", fields, spec.name)
        bound = state.lower_bound()
        if bound is not None:
            text += format_soql(" WHERE {:literal} >= {}", CURSOR_FIELD, bound)
        return text + format_soql(" ORDER BY {:literal}, Id", CURSOR_FIELD)

    def _rest(self, spec: SObject, state: State,
              first: tuple[dict[str, Any], datetime] | None = None) -> Iterator[Page]:
        """queryAll from the watermark. An expired query locator restarts the query from the watermark of
        the pages handed out so far (they are committed before the next one is asked for)."""
        restarts, redescribed = 0, False
        while True:
            try:
                for batch, ceiling in self._batches(spec, first or self._query(spec, self._soql(spec, state))):
                    fresh = [record for record in batch if not state.delivered(record)]
                    state.advance(batch, ceiling)
                    if fresh:
                        restarts = 0  # progress: a locator that keeps expiring still ends the read
                        yield self._page(spec, fresh, state)
                return
            except QueryLocatorExpired as error:
                first = None
                restarts += 1
                if restarts > MAX_RESTARTS:
                    raise UpstreamError("salesforce", f"{spec.name}: query locators keep expiring ({error}); "
                                        "too many open queries for the integration user?") from None
                log.warning("%s: %s; restarting the query from the committed watermark", spec.name, error)
            except ConfigError:
                # an optional field the cursor remembers may have been deleted since: describe again, once
                if redescribed or not state.optional:
                    raise
                first, redescribed, known = None, True, list(state.optional)
                if self._optional(spec, state, fresh=True) == known:
                    raise

    def _query(self, spec: SObject, soql: str) -> tuple[dict[str, Any], datetime]:
        """The first batch of a queryAll and the server time it was answered at (the batches' ceiling)."""
        result = self.client.call(f"query {spec.name}", lambda sf: sf.query(
            soql, include_deleted=True, headers=self._options()), sobject=spec.name)
        return result, self.client.server_time()

    def _options(self) -> dict[str, str]:
        return {"Sforce-Query-Options": f"batchSize={self.config.batch_size}"}

    def _batches(self, spec: SObject, first: tuple[dict[str, Any], datetime]
                 ) -> Iterator[tuple[list[dict[str, Any]], datetime]]:
        """(records, ceiling) per query batch, following `nextRecordsUrl` from the first answer."""
        result, ceiling = first
        while True:
            yield result.get("records") or [], ceiling
            next_url = result.get("nextRecordsUrl")
            if result.get("done", True) or not next_url:
                return
            result = self.client.call(f"query more {spec.name}", lambda sf, url=next_url: sf.query_more(
                url, identifier_is_url=True, headers=self._options()), sobject=spec.name)

    # ------------------------------------------------------------------ hard deletes (getDeleted)
    def _deleted_check_due(self, state: State) -> bool:
        checked = parse_time(state.deleted_checked)
        if checked is None:
            return True
        return (self.client.server_time() - checked).total_seconds() >= self.config.deleted_check_interval_seconds

    def _deleted(self, spec: SObject, state: State) -> Iterator[Page]:
        """Deletions since the last check. Records still in the recycle bin come back with their data
        (queryAll by id), the rest (hard-deleted or purged) as bare tombstones."""
        if not spec.deletable:
            state.deleted_checked = sf_time(self.client.server_time())
            return
        now = self.client.server_time().replace(second=0, microsecond=0)
        earliest = now - timedelta(days=DELETED_WINDOW_DAYS) + timedelta(minutes=1)
        checked = parse_time(state.deleted_checked)
        start = (checked - timedelta(minutes=1)) if checked else earliest
        if start < earliest:
            log.warning("%s: the last deleted-records check was more than %d days ago; deletions before %s "
                        "cannot be listed any more — run a full sync to reconcile", spec.name,
                        DELETED_WINDOW_DAYS, earliest.isoformat())
            start = earliest
        result = self.client.call(f"getDeleted {spec.name}",
                                  lambda sf: getattr(sf, spec.name).deleted(start, now), sobject=spec.name)
        ids = sorted({item["id"] for item in result.get("deletedRecords") or []})
        covered = result.get("latestDateCovered") or sf_time(now)
        for index in range(0, len(ids), ID_CHUNK):
            chunk = ids[index:index + ID_CHUNK]
            found = self._by_ids(spec, state, chunk)
            if index + ID_CHUNK >= len(ids):
                state.deleted_checked = covered
            yield self._page(spec, [found.get(rid) or {"Id": rid, "IsDeleted": True} for rid in chunk], state)
        state.deleted_checked = covered

    def _by_ids(self, spec: SObject, state: State, ids: list[str]) -> dict[str, dict[str, Any]]:
        fields = ", ".join(spec.select(state.optional or []))
        soql = format_soql("SELECT {:literal} FROM {:literal} WHERE Id IN {}", fields, spec.name, ids)
        result = self.client.call(f"query {spec.name} by id", lambda sf: sf.query(soql, include_deleted=True),
                                  sobject=spec.name)
        return {record["Id"]: record for record in result.get("records") or []}

    # ------------------------------------------------------------------ Bulk API 2.0
    def _bulk(self, spec: SObject, state: State) -> Iterator[Page]:
        """A first load as a Bulk API 2.0 queryAll job; the cursor keeps (job, locator, offset)."""
        if state.optional is None:
            self._optional(spec, state)
        types = self.field_types(spec.name)
        job = self._bulk_job(spec, state)
        if job is None:  # the job failed: read the same records through REST instead
            state.bulk = None
            yield from self._rest(spec, state)
            return
        try:
            yield from self._bulk_pages(spec, state, job, types)
        except BulkJobGone:
            log.warning("%s: Bulk API job %s expired; starting the first load again", spec.name, job)
            state.bulk = None
            yield from self._bulk(spec, state)

    def _bulk_pages(self, spec: SObject, state: State, job: str, types: dict[str, str]) -> Iterator[Page]:
        """Each results request (one locator) cut into pages of `batch_size`. The cursor after a page names
        the locator its rows came from and how many of them are committed; after the last row it is the
        incremental watermark."""
        size = self.config.batch_size
        ceiling = parse_time(state.bulk["ceiling"] if state.bulk else None) or self.client.server_time()
        while state.bulk is not None:
            locator, offset = state.bulk["locator"], state.bulk["offset"]
            text, following = self.client.call(f"bulk job {spec.name} results", lambda sf, loc=locator: bulk_results(
                sf, spec.name, job, loc, size * BULK_CHUNK_PAGES), sobject=spec.name)
            rows = list(csv_records(text, spec.name, types, self.config.api_version))[offset:]
            next_position = {**state.bulk, "locator": following, "offset": 0} if following else None
            if not rows:
                state.bulk = next_position
            for start in range(0, len(rows), size):
                batch = rows[start:start + size]
                state.advance(batch, ceiling)
                last = start + size >= len(rows)
                state.bulk = next_position if last else {**state.bulk, "offset": offset + start + len(batch)}
                yield self._page(spec, batch, state)

    def _bulk_job(self, spec: SObject, state: State) -> str | None:
        """The job to read: the cursor's, or a new one; waits until it is complete. None if it failed."""
        if state.bulk is None:
            soql = format_soql("SELECT {:literal} FROM {:literal}", ", ".join(spec.select(state.optional or [])),
                               spec.name)
            created = self.client.call(f"bulk job {spec.name} create", lambda sf: bulk_api(sf, spec.name).create_job(
                "queryAll", soql), sobject=spec.name)
            stamp = parse_time(created.get("createdDate")) or self.client.server_time()
            state.bulk = {"job": created["id"], "locator": "", "offset": 0, "ceiling": sf_time(stamp)}
        job = state.bulk["job"]
        deadline, wait = time.monotonic() + BULK_MAX_WAIT_SECONDS, 0.2
        while True:
            try:
                info = self.client.call(f"bulk job {spec.name} status", lambda sf: bulk_api(sf, spec.name).get_job(
                    job, True), sobject=spec.name)
            except BulkJobGone:
                state.bulk = None
                return self._bulk_job(spec, state)
            if info.get("state") == "JobComplete":
                return job
            if info.get("state") in ("Failed", "Aborted"):
                log.warning("%s: Bulk API job %s ended %s (%s); reading through REST instead", spec.name, job,
                            info.get("state"), info.get("errorMessage"))
                return None
            if time.monotonic() > deadline:
                raise UpstreamError("salesforce", f"{spec.name}: Bulk API job {job} did not complete within "
                                    f"{BULK_MAX_WAIT_SECONDS:.0f} s")
            time.sleep(wait)
            wait = min(wait * 2, 10.0)


def bulk_api(sf: Any, name: str) -> Any:
    """simple-salesforce's Bulk 2.0 client for `name`. Its public `query_all` creates a job and streams it to
    the end in one call; a resumable read needs the job id and locators, which only this layer exposes."""
    return getattr(sf.bulk2, name)._client


def bulk_results(sf: Any, name: str, job: str, locator: str, max_records: int) -> tuple[str, str]:
    """One page of a query job's CSV results and the next locator ('' at the end)."""
    result = bulk_api(sf, name).get_query_results(job, locator, max_records)
    return result["records"], result["locator"] or ""


def csv_records(text: str, name: str, types: dict[str, str], version: str) -> Iterator[dict[str, Any]]:
    """Bulk CSV rows as REST-shaped records: typed from describe, null for empty, REST datetime format."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if not header:
        return
    for row in reader:
        record: dict[str, Any] = {}
        for column, cell in zip(header, row, strict=False):
            record[column] = typed(cell, types.get(column, "string"))
        record["attributes"] = {"type": name, "url": f"/services/data/v{version}/sobjects/{name}/{record['Id']}"}
        yield record


def typed(cell: str, kind: str) -> Any:
    if cell == "":
        return None
    if kind == "boolean":
        return cell.lower() == "true"
    if kind == "int":
        return int(float(cell))
    if kind in NUMBER_TYPES:
        return float(cell)
    if kind == "datetime":
        parsed = parse_time(cell)
        return sf_time(parsed) if parsed else cell
    return cell


def to_source_record(name: str, record: dict[str, Any]) -> RemoteRecord:
    """A REST/Bulk record (or a bare `{"Id", "IsDeleted"}` tombstone) as a RemoteRecord."""
    if set(record) <= {"Id", "IsDeleted"}:
        return RemoteRecord(name, record["Id"], None, deleted=True)
    return RemoteRecord(name, record["Id"], record, created_at=parse_time(record.get("CreatedDate")),
                        modified_at=parse_time(record.get("LastModifiedDate") or record.get(CURSOR_FIELD)),
                        deleted=bool(record.get("IsDeleted")))
