"""Reading one sObject: REST queryAll pages ordered by SystemModstamp, Bulk API 2.0 for big first loads,
getDeleted windows for hard deletes — with a cursor that survives a kill at any point (the watermark it
holds is described in `connectors.salesforce.cursor`).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from typing import Any

from simple_salesforce.format import format_soql

from connectors.base import Page, RemoteRecord
from connectors.errors import UpstreamError
from connectors.salesforce.client import BulkJobGone, QueryLocatorExpired, SalesforceClient, SalesforceConfig
from connectors.salesforce.cursor import State, parse_time, sf_time
from connectors.salesforce.objects import CURSOR_FIELD, DELETED_WINDOW_DAYS, SObject, sobject

log = logging.getLogger("journeyhub.connectors.salesforce")

MAX_RESTARTS = 3                 # INVALID_QUERY_LOCATOR restarts per read before giving up
ID_CHUNK = 300                   # ids per `Id IN (…)` query (keeps the GET URL well under 16 KB)
BULK_CHUNK_PAGES = 25            # a Bulk results request fetches this many pages' worth of rows
BULK_MAX_WAIT_SECONDS = 3600.0
NUMBER_TYPES = frozenset({"double", "currency", "percent"})


# ------------------------------------------------------------------------------------------------ reader
class Reader:
    """Pages of one sObject; one instance per connector, safe to serve several reads at once from different
    threads: what one read has in progress (its page counter, the cursor last handed out) lives in the
    `ObjectRead` made for it, and the client below is shared (`SalesforceClient`)."""

    def __init__(self, client: SalesforceClient, config: SalesforceConfig) -> None:
        self.client = client
        self.config = config

    def read(self, object_type: str, cursor: str | None, full: bool = False,
             fields: Sequence[str] | None = None) -> Iterator[Page]:
        yield from ObjectRead(self.client, self.config).pages(object_type, cursor, full, fields)


class ObjectRead:
    """One read of one sObject: its requests since the last page and the cursor it last handed out."""

    def __init__(self, client: SalesforceClient, config: SalesforceConfig) -> None:
        self.client = client
        self.config = config
        self._calls = client.meter.pages()  # the requests of the page being read
        self._last: str | None = None     # the cursor of the last page handed out

    # ------------------------------------------------------------------ entry point
    def pages(self, object_type: str, cursor: str | None, full: bool = False,
              fields: Sequence[str] | None = None) -> Iterator[Page]:
        spec = sobject(object_type)
        start = None if full else cursor
        state = State.load(start)
        self._calls, self._last = self.client.meter.pages(), start
        select = spec.select(fields)
        if state.bulk is not None:
            yield from self._bulk(spec, state, select)
        elif not state.started:
            yield from self._first_load(spec, state, select)
        else:
            yield from self._rest(spec, state, select)
            if self._deleted_check_due(state):
                yield from self._deleted(spec, state, select)
        if state.bookkeeping() != State.load(self._last).bookkeeping():
            yield self._page(spec, [], state)  # no records, but a deleted check to remember

    def _first_load(self, spec: SObject, state: State, select: list[str]) -> Iterator[Page]:
        """The first REST batch's `totalSize` decides: page on through REST, or drop the query (its locator
        expires by itself) and read the object through a Bulk API 2.0 job. No separate COUNT() call."""
        first = self._query(spec, self._soql(spec, state, select))
        state.deleted_checked = sf_time(first[1] - timedelta(minutes=1))
        total = int(first[0].get("totalSize") or 0)
        if spec.bulk and total > self.config.bulk_threshold:
            log.info("first load of %s (%d records) through Bulk API 2.0", spec.name, total)
            yield from self._bulk(spec, state, select)
        else:
            yield from self._rest(spec, state, select, first)

    # ------------------------------------------------------------------ pages
    def _page(self, spec: SObject, records: list[dict[str, Any]], state: State) -> Page:
        """A page of raw records with the cursor that follows them and the calls made since the last page."""
        self._last = state.dump()
        return Page(spec.name, [to_source_record(spec.name, record) for record in records], self._last,
                    api_calls=self._calls.take())

    def field_types(self, name: str, *, fresh: bool = False) -> dict[str, str]:
        """{field: describe type} for `name` (Bulk CSV cells are typed back with it)."""
        return {field: entry["type"] for field, entry in self.client.describe(name, fresh=fresh).items()}

    # ------------------------------------------------------------------ REST queryAll
    def _soql(self, spec: SObject, state: State, select: list[str]) -> str:
        """`SELECT … FROM X [WHERE SystemModstamp >= since - lookback] ORDER BY SystemModstamp, Id`."""
        text = format_soql("SELECT {:literal} FROM {:literal}", ", ".join(select), spec.name)
        bound = state.lower_bound()
        if bound is not None:
            text += format_soql(" WHERE {:literal} >= {}", CURSOR_FIELD, bound)
        return text + format_soql(" ORDER BY {:literal}, Id", CURSOR_FIELD)

    def _rest(self, spec: SObject, state: State, select: list[str],
              first: tuple[dict[str, Any], datetime] | None = None) -> Iterator[Page]:
        """queryAll from the watermark. An expired query locator restarts the query from the watermark of
        the pages handed out so far (they are committed before the next one is asked for). A field the org
        does not have is a `FieldNotFound` (the hub describes the org again and reads without it)."""
        restarts = 0
        while True:
            try:
                for batch, ceiling in self._batches(spec, first or self._query(spec, self._soql(spec, state, select))):
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

    def _deleted(self, spec: SObject, state: State, select: list[str]) -> Iterator[Page]:
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
            found = self._by_ids(spec, select, chunk)
            if index + ID_CHUNK >= len(ids):
                state.deleted_checked = covered
            yield self._page(spec, [found.get(rid) or {"Id": rid, "IsDeleted": True} for rid in chunk], state)
        state.deleted_checked = covered

    def _by_ids(self, spec: SObject, select: list[str], ids: list[str]) -> dict[str, dict[str, Any]]:
        soql = format_soql("SELECT {:literal} FROM {:literal} WHERE Id IN {}", ", ".join(select), spec.name, ids)
        result = self.client.call(f"query {spec.name} by id", lambda sf: sf.query(soql, include_deleted=True),
                                  sobject=spec.name)
        return {record["Id"]: record for record in result.get("records") or []}

    # ------------------------------------------------------------------ Bulk API 2.0
    def _bulk(self, spec: SObject, state: State, select: list[str]) -> Iterator[Page]:
        """A first load as a Bulk API 2.0 queryAll job; the cursor keeps (job, locator, offset)."""
        types = self.field_types(spec.name)
        job = self._bulk_job(spec, state, select)
        if job is None:  # the job failed: read the same records through REST instead
            state.bulk = None
            yield from self._rest(spec, state, select)
            return
        try:
            yield from self._bulk_pages(spec, state, job, types)
        except BulkJobGone:
            log.warning("%s: Bulk API job %s expired; starting the first load again", spec.name, job)
            state.bulk = None
            yield from self._bulk(spec, state, select)

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

    def _bulk_job(self, spec: SObject, state: State, select: list[str]) -> str | None:
        """The job to read: the cursor's, or a new one; waits until it is complete. None if it failed."""
        if state.bulk is None:
            soql = format_soql("SELECT {:literal} FROM {:literal}", ", ".join(select), spec.name)
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
                return self._bulk_job(spec, state, select)
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
