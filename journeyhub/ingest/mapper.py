"""Applies a MappingSpec to one CRM record: pure, no I/O, so golden tests can feed it raw pages."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from pydantic import ValidationError

from canonical.fastpath import FastRow
from canonical.inputs import CLEAN, FAST_ROWS, WRITE_MODELS, quarantine_reason
from journeyhub.ingest import transforms
from journeyhub.ingest.spec import (
    SYSTEM_NAMES,
    Condition,
    Conditions,
    FieldSpec,
    MappingSpec,
    PeopleSpec,
    RefSpec,
)

MISSING: Any = object()


class MappingError(Exception):
    """The record cannot become a canonical row; `reason` is the quarantine reason code."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")


def source_key(system: str, object_type: str, remote_id: Any) -> str:
    return f"{system}:{object_type}:{remote_id}"


@lru_cache(maxsize=4096)
def _parts(path: str) -> tuple[str, ...]:
    return tuple(path.split("."))


def get_path(document: Any, path: str) -> Any:
    """The value at a dotted path; `*` maps over a list; MISSING when any step is absent."""
    value = document
    parts = _parts(path)
    if "*" not in parts:  # the common case, kept tight: a chain of dict lookups
        for part in parts:
            if isinstance(value, dict):
                value = value.get(part, MISSING)
                if value is MISSING:
                    return MISSING
            elif isinstance(value, list) and part.isdigit():
                value = value[int(part)] if int(part) < len(value) else MISSING
            else:
                return MISSING
        return value
    for index, part in enumerate(parts):
        if part == "*":
            if not isinstance(value, list):
                return MISSING
            rest = ".".join(parts[index + 1:])
            items = [get_path(item, rest) if rest else item for item in value]
            return [item for item in items if item is not MISSING and item is not None]
        if isinstance(value, dict):
            value = value.get(part, MISSING)
        elif isinstance(value, list) and part.isdigit():
            value = value[int(part)] if int(part) < len(value) else MISSING
        else:
            return MISSING
        if value is MISSING:
            return MISSING
    return value


def _holds(condition: Condition, document: Any) -> bool:
    value = get_path(document, condition.path)
    present = value is not MISSING and value is not None and value != ""
    tests = condition.model_fields_set
    if "present" in tests:
        return present == condition.present
    if "startswith" in tests:
        return present and str(value).startswith(condition.startswith or "")
    if "equals" in tests:
        return _same(value, condition.equals)
    if "not_equals" in tests:
        return not _same(value, condition.not_equals)
    if "in_" in tests:
        return any(_same(value, option) for option in condition.in_ or [])
    return not any(_same(value, option) for option in condition.not_in or [])


def _same(value: Any, expected: Any) -> bool:
    if value is MISSING:
        value = None
    if isinstance(expected, bool) and isinstance(value, str):
        return value.strip().lower() == str(expected).lower()
    return value == expected or (value is not None and expected is not None and str(value) == str(expected))


def holds(conditions: Conditions | None, document: Any) -> bool:
    if conditions is None:
        return True
    items = conditions if isinstance(conditions, list) else [conditions]
    return all(_holds(condition, document) for condition in items)


Test = Callable[[Any], bool]


def compile_conditions(conditions: Conditions | None) -> Test:
    """`holds(conditions, ·)` as one function, its tests chosen once: a spec's conditions are fixed."""
    if conditions is None:
        return lambda document: True
    tests = [_compile_condition(condition) for condition in
             (conditions if isinstance(conditions, list) else [conditions])]
    if len(tests) == 1:
        return tests[0]
    return lambda document: all(test(document) for test in tests)


def _compile_condition(condition: Condition) -> Test:
    """One condition as a function of the record, the same test `_holds` makes."""
    path, tests = condition.path, condition.model_fields_set

    def present(document: Any) -> tuple[Any, bool]:
        value = get_path(document, path)
        return value, value is not MISSING and value is not None and value != ""

    if "present" in tests:
        wanted = condition.present
        return lambda document: present(document)[1] == wanted
    if "startswith" in tests:
        prefix = condition.startswith or ""

        def starts(document: Any) -> bool:
            value, found = present(document)
            return found and str(value).startswith(prefix)

        return starts
    if "equals" in tests:
        expected = condition.equals
        return lambda document: _same(get_path(document, path), expected)
    if "not_equals" in tests:
        unexpected = condition.not_equals
        return lambda document: not _same(get_path(document, path), unexpected)
    if "in_" in tests:
        options = list(condition.in_ or [])
        return lambda document: any(_same(get_path(document, path), option) for option in options)
    excluded = list(condition.not_in or [])
    return lambda document: not any(_same(get_path(document, path), option) for option in excluded)


@dataclass
class MappedRow:
    entity: str
    key: str
    row: dict[str, Any]
    people: list[tuple[str, str | None, bool]] | None = None  # None: the record said nothing about people
    linked: list[str] | None = None    # records that relate to this one, as it lists them (None: it says nothing)

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled as its constructor's arguments: the mapping worker sends every mapped row back, and the
        parent's unpickling (half the cost of mapping with the default protocol) is on the sync's busy side."""
        return MappedRow, (self.entity, self.key, self.row, self.people, self.linked)


@dataclass
class MappedRecord:
    rows: list[MappedRow] = field(default_factory=list)
    merged_into: str | None = None
    merges: list[str] = field(default_factory=list)
    skipped: bool = False

    def __reduce__(self) -> tuple[Any, ...]:
        return MappedRecord, (self.rows, self.merged_into, self.merges, self.skipped)


Getter = Callable[[dict[str, Any]], Any]
Probe = Callable[[dict[str, Any]], bool]  # does the record carry any of a field's paths (a list: its head)


def _present(value: Any) -> bool:
    return value is not MISSING and value is not None and value != "" and value != []


@dataclass(slots=True)
class _RowPlan:
    """One canonical row's fields, each compiled once into a function of the record."""

    model: type[Any]
    fast: FastRow | None  # the model's checks for plainly valid values (`canonical.fastpath`)
    fields: list[tuple[str, Getter]]
    custom: list[tuple[str, Getter]]
    people: list[tuple[Getter | None, Probe, str | None]]  # (getter or None = self, is any path present, label)


class Mapper:
    """Maps records of one (system, object type) with its spec, compiled once into plain functions:
    the spec is fixed, the records are many."""

    def __init__(self, system: str, spec: MappingSpec) -> None:
        self.system = system
        self.spec = spec
        self._skip = compile_conditions(spec.skip_when) if spec.skip_when is not None else None
        self._main = self._plan(spec.entity, spec.fields, spec.custom, spec.people)
        self._derived = [(derived.suffix, compile_conditions(derived.when),
                          self._plan(derived.entity, derived.fields, derived.custom, derived.people))
                         for derived in spec.derived]
        self._merged_into = self._compile(spec.merged_into, "merged_into") if spec.merged_into else None
        self._linked = [(self._compile(item, "linked"), _probe(_paths(item))) for item in spec.linked]
        self._merges = self._compile(spec.merges, "merges") if spec.merges else None

    def map(self, remote_id: str, document: dict[str, Any], *, clean: bool = False) -> MappedRecord:
        """The canonical rows for one record; raises MappingError for a record to quarantine. `clean`: the
        caller found no NUL or lone surrogate anywhere in `document`, so its values need no cleaning."""
        if self._skip is not None and self._skip(document):
            return MappedRecord(skipped=True)
        key = source_key(self.system, self.spec.object, remote_id)
        record = MappedRecord(rows=[self._row(self._main, key, document, key, clean)])
        if self._linked:
            record.rows[0].linked = self._linked_keys(document)
        for suffix, when, plan in self._derived:
            if when(document):
                record.rows.append(self._row(plan, f"{key}#{suffix}", document, key, clean))
        if self._merged_into is not None:
            record.merged_into = self._merged_into(document)
        if self._merges is not None:
            merges = self._merges(document)
            record.merges = [merges] if isinstance(merges, str) else list(merges or [])
        return record

    # ------------------------------------------------------------------ rows
    def _plan(self, entity: str, fields: dict[str, FieldSpec], custom: dict[str, FieldSpec],
              people: list[PeopleSpec]) -> _RowPlan:
        return _RowPlan(
            WRITE_MODELS[entity],
            FAST_ROWS[entity],
            [(name, self._compile(spec, name)) for name, spec in fields.items()],
            [(name, self._compile(spec, f"custom.{name}")) for name, spec in custom.items()],
            [(None if spec.self_ else self._compile(spec, "people"), _probe(_paths(spec)), spec.label)
             for spec in people])

    def _row(self, plan: _RowPlan, key: str, document: dict[str, Any], owner_key: str,
             clean: bool = False) -> MappedRow:
        values = {name: getter(document) for name, getter in plan.fields}
        extra = {}
        for name, getter in plan.custom:
            value = getter(document)
            if value is not None:
                extra[name] = _jsonable(value)
        values["custom"] = extra or None
        if clean and plan.fast is not None:  # values of a clean document that are plainly valid: no pydantic
            row = plan.fast(values)
            if row is not None:
                return MappedRow(plan.model.entity, key, row, self._people(plan, document, owner_key))
        try:
            model = plan.model.model_validate(values, context=CLEAN if clean else None)
        except ValidationError as error:
            raise MappingError(*quarantine_reason(error)) from None
        return MappedRow(model.entity, key, model.row(), self._people(plan, document, owner_key))

    @staticmethod
    def _people(plan: _RowPlan, document: dict[str, Any], owner_key: str) -> list[tuple[str, str | None, bool]] | None:
        if not plan.people:
            return None
        found: list[tuple[str, str | None, bool]] = []
        seen: set[str] = set()  # a set, not a scan of `found` per person (a generator per record was ~5% of mapping)
        provided = False
        for getter, probe, label in plan.people:
            if getter is None:
                provided, keys = True, [owner_key]
            else:
                provided = provided or probe(document)
                keys = getter(document)
            for person in keys if isinstance(keys, list) else (keys,):
                if person and person not in seen:
                    seen.add(person)
                    found.append((person, label, not found))
        return found if provided else None

    def _linked_keys(self, document: dict[str, Any]) -> list[str] | None:
        """The records this one lists as related to it; None when none of the `linked` paths is present."""
        found: list[str] = []
        provided = False
        for getter, probe in self._linked:
            provided = provided or probe(document)
            keys = getter(document)
            for key in keys if isinstance(keys, list) else [keys]:
                if key and key not in found:
                    found.append(key)
        return found if provided else None

    # ------------------------------------------------------------------ values
    def _compile(self, spec: FieldSpec, name: str) -> Getter:
        """One field as a function of the record, with only the steps its spec asks for."""
        source = self._source(spec)
        steps = tuple(transforms.step((step, None) if isinstance(step, str) else next(iter(step.items())))
                      for step in spec.transform)
        has_default = "default" in spec.model_fields_set and spec.cases is None
        lookup = self._lookup(spec, name) if spec.map is not None else None
        refs = self._refs(spec.ref) if spec.ref is not None else None
        when = compile_conditions(spec.when) if spec.when is not None else None
        required, default = spec.required, spec.default
        if not (steps or lookup or refs or has_default or required or when is not None):
            return source

        def value(document: dict[str, Any]) -> Any:
            if when is not None and not when(document):
                return None
            result = source(document)
            if result is not None and steps:
                try:
                    for transform in steps:
                        if result is not None:
                            result = transform(result)
                except transforms.TransformError as error:
                    raise MappingError("invalid_value", f"{name}: {error}") from None
            if lookup is not None and result is not None:
                result = lookup(result)
            elif result is None and has_default:
                result = default
            if refs is not None and result is not None:
                result = refs(result, document)
            if required and result in (None, "", []):
                raise MappingError("missing_required_field", f"{name}: required value is missing")
            return result

        return value

    @staticmethod
    def _source(spec: FieldSpec) -> Getter:
        if "value" in spec.model_fields_set:
            constant = spec.value
            return lambda document: constant
        if spec.cases is not None:
            cases, default = [(compile_conditions(case.when), case.value) for case in spec.cases], spec.default
            return lambda document: next((value for when, value in cases if when(document)), default)
        paths = _paths(spec)
        if len(paths) == 1 and not spec.collect:
            path = paths[0]
            parts = _parts(path)
            plain = "*" not in parts and not any(part.isdigit() for part in parts)
            if len(parts) == 1 and plain:
                (only,) = parts  # a top-level field (Salesforce's `Email`, an event's `type`): one lookup

                def top(document: dict[str, Any]) -> Any:
                    value = document.get(only)
                    return None if value is None or value == "" or value == [] else value

                return top
            if len(parts) == 2 and plain:
                outer, inner = parts  # the common `properties.email`: two dict lookups, nothing generic

                def pair(document: dict[str, Any]) -> Any:
                    container = document.get(outer)
                    value = container.get(inner) if isinstance(container, dict) else None
                    return None if value is None or value == "" or value == [] else value

                return pair

            def one(document: dict[str, Any]) -> Any:
                value = get_path(document, path)
                return value if _present(value) else None

            return one

        def many(document: dict[str, Any]) -> Any:
            found: list[Any] = []
            for path in paths:
                value = get_path(document, path)
                if not _present(value):
                    continue
                if not spec.collect:
                    return value
                found += value if isinstance(value, list) else [value]
            return found or None

        return many

    @staticmethod
    def _lookup(spec: FieldSpec, name: str) -> Callable[[Any], Any]:
        table = spec.map or {}
        has_default = "default" in spec.model_fields_set

        def lookup(value: Any) -> Any:
            if isinstance(value, list):
                return [lookup(item) for item in value]
            for candidate in (value, str(value), str(value).lower()):
                if candidate in table:
                    return table[candidate]
            if has_default:
                return spec.default
            raise MappingError("invalid_value",
                               f"{name}: unexpected value {value!r} (known: {', '.join(map(str, table))})")

        return lookup

    def _refs(self, ref: RefSpec) -> Callable[[Any, dict[str, Any]], Any]:
        if ref.email:  # the common `ref: email` (every person an activity names), without the generic steps
            normalize = transforms.normalize_email

            def email(value: Any) -> str | None:
                normalized = normalize(value)
                return f"email:{normalized}" if normalized else None

            def emails(value: Any, document: dict[str, Any]) -> Any:
                if isinstance(value, list):
                    return [key for key in map(email, value) if key]
                return email(value)

            return emails

        def refs(value: Any, document: dict[str, Any]) -> Any:
            if isinstance(value, list):
                return [key for key in (self._ref(ref, item, document) for item in value) if key]
            return self._ref(ref, value, document)

        return refs

    def _ref(self, ref: RefSpec, value: Any, document: dict[str, Any]) -> str | None:
        if ref.email:
            normalized = transforms.normalize_email(value)
            return f"email:{normalized}" if normalized else None
        target: str | None = ref.object
        if ref.prefix:
            target = ref.prefix.get(str(value)[:3])
        elif ref.by_field and ref.map:
            target = ref.map.get(str(get_path(document, ref.by_field)))
        if not target:
            return None
        head, _, tail = target.partition(":")  # "salesforce:Contact" names another CRM's object
        system, object_type = (head, tail) if tail and head in SYSTEM_NAMES else (self.system, target)
        return source_key(system, object_type, value)


def _probe(paths: tuple[str, ...]) -> Probe:
    """Whether a record carries any of `paths` (for a path into a list, the list itself), even empty: what tells
    "this record lists no people" from "this record says nothing about people"."""
    heads = tuple(dict.fromkeys(path.split(".*")[0] for path in paths))
    if len(heads) == 1 and len(_parts(heads[0])) == 1 and not heads[0].isdigit():
        only = heads[0]
        return lambda document: only in document if isinstance(document, dict) else False
    return lambda document: any(get_path(document, head) is not MISSING for head in heads)


def _paths(spec: FieldSpec) -> tuple[str, ...]:
    return tuple(path for path in (spec.from_ if isinstance(spec.from_, list) else [spec.from_]) if path)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
