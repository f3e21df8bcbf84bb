"""The plan → Salesforce: records per sObject in REST JSON shape (no "attributes"), encoded as
docs/crm-conventions.md says. Every record has an 18-character Id, CreatedDate ≤ LastModifiedDate ≤
SystemModstamp, IsDeleted; Contacts and Leads have MasterRecordId (merge losers: IsDeleted=true). A `plain` org
has none of the admin-made customisations: no `*__c` fields and no Survey/Referral/Review Task types, so such
tasks are plain "Other" tasks there."""

from __future__ import annotations

import random
from typing import Any

from sandbox.salesforce.data import SalesforceData
from sandbox.world.ids import DAY, HOUR, date_only, salesforce_time, sf_id
from sandbox.world.model import (
    CALL,
    EMAIL,
    MEETING,
    NOTE,
    REFERRAL,
    REVIEW,
    SALESFORCE,
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

OPEN_STAGES = [("Prospecting", 10), ("Qualification", 10), ("Needs Analysis", 20), ("Value Proposition", 50),
               ("Proposal/Price Quote", 75), ("Negotiation/Review", 90)]
LEAD_SOURCES = ["Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other"]
INDUSTRY = {"COMPUTER_SOFTWARE": "Technology", "INFORMATION_TECHNOLOGY_AND_SERVICES": "Technology",
            "LOGISTICS_AND_SUPPLY_CHAIN": "Transportation", "FOOD_BEVERAGES": "Food & Beverage",
            "HOSPITAL_HEALTH_CARE": "Healthcare", "FINANCIAL_SERVICES": "Finance",
            "MARKETING_AND_ADVERTISING": "Media", "RETAIL": "Retail", "UTILITIES": "Utilities",
            "INSURANCE": "Insurance", "AUTOMOTIVE": "Manufacturing", "E_LEARNING": "Education",
            "HOSPITALITY": "Hospitality", "TELECOMMUNICATIONS": "Telecommunications",
            "PHARMACEUTICALS": "Biotechnology"}
ORIGIN = {"phone": "Phone", "email": "Email", "web": "Web", "chat": "Chat", "social": "Web"}
PRIORITY = {"low": "Low", "medium": "Medium", "high": "High", "urgent": "High"}
DISPOSITION = {"completed": "Completed", "no_answer": "No Answer", "busy": "Busy"}
PROFILE_ID = sf_id("00e", 1)


class _Writer:
    def __init__(self, plan: Plan, org: str) -> None:
        self.plan = plan
        self.plain = org == "plain"
        self.rng = random.Random(f"{plan.seed}/salesforce")
        self.admin = plan.owners[SALESFORCE][0].remote_id
        self.records: dict[str, list[dict]] = {name: [] for name in (
            "User", "Account", "Contact", "Lead", "Opportunity", "OpportunityContactRole", "Case", "Task", "Event",
            "EmailMessage")}
        self.case_number = 1000

    def audit(self, created: int, modified: int, owner: str | None = None) -> dict[str, Any]:
        modified = max(modified, created)
        stamp = min(self.plan.anchor - 1, modified + self.rng.choice([0, 0, 0, 1, 60, 3600, DAY]))
        stamp = max(stamp, modified)
        who = owner or self.admin
        return {"CreatedDate": salesforce_time(created), "CreatedById": who,
                "LastModifiedDate": salesforce_time(modified), "LastModifiedById": who,
                "SystemModstamp": salesforce_time(stamp), "IsDeleted": False}

    def add(self, sobject: str, record: dict[str, Any]) -> None:
        self.records[sobject].append(record)


def render_salesforce(plan: Plan, org: str = "full") -> Any:
    w = _Writer(plan, org)
    rng = w.rng
    for owner in plan.owners[SALESFORCE]:
        alias = (owner.first_name[:1] + owner.last_name[:7]).lower()
        w.add("User", {"Id": owner.remote_id, "Username": owner.email.replace(".co.il", ".sandbox"),
                       "FirstName": owner.first_name, "LastName": owner.last_name,
                       "Name": f"{owner.first_name} {owner.last_name}", "Email": owner.email, "Alias": alias,
                       "IsActive": True, "TimeZoneSidKey": "Asia/Jerusalem", "LocaleSidKey": "en_IL",
                       "EmailEncodingKey": "UTF-8", "LanguageLocaleKey": "en_US", "ProfileId": PROFILE_ID,
                       "UserType": "Standard", **_without_deleted(w.audit(owner.created, owner.created))})
    for company in plan.companies:
        aid = company.remote_ids.get(SALESFORCE)
        if aid is None:
            continue
        created = company.created[SALESFORCE]
        w.add("Account", {"Id": aid, "Name": company.name, "Website": f"https://www.{company.domain}",
                          "Industry": INDUSTRY.get(company.industry, "Other"),
                          "Phone": phone_variant(rng, company.phone, SALESFORCE),
                          "NumberOfEmployees": company.employees, "OwnerId": company.owners[SALESFORCE].remote_id,
                          "MasterRecordId": None,
                          **w.audit(created, min(plan.anchor - 60, created + rng.randint(HOUR, 60 * DAY)))})
    for person in plan.people:
        for rec in person.records:
            if rec.system == SALESFORCE:
                _person_record(w, person, rec)
        for deal in person.deals:
            if deal.system == SALESFORCE:
                _opportunity(w, deal)
        for ticket in person.tickets:
            if ticket.system == SALESFORCE:
                _case(w, ticket)
        for item in person.interactions:
            if item.system == SALESFORCE:
                _activity(w, person, item)
    for bad in plan.bad_records:
        if bad.system != SALESFORCE:
            continue
        row: dict[str, Any] = {"Id": bad.remote_id, "FirstName": bad.first_name, "LastName": bad.last_name,
                               "Name": " ".join(n for n in (bad.first_name, bad.last_name) if n) or None,
                               "Email": bad.email, "Phone": None, "OwnerId": bad.owner.remote_id if bad.owner else None,
                               "MasterRecordId": None, "LeadSource": "Other", **w.audit(bad.created, bad.created)}
        if bad.object_type == "Lead":
            row.update({"Company": bad.company_name or "Individual", "Status": "Open - Not Contacted",
                        "IsConverted": False})
        w.add(bad.object_type, row)
    return SalesforceData(w.records)


def _without_deleted(audit: dict[str, Any]) -> dict[str, Any]:
    audit.pop("IsDeleted")      # User has no IsDeleted
    return audit


def _person_record(w: _Writer, person: Person, rec: Record) -> None:
    rng = w.rng
    name = " ".join(n for n in (rec.first_name, rec.last_name) if n) or None
    row: dict[str, Any] = {
        "Id": rec.remote_id, "FirstName": rec.first_name, "LastName": rec.last_name, "Name": name,
        "Email": rec.email, "Phone": rec.phone if rec.phone_field == "phone" else None,
        "MobilePhone": rec.phone if rec.phone_field == "mobile" else None,
        "OwnerId": rec.owner.remote_id if rec.owner else w.admin, "LeadSource": rng.choice(LEAD_SOURCES),
        "MasterRecordId": rec.merged_into.remote_id if rec.merged_into is not None else None,
        **w.audit(rec.created, rec.modified, rec.owner.remote_id if rec.owner else None),
    }
    if rec.merged_into is not None:
        row["IsDeleted"] = True
    if rec.object_type == "Contact":
        row["AccountId"] = rec.company.remote_ids[SALESFORCE] if rec.company else None
    else:
        converted = rec.converted_to
        row.update({
            "Company": rec.company.name if rec.company else "Individual",
            "IsConverted": converted is not None,
            "Status": "Closed - Converted" if converted is not None else rng.choice(
                ["Open - Not Contacted", "Working - Contacted", "Working - Contacted", "Closed - Not Converted"]),
            "ConvertedContactId": converted.remote_id if converted is not None else None,
            "ConvertedAccountId": (converted.company.remote_ids[SALESFORCE]
                                   if converted is not None and converted.company else None),
            "ConvertedDate": date_only(rec.converted_at) if rec.converted_at is not None else None,
            "ConvertedOpportunityId": None,
        })
        if converted is not None:
            first = min((d for d in person.deals if d.record is converted), key=lambda d: d.created, default=None)
            if first is not None and rec.converted_at is not None and first.created - rec.converted_at < HOUR:
                row["ConvertedOpportunityId"] = first.remote_id
    w.add(rec.object_type, row)


def _opportunity(w: _Writer, deal: Deal) -> None:
    rng = w.rng
    contact = deal.record
    assert contact is not None and contact.object_type == "Contact"
    if deal.outcome == "won":
        stage, probability, close = "Closed Won", 100, deal.closed
    elif deal.outcome == "lost":
        stage, probability, close = "Closed Lost", 0, deal.closed
    else:
        stage, probability = rng.choice(OPEN_STAGES)
        close = deal.expected_close
    assert close is not None
    account = contact.company.remote_ids[SALESFORCE] if contact.company else None
    owner = deal.owner.remote_id if deal.owner else w.admin
    w.add("Opportunity", {
        "Id": deal.remote_id, "Name": deal.name[:120], "StageName": stage, "CloseDate": date_only(close),
        "Amount": deal.amount, "Probability": probability, "AccountId": account, "OwnerId": owner,
        "IsClosed": deal.outcome != "open", "IsWon": deal.outcome == "won",
        "ForecastCategoryName": {"Closed Won": "Closed", "Closed Lost": "Omitted"}.get(stage, "Pipeline"),
        "Type": rng.choice(["New Customer", "Existing Customer - Upgrade"]), "IsPrivate": False,
        **w.audit(deal.created, deal.modified, owner),
    })
    w.add("OpportunityContactRole", {
        "Id": deal.role_id, "OpportunityId": deal.remote_id, "ContactId": contact.remote_id,
        "Role": "Decision Maker", "IsPrimary": True, **w.audit(deal.created, deal.created, owner),
    })


def _case(w: _Writer, ticket: Ticket) -> None:
    w.case_number += 1
    contact = ticket.record
    assert contact is not None and contact.object_type == "Contact"
    ticket.number = f"{w.case_number:08d}"
    closed = ticket.closed is not None
    owner = ticket.owner.remote_id if ticket.owner else w.admin
    w.add("Case", {
        "Id": ticket.remote_id, "CaseNumber": ticket.number, "Subject": ticket.subject,
        "Description": ticket.description,
        "Status": "Closed" if closed else w.rng.choice(["New", "Working", "Escalated"]),
        "Priority": PRIORITY[ticket.priority], "Origin": ORIGIN[ticket.channel], "ContactId": contact.remote_id,
        "AccountId": contact.company.remote_ids[SALESFORCE] if contact.company else None, "IsClosed": closed,
        "ClosedDate": salesforce_time(ticket.closed) if ticket.closed is not None else None, "OwnerId": owner,
        "MasterRecordId": None, **w.audit(ticket.opened, ticket.modified, owner),
    })


def _activity(w: _Writer, person: Person, item: Interaction) -> None:
    rng = w.rng
    rec = item.record
    assert rec is not None
    owner = item.owner.remote_id if item.owner else w.admin
    created = item.created if item.created is not None else item.time
    audit = w.audit(created, item.modified, owner)
    if item.kind == MEETING:
        assert item.outcome == "held", "a Salesforce Event always took place"
        end = item.end or item.time
        w.add("Event", {"Id": item.remote_id, "WhoId": rec.remote_id, "WhatId": None, "Subject": item.subject,
                        "StartDateTime": salesforce_time(item.time), "EndDateTime": salesforce_time(end),
                        "ActivityDateTime": salesforce_time(item.time), "ActivityDate": date_only(item.time),
                        "DurationInMinutes": (end - item.time) // 60, "IsAllDayEvent": False, "Type": "Meeting",
                        "Description": item.body or None, "OwnerId": owner, **audit})
        return
    if item.kind == EMAIL:
        person_address = (rec.email or person.email).strip()
        rep_address = item.owner.email if item.owner else "sales@journeyhub-demo.co.il"
        incoming = item.direction == "in"
        w.add("EmailMessage", {
            "Id": item.remote_id, "ParentId": item.ticket.remote_id if item.ticket else None,
            "RelatedToId": rec.remote_id, "Subject": item.subject, "TextBody": item.body,
            "FromAddress": person_address if incoming else rep_address,
            "FromName": f"{person.first_name} {person.last_name}" if incoming else None,
            "ToAddress": rep_address if incoming else person_address, "MessageDate": salesforce_time(item.time),
            "Incoming": incoming, "Status": "1" if incoming else "3", **audit})
        return
    row: dict[str, Any] = {
        "Id": item.remote_id, "WhoId": rec.remote_id, "WhatId": None, "Subject": item.subject,
        "ActivityDate": date_only(item.time), "Status": "Completed", "Priority": "Normal", "OwnerId": owner,
        "Description": item.body or None, "IsClosed": True, "TaskSubtype": "Task", "Type": "Other",
        "CompletedDateTime": salesforce_time(item.time), **audit,
    }
    if item.kind == CALL:
        row.update({"TaskSubtype": "Call", "Type": "Call",
                    "CallType": "Inbound" if item.direction == "in" else "Outbound",
                    "CallDisposition": DISPOSITION[item.outcome or "completed"],
                    "CallDurationInSeconds": rng.randint(60, 1500) if item.outcome == "completed" else 0})
    elif item.kind == NOTE:
        row["Subject"] = "Note: " + item.subject
    elif item.kind == TASK:
        if item.outcome != "completed":
            row.update({"Status": rng.choice(["Not Started", "In Progress"]), "IsClosed": False,
                        "CompletedDateTime": None})
    elif item.kind in (SURVEY, REFERRAL, REVIEW) and w.plain:
        pass                     # logged as an ordinary task: the org has no type or field for it
    elif item.kind == SURVEY:
        row.update({"Type": "Survey", "Survey_Score__c": item.score})
    elif item.kind == REFERRAL:
        row["Type"] = "Referral"
    elif item.kind == REVIEW:
        row.update({"Type": "Review", "Review_Rating__c": item.rating})
    else:  # pragma: no cover - the plan never puts other kinds in Salesforce
        raise ValueError(f"no Salesforce encoding for {item.kind}")
    w.add("Task", row)
