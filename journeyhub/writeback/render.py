"""CRM-neutral pieces of what the hub writes: hub values in their declared types, comparable forms of the
values a CRM returns, the marker of a mirrored item, and the item as a `MirroredItem`. How a CRM spells any
of it is its connector's business (`Connector.format_value`, `field_value`, `mirror_fields`)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

from connectors.base import MISSING, FieldType, MirroredItem
from journeyhub.ingest.transforms import parse_datetime
from journeyhub.writeback.facts import Target, TimelineItem

KIND_LABEL = {
    "email": "Email", "call": "Call", "meeting": "Meeting", "chat": "Chat", "sms": "SMS", "social": "Social message",
    "form_submission": "Form submission", "survey_response": "Survey answer", "referral": "Referral",
    "review": "Review", "note": "Note", "task": "Task", "deal_created": "Deal opened", "deal_won": "Deal won",
    "deal_lost": "Deal lost", "ticket_opened": "Ticket opened", "ticket_closed": "Ticket closed",
}


def hub_value(field_type: FieldType, value: Any) -> Any:
    """A journey value in its declared type, what connectors format: an aware UTC datetime, an int (a
    whole number) or float, or the value as it is for text; None stays None."""
    if value is None:
        return None
    if field_type == "datetime":
        return value.astimezone(UTC) if isinstance(value, datetime) else parse_datetime(value)
    if field_type == "number":
        return int(value) if float(value).is_integer() else float(value)
    return value


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


def headline(item: TimelineItem, source_label: str) -> str:
    """What happened and where, e.g. "Call (outbound, connected) in Salesforce"."""
    label = KIND_LABEL.get(item.kind, item.kind.replace("_", " ").capitalize())
    details = ", ".join(part for part in (item.direction, item.outcome) if part)
    return f"{label}{f' ({details})' if details else ''} in {source_label}"


def mirrored(item: TimelineItem, source_label: str, marker_field: str, item_marker: str) -> MirroredItem:
    return MirroredItem(headline=headline(item, source_label), title=item.title or "", detail=item.detail or "",
                        occurred_at=item.occurred_at.astimezone(UTC), marker_field=marker_field, marker=item_marker)
