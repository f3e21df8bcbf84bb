"""Write models: what a mapping must produce for each canonical entity.

Each write model is its entity's base from `canonical.models` — where the fields, their types and their column
lengths are declared, once, for the table too — plus what a mapped record must satisfy: no unknown fields,
whitespace stripped, vocabulary values (`canonical.vocabulary`), well-formed emails, a person that can be
told apart, the required fields. A mapped record is validated here before it is stored; a validation failure
quarantines the record with a reason (`invalid_email`, `missing_required_field`, `invalid_value`) instead of
failing the run. Field names are the canonical table columns; references to other records are source keys.

Text longer than its column (docs/schema.md, "Values longer than their column"): free text — names, subjects,
bodies, labels, listed per model in `free_text` — is cut to fit and ends with "…"; any other text (ids, source
keys, emails, phones, domains, codes) is refused with `invalid_value`, since a shortened identifier would
name something else.

Values no database can store — NUL, lone surrogates — are cleaned before any check, in every write model, by
the rule of `canonical.types.clean_text` (docs/schema.md, "Values a database cannot store").
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from annotated_types import MaxLen
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, field_validator, model_validator
from pydantic.fields import FieldInfo
from sqlmodel import SQLModel

from canonical.fastpath import FastRow, fast_row
from canonical.models import (
    AssociationBase,
    CompanyBase,
    DealBase,
    InteractionBase,
    OwnerBase,
    PersonBase,
    PipelineStageBase,
    TicketBase,
)
from canonical.types import clean_json, clean_text, needs_cleaning

EMAIL_PATTERN = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\]]+$")
TEXT_LIMIT = 4000  # free text in a column without a length (ticket and interaction bodies)
#: Validation context of values read off a document known to hold no NUL and no lone surrogate (the loader
#: checks each record once, by the serialisation it hashes): the per-value cleaning scan is skipped.
CLEAN: dict[str, bool] = {"clean": True}


class InvalidEmail(ValueError):
    """Raised by the email validator; its class name becomes the quarantine reason."""


def _truncate(value: str | None, limit: int) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


def _clean(value: Any) -> Any:
    """`value` cleaned by the storage rule; the same object when it needed nothing (the usual case)."""
    if type(value) is str:
        return clean_text(value)
    if isinstance(value, dict | list) and value and needs_cleaning(value):
        return clean_json(value)
    return value


def _max_length(field: FieldInfo) -> int | None:
    return next((item.max_length for item in field.metadata if isinstance(item, MaxLen)), None)


class MappedEntity(SQLModel):
    """What every write model adds to its entity's fields."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, use_enum_values=True)

    entity: ClassVar[str]
    free_text: ClassVar[tuple[str, ...]] = ()  # cut to fit their column (else TEXT_LIMIT), never refused
    _text_limits: ClassVar[dict[str, int]] = {}

    # Every mapping may name custom fields; they are stored where the entity's table has a `custom` column
    # (owners, pipeline stages and associations have none).
    custom: dict[str, Any] | None = None

    # A write model is a plain pydantic model over its base's fields. SQLModel's `__new__`, `__init__`,
    # `model_validate`, `model_dump` and `__setattr__` wrap pydantic's for table models (SQLAlchemy's
    # instrumentation); here they would only add cost to every record a sync maps (validation took 2.5x as
    # long with them), so pydantic's own are used.
    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    __init__ = BaseModel.__init__
    __setattr__ = BaseModel.__setattr__
    model_validate = BaseModel.__dict__["model_validate"]
    model_dump = BaseModel.model_dump

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        super().__pydantic_init_subclass__(**kwargs)
        cls._text_limits = {name: _max_length(cls.model_fields[name]) or TEXT_LIMIT for name in cls.free_text}

    @model_validator(mode="before")
    @classmethod
    def _fit_free_text(cls, values: Any, info: ValidationInfo) -> Any:
        """Before the length checks: text cleaned (NUL, lone surrogates; not when the context is `CLEAN`),
        long free text trimmed, then cut to its limit."""
        if not isinstance(values, dict):
            return values
        if info.context is not CLEAN:
            dirty = {name: cleaned for name, value in values.items()
                     if (cleaned := _clean(value)) is not value}
            if dirty:
                values = {**values, **dirty}
        for name, limit in cls._text_limits.items():
            value = values.get(name)
            if isinstance(value, str) and len(value) > limit:
                values = {**values, name: _truncate(value.strip(), limit)}
        return values

    def row(self) -> dict[str, Any]:
        return self.model_dump()


class PersonIn(PersonBase, MappedEntity):
    entity = "person"
    free_text = ("first_name", "last_name", "full_name")

    @field_validator("email")
    @classmethod
    def _valid_email(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not EMAIL_PATTERN.match(value):
            raise InvalidEmail(f"malformed email address {value!r}")
        return value

    @model_validator(mode="after")
    def _identifiable(self) -> PersonIn:
        if not (self.last_name or self.full_name or self.first_name or self.email or self.phone):
            raise ValueError("missing: a person needs a name, an email or a phone")
        if not self.full_name:
            parts = [part for part in (self.first_name, self.last_name) if part]
            self.full_name = _truncate(" ".join(parts), self._text_limits["full_name"]) or None
        return self


class CompanyIn(CompanyBase, MappedEntity):
    entity = "company"
    free_text = ("name", "industry")


class DealIn(DealBase, MappedEntity):
    entity = "deal"
    free_text = ("name", "stage_label")


class TicketIn(TicketBase, MappedEntity):
    entity = "ticket"
    free_text = ("subject", "body", "status", "priority")


class InteractionIn(InteractionBase, MappedEntity):
    entity = "interaction"
    free_text = ("subject", "body")


class OwnerIn(OwnerBase, MappedEntity):
    entity = "owner"
    free_text = ("name",)


class PipelineStageIn(PipelineStageBase, MappedEntity):
    entity = "pipeline_stage"
    free_text = ("pipeline_label", "label")


class AssociationIn(AssociationBase, MappedEntity):
    """A relation asserted by a record of its own (e.g. a Salesforce OpportunityContactRole)."""

    entity = "association"
    free_text = ("label",)


WRITE_MODELS: dict[str, type[MappedEntity]] = {
    model.entity: model
    for model in (PersonIn, CompanyIn, DealIn, TicketIn, InteractionIn, OwnerIn, PipelineStageIn,
                  AssociationIn)
}


def quarantine_reason(error: ValidationError) -> tuple[str, str]:
    """The quarantine reason code and a one-line detail for a failed validation."""
    first = error.errors()[0]
    location = ".".join(str(part) for part in first.get("loc", ())) or "record"
    context = first.get("ctx", {}).get("error")
    if isinstance(context, InvalidEmail):
        return "invalid_email", f"{location}: {context}"
    if first["type"] == "missing" or "missing" in first.get("msg", ""):
        return "missing_required_field", f"{location}: {first['msg']}"
    return "invalid_value", f"{location}: {first['msg']} (got {first.get('input')!r:.80})"


#: Each write model's plain-function check for plainly valid values read off a clean document
#: (`canonical.fastpath`; None: always validated by pydantic).
FAST_ROWS: dict[str, FastRow | None] = {
    entity: fast_row(model, model._text_limits) for entity, model in WRITE_MODELS.items()}
