"""The in-memory Dataverse organisation: rows per table, the org-wide row version, change-tracking indexes,
alternate-key indexes, a GUID → table index for lookups, query caching and change-set transactions.

Rows are immutable dicts in exactly the shape served for "all columns, no annotations"
(`{"@odata.etag": 'W/"12"', "contactid": …, …}`); a write replaces the dict. That makes full-row pages
zero-copy, lets cached query results be shared safely, and makes rollback a matter of putting old dicts back.
Callers hold the emulator's lock around every call.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sandbox.dynamics.odata import OrderKey, Predicate, format_datetime, normalize_datetime, sort_value
from sandbox.dynamics.schema import ACTIVITY_TABLES, Schema, Table

Row = dict[str, Any]
POINTER_SET = "activitypointers"


def etag(version: int) -> str:
    return f'W/"{version}"'


@dataclass
class TableState:
    schema: Table
    tracking: bool
    rows: dict[str, Row] = field(default_factory=dict)
    versions: OrderedDict[str, int] = field(default_factory=OrderedDict)  # ascending version order
    tombstones: list[tuple[int, str]] = field(default_factory=list)       # (version, pk), ascending
    alt_index: dict[str, dict[tuple, str]] = field(default_factory=dict)  # key name → values → pk
    generation: int = 0
    min_valid_version: int = 0
    sorted_pks: list[str] | None = None


class Store:
    def __init__(self, schema: Schema, clock: Callable[[], datetime]) -> None:
        self.schema = schema
        self.clock = clock
        self.tables: dict[str, TableState] = {}
        for entity_set, table in schema.tables.items():
            if table.read_only:
                continue
            state = TableState(table, table.tracking_default)
            state.alt_index = {name: {} for name in table.alt_keys}
            self.tables[entity_set] = state
        self.pointer_tracking = False
        self.owner: dict[str, str] = {}          # guid → entity set holding it
        self.version = 1_000_000                  # last row version issued (org-wide, like SQL rowversion)
        self._last_now = datetime(2000, 1, 1, tzinfo=UTC)
        self._undo: list[tuple] | None = None
        self._cache: OrderedDict[tuple, tuple[Any, list[Row]]] = OrderedDict()
        self._pointer_cache: tuple[Any, dict[str, Row]] | None = None

    # ----------------------------------------------------------------------------------- clock, versions
    def now(self) -> datetime:
        """Server time, never behind a timestamp already stored (the world may be anchored ahead)."""
        current = self.clock().astimezone(UTC).replace(microsecond=0)
        if current < self._last_now:
            current = self._last_now
        self._last_now = current
        return current

    def now_text(self) -> str:
        return format_datetime(self.now())

    def next_version(self) -> int:
        self.version += 1
        return self.version

    def note_time(self, text: str | None) -> None:
        if text:
            stamp = datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
            if stamp > self._last_now:
                self._last_now = stamp

    # ------------------------------------------------------------------------------------------- reads
    def state(self, entity_set: str) -> TableState:
        return self.tables[entity_set]

    def get(self, entity_set: str, pk: str) -> Row | None:
        if entity_set == POINTER_SET:
            return self.pointer_rows().get(pk)
        return self.tables[entity_set].rows.get(pk)

    def find_alternate(self, entity_set: str, key_name: str, values: tuple) -> Row | None:
        state = self.tables[entity_set]
        pk = state.alt_index[key_name].get(_key_tuple(values))
        return state.rows.get(pk) if pk else None

    def logical_of(self, guid: str | None) -> str | None:
        """The table (logical name) a GUID belongs to, for lookup annotations."""
        if guid is None:
            return None
        entity_set = self.owner.get(guid)
        return self.schema.tables[entity_set].logical if entity_set else None

    def row_of(self, guid: str) -> Row | None:
        entity_set = self.owner.get(guid)
        return self.tables[entity_set].rows.get(guid) if entity_set else None

    def generation(self, entity_set: str) -> Any:
        if entity_set == POINTER_SET:
            return tuple(self.tables[self.schema.by_logical[t].entity_set].generation for t in ACTIVITY_TABLES)
        return self.tables[entity_set].generation

    def all_rows(self, entity_set: str) -> Iterable[Row]:
        if entity_set == POINTER_SET:
            return self.pointer_rows().values()
        return self.tables[entity_set].rows.values()

    def pointer_rows(self) -> dict[str, Row]:
        """activitypointers: every activity row projected onto the activitypointer columns (cached)."""
        stamp = self.generation(POINTER_SET)
        if self._pointer_cache is not None and self._pointer_cache[0] == stamp:
            return self._pointer_cache[1]
        columns = list(self.schema.tables[POINTER_SET].columns)
        rows: dict[str, Row] = {}
        for logical in ACTIVITY_TABLES:
            for pk, row in self.tables[self.schema.by_logical[logical].entity_set].rows.items():
                projected = {"@odata.etag": row["@odata.etag"]}
                for column in columns:
                    projected[column] = row.get(column)
                rows[pk] = projected
        self._pointer_cache = (stamp, rows)
        return rows

    def query(self, entity_set: str, cache_key: tuple, predicate: Predicate | None,
              order: list[OrderKey], pk: str) -> list[Row]:
        """Rows matching `predicate`, sorted by `order` then primary key; cached per table generation so
        following nextLinks does not re-filter or re-sort."""
        stamp = self.generation(entity_set)
        key = (entity_set, *cache_key)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == stamp:
            self._cache.move_to_end(key)
            return hit[1]
        if predicate is None and not order and entity_set != POINTER_SET:
            state = self.tables[entity_set]
            if state.sorted_pks is None:
                state.sorted_pks = sorted(state.rows)
            rows = [state.rows[p] for p in state.sorted_pks]
        else:
            source = self.all_rows(entity_set)
            rows = [r for r in source if predicate(r)] if predicate is not None else list(source)
            if not any(item.prop == pk for item in order):
                rows.sort(key=lambda r: r[pk])
            for item in reversed(order):
                rows.sort(key=lambda r, p=item.prop, t=item.text: sort_value(r.get(p), t), reverse=item.desc)
        self._cache[key] = (stamp, rows)
        if len(self._cache) > 64:
            self._cache.popitem(last=False)
        return rows

    def changes_since(self, entity_set: str, since: int, upto: int) -> tuple[list[Row], list[str]]:
        """Change tracking: rows created/updated with since < version <= upto (version order), and ids
        deleted in that window that are not present again (deletion order)."""
        state = self.tables[entity_set]
        changed: list[str] = []
        for pk in reversed(state.versions):
            version = state.versions[pk]
            if version <= since:
                break
            if version <= upto:
                changed.append(pk)
        changed.reverse()
        rows = [state.rows[pk] for pk in changed]
        deleted: list[str] = []
        seen: set[str] = set()
        for version, pk in state.tombstones:
            if version <= since or version > upto or pk in seen:
                continue
            current = state.versions.get(pk)
            if current is not None and current > version:
                continue
            seen.add(pk)
            deleted.append(pk)
        return rows, deleted

    # ------------------------------------------------------------------------------------------ writes
    def put(self, entity_set: str, row: Row) -> None:
        """Insert or replace a fully built row (etag/version already set)."""
        state = self.tables[entity_set]
        table = state.schema
        pk = row[table.pk]
        old = state.rows.get(pk)
        if self._undo is not None:
            self._undo.append(("put", entity_set, pk, old))
        self._index(state, pk, old, row)
        state.rows[pk] = row
        state.versions[pk] = row["versionnumber"]
        state.versions.move_to_end(pk)
        state.generation += 1
        if old is None:
            state.sorted_pks = None
            self.owner[pk] = entity_set

    def remove(self, entity_set: str, pk: str) -> Row:
        state = self.tables[entity_set]
        old = state.rows.pop(pk)
        version = self.next_version()
        if self._undo is not None:
            self._undo.append(("remove", entity_set, pk, old, len(state.tombstones)))
        self._index(state, pk, old, None)
        del state.versions[pk]
        state.tombstones.append((version, pk))
        state.generation += 1
        state.sorted_pks = None
        self.owner.pop(pk, None)
        return old

    def _index(self, state: TableState, pk: str, old: Row | None, new: Row | None) -> None:
        for name, attributes in state.schema.alt_keys.items():
            index = state.alt_index[name]
            if old is not None:
                before = _key_tuple(tuple(old.get(a) for a in attributes))
                if index.get(before) == pk:
                    del index[before]
            if new is not None:
                values = tuple(new.get(a) for a in attributes)
                if all(v is not None for v in values):
                    index[_key_tuple(values)] = pk

    def alternate_conflict(self, entity_set: str, row: Row) -> str | None:
        """The name of an alternate key `row` would duplicate (held by another row), if any."""
        state = self.tables[entity_set]
        pk = row[state.schema.pk]
        for name, attributes in state.schema.alt_keys.items():
            values = tuple(row.get(a) for a in attributes)
            if any(v is None for v in values):
                continue
            holder = state.alt_index[name].get(_key_tuple(values))
            if holder is not None and holder != pk:
                return name
        return None

    # ------------------------------------------------------------------------------------ transactions
    def begin(self) -> None:
        self._undo = []

    def commit(self) -> None:
        self._undo = None

    def rollback(self) -> None:
        undo, self._undo = self._undo or [], None
        touched: set[str] = set()
        for entry in reversed(undo):
            kind, entity_set, pk = entry[0], entry[1], entry[2]
            state = self.tables[entity_set]
            touched.add(entity_set)
            current = state.rows.get(pk)
            if kind == "put":
                old = entry[3]
                self._index(state, pk, current, old)
                if old is None:
                    state.rows.pop(pk, None)
                    state.versions.pop(pk, None)
                    self.owner.pop(pk, None)
                else:
                    state.rows[pk] = old
                    state.versions[pk] = old["versionnumber"]
            else:  # remove
                old, tombstones = entry[3], entry[4]
                del state.tombstones[tombstones:]
                self._index(state, pk, None, old)
                state.rows[pk] = old
                state.versions[pk] = old["versionnumber"]
                self.owner[pk] = entity_set
        for entity_set in touched:
            state = self.tables[entity_set]
            state.versions = OrderedDict(sorted(state.versions.items(), key=lambda item: item[1]))
            state.generation += 1
            state.sorted_pks = None

    # --------------------------------------------------------------------------------------------- load
    def clear(self) -> None:
        for state in self.tables.values():
            state.rows.clear()
            state.versions.clear()
            state.tombstones.clear()
            for index in state.alt_index.values():
                index.clear()
            state.generation += 1
            state.sorted_pks = None
        self.owner.clear()
        self._cache.clear()
        self._pointer_cache = None

    def iter_tables(self) -> Iterator[tuple[str, TableState]]:
        return iter(self.tables.items())


def _key_tuple(values: tuple) -> tuple:
    """Alternate-key index key: strings compare case-insensitively (SQL Server's default collation)."""
    return tuple(v.lower() if isinstance(v, str) else v for v in values)


def canonical_datetime(value: Any) -> str | None:
    return normalize_datetime(value)
