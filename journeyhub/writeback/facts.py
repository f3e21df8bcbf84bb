"""What write-back reads from the canonical database: targets, journey values and timeline items."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Connection

from canonical.models import (
    Customer,
    CustomerLink,
    Deal,
    Interaction,
    PersonRecord,
    SourceRecord,
    StageHistory,
    Ticket,
    WritebackLedger,
)


@dataclass(frozen=True, slots=True)
class Target:
    """A customer's record in one CRM that receives the journey fields (and, if primary, mirrored items)."""

    customer_id: str
    system: str
    object_type: str
    remote_id: str
    raw: dict[str, Any] | None
    last_seen_at: datetime | None
    primary: bool


@dataclass(frozen=True, slots=True)
class TimelineItem:
    """One interaction, deal milestone or ticket event as write-back mirrors it."""

    key: str            # source key (+ #milestone for deal/ticket events)
    system: str
    kind: str
    channel: str | None
    direction: str | None
    outcome: str | None
    occurred_at: datetime
    title: str | None
    detail: str | None


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    remote_id: str | None
    content_hash: str | None
    payload: dict[str, Any] | None
    status: str
    last_pushed_at: datetime | None
    attempts: int


def live_customers(connection: Connection) -> list[str]:
    return list(connection.execute(select(Customer.id).where(Customer.merged_into_id.is_(None))
                                   .order_by(Customer.id)).scalars())


def targets(connection: Connection, system: str, object_types: Sequence[str],
            customer_ids: Sequence[str]) -> list[Target]:
    """Live, unconverted person records of these customers in one CRM; per customer the primary one is a
    contact before a lead, then the most recently modified."""
    rows = connection.execute(
        select(PersonRecord.customer_id, SourceRecord.object_type, SourceRecord.remote_id, SourceRecord.raw,
               SourceRecord.last_seen_at, PersonRecord.kind, SourceRecord.remote_updated_at)
        .join(SourceRecord, SourceRecord.id == PersonRecord.id)
        .where(PersonRecord.customer_id.in_(customer_ids), SourceRecord.system == system,
               SourceRecord.object_type.in_(object_types), SourceRecord.is_deleted.is_(False),
               PersonRecord.converted_to.is_(None))).all()
    by_customer: dict[str, list[Any]] = defaultdict(list)
    for row in rows:
        by_customer[row[0]].append(row)
    result = []
    for customer_id, records in by_customer.items():
        ordered = sorted(records, key=lambda r: (r[5] != "contact", -(r[6].timestamp() if r[6] else 0), r[2]))
        result += [Target(customer_id, system, r[1], r[2], r[3], r[4], index == 0) for index, r in enumerate(ordered)]
    return result


def journey_values(connection: Connection, customer_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The hub's values per customer, named as `writeback.yaml`'s `value:` keys."""
    values: dict[str, dict[str, Any]] = {}
    rows = connection.execute(
        select(Customer.id, StageHistory.stage, StageHistory.entered_at, Customer.segment,
               Customer.last_interaction_at, Customer.last_interaction_channel)
        .outerjoin(StageHistory, and_(StageHistory.customer_id == Customer.id, StageHistory.exited_at.is_(None)))
        .where(Customer.id.in_(customer_ids)))
    for customer_id, stage, entered, segment, last_at, last_channel in rows:
        values[customer_id] = {"customer_id": customer_id, "stage": stage, "stage_entered_at": entered,
                               "segment": segment, "last_interaction_at": last_at,
                               "last_interaction_channel": last_channel, "email_opens": 0, "email_clicks": 0,
                               "last_email_open_at": None, "last_email_click_at": None}
    engagement = connection.execute(
        select(CustomerLink.customer_id, Interaction.outcome, func.count(), func.max(Interaction.occurred_at))
        .join(Interaction, Interaction.id == CustomerLink.entity_id)
        .where(CustomerLink.customer_id.in_(customer_ids), Interaction.kind == "marketing_email",
               Interaction.outcome.in_(["opened", "clicked"]))
        .group_by(CustomerLink.customer_id, Interaction.outcome))
    for customer_id, outcome, count, latest in engagement:
        name = "open" if outcome == "opened" else "click"
        values[customer_id][f"email_{name}s"] = count
        values[customer_id][f"last_email_{name}_at"] = _aware(latest)
    return values


def _aware(value: Any) -> Any:
    """Aggregates over typed columns come back untyped on SQLite (text); read them as timestamps."""
    if isinstance(value, str):
        from journeyhub.ingest.transforms import parse_datetime

        return parse_datetime(value)
    return value


def timeline(connection: Connection, customer_ids: Sequence[str]) -> dict[str, list[TimelineItem]]:
    """Every customer's interactions, deal milestones and ticket events, newest first."""
    items: dict[str, list[TimelineItem]] = defaultdict(list)
    linked = CustomerLink.customer_id.in_(customer_ids)
    for row in connection.execute(
            select(CustomerLink.customer_id, Interaction.id, SourceRecord.system, Interaction.kind,
                   Interaction.channel, Interaction.direction, Interaction.outcome, Interaction.occurred_at,
                   Interaction.subject, Interaction.body)
            .join(Interaction, Interaction.id == CustomerLink.entity_id)
            .join(SourceRecord, SourceRecord.id == Interaction.id).where(linked)):
        if row[7] is not None:
            items[row[0]].append(TimelineItem(*row[1:]))
    for row in connection.execute(
            select(CustomerLink.customer_id, Deal.id, SourceRecord.system, Deal.name, Deal.status, Deal.opened_at,
                   Deal.closed_at, Deal.amount, Deal.currency, Deal.stage_label)
            .join(Deal, Deal.id == CustomerLink.entity_id).join(SourceRecord, SourceRecord.id == Deal.id)
            .where(linked)):
        customer, deal_id, system, name, status, opened, closed, amount, currency, stage = row
        money = f"{amount:,.0f} {currency or ''}".strip() if amount is not None else None
        detail = " · ".join(part for part in (money, stage) if part) or None
        if opened is not None:
            items[customer].append(TimelineItem(f"{deal_id}#created", system, "deal_created", None, None, None,
                                                opened, name, detail))
        if status in ("won", "lost") and closed is not None:
            items[customer].append(TimelineItem(f"{deal_id}#{status}", system, f"deal_{status}", None, None, None,
                                                closed, name, detail))
    for row in connection.execute(
            select(CustomerLink.customer_id, Ticket.id, SourceRecord.system, Ticket.subject, Ticket.channel,
                   Ticket.opened_at, Ticket.closed_at, Ticket.status, Ticket.priority)
            .join(Ticket, Ticket.id == CustomerLink.entity_id).join(SourceRecord, SourceRecord.id == Ticket.id)
            .where(linked)):
        customer, ticket_id, system, subject, channel, opened, closed, status, priority = row
        detail = " · ".join(part for part in (status, priority) if part) or None
        if opened is not None:
            items[customer].append(TimelineItem(f"{ticket_id}#opened", system, "ticket_opened", channel or "support",
                                                "inbound", None, opened, subject, detail))
        if closed is not None:
            items[customer].append(TimelineItem(f"{ticket_id}#closed", system, "ticket_closed", channel or "support",
                                                "outbound", None, closed, subject, detail))
    for entries in items.values():
        entries.sort(key=lambda item: (item.occurred_at, item.key), reverse=True)
    return items


def ledger(connection: Connection, system: str, target_ids: Sequence[str]) -> dict[tuple[str, str, str], LedgerEntry]:
    """`{(target object type, target id, item key): entry}` for these targets."""
    rows = connection.execute(
        select(WritebackLedger.target_object_type, WritebackLedger.target_remote_id, WritebackLedger.item_key,
               WritebackLedger.remote_id, WritebackLedger.content_hash, WritebackLedger.payload,
               WritebackLedger.status, WritebackLedger.last_pushed_at, WritebackLedger.attempts)
        .where(WritebackLedger.system == system, WritebackLedger.target_remote_id.in_(target_ids)))
    return {(row[0], row[1], row[2]): LedgerEntry(*row[3:]) for row in rows}
