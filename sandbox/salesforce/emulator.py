"""`SalesforceEmulator`: wiring of the store, the REST/query/Bulk/login APIs, API usage and vendor faults."""

from __future__ import annotations

import math
import random
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.common.emulator import Emulator
from sandbox.common.faults import Fault, FaultConfig
from sandbox.common.org import check_org
from sandbox.salesforce.auth import LoginApi
from sandbox.salesforce.bulk import BulkApi
from sandbox.salesforce.data import SalesforceData
from sandbox.salesforce.errors import SFError, not_found
from sandbox.salesforce.ids import ORG_PREFIX, make_id, to18
from sandbox.salesforce.query import Cursor, Cursors, FragmentCache, QueryApi
from sandbox.salesforce.rest import RestApi, split_subrequest_url
from sandbox.salesforce.routing import (
    JSON_TYPE,
    MAX_VERSION,
    UNSET,
    Ctx,
    Entry,
    Reply,
    RouteTable,
    check_version,
    method_not_allowed,
)
from sandbox.salesforce.schema import SObjectType, build_schema
from sandbox.salesforce.store import Store

_SEASONS = ("Winter", "Spring", "Summer")
_ALL_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE"]


class Credentials(NamedTuple):
    username: str
    password: str
    security_token: str
    client_id: str
    client_secret: str


class SalesforceEmulator(Emulator):
    """Salesforce REST API (query, sObjects, collections, composite), Bulk API 2.0 queries and login, on
    loopback, faithful enough for the real simple-salesforce. Behaviour notes: sandbox/salesforce/QUIRKS.md.

    Python-side helpers for tests and the world: `load`, `dump_writes`, `records`, `record`, `merge`,
    `api_used` / `reset_api_usage()`, and the `merges` / `mutations` the vendor faults made.
    """

    name = "salesforce"

    def __init__(
        self,
        faults: FaultConfig | None = None,
        *,
        daily_api_limit: int = 1_000_000,
        api_version_default: str = "59.0",
        bulk_poll_delay_seconds: float = 0.0,
        org: str = "full",
        custom_fields: bool | None = None,
        username: str = "hub@sandbox.example",
        password: str = "sandbox",
        security_token: str = "sandbox",
        client_id: str = "sandbox-client",
        client_secret: str = "sandbox-secret",
        clock: Callable[[], datetime] | None = None,
        query_cursor_limit: int = 10,
        query_cursor_idle_seconds: float = 900.0,
    ) -> None:
        super().__init__(faults)
        self.daily_api_limit = daily_api_limit
        self.api_used = 0
        self.api_version_default = api_version_default
        self.bulk_poll_delay_seconds = bulk_poll_delay_seconds
        #: "full" or "plain" (no custom fields: QUIRKS.md); `custom_fields` overrides what the org implies
        self.org = check_org(org)
        self.custom_fields = org == "full" if custom_fields is None else custom_fields
        self.credentials = Credentials(username, password, security_token, client_id, client_secret)
        self.clock: Callable[[], datetime] = clock or (lambda: datetime.now(UTC))
        self.schema: dict[str, SObjectType] = build_schema(self.custom_fields)
        self.store = Store(self.schema, self.clock, username)
        self.org_id = make_id(ORG_PREFIX, 1, pod="Hb")
        self.cursors = Cursors(query_cursor_limit, query_cursor_idle_seconds)
        self.fragments = FragmentCache()
        self.table = RouteTable()
        self.rest = RestApi(self)
        self.query_api = QueryApi(self)
        self.bulk = BulkApi(self)
        self.login = LoginApi(self)
        self.rest.register(self.table)
        self.query_api.register(self.table)
        self.bulk.register(self.table)
        self.merges: list[tuple[str, str, str]] = []       # (sObject, master, loser) by merge_during_sync
        self.mutations: list[tuple[str, str]] = []         # (returned id, pending id) by mutate_during_paging
        self._cache: dict[Any, Any] = {}
        self._fault_config: FaultConfig | None = None
        self._rng = random.Random(0)
        self._merges_done = 0
        self._register_http()

    # ------------------------------------------------------------------------------------------ Python API
    def load(self, world: SalesforceData | dict[str, list[dict]]) -> None:
        records = world if isinstance(world, dict) else world.records   # SalesforceData or a look-alike
        with self.lock:
            self.store.load(records)
            self.cursors.clear()
            self.fragments.clear()
            self.bulk.jobs.clear()

    def dump_writes(self) -> dict[str, Any]:
        with self.lock:
            return {sobject: [dict(self.store.tables[sobject][rid]) for rid in written]
                    for sobject, written in self.store.written.items() if written}

    def records(self, sobject: str) -> list[dict]:
        """Every stored record of `sobject` (recycle bin included), as copies."""
        with self.lock:
            return [dict(record) for record in self.store.tables[sobject].values()]

    def record(self, record_id: str) -> dict | None:
        with self.lock:
            found = self.store.get(to18(record_id) or record_id)
            return None if found is None else dict(found)

    def merge(self, sobject: str, master_id: str, loser_id: str) -> None:
        """Merge two records as a user would in Salesforce (see Store.merge)."""
        with self.lock:
            self.store.merge(sobject, master_id, loser_id)

    def reset_api_usage(self) -> None:
        with self.lock:
            self.api_used = 0

    def limit_info(self) -> str:
        return f"api-usage={self.api_used}/{self.daily_api_limit}"

    def cached(self, key: Any, build: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = build()
        return self._cache[key]

    # ------------------------------------------------------------------------------------------ error hooks
    def _json(self, body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
        merged = {"Sforce-Limit-Info": self.limit_info(), **(headers or {})}
        return Response(orjson.dumps(body), status_code=status, headers=merged, media_type=JSON_TYPE)

    def rate_limited_response(self, fault: Fault) -> Response:
        body = [{"message": "Request limit exceeded: the sandbox's rate_limit fault throttled this request.",
                 "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
        return self._json(body, 429, {"Retry-After": str(max(0, math.ceil(fault.retry_after)))})

    def server_error_response(self, fault: Fault) -> Response:
        if fault.status == 503:
            error = {"message": "Server temporarily unavailable. Please try again later.",
                     "errorCode": "SERVER_UNAVAILABLE"}
        else:
            error = {"message": "An unexpected error occurred. Please include this ErrorId if you contact support: "
                                "1024316485-34652 (-1386473129)", "errorCode": "UNKNOWN_EXCEPTION"}
        return self._json([error], fault.status)

    def unauthorized_response(self, expired: bool) -> Response:
        return self._json([{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}], 401,
                          {"WWW-Authenticate": "Token"})

    # ------------------------------------------------------------------------------------------ HTTP
    def _register_http(self) -> None:
        async def versions(request: Request) -> Response:
            listed = []
            for number in range(31, int(MAX_VERSION) + 1):
                season, offset = (number - 32) % 3, (number - 32) // 3   # v32 was Winter '15
                label = f"{_SEASONS[season]} '{(15 + offset) % 100:02d}"
                listed.append({"label": label, "url": f"/services/data/v{number}.0", "version": f"{number}.0"})
            return Response(orjson.dumps(listed), media_type=JSON_TYPE)

        for path in ("/services/data", "/services/data/"):
            self.route(path, versions, ["GET"], auth=False, faults=False, name="GET /services/data")
        for entry in self.table.entries:
            endpoint = self._endpoint(entry)
            for method in entry.methods:
                for path in (entry.template, entry.template + "/"):
                    self.route(path, endpoint, [method], name=f"{method} {entry.template}")
        self.login.register()
        self.route("/services/{rest:path}", self._unmatched, _ALL_METHODS, name="unmatched /services")

    def _endpoint(self, entry: Entry) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            ctx = Ctx(request.method, request.path_params.get("version", ""), dict(request.path_params),
                      request.query_params, request.headers, await request.body())
            with self.lock:
                try:
                    reply = self.run(entry, ctx, count=True)
                except Exception:
                    self.store.abandon_transactions()
                    raise
                return self.respond(reply)
        return endpoint

    async def _unmatched(self, request: Request) -> Response:
        path = request.url.path.rstrip("/")
        _, _, allowed = self.table.match(request.method, path) if path.startswith("/services/data/v") else (
            None, {}, [])
        error = method_not_allowed(request.method, allowed) if allowed else not_found()
        return self.respond(Reply.error(error))

    def run(self, entry: Entry, ctx: Ctx, *, count: bool) -> Reply:
        """One REST call: daily API counter, version check, handler; SFError becomes its JSON-array reply."""
        try:
            if count:
                if self.api_used >= self.daily_api_limit:
                    raise SFError(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded.")
                self.api_used += 1
            check_version(ctx.version, entry.min_version)
            return entry.handler(ctx)
        except SFError as error:
            return Reply.error(error)

    def respond(self, reply: Reply) -> Response:
        headers = {**reply.headers, "Sforce-Limit-Info": self.limit_info()}
        if reply.raw is not None:
            return Response(reply.raw, status_code=reply.status, headers=headers, media_type=reply.media_type)
        if reply.status == 204:
            return Response(b"", status_code=204, headers=headers)
        return Response(orjson.dumps(reply.body), status_code=reply.status, headers=headers,
                        media_type=reply.media_type)

    def dispatch_internal(self, method: str, url: str, body: Any, headers: dict[str, str]) -> Reply:
        """A /composite subrequest: routed through the same table, not counted as an API call."""
        path, query = split_subrequest_url(url)
        if not re.match(r"/services/data/v\d", path):
            return Reply(400, [{"errorCode": "INVALID_API_INPUT",
                                "message": f"The url of a subrequest must start with /services/data/vXX.X: {url}"}])
        entry, params, allowed = self.table.match(method, path)
        if entry is None:
            return Reply.error(method_not_allowed(method, allowed) if allowed else not_found())
        if not entry.composite:
            return Reply(400, [{"errorCode": "INVALID_API_INPUT",
                                "message": f"{method} {path} is not supported as a composite subrequest"}])
        ctx = Ctx(method, params.get("version", ""), params, query,
                  {str(key).lower(): str(value) for key, value in headers.items()}, b"",
                  body if body is not None else UNSET, internal=True)
        return self.run(entry, ctx, count=False)

    # ------------------------------------------------------------------------------------------ vendor faults
    def _vendor_rng(self) -> random.Random:
        config = self.faults.config
        if config is not self._fault_config:
            self._fault_config = config
            self._rng = random.Random(config.seed)
            self._merges_done = 0
        return self._rng

    def after_query(self, sobject: str) -> None:
        """`merge_during_sync`: right after a Contact query is answered, two Contacts get merged.

        `true` merges once per fault configuration, an integer N merges on each of the next N Contact
        queries. Duplicates by e-mail are preferred; the older record wins, as a user usually keeps it.
        """
        switch = self.faults.vendor("merge_during_sync")
        if sobject != "Contact" or not switch:
            return
        rng = self._vendor_rng()
        budget = 1 if switch is True else int(switch)
        if self._merges_done >= budget:
            return
        live = sorted(self.store.live("Contact"), key=lambda record: record["Id"])
        by_email: dict[str, list[dict]] = {}
        for record in live:
            if record.get("Email"):
                by_email.setdefault(record["Email"].casefold(), []).append(record)
        groups = [group for _, group in sorted(by_email.items()) if len(group) > 1]
        if groups:
            pair = rng.choice(groups)[:2]
        elif len(live) >= 2:
            pair = rng.sample(live, 2)
        else:
            return
        master, loser = sorted(pair, key=lambda record: (record["CreatedDate"], record["Id"]))
        self._merges_done += 1
        self.store.merge("Contact", master["Id"], loser["Id"])
        self.merges.append(("Contact", master["Id"], loser["Id"]))

    def mutate_during_paging(self, cursor: Cursor, offset: int, size: int) -> None:
        """`mutate_during_paging`: on a locator's first nextRecordsUrl fetch, another user edits one record
        already returned and one not yet returned (in a later batch when there is one)."""
        if cursor.mutated or offset <= 0 or not self.faults.vendor("mutate_during_paging"):
            return
        rng = self._vendor_rng()
        table = self.store.tables[cursor.sobject]

        def usable(ids: list[str]) -> list[str]:
            return [rid for rid in ids if rid in table and (cursor.include_deleted or not table[rid].get("IsDeleted"))]

        returned = usable(cursor.ids[:offset])
        pending = usable(cursor.ids[offset + size:]) or usable(cursor.ids[offset:])
        if not returned or not pending:
            return
        cursor.mutated = True
        picks = (rng.choice(returned), rng.choice(pending))
        for rid in picks:
            self.store.touch(rid)
        self.mutations.append(picks)
