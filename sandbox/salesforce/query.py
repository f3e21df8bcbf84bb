"""`GET /query`, `GET /queryAll` and query locators (`nextRecordsUrl`).

A query's row set is fixed when it runs: the locator keeps the ordered ids. Field values are read when a
batch is served, so a record edited while the client pages shows its new values (and new SystemModstamp)
in a later batch — the behaviour the `mutate_during_paging` fault exercises. In `query` mode a row
deleted after the query ran is left out of its batch (the batch is then shorter than the batch size,
which Salesforce also allows).

Locators look like Salesforce's: `01g…-2000` (an 18-character 01g id, a dash, the offset of the next
batch). They are released when the last batch is served, expire after 15 idle minutes, and at most 10
stay open per org — opening an 11th drops the least recently used, whose locator then answers
INVALID_QUERY_LOCATOR, as Salesforce does.
"""

from __future__ import annotations

import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from sandbox.salesforce import soql
from sandbox.salesforce.errors import SFError, bad_request
from sandbox.salesforce.ids import QUERY_LOCATOR_PREFIX, make_id
from sandbox.salesforce.routing import Ctx, Reply, RouteTable

if TYPE_CHECKING:
    from sandbox.salesforce.emulator import SalesforceEmulator

DEFAULT_BATCH = 2000
MIN_BATCH = 200
_BATCH_OPTION = re.compile(r"batchSize\s*=\s*(\d+)", re.IGNORECASE)


def batch_size(ctx: Ctx, default: int = DEFAULT_BATCH) -> int:
    """`Sforce-Query-Options: batchSize=N` clamped to 200..2000 (Salesforce treats it as a hint)."""
    match = _BATCH_OPTION.search(ctx.headers.get("sforce-query-options", "") or "")
    if match is None:
        return default
    return min(max(int(match.group(1)), MIN_BATCH), DEFAULT_BATCH)


@dataclass
class Cursor:
    locator: str
    sobject: str
    ids: list[str]
    project: Callable[[dict], dict]
    shape: tuple                         # FragmentCache key part: sObject, version, selected fields
    include_deleted: bool
    batch: int
    version: str
    last_used: float
    mutated: bool = False


class Cursors:
    """Open query locators: least recently used first, capped and expiring like Salesforce's."""

    def __init__(self, limit: int = 10, idle_seconds: float = 900.0) -> None:
        self.limit = limit
        self.idle_seconds = idle_seconds
        self._open: OrderedDict[str, Cursor] = OrderedDict()
        self._counter = 0

    def open(self, **kw: Any) -> Cursor:
        now = time.monotonic()
        self._expire(now)
        while len(self._open) >= self.limit:
            self._open.popitem(last=False)
        self._counter += 1
        cursor = Cursor(locator=make_id(QUERY_LOCATOR_PREFIX, self._counter, pod="Hb"), last_used=now, **kw)
        self._open[cursor.locator] = cursor
        return cursor

    def get(self, locator: str) -> Cursor | None:
        now = time.monotonic()
        self._expire(now)
        cursor = self._open.get(locator)
        if cursor is not None:
            cursor.last_used = now
            self._open.move_to_end(locator)
        return cursor

    def close(self, locator: str) -> None:
        self._open.pop(locator, None)

    def clear(self) -> None:
        self._open.clear()

    def __len__(self) -> int:
        return len(self._open)

    def _expire(self, now: float) -> None:
        stale = [key for key, cursor in self._open.items() if now - cursor.last_used > self.idle_seconds]
        for key in stale:
            del self._open[key]


class FragmentCache:
    """Serialised result batches (`orjson.Fragment` of the `records` array), reused while unchanged.

    Syncs and benchmarks read the same batches again and again; serialising 2,000 records is most of what
    a batch costs. A batch is keyed by result shape (sObject, API version, selected fields) and its ids, and
    is valid only while every record is still the very dict it was built from — writes replace a record's
    dict, so any write to any of its records invalidates it. Shapes with parent fields are never cached (a
    parent can change without the child changing). Least recently used batches are dropped first.
    """

    def __init__(self, batches: int = 128) -> None:
        self.limit = batches
        self._cache: OrderedDict[tuple, tuple[list[dict], orjson.Fragment]] = OrderedDict()

    def clear(self) -> None:
        self._cache.clear()

    def records(self, shape: tuple, rows: list[dict], project: Callable[[dict], dict]) -> Any:
        """The `records` value for these rows: a cached or new Fragment, or a list when not cacheable."""
        if not getattr(project, "cacheable", False) or not rows:
            return [project(row) for row in rows]
        key = (shape, tuple(row["Id"] for row in rows))
        hit = self._cache.get(key)
        if hit is not None and all(old is new for old, new in zip(hit[0], rows, strict=True)):
            self._cache.move_to_end(key)
            return hit[1]
        built = orjson.Fragment(orjson.dumps([project(row) for row in rows]))
        self._cache[key] = (rows, built)
        self._cache.move_to_end(key)
        while len(self._cache) > self.limit:
            self._cache.popitem(last=False)
        return built


class QueryApi:
    def __init__(self, emulator: SalesforceEmulator) -> None:
        self.emulator = emulator

    def register(self, table: RouteTable) -> None:
        table.add("GET", "/query", lambda ctx: self.query(ctx, include_deleted=False))
        table.add("GET", "/queryAll", lambda ctx: self.query(ctx, include_deleted=True))
        table.add("GET", "/query/{locator}", self.more)
        table.add("GET", "/queryAll/{locator}", self.more)

    def parse(self, text: str) -> soql.Query:
        emulator = self.emulator
        return soql.parse(text, emulator.store, emulator.clock(), self._semi_join)

    def _semi_join(self, inner: soql.Query) -> set[Any]:
        store = self.emulator.store
        get = soql.field_getter(inner.columns[0], store)
        return {get(record) for record in soql.execute(inner, store, include_deleted=False)} - {None}

    def query(self, ctx: Ctx, *, include_deleted: bool) -> Reply:
        text = ctx.query.get("q")
        if text is None:
            raise bad_request("MALFORMED_QUERY", "A SOQL query is required in the q parameter")
        emulator = self.emulator
        parsed = self.parse(text)
        rows = soql.execute(parsed, emulator.store, include_deleted)
        sobject = parsed.sobject.name
        if parsed.count_only:
            body: dict[str, Any] = {"totalSize": len(rows), "done": True, "records": []}
        elif parsed.aggregate is not None:
            alias, ref = parsed.aggregate
            get = soql.field_getter(ref, emulator.store) if ref is not None else None
            count = sum(1 for row in rows if get is None or get(row) is not None)
            body = {"totalSize": 1, "done": True,
                    "records": [{"attributes": {"type": "AggregateResult"}, alias: count}]}
        else:
            project = soql.projection(parsed.columns, emulator.store, sobject, ctx.version)
            shape = (sobject, ctx.version, tuple(ref.name for ref in parsed.columns))
            size = batch_size(ctx)
            total = len(rows)
            body = {"totalSize": total, "done": total <= size}
            if total > size:
                cursor = emulator.cursors.open(sobject=sobject, ids=[row["Id"] for row in rows], project=project,
                                               shape=shape, include_deleted=include_deleted, batch=size,
                                               version=ctx.version)
                body["nextRecordsUrl"] = f"/services/data/v{ctx.version}/query/{cursor.locator}-{size}"
            body["records"] = self._records(ctx, shape, rows[:size], project)
        emulator.after_query(sobject)
        return Reply(200, body)

    def more(self, ctx: Ctx) -> Reply:
        locator, _, offset_text = ctx.params["locator"].rpartition("-")
        emulator = self.emulator
        cursor = emulator.cursors.get(locator) if locator and offset_text.isdigit() else None
        offset = int(offset_text) if offset_text.isdigit() else -1
        if cursor is None or not 0 <= offset <= len(cursor.ids):
            raise SFError(400, "INVALID_QUERY_LOCATOR", "invalid query locator")
        size = batch_size(ctx, cursor.batch)
        emulator.mutate_during_paging(cursor, offset, size)
        table = emulator.store.tables[cursor.sobject]
        rows = []
        for rid in cursor.ids[offset:offset + size]:
            record = table.get(rid)
            if record is None or (not cursor.include_deleted and record.get("IsDeleted")):
                continue
            rows.append(record)
        end = offset + size
        body: dict[str, Any] = {"totalSize": len(cursor.ids), "done": end >= len(cursor.ids)}
        if body["done"]:
            emulator.cursors.close(cursor.locator)
        else:
            body["nextRecordsUrl"] = f"/services/data/v{cursor.version}/query/{cursor.locator}-{end}"
        body["records"] = self._records(ctx, cursor.shape, rows, cursor.project)
        return Reply(200, body)

    def _records(self, ctx: Ctx, shape: tuple, rows: list[dict], project: Callable[[dict], dict]) -> Any:
        if ctx.internal:  # a /composite subrequest: its body may be referenced (@{ref.records[0].Id})
            return [project(row) for row in rows]
        return self.emulator.fragments.records(shape, rows, project)
