"""Loading customers' facts (records, deals, tickets, interactions) from the canonical database in batches.

Plain SQL with the timestamps parsed here: a full tagging pass reads every interaction once, and the ORM's
per-value type processing would cost more than the evaluation itself.

Records deleted in their CRM count as evidence like live ones (journey.md: history does not shrink): their
canonical rows stay (tombstones keep their last data where the CRM keeps it), so nothing here filters on
`source_record.is_deleted`. What stops counting is a relation its CRM removed — a deal's association dropped,
a contact role deleted while its Opportunity lives (`customer_link` skips deleted associations); a relation
deleted together with the record it hangs off stays live (journeyhub/ingest/loader.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy.engine import Connection

from journeyhub.journey.dbio import fetch_rows, ids_parameters, in_ids
from journeyhub.journey.lifecycle import CustomerFacts

PERSONS = """SELECT p.customer_id, p.id, COALESCE(s.remote_created_at, s.first_seen_at)
  FROM person_record p JOIN source_record s ON s.id = p.id WHERE p.customer_id {ids} ORDER BY p.customer_id"""
DEALS = """SELECT l.customer_id, d.id, d.status, d.opened_at, d.closed_at
  FROM customer_link l JOIN deal d ON d.id = l.entity_id WHERE l.customer_id {ids} ORDER BY l.customer_id"""
TICKETS = """SELECT l.customer_id, t.id, t.opened_at, t.channel
  FROM customer_link l JOIN ticket t ON t.id = l.entity_id WHERE l.customer_id {ids} ORDER BY l.customer_id"""
INTERACTIONS = """SELECT l.customer_id, i.id, i.kind, i.channel, i.direction, i.outcome, i.occurred_at, i.score,
       i.score_max
  FROM customer_link l JOIN interaction i ON i.id = l.entity_id WHERE l.customer_id {ids} ORDER BY l.customer_id"""


def moment(value: Any) -> datetime | None:
    """A stored timestamp as an aware UTC datetime (ISO text on SQLite, timestamptz on PostgreSQL)."""
    if value is None or isinstance(value, datetime):
        return value.astimezone(UTC) if value is not None and value.tzinfo is not None else value
    return datetime.fromisoformat(value)


def _rows(connection: Connection, sql: str, customer_ids: Sequence[str]) -> list[tuple[Any, ...]]:
    return fetch_rows(connection, sql.format(ids=in_ids(connection, len(customer_ids))),
                      ids_parameters(connection, customer_ids))


def load_facts(connection: Connection, customer_ids: Sequence[str]) -> dict[str, CustomerFacts]:
    """Every fact of the given customers (a batch: callers chunk the ids to keep memory flat).

    Each customer's facts are tuples of plain tuples in the fields' order of `InteractionFact`, `DealFact`,
    `TicketFact` and `PersonFact`: the cyclic collector stops tracking those, so however many facts a batch
    holds, they never slow its collections (rows come ordered by customer, so no list is built per customer)."""
    facts = {customer_id: CustomerFacts(customer_id) for customer_id in customer_ids}
    for customer_id, rows in groupby(_rows(connection, PERSONS, customer_ids), key=itemgetter(0)):
        facts[customer_id].persons = tuple((person_id, moment(created)) for _, person_id, created in rows)
    for customer_id, rows in groupby(_rows(connection, DEALS, customer_ids), key=itemgetter(0)):
        facts[customer_id].deals = tuple((deal_id, status, moment(opened), moment(closed))
                                         for _, deal_id, status, opened, closed in rows)
    for customer_id, rows in groupby(_rows(connection, TICKETS, customer_ids), key=itemgetter(0)):
        facts[customer_id].tickets = tuple((ticket_id, moment(opened), channel)
                                           for _, ticket_id, opened, channel in rows)
    for customer_id, rows in groupby(_rows(connection, INTERACTIONS, customer_ids), key=itemgetter(0)):
        facts[customer_id].interactions = tuple(
            (interaction_id, kind, channel, direction, outcome, moment(occurred), score, score_max)
            for _, interaction_id, kind, channel, direction, outcome, occurred, score, score_max in rows)
    return facts
