"""Write-back policy (`mappings/writeback.yaml`): which journey fields go to which CRM field, who owns each
field, and which timeline items are mirrored into each CRM as its native activities. One section per CRM,
under the CRM's system name; nothing here knows one CRM from another."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from connectors.base import FieldType
from journeyhub.settings import SYSTEMS

HubValue = Literal[
    "customer_id", "stage", "segment", "stage_entered_at", "last_interaction_at", "last_interaction_channel",
    "email_opens", "email_clicks", "last_email_open_at", "last_email_click_at",
]
Policy = Literal["hub_wins", "fill_empty", "crm_owns"]
MirrorKind = Literal[
    "email", "call", "meeting", "chat", "sms", "social", "form_submission", "survey_response", "referral",
    "review", "note", "task", "deal_created", "deal_won", "deal_lost", "ticket_opened", "ticket_closed",
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FieldRule(Strict):
    name: str = Field(description="the CRM's field / property / column name")
    value: HubValue
    type: FieldType = "string"
    label: str | None = None
    policy: Policy = Field(
        "hub_wins", description="hub_wins: always write (a value someone else changed is a recorded conflict); "
                                "fill_empty: never overwrite a non-empty value; crm_owns: never write")


class MirrorRule(Strict):
    object: str = Field(description="the CRM object mirrored items become (notes, Task, tasks, …)")
    kinds: list[MirrorKind] = Field(default_factory=list)
    marker_field: str = Field(description="field carrying the hub's item id: the loop-safety marker")
    marker_prefix: str = "jh:"
    max_items_per_customer: int = Field(200, ge=1, description="the most recent items mirrored per record")


class SystemPolicy(Strict):
    enabled: bool = True
    label: str | None = Field(None, description="how the items mirrored from this CRM name it in the others")
    targets: list[str] = Field(min_length=1, description="person objects written to (contacts, Contact, Lead, …)")
    property_group: str | None = Field(None, description="where the CRM groups custom fields: the group the hub "
                                                         "creates its fields in")
    fields: list[FieldRule]
    mirror: MirrorRule | None = None

    @model_validator(mode="after")
    def _unique_fields(self) -> SystemPolicy:
        names = [rule.name for rule in self.fields]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"field(s) listed twice: {', '.join(duplicates)}")
        return self


class WritebackConfig(BaseModel):
    """`version` plus one `SystemPolicy` per CRM, keyed by system name."""

    model_config = ConfigDict(extra="allow", frozen=True)
    version: str
    __pydantic_extra__: dict[str, SystemPolicy] = Field(init=False)

    @model_validator(mode="after")
    def _known_systems(self) -> WritebackConfig:
        unknown = sorted(set(self.model_extra or {}) - set(SYSTEMS))
        if unknown:
            raise ValueError(f"no CRM is called {', '.join(repr(name) for name in unknown)}; "
                             f"sections are named {', '.join(SYSTEMS)}")
        return self

    def system(self, name: str) -> SystemPolicy | None:
        policy = (self.model_extra or {}).get(name)
        return policy if policy is not None and policy.enabled else None

    def label(self, name: str) -> str:
        """The name items mirrored from CRM `name` carry in the others."""
        policy = (self.model_extra or {}).get(name)
        return policy.label if policy is not None and policy.label else name
