"""Lifecycle evaluation: one customer's facts + the rule set → stages entered, history, segment facts.

Pure functions (no database), so every rule and boundary is tested as a table of cases. The evaluation is
"as of" a time: evidence after it does not exist yet, which also answers "what stage was this customer in
on date X".
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import pairwise
from typing import NamedTuple

from journeyhub.journey.lifecycle_config import LifecycleConfig, Signal


# The facts a rule reads. Facts loaded in bulk (`journeyhub.journey.facts`) are plain tuples in these fields'
# order, read here by position: the collector stops tracking a plain tuple of plain values, so the hundreds of
# thousands of facts a tagging pass holds cost it nothing. The named forms build facts by hand (tests).
class InteractionFact(NamedTuple):
    id: str
    kind: str
    channel: str
    direction: str | None
    outcome: str | None
    occurred_at: datetime | None
    score: float | None = None
    score_max: float | None = None


class DealFact(NamedTuple):
    id: str
    status: str
    opened_at: datetime | None
    closed_at: datetime | None


class TicketFact(NamedTuple):
    id: str
    opened_at: datetime | None
    channel: str | None


class PersonFact(NamedTuple):
    id: str
    created_at: datetime | None


@dataclass
class CustomerFacts:
    customer_id: str
    persons: Sequence[PersonFact] = ()
    deals: Sequence[DealFact] = ()
    tickets: Sequence[TicketFact] = ()
    interactions: Sequence[InteractionFact] = ()
    _by_kind: dict[str, list[InteractionFact]] | None = field(default=None, repr=False, compare=False)

    def of_kinds(self, kinds: set[str]) -> Sequence[InteractionFact]:
        """Interactions of these kinds (all when empty); signals ask this many times per customer."""
        if not kinds:
            return self.interactions
        if self._by_kind is None:
            self._by_kind = {}
            for item in self.interactions:
                self._by_kind.setdefault(item[1], []).append(item)  # its kind
        if len(kinds) == 1:
            return self._by_kind.get(next(iter(kinds)), [])
        return [item for kind in kinds for item in self._by_kind.get(kind, [])]


@dataclass(frozen=True, slots=True)
class Evidence:
    time: datetime
    type: str          # interaction | deal | ticket | person
    id: str
    channel: str | None = None


@dataclass(frozen=True, slots=True)
class Entry:
    stage: str
    order: int
    time: datetime
    rule_id: str
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class Stay:
    stage: str
    order: int
    entered_at: datetime
    exited_at: datetime | None
    rule_id: str
    evidence: Evidence


@dataclass
class Journey:
    """What the rules conclude about one customer as of a time."""

    customer_id: str
    stage: str | None
    entries: dict[str, Entry]
    history: list[Stay]
    first_purchase_at: datetime | None
    last_activity_at: datetime | None
    last_return_at: datetime | None
    last_interaction_at: datetime | None
    last_interaction_channel: str | None


Matcher = Callable[[CustomerFacts, datetime], list[Evidence]]


# ------------------------------------------------------------------------------------------- signals
def _interaction_matcher(signal: Signal) -> Matcher:
    match = signal.interaction
    assert match is not None
    kinds = set(match.kind or [])
    channels = set(match.channel or [])
    outcomes = set(match.outcome or [])
    excluded = set(match.outcome_not or [])

    def passes(item: InteractionFact, as_of: datetime) -> bool:
        _, kind, channel, direction, outcome, occurred_at, score, score_max = item
        if occurred_at is None or occurred_at > as_of:
            return False
        if (kinds and kind not in kinds) or (channels and channel not in channels):
            return False
        if match.direction and direction != match.direction:
            return False
        if (outcomes and outcome not in outcomes) or (excluded and outcome in excluded):
            return False
        if match.min_score_ratio is not None:
            if score is None or not score_max:
                return match.unscored == "include"
            return score / score_max >= match.min_score_ratio - 1e-9
        return True

    return lambda facts, as_of: [Evidence(item[5], "interaction", item[0], item[2])  # type: ignore[arg-type]
                                 for item in facts.of_kinds(kinds) if passes(item, as_of)]  # when, id, channel


def _deal_matcher(signal: Signal) -> Matcher:
    match = signal.deal
    assert match is not None
    statuses = set(match.status or [])

    def evidence(facts: CustomerFacts, as_of: datetime) -> list[Evidence]:
        found = []
        for deal_id, status, opened_at, closed_at in facts.deals:
            time = closed_at if match.time == "closed" else opened_at
            if time is not None and time <= as_of and (not statuses or status in statuses):
                found.append(Evidence(time, "deal", deal_id, "other"))
        found.sort(key=lambda item: (item.time, item.id))
        return found[match.nth - 1:]

    return evidence


def _ticket_matcher(signal: Signal) -> Matcher:
    channels = set((signal.ticket.channel if signal.ticket else None) or [])
    return lambda facts, as_of: [Evidence(opened_at, "ticket", ticket_id, channel or "support")
                                 for ticket_id, opened_at, channel in facts.tickets if opened_at is not None
                                 and opened_at <= as_of and (not channels or channel in channels)]


def _record_matcher(_signal: Signal) -> Matcher:
    return lambda facts, as_of: [Evidence(created_at, "person", person_id)
                                 for person_id, created_at in facts.persons
                                 if created_at is not None and created_at <= as_of]


MATCHERS: dict[str, Callable[[Signal], Matcher]] = {
    "interaction": _interaction_matcher, "deal": _deal_matcher, "ticket": _ticket_matcher, "record": _record_matcher,
}


def _windowed(items: list[Evidence], window: str | None, first_purchase: datetime | None) -> list[Evidence]:
    if window == "before_first_purchase":
        return [item for item in items if first_purchase is None or item.time < first_purchase]
    if window == "after_first_purchase":
        return [] if first_purchase is None else [item for item in items if item.time >= first_purchase]
    return items


def _earliest(items: Iterable[Evidence]) -> Evidence | None:
    return min(items, key=lambda item: (item.time, item.type, item.id), default=None)


# ------------------------------------------------------------------------------------------- the rule set
class RuleSet:
    """A validated lifecycle configuration, compiled into matchers once."""

    def __init__(self, config: LifecycleConfig) -> None:
        self.config = config
        self.version = config.version
        self.order = config.stage_order()
        self.matchers = {name: MATCHERS[signal.kind](signal) for name, signal in config.signals.items()}
        self._signals = [(name, self.matchers[name], signal.window) for name, signal in config.signals.items()]

    def occurrences(self, facts: CustomerFacts, as_of: datetime) -> tuple[dict[str, list[Evidence]], datetime | None]:
        purchase = self.config.purchase_signal
        purchases = self.matchers[purchase](facts, as_of)
        first_purchase = _earliest(purchases).time if purchases else None  # type: ignore[union-attr]
        found = {}
        for name, matcher, window in self._signals:  # the purchase signal's evidence is not looked for twice
            found[name] = _windowed(purchases if name == purchase else matcher(facts, as_of), window, first_purchase)
        return found, first_purchase

    def evaluate(self, facts: CustomerFacts, as_of: datetime) -> Journey:
        found, first_purchase = self.occurrences(facts, as_of)
        entries: dict[str, Entry] = {}
        for stage in self.config.stages:
            rule = stage.rule
            evidence = _earliest(item for name in rule.any
                                 for item in _windowed(found[name], rule.window, first_purchase))
            if evidence is None or (rule.requires and rule.requires not in entries):
                continue
            time = max(evidence.time, entries[rule.requires].time) if rule.requires else evidence.time
            entries[stage.key] = Entry(stage.key, self.order[stage.key], time, rule.id, evidence)
        history = build_history(entries)
        activity = sorted({item for name in self.config.segments.activity for item in found[name]},
                          key=lambda item: (item.time, item.id))
        contacts = [item for item in activity if item.type in {"interaction", "ticket"}]
        return Journey(
            customer_id=facts.customer_id,
            stage=history[-1].stage if history else None,
            entries=entries, history=history, first_purchase_at=first_purchase,
            last_activity_at=activity[-1].time if activity else None,
            last_return_at=last_return(activity, first_purchase, self.config.segments.returning_gap_days),
            last_interaction_at=contacts[-1].time if contacts else None,
            last_interaction_channel=contacts[-1].channel if contacts else None,
        )


def build_history(entries: dict[str, Entry]) -> list[Stay]:
    """The stays a customer went through: each time a higher stage's condition first held, that stage
    became current (a lower stage entered later never becomes current; at one instant the highest wins)."""
    stays: list[Stay] = []
    for entry in sorted(entries.values(), key=lambda item: (item.time, item.order)):
        if stays and entry.order <= stays[-1].order:
            continue
        if stays and stays[-1].entered_at == entry.time:
            stays.pop()
        if stays:
            last = stays[-1]
            stays[-1] = Stay(last.stage, last.order, last.entered_at, entry.time, last.rule_id, last.evidence)
        stays.append(Stay(entry.stage, entry.order, entry.time, None, entry.rule_id, entry.evidence))
    return stays


def last_return(activity: list[Evidence], first_purchase: datetime | None, gap_days: int) -> datetime | None:
    """The latest activity that came after a lapse longer than the gap, counting lapses after buying."""
    if first_purchase is None:
        return None
    gap = timedelta(days=gap_days)
    times = sorted({item.time for item in activity if item.time >= first_purchase})
    returns = [later for earlier, later in pairwise(times) if later - earlier > gap]
    return returns[-1] if returns else None


def segment(first_purchase: datetime | None, last_activity: datetime | None, last_return_at: datetime | None,
            as_of: datetime, config: LifecycleConfig) -> str:
    """prospect / new / returning / active / at_risk / churned, from three dates and the windows."""
    windows = config.segments
    if first_purchase is None or first_purchase > as_of:
        return "prospect"
    if as_of - first_purchase <= timedelta(days=windows.new_within_days):
        return "new"
    lapse = as_of - (last_activity or first_purchase)
    if lapse > timedelta(days=windows.at_risk_within_days):
        return "churned"
    if lapse > timedelta(days=windows.active_within_days):
        return "at_risk"
    if last_return_at is not None and as_of - last_return_at <= timedelta(days=windows.active_within_days):
        return "returning"
    return "active"
