"""CRM v3 object endpoints: list, get, create, update, archive, search, batch, contact merge.

Every object type gets its own literal routes (so the request log counts `GET /crm/v3/objects/contacts`
separately from `GET /crm/v3/objects/deals`); a generic `{objectType}` set afterwards serves the other
spellings HubSpot accepts (`contact`, `0-1`).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.common.emulator import json_response
from sandbox.hubspot.batch import batch_body, batch_inputs
from sandbox.hubspot.errors import HubSpotError, not_found, parse_json, validation
from sandbox.hubspot.objects import OBJECT_TYPES, ObjectType
from sandbox.hubspot.search import parse_request
from sandbox.hubspot.store import TypeStore
from sandbox.hubspot.util import encode_cursor, parse_bool, split_list

if TYPE_CHECKING:
    from sandbox.hubspot.emulator import HubSpotEmulator

LIST_MAX = 100
HISTORY_MAX = 50


def register(emu: HubSpotEmulator) -> None:
    for ot in OBJECT_TYPES.values():
        _register(emu, ot.name, ot)
    _register(emu, "{objectType}", None)


def _register(emu: HubSpotEmulator, segment: str, fixed: ObjectType | None) -> None:
    base = f"/crm/v3/objects/{segment}"

    def store_for(request: Request) -> TypeStore:
        if fixed is not None:
            return emu.store.types[fixed.name]
        return emu.type_store(request.path_params["objectType"])

    handlers = _Handlers(emu, store_for)
    emu.route(base, handlers.list_page, ["GET"])
    emu.route(base, handlers.create, ["POST"])
    emu.route(f"{base}/search", handlers.search, ["POST"], search=True)
    for action in ("read", "create", "update", "upsert", "archive"):
        emu.route(f"{base}/batch/{action}", getattr(handlers, f"batch_{action}"), ["POST"])
    if fixed is None or fixed.name == "contacts":
        emu.route(f"{base}/merge", handlers.merge, ["POST"])
    emu.route(f"{base}/{{objectId}}", handlers.get_one, ["GET"])
    emu.route(f"{base}/{{objectId}}", handlers.update, ["PATCH"])
    emu.route(f"{base}/{{objectId}}", handlers.archive, ["DELETE"])


def _limit(raw: str | None, default: int, maximum: int) -> int:
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"limit {raw!r} is not a number") from None
    if value < 1:
        raise validation(f"limit must be at least 1; got {value}")
    return min(value, maximum)


class _Handlers:
    def __init__(self, emu: HubSpotEmulator, store_for: Callable[[Request], TypeStore]) -> None:
        self.emu = emu
        self.store_for = store_for

    # ------------------------------------------------------------------ list / get
    async def list_page(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        query = request.query_params
        limit = _limit(query.get("limit"), 10, LIST_MAX)
        archived = parse_bool(query.get("archived"))
        requested = split_list(query.getlist("properties")) or None
        history = split_list(query.getlist("propertiesWithHistory"))
        if history:
            limit = min(limit, HISTORY_MAX)
        associations = emu.association_targets(split_list(query.getlist("associations")))
        after = query.get("after")
        with emu.lock:
            ids = ts.archived if archived else ts.active
            start = 0
            if after:
                cursor = emu.decode_after(after)
                start = bisect_left(ids, cursor)
                if not archived and emu.paging_faults_enabled():
                    returned = ts.record_by_num(ids[start - 1]) if 0 < start <= len(ids) else None
                    upcoming = ts.record_by_num(ids[start + limit]) if start + limit < len(ids) else None
                    if emu.paging_faults(ts, returned, upcoming):
                        ids = ts.active
                        start = bisect_left(ids, cursor)
            names = emu.property_names(ts, requested)
            records = ts.records
            results = [emu.render(ts, records[str(num)], names, history, associations)
                       for num in ids[start:start + limit]]
            body: dict[str, Any] = {"results": results}
            if start + limit < len(ids):
                token = encode_cursor(str(ids[start + limit]))
                body["paging"] = {"next": {"after": token,
                                           "link": f"{emu.base_url}/crm/v3/objects/{ts.ot.name}?after={token}"}}
        return json_response(body)

    async def get_one(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        object_id = request.path_params["objectId"]
        query = request.query_params
        id_property = query.get("idProperty")
        requested = split_list(query.getlist("properties")) or None
        history = split_list(query.getlist("propertiesWithHistory"))
        associations = emu.association_targets(split_list(query.getlist("associations")))
        with emu.lock:
            emu.store.check_id_property(ts, id_property)
            rec = emu.store.lookup(ts, object_id, id_property, archived=parse_bool(query.get("archived")))
            if rec is None:
                raise _missing(ts, object_id)
            body = emu.render(ts, rec, emu.property_names(ts, requested), history, associations)
        return json_response(body)

    # ------------------------------------------------------------------ single writes
    async def create(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected {\"properties\": {...}}")
        with emu.lock:
            values = emu.store.prepare(ts, body.get("properties"), creating=True)
            associations = emu.store.prepare_associations(ts.ot.name, body.get("associations"))
            rec = emu.store.create(ts, values, associations, emu.now_ms())
            out = emu.render_full(ts, rec)
        return json_response(out, 201)

    async def update(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        object_id = request.path_params["objectId"]
        id_property = request.query_params.get("idProperty")
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected {\"properties\": {...}}")
        with emu.lock:
            emu.store.check_id_property(ts, id_property)
            rec = emu.store.lookup(ts, object_id, id_property)
            if rec is None:
                raise _missing(ts, object_id)
            values = emu.store.prepare(ts, body.get("properties"), creating=False, rec=rec)
            emu.store.update(ts, rec, values, emu.now_ms())
            out = emu.render(ts, rec, emu.written_names(ts, values))
        return json_response(out)

    async def archive(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        with emu.lock:
            rec = emu.store.lookup(ts, request.path_params["objectId"])
            if rec is not None:
                emu.store.archive(ts, rec, emu.now_ms())
        return Response(status_code=204)

    async def merge(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        if ts.ot.name != "contacts":
            raise validation(f"Merging {ts.ot.name} is not supported by the emulator")
        body = parse_json(await request.body())
        if not isinstance(body, dict) or not body.get("primaryObjectId") or not body.get("objectIdToMerge"):
            raise validation("primaryObjectId and objectIdToMerge are required")
        with emu.lock:
            survivor = emu.store.merge(str(body["primaryObjectId"]), str(body["objectIdToMerge"]), emu.now_ms(),
                                       via="api")
            out = emu.render_full(ts, survivor)
        return json_response(out)

    # ------------------------------------------------------------------ search
    async def search(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        query = parse_request(parse_json(await request.body()), emu.search_limits)
        lag = emu.search_index_lag_seconds
        with emu.lock:
            matches = emu.searcher.matches(ts, query, lag)
            offset, limit = query.offset, query.limit
            if offset and emu.paging_faults_enabled():
                returned = matches[offset - 1] if offset <= len(matches) else None
                upcoming = matches[offset + limit] if offset + limit < len(matches) else None
                if emu.paging_faults(ts, returned, upcoming):
                    matches = emu.searcher.matches(ts, query, lag)
            names = emu.property_names(ts, query.properties)
            body: dict[str, Any] = {"total": len(matches),
                                    "results": [emu.render(ts, rec, names) for rec in matches[offset:offset + limit]]}
            if limit and offset + limit < len(matches):
                after = str(offset + limit)
                body["paging"] = {"next": {"after": after, "link": f"?after={after}"}}
        return json_response(body)

    # ------------------------------------------------------------------ batch
    async def batch_read(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        body = parse_json(await request.body())
        inputs = batch_inputs(body)
        history = body.get("propertiesWithHistory") or []
        if history and len(inputs) > HISTORY_MAX:
            raise validation(f"The maximum number of inputs supported in a batch request for property histories "
                             f"is {HISTORY_MAX}")
        archived = parse_bool(request.query_params.get("archived"))
        id_property = body.get("idProperty")
        started = emu.now_ms()
        with emu.lock:
            emu.store.check_id_property(ts, id_property)
            names = emu.property_names(ts, body.get("properties") or None)
            results, missing, seen = [], [], set()
            for item in inputs:
                object_id = str(item.get("id", ""))
                rec = emu.store.lookup(ts, object_id, id_property, archived=archived)
                if rec is None:
                    missing.append(object_id)
                elif rec.id not in seen:
                    seen.add(rec.id)
                    results.append(emu.render(ts, rec, names, history))
            errors = [_not_found_error(ts, missing)] if missing else []
            return batch_body(emu.now_ms(), results, errors, started, 200)

    async def batch_create(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        inputs = batch_inputs(parse_json(await request.body()))
        started = emu.now_ms()
        with emu.lock:
            prepared, errors = [], []
            claimed: dict[tuple[str, str], int] = {}
            for index, item in enumerate(inputs):
                try:
                    values = emu.store.prepare(ts, item.get("properties"), creating=True)
                    associations = emu.store.prepare_associations(ts.ot.name, item.get("associations"))
                    for name in ts.unique:
                        key = ts.index_key(values.get(name))
                        if key is not None:
                            if (name, key) in claimed:
                                raise validation(f"Duplicate {name} {key!r} in inputs {claimed[(name, key)]} and "
                                                 f"{index} of this batch")
                            claimed[(name, key)] = index
                except HubSpotError as error:
                    if error.status == 409:
                        raise   # a record that already exists rejects the whole batch, as HubSpot does
                    errors.append(error.standard_error())
                    continue
                prepared.append((values, associations))
            now = emu.now_ms()
            results = [emu.render_full(ts, emu.store.create(ts, values, associations, now))
                       for values, associations in prepared]
            return batch_body(emu.now_ms(), results, errors, started, 201)

    async def batch_update(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        inputs = batch_inputs(parse_json(await request.body()))
        _reject_duplicate_ids(inputs)
        started = emu.now_ms()
        with emu.lock:
            results, errors, missing = [], [], []
            now = emu.now_ms()
            for item in inputs:
                object_id = str(item.get("id", ""))
                id_property = item.get("idProperty")
                emu.store.check_id_property(ts, id_property)
                rec = emu.store.lookup(ts, object_id, id_property)
                if rec is None:
                    missing.append(object_id)
                    continue
                try:
                    values = emu.store.prepare(ts, item.get("properties"), creating=False, rec=rec)
                except HubSpotError as error:
                    errors.append(error.standard_error(ids=[object_id]))
                    continue
                emu.store.update(ts, rec, values, now)
                results.append(emu.render(ts, rec, emu.written_names(ts, values)))
            if missing:
                errors.insert(0, _not_found_error(ts, missing))
            return batch_body(emu.now_ms(), results, errors, started, 200)

    async def batch_upsert(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        inputs = batch_inputs(parse_json(await request.body()))
        _reject_duplicate_ids(inputs)
        started = emu.now_ms()
        with emu.lock:
            for item in inputs:
                emu.store.check_id_property(ts, item.get("idProperty"))
            results, errors = [], []
            now = emu.now_ms()
            for item in inputs:
                object_id = str(item.get("id", ""))
                id_property = item.get("idProperty") or None
                try:
                    rec = emu.store.lookup(ts, object_id, id_property)
                    if rec is not None:
                        values = emu.store.prepare(ts, item.get("properties"), creating=False, rec=rec)
                        emu.store.update(ts, rec, values, now)
                        new = False
                    elif id_property in (None, "hs_object_id"):
                        raise not_found(f"No {ts.ot.singular} with id {object_id} exists; upserting by record id "
                                        "only updates")
                    else:
                        raw = dict(item.get("properties") or {})
                        raw.setdefault(id_property, object_id)
                        values = emu.store.prepare(ts, raw, creating=True)
                        rec = emu.store.create(ts, values, [], now)
                        new = True
                except HubSpotError as error:
                    errors.append(error.standard_error(ids=[object_id]))
                    continue
                out = emu.render(ts, rec, emu.written_names(ts, values))
                out["new"] = new
                results.append(out)
            return batch_body(emu.now_ms(), results, errors, started, 200)

    async def batch_archive(self, request: Request) -> Response:
        emu = self.emu
        ts = self.store_for(request)
        inputs = batch_inputs(parse_json(await request.body()))
        with emu.lock:
            now = emu.now_ms()
            for item in inputs:
                rec = emu.store.lookup(ts, str(item.get("id", "")))
                if rec is not None:
                    emu.store.archive(ts, rec, now)
        return Response(status_code=204)


def _missing(ts: TypeStore, object_id: str) -> HubSpotError:
    return not_found(f"Object not found. No {ts.ot.singular} with id {object_id} exists.",
                     context={"id": [object_id]})


def _not_found_error(ts: TypeStore, ids: list[str]) -> dict[str, Any]:
    return {"status": "error", "category": "OBJECT_NOT_FOUND",
            "message": f"Could not get some {ts.ot.label} objects, they may be deleted or not exist. Check that ids "
                       "are valid.", "context": {"ids": ids}, "errors": [], "links": {}}


def _reject_duplicate_ids(inputs: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    duplicates = []
    for item in inputs:
        key = str(item.get("id", ""))
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    if duplicates:
        raise validation(f"Duplicate IDs found in batch input: {duplicates}. IDs must be unique")
