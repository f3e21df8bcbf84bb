"""The plan → HubSpot: CRM objects (v3 shape, every property a string or null), v4 associations, owners,
pipelines and legacy marketing email events, encoded as docs/crm-conventions.md says. A `plain` portal has no
Service Hub feedback properties and no Salesforce integration, so surveys and cross-CRM ids are not stored."""

from __future__ import annotations

import random
from typing import Any

from sandbox.hubspot.data import HubSpotData, default_pipelines
from sandbox.world.ids import hubspot_time
from sandbox.world.model import (
    CALL,
    EMAIL,
    FORM,
    HUBSPOT,
    MARKETING,
    MEETING,
    NOTE,
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

PORTAL_ID = 4242
APP_ID = 113
OPEN_DEAL_STAGES = ["appointmentscheduled", "qualifiedtobuy", "presentationscheduled", "decisionmakerboughtin",
                    "contractsent"]
SOURCE_TYPE = {"chat": "CHAT", "email": "EMAIL", "web": "FORM", "phone": "PHONE"}
PRIORITY = {"low": "LOW", "medium": "MEDIUM", "high": "HIGH", "urgent": "URGENT"}
CALL_STATUS = {"completed": "COMPLETED", "no_answer": "NO_ANSWER", "busy": "BUSY"}
MEETING_OUTCOME = {"held": "COMPLETED", "cancelled": "CANCELED", "no_show": "NO_SHOW"}
CATEGORY = ["PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"]
# association type ids (HUBSPOT_DEFINED, one direction)
ASSOC = {("contacts", "companies"): 279, ("deals", "contacts"): 3, ("deals", "companies"): 341,
         ("tickets", "contacts"): 16, ("calls", "contacts"): 194, ("meetings", "contacts"): 200,
         ("notes", "contacts"): 202, ("tasks", "contacts"): 204, ("emails", "contacts"): 198,
         ("emails", "tickets"): 224}
ENGAGEMENT_TYPE = {CALL: "calls", MEETING: "meetings", NOTE: "notes", TASK: "tasks", EMAIL: "emails"}


def _ms(rng: random.Random) -> int:
    return rng.randint(0, 999)


def render_hubspot(plan: Plan, org: str = "full") -> Any:
    rng = random.Random(f"{plan.seed}/hubspot")
    objects: dict[str, list[dict]] = {name: [] for name in ("contacts", "companies", "deals", "tickets", "calls",
                                                             "meetings", "notes", "tasks", "emails")}
    associations: list[tuple[str, str, str, str, int]] = []
    events: list[dict] = []

    for company in plan.companies:
        cid = company.remote_ids.get(HUBSPOT)
        if cid is None:
            continue
        created = company.created[HUBSPOT]
        modified = min(plan.anchor - 60, created + rng.randint(3600, 30 * 86_400))
        objects["companies"].append(_obj(cid, created, modified, rng, {
            "name": company.name, "domain": company.domain, "website": f"https://www.{company.domain}",
            "industry": company.industry, "phone": phone_variant(rng, company.phone, HUBSPOT),
            "numberofemployees": str(company.employees), "hubspot_owner_id": company.owners[HUBSPOT].remote_id,
            "createdate": hubspot_time(created), "hs_lastmodifieddate": None,
        }, "hs_lastmodifieddate"))

    for person in plan.people:
        contact = next((r for r in person.records if r.system == HUBSPOT and r.exists), None)
        if contact is None:
            continue
        objects["contacts"].append(_contact(person, contact, rng, plain=org == "plain"))
        if contact.company is not None:
            associations.append(("contacts", contact.remote_id, "companies",
                                 contact.company.remote_ids[HUBSPOT], ASSOC[("contacts", "companies")]))
        for deal in person.deals:
            if deal.system == HUBSPOT:
                objects["deals"].append(_deal(deal, rng))
                associations.append(("deals", deal.remote_id, "contacts", contact.remote_id, 3))
                if contact.company is not None:
                    associations.append(("deals", deal.remote_id, "companies",
                                         contact.company.remote_ids[HUBSPOT], 341))
        for ticket in person.tickets:
            if ticket.system == HUBSPOT:
                objects["tickets"].append(_ticket(ticket, rng))
                associations.append(("tickets", ticket.remote_id, "contacts", contact.remote_id, 16))
        for item in person.interactions:
            if item.system != HUBSPOT:
                continue
            if item.kind == MARKETING:
                continue
            object_type = ENGAGEMENT_TYPE.get(item.kind)
            if object_type is None:      # forms and surveys live on the contact's properties
                continue
            objects[object_type].append(_engagement(item, rng))
            associations.append((object_type, item.remote_id, "contacts", contact.remote_id,
                                 ASSOC[(object_type, "contacts")]))
            if item.kind == EMAIL and item.ticket is not None:
                associations.append(("emails", item.remote_id, "tickets", item.ticket.remote_id, 224))
        events += _email_events(person, contact, rng)

    for bad in plan.bad_records:
        if bad.system == HUBSPOT:
            objects["contacts"].append(_obj(bad.remote_id, bad.created, bad.created, rng, {
                "email": bad.email, "firstname": bad.first_name, "lastname": bad.last_name, "phone": bad.phone,
                "hubspot_owner_id": bad.owner.remote_id if bad.owner else None, "createdate": hubspot_time(bad.created),
                "lastmodifieddate": None, "lifecyclestage": "lead"}, "lastmodifieddate"))
    events.sort(key=lambda e: (e["created"], e["id"]))
    owners = [{"id": o.remote_id, "email": o.email, "firstName": o.first_name, "lastName": o.last_name,
               "userId": o.user_id, "createdAt": hubspot_time(o.created), "updatedAt": hubspot_time(o.created),
               "archived": False} for o in plan.owners[HUBSPOT]]
    return HubSpotData(objects=objects, associations=associations, owners=owners,
                        pipelines=_pipelines(plan), email_events=events, properties={})


def _obj(oid: str, created: int, modified: int, rng: random.Random, props: dict[str, str | None],
         modified_prop: str) -> dict:
    updated = hubspot_time(modified, _ms(rng))
    props[modified_prop] = updated
    props["hs_object_id"] = oid
    return {"id": oid, "properties": props, "createdAt": props.get("createdate") or props.get("hs_createdate"),
            "updatedAt": updated, "archived": False}


def _contact(person: Person, rec: Record, rng: random.Random, *, plain: bool) -> dict:
    items = [i for i in person.interactions if i.record is rec]
    forms = sorted((i for i in items if i.kind == FORM), key=lambda i: i.time)
    surveys = sorted((i for i in items if i.kind == SURVEY), key=lambda i: i.time)
    deals = [d for d in person.deals if d.record is rec]
    props: dict[str, str | None] = {
        "email": rec.email, "firstname": rec.first_name, "lastname": rec.last_name,
        "phone": rec.phone if rec.phone_field == "phone" else None,
        "mobilephone": rec.phone if rec.phone_field == "mobile" else None,
        "company": rec.company.name if rec.company else None,
        "hubspot_owner_id": rec.owner.remote_id if rec.owner else None,
        "createdate": hubspot_time(rec.created), "lastmodifieddate": None,
        "lifecyclestage": _lifecycle(items, deals),
        "hs_lead_status": rng.choice(["NEW", "OPEN", "IN_PROGRESS", "CONNECTED", "ATTEMPTED_TO_CONTACT",
                                      "BAD_TIMING"]),
    }
    if forms:
        props.update({
            "first_conversion_date": hubspot_time(forms[0].time), "first_conversion_event_name": forms[0].subject,
            "recent_conversion_date": hubspot_time(forms[-1].time),
            "recent_conversion_event_name": forms[-1].subject, "num_conversion_events": str(len(forms)),
        })
    if surveys and not plain:
        props["hs_feedback_last_nps_rating"] = str(surveys[-1].score)
        props["hs_feedback_last_survey_date"] = hubspot_time(surveys[-1].time)
    for name, target in rec.cross_ids.items() if not plain else ():
        props[name] = target.remote_id
    if rec.merged_ids:
        props["hs_merged_object_ids"] = ";".join(m.remote_id for m in rec.merged_ids)
    return _obj(rec.remote_id, rec.created, rec.modified, rng, props, "lastmodifieddate")


def _lifecycle(items: list[Interaction], deals: list[Deal]) -> str:
    """HubSpot's own lifecycle stage, from what HubSpot alone knows (the hub must not rely on it)."""
    if any(d.outcome == "won" for d in deals):
        return "customer"
    if deals:
        return "opportunity"
    if any(i.kind in (CALL, MEETING) for i in items):
        return "salesqualifiedlead"
    if any(i.kind == FORM or (i.kind == MARKETING and i.outcome in ("open", "click")) for i in items):
        return "marketingqualifiedlead"
    if any(i.kind == MARKETING for i in items):
        return "subscriber"
    return "lead"


def _deal(deal: Deal, rng: random.Random) -> dict:
    if deal.outcome == "won":
        stage, close = "closedwon", deal.closed
    elif deal.outcome == "lost":
        stage, close = "closedlost", deal.closed
    else:
        stage, close = rng.choice(OPEN_DEAL_STAGES), deal.expected_close
    return _obj(deal.remote_id, deal.created, deal.modified, rng, {
        "dealname": deal.name, "amount": f"{deal.amount:.2f}", "deal_currency_code": deal.currency,
        "pipeline": "default", "dealstage": stage, "closedate": hubspot_time(close) if close is not None else None,
        "createdate": hubspot_time(deal.created), "hs_lastmodifieddate": None,
        "hs_is_closed": "false" if deal.outcome == "open" else "true",
        "hs_is_closed_won": "true" if deal.outcome == "won" else "false",
        "hubspot_owner_id": deal.owner.remote_id if deal.owner else None,
        "dealtype": "newbusiness" if rng.random() < 0.7 else "existingbusiness",
    }, "hs_lastmodifieddate")


def _ticket(ticket: Ticket, rng: random.Random) -> dict:
    stage = "4" if ticket.closed is not None else rng.choice(["1", "2", "3"])
    return _obj(ticket.remote_id, ticket.opened, ticket.modified, rng, {
        "subject": ticket.subject, "content": ticket.description, "hs_pipeline": "0", "hs_pipeline_stage": stage,
        "hs_ticket_priority": PRIORITY[ticket.priority], "hs_ticket_category": rng.choice(CATEGORY),
        "source_type": SOURCE_TYPE[ticket.channel], "createdate": hubspot_time(ticket.opened),
        "closed_date": hubspot_time(ticket.closed) if ticket.closed is not None else None,
        "hs_lastmodifieddate": None, "hubspot_owner_id": ticket.owner.remote_id if ticket.owner else None,
    }, "hs_lastmodifieddate")


def _engagement(item: Interaction, rng: random.Random) -> dict:
    created = item.created if item.created is not None else item.time
    props: dict[str, str | None] = {
        "hs_timestamp": hubspot_time(item.time), "hs_createdate": hubspot_time(created),
        "hs_lastmodifieddate": None, "hubspot_owner_id": item.owner.remote_id if item.owner else None,
    }
    if item.kind == CALL:
        seconds = rng.randint(60, 1500) if item.outcome == "completed" else 0
        props.update({"hs_call_title": item.subject, "hs_call_body": item.body or None,
                      "hs_call_direction": "INBOUND" if item.direction == "in" else "OUTBOUND",
                      "hs_call_status": CALL_STATUS[item.outcome or "completed"],
                      "hs_call_duration": str(seconds * 1000)})
    elif item.kind == MEETING:
        props.update({"hs_meeting_title": item.subject, "hs_meeting_body": item.body or None,
                      "hs_meeting_start_time": hubspot_time(item.time),
                      "hs_meeting_end_time": hubspot_time(item.end or item.time),
                      "hs_meeting_outcome": MEETING_OUTCOME[item.outcome or "held"]})
    elif item.kind == NOTE:
        props["hs_note_body"] = item.body
    elif item.kind == TASK:
        done = item.outcome == "completed"
        props.update({"hs_task_subject": item.subject, "hs_task_body": item.body or None,
                      "hs_task_status": "COMPLETED" if done else "NOT_STARTED",
                      "hs_task_type": rng.choice(["TODO", "CALL", "EMAIL"]),
                      "hs_task_priority": rng.choice(["LOW", "MEDIUM", "HIGH"])})
    elif item.kind == EMAIL:
        outgoing = item.direction == "out"
        props.update({"hs_email_subject": item.subject, "hs_email_text": item.body,
                      "hs_email_direction": "EMAIL" if outgoing else "INCOMING_EMAIL",
                      "hs_email_status": "SENT" if outgoing else None})
    return _obj(item.remote_id, created, item.modified, rng, props, "hs_lastmodifieddate")


def _email_events(person: Person, contact: Record, rng: random.Random) -> list[dict]:
    """Legacy email events (SENT → DELIVERED | BOUNCE, OPEN, CLICK) addressed to the contact's email."""
    items = sorted((i for i in person.interactions if i.kind == MARKETING), key=lambda i: i.time)
    if not items:
        return []
    assert contact.email is not None, "marketing events need the contact's email"
    sent_by: dict[int, dict] = {}
    events = []
    for item in items:
        # decisive events (OPEN, CLICK) on whole seconds, like every time the ground truth reports
        ms = item.time * 1000 + (rng.randint(0, 999) if item.outcome in ("sent", "delivered", "bounce") else 0)
        event: dict[str, Any] = {
            "id": _event_id(rng), "created": ms,
            "type": (item.outcome or "sent").upper(), "recipient": contact.email, "portalId": PORTAL_ID,
            "appId": APP_ID, "emailCampaignId": item.campaign,
        }
        if item.outcome == "sent":
            sent_by[item.campaign] = {"id": event["id"], "created": ms}
        else:
            event["sentBy"] = sent_by[item.campaign]
        if item.outcome == "click":
            event["url"] = f"https://www.journeyhub-demo.co.il/offers/{item.campaign}"
        elif item.outcome == "bounce":
            event["category"] = "HARD_BOUNCE" if rng.random() < 0.7 else "MAILBOX_FULL"
        elif item.outcome == "delivered":
            event["response"] = "250 2.0.0 OK"
        events.append(event)
    return events


def _event_id(rng: random.Random) -> str:
    """A random (seeded) UUID-shaped id, as HubSpot gives its email events."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _pipelines(plan: Plan) -> dict[str, list[dict]]:
    return default_pipelines(hubspot_time(plan.anchor - 729 * 86_400))
