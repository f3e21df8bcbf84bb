"""`HubSpotEmulator`: HubSpot's CRM API on loopback, close enough that `hubspot-api-client` runs unmodified.

Route modules (`routes_objects`, `routes_associations`, `routes_properties`, `routes_misc`) register their
handlers through `HubSpotEmulator.route`, which adds what every HubSpot endpoint shares: the per-account rate
limiters (with `X-HubSpot-RateLimit-*` headers), HubSpot's error envelope for anything a handler raises as
`HubSpotError`, and the optional `MISSING_SCOPES` switch. Behaviour is documented in QUIRKS.md.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from sandbox.common.emulator import Emulator, Handler, json_response
from sandbox.common.faults import Fault, FaultConfig
from sandbox.common.org import check_org
from sandbox.hubspot import routes_associations, routes_misc, routes_objects, routes_properties
from sandbox.hubspot.data import HubSpotData, default_pipelines
from sandbox.hubspot.errors import HubSpotError, correlation_id, error_response, validation
from sandbox.hubspot.limits import RollingLimiter, retry_after_header
from sandbox.hubspot.objects import ASSOCIATION_TYPES, OBJECT_TYPES, resolve_type
from sandbox.hubspot.properties import BUILTIN_TIMESTAMP
from sandbox.hubspot.search import Searcher, SearchLimits
from sandbox.hubspot.store import Record, Store, TypeStore
from sandbox.hubspot.util import decode_cursor, iso_ms, parse_time_ms

TEN_SECONDLY = "TEN_SECONDLY_ROLLING"
SECONDLY = "SECONDLY"

class HubSpotEmulator(Emulator):
    """HubSpot CRM v3/v4, properties, owners, pipelines, legacy email events and OAuth on loopback."""

    name = "hubspot"
    #: the refresh token a fresh emulator accepts at POST /oauth/v1/token (plus every one it issued)
    default_refresh_token = "sandbox-refresh-token"

    def __init__(self, faults: FaultConfig | None = None, *, rate_limit_per_10s: int | None = 190,
                 search_per_second: int | None = 5, search_index_lag_seconds: float = 0.0,
                 portal_id: int = 62515, org: str = "full") -> None:
        super().__init__(faults)
        #: "full" or "plain" (no Service Hub feedback or Salesforce-integration properties; QUIRKS.md)
        self.org = check_org(org)
        self.portal_id = portal_id
        self.search_index_lag_seconds = search_index_lag_seconds
        self.limiter = RollingLimiter(rate_limit_per_10s, 10.0)
        self.search_limiter = RollingLimiter(search_per_second, 1.0)
        self.search_limits = SearchLimits()
        #: wall clock for record timestamps (tests may replace it)
        self.clock: Callable[[], float] = time.time
        #: monotonic clock for the search index lag (tests may replace it)
        self.monotonic: Callable[[], float] = time.monotonic
        self.store = self._new_store()
        self.searcher = Searcher(self.store)
        self.owners: list[dict[str, Any]] = []
        self.email_events: list[dict[str, Any]] = []
        self.email_event_keys: list[tuple[int, str]] = []
        self.refresh_tokens: set[str] = {self.default_refresh_token}
        self.load_warnings: list[str] = []
        #: what the vendor faults did (mutations and merges while a client paged)
        self.vendor_events: list[dict[str, Any]] = []
        self._mutation_rounds = 0
        self._fault_merges = 0
        self._install_pipelines({})
        routes_objects.register(self)
        routes_associations.register(self)
        routes_properties.register(self)
        routes_misc.register(self)

    # ------------------------------------------------------------------ routing with HubSpot's shared behaviour
    def route(self, path: str, handler: Handler, methods: list[str], *, auth: bool = True, faults: bool = True,
              name: str | None = None, limited: bool = True, search: bool = False) -> None:
        super().route(path, self._hubspot_endpoint(handler, limited, search), methods, auth=auth,
                      faults=faults, name=name)

    def _hubspot_endpoint(self, handler: Handler, limited: bool, search: bool) -> Handler:
        async def endpoint(request: Request) -> Response:
            scopes = self.faults.vendor("missing_scopes")
            if scopes and any(re.search(pattern, request.url.path)
                              for pattern in ([scopes] if isinstance(scopes, str) else scopes)):
                return self._missing_scopes(request)
            headers: dict[str, str] | None = None
            if limited:
                decision = self.limiter.acquire()
                if decision is not None:
                    if not decision.allowed:
                        return self._rate_limit_body(TEN_SECONDLY, decision.retry_after)
                    if not search:    # search responses carry no rate-limit headers
                        headers = {"X-HubSpot-RateLimit-Max": str(decision.limit),
                                   "X-HubSpot-RateLimit-Remaining": str(decision.remaining),
                                   "X-HubSpot-RateLimit-Interval-Milliseconds": "10000"}
                if search:
                    decision = self.search_limiter.acquire()
                    if decision is not None and not decision.allowed:
                        return self._rate_limit_body(SECONDLY, decision.retry_after)
            try:
                response = await handler(request)
            except HubSpotError as error:
                response = error.response()
            if headers:
                response.headers.update(headers)
            return response

        return endpoint

    def _rate_limit_body(self, policy: str, retry_after: float) -> Response:
        window = "ten_secondly_rolling" if policy == TEN_SECONDLY else "secondly"
        group = "search" if policy == SECONDLY else "private-app-api-calls"
        body = {"status": "error", "message": f"You have reached your {window} limit.", "errorType": "RATE_LIMIT",
                "correlationId": correlation_id(), "policyName": policy,
                "groupName": f"publicapi:{group}:{self.portal_id}"}
        return json_response(body, 429, {"Retry-After": retry_after_header(retry_after)})

    def _missing_scopes(self, request: Request) -> Response:
        parts = request.url.path.strip("/").split("/")
        scope = (f"crm.objects.{parts[3]}.{'read' if request.method == 'GET' else 'write'}"
                 if len(parts) > 3 and parts[0] == "crm" and parts[2] == "objects" else "crm.schemas.custom.read")
        return error_response(
            403, "This app hasn't been granted all the scopes this call needs.", "MISSING_SCOPES",
            errors=[{"message": "One or more of the following scopes are required.",
                     "context": {"requiredGranularScopes": [scope]}}],
            links={"scopes": "https://developers.hubspot.com/scopes"})

    # ------------------------------------------------------------------ base-class hooks (injected faults)
    def rate_limited_response(self, fault: Fault) -> Response:
        return self._rate_limit_body(TEN_SECONDLY, fault.retry_after)

    def server_error_response(self, fault: Fault) -> Response:
        messages = {500: "internal error", 502: "Bad Gateway", 503: "Service Unavailable",
                    504: "Gateway Timeout"}
        return error_response(fault.status, messages.get(fault.status, "internal error"), "INTERNAL_ERROR")

    def unauthorized_response(self, expired: bool) -> Response:
        if expired:
            return error_response(401, "The OAuth token used to make this call expired.", "EXPIRED_AUTHENTICATION")
        return error_response(401, "Authentication credentials not found. This API supports OAuth 2.0 and "
                                   "private app access tokens.", "INVALID_AUTHENTICATION")

    # ------------------------------------------------------------------ helpers for the route modules
    def now_ms(self) -> int:
        return self.store.now_ms()

    def type_store(self, name: str) -> TypeStore:
        found = resolve_type(name)
        if found is None:
            raise validation(f"Unable to infer object type from: {name}")
        return self.store.types[found.name]

    def property_names(self, ts: TypeStore, requested: list[str] | None) -> list[str]:
        """What `properties` of a record to return: the defaults when none were asked for; otherwise the
        known ones asked for plus the three HubSpot always returns. Unknown names are ignored."""
        if not requested:
            return list(ts.ot.default_properties)
        registry = ts.registry
        names = {name for name in requested if registry.get(name) is not None}
        names.update(("hs_object_id", ts.ot.created_prop, ts.ot.modified_prop))
        return sorted(names)

    def written_names(self, ts: TypeStore, written: Any) -> list[str]:
        names = set(written)
        names.update(("hs_object_id", ts.ot.created_prop, ts.ot.modified_prop))
        return sorted(names)

    def association_targets(self, values: list[str]) -> list[str]:
        out: dict[str, None] = {}
        for value in values:
            found = resolve_type(value)
            if found is not None:
                out[found.name] = None
        return list(out)

    def render(self, ts: TypeStore, rec: Record, names: list[str], history: list[str] | None = None,
               associations: list[str] | None = None) -> dict[str, Any]:
        props = rec.props
        body: dict[str, Any] = {"id": rec.id, "properties": {name: props.get(name) for name in names},
                                "createdAt": rec.created_at, "updatedAt": rec.updated_at,
                                "archived": rec.archived}
        if rec.archived:
            body["archivedAt"] = rec.archived_at
        if history:
            body["propertiesWithHistory"] = {name: self._history(ts, rec, name) for name in history
                                             if ts.registry.get(name) is not None}
        if associations:
            linked = self._v3_associations(ts, rec, associations)
            if linked:
                body["associations"] = linked
        return body

    def render_full(self, ts: TypeStore, rec: Record) -> dict[str, Any]:
        names = sorted(name for name, value in rec.props.items() if value is not None)
        return self.render(ts, rec, names)

    def _history(self, ts: TypeStore, rec: Record, name: str) -> list[dict[str, Any]]:
        entries = rec.history.get(name) if rec.history else None
        if entries:
            return [{"value": value, "timestamp": iso_ms(at), "sourceType": source}
                    for value, at, source in reversed(entries)]
        value = rec.props.get(name)
        if value is None:
            return []
        at = rec.updated_at if name == ts.ot.modified_prop else rec.created_at
        return [{"value": value, "timestamp": at, "sourceType": "CRM_UI" if rec.seeded else "INTEGRATION"}]

    def _v3_associations(self, ts: TypeStore, rec: Record, to_types: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        store = self.store
        for to_type in to_types:
            targets = (store.archived_targets if rec.archived else store.assoc.targets)(ts.ot.name, rec.id, to_type)
            if not targets:
                continue
            out[to_type] = {"results": [{"id": to_id, "type": ASSOCIATION_TYPES[type_id].name}
                                        for to_id in sorted(targets, key=int) for type_id in targets[to_id]]}
        return out

    def decode_after(self, token: str) -> int:
        """List cursors are opaque tokens; a bare record id is accepted too."""
        text = token.strip()
        if text.isdigit():
            return int(text)
        decoded = decode_cursor(text)
        if decoded is None or not decoded.isdigit():
            raise validation(f"Invalid paging cursor after={token!r}: pass paging.next.after unchanged")
        return int(decoded)

    # ------------------------------------------------------------------ vendor faults while a client pages
    def paging_faults_enabled(self) -> bool:
        vendor = self.faults.config.vendor
        return bool(vendor.get("mutate_during_paging") or vendor.get("merge_during_sync"))

    def paging_faults(self, ts: TypeStore, returned: Record | None, upcoming: Record | None) -> bool:
        """Called (under the lock) when a client asks for a later page of a list or search: changes a record
        it already has and one it has not reached yet, and/or merges two contacts. True when anything changed."""
        vendor = self.faults.config.vendor
        now = self.now_ms()
        changed = False
        mutate = vendor.get("mutate_during_paging")
        if mutate and (mutate is True or self._mutation_rounds < int(mutate)):
            touched = [rec for rec in (returned, upcoming) if rec is not None]
            if touched:
                self._mutation_rounds += 1
                for rec in touched:
                    self.store.touch(ts, rec, now)
                self.vendor_events.append({"kind": "mutate_during_paging", "objectType": ts.ot.name,
                                           "ids": [rec.id for rec in touched], "at": iso_ms(now)})
                changed = True
        merges = vendor.get("merge_during_sync")
        allowed = 1 if merges is True else int(merges or 0)
        if (ts.ot.name == "contacts" and self._fault_merges < allowed and returned is not None
                and upcoming is not None and returned.id != upcoming.id):
            self._fault_merges += 1
            self.store.merge(upcoming.id, returned.id, now, via="fault")
            self.vendor_events.append({"kind": "merge_during_sync", "objectType": "contacts",
                                       "primaryObjectId": upcoming.id, "objectIdToMerge": returned.id,
                                       "at": iso_ms(now)})
            changed = True
        return changed

    def merge_contacts(self, primary_id: str, merged_id: str) -> dict[str, Any]:
        """Merges contact `merged_id` into `primary_id` as HubSpot's UI would; returns the survivor."""
        with self.lock:
            survivor = self.store.merge(str(primary_id), str(merged_id), self.now_ms(), via="python")
            ts = self.store.types["contacts"]
            return self.render_full(ts, survivor)

    # ------------------------------------------------------------------ seeding and dump
    def _new_store(self) -> Store:
        return Store(lambda: self.clock(), lambda: self.monotonic(), plain=self.org == "plain")

    def _install_pipelines(self, given: dict[str, list[dict[str, Any]]]) -> None:
        defaults = default_pipelines(BUILTIN_TIMESTAMP)
        for object_type in ("deals", "tickets"):
            pipelines = given.get(object_type)
            self.store.set_pipelines(object_type, [_complete_pipeline(p) for p in pipelines] if pipelines
                                     else defaults[object_type])

    def load(self, data: HubSpotData) -> None:
        """Replaces the portal's contents with the generated world's HubSpot part (ValueError if it is not
        consistent: unknown object types, association types that do not fit, ids that are not HubSpot ids)."""
        try:
            self._load(data)
        except HubSpotError as error:
            raise ValueError(error.message) from None

    def _load(self, data: HubSpotData) -> None:
        with self.lock:
            self.store = self._new_store()
            self.searcher = Searcher(self.store)
            self.load_warnings = []
            self.vendor_events = []
            self._mutation_rounds = self._fault_merges = 0
            for object_type, definitions in (data.properties or {}).items():
                registry = self.type_store(object_type).registry
                for definition in definitions:
                    registry.add_seeded(definition)
            for ts in self.store.types.values():
                for name in ts.registry.unique_names():
                    ts.unique.setdefault(name, {})
            self._install_pipelines(data.pipelines or {})
            self.owners = [_complete_owner(owner) for owner in data.owners or []]
            self.owners.sort(key=lambda owner: int(owner["id"]))
            for object_type, records in (data.objects or {}).items():
                ts = self.type_store(object_type)
                unknown: set[str] = set()
                for raw in records:
                    unknown |= self.store.seed_record(ts, raw)
                for name in sorted(unknown):
                    ts.registry.add_seeded({"name": name, "label": name, "type": "string", "fieldType": "text"})
                    self.load_warnings.append(f"{ts.ot.name}.{name} is not a known property; defined it as a "
                                              "string")
                self.store.rebuild_indexes(ts)
            for from_type, from_id, to_type, to_id, type_id in data.associations or []:
                self._seed_association(from_type, str(from_id), to_type, str(to_id), int(type_id))
            for ts in self.store.types.values():     # records archived before the seed was taken
                for num in ts.archived:
                    self.store.stash_links(ts, ts.record_by_num(num))
            self._seed_merges(self.store.types["contacts"])
            events = [dict(event) for event in data.email_events or []]
            for event in events:
                event.setdefault("portalId", self.portal_id)
            events.sort(key=lambda e: (int(e["created"]), str(e["id"])))
            self.email_events = events
            self.email_event_keys = [(int(e["created"]), str(e["id"])) for e in events]

    def _seed_merges(self, ts: TypeStore) -> None:
        """Merges made before the seed: ids a survivor lists in `hs_merged_object_ids` resolve to it, as after
        an API merge (a merged-away id that is also a seeded record stays that record)."""
        for rec in ts.records.values():
            for merged_id in (rec.props.get("hs_merged_object_ids") or "").split(";"):
                if merged_id and merged_id not in ts.records:
                    ts.merged_into.setdefault(merged_id, rec.id)

    def _seed_association(self, from_type: str, from_id: str, to_type: str, to_id: str, type_id: int) -> None:
        source, target = self.type_store(from_type), self.type_store(to_type)
        atype = ASSOCIATION_TYPES.get(type_id)
        if atype is None or atype.from_type != source.ot.name or atype.to_type != target.ot.name:
            raise ValueError(f"association type {type_id} is not HubSpot's {source.ot.name}→{target.ot.name} type")
        if from_id not in source.records or to_id not in target.records:
            missing = f"{from_type} {from_id}" if from_id not in source.records else f"{to_type} {to_id}"
            raise ValueError(f"association ({from_type} {from_id} → {to_type} {to_id}): {missing} does not exist")
        self.store.assoc.add(source.ot.name, from_id, to_id, atype)

    def dump_writes(self) -> dict[str, Any]:
        """Everything written through the API: records (final state, with what happened to them),
        associations created/archived, property definitions and groups created, merges via the API."""
        with self.lock:
            objects: dict[str, list[dict[str, Any]]] = {}
            for name, ts in self.store.types.items():
                written = [rec for rec in ts.records.values() if rec.writes]
                if written:
                    written.sort(key=lambda rec: rec.num)
                    objects[name] = [{**self.render_full(ts, rec), "writes": list(rec.writes or [])}
                                     for rec in written]

            def association(key: tuple) -> dict[str, Any]:
                from_type, from_id, to_type, to_id, type_id = key
                return {"fromObjectType": from_type, "fromObjectId": from_id, "toObjectType": to_type,
                        "toObjectId": to_id, "associationTypeId": type_id, "associationCategory": "HUBSPOT_DEFINED"}

            return {
                "objects": objects,
                "associations": {"created": [association(k) for k in self.store.assoc_created],
                                 "archived": [association(k) for k in self.store.assoc_archived]},
                "properties": {t: [self.store.registries[t].defs.get(n) or self.store.registries[t].archived[n]
                                   for n in names] for t, names in self.store.props_created.items() if names},
                "propertyGroups": {t: [self.store.registries[t].groups[n] for n in names
                                       if n in self.store.registries[t].groups]
                                   for t, names in self.store.groups_created.items() if names},
                "merges": [m for m in self.store.merges if m["via"] == "api"],
                "vendorEvents": list(self.vendor_events),
            }


def _complete_pipeline(pipeline: dict[str, Any]) -> dict[str, Any]:
    """A seeded pipeline in the pipelines API shape: string ids and metadata, ISO timestamps, defaults."""
    out = _timestamps({"archived": False, "displayOrder": 0, **pipeline})
    out["id"] = str(out["id"])
    out["stages"] = [_timestamps({"createdAt": out["createdAt"], "updatedAt": out["updatedAt"], "archived": False,
                                  "displayOrder": n, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT", **stage,
                                  "id": str(stage["id"]),
                                  "metadata": {k: _meta_string(v) for k, v in (stage.get("metadata") or {}).items()}})
                     for n, stage in enumerate(pipeline.get("stages", []))]
    return out


def _timestamps(item: dict[str, Any]) -> dict[str, Any]:
    for key in ("createdAt", "updatedAt"):
        value = item.get(key)
        if value is None:
            item[key] = BUILTIN_TIMESTAMP
        elif isinstance(value, (int, float)):
            item[key] = iso_ms(int(value))
        else:
            item[key] = iso_ms(parse_time_ms(str(value)) or 0)
    return item


def _meta_string(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _complete_owner(owner: dict[str, Any]) -> dict[str, Any]:
    out = _timestamps({"type": "PERSON", "archived": False, **owner})
    out["id"] = str(out["id"])
    if "userId" in out and out["userId"] is not None:
        out["userId"] = int(out["userId"])
        out.setdefault("userIdIncludingInactive", out["userId"])
    return out


__all__ = ["OBJECT_TYPES", "HubSpotEmulator", "default_pipelines"]
