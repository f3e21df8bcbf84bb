"""Plumbing shared by the REST, composite and Bulk handlers: request context, replies, the route table.

Handlers are plain synchronous functions `handler(ctx) -> Reply` run under the emulator's lock. The same
table serves HTTP (each entry becomes Starlette routes, with and without a trailing slash) and the
`/composite` endpoint, which dispatches its subrequests through `RouteTable.match` without HTTP.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.routing import compile_path

from sandbox.salesforce.errors import SFError, bad_request

API_PREFIX = "/services/data/v{version}"
JSON_TYPE = "application/json;charset=UTF-8"
_VERSION = re.compile(r"\d{2}\.0")
#: API versions the emulated org serves (Salesforce retired 21.0–30.0; 66.0 is the newest it knows)
MIN_VERSION, MAX_VERSION = 31.0, 66.0
UNSET: Any = object()


@dataclass
class Ctx:
    """What a handler sees of a request (an HTTP request or a composite subrequest)."""

    method: str
    version: str
    params: dict[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    parsed: Any = UNSET
    internal: bool = False        # a /composite subrequest: bodies must stay plain JSON values

    def json(self) -> Any:
        if self.parsed is UNSET:
            if not self.body.strip():
                raise bad_request("JSON_PARSER_ERROR", "The HTTP entity body is required, but this request has "
                                  "no entity body.")
            try:
                self.parsed = orjson.loads(self.body)
            except orjson.JSONDecodeError as error:
                raise bad_request("JSON_PARSER_ERROR", f"Unexpected character: {error}") from None
        return self.parsed

    @property
    def version_number(self) -> float:
        return float(self.version)


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None
    media_type: str = JSON_TYPE

    @classmethod
    def error(cls, error: SFError) -> Reply:
        return cls(error.status, error.body())


Handler = Callable[[Ctx], Reply]


@dataclass
class Entry:
    methods: tuple[str, ...]
    path: str                     # relative to /services/data/v{version}
    handler: Handler
    min_version: float = MIN_VERSION
    composite: bool = True        # reachable as a /composite subrequest
    regex: re.Pattern[str] = field(init=False)

    def __post_init__(self) -> None:
        self.regex = compile_path(API_PREFIX + self.path)[0]

    @property
    def template(self) -> str:
        return API_PREFIX + self.path


class RouteTable:
    def __init__(self) -> None:
        self.entries: list[Entry] = []

    def add(self, methods: str, path: str, handler: Handler, **kw: Any) -> None:
        self.entries.append(Entry(tuple(methods.split()), path, handler, **kw))

    def match(self, method: str, path: str) -> tuple[Entry | None, dict[str, str], list[str]]:
        """The entry for (method, path), its path parameters, and the methods the path allows."""
        path = path.rstrip("/") or path
        allowed: list[str] = []
        for entry in self.entries:
            found = entry.regex.match(path)
            if found is None:
                continue
            if method in entry.methods:
                return entry, found.groupdict(), allowed
            allowed.extend(entry.methods)
        return None, {}, allowed


def check_version(version: str, minimum: float = MIN_VERSION) -> None:
    if not _VERSION.fullmatch(version) or not minimum <= float(version) <= MAX_VERSION:
        raise SFError(404, "NOT_FOUND", "The requested resource does not exist")


def method_not_allowed(method: str, allowed: list[str]) -> SFError:
    listed = ",".join(["HEAD", *dict.fromkeys(allowed)]) if "GET" in allowed else ",".join(dict.fromkeys(allowed))
    return SFError(405, "METHOD_NOT_ALLOWED", f"HTTP Method '{method}' not allowed. Allowed are {listed}")


def flag(value: Any) -> bool:
    """Salesforce booleans in query strings and JSON bodies."""
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"
