"""Identity rules (`mappings/identity.yaml`): how person records become one customer, and which value of
each field the customer's golden record keeps."""

from __future__ import annotations

from typing import Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from connectors.registry import SystemName

RuleType = Literal["source_merge", "conversion", "xref", "email", "phone"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EmailNormalization(Strict):
    unicode_form: Literal["NFC", "NFKC"] = "NFKC"
    casefold: bool = True


class PhoneNormalization(Strict):
    default_region: str = Field("IL", description="ISO 3166 region for numbers written without a country code")
    min_digits: int = Field(8, ge=5, description="shorter numbers never match")

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, region: str) -> str:
        region = region.upper()
        if region not in phonenumbers.SUPPORTED_REGIONS:
            raise ValueError(f"unknown phone region {region!r} (use an ISO 3166 code such as IL, US, GB)")
        return region


class MatchRule(Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    type: RuleType
    enabled: bool = True
    max_cluster_share: int | None = Field(
        None, ge=2, description="ignore a key shared by more records than this (a switchboard number)")


class FieldSurvivorship(Strict):
    strategy: Literal["source_priority", "most_recent", "oldest"] = "most_recent"
    priority: list[SystemName] = Field(default_factory=list)
    prefer_contacts: bool = Field(True, description="a contact's value beats a lead's")

    @model_validator(mode="after")
    def _priority_given(self) -> FieldSurvivorship:
        if self.strategy == "source_priority" and not self.priority:
            raise ValueError("strategy source_priority needs a priority list of systems")
        return self


GOLDEN_FIELDS = ("email", "first_name", "last_name", "full_name", "phone", "company_id", "owner_id")


class IdentityConfig(Strict):
    version: str
    email: EmailNormalization = EmailNormalization()
    phone: PhoneNormalization = PhoneNormalization()
    rules: list[MatchRule] = Field(
        min_length=1, description="in priority order: the first rule linking two records is recorded")
    survivorship: dict[str, FieldSurvivorship] = Field(default_factory=dict)

    @field_validator("survivorship")
    @classmethod
    def _known_fields(cls, value: dict[str, FieldSurvivorship]) -> dict[str, FieldSurvivorship]:
        unknown = sorted(set(value) - set(GOLDEN_FIELDS) - {"default"})
        if unknown:
            raise ValueError(f"no golden-record field(s) {', '.join(unknown)}; fields: {', '.join(GOLDEN_FIELDS)}")
        return value

    @model_validator(mode="after")
    def _unique_rules(self) -> IdentityConfig:
        ids = [rule.id for rule in self.rules]
        if len(ids) != len(set(ids)):
            raise ValueError("rule ids must be unique")
        return self

    def field_rule(self, name: str) -> FieldSurvivorship:
        return self.survivorship.get(name) or self.survivorship.get("default") or FieldSurvivorship()
