"""Per-person journey plans: who each person is, where they live in the CRMs and what happened to them.

Every person gets an archetype — an intended (stage, segment), either one of the named boundary scenarios
(`SCRIPTS`) or a random draw from realistic proportions — and a story is drawn for it: first the events
(domain terms, each tagged with the CRM it happens in), then the person records those events need
(leads, conversions, duplicates, merges), then identity details (email/phone variants, cross-system ids).

A drawn story is kept only when
- every decisive event of the person is at least a minute away from every other one (no ties, and a
  meeting's whole [start, end] is clear), all times lie within the two years before the anchor;
- the oracle's verdict equals the archetype's intent; and
- the verdict is robust: the same under the alternative readings checked by `oracle.is_robust` (a hub
  evaluating two days late, windows two days off, referral/review not counted as engagement).
Otherwise it is drawn again from the person's own random stream, so generation stays deterministic.
"""

from __future__ import annotations

import bisect
import contextlib
import itertools
import random
from dataclasses import dataclass, field

from sandbox.world import people as P
from sandbox.world import texts as T
from sandbox.world.ids import DAY, HOUR, midnight
from sandbox.world.model import (
    CALL,
    DYNAMICS,
    EMAIL,
    FORM,
    HUBSPOT,
    MARKETING,
    MEETING,
    NOTE,
    REFERRAL,
    REVIEW,
    SALESFORCE,
    SURVEY,
    TASK,
    BadRecord,
    Campaign,
    Company,
    Deal,
    Interaction,
    Owner,
    Person,
    Record,
    Ticket,
)
from sandbox.world.oracle import evaluate_person, is_robust

GAP = 60                   # seconds between any two decisive events of one person
EARLIEST = 728             # days: no person's first record before anchor - 728 days
WELCOME_CAMPAIGN = 4999    # the automated welcome email every new subscriber gets
MAX_ATTEMPTS = 80


class Retry(Exception):
    """This draw of a story broke an invariant; draw again."""


# ------------------------------------------------------------------------------------------- archetypes
@dataclass(frozen=True)
class Archetype:
    stage: str
    segment: str
    script: str | None = None


#: named boundary scenarios. Keys: stage, segment, profile overrides, `events` (prospects: exactly these),
#: `pre` (customers: before the first purchase), `kinds` (customers: after it), `signal`, `after`
#: (non-moving events after the purchase), `noise` (random internal activity), `sends` (min campaign sends)
SCRIPTS: dict[str, dict] = {
    # discovery: nothing from the person, only our own activity
    "sent_only": {"stage": "discovery", "profile": {"marketing": True}, "events": [], "noise": False,
                  "sends": 2, "only": HUBSPOT},
    "bounced_only": {"stage": "discovery", "profile": {"marketing": True, "bouncy": True}, "events": [],
                     "noise": False, "sends": 1, "only": HUBSPOT},
    "cancelled_meeting_only": {"stage": "discovery", "profile": {"sales": DYNAMICS, "marketing": False},
                               "events": ["cancelled_meeting"], "noise": False},
    "no_show_only": {"stage": "discovery", "profile": {"sales": HUBSPOT, "marketing": False},
                     "events": ["no_show"], "noise": False},
    "no_answer_call_only": {"stage": "discovery", "profile": {"sales": SALESFORCE, "marketing": False},
                            "events": ["outbound_no_answer", "outbound_busy"], "noise": False},
    "internal_only": {"stage": "discovery", "profile": {"marketing": False},
                      "events": ["note", "task", "outbound_email"], "noise": False},
    # education
    "inbound_missed_call": {"stage": "education", "profile": {"marketing": False},
                            "events": ["inbound_missed_call"], "noise": False},
    "ticket_no_purchase": {"stage": "education", "profile": {"marketing": False}, "events": ["ticket"],
                           "noise": False},
    "form_only": {"stage": "education", "profile": {"marketing": True}, "events": ["form"], "noise": False},
    "open_only": {"stage": "education", "profile": {"marketing": True}, "events": ["open"], "noise": False},
    "inbound_email_only": {"stage": "education", "profile": {"marketing": False},
                           "events": ["inbound_email"], "noise": False},
    # matching
    "lost_deal_only": {"stage": "matching", "profile": {"marketing": False}, "events": ["deal_lost"],
                       "noise": False},
    "open_deal_only": {"stage": "matching", "profile": {"marketing": False}, "events": ["deal_open"],
                       "noise": False},
    "held_meeting_only": {"stage": "matching", "profile": {"marketing": False}, "events": ["held_meeting"],
                          "noise": False},
    "outbound_completed_only": {"stage": "matching", "profile": {"marketing": False},
                                "events": ["outbound_completed"], "noise": False},
    # purchase
    "new_customer": {"stage": "purchase", "segment": "new"},
    "ticket_before_purchase": {"stage": "purchase", "segment": "at_risk", "pre": ["ticket"]},
    "date_only_close_salesforce": {"stage": "purchase", "segment": "new", "profile": {"sales": SALESFORCE}},
    "date_only_close_dynamics": {"stage": "purchase", "segment": "active", "profile": {"sales": DYNAMICS}},
    "no_answer_after_purchase": {"stage": "purchase", "segment": "active", "after": ["outbound_no_answer"]},
    "cancelled_meeting_after_purchase": {"stage": "purchase", "segment": "at_risk",
                                         "profile": {"sales": HUBSPOT}, "after": ["cancelled_meeting"]},
    "mailed_after_churn": {"stage": "purchase", "segment": "churned", "profile": {"marketing": True},
                           "after": ["outbound_email"], "sends": 6},
    # engagement
    "ticket_after_purchase": {"stage": "engagement", "segment": "active", "kinds": ["ticket"]},
    "same_day_after_close": {"stage": "engagement", "segment": "new", "profile": {"sales": SALESFORCE},
                             "kinds": ["inbound_call"], "same_day": True},
    "nps_8": {"stage": "engagement", "segment": "active", "kinds": ["survey_8"]},
    "inbound_missed_after_purchase": {"stage": "engagement", "segment": "new",
                                      "kinds": ["inbound_missed_call"]},
    "review_3_after_ticket": {"stage": "engagement", "segment": "active", "profile": {"service": SALESFORCE},
                              "kinds": ["ticket", "review_3"]},
    "returning_engaged": {"stage": "engagement", "segment": "returning"},
    # advocate
    "two_wins": {"stage": "advocate", "segment": "active", "signal": "second_win"},
    "nps_9": {"stage": "advocate", "segment": "active", "signal": "survey_9"},
    "nps_10_hubspot": {"stage": "advocate", "segment": "active",
                       "profile": {"service": HUBSPOT, "marketing": True}, "signal": "survey_10"},
    "referral": {"stage": "advocate", "segment": "active", "profile": {"service": DYNAMICS},
                 "signal": "referral"},
    "review_5": {"stage": "advocate", "segment": "at_risk", "profile": {"service": SALESFORCE},
                 "signal": "review_5"},
    "review_4": {"stage": "advocate", "segment": "active", "profile": {"service": SALESFORCE},
                 "signal": "review_4"},
    "returning_repeat_purchase": {"stage": "advocate", "segment": "returning", "signal": "second_win",
                                  "signal_at_return": True},
    "signal_before_purchase": {"stage": "advocate", "segment": "active", "pre": ["survey_9"],
                               "kinds": ["ticket"]},
    "churned_advocate": {"stage": "advocate", "segment": "churned", "signal": "second_win"},
    # hard but valid records
    "long_note_hubspot": {"stage": "engagement", "segment": "active", "profile": {"marketing": True},
                          "long_note": HUBSPOT},
    "long_note_dynamics": {"stage": "purchase", "segment": "active", "profile": {"service": DYNAMICS},
                           "long_note": DYNAMICS},
}

#: random people: (stage, weight) and, for customers, (segment, weight)
STAGE_WEIGHTS = [("discovery", 26), ("education", 23), ("matching", 15), ("purchase", 8), ("engagement", 16),
                 ("advocate", 12)]
SEGMENT_WEIGHTS = [("new", 15), ("active", 35), ("at_risk", 17), ("churned", 18), ("returning", 15)]
PURCHASE_SEGMENT_WEIGHTS = [("new", 20), ("active", 35), ("at_risk", 22), ("churned", 23)]


def archetypes(people: int, rng: random.Random) -> list[Archetype]:
    """The intended (stage, segment) of every person: the scripted scenarios (several of each), then
    random draws, shuffled."""
    copies = max(1, people // 500)
    chosen: list[Archetype] = []
    for name, spec in SCRIPTS.items():
        stage = spec["stage"]
        segment = spec.get("segment", "prospect")
        chosen += [Archetype(stage, segment, name)] * copies
    chosen = chosen[:people]
    while len(chosen) < people:
        stage = P.weighted(rng, STAGE_WEIGHTS)
        if stage in ("discovery", "education", "matching"):
            segment = "prospect"
        elif stage == "purchase":
            segment = P.weighted(rng, PURCHASE_SEGMENT_WEIGHTS)
        else:
            segment = P.weighted(rng, SEGMENT_WEIGHTS)
        chosen.append(Archetype(stage, segment))
    rng.shuffle(chosen)
    return chosen


# ---------------------------------------------------------------------------------------------- context
@dataclass
class Profile:
    sales: str            # where deals, sales calls and meetings are recorded
    service: str          # where tickets, service calls, surveys are recorded
    marketing: bool       # a HubSpot contact with an email that gets campaigns
    bouncy: bool = False  # every campaign email to them bounces


@dataclass
class WorldContext:
    anchor: int
    rng: random.Random
    registry: P.Registry
    companies: list[Company]
    owners: dict[str, list[Owner]]
    campaigns: list[Campaign]
    campaign_times: list[int] = field(default_factory=list)
    retries: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.campaign_times = [c.sent for c in self.campaigns]

    def campaign_before(self, moment: int) -> Campaign | None:
        index = bisect.bisect_right(self.campaign_times, moment) - 1
        return self.campaigns[index] if index >= 0 else None

    def campaigns_between(self, lo: int, hi: int) -> list[Campaign]:
        return self.campaigns[bisect.bisect_left(self.campaign_times, lo):bisect.bisect_right(self.campaign_times,
                                                                                               hi)]


def make_campaigns(anchor: int) -> list[Campaign]:
    """A weekly campaign (Tuesday-ish, 07:00 UTC) over the two years before the anchor."""
    first = midnight(anchor - 729 * DAY) + 7 * HOUR
    campaigns = []
    index = 0
    while first + index * 7 * DAY < anchor - HOUR:
        sent = first + index * 7 * DAY
        name = T.CAMPAIGN_NAMES[index % len(T.CAMPAIGN_NAMES)]
        campaigns.append(Campaign(5000 + index, name, sent))
        index += 1
    return campaigns


class Timeline:
    """Occupied [start, end] spans of one person's decisive events, kept at least GAP apart."""

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def free(self, start: int, end: int) -> bool:
        index = bisect.bisect_left(self.starts, start)
        if index > 0 and self.ends[index - 1] + GAP > start:
            return False
        return not (index < len(self.starts) and end + GAP > self.starts[index])

    def add(self, start: int, end: int) -> None:
        index = bisect.bisect_left(self.starts, start)
        self.starts.insert(index, start)
        self.ends.insert(index, end)


# ------------------------------------------------------------------------------------------------ story
class Story:
    """One attempt at a person's story."""

    def __init__(self, ctx: WorldContext, person: Person, rng: random.Random, profile: Profile,
                 arch: Archetype) -> None:
        self.ctx, self.p, self.rng, self.pr, self.arch = ctx, person, rng, profile, arch
        self.spec = SCRIPTS.get(arch.script or "", {})
        self.A = ctx.anchor
        self.hi = ctx.anchor - HOUR
        self.lo = ctx.anchor - EARLIEST * DAY
        self.tl = Timeline()
        self.t0 = self.lo
        self.forms = 0
        self.hs_surveys = 0
        self.sends: dict[int, int] = {}
        self.extra_presence: set[str] = set()
        self.w1: int | None = None
        person.records, person.deals, person.tickets, person.interactions = [], [], [], []
        person.cases = [arch.script] if arch.script else []

    # ------------------------------------------------------------------ time picking
    def pick(self, lo: int, hi: int, dur: int = 0, *, human: bool = True, at_midnight: bool = False) -> int:
        lo, hi = max(lo, self.t0 + HOUR), min(hi, self.hi - dur)
        if hi < lo:
            raise Retry("empty range")
        rng = self.rng
        for attempt in range(40):
            t = rng.randint(lo, hi)
            if at_midnight:
                t = midnight(t)
                if t < lo:
                    t += DAY
            elif human and attempt < 25:
                t = midnight(t) + rng.randint(5 * HOUR, 18 * HOUR)
            if lo <= t <= hi and self.tl.free(t, t + dur):
                self.tl.add(t, t + dur)
                return t
        raise Retry("no free time")

    def claim(self, t: int, dur: int = 0) -> int:
        """`t` itself or the first free moment shortly after it."""
        for step in range(30):
            candidate = t + step * 150
            if candidate + dur > self.hi:
                break
            if candidate >= self.t0 + HOUR and self.tl.free(candidate, candidate + dur):
                self.tl.add(candidate, candidate + dur)
                return candidate
        raise Retry("slot taken")

    # ------------------------------------------------------------------ event builders
    def owner(self, system: str) -> Owner:
        return self.rng.choice(self.ctx.owners[system])

    def add(self, kind: str, system: str, t: int, **kw) -> Interaction:
        item = Interaction(kind, t, system, owner=self.owner(system), **kw)
        self.p.interactions.append(item)
        return item

    def call(self, t: int, system: str, direction: str, outcome: str) -> Interaction:
        return self.add(CALL, system, t, direction=direction, outcome=outcome, channel="phone",
                        subject=self.rng.choice(T.CALL_TITLES),
                        body="" if outcome != "completed" else self.rng.choice(T.NOTE_TEXTS))

    def meeting(self, t: int, system: str, outcome: str, dur: int) -> Interaction:
        return self.add(MEETING, system, t, outcome=outcome, end=t + dur, channel="meeting",
                        subject=self.rng.choice(T.MEETING_TITLES))

    def email(self, t: int, system: str, direction: str, ticket: Ticket | None = None) -> Interaction:
        subject = ticket.subject if ticket else self.rng.choice(T.EMAIL_SUBJECTS)
        if ticket and direction == "out":
            subject = "Re: " + subject
        return self.add(EMAIL, system, t, direction=direction, outcome="sent" if direction == "out" else "received",
                        channel="email", subject=subject, body=self.rng.choice(T.NOTE_TEXTS), ticket=ticket)

    def note(self, t: int, system: str, body: str | None = None) -> Interaction:
        text = body if body is not None else self.rng.choice(T.NOTE_TEXTS)
        return self.add(NOTE, system, t, channel="other", subject=text[:40], body=text)

    def task(self, t: int, system: str) -> Interaction:
        return self.add(TASK, system, t, channel="other", subject=self.rng.choice(T.TASK_SUBJECTS),
                        outcome="completed" if self.rng.random() < 0.6 else "open")

    def form(self, t: int) -> Interaction:
        self.forms += 1
        return self.add(FORM, HUBSPOT, t, channel="web", subject=self.rng.choice(T.FORM_NAMES))

    def survey(self, t: int, system: str, score: int) -> Interaction:
        if system == HUBSPOT:
            self.hs_surveys += 1
        return self.add(SURVEY, system, t, score=score, channel="email", subject=T.SURVEY_SUBJECT)

    def ticket(self, t: int, system: str, channel: str | None = None) -> Ticket:
        rng = self.rng
        channels = {HUBSPOT: ["email", "phone", "web", "chat"], SALESFORCE: ["email", "phone", "web", "chat"],
                    DYNAMICS: ["email", "phone", "web", "social"]}[system]
        channel = channel if channel in channels else rng.choice(channels)
        email_to_case = system == SALESFORCE and channel == "email"
        if email_to_case and not self.tl.free(t - 90, t - 90):
            channel = "web"
            email_to_case = False
        ticket = Ticket(t, system, channel, rng.choice(T.TICKET_SUBJECTS), rng.choice(T.NOTE_TEXTS),
                        rng.choice(["low", "medium", "medium", "high", "urgent"]), owner=self.owner(system))
        closes = t + rng.randint(HOUR, 10 * DAY)
        if closes < self.hi - HOUR and rng.random() < 0.85:
            ticket.closed = closes
        self.p.tickets.append(ticket)
        if email_to_case:        # Email-to-Case: the customer's message, received just before the case
            self.tl.add(t - 90, t - 90)
            self.email(t - 90, SALESFORCE, "in", ticket=ticket)
        if rng.random() < 0.5:                              # our reply (never moves a stage)
            with contextlib.suppress(Retry):
                self.email(self.pick(t + 10 * 60, t + 2 * DAY), system, "out", ticket=ticket)
        return ticket

    def deal(self, system: str, created: int, outcome: str, closed: int | None = None) -> Deal:
        rng = self.rng
        company = self.p.company
        product = rng.choice(T.DEAL_PRODUCTS)
        name = f"{company.name if company else self.p.first_name + ' ' + self.p.last_name} — {product}"
        amount = float(rng.choice([490, 1200, 2500, 4800, 9900, 15000, 32000, 75000]))
        currency = "ILS" if rng.random() < 0.7 else "USD"
        deal = Deal(created, outcome, closed, system, amount, currency, name, owner=self.owner(system))
        if outcome == "open":
            expected = min(created + rng.randint(14, 120) * DAY, self.A - 1)   # stale pipeline, never future
            deal.expected_close = max(midnight(created), midnight(expected))
        self.p.deals.append(deal)
        return deal

    def marketing_open(self, t: int, click: bool) -> None:
        """An OPEN (and maybe a CLICK) of the latest campaign sent at least two hours before `t`."""
        campaign = self.ctx.campaign_before(t - 2 * HOUR)
        if campaign is None or campaign.sent < self.t0 + 600:
            cid, sent = WELCOME_CAMPAIGN, self.t0 + 20 * 60
        else:
            cid = campaign.campaign_id
            sent = self.sends.get(cid, campaign.sent + self.rng.randint(0, 1800))
        self.send(cid, sent, bounce=False)
        self.add(MARKETING, HUBSPOT, t, outcome="open", campaign=cid, channel="email")
        if click:
            self.add(MARKETING, HUBSPOT, self.claim(t + self.rng.randint(30, 600)), outcome="click", campaign=cid,
                     channel="email")

    def send(self, cid: int, sent: int, bounce: bool) -> None:
        if cid in self.sends:
            return
        self.sends[cid] = sent
        self.p.interactions += [
            Interaction(MARKETING, sent, HUBSPOT, outcome="sent", campaign=cid, channel="email"),
            Interaction(MARKETING, sent + self.rng.randint(2, 90), HUBSPOT, outcome="bounce" if bounce else "delivered",
                        campaign=cid, channel="email")]

    # ------------------------------------------------------------------ systems for a kind
    def either(self, *systems: str) -> str:
        return self.rng.choice(systems)

    def survey_system(self) -> str | None:
        for system in (self.pr.service, self.pr.sales):
            if system != HUBSPOT or self.hs_surveys == 0:
                return system
        return None

    def referral_system(self) -> str | None:
        options = [s for s in (self.pr.service, self.pr.sales) if s in (SALESFORCE, DYNAMICS)]
        return options[0] if options else None

    def review_system(self) -> str | None:
        return SALESFORCE if SALESFORCE in (self.pr.service, self.pr.sales) else None

    # ------------------------------------------------------------------ one event of a kind
    def event(self, kind: str, lo: int, hi: int) -> None:
        """One event of `kind` at a random time in [lo, hi]."""
        self.at(kind, None, lo, hi)

    def at(self, kind: str, slot: int | None, lo: int = 0, hi: int = 0) -> None:
        """One event of `kind`: at `slot` (or just after) when given, else at a random time in [lo, hi]."""
        rng, pr = self.rng, self.pr

        def when(dur: int = 0, human: bool = True) -> int:
            return self.claim(slot, dur) if slot is not None else self.pick(lo, hi, dur, human=human)

        if kind in ("open", "click"):
            self.marketing_open(when(human=False), click=kind == "click")
        elif kind == "form":
            self.form(when(human=False))
        elif kind in ("inbound_call", "inbound_missed_call"):
            outcome = "no_answer" if kind == "inbound_missed_call" else (
                "completed" if rng.random() < 0.8 else "no_answer")
            system = self.either(pr.service, pr.sales)
            if outcome == "no_answer" and system == DYNAMICS:
                # Dataverse has no "missed" phone call (only made/received/canceled): missed calls are
                # recorded where the CRM can say so
                other = [s for s in (pr.service, pr.sales) if s != DYNAMICS]
                if kind == "inbound_call":
                    outcome = "completed"
                else:
                    system = other[0] if other else HUBSPOT
            self.call(when(), system, "in", outcome)
        elif kind == "outbound_completed":
            self.call(when(), pr.sales if slot is None else self.either(pr.sales, pr.service), "out", "completed")
        elif kind in ("outbound_no_answer", "outbound_busy"):
            self.call(when(), pr.sales, "out", "busy" if kind == "outbound_busy" else "no_answer")
        elif kind == "inbound_email":
            self.email(when(), self.either(pr.service, pr.sales), "in")
        elif kind == "outbound_email":
            self.email(when(), pr.sales, "out")
        elif kind in ("ticket", "chat"):
            system = pr.service if kind == "ticket" or pr.service != DYNAMICS else HUBSPOT
            self.ticket(when(), system, "chat" if kind == "chat" else None)
        elif kind == "held_meeting":
            dur = rng.choice([30, 45, 60]) * 60
            self.meeting(when(dur), pr.sales, "held", dur)
        elif kind == "cancelled_meeting":
            system = pr.sales if pr.sales != SALESFORCE else self.either(HUBSPOT, DYNAMICS)
            self.meeting(when(1800), system, "cancelled", 1800)
        elif kind == "no_show":
            self.meeting(when(1800), HUBSPOT, "no_show", 1800)
        elif kind == "deal_open":
            self.deal(pr.sales, when(), "open")
        elif kind == "deal_lost":
            created = self.claim(slot) if slot is not None else self.pick(lo, hi - 6 * DAY)
            closes = self.pick(created + 5 * DAY, created + 90 * DAY, at_midnight=pr.sales != HUBSPOT)
            self.deal(pr.sales, created, "lost", closes)
        elif kind == "note":
            self.note(when(), self.either(*sorted(self.systems_in_use() or {pr.sales})))
        elif kind == "task":
            self.task(when(), self.either(*sorted(self.systems_in_use() or {pr.sales})))
        elif kind.startswith("survey_"):
            system = self.survey_system()
            if system is None:
                raise Retry("no survey system")
            self.survey(when(), system, int(kind.split("_")[1]))
        elif kind == "referral":
            system = self.referral_system()
            if system is None:
                raise Retry("no referral system")
            self.add(REFERRAL, system, when(), channel="other", subject=rng.choice(T.REFERRAL_SUBJECTS))
        elif kind.startswith("review_"):
            if self.review_system() is None:
                raise Retry("no review system")
            self.add(REVIEW, SALESFORCE, when(), rating=int(kind.split("_")[1]), channel="web",
                     subject=rng.choice(T.REVIEW_SUBJECTS))
        elif kind == "second_win":
            self.second_win(slot if slot is not None else rng.randint(max(lo, (self.w1 or lo) + 3 * DAY), hi))
        else:  # pragma: no cover - a typo in SCRIPTS
            raise ValueError(f"unknown event kind {kind!r}")

    def systems_in_use(self) -> set[str]:
        used = {i.system for i in self.p.interactions} | {d.system for d in self.p.deals}
        return used | {t.system for t in self.p.tickets}

    def second_win(self, t: int) -> None:
        at_midnight = self.pr.sales != HUBSPOT
        close = midnight(t) if at_midnight else t
        if self.w1 is None or close < self.w1 + 2 * DAY:
            raise Retry("second win too close to the first")
        if not self.tl.free(close, close):
            raise Retry("second win taken")
        self.tl.add(close, close)
        created = self.pick(max(self.w1 + DAY, close - 120 * DAY), close - DAY)
        self.deal(self.pr.sales, created, "won", close)

    # ------------------------------------------------------------------ choices
    def edu_kind(self) -> str:
        options = [("inbound_call", 15), ("inbound_email", 10), ("ticket", 10)]
        if self.pr.marketing:
            options += [("open", 35), ("click", 10)]
            if self.forms < 2:
                options.append(("form", 20))
        return P.weighted(self.rng, options)

    def match_kind(self, allow_open: bool = True) -> str:
        options = [("deal_lost", 20), ("held_meeting", 30), ("outbound_completed", 25)]
        if allow_open:
            options.append(("deal_open", 25))
        return P.weighted(self.rng, options)

    def engage_kind(self, first: bool) -> str:
        options = [("ticket", 25), ("inbound_call", 15), ("outbound_completed", 10), ("held_meeting", 10),
                   ("inbound_email", 10)]
        if self.pr.marketing:
            options += [("open", 15), ("click", 5)]
            if self.forms < 2:
                options.append(("form", 5))
        if self.pr.service in (HUBSPOT, SALESFORCE):
            options.append(("chat", 5))
        if self.survey_system() is not None:
            options.append((f"survey_{self.rng.randint(0, 8)}", 8))
        if not first and self.review_system() is not None:
            options.append((f"review_{self.rng.randint(1, 3)}", 3))
        return P.weighted(self.rng, options)

    def signal_kind(self) -> str:
        options = [("second_win", 35)]
        if self.survey_system() is not None:
            options.append((f"survey_{self.rng.choice([9, 10])}", 30))
        if self.referral_system() is not None:
            options.append(("referral", 20))
        if self.review_system() is not None:
            options.append((f"review_{self.rng.choice([4, 5])}", 15))
        return P.weighted(self.rng, options)

    # ------------------------------------------------------------------ journeys
    def prospect(self) -> None:
        rng, A, spec, stage = self.rng, self.A, self.spec, self.arch.stage
        latest = A - (30 if spec.get("sends") else 3) * DAY
        self.t0 = rng.randint(self.lo, latest)
        if "events" in spec:
            for kind in spec["events"]:
                self.event(kind, self.t0, self.hi)
            if spec.get("only"):
                self.extra_presence.add(spec["only"])
            return
        if stage == "discovery":
            present = [s for s, p in ((HUBSPOT, 0.3 if self.pr.marketing else 0.0), (SALESFORCE, 0.3),
                                      (DYNAMICS, 0.1)) if rng.random() < p]
            self.extra_presence.update(present)
            return
        edu = rng.choice([1, 1, 2, 2, 3, 4, 5]) if stage == "education" else rng.choice([0, 1, 1, 2, 3])
        for _ in range(edu):
            self.event(self.edu_kind(), self.t0, self.hi)
        if stage == "matching":
            for _ in range(rng.choice([1, 1, 1, 2, 3])):
                self.event(self.match_kind(), self.t0, self.hi)

    def customer(self) -> None:
        rng, A, spec = self.rng, self.A, self.spec
        stage, segment = self.arch.stage, self.arch.segment
        D = DAY
        at_midnight = self.pr.sales != HUBSPOT
        kinds: list[str] | None = spec.get("kinds")
        n_fixed = len(kinds) if kinds is not None else None

        def close_in(lo: int, hi: int) -> int:
            self.t0 = self.lo       # T0 is drawn once the first purchase is known
            return self.pick(lo, hi, at_midnight=at_midnight)

        last = back = None
        if segment == "new":
            w1 = close_in(A - 87 * D, A - 3 * D)
        elif segment == "active":
            recent = stage == "purchase" or n_fixed is not None
            w1 = close_in(A - 170 * D, A - 95 * D) if recent else close_in(A - 700 * D, A - 95 * D)
        elif segment in ("at_risk", "churned"):
            lo, hi = (A - 360 * D, A - 185 * D) if segment == "at_risk" else (A - 715 * D, A - 370 * D)
            if stage == "purchase":
                w1 = close_in(lo, hi)
            else:
                last = rng.randint(lo, hi)
                w1 = close_in(max(A - 720 * D, last - 400 * D), last - 10 * D)
        else:  # returning
            back = rng.randint(A - 176 * D, A - 2 * D)
            w1 = close_in(A - 715 * D, back - 190 * D)
        self.w1 = w1
        self.t0 = rng.randint(max(self.lo, w1 - 300 * D), w1 - 3 * D)
        created = self.pick(self.t0 + HOUR, w1 - D)
        self.deal(self.pr.sales, created, "won", w1)

        # before the first purchase: what led to it
        if "pre" in spec:
            for kind in spec["pre"]:
                self.event(kind, self.t0, w1 - HOUR)
        else:
            for _ in range(rng.choice([0, 1, 1, 2, 2, 3])):
                self.event(self.edu_kind(), self.t0, w1 - HOUR)
            for _ in range(rng.choice([0, 0, 1, 1, 2])):
                self.event(self.match_kind(allow_open=False), self.t0, w1 - HOUR)
            if rng.random() < 0.08:
                self.event("ticket", self.t0, w1 - HOUR)

        # after it: the slots at which the person engages, shaped by the segment
        slots: list[int] = []
        if stage != "purchase":
            count = n_fixed if n_fixed is not None else None
            if spec.get("same_day"):
                slots = [w1 + rng.randint(7 * HOUR, 12 * HOUR)]
            elif segment == "new":
                slots = sorted(rng.randint(w1 + 2 * HOUR, A - 2 * HOUR) for _ in range(count or rng.randint(1, 4)))
            elif segment == "active":
                if count is not None:
                    slots = sorted(rng.randint(w1 + 2 * HOUR, A - 2 * D) for _ in range(count))
                else:
                    t = w1 + rng.randint(3 * D, min(150 * D, A - 2 * D - w1))
                    while t <= A - 2 * D:
                        slots.append(t)
                        t += rng.randint(3 * D, 150 * D)
            elif segment in ("at_risk", "churned"):
                assert last is not None
                extra = count - 1 if count is not None else rng.randint(0, 3)
                slots = [*sorted(rng.randint(w1 + 2 * HOUR, last - HOUR) for _ in range(extra)), last]
            else:
                assert back is not None
                before = sorted(rng.randint(w1 + 2 * HOUR, back - 186 * D) for _ in range(rng.randint(0, 3)))
                after = sorted(rng.randint(back + HOUR, A - 2 * HOUR) for _ in range(rng.randint(0, 2)))
                slots = [*before, back, *after]
        if kinds is None:
            kinds_: list[str | None] = [None] * len(slots)
            if stage == "advocate":
                signal = spec.get("signal") or self.signal_kind()
                if spec.get("signal_at_return") or (back is not None and rng.random() < 0.5):
                    index = slots.index(back)
                else:
                    index = rng.randrange(len(slots))
                kinds_[index] = signal
            elif spec.get("signal"):
                raise ValueError("a signal needs an advocate")  # pragma: no cover
        else:
            kinds_ = list(kinds)
        for index, (slot, kind) in enumerate(zip(slots, kinds_, strict=True)):
            self.at(kind or self.engage_kind(first=index == 0), slot)
        for kind in spec.get("after", []):
            self.event(kind, w1 + 2 * HOUR, self.hi)
        if self.rng.random() < 0.1:        # a renewal/upsell opportunity opened later (not an activity)
            self.event(self.rng.choice(["deal_open", "deal_lost"]), w1 + DAY, self.hi)

    def noise(self) -> None:
        """Our own activity: never moves a stage, never counts as the person's activity."""
        rng = self.rng
        customer = self.arch.segment != "prospect"
        level = 2 if customer or self.arch.stage == "matching" else (1 if self.arch.stage == "education" else 0)
        lo = self.t0
        for _ in range(rng.choice([0, 0, 0, 1, 1, 2])):
            self.event("note", lo, self.hi)
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            self.event("task", lo, self.hi)
        for _ in range(rng.choice([0, 0, 1, 2, 3] if level == 2 else [0, 0, 0, 1])):
            self.event("outbound_email", lo, self.hi)
        for _ in range(rng.choice([0, 0, 0, 1, 2] if level == 2 else [0] * 9 + [1])):
            self.event("outbound_no_answer", lo, self.hi)
        if rng.random() < 0.04 and self.pr.sales != SALESFORCE:
            self.event("cancelled_meeting", lo, self.hi)
        if rng.random() < 0.03 and self.pr.sales == HUBSPOT:
            self.event("no_show", lo, self.hi)

    # ------------------------------------------------------------------ records
    def build_records(self) -> None:
        rng, p = self.rng, self.p
        first: dict[str, int] = {}

        def seen(system: str, t: int) -> None:
            if t < first.get(system, t + 1):
                first[system] = t

        for d in p.deals:
            seen(d.system, d.created)
        for tk in p.tickets:
            seen(tk.system, tk.opened)
        for item in p.interactions:
            seen(item.system, item.time)
        present = set(first) | self.extra_presence
        if self.pr.marketing:
            present.add(HUBSPOT)
        if not present:
            present.add(self.pr.sales)
        if HUBSPOT in present and self.pr.marketing and rng.random() < 0.6:
            origin = HUBSPOT
        elif first:
            origin = min(first, key=lambda s: first[s])
        else:
            origin = rng.choice(sorted(present))
        created: dict[str, int] = {}
        for system in sorted(present):
            if system == origin:
                created[system] = self.t0
            elif system in first:
                created[system] = max(self.t0 + 60, first[system] - rng.randint(60, 5 * DAY))
            else:
                created[system] = rng.randint(self.t0 + 60, self.hi)

        if HUBSPOT in created:
            hs = Record(HUBSPOT, "contacts", created[HUBSPOT])
            p.records.append(hs)
            for item in p.interactions:
                if item.system == HUBSPOT:
                    item.record = hs
            for d in p.deals:
                if d.system == HUBSPOT:
                    d.record = hs
            for tk in p.tickets:
                if tk.system == HUBSPOT:
                    tk.record = hs
            if rng.random() < 0.04 and hs.created < self.hi - 3 * DAY:
                away = Record(HUBSPOT, "contacts", rng.randint(hs.created + HOUR, self.hi - 2 * DAY),
                              role="merged_away", exists=False)
                away.merged_into = hs
                away.merged_at = rng.randint(away.created + HOUR, self.hi)
                hs.merged_ids.append(away)
                p.records.append(away)
                p.cases.append("hubspot_merge")
        if SALESFORCE in created:
            self._salesforce_records(created[SALESFORCE])
        if DYNAMICS in created:
            self._dynamics_records(created[DYNAMICS])

    def _salesforce_records(self, base: int) -> None:
        rng, p = self.rng, self.p
        deals = [d for d in p.deals if d.system == SALESFORCE]
        tickets = [tk for tk in p.tickets if tk.system == SALESFORCE]
        items = [i for i in p.interactions if i.system == SALESFORCE]
        needs = [d.created for d in deals] + [tk.opened for tk in tickets]
        if needs:
            first_need = min(needs)
            pre = any(i.time < first_need for i in items)
            if first_need - base > HOUR and (pre or rng.random() < 0.5):
                lead = Record(SALESFORCE, "Lead", base, role="lead")
                conversion = max(base + 60, first_need - rng.randint(60, 900))
                main = Record(SALESFORCE, "Contact", conversion)
                lead.converted_to, lead.converted_at = main, conversion
                p.records += [main, lead]
                p.cases.append("salesforce_lead_converted")
            else:
                main = Record(SALESFORCE, "Contact", base)
                p.records.append(main)
        else:
            main = Record(SALESFORCE, "Lead" if rng.random() < 0.8 else "Contact", base)
            p.records.append(main)
        for obj in (*deals, *tickets, *items):
            obj.record = main
        if main.object_type != "Contact" or main.created > self.hi - 4 * DAY:
            return
        roll = rng.random()
        if roll < 0.04:       # a second, active Contact with the same email
            dup = Record(SALESFORCE, "Contact", rng.randint(main.created + DAY, self.hi - 2 * DAY), role="duplicate")
            p.records.append(dup)
            for obj in (*deals, *tickets, *items):
                moment = obj.created if isinstance(obj, Deal) else (obj.opened if isinstance(obj, Ticket)
                                                                    else obj.time)
                if moment > dup.created and rng.random() < 0.4:
                    obj.record = dup
            for item in items:        # a case's emails stay with the case's contact
                if item.ticket is not None:
                    item.record = item.ticket.record
            p.cases.append("salesforce_duplicate")
        elif roll < 0.08:     # a duplicate that was merged away (deleted, MasterRecordId = survivor)
            loser = Record(SALESFORCE, "Contact", rng.randint(main.created + HOUR, self.hi - 2 * DAY),
                           role="merged_loser")
            loser.merged_into = main
            loser.merged_at = rng.randint(loser.created + HOUR, self.hi)
            p.records.append(loser)
            p.cases.append("salesforce_merge")

    def _dynamics_records(self, base: int) -> None:
        rng, p = self.rng, self.p
        deals = [d for d in p.deals if d.system == DYNAMICS]
        tickets = [tk for tk in p.tickets if tk.system == DYNAMICS]
        items = [i for i in p.interactions if i.system == DYNAMICS]
        needs = [d.created for d in deals] + [tk.opened for tk in tickets]
        lead = None
        if needs:
            first_need = min(needs)
            pre = any(i.time < first_need for i in items)
            if pre and self.pr.sales == DYNAMICS and first_need - base > HOUR and rng.random() < 0.8:
                lead = Record(DYNAMICS, "leads", base, role="lead")
                qualified = max(base + 60, first_need - rng.randint(60, 3600))
                main = Record(DYNAMICS, "contacts", qualified)
                lead.converted_to, lead.converted_at = main, qualified
                p.records += [main, lead]
                p.cases.append("dynamics_lead_qualified")
            else:
                main = Record(DYNAMICS, "contacts", base)
                p.records.append(main)
        else:
            kind = "leads" if self.pr.sales == DYNAMICS and rng.random() < 0.7 else "contacts"
            main = Record(DYNAMICS, kind, base)
            p.records.append(main)
        for obj in (*deals, *tickets):
            obj.record = main
        for item in items:
            item.record = lead if lead is not None and item.time < main.created else main
        if main.object_type == "contacts" and main.created < self.hi - 4 * DAY and rng.random() < 0.03:
            loser = Record(DYNAMICS, "contacts", rng.randint(main.created + HOUR, self.hi - 2 * DAY),
                           role="merged_loser")
            loser.merged_into = main
            loser.merged_at = rng.randint(loser.created + HOUR, self.hi)
            p.records.append(loser)
            p.cases.append("dynamics_merge")

    # ------------------------------------------------------------------ identity on the records
    def dress(self) -> None:
        rng, p = self.rng, self.p
        native_share = {HUBSPOT: 0.12, SALESFORCE: 0.2, DYNAMICS: 0.45}
        phone_share = {HUBSPOT: 0.55, SALESFORCE: 0.8, DYNAMICS: 0.85}
        for rec in p.records:
            native = p.first_native is not None and rng.random() < native_share[rec.system]
            rec.first_name = p.first_native if native else p.first_name
            rec.last_name = p.last_native if native else p.last_name
            rec.email = P.email_variant(rng, p.email, rec.system)
            if p.phone and rng.random() < phone_share[rec.system]:
                rec.phone = P.phone_variant(rng, p.phone, rec.system)
            rec.phone_field = "mobile" if rng.random() < 0.5 else "phone"
            rec.company = p.company
            rec.owner = self.owner(rec.system)
            if rec.role == "merged_away":      # e.g. created from a logged call: no email
                rec.email = None
                rec.phone = P.phone_variant(rng, p.phone, HUBSPOT) if p.phone else None
                if rng.random() < 0.5:
                    rec.last_name = None
            if rec.system == SALESFORCE and rec.object_type == "Lead" and rng.random() < 0.04:
                rec.first_name = None           # bought lists often lack first names
        if rng.random() < 0.015:
            rec = rng.choice([r for r in p.records if r.exists])
            rec.first_name = f"{rec.first_name or p.first_name} {rng.choice(P.EMOJI)}"
            p.cases.append("emoji_name")
        if p.first_native is not None and any(
                r.first_name == p.first_native for r in p.records) and any(
                r.first_name == p.first_name for r in p.records):
            p.cases.append("mixed_script_names")

        hs = next((r for r in p.records if r.system == HUBSPOT and r.exists), None)
        sf_contact = next((r for r in p.records if r.system == SALESFORCE and r.object_type == "Contact"
                           and r.role == "primary"), None)
        sf_lead = next((r for r in p.records if r.system == SALESFORCE and r.object_type == "Lead"), None)

        # linked only through a phone number in one system (no email there)
        owners_of_phone = [r for r in p.records if r.exists and r.role in ("primary", "lead")]
        systems = {r.system for r in owners_of_phone}
        if p.phone and len(systems) >= 2 and rng.random() < 0.08:
            candidates = [r for r in owners_of_phone if not self._needs_email(r)]
            if candidates:
                rec = rng.choice(candidates)
                others = [r for r in owners_of_phone if r.system != rec.system]
                anchor_rec = rng.choice(others)
                rec.email = None
                rec.phone = rec.phone or P.phone_variant(rng, p.phone, rec.system)
                anchor_rec.phone = anchor_rec.phone or P.phone_variant(rng, p.phone, anchor_rec.system)
                if anchor_rec.converted_to is not None:
                    anchor_rec.converted_to.phone = anchor_rec.converted_to.phone or anchor_rec.phone
                p.cases.append("phone_only_link")

        # cross-system ids stored by the HubSpot–Salesforce integration
        if hs is not None and (sf_contact or sf_lead) and hs.email is not None:
            if sf_contact is not None and "phone_only_link" not in p.cases and rng.random() < 0.03:
                p.alt_email = P.make_email(rng, self.ctx.registry, p.first_name, p.last_name,
                                           P.free_mail_domain(rng), personal=True)
                hs.email, hs.phone = p.alt_email, None
                for away in hs.merged_ids:
                    away.phone = None
                hs.cross_ids["salesforcecontactid"] = sf_contact
                p.cases.append("crossid_only_link")
            elif rng.random() < 0.55:
                if sf_contact is not None:
                    hs.cross_ids["salesforcecontactid"] = sf_contact
                if sf_lead is not None and (sf_contact is None or rng.random() < 0.5):
                    hs.cross_ids["salesforceleadid"] = sf_lead
                p.cases.append("cross_ids")
        variants = {r.email for r in p.records if r.email is not None and r.email != p.alt_email}
        if len(variants) > 1:
            p.cases.append("email_variants")

    def _needs_email(self, rec: Record) -> bool:
        """A record that must keep its email: marketing, forms, surveys (HubSpot) or emails attached."""
        if rec.system == HUBSPOT:
            return self.pr.marketing or any(i.system == HUBSPOT and i.kind in (MARKETING, FORM, SURVEY, EMAIL)
                                            for i in self.p.interactions)
        return any(i.record is rec and i.kind == EMAIL for i in self.p.interactions)

    def marketing_stream(self) -> None:
        """The campaigns the person was sent (SENT then DELIVERED or BOUNCE): never a stage move."""
        hs = next((r for r in self.p.records if r.system == HUBSPOT and r.exists), None)
        if hs is None or hs.email is None or not self.pr.marketing:
            return
        rng = self.rng
        start = hs.created + HOUR
        stop = self.hi if rng.random() < 0.8 else rng.randint(start, self.hi)   # some unsubscribe
        rate = 0.3
        wanted = self.spec.get("sends", 0)
        if wanted and self.w1 is not None:
            start, stop, rate = max(start, self.w1 + DAY), self.hi, 0.6       # still mailed after they left
        eligible = [c for c in self.ctx.campaigns_between(start, stop - 1800) if c.campaign_id not in self.sends]
        chosen = [c for c in eligible if rng.random() < rate]
        if len(chosen) < wanted:
            chosen = eligible[:wanted] if len(eligible) >= wanted else eligible
            if len(chosen) < wanted and not self.sends:
                raise Retry("not enough campaigns")
        for campaign in chosen:
            bounce = self.pr.bouncy or rng.random() < 0.01
            self.send(campaign.campaign_id, campaign.sent + rng.randint(0, 1800), bounce)
            if self.pr.bouncy:
                break              # a hard bounce suppresses the address
        for item in self.p.interactions:
            if item.system == HUBSPOT:
                item.record = hs

    # ------------------------------------------------------------------ housekeeping times
    def finish_times(self) -> None:
        rng, p = self.rng, self.p
        ceiling = self.A - 60
        latest: dict[int, int] = {}
        for item in p.interactions:
            if item.kind == MARKETING:
                item.created = item.modified = item.time
                continue
            if item.kind == MEETING:
                floor = item.record.created + 60 if item.record is not None else item.time
                item.created = max(min(floor, item.time), item.time - rng.randint(HOUR, 7 * DAY))
            else:
                item.created = item.time
            item.modified = min(ceiling, max(item.time, item.end or item.time) + rng.randint(0, HOUR))
            if item.record is not None:
                key = id(item.record)
                latest[key] = max(latest.get(key, 0), item.end or item.time)
        for d in p.deals:
            d.modified = min(ceiling, max(d.created, d.closed or d.created) + rng.randint(0, 2 * DAY))
            key = id(d.record)
            latest[key] = max(latest.get(key, 0), d.created)
        for tk in p.tickets:
            tk.modified = min(ceiling, (tk.closed or tk.opened) + rng.randint(0, DAY))
        for rec in p.records:
            moment = max(rec.created, latest.get(id(rec), 0), rec.converted_at or 0, rec.merged_at or 0,
                         *(m.merged_at or 0 for m in rec.merged_ids))
            for other in p.records:
                if other.merged_into is rec and other.merged_at:
                    moment = max(moment, other.merged_at)
            rec.modified = min(ceiling, moment + rng.randint(0, 3 * DAY))

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        """Structural invariants (a failure is a generator bug) and the oracle's verdict."""
        p, A = self.p, self.A
        spans: list[tuple[int, int]] = []
        for d in p.deals:
            spans.append((d.created, d.created))
            if d.closed is not None:
                spans.append((d.closed, d.closed))
        spans += [(tk.opened, tk.opened) for tk in p.tickets]
        for item in p.interactions:
            if item.kind == MARKETING and item.outcome not in ("open", "click"):
                continue
            spans.append((item.time, item.end or item.time))
        spans.sort()
        for (_, end), (start, _) in itertools.pairwise(spans):
            assert start >= end + GAP, f"{p.pid}: decisive events too close ({end} → {start})"
        earliest = min(r.created for r in p.records)
        assert earliest == self.t0, f"{p.pid}: first record is not T0"
        for rec in p.records:
            assert A - 730 * DAY <= rec.created <= rec.modified <= A, f"{p.pid}: record times"
            if rec.role in ("duplicate", "merged_loser", "merged_away"):
                assert rec.created > earliest
        for moment in [*(d.created for d in p.deals), *(d.closed for d in p.deals if d.closed),
                       *(tk.opened for tk in p.tickets), *(i.time for i in p.interactions),
                       *(i.end for i in p.interactions if i.end)]:
            assert earliest < moment < A, f"{p.pid}: event outside [first record, anchor)"
        for obj in [*p.deals, *p.tickets, *p.interactions]:
            assert obj.record is not None and obj.record.system == obj.system, f"{p.pid}: unattached event"
            assert obj.record.exists, f"{p.pid}: event on a merged-away record"
        # campaign sends never count; leaving them out only makes the repeated evaluations cheaper
        view = _OracleView(p.records, p.deals, p.tickets,
                           [i for i in p.interactions if i.kind != MARKETING or i.outcome in ("open", "click")])
        verdict = evaluate_person(view, A)
        if (verdict.stage, verdict.segment) != (self.arch.stage, self.arch.segment):
            raise Retry(f"intent {self.arch.stage}/{self.arch.segment} != {verdict.stage}/{verdict.segment}")
        if not is_robust(view, A, verdict):
            raise Retry("not robust")

    def run(self) -> None:
        if self.arch.segment == "prospect":
            self.prospect()
        else:
            self.customer()
        if self.spec.get("noise", True):
            self.noise()
        if self.spec.get("long_note"):
            system = self.spec["long_note"]
            self.note(self.pick(self.t0, self.hi), system, T.long_text(70_000))
        self.build_records()
        self.dress()
        self.marketing_stream()
        self.finish_times()
        self.check()


@dataclass
class _OracleView:
    records: list[Record]
    deals: list[Deal]
    tickets: list[Ticket]
    interactions: list[Interaction]


# ----------------------------------------------------------------------------------------------- people
def make_identity(ctx: WorldContext, rng: random.Random, pid: str, previous: list[Person]) -> Person:
    registry = ctx.registry
    if previous and rng.random() < 0.02:      # same full name as someone else, a different person
        other = rng.choice(previous)
        culture, first, last = other.culture, other.first_name, other.last_name
        first_n, last_n = other.first_native, other.last_native
        same_name = True
    else:
        culture = P.pick_culture(rng)
        first, last, first_n, last_n = P.pick_name(rng, culture)
        same_name = False
    company = rng.choice(ctx.companies) if rng.random() < 0.55 else None
    domain = company.domain if company else P.free_mail_domain(rng)
    email = P.make_email(rng, registry, first, last, domain, personal=company is None)
    phone = P.make_phone(rng, registry, culture) if rng.random() < 0.85 else None
    person = Person(pid, culture, first, last, email, phone, first_n, last_n, company=company)
    if same_name:
        person.cases.append("same_name")
    return person


def make_profile(rng: random.Random, spec: dict) -> Profile:
    profile = Profile(
        sales=P.weighted(rng, [(SALESFORCE, 65), (HUBSPOT, 22), (DYNAMICS, 13)]),
        service=P.weighted(rng, [(DYNAMICS, 60), (SALESFORCE, 22), (HUBSPOT, 18)]),
        marketing=rng.random() < 0.8,
    )
    for key, value in spec.get("profile", {}).items():
        setattr(profile, key, value)
    return profile


def plan_person(ctx: WorldContext, index: int, arch: Archetype, previous: list[Person]) -> Person:
    rng = random.Random(ctx.rng.getrandbits(64))
    person = make_identity(ctx, rng, f"p{index:05d}", previous)
    identity_cases = list(person.cases)
    spec = SCRIPTS.get(arch.script or "", {})
    for _ in range(MAX_ATTEMPTS):
        profile = make_profile(rng, spec)
        story = Story(ctx, person, rng, profile, arch)
        try:
            story.run()
        except Retry as why:
            reason = str(why).split(" ")[0] if str(why).startswith("intent") else str(why)
            ctx.retries[reason] = ctx.retries.get(reason, 0) + 1
            continue
        person.intent_stage, person.intent_segment = arch.stage, arch.segment
        person.cases = identity_cases + person.cases
        return person
    raise RuntimeError(f"could not draw a story for {person.pid} ({arch})")


# -------------------------------------------------------------------------------------------- bad records
BAD_TEMPLATES = [
    (HUBSPOT, "contacts", "invalid_email", "Dana", "Cohen", "dana@@example.com"),
    (HUBSPOT, "contacts", "invalid_email", "Yossi", "Levi", "no-at-sign.example.com"),
    (HUBSPOT, "contacts", "invalid_email", "Rania", "Haddad", "rania haddad@gmail.com"),
    (HUBSPOT, "contacts", "invalid_email", "Emily", "Clark", "emily.clark@"),
    (DYNAMICS, "leads", "invalid_email", "Mohammed", "Khalil", "mohammed.khalil@@gmail.com"),
    (HUBSPOT, "contacts", "invalid_email", "Noa", "Levi", "noa.levi.gmail.com"),
    (SALESFORCE, "Contact", "missing_required_field", "Tamar", None, "VALID"),
    (SALESFORCE, "Contact", "missing_required_field", "Omar", None, "VALID"),
    (DYNAMICS, "contacts", "missing_required_field", None, None, None),
    (DYNAMICS, "contacts", "missing_required_field", None, None, None),
    (DYNAMICS, "leads", "invalid_email", "Khaled", "Nasser", "khaled@@outlook.com"),
    (DYNAMICS, "contacts", "invalid_email", "Maya", "Katz", "@katz.co.il"),
]


def make_bad_records(ctx: WorldContext, people: int) -> list[BadRecord]:
    rng = random.Random(ctx.rng.getrandbits(64))
    count = max(len(BAD_TEMPLATES), people // 150)
    bad: list[BadRecord] = []
    for index in range(count):
        system, object_type, reason, first, last, email = BAD_TEMPLATES[index % len(BAD_TEMPLATES)]
        if email == "VALID":
            email = P.make_email(rng, ctx.registry, first or "x", "nolastname", "gmail.com", personal=True)
        elif email is not None and index >= len(BAD_TEMPLATES):     # more of the same, still malformed
            local, at, domain = email.partition("@")
            email = f"{local}{index}{at}{domain}" if local and at else f"{at}{index}.{domain or email}"
        created = rng.randint(ctx.anchor - EARLIEST * DAY, ctx.anchor - DAY)
        company = rng.choice(ctx.companies).name if object_type in ("Lead", "leads") else None
        bad.append(BadRecord(system, object_type, created, reason, first, last, email, None, company,
                             rng.choice(ctx.owners[system])))
    return bad
