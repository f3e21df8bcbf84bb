"""Associations v4: single labelled/default PUT, list, DELETE, and the batch endpoints.

Associations are stored in both directions (the reverse uses HubSpot's reverse type id), so whatever is
written from one side is read from the other.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.common.emulator import json_response
from sandbox.hubspot.batch import batch_body, batch_inputs
from sandbox.hubspot.errors import HubSpotError, not_found, parse_json, validation
from sandbox.hubspot.objects import ASSOCIATION_TYPES, DEFAULT_TYPES, AssociationType
from sandbox.hubspot.store import TypeStore
from sandbox.hubspot.util import encode_cursor

if TYPE_CHECKING:
    from sandbox.hubspot.emulator import HubSpotEmulator

PAGE_MAX = 500
PairWriter = Callable[[TypeStore, TypeStore, dict[str, Any], str, str], list[Any]]
BATCH_MAX = 1000


def register(emu: HubSpotEmulator) -> None:
    handlers = _Handlers(emu)
    one = "/crm/v4/objects/{objectType}/{objectId}/associations"
    emu.route(f"{one}/default/{{toObjectType}}/{{toObjectId}}", handlers.put_default, ["PUT"])
    emu.route(f"{one}/{{toObjectType}}/{{toObjectId}}", handlers.put_labelled, ["PUT"])
    emu.route(f"{one}/{{toObjectType}}/{{toObjectId}}", handlers.delete, ["DELETE"])
    emu.route(f"{one}/{{toObjectType}}", handlers.list_page, ["GET"])
    batch = "/crm/v4/associations/{fromObjectType}/{toObjectType}/batch"
    emu.route(f"{batch}/read", handlers.batch_read, ["POST"])
    emu.route(f"{batch}/create", handlers.batch_create, ["POST"])
    emu.route(f"{batch}/associate/default", handlers.batch_default, ["POST"])
    emu.route(f"{batch}/archive", handlers.batch_archive, ["POST"])
    emu.route(f"{batch}/labels/archive", handlers.batch_labels_archive, ["POST"])


def _spec(atype: AssociationType) -> dict[str, Any]:
    return {"associationCategory": atype.category, "associationTypeId": atype.type_id}


def _with_label(type_id: int) -> dict[str, Any]:
    atype = ASSOCIATION_TYPES[type_id]
    return {"category": atype.category, "typeId": type_id, "label": atype.label}


class _Handlers:
    def __init__(self, emu: HubSpotEmulator) -> None:
        self.emu = emu

    def _pair(self, request: Request, from_key: str = "objectType") -> tuple[TypeStore, TypeStore]:
        return (self.emu.type_store(request.path_params[from_key]),
                self.emu.type_store(request.path_params["toObjectType"]))

    def _existing(self, ts: TypeStore, object_id: str) -> str:
        rec = self.emu.store.lookup(ts, str(object_id))
        if rec is None:
            raise not_found(f"No {ts.ot.singular} with id {object_id} exists.", context={"id": [str(object_id)]})
        return rec.id

    def _default_type(self, source: TypeStore, target: TypeStore) -> AssociationType:
        type_id = DEFAULT_TYPES.get((source.ot.name, target.ot.name))
        if type_id is None:
            raise validation(f"There is no default association type between {source.ot.name} and "
                             f"{target.ot.name}")
        return ASSOCIATION_TYPES[type_id]

    def _default_results(self, source: TypeStore, target: TypeStore, from_id: str,
                         to_id: str) -> list[dict[str, Any]]:
        atype = self._default_type(source, target)
        self.emu.store.associate(source.ot.name, from_id, to_id, atype)
        reverse = ASSOCIATION_TYPES[atype.reverse_id]
        return [{"from": {"id": from_id}, "to": {"id": to_id}, "associationSpec": _spec(atype)},
                {"from": {"id": to_id}, "to": {"id": from_id}, "associationSpec": _spec(reverse)}]

    def _labels_pair(self, source: TypeStore, target: TypeStore, from_id: str, to_id: str,
                     atypes: list[AssociationType]) -> dict[str, Any]:
        for atype in atypes:
            self.emu.store.associate(source.ot.name, from_id, to_id, atype)
        current = self.emu.store.assoc.targets(source.ot.name, from_id, target.ot.name).get(to_id, [])
        labels = [ASSOCIATION_TYPES[t].label for t in current if ASSOCIATION_TYPES[t].label]
        return {"fromObjectTypeId": source.ot.type_id, "fromObjectId": from_id,
                "toObjectTypeId": target.ot.type_id, "toObjectId": to_id, "labels": labels}

    def _specs(self, source: TypeStore, target: TypeStore, raw: Any) -> list[AssociationType]:
        if not isinstance(raw, list) or not raw:
            raise validation("Expected a list of association types [{associationCategory, associationTypeId}]")
        return [self.emu.store.association_spec(source.ot.name, target.ot.name, spec) for spec in raw]

    # ------------------------------------------------------------------ single
    async def put_default(self, request: Request) -> Response:
        emu = self.emu
        source, target = self._pair(request)
        started = emu.now_ms()
        with emu.lock:
            from_id = self._existing(source, request.path_params["objectId"])
            to_id = self._existing(target, request.path_params["toObjectId"])
            results = self._default_results(source, target, from_id, to_id)
            return batch_body(emu.now_ms(), results, [], started, 200)

    async def put_labelled(self, request: Request) -> Response:
        emu = self.emu
        source, target = self._pair(request)
        body = parse_json(await request.body())
        with emu.lock:
            atypes = self._specs(source, target, body)
            from_id = self._existing(source, request.path_params["objectId"])
            to_id = self._existing(target, request.path_params["toObjectId"])
            out = self._labels_pair(source, target, from_id, to_id, atypes)
        return json_response(out, 201)

    async def delete(self, request: Request) -> Response:
        emu = self.emu
        source, target = self._pair(request)
        with emu.lock:
            emu.store.dissociate(source.ot.name, request.path_params["objectId"], target.ot.name,
                                 request.path_params["toObjectId"])
        return Response(status_code=204)

    async def list_page(self, request: Request) -> Response:
        emu = self.emu
        source, target = self._pair(request)
        query = request.query_params
        limit = _page_limit(query.get("limit"))
        with emu.lock:
            from_id = self._existing(source, request.path_params["objectId"])
            items, next_after = self._page(source, target, from_id, query.get("after"), limit)
        body: dict[str, Any] = {"results": items}
        if next_after is not None:
            link = (f"{emu.base_url}/crm/v4/objects/{source.ot.name}/{from_id}/associations/{target.ot.name}"
                    f"?after={next_after}")
            body["paging"] = {"next": {"after": next_after, "link": link}}
        return json_response(body)

    def _page(self, source: TypeStore, target: TypeStore, from_id: str, after: str | None,
              limit: int) -> tuple[list[dict[str, Any]], str | None]:
        targets = self.emu.store.assoc.targets(source.ot.name, from_id, target.ot.name)
        ordered = sorted(targets, key=int)
        start = 0
        if after:
            cursor = self.emu.decode_after(after)
            start = next((i for i, to_id in enumerate(ordered) if int(to_id) >= cursor), len(ordered))
        page = ordered[start:start + limit]
        items = [{"toObjectId": to_id, "associationTypes": [_with_label(t) for t in targets[to_id]]}
                 for to_id in page]
        next_after = encode_cursor(ordered[start + limit]) if start + limit < len(ordered) else None
        return items, next_after

    # ------------------------------------------------------------------ batch
    def _batch_pair(self, request: Request) -> tuple[TypeStore, TypeStore]:
        return self._pair(request, "fromObjectType")

    async def batch_read(self, request: Request) -> Response:
        emu = self.emu
        source, target = self._batch_pair(request)
        inputs = batch_inputs(parse_json(await request.body()), BATCH_MAX)
        started = emu.now_ms()
        with emu.lock:
            results, errors, missing = [], [], []
            for item in inputs:
                object_id = str(item.get("id", ""))
                rec = emu.store.lookup(source, object_id)
                if rec is None:
                    missing.append(object_id)
                    continue
                items, next_after = self._page(source, target, rec.id, item.get("after"), PAGE_MAX)
                if not items:
                    errors.append({"status": "error", "category": "OBJECT_NOT_FOUND",
                                   "subCategory": "crm.associations.NO_ASSOCIATIONS_FOUND",
                                   "message": f"No {target.ot.singular} is associated with {source.ot.singular} "
                                              f"{object_id}.",
                                   "context": {"fromObjectId": [object_id]}, "errors": [], "links": {}})
                    continue
                result: dict[str, Any] = {"from": {"id": rec.id}, "to": items}
                if next_after is not None:
                    result["paging"] = {"next": {"after": next_after}}
                results.append(result)
            if missing:
                errors.insert(0, {"status": "error", "category": "OBJECT_NOT_FOUND",
                                  "message": f"Could not find {source.ot.label} objects with these ids.",
                                  "context": {"ids": missing}, "errors": [], "links": {}})
            return batch_body(emu.now_ms(), results, errors, started, 200)

    async def batch_create(self, request: Request) -> Response:
        def create(source: TypeStore, target: TypeStore, item: dict[str, Any], from_raw: str, to_raw: str) -> list[Any]:
            atypes = self._specs(source, target, item.get("types"))
            return [self._labels_pair(source, target, self._existing(source, from_raw),
                                      self._existing(target, to_raw), atypes)]

        return await self._batch_pairs(request, create, 201)

    async def batch_default(self, request: Request) -> Response:
        def associate(source: TypeStore, target: TypeStore, item: dict[str, Any], from_raw: str,
                      to_raw: str) -> list[Any]:
            return self._default_results(source, target, self._existing(source, from_raw),
                                         self._existing(target, to_raw))

        return await self._batch_pairs(request, associate, 200)

    async def _batch_pairs(self, request: Request, write: PairWriter, status: int) -> Response:
        """A batch of from → to inputs, each written by `write`; a failing input becomes a per-input error
        (HubSpot's 207 multi-status) and the rest are still written."""
        emu = self.emu
        source, target = self._batch_pair(request)
        inputs = batch_inputs(parse_json(await request.body()), BATCH_MAX)
        started = emu.now_ms()
        with emu.lock:
            results: list[Any] = []
            errors: list[Any] = []
            for item in inputs:
                from_raw = str((item.get("from") or {}).get("id", ""))
                to_raw = str((item.get("to") or {}).get("id", ""))
                try:
                    results.extend(write(source, target, item, from_raw, to_raw))
                except HubSpotError as error:
                    errors.append(error.standard_error(ids=[from_raw, to_raw]))
            return batch_body(emu.now_ms(), results, errors, started, status)

    async def batch_archive(self, request: Request) -> Response:
        emu = self.emu
        source, target = self._batch_pair(request)
        inputs = batch_inputs(parse_json(await request.body()), BATCH_MAX)
        with emu.lock:
            for item in inputs:
                from_id = str((item.get("from") or {}).get("id", ""))
                to = item.get("to") or []
                for target_ref in to if isinstance(to, list) else [to]:
                    emu.store.dissociate(source.ot.name, from_id, target.ot.name, str((target_ref or {}).get("id")))
        return Response(status_code=204)

    async def batch_labels_archive(self, request: Request) -> Response:
        emu = self.emu
        source, target = self._batch_pair(request)
        inputs = batch_inputs(parse_json(await request.body()), BATCH_MAX)
        with emu.lock:
            for item in inputs:
                atypes = self._specs(source, target, item.get("types"))
                emu.store.dissociate(source.ot.name, str((item.get("from") or {}).get("id", "")), target.ot.name,
                                     str((item.get("to") or {}).get("id", "")), [a.type_id for a in atypes])
        return Response(status_code=204)


def _page_limit(raw: str | None) -> int:
    if raw in (None, ""):
        return PAGE_MAX
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"limit {raw!r} is not a number") from None
    return max(1, min(value, PAGE_MAX))

