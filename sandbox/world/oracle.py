"""The independent oracle: a person's lifecycle stage and segment from the plan, per journey.md.

It reads only domain facts of the plan (deals, tickets, interactions with kind/direction/outcome/time,
record creation times) and never a CRM record, so it is a check on the hub's mappings as much as on its
rules. Precise readings of journey.md used here (also in sandbox/world/README.md):

- won deal: its close time (Salesforce/Dataverse close dates are 00:00 UTC, already so in the plan);
  deal created: any outcome; ticket: its opened time.
- two-way interaction: marketing OPEN/CLICK, an inbound email, a form, an inbound call (any outcome), a
  completed outbound call, a held meeting that has ended by `as_of`, an inbound chat, a survey answer, a
  referral, a review. Sent/delivered/bounced emails, outbound emails, notes and tasks never count.
- advocate: a won deal and (a second won deal → its close; a survey score ≥ 9; a referral; a review rated
  ≥ 4); entered at max(first won close, earliest signal).
- engagement: a won deal and a two-way interaction or ticket at/after the first won close; entered at the
  first such.
- purchase: first won close. matching: earliest deal creation, held meeting or completed outbound call.
  education: earliest open/click, inbound email/call/chat, form, or ticket strictly before the first won
  close (any ticket without a purchase). discovery: earliest record creation.
- segments over activity = two-way interactions + tickets + won closes (all ≤ as_of): prospect (no won
  deal); new (first won close ≤ 90 days before as_of); churned (last activity > 365 days); at_risk
  (> 180 days); returning (two consecutive activities a < b, both ≥ first won close, b − a > 180 days and
  b ≤ 180 days before as_of); else active. "Within N days" is inclusive (≤), "older than" exclusive (>).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass

from sandbox.world.model import (
    CALL,
    CHAT,
    EMAIL,
    FORM,
    MARKETING,
    MEETING,
    REFERRAL,
    REVIEW,
    STAGES,
    SURVEY,
    Deal,
    Interaction,
    Record,
    Ticket,
)

DAY = 86_400


@dataclass(frozen=True)
class Rules:
    new_days: int = 90
    active_days: int = 180
    at_risk_days: int = 365
    advocate_min_score: int = 9        # of 10
    positive_min_rating: int = 4       # of 5
    #: journey.md's list of engagement interactions leaves out referral and review, while its notion of a
    #: two-way interaction includes them. The generator only emits worlds where both readings agree.
    referral_review_engage: bool = True


DEFAULT_RULES = Rules()


@dataclass(frozen=True)
class Verdict:
    stage: str
    stage_entered_at: int
    segment: str
    entered: dict[str, int]            # every stage whose condition holds → when it first held


def is_two_way(item: Interaction, as_of: int) -> bool:
    """A customer-initiated or two-way interaction (one that can move a stage)."""
    kind = item.kind
    if kind == MARKETING:
        return item.outcome in ("open", "click")
    if kind in (EMAIL, CHAT):
        return item.direction == "in"
    if kind == CALL:
        return item.direction == "in" or item.outcome == "completed"
    if kind == MEETING:
        return item.outcome == "held" and (item.end if item.end is not None else item.time) <= as_of
    return kind in (FORM, SURVEY, REFERRAL, REVIEW)


def is_education(item: Interaction) -> bool:
    """Engagement *from the person* (journey.md rule 5), apart from tickets."""
    kind = item.kind
    if kind == MARKETING:
        return item.outcome in ("open", "click")
    if kind in (EMAIL, CHAT, CALL):
        return item.direction == "in"
    return kind == FORM


def is_sales_conversation(item: Interaction, as_of: int) -> bool:
    """A held meeting or a completed outbound call (journey.md rule 4)."""
    if item.kind == MEETING:
        return is_two_way(item, as_of)
    return item.kind == CALL and item.direction == "out" and item.outcome == "completed"


def advocate_signal(item: Interaction, rules: Rules) -> bool:
    if item.kind == SURVEY:
        return item.score is not None and item.score >= rules.advocate_min_score
    if item.kind == REFERRAL:
        return True
    if item.kind == REVIEW:
        return item.rating is not None and item.rating >= rules.positive_min_rating
    return False


def evaluate(records: Iterable[Record], deals: Iterable[Deal], tickets: Iterable[Ticket],
             interactions: Iterable[Interaction], as_of: int, rules: Rules = DEFAULT_RULES) -> Verdict:
    """Stage, stage entry and segment as of `as_of` (epoch seconds)."""
    created = [r.created for r in records if r.created <= as_of]
    deals = [d for d in deals if d.created <= as_of]
    opened = sorted(t.opened for t in tickets if t.opened <= as_of)
    won = sorted(d.closed for d in deals
                 if d.outcome == "won" and d.closed is not None and d.closed <= as_of)
    first_won = won[0] if won else None

    # one pass over the interactions: which ones are two-way, education, sales conversations, signals
    two_way_items: list[Interaction] = []
    education: list[int] = []
    matching = [d.created for d in deals]
    signals = won[1:2]
    for item in interactions:
        if item.time > as_of or (item.kind == MARKETING and item.outcome not in ("open", "click")):
            continue
        if is_two_way(item, as_of):
            two_way_items.append(item)
            if advocate_signal(item, rules):
                signals.append(item.time)
        if is_education(item):
            education.append(item.time)
        if is_sales_conversation(item, as_of):
            matching.append(item.time)
    two_way = sorted(i.time for i in two_way_items)

    entered: dict[str, int] = {}
    if created:
        entered["discovery"] = min(created)

    education += [t for t in opened if first_won is None or t < first_won]
    if education:
        entered["education"] = min(education)

    if matching:
        entered["matching"] = min(matching)

    if first_won is not None:
        entered["purchase"] = first_won
        engage = [i.time for i in two_way_items if i.time >= first_won
                  and (rules.referral_review_engage or i.kind not in (REFERRAL, REVIEW))]
        engage += [t for t in opened if t >= first_won]
        if engage:
            entered["engagement"] = min(engage)
        if signals:
            entered["advocate"] = max(first_won, min(signals))

    if not entered:
        raise ValueError("a person needs at least one record created by as_of")
    stage = max(entered, key=STAGES.index)

    if first_won is None:
        segment = "prospect"
    elif as_of - first_won <= rules.new_days * DAY:
        segment = "new"
    else:
        activity = sorted([*two_way, *opened, *won])
        idle = as_of - activity[-1]
        if idle > rules.at_risk_days * DAY:
            segment = "churned"
        elif idle > rules.active_days * DAY:
            segment = "at_risk"
        else:
            after = [t for t in activity if t >= first_won]
            returning = any(b - a > rules.active_days * DAY and as_of - b <= rules.active_days * DAY
                            for a, b in itertools.pairwise(after))
            segment = "returning" if returning else "active"
    return Verdict(stage, entered[stage], segment, entered)


def evaluate_person(person, as_of: int, rules: Rules = DEFAULT_RULES) -> Verdict:
    """`evaluate` over a plan `Person` (or anything with records/deals/tickets/interactions)."""
    return evaluate(person.records, person.deals, person.tickets, person.interactions, as_of, rules)


def is_robust(person, as_of: int, base: Verdict | None = None) -> bool:
    """True when reasonable alternative readings of the rules give the same verdict.

    Checked: referral/review counted or not as engagement; evaluating up to two days later; every window
    two days shorter or longer. The generator regenerates people for whom this fails, so the ground truth
    never hinges on an interpretation or on the exact instant the hub evaluates.
    """
    base = base or evaluate_person(person, as_of)
    variants = [
        (as_of, Rules(referral_review_engage=False)),
        (as_of + 2 * DAY, DEFAULT_RULES),
        (as_of, Rules(new_days=88, active_days=178, at_risk_days=363)),
        (as_of, Rules(new_days=92, active_days=182, at_risk_days=367)),
    ]
    for moment, rules in variants:
        other = evaluate_person(person, moment, rules)
        if (other.stage, other.stage_entered_at, other.segment) != (base.stage, base.stage_entered_at,
                                                                     base.segment):
            return False
    return True
