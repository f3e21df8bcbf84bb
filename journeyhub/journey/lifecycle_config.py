"""The lifecycle rule language (`mappings/lifecycle.yaml`): stages, the signals that prove them, segments.

A **signal** names one kind of evidence — a matching interaction, ticket, deal or person record — and
yields (time, evidence). A **stage** holds when its required stage holds and any of its signals occurred;
it is entered at the later of the required stage's entry and its earliest signal. A customer's stage is the
highest stage that holds. Thresholds, stage names and the signals themselves are data: a company can rename
stages, add one or change a window without touching Python.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from canonical.vocabulary import Channel, DealStatus, Direction, InteractionKind, Outcome

TimeWindow = Literal["before_first_purchase", "after_first_purchase"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class InteractionMatch(Strict):
    kind: list[InteractionKind] | None = None
    channel: list[Channel] | None = None
    direction: Direction | None = None
    outcome: list[Outcome] | None = None
    outcome_not: list[Outcome] | None = None
    min_score_ratio: float | None = Field(None, gt=0, le=1, description="score / score_max at least this")
    unscored: Literal["include", "exclude"] = Field(
        "exclude", description="whether an interaction without a score passes min_score_ratio")
    past_only: bool = Field(False, description="only if it happened at or before the evaluation time")


class TicketMatch(Strict):
    channel: list[Channel] | None = None


class DealMatch(Strict):
    status: list[DealStatus] | None = None
    time: Literal["opened", "closed"] = "opened"
    nth: int = Field(1, ge=1, description="the signal's time is the nth matching deal's (e.g. 2 = repeat)")


class RecordMatch(Strict):
    """Any person record of the customer; its time is the record's creation time."""


class Signal(Strict):
    interaction: InteractionMatch | None = None
    ticket: TicketMatch | None = None
    deal: DealMatch | None = None
    record: RecordMatch | None = None
    window: TimeWindow | None = Field(
        None, description="before_first_purchase: strictly before the first won close (or no purchase); "
                          "after_first_purchase: at or after it")

    @model_validator(mode="after")
    def _one_kind(self) -> Signal:
        kinds = [kind for kind in ("interaction", "ticket", "deal", "record") if getattr(self, kind) is not None]
        if len(kinds) != 1:
            raise ValueError("a signal matches exactly one of: interaction, ticket, deal, record")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in ("interaction", "ticket", "deal", "record") if getattr(self, kind))


class StageRule(Strict):
    id: str = Field(pattern=r"^[a-z0-9_.\-]+$")
    requires: str | None = Field(None, description="a lower stage that must hold first")
    any: list[str] = Field(min_length=1, description="signal names; one is enough")
    window: TimeWindow | None = Field(None, description="applies to every signal of this rule")


class Stage(Strict):
    key: str = Field(pattern=r"^[a-z0-9_]+$")
    name: str
    description: str | None = None
    rule: StageRule


class Segments(Strict):
    new_within_days: int = Field(90, ge=1)
    active_within_days: int = Field(180, ge=1)
    at_risk_within_days: int = Field(365, ge=1)
    returning_gap_days: int = Field(180, ge=1, description="a lapse this long, then activity again")
    activity: list[str] = Field(min_length=1, description="signals that count as activity with the customer")

    @model_validator(mode="after")
    def _ordered(self) -> Segments:
        if not self.new_within_days <= self.active_within_days < self.at_risk_within_days:
            raise ValueError("windows must satisfy new ≤ active < at_risk")
        return self


class LifecycleConfig(Strict):
    version: str = Field(description="bump when the rules change: every customer is then re-evaluated")
    purchase_signal: str = Field(description="the signal whose first occurrence is the first purchase")
    signals: dict[str, Signal]
    stages: list[Stage] = Field(min_length=1)
    segments: Segments

    @model_validator(mode="after")
    def _references(self) -> LifecycleConfig:
        known_stages: list[str] = []
        for stage in self.stages:
            if stage.key in known_stages:
                raise ValueError(f"stage {stage.key!r} is defined twice")
            if stage.rule.requires and stage.rule.requires not in known_stages:
                raise ValueError(f"stage {stage.key!r} requires {stage.rule.requires!r}, which is not a lower stage")
            self._signals_exist(stage.rule.any, f"stage {stage.key!r}")
            known_stages.append(stage.key)
        self._signals_exist([self.purchase_signal, *self.segments.activity], "segments")
        return self

    def _signals_exist(self, names: list[str], where: str) -> None:
        unknown = [name for name in names if name not in self.signals]
        if unknown:
            raise ValueError(f"{where} uses unknown signal(s) {', '.join(unknown)}; define them under signals:")

    def stage_order(self) -> dict[str, int]:
        return {stage.key: index + 1 for index, stage in enumerate(self.stages)}
