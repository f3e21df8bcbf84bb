"""Bulk API 2.0 query jobs (`/services/data/vXX.X/jobs/query`).

A job moves UploadComplete → InProgress → JobComplete as time passes (`bulk_poll_delay_seconds` from
creation to completion; half of it in UploadComplete). Its rows are computed once, when it completes —
the results file is a snapshot, unlike REST query locators. Results are CSV: a header row, every value
quoted, null as an empty unquoted field, datetimes as `2024-02-01T10:00:00.000Z`; each page carries
`Sforce-NumberOfRecords` and `Sforce-Locator` (the next page's locator, or the literal `null`).
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sandbox.salesforce import soql
from sandbox.salesforce.errors import SFError, bad_request, not_found
from sandbox.salesforce.ids import BULK_JOB_PREFIX, make_id
from sandbox.salesforce.routing import Ctx, Reply, RouteTable
from sandbox.salesforce.times import bulk_datetime

if TYPE_CHECKING:
    from sandbox.salesforce.emulator import SalesforceEmulator

DELIMITERS = {"COMMA": ",", "TAB": "\t", "PIPE": "|", "SEMICOLON": ";", "CARET": "^", "BACKQUOTE": "`"}
LINE_ENDINGS = {"LF": "\n", "CRLF": "\r\n"}
TERMINAL = ("JobComplete", "Aborted", "Failed")


@dataclass
class Job:
    id: str
    operation: str
    sobject: str
    query: soql.Query
    version: str
    created_date: str
    created_at: float
    line_ending: str
    delimiter: str
    state: str = "UploadComplete"
    modstamp: str = ""
    lines: list[str] | None = None
    header: str = ""
    processing_ms: int = 0
    error_message: str | None = None


def _cell(value: Any, kind: str) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif kind == "datetime":
        text = bulk_datetime(value)
    else:
        text = str(value)
    return '"' + text.replace('"', '""') + '"'


def _encode_locator(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode().rstrip("=")


def _decode_locator(locator: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(locator + "=" * (-len(locator) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        return None
    return int(text) if text.isdigit() else None


class BulkApi:
    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.emulator = emulator
        self.jobs: dict[str, Job] = {}
        self._counter = 0

    def register(self, table: RouteTable) -> None:
        table.add("POST", "/jobs/query", self.create, min_version=47.0, composite=False)
        table.add("GET", "/jobs/query", self.list, min_version=47.0, composite=False)
        table.add("GET", "/jobs/query/{job}", self.info, min_version=47.0, composite=False)
        table.add("PATCH", "/jobs/query/{job}", self.abort, min_version=47.0, composite=False)
        table.add("DELETE", "/jobs/query/{job}", self.delete, min_version=47.0, composite=False)
        table.add("GET", "/jobs/query/{job}/results", self.results, min_version=47.0, composite=False)

    # ------------------------------------------------------------------------------------------ job state
    def advance(self, job: Job) -> None:
        if job.state in TERMINAL:
            return
        delay = self.emulator.bulk_poll_delay_seconds
        elapsed = time.monotonic() - job.created_at
        if elapsed >= delay and self.emulator.faults.vendor("bulk_query_failure"):
            job.state = "Failed"
            job.error_message = "InternalServerError : the emulator's bulk_query_failure fault is on"
            job.modstamp = self.emulator.store.now()
        elif elapsed >= delay:
            started = time.perf_counter()
            rows = soql.execute(job.query, self.emulator.store, include_deleted=job.operation == "queryAll")
            getters = [(soql.field_getter(ref, self.emulator.store), ref.kind) for ref in job.query.columns]
            ending, delimiter = job.line_ending, job.delimiter
            job.header = delimiter.join(_cell(ref.name, "text") for ref in job.query.columns) + ending
            job.lines = [delimiter.join([_cell(get(row), kind) for get, kind in getters]) + ending for row in rows]
            job.state = "JobComplete"
            job.processing_ms = int((time.perf_counter() - started) * 1000)
            job.modstamp = self.emulator.store.now()
        elif elapsed >= delay / 2:
            job.state = "InProgress"

    def describe(self, job: Job, full: bool) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": job.id, "operation": job.operation, "object": job.sobject,
            "createdById": self.emulator.store.user_id, "createdDate": job.created_date,
            "systemModstamp": job.modstamp or job.created_date, "state": job.state,
            "concurrencyMode": "Parallel", "contentType": "CSV", "apiVersion": float(job.version),
            "lineEnding": "CRLF" if job.line_ending == "\r\n" else "LF",
            "columnDelimiter": next(name for name, char in DELIMITERS.items() if char == job.delimiter),
        }
        if full:
            body.update({"jobType": "V2Query", "numberRecordsProcessed": len(job.lines or ()), "retries": 0,
                         "totalProcessingTime": job.processing_ms, "isPkChunkingSupported": True})
            if job.state == "Failed":
                body["errorMessage"] = job.error_message
        return body

    def job(self, ctx: Ctx) -> Job:
        job = self.jobs.get(ctx.params["job"])
        if job is None:
            raise not_found()
        return job

    # ------------------------------------------------------------------------------------------ endpoints
    def create(self, ctx: Ctx) -> Reply:
        body = ctx.json()
        if not isinstance(body, dict):
            raise bad_request("INVALIDJOB", "The request body must be a JSON object")
        operation = body.get("operation")
        if operation not in ("query", "queryAll"):
            raise bad_request("INVALIDJOB", f"InvalidJob : Invalid operation: {operation}")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            raise bad_request("INVALIDJOB", "InvalidJob : The query is required")
        delimiter = DELIMITERS.get(body.get("columnDelimiter", "COMMA"))
        ending = LINE_ENDINGS.get(body.get("lineEnding", "LF"))
        if delimiter is None or ending is None or body.get("contentType", "CSV") != "CSV":
            raise bad_request("INVALIDJOB", "InvalidJob : columnDelimiter, lineEnding or contentType is invalid")
        try:
            query = self.emulator.query_api.parse(text)
        except SFError as error:
            raise bad_request("INVALIDJOB", f"{error.code}: {error.message.strip()}") from None
        if query.count_only or query.aggregate is not None:
            raise bad_request("INVALIDJOB", "InvalidJob : Aggregate queries are not supported by Bulk API 2.0")
        if query.offset:
            raise bad_request("INVALIDJOB", "InvalidJob : OFFSET is not supported by Bulk API 2.0")
        self._counter += 1
        now = self.emulator.store.now()
        job = Job(make_id(BULK_JOB_PREFIX, self._counter, pod="Hb"), operation, query.sobject.name, query,
                  ctx.version, now, time.monotonic(), ending, delimiter, modstamp=now)
        self.jobs[job.id] = job
        return Reply(200, self.describe(job, full=False))

    def list(self, ctx: Ctx) -> Reply:
        for job in self.jobs.values():
            self.advance(job)
        return Reply(200, {"done": True, "records": [self.describe(job, full=False) for job in self.jobs.values()],
                           "nextRecordsUrl": None})

    def info(self, ctx: Ctx) -> Reply:
        job = self.job(ctx)
        self.advance(job)
        return Reply(200, self.describe(job, full=True))

    def abort(self, ctx: Ctx) -> Reply:
        job = self.job(ctx)
        self.advance(job)
        body = ctx.json()
        if not isinstance(body, dict) or body.get("state") != "Aborted":
            raise bad_request("INVALIDJOBSTATE", "A query job can only be set to state Aborted")
        if job.state in TERMINAL:
            raise bad_request("INVALIDJOBSTATE", f"Aborting already {job.state} Job not allowed")
        job.state = "Aborted"
        job.modstamp = self.emulator.store.now()
        return Reply(200, self.describe(job, full=False))

    def delete(self, ctx: Ctx) -> Reply:
        job = self.job(ctx)
        self.advance(job)
        if job.state == "InProgress":
            raise bad_request("INVALIDJOBSTATE", "Deleting a job in progress is not allowed; abort it first")
        del self.jobs[job.id]
        return Reply(204)

    def results(self, ctx: Ctx) -> Reply:
        job = self.job(ctx)
        self.advance(job)
        if ctx.version != job.version:
            raise SFError(409, "INVALIDVERSION", f"The job was created with API version {job.version}; request "
                          "its results with the same version")
        if job.state != "JobComplete" or job.lines is None:
            raise bad_request("JOB_NOT_COMPLETE", f"The job is {job.state}; results are available once it is "
                              "JobComplete")
        offset = 0
        locator = ctx.query.get("locator")
        if locator:
            decoded = _decode_locator(locator)
            if decoded is None or decoded > len(job.lines):
                raise bad_request("INVALID_LOCATOR", f"Invalid locator: {locator}")
            offset = decoded
        limit = len(job.lines)
        if ctx.query.get("maxRecords"):
            text = ctx.query["maxRecords"]
            if not text.isdigit() or int(text) < 1:
                raise bad_request("INVALID_PARAMETER_VALUE", f"maxRecords must be a positive integer: {text}")
            limit = int(text)
        page = job.lines[offset:offset + limit]
        end = offset + len(page)
        raw = (job.header + "".join(page)).encode()
        headers = {"Sforce-NumberOfRecords": str(len(page)),
                   "Sforce-Locator": _encode_locator(end) if end < len(job.lines) else "null"}
        return Reply(200, raw=raw, headers=headers, media_type="text/csv")
