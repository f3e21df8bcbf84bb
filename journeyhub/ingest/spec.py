"""The mapping language: what `mappings/<system>/<object>.yaml` may say, validated on load.

A mapping turns one CRM record (its JSON, plus connector enrichment under `_`-prefixed keys) into one
canonical row. Each canonical field is either a path string or a small object:

```yaml
email: properties.email                      # a path (dots; `*` maps over a list)
phone: {from: [properties.phone, properties.mobilephone]}   # first non-empty
kind: {value: call}                          # a constant
direction: {from: CallType, map: {Inbound: inbound, Outbound: outbound}, default: null}
status: {cases: [{when: {path: IsWon, equals: true}, value: won}], default: open}
closed_at: {from: CloseDate, transform: date_utc, when: {path: IsClosed, equals: true}}
owner_id: {from: OwnerId, ref: User}         # a reference becomes a source key
xrefs: {from: [a, b], collect: true, ref: {prefix: {"003": "salesforce:Contact", "00Q": "salesforce:Lead"}}}
```
Named transforms come from a closed set (`journeyhub.ingest.transforms.TRANSFORMS`); there are no
expressions. `people` lists who the record is about; `derived` reads extra timeline items off the same
record (a contact's form submission); `skip_when` recognises the hub's own write-backs.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from canonical.inputs import WRITE_MODELS
from connectors.registry import PACKAGES
from journeyhub.ingest.transforms import TRANSFORMS

Entity = Literal["person", "company", "deal", "ticket", "interaction", "owner", "pipeline_stage", "association"]
SYSTEM_NAMES = PACKAGES.keys()  # the registered CRMs, a live view


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Condition(Strict):
    """A test on one path of the record; exactly one test keyword."""

    path: str
    equals: Any = None
    not_equals: Any = None
    in_: list[Any] | None = Field(None, alias="in")
    not_in: list[Any] | None = None
    present: bool | None = None
    startswith: str | None = None

    @model_validator(mode="after")
    def _one_test(self) -> Condition:
        tests = [name for name in ("equals", "not_equals", "in_", "not_in", "present", "startswith")
                 if name in self.model_fields_set]
        if len(tests) != 1:
            raise ValueError("a condition needs exactly one of: equals, not_equals, in, not_in, present, "
                             "startswith")
        return self


Conditions = Condition | list[Condition]


class Case(Strict):
    when: Conditions
    value: Any


class RefSpec(Strict):
    """How a value becomes a source key: a fixed object type, an id prefix table, a type column, or email."""

    object: str | None = None
    prefix: dict[str, str] | None = None
    by_field: str | None = None
    map: dict[str, str] | None = None
    email: bool = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"email": True} if value == "email" else {"object": value}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> RefSpec:
        kinds = [bool(self.object), bool(self.prefix), bool(self.by_field), self.email]
        if sum(kinds) != 1:
            raise ValueError("a ref is one of: an object type, {prefix: {...}}, {by_field: ..., map: {...}}, email")
        if self.by_field and not self.map:
            raise ValueError("ref.by_field needs ref.map (type value → object type)")
        return self


class FieldSpec(Strict):
    from_: str | list[str] | None = Field(None, alias="from")
    value: Any = None
    cases: list[Case] | None = None
    default: Any = None
    map: dict[Any, Any] | None = None
    transform: list[str | dict[str, Any]] = Field(default_factory=list)
    ref: RefSpec | None = None
    when: Conditions | None = None
    required: bool = False
    collect: bool = Field(False, description="every non-empty value of every `from` path, as one list")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"from": value} if isinstance(value, str) else value

    @field_validator("transform", mode="before")
    @classmethod
    def _listify(cls, value: Any) -> Any:
        return [value] if isinstance(value, str | dict) else value

    @field_validator("transform")
    @classmethod
    def _known_transforms(cls, steps: list[str | dict[str, Any]]) -> list[str | dict[str, Any]]:
        for step in steps:
            names = [step] if isinstance(step, str) else list(step)
            if isinstance(step, dict) and len(step) != 1:
                raise ValueError(f"a transform with an argument is written {{name: argument}}, got {step}")
            for name in names:
                if name not in TRANSFORMS:
                    raise ValueError(f"unknown transform {name!r}; known: {', '.join(sorted(TRANSFORMS))}")
        return steps

    @model_validator(mode="after")
    def _one_source(self) -> FieldSpec:
        sources = [name for name in ("from_", "value", "cases") if name in self.model_fields_set]
        if len(sources) != 1:
            raise ValueError("a field takes its value from exactly one of: from, value, cases")
        return self


class PeopleSpec(FieldSpec):
    """Who the record is about: each value is a reference to a person record (or an email address)."""

    self_: bool = Field(False, alias="self")
    label: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> PeopleSpec:
        if self.self_:
            return self
        if self.ref is None:
            raise ValueError("people entries need a ref (e.g. ref: contacts, or ref: email)")
        return super()._one_source()  # type: ignore[return-value]


def _check_fields(entity: str, fields: dict[str, FieldSpec]) -> None:
    model = WRITE_MODELS[entity]
    allowed = set(model.model_fields) - {"custom"}
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ValueError(f"{entity} has no field(s) {', '.join(repr(name) for name in unknown)}; "
                         f"its fields are: {', '.join(sorted(allowed))}")


class DerivedSpec(Strict):
    """A second canonical row read off the same record, e.g. a form submission from a contact's
    conversion date. Its id is the record's source key + `#` + `suffix`."""

    suffix: str = Field(pattern=r"^[a-z0-9_]+$")
    entity: Entity = "interaction"
    when: Conditions
    fields: dict[str, FieldSpec]
    custom: dict[str, FieldSpec] = Field(default_factory=dict)
    people: list[PeopleSpec] = Field(default_factory=lambda: [PeopleSpec.model_validate({"self": True})])

    @field_validator("fields")
    @classmethod
    def _fields_exist(cls, fields: dict[str, FieldSpec], info: ValidationInfo) -> dict[str, FieldSpec]:
        _check_fields(info.data.get("entity", "interaction"), fields)
        return fields


class MappingSpec(Strict):
    """One CRM object type mapped to one canonical entity."""

    object: str
    entity: Entity
    description: str | None = None
    skip_when: Conditions | None = Field(None, description="the hub's own write-backs: counted, not ingested")
    fields: dict[str, FieldSpec]
    custom: dict[str, FieldSpec] = Field(default_factory=dict)
    people: list[PeopleSpec] = Field(default_factory=list)
    merged_into: FieldSpec | None = Field(None, description="this record was merged into that one")
    merges: FieldSpec | None = Field(None, description="these records were merged into this one")
    derived: list[DerivedSpec] = Field(default_factory=list)

    @field_validator("fields")
    @classmethod
    def _fields_exist(cls, fields: dict[str, FieldSpec], info: ValidationInfo) -> dict[str, FieldSpec]:
        entity = info.data.get("entity")
        if entity is None:
            return fields
        _check_fields(entity, fields)
        required = {name for name, field in WRITE_MODELS[entity].model_fields.items() if field.is_required()}
        missing = sorted(required - set(fields))
        if missing:
            raise ValueError(f"{entity} mappings must map {', '.join(missing)}")
        return fields
