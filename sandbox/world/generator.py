"""`generate()`: the plan (stories), its encodings (renderers) and the ground truth (oracle)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from sandbox.common.org import check_org, default_history
from sandbox.dynamics.data import DynamicsData
from sandbox.hubspot.data import HubSpotData
from sandbox.salesforce.data import SalesforceData
from sandbox.world import stories
from sandbox.world.history import apply_history, choose_history, history_of
from sandbox.world.ids import DAY, HOUR, Ids, from_datetime, iso_z
from sandbox.world.model import DYNAMICS, HUBSPOT, SALESFORCE, Person, Plan
from sandbox.world.oracle import evaluate_person, is_robust
from sandbox.world.orgview import readable_parts
from sandbox.world.people import Registry, make_companies, make_owners
from sandbox.world.render_dynamics import render_dynamics
from sandbox.world.render_hubspot import render_hubspot
from sandbox.world.render_salesforce import render_salesforce

if TYPE_CHECKING:  # the emulator packages own these shapes (docs/architecture.md)
    from sandbox.dynamics.data import DynamicsData
    from sandbox.hubspot.data import HubSpotData
    from sandbox.salesforce.data import SalesforceData

RULESET = "journey.md defaults"


@dataclass
class World:
    hubspot: HubSpotData
    salesforce: SalesforceData
    dynamics: DynamicsData
    truth: dict


def default_anchor() -> datetime:
    today = datetime.now(UTC)
    return datetime(today.year, today.month, today.day, tzinfo=UTC)


def generate_plan(people: int = 2000, seed: int = 7, anchor: datetime | None = None) -> Plan:
    """The world in domain terms, before any CRM encoding."""
    if people < 1:
        raise ValueError("people must be at least 1")
    anchor_ts = from_datetime(anchor if anchor is not None else default_anchor())
    rng = random.Random(seed)
    registry = Registry()
    companies = make_companies(rng, registry, max(4, people // 14))
    owners = make_owners(rng, anchor_ts - 729 * DAY)
    for company in companies:
        company.owners = {system: rng.choice(owners[system]) for system in owners}
    ctx = stories.WorldContext(anchor_ts, rng, registry, companies, owners, stories.make_campaigns(anchor_ts))
    plan_people = []
    for index, arch in enumerate(stories.archetypes(people, rng), start=1):
        plan_people.append(stories.plan_person(ctx, index, arch, plan_people))
    bad = stories.make_bad_records(ctx, people)
    plan = Plan(seed, anchor_ts, plan_people, companies, owners, ctx.campaigns, bad, ctx.retries)
    _company_presence(plan)
    _assign_ids(plan, Ids(seed))
    return plan


def _company_presence(plan: Plan) -> None:
    """A company exists in a CRM when one of its people has a record there; created just before the first."""
    for person in plan.people:
        for rec in person.records:
            company = rec.company
            if company is None:
                continue
            first = company.created.get(rec.system)
            if first is None or rec.created < first:
                company.created[rec.system] = rec.created
    for company in plan.companies:
        for system, first in company.created.items():
            company.created[system] = max(plan.anchor - 729 * DAY, first - (company.key * 7919 % (3 * DAY)) - HOUR)


def _assign_ids(plan: Plan, ids: Ids) -> None:
    for system, owners in plan.owners.items():
        for number, owner in enumerate(owners, start=1):
            if system == HUBSPOT:
                owner.remote_id = str(70_000_000 + number * 1_117)
                owner.user_id = 9_000_000 + number * 37
            elif system == SALESFORCE:
                owner.remote_id = ids.salesforce("User")
            else:
                owner.remote_id = ids.dynamics("systemusers")
    for company in plan.companies:
        for system in sorted(company.created):
            if system == HUBSPOT:
                company.remote_ids[system] = ids.hubspot()
            elif system == SALESFORCE:
                company.remote_ids[system] = ids.salesforce("Account")
            else:
                company.remote_ids[system] = ids.dynamics("accounts")
    sf_objects = {"call": "Task", "note": "Task", "task": "Task", "survey": "Task", "referral": "Task",
                  "review": "Task", "meeting": "Event", "email": "EmailMessage"}
    dyn_sets = {"call": "phonecalls", "meeting": "appointments", "email": "emails", "note": "annotations",
                "task": "tasks", "survey": "tasks", "referral": "tasks"}
    for person in plan.people:
        for rec in person.records:
            if rec.system == HUBSPOT:
                rec.remote_id = ids.hubspot()
            elif rec.system == SALESFORCE:
                rec.remote_id = ids.salesforce(rec.object_type)
            else:
                rec.remote_id = ids.dynamics(rec.object_type)
        for deal in person.deals:
            if deal.system == HUBSPOT:
                deal.remote_id = ids.hubspot()
            elif deal.system == SALESFORCE:
                deal.remote_id = ids.salesforce("Opportunity")
                deal.role_id = ids.salesforce("OpportunityContactRole")
            else:
                deal.remote_id = ids.dynamics("opportunities")
        for ticket in person.tickets:
            if ticket.system == HUBSPOT:
                ticket.remote_id = ids.hubspot()
            elif ticket.system == SALESFORCE:
                ticket.remote_id = ids.salesforce("Case")
            else:
                ticket.remote_id = ids.dynamics("incidents")
        for item in person.interactions:
            if item.system == HUBSPOT:
                if item.kind not in ("marketing_email", "form", "survey"):
                    item.remote_id = ids.hubspot()
            elif item.system == SALESFORCE:
                item.remote_id = ids.salesforce(sf_objects[item.kind])
            else:
                item.remote_id = ids.dynamics(dyn_sets[item.kind])
    for bad in plan.bad_records:
        if bad.system == HUBSPOT:
            bad.remote_id = ids.hubspot()
        elif bad.system == SALESFORCE:
            bad.remote_id = ids.salesforce(bad.object_type)
        else:
            bad.remote_id = ids.dynamics(bad.object_type)


# ------------------------------------------------------------------------------------------------ truth
CONVENTIONS = {
    "forms": "HubSpot only: contact properties first_conversion_date / recent_conversion_date (datetimes of the "
             "first and latest form submission; a person has at most two, so both are visible), "
             "first_conversion_event_name / recent_conversion_event_name, num_conversion_events.",
    "surveys": "HubSpot: contact hs_feedback_last_nps_rating (0-10) + hs_feedback_last_survey_date (at most one "
               "survey per HubSpot contact). Salesforce: Task Type='Survey' with Survey_Score__c (0-10), time = "
               "CompletedDateTime. Dataverse: task category='survey' with new_surveyscore (0-10), time = actualend. "
               "A score of 9 or 10 is an advocate signal; any answer is a two-way interaction.",
    "referrals": "Salesforce: Task Type='Referral' (time = CompletedDateTime). Dataverse: task category='referral' "
                 "(time = actualend). Not recorded in HubSpot.",
    "reviews": "Salesforce only: Task Type='Review' with Review_Rating__c (1-5), time = CompletedDateTime; a rating "
               "of 4 or 5 is a positive review (advocate signal).",
    "times": "Salesforce Opportunity CloseDate and Dataverse actualclosedate are dates: the deal closed at 00:00 "
             "UTC of that date. HubSpot closedate is a datetime. Meetings and calls happen at their start "
             "(meetings hs_timestamp / StartDateTime / scheduledstart = actualstart; calls hs_timestamp / "
             "CompletedDateTime / actualstart, the call's actualend being its start plus its duration); emails "
             "and tasks at hs_timestamp / CompletedDateTime or MessageDate / actualend; tickets at their creation.",
    "outcomes": "Calls: HubSpot hs_call_status + hs_call_direction; Salesforce Task TaskSubtype='Call' with "
                "CallType Inbound/Outbound and CallDisposition 'Completed' / 'No Answer' / 'Busy'; Dataverse "
                "phonecalls directioncode (true = outgoing), statecode 1 completed / 2 canceled (not reached). "
                "Meetings: HubSpot hs_meeting_outcome COMPLETED / CANCELED / NO_SHOW; every Salesforce Event took "
                "place; Dataverse appointments statecode 1 completed / 2 canceled.",
}


PLAIN_CONVENTIONS = {
    **CONVENTIONS,
    "surveys": "A plain org keeps no survey score: HubSpot has no Service Hub feedback properties (surveys are not "
               "recorded), Salesforce has no Survey task type or Survey_Score__c (an ordinary task), Dataverse has "
               "task category='survey' without new_surveyscore (an answer without a score: a two-way interaction, "
               "never an advocate signal).",
    "referrals": "Salesforce: an ordinary task (no Referral task type). Dataverse: task category='referral'.",
    "reviews": "Salesforce: an ordinary task (no Review task type, no Review_Rating__c).",
    "cross_ids": "No HubSpot–Salesforce integration: HubSpot contacts carry no salesforcecontactid/salesforceleadid.",
}


def build_truth(plan: Plan, org: str = "full") -> dict[str, Any]:
    """The ground truth. For the full org without history it is the plan's verdict per person; otherwise
    what a correct hub can read there (orgview.py), with each person's history and unreadable signals."""
    extended = org != "full" or plan.history
    persons = []
    cases: dict[str, list[str]] = {}
    for person in plan.people:
        if extended:
            persons += _readable_entries(person, plan.anchor, org, plan.history)
        else:
            verdict = evaluate_person(person, plan.anchor)
            keys = [rec.source_key for rec in person.records if rec.exists]
            persons.append({"person": person.pid, "email": person.email, "records": keys, "stage": verdict.stage,
                            "stage_entered_at": iso_z(verdict.stage_entered_at), "segment": verdict.segment})
        for case in person.cases:
            cases.setdefault(case, []).append(person.pid)
    quarantined = [{"record": bad.source_key, "reason": bad.reason} for bad in plan.bad_records]
    truth = {"seed": plan.seed, "people": len(plan.people), "anchor": iso_z(plan.anchor), "ruleset": RULESET,
             "persons": persons, "quarantined": quarantined,
             "conventions": PLAIN_CONVENTIONS if org == "plain" else CONVENTIONS}
    if extended:
        truth.update({"org": org, "history": plan.history})
        for entry in persons:
            for flag in ("split_from", "unreadable", "full_org"):
                if flag in entry:
                    cases.setdefault(f"truth_{flag}", []).append(entry["person"])
    truth["cases"] = dict(sorted(cases.items()))
    return truth


def _readable_entries(person: Person, anchor: int, org: str, history: bool) -> list[dict[str, Any]]:
    """The truth entries of one person: one per part a correct hub resolves (two after a split)."""
    everything = evaluate_person(person, anchor)
    events = history_of(person) if history else []
    entries = []
    for part in readable_parts(person, org):
        verdict = evaluate_person(part, anchor)
        entry: dict[str, Any] = {"person": part.pid, "email": part.email,
                                 "records": [rec.source_key for rec in part.records], "stage": verdict.stage,
                                 "stage_entered_at": iso_z(verdict.stage_entered_at), "segment": verdict.segment}
        systems = {rec.system for rec in part.records}
        mine = [event for event in events if event["record"].split(":")[0] in systems]
        if mine:
            entry["history"] = mine
        if part.unreadable:
            entry["unreadable"] = part.unreadable
        if part.split_from is not None:
            entry["split_from"] = part.split_from
        if (verdict.stage, verdict.stage_entered_at, verdict.segment) != (
                everything.stage, everything.stage_entered_at, everything.segment):
            entry["full_org"] = {"stage": everything.stage, "stage_entered_at": iso_z(everything.stage_entered_at),
                                 "segment": everything.segment}
        if not is_robust(part, anchor, verdict):
            entry["robust"] = False
        entries.append(entry)
    return entries


# ------------------------------------------------------------------------------------------------ world
def generate(people: int = 2000, seed: int = 7, anchor: datetime | None = None, *, org: str = "full",
             history: bool | None = None) -> World:
    """The generated customer world: three CRMs' seed data and the ground truth.

    `anchor` is the world's "now" (UTC; default today 00:00 UTC); every timestamp lies in the two years
    before it. The same (people, seed, anchor, org, history) always gives the same world, byte for byte.
    `org` is "full" or "plain" (sandbox/common/org.py); `history` (default: on for "plain") adds records
    archived or deleted before install (sandbox/world/history.py). Both keep the same people and stories.
    """
    plan = generate_plan(people, seed, anchor)
    if default_history(org) if history is None else history:
        choose_history(plan)
    return world_from_plan(plan, org)


def world_from_plan(plan: Plan, org: str = "full") -> World:
    """Encodes a plan into the three CRMs of an `org` profile and computes its ground truth."""
    check_org(org)
    hubspot, salesforce, dynamics = render_hubspot(plan, org), render_salesforce(plan, org), render_dynamics(plan, org)
    if plan.history:
        apply_history(plan, hubspot, salesforce, dynamics)
    return World(hubspot, salesforce, dynamics, build_truth(plan, org))


def world_parts(world: World) -> dict[str, dict[str, Any]]:
    """The four JSON documents of a world (what `write_world` writes)."""
    hs = world.hubspot
    return {
        HUBSPOT: {"objects": hs.objects, "associations": hs.associations, "owners": hs.owners,
                  "pipelines": hs.pipelines, "email_events": hs.email_events, "properties": hs.properties},
        SALESFORCE: {"records": world.salesforce.records},
        DYNAMICS: {"rows": world.dynamics.rows},
        "truth": world.truth,
    }


def dumps(document: dict[str, Any]) -> bytes:
    return orjson.dumps(document)


def write_world(world: World, directory: str | Path) -> dict[str, Path]:
    """Writes hubspot.json, salesforce.json, dynamics.json and truth.json into `directory`."""
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, document in world_parts(world).items():
        path = target / f"{name}.json"
        path.write_bytes(dumps(document))
        written[name] = path
    return written


def read_world(directory: str | Path) -> World:
    """The world `write_world` wrote (associations back as tuples)."""
    source = Path(directory)
    parts = {name: orjson.loads((source / f"{name}.json").read_bytes())
             for name in (HUBSPOT, SALESFORCE, DYNAMICS, "truth")}
    hs = parts[HUBSPOT]
    hs["associations"] = [tuple(row) for row in hs["associations"]]
    return World(HubSpotData(**hs), SalesforceData(parts[SALESFORCE]["records"]),
                 DynamicsData(parts[DYNAMICS]["rows"]), parts["truth"])
