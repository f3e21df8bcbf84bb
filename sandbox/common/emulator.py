"""The base every CRM emulator builds on: routing, request log, auth tokens, faults, admin endpoints.

An emulator subclass declares its vendor routes with `self.route(...)`, answers vendor-style errors through
the three `*_response` hooks, and keeps its data in its own store. Everything shared — counting calls per
endpoint for the benchmarks, fault injection, bearer-token checks and the `/__sandbox/*` admin API — is here,
so the three emulators behave the same way to the tests that drive them.

Admin API (never faulted, never counted, no auth):
  GET  /__sandbox/health            {"emulator": name, "ok": true}
  GET  /__sandbox/requests          {"counts": {"GET /route": n}, "total": n, "log": [...]} (?log=0 omits it;
                                    each entry has its route, path, query, status, arrival time `at`
                                    and the request headers that shape a response, without credentials:
                                    what a benchmark needs to replay the same requests)
  POST /__sandbox/requests/reset    clears the request log
  GET  /__sandbox/dump              everything written through the API (what write-back created or changed)
  GET  /__sandbox/faults            the current FaultConfig
  PUT  /__sandbox/faults            replace the FaultConfig (JSON body)
  POST /__sandbox/tokens/expire     invalidate every issued access token now
"""

from __future__ import annotations

import asyncio
import math
import secrets
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sandbox.common.faults import Fault, FaultConfig, FaultInjector

Handler = Callable[[Request], Awaitable[Response]]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None,
                  content_type: str = "application/json;charset=utf-8") -> Response:
    """A JSON response encoded with orjson (fast enough that the emulator is never the bottleneck)."""
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type=content_type)


@dataclass
class LoggedRequest:
    method: str
    route: str
    path: str
    query: str
    status: int
    duration_ms: float
    fault: str | None = None
    at: float = 0.0          # arrival, seconds since the epoch (request rates are measured from these)
    headers: dict[str, str] = field(default_factory=dict)  # `logged_headers`: no credentials, no transport


#: request headers the log leaves out: credentials (never logged) and transport details a replay sets itself
UNLOGGED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "host", "content-length",
                              "connection", "user-agent", "accept-encoding"})


def logged_headers(request: Request) -> dict[str, str]:
    """The headers of a request worth keeping to replay it (paging and format preferences, options)."""
    return {name: value for name, value in request.headers.items() if name not in UNLOGGED_HEADERS}


@dataclass
class RequestLog:
    """Counts calls per endpoint (route template), the unit the benchmarks report API calls in."""

    keep_entries: int = 20_000
    entries: list[LoggedRequest] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self.counts[entry.route] += 1
            if len(self.entries) < self.keep_entries:
                self.entries.append(entry)

    def reset(self) -> None:
        with self._lock:
            self.entries.clear()
            self.counts.clear()

    def snapshot(self, with_log: bool = True) -> dict[str, Any]:
        with self._lock:
            body: dict[str, Any] = {"counts": dict(self.counts), "total": sum(self.counts.values())}
            if with_log:
                body["log"] = [entry.__dict__ for entry in self.entries]
            return body


class TokenBook:
    """Bearer tokens the emulator accepts. Token endpoints issue new ones; expiry removes them."""

    def __init__(self, initial: list[str]) -> None:
        self._lock = threading.Lock()
        self._valid = set(initial)
        self._expired: set[str] = set()

    def issue(self, prefix: str = "tok") -> str:
        token = f"{prefix}{secrets.token_hex(12)}"
        with self._lock:
            self._valid.add(token)
        return token

    def add(self, token: str) -> None:
        with self._lock:
            self._valid.add(token)
            self._expired.discard(token)

    def state(self, token: str | None) -> str:
        """'valid', 'expired' (was valid once) or 'invalid'."""
        with self._lock:
            if token in self._valid:
                return "valid"
            return "expired" if token in self._expired else "invalid"

    def expire_all(self) -> None:
        with self._lock:
            self._expired |= self._valid
            self._valid.clear()


class Emulator:
    """Base class of the HubSpot, Salesforce and Dataverse emulators."""

    name: str = "emulator"
    #: the static token a fresh emulator accepts (printed by `journeyhub sandbox up`)
    default_token: str = "sandbox-token"

    def __init__(self, faults: FaultConfig | None = None) -> None:
        self.faults = FaultInjector(faults)
        self.requests = RequestLog()
        self.tokens = TokenBook([self.default_token])
        self.lock = threading.RLock()
        self.base_url = "http://127.0.0.1"  # set by the server once the port is bound
        self._routes: list[Route] = []
        self._admin_routes()

    # ----------------------------------------------------------------- hooks for subclasses
    def rate_limited_response(self, fault: Fault) -> Response:
        return json_response({"error": "rate limited"}, 429, {"Retry-After": _seconds(fault.retry_after)})

    def server_error_response(self, fault: Fault) -> Response:
        return json_response({"error": "server error"}, fault.status)

    def unauthorized_response(self, expired: bool) -> Response:
        return json_response({"error": "unauthorized"}, 401)

    def dump_writes(self) -> dict[str, Any]:
        """Everything written through the API (not seeded); subclasses override."""
        return {}

    def load(self, world: Any) -> None:
        """Seed the store from the generated world's part for this CRM; subclasses override."""

    # ----------------------------------------------------------------- routing
    def route(self, path: str, handler: Handler, methods: list[str], *, auth: bool = True,
              faults: bool = True, name: str | None = None) -> None:
        """Register a vendor route; `name` is the key the request log counts it under."""
        for method in methods:
            key = name or f"{method} {path}"
            self._routes.append(Route(path, self._wrap(handler, key, auth, faults), methods=[method]))

    def app(self) -> Starlette:
        return Starlette(routes=list(self._routes))

    def bearer_token(self, request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        if header.lower().startswith("bearer "):
            return header[7:].strip()
        return None

    def _wrap(self, handler: Handler, key: str, auth: bool, faults: bool) -> Handler:
        async def endpoint(request: Request) -> Response:
            arrived, started = time.time(), time.perf_counter()
            fault_name: str | None = None
            response = await self._precheck(request, auth, faults)
            if response is not None:
                fault_name = response.headers.get("x-sandbox-fault")
            else:
                try:
                    response = await handler(request)
                except Exception as error:  # an emulator bug must surface as a 500, loudly
                    response = json_response({"error": "emulator failure", "detail": repr(error)}, 500)
            self.requests.record(LoggedRequest(
                request.method, key, request.url.path, request.url.query, response.status_code,
                (time.perf_counter() - started) * 1000, fault_name, arrived, logged_headers(request)))
            return response

        return endpoint

    async def _precheck(self, request: Request, auth: bool, faults: bool) -> Response | None:
        """Faults first (as a gateway would), then auth. Returns a response when the request stops here."""
        if faults:
            fault = self.faults.decide(request.method, request.url.path)
            if fault is not None:
                if fault.kind == "delay":
                    await asyncio.sleep(fault.delay_seconds)
                elif fault.kind == "timeout":   # the request was received in full: a server goes on with it
                    await request.body()         # even when the client gives up waiting (it is cached)
                    await asyncio.sleep(fault.delay_seconds or 30)
                elif fault.kind == "rate_limit":
                    return _tag(self.rate_limited_response(fault), "rate_limit")
                elif fault.kind == "error":
                    return _tag(self.server_error_response(fault), "error")
                elif fault.kind == "expire_token":
                    self.tokens.expire_all()
        if auth:
            token = self.bearer_token(request)
            state = self.tokens.state(token)
            if state == "valid" and self.faults.count_authenticated_request():
                self.tokens.expire_all()
                state = "expired"
            if state != "valid":
                return _tag(self.unauthorized_response(expired=state == "expired"), "auth")
        return None

    def issue_token(self, prefix: str = "tok") -> str:
        """Used by token endpoints: a fresh token, and the expiry counter starts again."""
        self.faults.token_refreshed()
        return self.tokens.issue(prefix)

    # ----------------------------------------------------------------- admin API
    def _admin_routes(self) -> None:
        async def health(request: Request) -> Response:
            return json_response({"emulator": self.name, "ok": True})

        async def requests_(request: Request) -> Response:
            return json_response(self.requests.snapshot(request.query_params.get("log", "1") != "0"))

        async def reset(request: Request) -> Response:
            self.requests.reset()
            return json_response({"ok": True})

        async def dump(request: Request) -> Response:
            with self.lock:
                return json_response(self.dump_writes())

        async def faults(request: Request) -> Response:
            if request.method == "PUT":
                self.faults.configure(FaultConfig.model_validate(orjson.loads(await request.body())))
            return json_response(self.faults.config.model_dump())

        async def expire(request: Request) -> Response:
            self.tokens.expire_all()
            return json_response({"ok": True})

        self._routes += [
            Route("/__sandbox/health", health, methods=["GET"]),
            Route("/__sandbox/requests", requests_, methods=["GET"]),
            Route("/__sandbox/requests/reset", reset, methods=["POST"]),
            Route("/__sandbox/dump", dump, methods=["GET"]),
            Route("/__sandbox/faults", faults, methods=["GET", "PUT"]),
            Route("/__sandbox/tokens/expire", expire, methods=["POST"]),
        ]


def _seconds(value: float) -> str:
    """Retry-After carries whole seconds (RFC 9110 delta-seconds), as every vendor sends it."""
    return str(max(0, math.ceil(value)))


def _tag(response: Response, fault: str) -> Response:
    response.headers["x-sandbox-fault"] = fault
    return response
