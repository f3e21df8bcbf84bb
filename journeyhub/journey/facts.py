"""Loading customers' facts (records, deals, tickets, interactions) from the canonical database in batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection

from canonical.models import CustomerLink, Deal, Interaction, PersonRecord, SourceRecord, Ticket
from journeyhub.journey.lifecycle import CustomerFacts, DealFact, InteractionFact, PersonFact, TicketFact


def load_facts(connection: Connection, customer_ids: Sequence[str]) -> dict[str, CustomerFacts]:
    """Every fact of the given customers (a batch: callers chunk the ids to keep memory flat)."""
    facts = {customer_id: CustomerFacts(customer_id) for customer_id in customer_ids}
    for customer_id, person_id, created in _persons(connection, customer_ids):
        facts[customer_id].persons.append(PersonFact(person_id, created))
    linked = CustomerLink.customer_id.in_(customer_ids)
    for row in connection.execute(
            select(CustomerLink.customer_id, Deal.id, Deal.status, Deal.opened_at, Deal.closed_at)
            .join(Deal, Deal.id == CustomerLink.entity_id).where(linked)):
        facts[row[0]].deals.append(DealFact(*row[1:]))
    for row in connection.execute(
            select(CustomerLink.customer_id, Ticket.id, Ticket.opened_at, Ticket.channel)
            .join(Ticket, Ticket.id == CustomerLink.entity_id).where(linked)):
        facts[row[0]].tickets.append(TicketFact(*row[1:]))
    for row in connection.execute(
            select(CustomerLink.customer_id, Interaction.id, Interaction.kind, Interaction.channel,
                   Interaction.direction, Interaction.outcome, Interaction.occurred_at, Interaction.score,
                   Interaction.score_max)
            .join(Interaction, Interaction.id == CustomerLink.entity_id).where(linked)):
        facts[row[0]].interactions.append(InteractionFact(*row[1:]))
    return facts


def _persons(connection: Connection, customer_ids: Sequence[str]) -> list[tuple[str, str, Any]]:
    rows = connection.execute(
        select(PersonRecord.customer_id, PersonRecord.id, SourceRecord.remote_created_at, SourceRecord.first_seen_at)
        .join(SourceRecord, SourceRecord.id == PersonRecord.id).where(PersonRecord.customer_id.in_(customer_ids)))
    return [(customer_id, person_id, remote or seen) for customer_id, person_id, remote, seen in rows]
