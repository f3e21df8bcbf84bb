"""REST resources: describe, sObject rows, upsert by external ID, getUpdated/getDeleted, limits,
sObject Collections (`/composite/sobjects`) and Composite (`/composite`)."""

from __future__ import annotations

import heapq
import re
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from sandbox.salesforce.errors import SFError, bad_request, not_found
from sandbox.salesforce.ids import to18
from sandbox.salesforce.routing import Ctx, Reply, RouteTable, flag, method_not_allowed
from sandbox.salesforce.schema import Field, SObjectType, describe_global, describe_sobject
from sandbox.salesforce.store import Record
from sandbox.salesforce.times import format_datetime, parse_datetime

if TYPE_CHECKING:
    from sandbox.salesforce.emulator import SalesforceEmulator

COLLECTION_LIMIT = 200
COMPOSITE_LIMIT = 25
COMPOSITE_QUERY_LIMIT = 5
UPDATED_WINDOW = timedelta(days=30)
DELETED_WINDOW = timedelta(days=15)
ID_LIMIT = 600_000
_ROLLED_BACK = {"statusCode": "ALL_OR_NONE_OPERATION_ROLLED_BACK", "message": "Record rolled back because not all "
                "records were valid and the request was using AllOrNone header", "fields": []}
_HALTED = [{"errorCode": "PROCESSING_HALTED", "message": "The transaction was rolled back since another operation "
            "in the same transaction failed."}]
_REFERENCE = re.compile(r"@\{([A-Za-z0-9_]+)((?:\.[A-Za-z0-9_]+|\[\d+\])*)\}")


class _MissingReference(Exception):
    pass


def _as_record_error(error: SFError) -> SFError:
    """Per-record wording of the 404s a single-record call gives for ids (collections answer 200)."""
    if error.code == "NOT_FOUND":
        return SFError(400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
    return error


class RestApi:
    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.emulator = emulator

    @property
    def store(self) -> Any:
        return self.emulator.store

    def register(self, table: RouteTable) -> None:
        table.add("GET", "", self.resources)
        table.add("GET", "/limits", self.limits)
        table.add("GET", "/sobjects", self.describe_global)
        table.add("GET", "/sobjects/{sobject}", self.basic_info)
        table.add("POST", "/sobjects/{sobject}", self.create)
        table.add("GET", "/sobjects/{sobject}/describe", self.describe)
        table.add("GET", "/sobjects/{sobject}/updated", self.updated, min_version=29.0)
        table.add("GET", "/sobjects/{sobject}/deleted", self.deleted, min_version=29.0)
        table.add("GET", "/sobjects/{sobject}/{id}", self.read)
        table.add("PATCH", "/sobjects/{sobject}/{id}", self.update)
        table.add("DELETE", "/sobjects/{sobject}/{id}", self.delete)
        table.add("POST", "/sobjects/{sobject}/{id}", self.create_by_id)
        table.add("GET", "/sobjects/{sobject}/{field}/{value}", self.read_by_external_id)
        table.add("PATCH", "/sobjects/{sobject}/{field}/{value}", self.upsert)
        table.add("DELETE", "/sobjects/{sobject}/{field}/{value}", self.delete_by_external_id)
        table.add("POST", "/composite", self.composite, min_version=34.0, composite=False)
        table.add("POST", "/composite/sobjects", self.collection_create, min_version=42.0)
        table.add("PATCH", "/composite/sobjects", self.collection_update, min_version=42.0)
        table.add("DELETE", "/composite/sobjects", self.collection_delete, min_version=42.0)
        table.add("GET POST", "/composite/sobjects/{sobject}", self.collection_retrieve, min_version=42.0)
        table.add("PATCH", "/composite/sobjects/{sobject}/{field}", self.collection_upsert, min_version=46.0)

    # ------------------------------------------------------------------------------------------ helpers
    def sobject(self, name: str) -> SObjectType:
        schema = self.emulator.schema
        found = schema.get(name) or next((s for s in schema.values() if s.name.lower() == name.lower()), None)
        if found is None:
            raise not_found()
        return found

    def record_id(self, sobject: SObjectType, value: str) -> str:
        rid = to18(value)
        if rid is None:
            raise SFError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {value}")
        if rid[:3] != sobject.prefix:
            raise SFError(400, "MALFORMED_ID", f"{sobject.label} ID: id value of incorrect type: {value}")
        return rid

    def shape(self, sobject: SObjectType, record: Record, version: str, fields: list[str] | None = None) -> dict:
        url = f"/services/data/v{version}/sobjects/{sobject.name}/{record['Id']}"
        out: dict[str, Any] = {"attributes": {"type": sobject.name, "url": url}}
        for name in fields if fields is not None else sobject.fields:
            out[name] = record[name]
        return out

    def field_list(self, sobject: SObjectType, text: str | None) -> list[str] | None:
        if text is None:
            return None
        names = []
        for part in (piece.strip() for piece in text.split(",")):
            if not part:
                continue
            spec = sobject.field(part)
            if spec is None:
                raise bad_request("INVALID_FIELD", f"No such column '{part}' on sobject of type {sobject.name}")
            names.append(spec.name)
        return names

    def external_field(self, sobject: SObjectType, name: str) -> Field:
        spec = sobject.field(name)
        if spec is None or not (spec.external_id or spec.id_lookup):
            raise SFError(404, "NOT_FOUND", f"Provided external ID field does not exist or is not accessible: {name}")
        return spec

    def matches(self, sobject: SObjectType, spec: Field, value: str) -> list[str]:
        if spec.name == "Id":
            rid = to18(value)
            record = self.store.tables[sobject.name].get(rid) if rid else None
            return [rid] if record is not None and not record.get("IsDeleted") else []
        return self.store.find_unique(sobject.name, spec.name, value)

    def urls(self, sobject: SObjectType, version: str, ids: list[str]) -> list[str]:
        return [f"/services/data/v{version}/sobjects/{sobject.name}/{rid}" for rid in ids]

    # ------------------------------------------------------------------------------------------ org
    def resources(self, ctx: Ctx) -> Reply:
        base = f"/services/data/v{ctx.version}"
        names = ("sobjects", "query", "queryAll", "limits", "composite", "jobs", "search", "tooling", "recent")
        return Reply(200, {name: f"{base}/{name}" for name in names})

    def limits(self, ctx: Ctx) -> Reply:
        emulator = self.emulator
        records = sum(len(table) for table in self.store.tables.values())
        jobs = len(emulator.bulk.jobs)
        data_max = 10240
        body = {
            "ConcurrentAsyncGetReportInstances": {"Max": 200, "Remaining": 200},
            "ConcurrentSyncReportRuns": {"Max": 20, "Remaining": 20},
            "DailyApiRequests": {"Max": emulator.daily_api_limit,
                                 "Remaining": max(0, emulator.daily_api_limit - emulator.api_used)},
            "DailyAsyncApexExecutions": {"Max": 250000, "Remaining": 250000},
            "DailyBulkApiBatches": {"Max": 15000, "Remaining": 15000},
            "DailyBulkV2QueryFileStorageMB": {"Max": 976562, "Remaining": 976562},
            "DailyBulkV2QueryJobs": {"Max": 10000, "Remaining": max(0, 10000 - jobs)},
            "DataStorageMB": {"Max": data_max, "Remaining": max(0, data_max - records * 2 // 1024)},
            "FileStorageMB": {"Max": 10240, "Remaining": 10240},
            "HourlyPublishedPlatformEvents": {"Max": 250000, "Remaining": 250000},
            "SingleEmail": {"Max": 5000, "Remaining": 5000},
        }
        return Reply(200, body)

    def describe_global(self, ctx: Ctx) -> Reply:
        return Reply(200, self.emulator.cached(("global", ctx.version),
                                               lambda: describe_global(self.emulator.schema, ctx.version)))

    def describe(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        return Reply(200, self.emulator.cached(("describe", sobject.name, ctx.version),
                                               lambda: describe_sobject(self.emulator.schema, sobject.name,
                                                                        ctx.version)))

    def basic_info(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        recent = heapq.nlargest(3, self.store.live(sobject.name), key=lambda record: record["LastModifiedDate"])
        name_field = next((spec.name for spec in sobject.fields.values() if spec.name_field), None)
        fields = ["Id", name_field] if name_field else ["Id"]
        return Reply(200, {"objectDescribe": sobject.global_entry(ctx.version),
                           "recentItems": [self.shape(sobject, record, ctx.version, fields) for record in recent]})

    # ------------------------------------------------------------------------------------------ rows
    def create(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        rid = self.store.create(sobject.name, ctx.json())
        return Reply(201, {"id": rid, "success": True, "errors": []})

    def create_by_id(self, ctx: Ctx) -> Reply:
        if ctx.params["id"].lower() != "id":
            raise method_not_allowed("POST", ["GET", "PATCH", "DELETE"])
        return self.create(ctx)

    def read(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        rid = self.record_id(sobject, ctx.params["id"])
        fields = self.field_list(sobject, ctx.query.get("fields"))
        record = self.store.tables[sobject.name].get(rid)
        if record is None or record.get("IsDeleted"):
            raise not_found()
        return Reply(200, self.shape(sobject, record, ctx.version, fields))

    def update(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        rid = self.record_id(sobject, ctx.params["id"])
        self.store.update(sobject.name, rid, ctx.json())
        return Reply(204)

    def delete(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        rid = self.record_id(sobject, ctx.params["id"])
        self.store.delete(sobject.name, rid)
        return Reply(204)

    def by_external_id(self, ctx: Ctx) -> tuple[SObjectType, list[str]]:
        """The sObject and the ids whose external id field holds the value (404 when none)."""
        sobject = self.sobject(ctx.params["sobject"])
        ids = self.matches(sobject, self.external_field(sobject, ctx.params["field"]), ctx.params["value"])
        if not ids:
            raise not_found()
        return sobject, ids

    def read_by_external_id(self, ctx: Ctx) -> Reply:
        sobject, ids = self.by_external_id(ctx)
        if len(ids) > 1:  # 300 Multiple Choices: the matching records' URLs
            return Reply(300, self.urls(sobject, ctx.version, ids))
        fields = self.field_list(sobject, ctx.query.get("fields"))
        return Reply(200, self.shape(sobject, self.store.tables[sobject.name][ids[0]], ctx.version, fields))

    def delete_by_external_id(self, ctx: Ctx) -> Reply:
        sobject, ids = self.by_external_id(ctx)
        if len(ids) > 1:
            return Reply(300, self.urls(sobject, ctx.version, ids))
        self.store.delete(sobject.name, ids[0])
        return Reply(204)

    def upsert(self, ctx: Ctx) -> Reply:
        """`PATCH /sobjects/{Obj}/{ExtField}/{value}`: 201 created / 200 updated (204 before v46) / 300."""
        sobject = self.sobject(ctx.params["sobject"])
        spec = self.external_field(sobject, ctx.params["field"])
        value = ctx.params["value"]
        body = ctx.json()
        if not isinstance(body, dict):
            raise bad_request("JSON_PARSER_ERROR", "Cannot deserialize instance of sObject from a non-object value")
        for key in body:
            if key.lower() in (spec.name.lower(), "id"):
                name = "Id" if key.lower() == "id" else spec.name
                raise bad_request("INVALID_FIELD", f"The {name} field should not be specified in the sobject data.")
        ids = self.matches(sobject, spec, value)
        if len(ids) > 1:
            return Reply(300, self.urls(sobject, ctx.version, ids))
        if ids:
            self.store.update(sobject.name, ids[0], body)
            if ctx.version_number < 46.0:
                return Reply(204)
            return Reply(200, {"id": ids[0], "success": True, "errors": [], "created": False})
        if flag(ctx.query.get("updateOnly", "false")) or spec.name == "Id":
            raise not_found()
        rid = self.store.create(sobject.name, {**body, spec.name: value})
        return Reply(201, {"id": rid, "success": True, "errors": [], "created": True})

    # ------------------------------------------------------------------------------------------ replication
    def _window(self, ctx: Ctx, span: timedelta) -> tuple[datetime, datetime, datetime]:
        values = []
        for name in ("start", "end"):
            text = ctx.query.get(name)
            if text is None:
                raise bad_request("MISSING_ARGUMENT", f"Missing required parameter: {name}")
            parsed = parse_datetime(text)
            if parsed is None:
                raise bad_request("INVALID_REPLICATION_DATE", f"Invalid {name} date: {text}")
            values.append(parsed.replace(second=0, microsecond=0))  # minute granularity
        start, end = values
        now = self.emulator.clock()
        if end < start:
            raise bad_request("INVALID_REPLICATION_DATE", "startDate must chronologically precede endDate")
        if start < now - span:
            days = span.days
            raise bad_request("INVALID_REPLICATION_DATE", f"startDate cannot be more than {days} days ago")
        return start, end, now

    def updated(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        start, end, now = self._window(ctx, UPDATED_WINDOW)
        table = self.store.tables[sobject.name]
        ids = [rid for rid in self.store.stamp_window(sobject.name, format_datetime(start), True,
                                                      format_datetime(end), False)
               if not table[rid].get("IsDeleted")]
        if len(ids) > ID_LIMIT:
            raise bad_request("EXCEEDED_ID_LIMIT", f"too many ids: more than {ID_LIMIT} records match; use a "
                              "smaller time window")
        covered = min(end, now.replace(second=0, microsecond=0))
        return Reply(200, {"ids": ids, "latestDateCovered": format_datetime(covered)})

    def deleted(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        start, end, now = self._window(ctx, DELETED_WINDOW)
        table = self.store.tables[sobject.name]
        records = []
        for rid in self.store.stamp_window(sobject.name, format_datetime(start), True, format_datetime(end), False):
            record = table[rid]
            if record.get("IsDeleted"):
                records.append({"deletedDate": record["SystemModstamp"], "id": rid})
        earliest = (now - DELETED_WINDOW).replace(second=0, microsecond=0)
        covered = min(end, now.replace(second=0, microsecond=0))
        return Reply(200, {"deletedRecords": records, "earliestDateAvailable": format_datetime(earliest),
                           "latestDateCovered": format_datetime(covered)})

    # ------------------------------------------------------------------------------------------ collections
    def _collection_body(self, ctx: Ctx) -> tuple[list[Any], bool]:
        body = ctx.json()
        if not isinstance(body, dict) or not isinstance(body.get("records"), list):
            raise bad_request("JSON_PARSER_ERROR", "The request body must be an object with a records array")
        records = body["records"]
        if len(records) > COLLECTION_LIMIT:
            raise bad_request("EXCEEDED_ID_LIMIT", f"Maximum number of records allowed in a collection request is "
                              f"{COLLECTION_LIMIT}")
        return records, flag(body.get("allOrNone", False))

    def _record_type(self, record: Any) -> SObjectType:
        attributes = record.get("attributes") if isinstance(record, dict) else None
        name = attributes.get("type") if isinstance(attributes, dict) else None
        if not name or not isinstance(name, str):
            raise bad_request("INVALID_TYPE", "Must send a concrete entity type.")
        try:
            return self.sobject(name)
        except SFError:
            raise bad_request("INVALID_TYPE", f"sObject type '{name}' is not supported.") from None

    def _run_collection(self, items: list[Any], all_or_none: bool, operation: Any, *,
                        failed_id: Any = None, upsert: bool = False) -> list[dict]:
        """Per-record results in input order; with allOrNone one failure rolls every record back."""
        store = self.store
        mark = store.begin() if all_or_none else None
        outcomes: list[dict | SFError] = []
        try:
            for item in items:
                try:
                    outcomes.append(operation(item))
                except SFError as error:
                    outcomes.append(_as_record_error(error))
        except BaseException:
            if mark is not None:
                store.rollback(mark)
            raise
        failed = any(isinstance(outcome, SFError) for outcome in outcomes)
        if mark is not None:
            if failed:
                store.rollback(mark)
            else:
                store.commit()
        results = []
        for item, outcome in zip(items, outcomes, strict=True):
            if isinstance(outcome, SFError):
                results.append(self._failure(outcome.record_error(), item, failed_id, upsert))
            elif all_or_none and failed:
                results.append(self._failure(dict(_ROLLED_BACK), item, failed_id, upsert))
            else:
                results.append(outcome)
        return results

    def collection_create(self, ctx: Ctx) -> Reply:
        records, all_or_none = self._collection_body(ctx)

        def create(record: Any) -> dict:
            sobject = self._record_type(record)
            return {"id": self.store.create(sobject.name, record), "success": True, "errors": []}
        return Reply(200, self._run_collection(records, all_or_none, create))

    def collection_update(self, ctx: Ctx) -> Reply:
        records, all_or_none = self._collection_body(ctx)

        def update(record: Any) -> dict:
            sobject = self._record_type(record)
            given = record.get("id", record.get("Id"))
            if not given:
                raise bad_request("MISSING_ARGUMENT", "Id not specified in an update call", [])
            rid = to18(given)
            if rid is None:
                raise bad_request("MALFORMED_ID", f"Record ID: id value of incorrect type: {given}", ["Id"])
            if rid[:3] != sobject.prefix:
                raise bad_request("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
            values = {key: value for key, value in record.items() if key.lower() != "id"}
            self.store.update(sobject.name, rid, values)
            return {"id": rid, "success": True, "errors": []}
        return Reply(200, self._run_collection(records, all_or_none, update))

    def collection_delete(self, ctx: Ctx) -> Reply:
        ids = [part for part in (ctx.query.get("ids") or "").split(",") if part]
        if not ids:
            raise bad_request("MISSING_ARGUMENT", "Missing required parameter: ids")
        if len(ids) > COLLECTION_LIMIT:
            raise bad_request("EXCEEDED_ID_LIMIT", f"Maximum number of records allowed in a collection request is "
                              f"{COLLECTION_LIMIT}")

        def delete(given: str) -> dict:
            rid = to18(given)
            if rid is None:
                raise bad_request("MALFORMED_ID", f"malformed id {given}", [])
            sobject = self.store.prefixes.get(rid[:3])
            if sobject is None or rid not in self.store.tables[sobject]:
                raise bad_request("INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", [])
            self.store.delete(sobject, rid)
            return {"id": rid, "success": True, "errors": []}
        return Reply(200, self._run_collection(ids, flag(ctx.query.get("allOrNone", "false")), delete,
                                               failed_id=lambda given: to18(given) or given))

    def collection_retrieve(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        if ctx.method == "POST":
            body = ctx.json()
            ids = body.get("ids") if isinstance(body, dict) else None
            field_names = body.get("fields") if isinstance(body, dict) else None
            field_text = ",".join(field_names) if isinstance(field_names, list) else None
            limit = 2000
        else:
            ids = [part for part in (ctx.query.get("ids") or "").split(",") if part]
            field_text = ctx.query.get("fields")
            limit = 800
        if not ids or not isinstance(ids, list):
            raise bad_request("MISSING_ARGUMENT", "Missing required parameter: ids")
        if not field_text:
            raise bad_request("MISSING_ARGUMENT", "Missing required parameter: fields")
        if len(ids) > limit:
            raise bad_request("EXCEEDED_ID_LIMIT", f"Maximum number of ids is {limit}")
        fields = self.field_list(sobject, field_text)
        table = self.store.tables[sobject.name]
        out = []
        for given in ids:
            rid = to18(given)
            if rid is None:
                raise bad_request("MALFORMED_ID", f"malformed id {given}")
            record = table.get(rid)
            out.append(None if record is None or record.get("IsDeleted")
                       else self.shape(sobject, record, ctx.version, fields))
        return Reply(200, out)

    def collection_upsert(self, ctx: Ctx) -> Reply:
        sobject = self.sobject(ctx.params["sobject"])
        spec = sobject.field(ctx.params["field"])
        if spec is None or not spec.external_id:
            name = ctx.params["field"]
            raise bad_request("INVALID_FIELD", f"Field name provided, {name} is not an External ID or indexed field "
                              f"for {sobject.name}")
        records, all_or_none = self._collection_body(ctx)
        seen: dict[str, int] = {}
        for record in records:
            value = self._external_value(record, spec)
            if isinstance(value, str):
                seen[value.casefold()] = seen.get(value.casefold(), 0) + 1

        def upsert(record: Any) -> dict:
            record_type = self._record_type(record)
            if record_type.name != sobject.name:
                raise bad_request("INVALID_TYPE", f"Records must all be of type {sobject.name}")
            value = self._external_value(record, spec)
            if not isinstance(value, str) or not value:
                raise bad_request("MISSING_ARGUMENT", f"{spec.name} not specified", [])
            if seen.get(value.casefold(), 0) > 1:
                raise bad_request("DUPLICATE_EXTERNAL_ID", f"Duplicate external id specified: {value}",
                                  [spec.name])
            ids = self.store.find_unique(sobject.name, spec.name, value)
            if len(ids) > 1:
                raise bad_request("DUPLICATE_EXTERNAL_ID", f"more than one record found for external id field: "
                                  f"{ids}", [spec.name])
            if ids:
                values = {key: item for key, item in record.items() if key.lower() != spec.name.lower()}
                self.store.update(sobject.name, ids[0], values)
                return {"id": ids[0], "success": True, "errors": [], "created": False}
            return {"id": self.store.create(sobject.name, record), "success": True, "errors": [],
                    "created": True}
        return Reply(200, self._run_collection(records, all_or_none, upsert, upsert=True))

    @staticmethod
    def _failure(error: dict, item: Any, failed_id: Any, upsert: bool) -> dict:
        result: dict[str, Any] = {"id": failed_id(item)} if failed_id is not None else {}
        result.update({"success": False, "errors": [error]})
        if upsert:
            result["created"] = False
        return result

    @staticmethod
    def _external_value(record: Any, spec: Field) -> Any:
        if not isinstance(record, dict):
            return None
        return next((value for key, value in record.items() if key.lower() == spec.name.lower()), None)

    # ------------------------------------------------------------------------------------------ composite
    def composite(self, ctx: Ctx) -> Reply:
        body = ctx.json()
        requests = body.get("compositeRequest") if isinstance(body, dict) else None
        if not isinstance(requests, list) or not requests:
            raise bad_request("JSON_PARSER_ERROR", "compositeRequest is required and must be a non-empty array")
        if len(requests) > COMPOSITE_LIMIT:
            raise bad_request("INVALID_API_INPUT", f"Composite request cannot have more than {COMPOSITE_LIMIT} "
                              "subrequests")
        names: set[str] = set()
        heavy = 0
        for sub in requests:
            if not isinstance(sub, dict) or not all(isinstance(sub.get(key), str) for key in
                                                    ("method", "url", "referenceId")):
                raise bad_request("INVALID_API_INPUT", "Each subrequest needs method, url and referenceId")
            if sub["referenceId"] in names or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", sub["referenceId"]):
                raise bad_request("INVALID_API_INPUT", f"Invalid or duplicate referenceId: {sub['referenceId']}")
            names.add(sub["referenceId"])
            if re.search(r"/(query|queryAll|composite/sobjects)\b", sub["url"]):
                heavy += 1
        if heavy > COMPOSITE_QUERY_LIMIT:
            raise bad_request("INVALID_API_INPUT", f"A composite request can contain at most {COMPOSITE_QUERY_LIMIT} "
                              "query or sObject Collections subrequests")
        all_or_none = flag(body.get("allOrNone", False))
        store = self.store
        mark = store.begin() if all_or_none else None
        results: dict[str, Any] = {}
        responses: list[dict] = []
        failed: int | None = None
        try:
            for index, sub in enumerate(requests):
                reference = sub["referenceId"]
                try:
                    url = self._substitute(sub["url"], results, text_only=True)
                    sub_body = self._substitute(sub.get("body"), results)
                except _MissingReference as missing:
                    reply = Reply(400, [{"errorCode": "PROCESSING_HALTED", "message": f"Invalid reference specified. "
                                         f"No value for {missing} found. Provided referenceId must exist in the "
                                         "composite request and must have succeeded."}])
                else:
                    sub_headers = sub.get("httpHeaders")
                    reply = self.emulator.dispatch_internal(sub["method"].upper(), url, sub_body,
                                                            sub_headers if isinstance(sub_headers, dict) else {})
                headers = dict(reply.headers)
                if reply.status == 201 and isinstance(reply.body, dict) and "id" in reply.body:
                    kind = store.prefixes.get(str(reply.body["id"])[:3], "")
                    headers["Location"] = f"/services/data/v{ctx.version}/sobjects/{kind}/{reply.body['id']}"
                headers.pop("Sforce-Limit-Info", None)
                responses.append({"body": reply.body, "httpHeaders": headers, "httpStatusCode": reply.status,
                                  "referenceId": reference})
                if reply.status < 400:
                    results[reference] = reply.body
                elif all_or_none:
                    failed = index
                    break
        except BaseException:
            if mark is not None:
                store.rollback(mark)
            raise
        if mark is not None:
            if failed is None:
                store.commit()
            else:
                store.rollback(mark)
                for index, response in enumerate(responses):
                    if index != failed:
                        response.update({"body": _HALTED, "httpHeaders": {}, "httpStatusCode": 400})
                for sub in requests[len(responses):]:
                    responses.append({"body": _HALTED, "httpHeaders": {}, "httpStatusCode": 400,
                                      "referenceId": sub["referenceId"]})
        return Reply(200, {"compositeResponse": responses})

    def _substitute(self, value: Any, results: dict[str, Any], text_only: bool = False) -> Any:
        if isinstance(value, str):
            whole = _REFERENCE.fullmatch(value)
            if whole and not text_only:
                return self._resolve(whole, results)
            return _REFERENCE.sub(lambda match: str(self._resolve(match, results)), value)
        if isinstance(value, dict):
            return {key: self._substitute(item, results) for key, item in value.items()}
        if isinstance(value, list):
            return [self._substitute(item, results) for item in value]
        return value

    @staticmethod
    def _resolve(match: re.Match[str], results: dict[str, Any]) -> Any:
        name, path = match.group(1), match.group(2)
        if name not in results:
            raise _MissingReference(f"{name}{path}")
        value = results[name]
        for key, index in re.findall(r"\.([A-Za-z0-9_]+)|\[(\d+)\]", path):
            try:
                value = value[int(index)] if index else value[key]
            except (KeyError, IndexError, TypeError):
                raise _MissingReference(f"{name}{path}") from None
        return value


def split_subrequest_url(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return unquote(parts.path), dict(parse_qsl(parts.query, keep_blank_values=True))
