"""`POST /crm/v3/objects/{type}/search`: request validation, filter evaluation, sorting.

Filter groups are OR'd, filters inside a group AND'd. Number and datetime/date properties compare
numerically (datetime filter values may be epoch-millis strings or ISO-8601), everything else compares as
case-insensitive strings. Only the first sort rule is honoured; without one, results come in id order.

Speed: each group is planned before it is evaluated — an exact lookup (`hs_object_id`, contact `email`,
unique properties, `associations.<type>`) or a window on the modified-date index when the group has one;
only groups with neither fall back to a scan. The matching, sorted id list of a query is cached until the
object type next changes, so paging one query costs one evaluation.
"""

from __future__ import annotations

import fnmatch
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson

from sandbox.hubspot.errors import validation
from sandbox.hubspot.objects import resolve_type
from sandbox.hubspot.store import Record, Store, TypeStore
from sandbox.hubspot.util import parse_number, parse_time_ms

OPERATORS = ("EQ", "NEQ", "LT", "LTE", "GT", "GTE", "BETWEEN", "IN", "NOT_IN", "HAS_PROPERTY",
             "NOT_HAS_PROPERTY", "CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN")
_TOKEN_SPLIT = re.compile(r"[^\w]+")
_CACHE_SIZE = 8

Predicate = Callable[[Record], bool]


@dataclass
class SearchLimits:
    max_groups: int = 5
    max_filters_per_group: int = 10
    max_filters_total: int = 25
    max_limit: int = 200
    result_cap: int = 10_000


@dataclass
class SearchQuery:
    groups: list[list[dict[str, Any]]]
    sort: tuple[str, bool] | None       # (property, descending)
    text: str | None
    properties: list[str] | None
    limit: int
    offset: int
    key: bytes                           # identifies the matching set (not the page) for caching


def parse_request(body: Any, limits: SearchLimits) -> SearchQuery:
    if not isinstance(body, dict):
        raise validation("Invalid input JSON: the search request must be an object")
    groups_raw = body.get("filterGroups") or []
    if not isinstance(groups_raw, list):
        raise validation("filterGroups must be a list")
    if len(groups_raw) > limits.max_groups:
        raise validation(f"Too many filter groups ({len(groups_raw)}); the maximum is {limits.max_groups}")
    groups: list[list[dict[str, Any]]] = []
    total = 0
    for group in groups_raw:
        filters = (group or {}).get("filters") if isinstance(group, dict) else None
        if not isinstance(filters, list):
            raise validation("Each filter group needs a filters list")
        if len(filters) > limits.max_filters_per_group:
            raise validation(f"Too many filters in a group ({len(filters)}); the maximum is "
                             f"{limits.max_filters_per_group}")
        total += len(filters)
        for item in filters:
            if not isinstance(item, dict) or not item.get("propertyName") or not item.get("operator"):
                raise validation("Each filter needs propertyName and operator")
            if item["operator"] not in OPERATORS:
                raise validation(f"Unknown filter operator {item['operator']!r}; expected one of "
                                 f"{', '.join(OPERATORS)}")
        groups.append(filters)
    if total > limits.max_filters_total:
        raise validation(f"Too many filters ({total}); the maximum across all groups is {limits.max_filters_total}")
    sort = _parse_sort(body.get("sorts"))
    try:
        limit = int(body.get("limit", 10) if body.get("limit") is not None else 10)
    except (TypeError, ValueError):
        raise validation(f"limit {body.get('limit')!r} is not a number") from None
    if limit < 0 or limit > limits.max_limit:
        raise validation(f"limit must be between 0 and {limits.max_limit}; got {limit}")
    after = body.get("after")
    after_text = "" if after is None else str(after).strip()
    if after_text and not after_text.isdigit():
        raise validation(f"after {after!r} is not valid: search paging uses the numeric offset from "
                         "paging.next.after")
    offset = int(after_text or 0)
    if offset + limit > limits.result_cap:
        raise validation(f"Search results are limited to {limits.result_cap} per query; after ({offset}) + limit "
                         f"({limit}) exceeds it. Narrow the query (e.g. a later time window) instead of paging "
                         "further.")
    text = body.get("query")
    properties = body.get("properties")
    key = orjson.dumps([groups, sort, text], option=orjson.OPT_SORT_KEYS)
    return SearchQuery(groups, sort, text if text else None,
                       properties if isinstance(properties, list) and properties else None, limit, offset, key)


def _parse_sort(sorts: Any) -> tuple[str, bool] | None:
    if not sorts:
        return None
    if not isinstance(sorts, list):
        raise validation("sorts must be a list")
    first = sorts[0]
    if isinstance(first, str):
        return (first[1:], True) if first.startswith("-") else (first, False)
    if isinstance(first, dict) and first.get("propertyName"):
        direction = str(first.get("direction", "ASCENDING")).upper()
        if direction not in ("ASCENDING", "DESCENDING"):
            raise validation(f"Sort direction must be ASCENDING or DESCENDING; got {direction}")
        return first["propertyName"], direction == "DESCENDING"
    raise validation("Each sort needs propertyName and direction")


class Searcher:
    def __init__(self, store: Store) -> None:
        self.store = store

    def matches(self, ts: TypeStore, query: SearchQuery, lag_seconds: float = 0.0) -> list[Record]:
        """All matching records in result order (cached per query until the type changes)."""
        cacheable = lag_seconds <= 0
        cache_key = (query.key, ts.version)
        if cacheable:
            cached = ts.search_cache.get(cache_key)
            if cached is not None:
                ts.search_cache.move_to_end(cache_key)
                return cached
        found, in_mod_order = self._evaluate(ts, query)
        if lag_seconds > 0:
            visible_before = self.store.monotonic() - lag_seconds
            found = [rec for rec in found if rec.written <= visible_before]
        found = self._sort(ts, query, found, in_mod_order)
        if cacheable:
            ts.search_cache[cache_key] = found
            while len(ts.search_cache) > _CACHE_SIZE:
                ts.search_cache.popitem(last=False)
        return found

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self, ts: TypeStore, query: SearchQuery) -> tuple[list[Record], bool]:
        """The matching records, and whether they are already in (modified, id) order."""
        groups: list[tuple[Predicate, list[Record] | None, bool]] = []
        for group in query.groups:
            compiled = [self._compile(ts, f) for f in group]
            candidates, windowed = self._plan(ts, [plan for _, plan in compiled])
            # a window on the modified-date index already enforces the range filters it was built from
            predicates = [p for p, plan in compiled if not (windowed and plan and plan[0] == "range")]
            groups.append((_all(predicates), candidates, windowed))
        if not groups:
            groups = [(_true, None, False)]
        in_mod_order = False
        if any(candidates is None for _, candidates, _ in groups):
            predicate = _any([p for p, _, _ in groups])
            found = [rec for rec in ts.records.values() if not rec.archived and predicate(rec)]
        elif len(groups) == 1:
            predicate, candidates, in_mod_order = groups[0]
            found = candidates if predicate is _true else [rec for rec in candidates or [] if predicate(rec)]
        else:
            union: dict[int, Record] = {}
            for predicate, candidates, _ in groups:
                for rec in candidates or []:
                    if rec.num not in union and predicate(rec):
                        union[rec.num] = rec
            found = list(union.values())
        if query.text:
            text_predicate = self._text_predicate(ts, query.text)
            found = [rec for rec in found if text_predicate(rec)]
        return found, in_mod_order

    def _plan(self, ts: TypeStore, plans: list[tuple | None]) -> tuple[list[Record] | None, bool]:
        """Candidates for one group from its most selective indexed filter (None: scan), and whether they
        are a window of the modified-date index."""
        ids = [plan[1] for plan in plans if plan and plan[0] == "ids"]
        if ids:
            best = min(ids, key=len)
            records = ts.records
            return [records[i] for i in sorted(best, key=int) if i in records and not records[i].archived], False
        ranges = [plan for plan in plans if plan and plan[0] == "range"]
        if ranges:
            low = max(plan[1] for plan in ranges)
            high = min(plan[2] for plan in ranges)
            if low > high:
                return [], True
            index = ts.mod_index
            start = bisect_left(index, (low, -1))
            stop = bisect_right(index, (high, float("inf")))
            return [entry[2] for entry in index[start:stop]], True
        return None, False

    def _compile(self, ts: TypeStore, item: dict[str, Any]) -> tuple[Predicate, tuple | None]:
        name = item["propertyName"]
        op = item["operator"]
        if name.startswith("associations."):
            return self._association_filter(ts, name, op, item)
        definition = ts.registry.get(name)
        if definition is None:
            raise validation(f"Cannot filter on '{name}': {ts.ot.name} has no such property")
        type_ = definition["type"]
        if type_ in ("number", "datetime", "date"):
            kind = "time" if type_ != "number" else "num"
        elif type_ == "enumeration" and definition.get("fieldType") == "checkbox":
            kind = "multi"
        else:
            kind = "str"
        if op == "HAS_PROPERTY":
            return (lambda r: r.props.get(name) not in (None, "")), None
        if op == "NOT_HAS_PROPERTY":
            return (lambda r: r.props.get(name) in (None, "")), None
        if op in ("CONTAINS_TOKEN", "NOT_CONTAINS_TOKEN"):
            token = _required(item, "value").lower()
            contains = _token_matcher(token)

            def has_token(r: Record) -> bool:
                value = r.props.get(name)
                return value is not None and contains(value.lower())

            return (has_token if op == "CONTAINS_TOKEN" else (lambda r: not has_token(r))), None
        if kind in ("num", "time"):
            return self._ordered_filter(ts, name, kind, op, item)
        return self._string_filter(ts, name, kind, op, item)

    def _ordered_filter(self, ts: TypeStore, name: str, kind: str, op: str,
                        item: dict[str, Any]) -> tuple[Predicate, tuple | None]:
        convert = parse_time_ms if kind == "time" else parse_number

        def target(key: str) -> Any:
            raw = _required(item, key)
            value = convert(raw)
            if value is None:
                what = "a datetime (epoch milliseconds or ISO 8601)" if kind == "time" else "a number"
                raise validation(f"Filter value {raw!r} for {name} is not {what}")
            return value

        get: Callable[[Record], Any]
        if name == ts.ot.modified_prop:
            get = _mod_ms
        elif name == "hs_object_id":
            get = _num
        else:
            def get(r: Record) -> Any:
                return convert(r.props.get(name))
        plan: tuple | None = None
        indexed = name == ts.ot.modified_prop
        if op in ("IN", "NOT_IN"):
            values = {target_value for target_value in (convert(str(v)) for v in _values(item))
                      if target_value is not None}
            if op == "IN":
                if name == "hs_object_id":
                    plan = ("ids", {str(int(v)) for v in values})
                return (lambda r: get(r) in values), plan
            return (lambda r: get(r) not in values), None
        if op == "BETWEEN":
            low, high = target("value"), target("highValue")
            if indexed:
                plan = ("range", int(low), int(high))
            return (lambda r: (v := get(r)) is not None and low <= v <= high), plan
        t = target("value")
        if op == "EQ":
            if indexed:
                plan = ("range", int(t), int(t))
            elif name == "hs_object_id":
                plan = ("ids", {str(int(t))})
            return (lambda r: get(r) == t), plan
        if op == "NEQ":
            return (lambda r: get(r) != t), None
        if indexed:
            big = 1 << 62
            plan = {"GT": ("range", int(t) + 1, big), "GTE": ("range", int(t), big),
                    "LT": ("range", -big, int(t) - 1), "LTE": ("range", -big, int(t))}[op]
        compare = {"GT": lambda v: v > t, "GTE": lambda v: v >= t, "LT": lambda v: v < t,
                   "LTE": lambda v: v <= t}[op]
        return (lambda r: (v := get(r)) is not None and compare(v)), plan

    def _string_filter(self, ts: TypeStore, name: str, kind: str, op: str,
                       item: dict[str, Any]) -> tuple[Predicate, tuple | None]:
        unique = name in ts.unique and name not in ts.unique_duplicates   # the index finds every match
        if kind == "multi":
            def tokens(r: Record) -> set[str]:
                value = r.props.get(name)
                return set(value.lower().split(";")) if value else set()

            if op in ("IN", "NOT_IN"):
                wanted = {str(v).lower() for v in _values(item)}
                return ((lambda r: bool(tokens(r) & wanted)) if op == "IN"
                        else (lambda r: not tokens(r) & wanted)), None
            t = _required(item, "value").lower()
            if op == "EQ":
                return (lambda r: t in tokens(r)), None
            if op == "NEQ":
                return (lambda r: t not in tokens(r)), None
        if op in ("IN", "NOT_IN"):
            wanted = {str(v).lower() for v in _values(item)}
            if op == "IN":
                plan = ("ids", {owner for v in wanted if (owner := ts.unique[name].get(v))}) if unique else None
                return (lambda r: (v := r.props.get(name)) is not None and v.lower() in wanted), plan
            return (lambda r: (v := r.props.get(name)) is None or v.lower() not in wanted), None
        if op == "BETWEEN":
            low, high = _required(item, "value").lower(), _required(item, "highValue").lower()
            return (lambda r: (v := r.props.get(name)) is not None and low <= v.lower() <= high), None
        t = _required(item, "value").lower()
        if op == "EQ":
            plan = None
            if unique:
                owner = ts.unique[name].get(t)
                plan = ("ids", {owner} if owner else set())
            return (lambda r: (v := r.props.get(name)) is not None and v.lower() == t), plan
        if op == "NEQ":
            return (lambda r: (v := r.props.get(name)) is None or v.lower() != t), None
        compare = {"GT": lambda v: v > t, "GTE": lambda v: v >= t, "LT": lambda v: v < t,
                   "LTE": lambda v: v <= t}[op]
        return (lambda r: (v := r.props.get(name)) is not None and compare(v.lower())), None

    def _association_filter(self, ts: TypeStore, name: str, op: str,
                            item: dict[str, Any]) -> tuple[Predicate, tuple | None]:
        target = resolve_type(name.split(".", 1)[1])
        if target is None:
            raise validation(f"Cannot filter on '{name}': unknown object type")
        assoc = self.store.assoc
        if op == "EQ":
            wanted = [str(_required(item, "value"))]
        elif op == "IN":
            wanted = [str(v) for v in _values(item)]
        else:
            raise validation(f"Filters on associations support EQ and IN, not {op}")
        wanted_set = set(wanted)
        ids = {fid for to_id in wanted for fid in assoc.targets(target.name, to_id, ts.ot.name)}

        def linked(r: Record) -> bool:
            return not wanted_set.isdisjoint(assoc.targets(ts.ot.name, r.id, target.name))

        return linked, ("ids", ids)

    def _text_predicate(self, ts: TypeStore, text: str) -> Predicate:
        words = [w for w in _TOKEN_SPLIT.split(text.lower()) if w]
        fields = ts.ot.text_search

        def matches(r: Record) -> bool:
            tokens: list[str] = []
            for field in fields:
                value = r.props.get(field)
                if value:
                    lowered = value.lower()
                    tokens.append(lowered)
                    tokens.extend(t for t in _TOKEN_SPLIT.split(lowered) if t)
            return all(any(token.startswith(word) for token in tokens) for word in words)

        return matches

    # ------------------------------------------------------------------ ordering
    def _sort(self, ts: TypeStore, query: SearchQuery, found: list[Record], in_mod_order: bool) -> list[Record]:
        if query.sort is None:
            found.sort(key=_num)
            return found
        name, descending = query.sort
        if name == ts.ot.modified_prop:
            if not in_mod_order:
                found.sort(key=_mod_key)
            if descending:
                found.sort(key=_mod_ms, reverse=True)   # stable: equal times stay in id order
            return found
        definition = ts.registry.get(name)
        if definition is None:
            raise validation(f"Cannot sort by '{name}': {ts.ot.name} has no such property")
        type_ = definition["type"]
        if name == "hs_object_id":
            found.sort(key=_num, reverse=descending)
            return found
        if type_ in ("number", "datetime", "date"):
            convert = parse_number if type_ == "number" else parse_time_ms

            def key(r: Record) -> tuple[bool, Any]:
                value = convert(r.props.get(name))
                return value is None, value if value is not None else 0
        else:
            def key(r: Record) -> tuple[bool, Any]:
                value = r.props.get(name)
                return value is None, value.lower() if value else ""
        found.sort(key=_num)
        found.sort(key=key, reverse=descending)
        return found


def _required(item: dict[str, Any], key: str) -> str:
    value = item.get(key)
    if value is None:
        raise validation(f"Operator {item['operator']} on {item['propertyName']} needs '{key}'")
    return value if isinstance(value, str) else str(value).lower() if isinstance(value, bool) else str(value)


def _values(item: dict[str, Any]) -> list[Any]:
    values = item.get("values")
    if not isinstance(values, list):
        raise validation(f"Operator {item['operator']} on {item['propertyName']} needs 'values' (a list)")
    return values


def _token_matcher(token: str) -> Callable[[str], bool]:
    if "*" in token:
        def wildcard(value: str) -> bool:
            return fnmatch.fnmatchcase(value, token) or any(
                fnmatch.fnmatchcase(part, token) for part in value.split())
        return wildcard

    def contains(value: str) -> bool:
        return value == token or token in value.split() or token in _TOKEN_SPLIT.split(value)

    return contains


def _all(predicates: list[Predicate]) -> Predicate:
    if not predicates:
        return _true
    if len(predicates) == 1:
        return predicates[0]
    return lambda r: all(p(r) for p in predicates)


def _any(predicates: list[Predicate]) -> Predicate:
    if len(predicates) == 1:
        return predicates[0]
    return lambda r: any(p(r) for p in predicates)


def _true(r: Record) -> bool:
    return True


def _num(r: Record) -> int:
    return r.num


def _mod_ms(r: Record) -> int:
    return r.mod_ms


def _mod_key(r: Record) -> tuple[int, int]:
    return r.mod_ms, r.num

