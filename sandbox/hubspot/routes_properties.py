"""Properties API v3: definitions (list, get, create, update, archive, batch) and property groups.

A property created here is immediately readable, writable and searchable on records of its object type;
a `hasUniqueValue` property becomes usable as `idProperty`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.common.emulator import json_response
from sandbox.hubspot.batch import batch_body, batch_inputs
from sandbox.hubspot.errors import HubSpotError, not_found, parse_json, validation
from sandbox.hubspot.properties import NAME_PATTERN
from sandbox.hubspot.store import TypeStore
from sandbox.hubspot.util import iso_ms, parse_bool, split_list

if TYPE_CHECKING:
    from sandbox.hubspot.emulator import HubSpotEmulator


def register(emu: HubSpotEmulator) -> None:
    h = _Handlers(emu)
    base = "/crm/v3/properties/{objectType}"
    # groups first: `/groups` would otherwise match `/{propertyName}`
    emu.route(f"{base}/groups", h.list_groups, ["GET"])
    emu.route(f"{base}/groups", h.create_group, ["POST"])
    emu.route(f"{base}/groups/{{groupName}}", h.get_group, ["GET"])
    emu.route(f"{base}/groups/{{groupName}}", h.update_group, ["PATCH"])
    emu.route(f"{base}/groups/{{groupName}}", h.archive_group, ["DELETE"])
    emu.route(f"{base}/batch/create", h.batch_create, ["POST"])
    emu.route(f"{base}/batch/read", h.batch_read, ["POST"])
    emu.route(f"{base}/batch/archive", h.batch_archive, ["POST"])
    emu.route(base, h.list_all, ["GET"])
    emu.route(base, h.create, ["POST"])
    emu.route(f"{base}/{{propertyName}}", h.get_one, ["GET"])
    emu.route(f"{base}/{{propertyName}}", h.update, ["PATCH"])
    emu.route(f"{base}/{{propertyName}}", h.archive, ["DELETE"])


class _Handlers:
    def __init__(self, emu: HubSpotEmulator) -> None:
        self.emu = emu

    def _ts(self, request: Request) -> TypeStore:
        return self.emu.type_store(request.path_params["objectType"])

    def _now(self) -> str:
        return iso_ms(self.emu.now_ms())

    def _create(self, ts: TypeStore, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected a property definition")
        definition = ts.registry.create(body, self._now())
        self.emu.store.props_created[ts.ot.name][definition["name"]] = None
        if definition["hasUniqueValue"]:
            ts.unique[definition["name"]] = {}
            self.emu.store.rebuild_indexes(ts)
        else:
            ts.changed()
        return definition

    def _definition(self, ts: TypeStore, name: str, archived: bool = False) -> dict[str, Any]:
        definition = ts.registry.archived.get(name) if archived else ts.registry.get(name)
        if definition is None:
            raise not_found(f"Unable to find property {name} on {ts.ot.name}", context={"name": [name]})
        return definition

    # ------------------------------------------------------------------ definitions
    async def list_all(self, request: Request) -> Response:
        ts = self._ts(request)
        archived = parse_bool(request.query_params.get("archived"))
        wanted = set(split_list(request.query_params.getlist("properties")))
        with self.emu.lock:
            source = ts.registry.archived if archived else ts.registry.defs
            results = [d for name, d in source.items() if not wanted or name in wanted]
            return json_response({"results": results})

    async def create(self, request: Request) -> Response:
        ts = self._ts(request)
        body = parse_json(await request.body())
        with self.emu.lock:
            return json_response(self._create(ts, body), 201)

    async def get_one(self, request: Request) -> Response:
        ts = self._ts(request)
        archived = parse_bool(request.query_params.get("archived"))
        with self.emu.lock:
            return json_response(self._definition(ts, request.path_params["propertyName"], archived))

    async def update(self, request: Request) -> Response:
        ts = self._ts(request)
        body = parse_json(await request.body())
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected a property update")
        name = request.path_params["propertyName"]
        with self.emu.lock:
            self._definition(ts, name)
            definition = ts.registry.update(name, body, self._now())
            ts.changed()
            return json_response(definition)

    async def archive(self, request: Request) -> Response:
        ts = self._ts(request)
        name = request.path_params["propertyName"]
        with self.emu.lock:
            self._definition(ts, name)
            ts.registry.archive(name, self._now())
            ts.unique.pop(name, None)
            ts.changed()
        return Response(status_code=204)

    async def batch_create(self, request: Request) -> Response:
        ts = self._ts(request)
        inputs = batch_inputs(parse_json(await request.body()))
        started = self.emu.now_ms()
        with self.emu.lock:
            results, errors = [], []
            for item in inputs:
                try:
                    results.append(self._create(ts, item))
                except HubSpotError as error:
                    errors.append(error.standard_error(ids=[str(item.get("name", ""))]))
            return batch_body(self.emu.now_ms(), results, errors, started, 201)

    async def batch_read(self, request: Request) -> Response:
        ts = self._ts(request)
        body = parse_json(await request.body())
        inputs = batch_inputs(body)
        archived = bool(body.get("archived"))
        started = self.emu.now_ms()
        with self.emu.lock:
            source = ts.registry.archived if archived else ts.registry.defs
            results = [source[str(item.get("name"))] for item in inputs if str(item.get("name")) in source]
            missing = [str(item.get("name")) for item in inputs if str(item.get("name")) not in source]
            errors = [{"status": "error", "category": "OBJECT_NOT_FOUND",
                       "message": f"Unable to find properties on {ts.ot.name}", "context": {"names": missing},
                       "errors": [], "links": {}}] if missing else []
            return batch_body(self.emu.now_ms(), results, errors, started, 200)

    async def batch_archive(self, request: Request) -> Response:
        ts = self._ts(request)
        inputs = batch_inputs(parse_json(await request.body()))
        with self.emu.lock:
            for item in inputs:
                name = str(item.get("name"))
                if ts.registry.get(name) is not None:
                    ts.registry.archive(name, self._now())
                    ts.unique.pop(name, None)
            ts.changed()
        return Response(status_code=204)

    # ------------------------------------------------------------------ groups
    def _group(self, ts: TypeStore, name: str) -> dict[str, Any]:
        group = ts.registry.groups.get(name)
        if group is None:
            raise not_found(f"Unable to find property group {name} on {ts.ot.name}", context={"name": [name]})
        return group

    async def list_groups(self, request: Request) -> Response:
        ts = self._ts(request)
        with self.emu.lock:
            return json_response({"results": list(ts.registry.groups.values())})

    async def create_group(self, request: Request) -> Response:
        ts = self._ts(request)
        body = parse_json(await request.body())
        if not isinstance(body, dict) or not body.get("name") or not body.get("label"):
            raise validation("A property group needs name and label")
        name = body["name"]
        if not isinstance(name, str) or not NAME_PATTERN.fullmatch(name):
            raise validation(f"Property group name '{name}' is invalid: use lowercase letters, digits and "
                             "underscores, starting with a letter")
        with self.emu.lock:
            if name in ts.registry.groups:
                raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"A property group named '{name}' already exists.")
            group = {"name": name, "label": body["label"], "displayOrder": int(body.get("displayOrder", -1)),
                     "archived": False}
            ts.registry.groups[name] = group
            self.emu.store.groups_created[ts.ot.name][name] = None
            return json_response(group, 201)

    async def get_group(self, request: Request) -> Response:
        ts = self._ts(request)
        with self.emu.lock:
            return json_response(self._group(ts, request.path_params["groupName"]))

    async def update_group(self, request: Request) -> Response:
        ts = self._ts(request)
        body = parse_json(await request.body())
        with self.emu.lock:
            group = self._group(ts, request.path_params["groupName"])
            if isinstance(body, dict):
                for key in ("label", "displayOrder"):
                    if body.get(key) is not None:
                        group[key] = body[key]
            return json_response(group)

    async def archive_group(self, request: Request) -> Response:
        ts = self._ts(request)
        name = request.path_params["groupName"]
        with self.emu.lock:
            self._group(ts, name)
            if any(d["groupName"] == name for d in ts.registry.defs.values()):
                raise validation(f"Property group '{name}' still has properties; move or archive them first")
            del ts.registry.groups[name]
        return Response(status_code=204)
