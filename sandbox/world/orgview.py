"""What a correct hub can read of a person, in a given org profile and after the pre-install history.

The plan holds everything that happened; an org may not have kept it all. A `plain` org lacks the fields
some signals were stored in (HubSpot Service Hub's NPS properties, Salesforce's Survey/Referral/Review task
types and `*__c` scores, Dataverse's `new_surveyscore`), and the HubSpot–Salesforce integration's cross-CRM
ids, so a HubSpot contact linked to Salesforce only by `salesforcecontactid` is another customer there.
Records removed before install are readable when the vendor keeps them (HubSpot's 90-day recycle bin behind
`archived=true`, Salesforce's 15-day recycle bin behind `queryAll`) and gone otherwise (Dataverse deletes,
anything purged). `readable_parts` returns the person as the hub can see it: one part, or two after a split.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sandbox.world.model import (
    DYNAMICS,
    HUBSPOT,
    REFERRAL,
    REVIEW,
    SALESFORCE,
    SURVEY,
    TASK,
    Deal,
    Interaction,
    Person,
    Record,
    Removal,
    Ticket,
)

#: why a plain org cannot read a signal, per (system, interaction kind)
PLAIN_LOSSES = {
    (HUBSPOT, SURVEY): "HubSpot keeps NPS answers only in Service Hub's hs_feedback_last_nps_rating / "
                       "hs_feedback_last_survey_date, which this portal does not have",
    (SALESFORCE, SURVEY): "the org has no Survey task type and no Survey_Score__c: the answer is an ordinary task",
    (SALESFORCE, REFERRAL): "the org has no Referral task type: the referral is an ordinary task",
    (SALESFORCE, REVIEW): "the org has no Review task type and no Review_Rating__c: the review is an ordinary task",
    (DYNAMICS, SURVEY): "the org has no new_surveyscore column: the survey task has no score",
}
CROSS_ID_LOSS = "the portal has no Salesforce integration (salesforcecontactid), the only link of these records"


@dataclass
class Part:
    """A person as the hub can see them: the records that resolve together and the evidence attached."""

    pid: str
    email: str
    records: list[Record]
    deals: list[Deal] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)
    unreadable: list[dict[str, str]] = field(default_factory=list)
    split_from: str | None = None


def object_key(obj: Record | Deal | Ticket | Interaction) -> str:
    """The source key of any plan object, as the truth names records (`system:object_type:remote_id`)."""
    if isinstance(obj, Record):
        return obj.source_key
    system = obj.system
    if isinstance(obj, Deal):
        kind = {HUBSPOT: "deals", SALESFORCE: "Opportunity", DYNAMICS: "opportunities"}[system]
    elif isinstance(obj, Ticket):
        kind = {HUBSPOT: "tickets", SALESFORCE: "Case", DYNAMICS: "incidents"}[system]
    else:
        kind = INTERACTION_TYPES[system][obj.kind]
    return f"{system}:{kind}:{obj.remote_id}"


INTERACTION_TYPES = {
    HUBSPOT: {"call": "calls", "meeting": "meetings", "note": "notes", "task": "tasks", "email": "emails"},
    SALESFORCE: {"call": "Task", "note": "Task", "task": "Task", "survey": "Task", "referral": "Task",
                 "review": "Task", "meeting": "Event", "email": "EmailMessage"},
    DYNAMICS: {"call": "phonecalls", "meeting": "appointments", "email": "emails", "note": "annotations",
               "task": "tasks", "survey": "tasks", "referral": "tasks"},
}


def _gone(obj: Any) -> bool:
    removal: Removal | None = obj.removal
    return removal is not None and not removal.readable


def readable_parts(person: Person, org: str) -> list[Part]:
    """The person as a correct hub reads them in `org` (after the plan's pre-install history)."""
    plain = org == "plain"
    unreadable: list[dict[str, str]] = []
    items: list[Interaction] = []
    for item in person.interactions:
        if _gone(item):
            unreadable.append({"record": object_key(item), "reason": _gone_reason(item)})
            continue
        loss = PLAIN_LOSSES.get((item.system, item.kind)) if plain else None
        if loss is None:
            items.append(item)
            continue
        where = object_key(item) if item.remote_id else f"{object_key(item.record)} ({item.kind})"
        unreadable.append({"record": where, "reason": loss})
        if item.system == SALESFORCE:
            items.append(Interaction(TASK, item.time, system=item.system, record=item.record))
        elif item.system == DYNAMICS:
            items.append(Interaction(SURVEY, item.time, system=item.system, record=item.record))
    deals, tickets = [], []
    for obj in (*person.deals, *person.tickets):
        if _gone(obj):
            unreadable.append({"record": object_key(obj), "reason": _gone_reason(obj)})
        else:
            (deals if isinstance(obj, Deal) else tickets).append(obj)
    records = [rec for rec in person.records if rec.exists and not _gone(rec)]
    whole = Part(person.pid, person.email, records, deals, tickets, items, unreadable)
    if not (plain and "crossid_only_link" in person.cases):
        return [whole]
    return _split_hubspot(person, whole)


def _split_hubspot(person: Person, whole: Part) -> list[Part]:
    """The HubSpot records (linked to the rest only by the cross-CRM id) as a customer of their own."""
    def own(obj: Any) -> bool:
        return obj.system == HUBSPOT

    hubspot = [rec for rec in whole.records if own(rec)]
    contact = next(rec for rec in hubspot if rec.email)
    note = {"record": contact.source_key, "reason": CROSS_ID_LOSS}
    parts = []
    for suffix, mine in (("", lambda obj: not own(obj)), ("/hubspot", own)):
        part = Part(person.pid + suffix,
                    person.email if not suffix else (contact.email or "").strip().lower(),
                    [rec for rec in whole.records if mine(rec)], [d for d in whole.deals if mine(d)],
                    [t for t in whole.tickets if mine(t)], [i for i in whole.interactions if mine(i)],
                    [u for u in whole.unreadable if u["record"].startswith(HUBSPOT) == bool(suffix)] + [note],
                    split_from=person.pid)
        parts.append(part)
    return parts


def _gone_reason(obj: Any) -> str:
    removal: Removal = obj.removal
    if removal.event == "deleted":
        return "deleted before install; Dataverse keeps no deleted rows"
    return {HUBSPOT: "deleted more than 90 days before install: purged from HubSpot's recycle bin",
            SALESFORCE: "deleted more than 15 days before install: purged from Salesforce's recycle bin",
            DYNAMICS: "deleted before install"}[obj.system]
