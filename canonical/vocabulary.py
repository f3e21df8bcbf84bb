"""The closed vocabularies of the canonical model (journey.md's channels; systems; kinds and outcomes).

Mappings must produce these values (their `map` transforms translate each CRM's picklists into them), so
lifecycle rules and downstream SQL can rely on them whatever CRM a fact came from.
"""

from enum import StrEnum


class System(StrEnum):
    hubspot = "hubspot"
    salesforce = "salesforce"
    dynamics = "dynamics"


class Channel(StrEnum):
    email = "email"
    phone = "phone"
    meeting = "meeting"
    web = "web"
    social = "social"
    paid_ad = "paid_ad"
    chat = "chat"
    sms = "sms"
    support = "support"
    in_store = "in_store"
    other = "other"


class Direction(StrEnum):
    inbound = "inbound"
    outbound = "outbound"


class DealStatus(StrEnum):
    open = "open"
    won = "won"
    lost = "lost"


class InteractionKind(StrEnum):
    email = "email"
    marketing_email = "marketing_email"
    call = "call"
    meeting = "meeting"
    note = "note"
    task = "task"
    chat = "chat"
    sms = "sms"
    social = "social"
    form_submission = "form_submission"
    survey_response = "survey_response"
    referral = "referral"
    review = "review"
    other = "other"


class Outcome(StrEnum):
    completed = "completed"
    scheduled = "scheduled"
    rescheduled = "rescheduled"
    cancelled = "cancelled"
    no_show = "no_show"
    no_answer = "no_answer"
    busy = "busy"
    failed = "failed"
    not_started = "not_started"
    in_progress = "in_progress"
    waiting = "waiting"
    deferred = "deferred"
    sent = "sent"
    delivered = "delivered"
    opened = "opened"
    clicked = "clicked"
    replied = "replied"
    forwarded = "forwarded"
    bounced = "bounced"
    dropped = "dropped"
    unsubscribed = "unsubscribed"
    spam_report = "spam_report"
    received = "received"
    other = "other"


class PersonKind(StrEnum):
    contact = "contact"
    lead = "lead"
