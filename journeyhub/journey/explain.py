"""Why the hub thinks what it thinks about one customer: records and the rules that linked them, the
unified timeline, the stage history with its evidence, and the segment."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select, text
from sqlalchemy.engine import Connection

from canonical.models import Customer, Deal, Interaction, PersonRecord, SourceRecord, StageHistory, Ticket
from journeyhub.ingest.transforms import normalize_email


@dataclass
class Explanation:
    customer: dict[str, Any]
    followed: list[str] = field(default_factory=list)      # merged-away ids followed to reach it
    others: list[str] = field(default_factory=list)        # other customers matching the query
    sources: list[dict[str, Any]] = field(default_factory=list)
    history: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[dict[str, Any]] = field(default_factory=list)
    timeline_total: int = 0


def find_customers(connection: Connection, query: str) -> list[str]:
    """Customer ids for a customer id, an email address or a source key (`system:object:id`)."""
    query = query.strip()
    if query.startswith("cus_"):
        return [query] if connection.execute(select(Customer.id).where(Customer.id == query)).first() else []
    if "@" in query:
        key = f"email:{normalize_email(query)}"
        column = PersonRecord.email_key
    else:
        key, column = query, PersonRecord.id
    return sorted(set(connection.execute(select(PersonRecord.customer_id).where(
        column == key, PersonRecord.customer_id.is_not(None))).scalars()))


def explain(engine: Engine, query: str, *, timeline_limit: int = 40) -> Explanation | None:
    with engine.connect() as connection:
        matches = find_customers(connection, query)
        if not matches:
            return None
        customer_id, followed = _follow_merges(connection, matches[0])
        customer = connection.execute(select(Customer).where(Customer.id == customer_id)).one()._asdict()
        result = Explanation(customer=customer, followed=followed, others=matches[1:])
        result.sources = _sources(connection, customer_id)
        result.history = _history(connection, customer_id)
        result.timeline, result.timeline_total = _timeline(connection, customer_id, timeline_limit)
        return result


def _follow_merges(connection: Connection, customer_id: str) -> tuple[str, list[str]]:
    followed: list[str] = []
    while True:
        survivor = connection.execute(select(Customer.merged_into_id).where(Customer.id == customer_id)).scalar()
        if not survivor or survivor in followed:
            return customer_id, followed
        followed.append(customer_id)
        customer_id = survivor


def _sources(connection: Connection, customer_id: str) -> list[dict[str, Any]]:
    rows = connection.execute(
        select(SourceRecord.system, SourceRecord.object_type, SourceRecord.remote_id, PersonRecord.kind,
               PersonRecord.full_name, PersonRecord.email, PersonRecord.phone, SourceRecord.is_deleted,
               SourceRecord.merged_into, PersonRecord.match_rule, PersonRecord.match_evidence,
               SourceRecord.remote_created_at)
        .join(SourceRecord, SourceRecord.id == PersonRecord.id).where(PersonRecord.customer_id == customer_id)
        .order_by(SourceRecord.system, SourceRecord.object_type, SourceRecord.remote_id))
    return [row._asdict() for row in rows]


def _history(connection: Connection, customer_id: str) -> list[dict[str, Any]]:
    rows = [row._asdict() for row in connection.execute(
        select(StageHistory.stage, StageHistory.entered_at, StageHistory.exited_at, StageHistory.rule_id,
               StageHistory.ruleset_version, StageHistory.evidence_type, StageHistory.evidence_id)
        .where(StageHistory.customer_id == customer_id).order_by(StageHistory.entered_at))]
    for row in rows:
        row["evidence_title"] = _evidence_title(connection, row["evidence_type"], row["evidence_id"])
    return rows


def _evidence_title(connection: Connection, kind: str | None, entity_id: str | None) -> str | None:
    titles = {"interaction": (Interaction.id, Interaction.subject), "deal": (Deal.id, Deal.name),
              "ticket": (Ticket.id, Ticket.subject), "person": (PersonRecord.id, PersonRecord.full_name)}
    column = titles.get(kind or "")
    if column is None or entity_id is None:
        return None
    return connection.execute(select(column[1]).where(column[0] == entity_id)).scalar()


def _timeline(connection: Connection, customer_id: str, limit: int) -> tuple[list[dict[str, Any]], int]:
    total = connection.execute(text("SELECT COUNT(*) FROM unified_timeline WHERE customer_id = :c"),
                               {"c": customer_id}).scalar_one()
    rows = connection.execute(text(
        "SELECT occurred_at, system, kind, channel, direction, title, remote_id FROM unified_timeline "
        "WHERE customer_id = :c ORDER BY occurred_at DESC LIMIT :n"), {"c": customer_id, "n": limit})
    return [dict(row._mapping) for row in rows], total
