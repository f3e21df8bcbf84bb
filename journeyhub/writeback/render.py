"""How hub values and timeline items look in each CRM: value formats, raw-value lookup, mirrored items."""

from __future__ import annotations

import hashlib
import html
from datetime import UTC, datetime
from typing import Any

from journeyhub.ingest.transforms import parse_datetime
from journeyhub.writeback.facts import Target, TimelineItem

MISSING: Any = object()
SYSTEM_LABEL = {"hubspot": "HubSpot", "salesforce": "Salesforce", "dynamics": "Dynamics 365"}
KIND_LABEL = {
    "email": "Email", "call": "Call", "meeting": "Meeting", "chat": "Chat", "sms": "SMS", "social": "Social message",
    "form_submission": "Form submission", "survey_response": "Survey answer", "referral": "Referral",
    "review": "Review", "note": "Note", "task": "Task", "deal_created": "Deal opened", "deal_won": "Deal won",
    "deal_lost": "Deal lost", "ticket_opened": "Ticket opened", "ticket_closed": "Ticket closed",
}
#: how each CRM receives mirrored items: HubSpot notes are created then updated by id; Salesforce Tasks and
#: Dataverse tasks are upserted by their external-id field (idempotent even without the ledger)
MIRROR_WRITE = {"hubspot": "create", "salesforce": "upsert", "dynamics": "upsert"}
HUBSPOT_NOTE_LIMIT = 65_000


def format_value(system: str, field_type: str, value: Any) -> Any:
    """A hub value in the form the CRM's API takes."""
    if value is None:
        return "" if system == "hubspot" else None
    if field_type == "datetime":
        moment = value.astimezone(UTC) if isinstance(value, datetime) else parse_datetime(value)
        if system == "dynamics":
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if field_type == "number":
        number = int(value) if float(value).is_integer() else float(value)
        return str(number) if system == "hubspot" else number
    return str(value)


def raw_value(system: str, raw: dict[str, Any] | None, field: str) -> Any:
    """The field's value in the record as last pulled, or MISSING when the pull did not read it."""
    if not raw:
        return MISSING
    source = raw.get("properties", {}) if system == "hubspot" else raw
    return source.get(field, MISSING)


def normalized(field_type: str, value: Any) -> Any:
    """Comparable form: the same instant, number or text whatever format the CRM returned it in."""
    if value is None or value == "" or value is MISSING:
        return None
    try:
        if field_type == "datetime":
            return parse_datetime(value).replace(microsecond=0)
        if field_type == "number":
            return float(value)
    except (TypeError, ValueError):
        return str(value).strip()
    return str(value).strip()


def marker(system: str, target: Target, item_key: str) -> str:
    """The loop-safety marker and idempotency key of a mirrored item in one target record."""
    digest = hashlib.sha1(f"{item_key}|{system}:{target.object_type}:{target.remote_id}".encode()).hexdigest()
    return f"jh:{digest[:32]}"


def _headline(item: TimelineItem) -> str:
    label = KIND_LABEL.get(item.kind, item.kind.replace("_", " ").capitalize())
    details = ", ".join(part for part in (item.direction, item.outcome) if part)
    return f"{label}{f' ({details})' if details else ''} in {SYSTEM_LABEL.get(item.system, item.system)}"


def item_fields(system: str, item: TimelineItem, item_marker: str, marker_field: str) -> dict[str, Any]:
    """The CRM-native fields of a mirrored item (the marker travels in `marker_field`)."""
    headline, title, detail = _headline(item), item.title or "", item.detail or ""
    when = item.occurred_at.astimezone(UTC)
    if system == "hubspot":
        body = (f"<p><strong>Journey Hub</strong> · {html.escape(headline)}</p>"
                + (f"<p>{html.escape(title)}</p>" if title else "")
                + (f"<p>{html.escape(detail)}</p>" if detail else ""))
        return {"hs_timestamp": format_value(system, "datetime", when), "hs_note_body": body[:HUBSPOT_NOTE_LIMIT],
                marker_field: item_marker}
    text = f"{title}\n\n{detail}".strip()
    if system == "salesforce":
        return {"Subject": f"[Journey Hub] {headline}: {title}"[:255], "Description": text[:32_000] or headline,
                "ActivityDate": when.date().isoformat(), "Status": "Completed", "Priority": "Normal"}
    return {"subject": f"[Journey Hub] {headline}: {title}"[:200], "description": text[:100_000] or headline,
            "actualend": format_value(system, "datetime", when), "scheduledend": format_value(system, "datetime", when),
            "statecode": 1, "statuscode": 5}
