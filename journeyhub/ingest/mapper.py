"""Applies a MappingSpec to one CRM record: pure, no I/O, so golden tests can feed it raw pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from canonical.inputs import WRITE_MODELS, quarantine_reason
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


def get_path(document: Any, path: str) -> Any:
    """The value at a dotted path; `*` maps over a list; MISSING when any step is absent."""
    value = document
    parts = path.split(".")
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


@dataclass
class MappedRow:
    entity: str
    key: str
    row: dict[str, Any]
    people: list[tuple[str, str | None, bool]] | None = None  # None: the record said nothing about people


@dataclass
class MappedRecord:
    rows: list[MappedRow] = field(default_factory=list)
    merged_into: str | None = None
    merges: list[str] = field(default_factory=list)
    skipped: bool = False


class Mapper:
    """Maps records of one (system, object type) with its spec."""

    def __init__(self, system: str, spec: MappingSpec) -> None:
        self.system = system
        self.spec = spec

    def map(self, remote_id: str, document: dict[str, Any]) -> MappedRecord:
        """The canonical rows for one record; raises MappingError for a record to quarantine."""
        if self.spec.skip_when is not None and holds(self.spec.skip_when, document):
            return MappedRecord(skipped=True)
        key = source_key(self.system, self.spec.object, remote_id)
        main = self._row(self.spec.entity, key, self.spec.fields, self.spec.custom, self.spec.people, document, key)
        record = MappedRecord(rows=[main])
        for derived in self.spec.derived:
            if holds(derived.when, document):
                derived_key = f"{key}#{derived.suffix}"
                record.rows.append(self._row(derived.entity, derived_key, derived.fields, derived.custom,
                                             derived.people, document, key))
        if self.spec.merged_into is not None:
            record.merged_into = self._value(self.spec.merged_into, document, "merged_into")
        if self.spec.merges is not None:
            merges = self._value(self.spec.merges, document, "merges")
            record.merges = [merges] if isinstance(merges, str) else list(merges or [])
        return record

    # ------------------------------------------------------------------ rows
    def _row(self, entity: str, key: str, fields: dict[str, FieldSpec], custom: dict[str, FieldSpec],
             people: list[PeopleSpec], document: dict[str, Any], owner_key: str) -> MappedRow:
        values = {name: self._value(spec, document, name) for name, spec in fields.items()}
        extra = {name: self._value(spec, document, f"custom.{name}") for name, spec in custom.items()}
        extra = {name: _jsonable(value) for name, value in extra.items() if value is not None}
        try:
            model = WRITE_MODELS[entity].model_validate({**values, "custom": extra or None})
        except ValidationError as error:
            raise MappingError(*quarantine_reason(error)) from None
        row = {name: getattr(value, "value", value) for name, value in model.row().items()}
        return MappedRow(entity, key, row, self._people(people, document, owner_key))

    def _people(self, specs: list[PeopleSpec], document: dict[str, Any],
                owner_key: str) -> list[tuple[str, str | None, bool]] | None:
        if not specs:
            return None
        found: list[tuple[str, str | None, bool]] = []
        provided = False
        for spec in specs:
            if spec.self_:
                provided = True
                keys: Any = [owner_key]
            else:
                paths = spec.from_ if isinstance(spec.from_, list) else [spec.from_]
                provided = provided or any(get_path(document, path.split(".*")[0]) is not MISSING
                                           for path in paths if path)
                keys = self._value(spec, document, "people")
            for person in keys if isinstance(keys, list) else [keys]:
                if person and all(person != existing for existing, _, _ in found):
                    found.append((person, spec.label, not found))
        return found if provided else None

    # ------------------------------------------------------------------ values
    def _value(self, spec: FieldSpec, document: dict[str, Any], name: str) -> Any:
        if spec.when is not None and not holds(spec.when, document):
            return None
        value = self._raw(spec, document)
        try:
            for step in spec.transform:
                transform, argument = (step, None) if isinstance(step, str) else next(iter(step.items()))
                if value is not None:
                    value = transforms.apply(transform, value, argument)
        except transforms.TransformError as error:
            raise MappingError("invalid_value", f"{name}: {error}") from None
        if spec.map is not None and value is not None:
            value = self._lookup(spec, value, name)
        elif value is None and "default" in spec.model_fields_set and "cases" not in spec.model_fields_set:
            value = spec.default
        if spec.ref is not None and value is not None:
            value = self._refs(spec.ref, value, document)
        if spec.required and value in (None, "", []):
            raise MappingError("missing_required_field", f"{name}: required value is missing")
        return value

    def _raw(self, spec: FieldSpec, document: dict[str, Any]) -> Any:
        if "value" in spec.model_fields_set:
            return spec.value
        if spec.cases is not None:
            for case in spec.cases:
                if holds(case.when, document):
                    return case.value
            return spec.default
        for path in spec.from_ if isinstance(spec.from_, list) else [spec.from_]:
            value = get_path(document, path or "")
            if value is not MISSING and value is not None and value != "" and value != []:
                return value
        return None

    def _lookup(self, spec: FieldSpec, value: Any, name: str) -> Any:
        table = spec.map or {}
        if isinstance(value, list):
            return [self._lookup(spec, item, name) for item in value]
        for candidate in (value, str(value), str(value).lower()):
            if candidate in table:
                return table[candidate]
        if "default" in spec.model_fields_set:
            return spec.default
        raise MappingError("invalid_value", f"{name}: unexpected value {value!r} (known: {', '.join(map(str, table))})")

    def _refs(self, ref: RefSpec, value: Any, document: dict[str, Any]) -> Any:
        if isinstance(value, list):
            keys = [self._ref(ref, item, document) for item in value]
            return [key for key in keys if key]
        return self._ref(ref, value, document)

    def _ref(self, ref: RefSpec, value: Any, document: dict[str, Any]) -> str | None:
        if ref.email:
            normalized = transforms.normalize_email(value)
            return f"email:{normalized}" if normalized else None
        system, object_type = self.system, None
        if ref.object:
            head, _, tail = ref.object.partition(":")
            system, object_type = (head, tail) if tail and head in SYSTEM_NAMES else (self.system, ref.object)
        elif ref.prefix:
            object_type = ref.prefix.get(str(value)[:3])
        elif ref.by_field and ref.map:
            object_type = ref.map.get(str(get_path(document, ref.by_field)))
        return source_key(system, object_type, value) if object_type else None


def _jsonable(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
