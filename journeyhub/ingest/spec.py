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
expressions. `people` lists who the record is about; `linked` lists records that relate to this one as its
own side says (an archived HubSpot contact's activities, which HubSpot no longer links to it); `derived`
reads extra timeline items off the same record (a contact's form submission); `skip_when` recognises the
hub's own write-backs.

Every path a mapping reads is a field the connector asks the CRM for (`MappingSpec.source_paths`), checked
against the org's schema first. `presence` says which of them an org may lack:

```yaml
presence:
  new_surveyscore: {optional: survey scores from Dataverse tasks are not read}   # warn, read the rest
  Account_Tier__c: required                                                     # fail the object without it
```
Without an entry, the connector's rule decides (docs/crm-conventions.md): custom fields and fields of other
editions, hubs or integrations are optional, the vendor's standard fields required.
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


class LinkedSpec(FieldSpec):
    """Records this one lists as related to it (each a reference): each becomes a relation from that record
    to this one, kept as this record's word (replaced when this record is read again)."""

    @model_validator(mode="after")
    def _needs_ref(self) -> LinkedSpec:
        if self.ref is None:
            raise ValueError("linked entries need a ref (e.g. ref: calls)")
        return self


class PresenceSpec(Strict):
    """Whether the org must have a source field: `required`, `optional`, or `{optional: what is lost}`."""

    required: bool = False
    optional: bool | str = False

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if value in ("required", "optional"):
            return {value: True}
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> PresenceSpec:
        if bool(self.required) == bool(self.optional):
            raise ValueError("presence is `required`, `optional` or {optional: what is not read without it}")
        return self

    @property
    def loss(self) -> str | None:
        """What the hub cannot read without the field, in words (None: not said)."""
        return self.optional if isinstance(self.optional, str) else None


def condition_paths(conditions: Conditions | None) -> list[str]:
    if conditions is None:
        return []
    return [item.path for item in (conditions if isinstance(conditions, list) else [conditions])]


def field_paths(spec: FieldSpec) -> list[str]:
    """Every path one field rule reads: its sources, its conditions (`when`, `cases`) and a typed ref's column."""
    paths = [path for path in (spec.from_ if isinstance(spec.from_, list) else [spec.from_]) if path]
    paths += condition_paths(spec.when)
    for case in spec.cases or []:
        paths += condition_paths(case.when)
    if spec.ref is not None and spec.ref.by_field:
        paths.append(spec.ref.by_field)
    return paths


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
    linked: list[LinkedSpec] = Field(default_factory=list, description="records related to this one, as it says")
    derived: list[DerivedSpec] = Field(default_factory=list)
    presence: dict[str, PresenceSpec] = Field(default_factory=dict,
                                              description="which source fields an org may lack (by path)")

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

    @model_validator(mode="after")
    def _presence_names_read_paths(self) -> MappingSpec:
        unknown = sorted(set(self.presence) - set(self.source_paths()))
        if unknown:
            raise ValueError(f"presence names {', '.join(repr(path) for path in unknown)}, which no rule of this "
                             "mapping reads (presence keys are paths as the rules write them)")
        return self

    def source_paths(self) -> dict[str, list[str]]:
        """Every path the mapping reads → the rules that read it (in the file's order): what the connector must
        ask the CRM for, and what is lost when the org lacks one."""
        found: dict[str, list[str]] = {}

        def add(rule: str, paths: list[str]) -> None:
            for path in paths:
                rules = found.setdefault(path, [])
                if rule not in rules:
                    rules.append(rule)

        add("skip_when", condition_paths(self.skip_when))
        for prefix, fields, custom, people in [("", self.fields, self.custom, self.people)] + [
                (f"{item.suffix}.", item.fields, item.custom, item.people) for item in self.derived]:
            for name, spec in fields.items():
                add(f"{prefix}{name}", field_paths(spec))
            for name, spec in custom.items():
                add(f"{prefix}custom.{name}", field_paths(spec))
            for spec in people:
                add(f"{prefix}people", field_paths(spec))
        for item in self.derived:
            add(f"{item.suffix} (when)", condition_paths(item.when))
        for name, spec in (("merged_into", self.merged_into), ("merges", self.merges)):
            if spec is not None:
                add(name, field_paths(spec))
        for spec in self.linked:
            add("linked", field_paths(spec))
        return found
