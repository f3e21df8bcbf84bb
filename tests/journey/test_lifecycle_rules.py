"""The default lifecycle rules of journey.md, case by case (facts in, stage / entered-at / segment out)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from journeyhub.config import load_config_file, mappings_root
from journeyhub.journey.lifecycle import (
    CustomerFacts,
    DealFact,
    InteractionFact,
    PersonFact,
    RuleSet,
    TicketFact,
    segment,
)

AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
RULES = RuleSet(load_config_file(mappings_root(), "lifecycle.yaml"))


def day(n: int, hour: int = 12) -> datetime:
    """n days after 2025-01-01 (so day(0) is long before AS_OF)."""
    return datetime(2025, 1, 1, hour, tzinfo=UTC) + timedelta(days=n)


def facts(*items: object, created: datetime = day(0, 9)) -> CustomerFacts:
    return CustomerFacts("cus_1", persons=[PersonFact("p1", created)],
                         interactions=[item for item in items if isinstance(item, InteractionFact)],
                         deals=[item for item in items if isinstance(item, DealFact)],
                         tickets=[item for item in items if isinstance(item, TicketFact)])


def i(n: int, kind: str, channel: str = "email", direction: str | None = None, outcome: str | None = None,
      score: float | None = None, score_max: float | None = None, *, at: datetime | None = None) -> InteractionFact:
    return InteractionFact(f"i{n}", kind, channel, direction, outcome, at or day(n), score, score_max)


def won(n: int, closed: datetime, opened: datetime | None = None) -> DealFact:
    return DealFact(f"d{n}", "won", opened or closed - timedelta(days=20), closed)


CASES = [
    # (description, facts, expected stage, expected entered_at)
    ("a known person who never engaged", facts(), "discovery", day(0, 9)),
    ("emails sent, delivered and bounced are not engagement",
     facts(i(5, "marketing_email", outcome="sent"), i(6, "marketing_email", outcome="delivered"),
           i(7, "marketing_email", outcome="bounced"), i(8, "email", direction="outbound")), "discovery", day(0, 9)),
    ("an opened email is education", facts(i(5, "marketing_email", outcome="opened")), "education", day(5)),
    ("a clicked email is education", facts(i(9, "marketing_email", outcome="clicked")), "education", day(9)),
    ("an inbound email is education", facts(i(4, "email", direction="inbound")), "education", day(4)),
    ("a submitted form is education", facts(i(3, "form_submission", "web", "inbound")), "education", day(3)),
    ("an unanswered inbound call is education", facts(i(3, "call", "phone", "inbound", "no_answer")),
     "education", day(3)),
    ("an unanswered outbound call is nothing", facts(i(3, "call", "phone", "outbound", "no_answer")),
     "discovery", day(0, 9)),
    ("an internal note or to-do is nothing", facts(i(3, "note", "other"), i(4, "task", "other")),
     "discovery", day(0, 9)),
    ("a ticket before any purchase is education", facts(TicketFact("t1", day(6), "support")), "education", day(6)),
    ("a completed outbound call by a rep is matching", facts(i(8, "call", "phone", "outbound", "completed")),
     "matching", day(8)),
    ("a meeting that took place is matching", facts(i(8, "meeting", "meeting", None, "completed")),
     "matching", day(8)),
    ("a cancelled meeting is nothing", facts(i(8, "meeting", "meeting", None, "cancelled")), "discovery", day(0, 9)),
    ("a no-show is nothing", facts(i(8, "meeting", "meeting", None, "no_show")), "discovery", day(0, 9)),
    ("a meeting still in the future is nothing",
     facts(i(8, "meeting", "meeting", None, "scheduled", at=AS_OF + timedelta(days=3))), "discovery", day(0, 9)),
    ("an open deal is matching from its creation", facts(DealFact("d1", "open", day(10), None)), "matching", day(10)),
    ("a lost deal is matching: they did not buy", facts(DealFact("d1", "lost", day(10), day(30))), "matching", day(10)),
    ("a won deal is a purchase at its close", facts(won(1, day(40, 0))), "purchase", day(40, 0)),
    ("a ticket after the purchase is engagement", facts(won(1, day(40, 0)), TicketFact("t1", day(50), "support")),
     "engagement", day(50)),
    ("a ticket before the purchase stays education history",
     facts(won(1, day(40, 0)), TicketFact("t1", day(30), "support")), "purchase", day(40, 0)),
    ("an email sent after the purchase is not engagement",
     facts(won(1, day(40, 0)), i(60, "marketing_email", outcome="sent")), "purchase", day(40, 0)),
    ("an email opened after the purchase is engagement",
     facts(won(1, day(40, 0)), i(60, "marketing_email", outcome="opened")), "engagement", day(60)),
    ("a survey answer after the purchase is engagement",
     facts(won(1, day(40, 0)), i(61, "survey_response", "web", "inbound", None, 7, 10)), "engagement", day(61)),
    ("two won deals make an advocate at the second close",
     facts(won(1, day(40, 0)), won(2, day(300, 0))), "advocate", day(300, 0)),
    ("a promoter score of 9/10 makes an advocate",
     facts(won(1, day(40, 0)), i(70, "survey_response", "web", "inbound", None, 9, 10)), "advocate", day(70)),
    ("5 of 5 is a promoter too", facts(won(1, day(40, 0)), i(70, "survey_response", "web", "inbound", None, 5, 5)),
     "advocate", day(70)),
    ("8/10 is a survey answer, not a promoter",
     facts(won(1, day(40, 0)), i(70, "survey_response", "web", "inbound", None, 8, 10)), "engagement", day(70)),
    ("a referral before the purchase counts from the purchase",
     facts(won(1, day(40, 0)), i(20, "referral", "other", "inbound")), "advocate", day(40, 0)),
    ("a positive review (4/5) makes an advocate",
     facts(won(1, day(40, 0)), i(80, "review", "web", "inbound", None, 4, 5)), "advocate", day(80)),
    ("a poor review (2/5) does not", facts(won(1, day(40, 0)), i(80, "review", "web", "inbound", None, 2, 5)),
     "purchase", day(40, 0)),
    ("a promoter score without a purchase is not an advocate",
     facts(i(70, "survey_response", "web", "inbound", None, 10, 10)), "discovery", day(0, 9)),
    ("a deal won after the evaluation time is still only open then", facts(won(1, AS_OF + timedelta(days=1))),
     "matching", AS_OF - timedelta(days=19)),
]


@pytest.mark.parametrize(("facts_", "stage", "entered"), [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_stage_rules(facts_: CustomerFacts, stage: str, entered: datetime) -> None:
    journey = RULES.evaluate(facts_, AS_OF)
    assert (journey.stage, journey.entries[stage].time) == (stage, entered)


def test_history_records_each_stay_with_its_rule_and_evidence() -> None:
    journey = RULES.evaluate(facts(
        i(5, "marketing_email", outcome="opened"), DealFact("d1", "won", day(20), day(40, 0)),
        i(10, "call", "phone", "outbound", "completed"), TicketFact("t1", day(50), "support"),
        i(70, "survey_response", "web", "inbound", None, 10, 10)), AS_OF)
    assert [(s.stage, s.entered_at, s.exited_at, s.rule_id, s.evidence.id) for s in journey.history] == [
        ("discovery", day(0, 9), day(5), "discovery.known", "p1"),
        ("education", day(5), day(10), "education.engaged", "i5"),
        ("matching", day(10), day(40, 0), "matching.sales_conversation", "i10"),
        ("purchase", day(40, 0), day(50), "purchase.won_deal", "d1"),
        ("engagement", day(50), day(70), "engagement.after_purchase", "t1"),
        ("advocate", day(70), None, "advocate.loyal", "i70"),
    ]


def test_a_lower_stage_entered_later_never_becomes_current_and_ties_go_to_the_higher_stage() -> None:
    journey = RULES.evaluate(facts(DealFact("d1", "won", day(0, 9), day(0, 9)),
                                   i(30, "marketing_email", outcome="opened")), AS_OF)
    assert [s.stage for s in journey.history] == ["purchase", "engagement"]


def test_deleted_records_keep_counting_because_they_stay_in_the_facts() -> None:
    # tombstoned deals are still loaded as facts (the loader never erases rows); the rules see them
    assert RULES.evaluate(facts(won(1, day(40, 0))), AS_OF).stage == "purchase"


SEGMENT = RULES.config


@pytest.mark.parametrize(("first_purchase", "last_activity", "last_return", "expected"), [
    (None, AS_OF - timedelta(days=5), None, "prospect"),
    (AS_OF - timedelta(days=90), AS_OF - timedelta(days=90), None, "new"),
    (AS_OF - timedelta(days=91), AS_OF - timedelta(days=91), None, "active"),
    (AS_OF - timedelta(days=400), AS_OF - timedelta(days=180), None, "active"),
    (AS_OF - timedelta(days=400), AS_OF - timedelta(days=181), None, "at_risk"),
    (AS_OF - timedelta(days=800), AS_OF - timedelta(days=365), None, "at_risk"),
    (AS_OF - timedelta(days=800), AS_OF - timedelta(days=366), None, "churned"),
    (AS_OF - timedelta(days=800), AS_OF - timedelta(days=10), AS_OF - timedelta(days=100), "returning"),
    (AS_OF - timedelta(days=800), AS_OF - timedelta(days=10), AS_OF - timedelta(days=181), "active"),
    (AS_OF - timedelta(days=800), AS_OF - timedelta(days=200), AS_OF - timedelta(days=200), "at_risk"),
])
def test_segments_and_their_window_boundaries(first_purchase: datetime | None, last_activity: datetime,
                                               last_return: datetime | None, expected: str) -> None:
    assert segment(first_purchase, last_activity, last_return, AS_OF, SEGMENT) == expected


def test_a_return_is_activity_after_a_lapse_longer_than_the_gap_after_buying() -> None:
    journey = RULES.evaluate(facts(won(1, day(10, 0)), TicketFact("t1", day(20), "support"),
                                   TicketFact("t2", day(300), "support"), TicketFact("t3", day(310), "support")), AS_OF)
    assert journey.last_return_at == day(300) and journey.last_activity_at == day(310)
    assert journey.last_interaction_at == day(310) and journey.last_interaction_channel == "support"
