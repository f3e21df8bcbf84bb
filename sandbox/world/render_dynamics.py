"""The plan → Dataverse (Dynamics 365): rows per entity set in Web API JSON shape, encoded as
docs/crm-conventions.md says. Lookups are `_x_value` GUIDs (targets are resolved by GUID), option sets ints,
datetimes `2024-02-01T10:00:00Z`; `versionnumber` grows with `modifiedon` across the whole world. A `plain` org
has no publisher-prefixed custom columns: a survey task keeps its (standard) `category` but not its score."""

from __future__ import annotations

import random
from typing import Any

from sandbox.dynamics.data import DynamicsData
from sandbox.world.ids import DAY, HOUR, iso_z
from sandbox.world.model import (
    CALL,
    DYNAMICS,
    EMAIL,
    MEETING,
    NOTE,
    REFERRAL,
    SURVEY,
    TASK,
    Deal,
    Interaction,
    Person,
    Plan,
    Record,
    Ticket,
)
from sandbox.world.people import phone_variant

PRIORITY = {"urgent": 1, "high": 1, "medium": 2, "low": 3}
STEPS = ["1-Qualify", "2-Develop", "3-Propose", "4-Close"]
LEAD_SOURCE = [1, 2, 3, 4, 6, 7, 8, 9, 10]
ENTITY_SETS = ("systemusers", "accounts", "contacts", "leads", "opportunities", "incidents", "phonecalls",
               "appointments", "emails", "tasks", "annotations")


class _Writer:
    def __init__(self, plan: Plan, org: str) -> None:
        self.plan = plan
        self.plain = org == "plain"
        self.rng = random.Random(f"{plan.seed}/dynamics")
        #: contact → the lead it was qualified from
        self.originating = {id(r.converted_to): r.remote_id for p in plan.people for r in p.records
                            if r.system == DYNAMICS and r.converted_to is not None}
        self.rows: dict[str, list[dict]] = {name: [] for name in ENTITY_SETS}
        self.ticket_number = 1000

    def add(self, entity_set: str, row: dict[str, Any], created: int, modified: int) -> None:
        row["createdon"] = iso_z(created)
        row["modifiedon"] = iso_z(max(created, modified))
        row["_sort"] = (max(created, modified), entity_set)
        self.rows[entity_set].append(row)


def _fullname(first: str | None, last: str | None) -> str | None:
    return " ".join(n for n in (first, last) if n) or None


def render_dynamics(plan: Plan, org: str = "full") -> Any:
    w = _Writer(plan, org)
    rng = w.rng
    for owner in plan.owners[DYNAMICS]:
        w.add("systemusers", {"systemuserid": owner.remote_id, "firstname": owner.first_name,
                              "lastname": owner.last_name, "fullname": f"{owner.first_name} {owner.last_name}",
                              "internalemailaddress": owner.email, "domainname": owner.email,
                              "isdisabled": False, "accessmode": 0}, owner.created, owner.created)
    for company in plan.companies:
        aid = company.remote_ids.get(DYNAMICS)
        if aid is None:
            continue
        created = company.created[DYNAMICS]
        w.add("accounts", {"accountid": aid, "name": company.name, "websiteurl": f"https://www.{company.domain}",
                           "telephone1": phone_variant(rng, company.phone, DYNAMICS),
                           "numberofemployees": company.employees, "statecode": 0, "statuscode": 1,
                           "_ownerid_value": company.owners[DYNAMICS].remote_id},
              created, min(plan.anchor - 60, created + rng.randint(HOUR, 60 * DAY)))
    for person in plan.people:
        for rec in person.records:
            if rec.system == DYNAMICS:
                _person_record(w, rec)
        for deal in person.deals:
            if deal.system == DYNAMICS:
                _opportunity(w, deal)
        for ticket in person.tickets:
            if ticket.system == DYNAMICS:
                _incident(w, ticket)
        for item in person.interactions:
            if item.system == DYNAMICS:
                _activity(w, person, item)
    for bad in plan.bad_records:
        if bad.system != DYNAMICS:
            continue
        row: dict[str, Any] = {"firstname": bad.first_name, "lastname": bad.last_name,
                               "fullname": _fullname(bad.first_name, bad.last_name), "emailaddress1": bad.email,
                               "telephone1": None, "statecode": 0, "statuscode": 1,
                               "_ownerid_value": bad.owner.remote_id if bad.owner else None}
        if bad.object_type == "leads":
            row = {"leadid": bad.remote_id, **row, "companyname": bad.company_name, "subject": "Website enquiry",
                   "leadsourcecode": 8}
        else:
            row = {"contactid": bad.remote_id, **row, "merged": False}
        w.add(bad.object_type, row, bad.created, bad.created)

    # versionnumber: a rowversion, increasing with every write across the organisation
    everything = [row for rows in w.rows.values() for row in rows]
    everything.sort(key=lambda row: row["_sort"])
    for number, row in enumerate(everything, start=1):
        row["versionnumber"] = 1_000_000 + number * 7
    for rows in w.rows.values():
        for row in rows:
            del row["_sort"]
    return DynamicsData(w.rows)


def _person_record(w: _Writer, rec: Record) -> None:
    owner = rec.owner.remote_id if rec.owner else None
    base: dict[str, Any] = {
        "firstname": rec.first_name, "lastname": rec.last_name, "fullname": _fullname(rec.first_name, rec.last_name),
        "emailaddress1": rec.email, "telephone1": rec.phone if rec.phone_field == "phone" else None,
        "mobilephone": rec.phone if rec.phone_field == "mobile" else None, "_ownerid_value": owner,
    }
    if rec.object_type == "contacts":
        originating = w.originating.get(id(rec))
        merged = rec.merged_into is not None
        row = {"contactid": rec.remote_id, **base,
               "_parentcustomerid_value": rec.company.remote_ids[DYNAMICS] if rec.company else None,
               "_originatingleadid_value": originating,
               "_masterid_value": rec.merged_into.remote_id if rec.merged_into is not None else None,
               "merged": merged, "statecode": 1 if merged else 0, "statuscode": 2 if merged else 1}
    else:
        qualified = rec.converted_to
        if qualified is not None:
            state, status = 1, 3
        else:
            state, status = w.rng.choice([(0, 1), (0, 2), (0, 2), (2, 6)])
        row = {"leadid": rec.remote_id, **base, "companyname": rec.company.name if rec.company else None,
               "subject": "Interested in " + w.rng.choice(["a demo", "pricing", "the premium plan", "a quote"]),
               "leadsourcecode": w.rng.choice(LEAD_SOURCE), "statecode": state, "statuscode": status,
               "_parentcontactid_value": qualified.remote_id if qualified is not None else None,
               "_parentaccountid_value": (qualified.company.remote_ids[DYNAMICS]
                                          if qualified is not None and qualified.company else None)}
    w.add(rec.object_type, row, rec.created, rec.modified)


def _opportunity(w: _Writer, deal: Deal) -> None:
    contact = deal.record
    assert contact is not None and contact.object_type == "contacts"
    account = contact.company.remote_ids[DYNAMICS] if contact.company else None
    if deal.outcome == "won":
        state, status, step, probability = 1, 3, STEPS[3], 100
    elif deal.outcome == "lost":
        state, status, step, probability = 2, w.rng.choice([4, 5]), w.rng.choice(STEPS), 0
    else:
        state, status, step = 0, w.rng.choice([1, 1, 2]), w.rng.choice(STEPS[:3])
        probability = {"1-Qualify": 20, "2-Develop": 50, "3-Propose": 75}[step]
    expected = deal.expected_close if deal.outcome == "open" else deal.closed
    w.add("opportunities", {
        "opportunityid": deal.remote_id, "name": deal.name, "estimatedvalue": deal.amount,
        "actualvalue": deal.amount if deal.outcome == "won" else None,
        "estimatedclosedate": iso_z(expected) if expected is not None else None,
        "actualclosedate": iso_z(deal.closed) if deal.closed is not None and deal.outcome != "open" else None,
        "statecode": state, "statuscode": status, "stepname": step, "closeprobability": probability,
        "_customerid_value": account or contact.remote_id, "_parentcontactid_value": contact.remote_id,
        "_parentaccountid_value": account, "_ownerid_value": deal.owner.remote_id if deal.owner else None,
    }, deal.created, deal.modified)


def _incident(w: _Writer, ticket: Ticket) -> None:
    contact = ticket.record
    assert contact is not None and contact.object_type == "contacts"
    w.ticket_number += 1
    suffix = "".join(w.rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(6))
    ticket.number = f"CAS-{w.ticket_number:05d}-{suffix}"
    origin = {"phone": 1, "email": 2, "web": 3, "social": w.rng.choice([2483, 3986])}[ticket.channel]
    closed = ticket.closed is not None
    w.add("incidents", {
        "incidentid": ticket.remote_id, "title": ticket.subject, "ticketnumber": ticket.number,
        "description": ticket.description, "prioritycode": PRIORITY[ticket.priority], "caseorigincode": origin,
        "statecode": 1 if closed else 0, "statuscode": 5 if closed else w.rng.choice([1, 2, 3, 4]),
        "_customerid_value": contact.remote_id, "_ownerid_value": ticket.owner.remote_id if ticket.owner else None,
    }, ticket.opened, ticket.modified)


def _activity(w: _Writer, person: Person, item: Interaction) -> None:
    rng = w.rng
    rec = item.record
    assert rec is not None
    owner = item.owner.remote_id if item.owner else None
    created = item.created if item.created is not None else item.time
    common = {"activityid": item.remote_id, "subject": item.subject[:200], "_regardingobjectid_value": rec.remote_id,
              "_ownerid_value": owner}
    if item.kind == NOTE:
        w.add("annotations", {"annotationid": item.remote_id, "subject": item.subject, "notetext": item.body,
                              "_objectid_value": rec.remote_id,
                              "objecttypecode": "contact" if rec.object_type == "contacts" else "lead",
                              "isdocument": False, "_ownerid_value": owner}, created, item.modified)
        return
    if item.kind == CALL:
        done = item.outcome == "completed"
        outgoing = item.direction == "out"
        minutes = rng.randint(1, 25) if done else 0
        number = rec.phone or (phone_variant(rng, person.phone, DYNAMICS) if person.phone else None)
        end = min(item.time + minutes * 60, w.plan.anchor)   # a call takes place at its start, as in every CRM
        w.add("phonecalls", {**common, "description": item.body or None, "directioncode": outgoing,
                             "statecode": 1 if done else 2, "statuscode": (2 if outgoing else 4) if done else 3,
                             "actualstart": iso_z(item.time), "actualend": iso_z(end),
                             "scheduledstart": iso_z(item.time), "scheduledend": iso_z(end),
                             "actualdurationminutes": (end - item.time) // 60, "phonenumber": number},
              created, item.modified)
    elif item.kind == MEETING:
        held = item.outcome == "held"
        assert item.outcome in ("held", "cancelled"), "Dataverse appointments are completed or canceled"
        end = item.end or item.time
        w.add("appointments", {**common, "description": item.body or None, "scheduledstart": iso_z(item.time),
                               "scheduledend": iso_z(end), "actualstart": iso_z(item.time) if held else None,
                               "actualend": iso_z(end) if held else None,
                               "actualdurationminutes": (end - item.time) // 60 if held else None,
                               "statecode": 1 if held else 2, "statuscode": 3 if held else 4,
                               "location": rng.choice(["Tel Aviv office", "Microsoft Teams", "Haifa office",
                                                       "Zoom"])}, created, item.modified)
    elif item.kind == EMAIL:
        outgoing = item.direction == "out"
        address = (rec.email or person.email).strip()
        rep = item.owner.email if item.owner else "service@journeyhub-demo.co.il"
        w.add("emails", {**common, "description": item.body, "directioncode": outgoing, "statecode": 1,
                         "statuscode": 3 if outgoing else 4, "actualend": iso_z(item.time),
                         "sender": rep if outgoing else address, "torecipients": address if outgoing else rep},
              created, item.modified)
    elif item.kind in (TASK, SURVEY, REFERRAL):
        done = item.kind != TASK or item.outcome == "completed"
        category = {SURVEY: "survey", REFERRAL: "referral"}.get(item.kind) or rng.choice([None, "follow-up"])
        row = {**common, "description": item.body or None, "category": category,
               "new_surveyscore": item.score if item.kind == SURVEY else None,
               "statecode": 1 if done else 0, "statuscode": 5 if done else 2,
               "actualend": iso_z(item.time) if done else None, "scheduledend": iso_z(item.time)}
        if w.plain:
            del row["new_surveyscore"]
        w.add("tasks", row, created, item.modified)
    else:  # pragma: no cover - the plan never puts other kinds in Dataverse
        raise ValueError(f"no Dataverse encoding for {item.kind}")
