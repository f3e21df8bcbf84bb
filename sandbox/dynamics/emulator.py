"""`DynamicsEmulator`: a loopback Dataverse Web API v9.2 (see QUIRKS.md for what it reproduces and how).

Wiring only: route registration, the HTTP adapter around the synchronous handlers (routes.py), service
protection limits, the Entra token endpoint stand-in, the vendor faults (records changing while a client
pages, merges during a sync), seeding from `DynamicsData` and `dump_writes`.
"""

from __future__ import annotations

import base64
import math
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import compile_path

from sandbox.common.emulator import Emulator, LoggedRequest
from sandbox.common.faults import Fault, FaultConfig
from sandbox.common.org import check_org
from sandbox.dynamics import writes
from sandbox.dynamics.data import DynamicsData
from sandbox.dynamics.odata import ODataError, is_guid, normalize_datetime
from sandbox.dynamics.routes import (
    API,
    JSON,
    ApiRequest,
    ApiResponse,
    DataverseRoutes,
    _position_after,
    error_response,
)
from sandbox.dynamics.schema import Table, build_schema
from sandbox.dynamics.store import POINTER_SET, Row, Store, etag

WINDOW_SECONDS = 300
EXECUTION_BUDGET_MS = 1_200_000
TOKEN_PREFIX = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9."
_IDS = uuid.UUID("0f6c3c43-94c9-4d52-9d61-36b8f5a0e2d1")
# merged loser's (statecode, statuscode) per table
MERGED_STATE = {"contact": (1, 2), "account": (1, 2), "lead": (2, 7), "incident": (2, 2000)}
Handler = Callable[..., ApiResponse]


class DynamicsEmulator(DataverseRoutes, Emulator):
    """Dataverse / Dynamics 365 Web API v9.2 on loopback. Serve with `sandbox.common.server.EmulatorServer`."""

    name = "dynamics"

    def __init__(self, faults: FaultConfig | None = None, *, max_page_size: int = 5000,
                 requests_per_5min: int | None = 6000, org: str = "full", custom_columns: bool | None = None,
                 tenant_id: str = "sandbox-tenant", client_id: str = "sandbox-client",
                 client_secret: str = "sandbox-secret") -> None:
        super().__init__(faults)
        if max_page_size < 1:
            raise ValueError("max_page_size must be positive")
        self.max_page_size = max_page_size
        self.requests_per_5min = requests_per_5min
        #: "full" or "plain" (no custom columns: QUIRKS.md); `custom_columns` overrides what the org implies
        self.org = check_org(org)
        self.custom_columns = org == "full" if custom_columns is None else custom_columns
        self.tenant_id, self.client_id, self.client_secret = tenant_id, client_id, client_secret
        #: days a delta token stays valid (Organization.ExpireChangeTrackingInDays)
        self.change_tracking_expiry_days = 7
        #: server clock; tests may replace it. Row timestamps never go backwards regardless.
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.schema = build_schema(self.custom_columns)
        self.store = Store(self.schema, lambda: self.clock())
        self.user_id = str(uuid.uuid5(_IDS, f"user/{tenant_id}/{client_id}"))
        self.application_id = str(uuid.uuid5(_IDS, f"app/{client_id}"))
        self.business_unit_id = str(uuid.uuid5(_IDS, f"bu/{tenant_id}"))
        self.organization_id = str(uuid.uuid5(_IDS, f"org/{tenant_id}"))
        #: merges performed (entity set, master, subordinate) and rows touched by `mutate_during_paging`
        self.merges: list[tuple[str, str, str]] = []
        self.mutations: list[tuple[str, str]] = []
        self._filters: dict[tuple, Any] = {}
        self._cookie_parsers: dict[str, dict[str, Any]] = {}
        self._seed_specs: dict[str, tuple[Row, frozenset[str], frozenset[str]]] = {}
        self._written_log: list[tuple[str, str, Row | None]] = []
        self._fault_counts: Counter[str] = Counter()
        self._fault_config: FaultConfig | None = None
        self._window: deque[float] = deque()
        self._execution: deque[tuple[float, float]] = deque()
        self._execution_total = 0.0
        self._window_lock = threading.Lock()
        self._api_routes: list[tuple[str, Any, str, Handler]] = []
        self._register_routes()
        with self.lock:
            self._seed_application_user()

    # ------------------------------------------------------------------------------------------ routes
    def _register_routes(self) -> None:
        base = API.rstrip("/")
        self._api("GET", f"{base}/", self.h_service_document)
        self._api("POST", f"{base}/$batch", self.h_batch)
        self._api("GET", f"{base}/WhoAmI", self.h_whoami)
        self._api("GET", f"{base}/WhoAmI()", self.h_whoami)
        self._api("POST", f"{base}/Merge", self.h_merge)
        self._api("GET", f"{base}/EntityDefinitions", self.h_entity_definitions)
        self._api("GET", f"{base}/EntityDefinitions({{key}})", self.h_entity_definition)
        self._api("GET", f"{base}/EntityDefinitions({{key}})/{{nav}}", self.h_entity_definition_nav)
        for entity_set in self.schema.tables:
            path = f"{base}/{entity_set}"
            self._api("GET", path, self.h_collection_get, entity_set=entity_set)
            self._api("POST", path, self.h_collection_post, entity_set=entity_set)
            self._api("GET", f"{path}/$count", self.h_count, entity_set=entity_set)
            for method, handler in (("GET", self.h_entity_get), ("PATCH", self.h_entity_patch),
                                    ("DELETE", self.h_entity_delete)):
                self._api(method, f"{path}({{key}})", handler, entity_set=entity_set)
            for method in ("GET", "PUT", "DELETE"):
                self._api(method, f"{path}({{key}})/{{prop:path}}", self.h_property, entity_set=entity_set)
        for method in ("GET", "POST", "PATCH", "PUT", "DELETE"):
            self._api(method, f"{base}/{{rest:path}}", self.h_unknown)
        self.route("/{tenant}/oauth2/v2.0/token", self._token_endpoint(v1=False), ["POST"], auth=False,
                   faults=False)
        self.route("/{tenant}/oauth2/token", self._token_endpoint(v1=True), ["POST"], auth=False, faults=False)

    def _api(self, method: str, template: str, handler: Handler, **fixed: str) -> None:
        regex, _, _ = compile_path(template)
        key = f"{method} {template}"

        def bound(req: ApiRequest, **params: str) -> ApiResponse:
            return handler(req, **fixed, **params)

        self._api_routes.append((method, regex, key, bound))
        self.route(template, self._endpoint(bound), [method])

    def match_route(self, method: str, path: str) -> tuple[str, Handler, dict[str, str]] | None:
        for route_method, regex, key, handler in self._api_routes:
            if route_method != method:
                continue
            m = regex.match(path)
            if m:
                return key, handler, m.groupdict()
        return None

    def _endpoint(self, handler: Handler) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            headers = dict(request.headers.items())
            prefer = request.headers.getlist("prefer")
            if len(prefer) > 1:
                headers["prefer"] = ", ".join(prefer)
            req = ApiRequest(request.method, request.url.path, request.url.query, headers, await request.body(),
                             self.bearer_token(request))
            result = self.serve(req, handler, dict(request.path_params))
            return Response(result.body, result.status, headers=result.headers)

        return endpoint

    def serve(self, req: ApiRequest, handler: Handler, params: dict[str, str]) -> ApiResponse:
        """Service protection, then the handler; adds the headers every Web API response carries."""
        throttled = self.service_protection(req.token)
        response = throttled if throttled is not None else self.run_handler(handler, req, params)
        response.headers["x-ms-service-request-id"] = str(uuid.uuid4())
        return response

    def run_handler(self, handler: Handler, req: ApiRequest, params: dict[str, str]) -> ApiResponse:
        started = time.perf_counter()
        with self.lock:
            try:
                response = handler(req, **params)
            except ODataError as error:
                response = error_response(error)
        response.headers["OData-Version"] = "4.0"
        self._spent((time.perf_counter() - started) * 1000)
        if self.requests_per_5min is not None:
            with self._window_lock:
                response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] = str(
                    max(0, self.requests_per_5min - len(self._window)))
                spent = self._execution_total
                response.headers["x-ms-ratelimit-time-remaining-xrm-requests"] = \
                    f"{max(0.0, (EXECUTION_BUDGET_MS - spent) / 1000):,.2f}"
        return response

    def h_unknown(self, req: ApiRequest, rest: str) -> ApiResponse:
        if req.path.endswith("/") and req.path != API:          # `contacts/` is `contacts`
            match = self.match_route(req.method, req.path.rstrip("/"))
            if match is not None and not match[0].endswith("{rest:path}"):
                return match[1](req, **match[2])
        raise self.unknown_resource(req.path, req.method)

    def unknown_resource(self, path: str, method: str) -> ODataError:
        tail = path[len(API):] if path.startswith(API) else path.lstrip("/")
        segment = tail.split("/")[0].split("(")[0]
        known = set(self.schema.tables) | {"$batch", "WhoAmI", "Merge", "EntityDefinitions"}
        if segment in known:
            return ODataError(405, "0x80060888", f"The requested resource does not support http method "
                              f"'{method}'.")
        return ODataError(404, "0x8006088a", f"Resource not found for the segment '{segment}'.")

    def _log_inner(self, method: str, key: str, path: str, query: str, status: int, started: float) -> None:
        self.requests.record(LoggedRequest(method, key, path, query, status,
                                           (time.perf_counter() - started) * 1000, at=time.time()))

    # ------------------------------------------------------------------------------ service protection
    def service_protection(self, token: str | None) -> ApiResponse | None:
        """Number-of-requests limit per user (every token here belongs to the one application user) over a
        5-minute sliding window. Requests refused with 429 do not count."""
        limit = self.requests_per_5min
        if limit is None:
            return None
        now = time.monotonic()
        with self._window_lock:
            window = self._window
            while window and window[0] <= now - WINDOW_SECONDS:
                window.popleft()
            if len(window) >= limit:
                retry = max(1, math.ceil(window[0] + WINDOW_SECONDS - now))
                return self._throttled(retry, limit)
            window.append(now)
        return None

    def _spent(self, ms: float) -> None:
        now = time.monotonic()
        with self._window_lock:
            self._execution.append((now, ms))
            self._execution_total += ms
            while self._execution and self._execution[0][0] <= now - WINDOW_SECONDS:
                self._execution_total -= self._execution.popleft()[1]

    def _throttled(self, retry_after: float, limit: int) -> ApiResponse:
        response = error_response(ODataError(
            429, "0x80072322", f"Number of requests exceeded the limit of {limit} over time window of 300 "
            "seconds."))
        response.headers["Retry-After"] = str(max(0, math.ceil(retry_after)))
        response.headers["OData-Version"] = "4.0"
        response.headers["x-ms-ratelimit-burst-remaining-xrm-requests"] = "0"
        return response

    def reset_service_protection(self) -> None:
        with self._window_lock:
            self._window.clear()
            self._execution.clear()
            self._execution_total = 0.0

    # ----------------------------------------------------------------------- vendor-style base responses
    def rate_limited_response(self, fault: Fault) -> Response:
        result = self._throttled(fault.retry_after, self.requests_per_5min or 6000)
        return Response(result.body, 429, headers=result.headers)

    def server_error_response(self, fault: Fault) -> Response:
        result = error_response(ODataError(fault.status, "0x80040216", "An unexpected error occurred."))
        result.headers["OData-Version"] = "4.0"
        if fault.status in (502, 503, 504):
            result.headers["Retry-After"] = str(max(0, math.ceil(fault.retry_after)))
        return Response(result.body, fault.status, headers=result.headers)

    def unauthorized_response(self, expired: bool) -> Response:
        challenge = (f"Bearer authorization_uri={self.base_url}/{self.tenant_id}/oauth2/authorize, "
                     f"resource_id={self.base_url}/")
        if expired:
            challenge = 'Bearer error="invalid_token", error_description="The access token is expired", ' + \
                challenge[len("Bearer "):]
        return Response(b"", 401, headers={"WWW-Authenticate": challenge, "OData-Version": "4.0"})

    # ------------------------------------------------------------------------------------ token endpoint
    def _token_endpoint(self, v1: bool) -> Callable[[Request], Any]:
        async def token(request: Request) -> Response:
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace"), keep_blank_values=True))
            client_id, secret = form.get("client_id"), form.get("client_secret")
            basic = request.headers.get("authorization", "")
            if basic.lower().startswith("basic "):
                try:
                    user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                    client_id, secret = client_id or user, secret or password
                except (ValueError, UnicodeDecodeError):
                    pass
            tenant = request.path_params["tenant"]
            if tenant != self.tenant_id:
                return _entra_error(400, "invalid_request", 90002, f"Tenant '{tenant}' not found. Check to make "
                                    "sure you have the correct tenant ID and are signing into the correct cloud.")
            if form.get("grant_type") != "client_credentials":
                return _entra_error(400, "unsupported_grant_type", 70003, "The app requested an unsupported "
                                    f"grant type '{form.get('grant_type', '')}'.")
            if client_id != self.client_id:
                return _entra_error(400, "unauthorized_client", 700016, f"Application with identifier "
                                    f"'{client_id}' was not found in the directory '{self.tenant_id}'.")
            if secret != self.client_secret:
                return _entra_error(401, "invalid_client", 7000215, "Invalid client secret provided. Ensure the "
                                    "secret being sent in the request is the client secret value, not the client "
                                    f"secret ID, for a secret added to app '{self.client_id}'.")
            if v1:
                resource = form.get("resource")
                if not resource:
                    return _entra_error(400, "invalid_request", 900144, "The request body must contain the "
                                        "following parameter: 'resource'.")
            else:
                scope = form.get("scope", "")
                if not scope.strip().endswith("/.default"):
                    return _entra_error(400, "invalid_scope", 1002012, f"The provided value for scope {scope} "
                                        "is not valid. Client credential flows must have a scope value with "
                                        "/.default suffixed to the resource identifier (application ID URI).")
            access_token = self.issue_token(TOKEN_PREFIX)
            body: dict[str, Any] = {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                                    "access_token": access_token}
            if v1:
                now = int(time.time())
                body = {"token_type": "Bearer", "expires_in": "3599", "ext_expires_in": "3599",
                        "expires_on": str(now + 3599), "not_before": str(now), "resource": form["resource"],
                        "access_token": access_token}
            return Response(orjson.dumps(body), 200, media_type="application/json; charset=utf-8",
                            headers={"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"})

        return token

    # -------------------------------------------------------------------------------------------- load
    def load(self, data: DynamicsData) -> None:  # type: ignore[override]
        """Seed the store (replacing everything) from the world's Dataverse rows."""
        with self.lock:
            self.store.clear()
            self._written_log.clear()
            self._filters.clear()
            prepared: list[tuple[str, Table, Row]] = []
            top_version = 0
            now = self.store.now_text()
            latest = [""]
            for entity_set, rows in data.rows.items():
                table = self.schema.tables.get(entity_set)
                if table is None or table.read_only:
                    raise ValueError(f"DynamicsData: unknown entity set {entity_set!r}")
                for raw in rows:
                    row = self._seed_row(table, raw, now, latest)
                    if row["versionnumber"] is not None:
                        top_version = max(top_version, row["versionnumber"])
                    prepared.append((entity_set, table, row))
            self.store.note_time(latest[0] or None)
            self.store.version = max(self.store.version, top_version)
            for _, _table, row in prepared:
                if row["versionnumber"] is None:
                    row["versionnumber"] = self.store.next_version()
                row["@odata.etag"] = etag(row["versionnumber"])
            seen: set[str] = set()
            for entity_set, table, row in sorted(prepared, key=lambda item: item[2]["versionnumber"]):
                pk = row[table.pk]
                if pk in seen:
                    raise ValueError(f"DynamicsData: duplicate primary key {pk} in {entity_set}")
                seen.add(pk)
                self.store.put(entity_set, row)
            for entity_set, table, row in prepared:       # objecttypecode from the note's target
                if table.logical == "annotation" and row.get("objecttypecode") is None and row["_objectid_value"]:
                    fixed = dict(row, objecttypecode=self.store.logical_of(row["_objectid_value"]))
                    self.store.tables[entity_set].rows[row[table.pk]] = fixed
            self._seed_application_user()

    def _seed_row(self, table: Table, raw: dict[str, Any], now: str, latest: list[str]) -> Row:
        template, datetimes, guids = self._seed_spec(table)
        row = template.copy()
        for key, value in raw.items():
            if key not in template or key == "@odata.etag":
                if "@" in key:
                    continue
                raise ValueError(f"DynamicsData {table.entity_set}: unknown column {key!r} (lookups are "
                                 "'_<name>_value'; see docs/crm-conventions.md)")
            if value is not None:
                if key in datetimes:
                    try:
                        value = normalize_datetime(value)
                    except ValueError:
                        raise ValueError(f"DynamicsData {table.entity_set}.{key}: bad datetime {value!r}") \
                            from None
                    if value > latest[0]:
                        latest[0] = value
                elif key in guids:
                    if not isinstance(value, str) or not is_guid(value):
                        raise ValueError(f"DynamicsData {table.entity_set}.{key}: not a GUID: {value!r}")
                    value = value.lower()
            row[key] = value
        if not row.get(table.pk):
            raise ValueError(f"DynamicsData {table.entity_set}: row without {table.pk}: {raw!r}")
        if table.states:
            if row["statecode"] is None:
                row["statecode"] = 0
            if row["statuscode"] is None:
                row["statuscode"] = table.states.get(row["statecode"], ("", None))[1]
        row["createdon"] = row["createdon"] or now
        row["modifiedon"] = row["modifiedon"] or row["createdon"]
        if row.get("fullname", "") is None and table.logical in ("contact", "lead", "systemuser"):
            writes.derive(table, row)
        return row

    def _seed_spec(self, table: Table) -> tuple[Row, frozenset[str], frozenset[str]]:
        spec = self._seed_specs.get(table.entity_set)
        if spec is None:
            template: Row = {"@odata.etag": None, **dict.fromkeys(table.columns), **table.defaults}
            datetimes = frozenset(p for p, c in table.columns.items() if c.kind == "DateTime")
            guids = frozenset(p for p, c in table.columns.items()
                              if c.is_lookup or c.kind == "Uniqueidentifier")
            spec = self._seed_specs[table.entity_set] = (template, datetimes, guids)
        return spec

    def _seed_application_user(self) -> None:
        """The application user the client-credentials app acts as (Dataverse names it `# <app>`)."""
        if self.store.get("systemusers", self.user_id) is not None:
            return
        table = self.schema.tables["systemusers"]
        row = writes.new_row(table, self.user_id,
                             {"firstname": "#", "lastname": self.client_id, "applicationid": self.application_id,
                              "accessmode": 4, "isdisabled": False, "domainname": f"{self.client_id}@sandbox"},
                             now=self.store.now_text(), version=self.store.next_version(), user_id=self.user_id)
        self.store.put("systemusers", row)

    # ---------------------------------------------------------------------------------------- writes log
    def _wrote(self, table: Table, pk: str, deleted: Row | None = None) -> None:
        self._written_log.append((table.entity_set, pk, deleted))

    def _undo_written(self, mark: int) -> None:
        del self._written_log[mark:]

    def dump_writes(self) -> dict[str, Any]:
        """Final state of every row created, updated or deleted through the API, by entity set. A deleted
        row is its last state plus `"@removed": {"reason": "deleted"}`."""
        with self.lock:
            out: dict[str, list[Row]] = {}
            done: set[tuple[str, str]] = set()
            last_deleted: dict[tuple[str, str], Row] = {}
            for entity_set, pk, deleted in self._written_log:
                if deleted is not None:
                    last_deleted[(entity_set, pk)] = deleted
            for entity_set, pk, _ in self._written_log:
                if (entity_set, pk) in done:
                    continue
                done.add((entity_set, pk))
                row = self.store.get(entity_set, pk)
                if row is not None:
                    item = {k: v for k, v in row.items() if k != "@odata.etag"}
                else:
                    item = {k: v for k, v in last_deleted[(entity_set, pk)].items() if k != "@odata.etag"}
                    item["@removed"] = {"reason": "deleted"}
                out.setdefault(entity_set, []).append(item)
            return out

    # ------------------------------------------------------------------------------- change tracking admin
    def set_change_tracking(self, entity_set: str, enabled: bool) -> None:
        """Turn the table's "Track changes" setting on or off (systemusers start off)."""
        with self.lock:
            if entity_set == POINTER_SET:
                self.store.pointer_tracking = enabled
            else:
                self.store.state(entity_set).tracking = enabled

    def expire_change_tracking(self, entity_set: str | None = None) -> None:
        """Make every delta token issued so far invalid (as if older than ExpireChangeTrackingInDays)."""
        with self.lock:
            boundary = self.store.next_version()
            for name, state in self.store.tables.items():
                if entity_set is None or name == entity_set:
                    state.min_valid_version = boundary

    # ----------------------------------------------------------------------------------------- merges
    def merge_contacts(self, master_id: str, subordinate_id: str) -> None:
        """Merge two contacts as a user would in the UI: the subordinate is deactivated with `merged = true`
        and `_masterid_value` = master; its child records are re-parented to the master."""
        with self.lock:
            self.merge("contacts", master_id.lower(), subordinate_id.lower())

    def merge(self, entity_set: str, master_id: str, subordinate_id: str,
              update_content: dict[str, Any] | None = None, via_api: bool = False) -> None:
        table = self.schema.tables[entity_set]
        master, subordinate = self.store.get(entity_set, master_id), self.store.get(entity_set, subordinate_id)
        for pk, row in ((master_id, master), (subordinate_id, subordinate)):
            if row is None:
                raise ODataError(404, "0x80040217", f"{table.logical} With Id = {pk} Does Not Exist")
        if master_id == subordinate_id:
            raise ODataError(400, "0x80040203", "The master record and the subordinate record are the same.")
        assert master is not None and subordinate is not None
        now = self.store.now_text()
        content: Row = {}
        if update_content:
            content, _ = writes.prepare_changes(table, {k: v for k, v in update_content.items()
                                                        if k != table.pk and not k.startswith("@")},
                                                creating=False, resolve=self._resolve_ref)
        state, status = MERGED_STATE.get(table.logical, (1, 2))
        loser = writes.updated_row(table, subordinate, {"merged": True, "_masterid_value": master_id,
                                                        "statecode": state, "statuscode": status},
                                   now=now, version=self.store.next_version(), user_id=self.user_id)
        self.store.put(entity_set, loser)
        winner = writes.updated_row(table, master, content, now=now, version=self.store.next_version(),
                                    user_id=self.user_id)
        self.store.put(entity_set, winner)
        touched = [(entity_set, subordinate_id), (entity_set, master_id)]
        for other_set, other_state in self.store.tables.items():
            other = other_state.schema
            columns = [c for c in other.columns.values()
                       if c.is_lookup and table.logical in c.targets and c.name != "masterid"]
            if not columns:
                continue
            for pk, row in list(other_state.rows.items()):
                changes = {c.prop: master_id for c in columns if row.get(c.prop) == subordinate_id}
                if changes:
                    self.store.put(other_set, writes.updated_row(
                        other, row, changes, now=now, version=self.store.next_version(), user_id=self.user_id))
                    touched.append((other_set, pk))
        self.merges.append((entity_set, master_id, subordinate_id))
        if via_api:
            for name, pk in touched:
                self._written_log.append((name, pk, None))

    # ---------------------------------------------------------------------------------- vendor faults
    def _fault_due(self, switch: str) -> bool:
        """A vendor fault's budget: `true` = once, an int N = N times, per fault configuration."""
        if self.faults.config is not self._fault_config:
            self._fault_config = self.faults.config
            self._fault_counts.clear()
        setting = self.faults.vendor(switch)
        if not setting:
            return False
        budget = 1 if setting is True else int(setting)
        if self._fault_counts[switch] >= budget:
            return False
        self._fault_counts[switch] += 1
        return True

    def _paging_faults(self, table: Table, cache_key: tuple, predicate: Any, order: list, cookie: Any) -> None:
        """Run when a client follows the first nextLink of a read: another user saves the next row the client
        has not received and the last one it has; contacts may get merged."""
        if table.read_only or cookie.page != 1:
            return
        if self.faults.vendor("mutate_during_paging") and self._mutation_due():
            rows = self.store.query(table.entity_set, cache_key, predicate, order, table.pk)
            position = _position_after(rows, order, table.pk, cookie)
            targets = []
            if position < len(rows):
                targets.append(rows[position][table.pk])          # not returned yet
            if position > 0:
                targets.append(rows[position - 1][table.pk])      # already returned
            for pk in targets:
                self.touch(table.entity_set, pk)
        self._sync_faults(table)

    def _mutation_due(self) -> bool:
        """`mutate_during_paging`: `true` = every paged read, an int N = the next N paged reads."""
        setting = self.faults.vendor("mutate_during_paging")
        if setting is True:
            return True
        return self._fault_due("mutate_during_paging")

    def touch(self, entity_set: str, pk: str) -> None:
        """Someone saves the row without changing it: new versionnumber and modifiedon."""
        table = self.schema.tables[entity_set]
        row = self.store.get(entity_set, pk)
        if row is None:
            return
        self.store.put(entity_set, writes.updated_row(table, row, {}, now=self.store.now_text(),
                                                      version=self.store.next_version(), user_id=None))
        self.mutations.append((entity_set, pk))

    def _sync_faults(self, table: Table) -> None:
        if table.entity_set != "contacts" or not self._fault_due("merge_during_sync"):
            return
        pair = self._merge_candidates()
        if pair is not None:
            self.merge("contacts", *pair)

    def _merge_candidates(self) -> tuple[str, str] | None:
        """Two active, unmerged contacts: a duplicate pair by e-mail if there is one (older one wins)."""
        rows = sorted((r for r in self.store.tables["contacts"].rows.values()
                       if r.get("statecode") == 0 and not r.get("merged")), key=lambda r: r["contactid"])
        by_email: dict[str, Row] = {}
        for row in rows:
            email = (row.get("emailaddress1") or "").lower()
            if email and email in by_email:
                first = by_email[email]
                older, newer = sorted((first, row), key=lambda r: (r["createdon"], r["contactid"]))
                return older["contactid"], newer["contactid"]
            if email:
                by_email[email] = row
        if len(rows) >= 2:
            return rows[0]["contactid"], rows[1]["contactid"]
        return None


def _entra_error(status: int, error: str, code: int, message: str) -> Response:
    now = datetime.now(UTC)
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    stamp = now.strftime("%Y-%m-%d %H:%M:%SZ")
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} "
                             f"Timestamp: {stamp}",
        "error_codes": [code],
        "timestamp": stamp,
        "trace_id": trace,
        "correlation_id": correlation,
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
    }
    return Response(orjson.dumps(body), status, media_type="application/json; charset=utf-8")


__all__ = ["JSON", "DynamicsEmulator"]
