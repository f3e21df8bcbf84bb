"""Write models: what a mapping must produce for each canonical entity.

A mapped record is validated here before it is stored; a validation failure quarantines the record with a
reason (`invalid_email`, `missing_required_field`, `invalid_value`) instead of failing the run. Field names
are the canonical table columns; references to other records are source keys.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from canonical.vocabulary import Channel, DealStatus, Direction, InteractionKind, Outcome, PersonKind

EMAIL_PATTERN = re.compile(r"^[^@\s<>(),;:\"\[\]]+@[^@\s<>(),;:\"\[\]]+\.[^@\s<>(),;:\"\[\]]+$")
SUBJECT_LIMIT = 1000
BODY_LIMIT = 4000


class InvalidEmail(ValueError):
    """Raised by the email validator; its class name becomes the quarantine reason."""


def _truncate(value: str | None, limit: int) -> str | None:
    if value is None or len(value) <= limit:
        return value
    return value[: limit - 1] + "…"


class MappedEntity(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, use_enum_values=True)

    entity: ClassVar[str]
    custom: dict[str, Any] | None = None

    def row(self) -> dict[str, Any]:
        return self.model_dump()


class PersonIn(MappedEntity):
    entity = "person"

    kind: PersonKind = PersonKind.contact
    email: str | None = None
    phone: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    full_name: str | None = None
    company_id: str | None = None
    owner_id: str | None = None
    converted_to: str | None = None
    xrefs: list[str] | None = None

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
            self.full_name = " ".join(parts) or None
        return self


class CompanyIn(MappedEntity):
    entity = "company"

    name: str | None = None
    domain: str | None = None
    industry: str | None = None
    phone: str | None = None
    owner_id: str | None = None


class DealIn(MappedEntity):
    entity = "deal"

    name: str | None = None
    amount: float | None = None
    currency: str | None = None
    pipeline: str | None = None
    stage: str | None = None
    stage_label: str | None = None
    status: DealStatus = DealStatus.open
    opened_at: datetime
    closed_at: datetime | None = None
    owner_id: str | None = None
    company_id: str | None = None


class TicketIn(MappedEntity):
    entity = "ticket"

    subject: str | None = None
    body: str | None = None
    status: str | None = None
    is_closed: bool = False
    priority: str | None = None
    channel: Channel | None = None
    opened_at: datetime
    closed_at: datetime | None = None
    owner_id: str | None = None
    company_id: str | None = None

    @field_validator("subject")
    @classmethod
    def _short_subject(cls, value: str | None) -> str | None:
        return _truncate(value, SUBJECT_LIMIT)

    @field_validator("body")
    @classmethod
    def _short_body(cls, value: str | None) -> str | None:
        return _truncate(value, BODY_LIMIT)


class InteractionIn(MappedEntity):
    entity = "interaction"

    kind: InteractionKind
    channel: Channel = Channel.other
    direction: Direction | None = None
    outcome: Outcome | None = None
    occurred_at: datetime
    subject: str | None = None
    body: str | None = None
    score: float | None = None
    score_max: float | None = Field(default=None, gt=0)
    owner_id: str | None = None
    company_id: str | None = None
    deal_id: str | None = None
    ticket_id: str | None = None

    @field_validator("subject")
    @classmethod
    def _short_subject(cls, value: str | None) -> str | None:
        return _truncate(value, SUBJECT_LIMIT)

    @field_validator("body")
    @classmethod
    def _short_body(cls, value: str | None) -> str | None:
        return _truncate(value, BODY_LIMIT)


class OwnerIn(MappedEntity):
    entity = "owner"

    email: str | None = None
    name: str | None = None
    is_active: bool = True


class PipelineStageIn(MappedEntity):
    entity = "pipeline_stage"

    object_type: str
    pipeline_id: str
    pipeline_label: str | None = None
    stage_id: str
    label: str | None = None
    display_order: int | None = None
    is_closed: bool = False
    is_won: bool = False


class AssociationIn(MappedEntity):
    """A relation asserted by a record of its own (e.g. a Salesforce OpportunityContactRole)."""

    entity = "association"

    from_id: str
    to_id: str
    label: str | None = None
    is_primary: bool = False


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
