"""The tagging pass on a small canonical database: customer links (activities logged on a deal or ticket, events
sent to an address), serial and parallel evaluation writing the same rows, incremental passes, and the
driver-level writes storing values exactly as the ORM does."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text

from canonical.models import Association, Deal, Interaction, PersonRecord, SourceRecord, Ticket
from canonical.types import utcnow
from canonical.upsert import upsert
from journeyhub.config import load_config_file, mappings_root
from journeyhub.journey.dbio import sqlite_time
from journeyhub.journey.keys import email_key
from journeyhub.journey.tagger import Tagger

ROOT = mappings_root()
LIFECYCLE = load_config_file(ROOT, "lifecycle.yaml")
IDENTITY = load_config_file(ROOT, "identity.yaml")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
KINDS = [("marketing_email", "email", "inbound", "opened"), ("call", "phone", "outbound", "completed"),
         ("call", "phone", "inbound", "no_answer"), ("meeting", "meeting", None, "completed"),
         ("form_submission", "web", "inbound", None), ("survey_response", "web", "inbound", None)]


def tagger(engine: Engine, **options: Any) -> Tagger:
    return Tagger(engine, LIFECYCLE, IDENTITY, **options)


def source(key: str, entity: str, when: datetime) -> dict[str, Any]:
    system, object_type, remote_id = key.split(":", 2)
    return {"id": key, "system": system, "object_type": object_type, "remote_id": remote_id, "entity": entity,
            "remote_created_at": when, "remote_updated_at": when, "first_seen_at": when, "last_seen_at": when,
            "is_deleted": False}


def add_people(engine: Engine, *people: tuple[str, str]) -> None:
    """(source key, email) pairs, match keys left for the resolver to compute."""
    with engine.begin() as connection:
        upsert(connection, SourceRecord, [source(key, "person", T0) for key, _ in people])
        upsert(connection, PersonRecord, [{"id": key, "kind": "contact", "email": email, "last_name": key,
                                           "full_name": key, "keys_version": None} for key, email in people])


def link(key: str, to: str) -> dict[str, Any]:
    return {"from_id": key, "to_id": to, "system": key.split(":")[0], "label": None, "is_primary": True,
            "source_id": key, "is_deleted": False}


def interaction(key: str, index: int, **extra: Any) -> dict[str, Any]:
    kind, channel, direction, outcome = KINDS[index % len(KINDS)]
    return {"id": key, "kind": kind, "channel": channel, "direction": direction, "outcome": outcome,
            "occurred_at": T0 + timedelta(days=index * 7 % 300, seconds=index),
            "score": 9.0 if kind == "survey_response" else None,
            "score_max": 10.0 if kind == "survey_response" else None, "deal_id": None, "ticket_id": None, **extra}


def world(engine: Engine, people: int = 24) -> None:
    """People (every fourth also in Salesforce with the same address), deals (some won), tickets, and
    interactions attached directly, by address, or logged on a deal."""
    add_people(engine, *[(f"hubspot:contacts:{n}", f"p{n}@x.io") for n in range(people)],
               *[(f"salesforce:Contact:{n}", f"P{n}@X.io") for n in range(0, people, 4)])
    deals = [{"id": f"salesforce:Opportunity:{n}", "status": ["open", "won", "lost"][n % 3],
              "opened_at": T0 + timedelta(days=n), "closed_at": T0 + timedelta(days=n + 20) if n % 3 else None}
             for n in range(0, people, 2)]
    tickets = [{"id": f"dynamics:incidents:{n}", "channel": "support", "is_closed": False,
                "opened_at": T0 + timedelta(days=3 * n)}
               for n in range(0, people, 3)]
    rows, links = [], []
    for index in range(people * 4):
        key = f"hubspot:calls:{index}"
        owner = index % people
        if index % 5 == 0:
            links.append(link(key, f"email:p{owner}@x.io"))
            rows.append(interaction(key, index))
        elif index % 7 == 0 and owner % 2 == 0:
            rows.append(interaction(key, index, deal_id=f"salesforce:Opportunity:{owner}"))
        else:
            links.append(link(key, f"hubspot:contacts:{owner}"))
            rows.append(interaction(key, index))
    links += [link(deal["id"], f"hubspot:contacts:{n * 2}") for n, deal in enumerate(deals)]
    links += [link(ticket["id"], f"hubspot:contacts:{n * 3}") for n, ticket in enumerate(tickets)]
    with engine.begin() as connection:
        upsert(connection, Deal, deals)
        upsert(connection, Ticket, tickets)
        upsert(connection, Interaction, rows)
        upsert(connection, Association, links)


def customer_links(engine: Engine) -> dict[str, set[str]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT l.entity_id, p.id FROM customer_link l "
                                       "JOIN person_record p ON p.customer_id = l.customer_id")).all()
    found: dict[str, set[str]] = {}
    for entity, person in rows:
        found.setdefault(entity, set()).add(person)
    return found


def outcome(engine: Engine) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """History (without row ids and computation times) and every customer's journey columns and segment."""
    with engine.connect() as connection:
        history = connection.execute(text(
            "SELECT customer_id, stage, stage_order, entered_at, exited_at, rule_id, ruleset_version, evidence_type, "
            "evidence_id FROM stage_history ORDER BY customer_id, entered_at, stage_order")).all()
        customers = connection.execute(text(
            "SELECT id, first_purchase_at, last_activity_at, last_return_at, last_interaction_at, "
            "last_interaction_channel, segment, segment_since FROM customer ORDER BY id")).all()
    return [tuple(row) for row in history], [tuple(row) for row in customers]


def forget(engine: Engine) -> None:
    """Back to before the first pass's evaluation (identities and links stay)."""
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM stage_history"))
        connection.execute(text("DELETE FROM sync_state"))
        connection.execute(text("UPDATE customer SET first_purchase_at = NULL, last_activity_at = NULL, "
                                "last_return_at = NULL, last_interaction_at = NULL, last_interaction_channel = NULL, "
                                "segment = NULL, segment_since = NULL"))


def test_activities_on_a_deal_and_events_sent_to_an_address_belong_to_their_people(engine: Engine) -> None:
    world(engine)
    tagger(engine).resolve()
    found = customer_links(engine)
    assert found["hubspot:calls:5"] == {"hubspot:contacts:5"}  # sent to p5@x.io
    assert found["hubspot:calls:0"] == {"hubspot:contacts:0", "salesforce:Contact:0"}  # one customer, two records
    assert found["hubspot:calls:14"] == {"hubspot:contacts:14"}  # logged on deal 14, whose person is contact 14
    assert found["salesforce:Opportunity:14"] == {"hubspot:contacts:14"}
    assert found["dynamics:incidents:9"] == {"hubspot:contacts:9"}
    assert len(found) == 24 * 4 + 12 + 8


def test_parallel_workers_write_what_a_serial_pass_writes(engine: Engine) -> None:
    world(engine)
    serial = tagger(engine, workers=1).run(AS_OF)
    expected = outcome(engine)
    assert serial.evaluated == serial.customers == 24 and serial.history_changed == 24 and expected[0]
    forget(engine)
    parallel = tagger(engine, workers=2, parallel_threshold=1).run(AS_OF)
    assert outcome(engine) == expected
    assert (parallel.stages, parallel.segments, parallel.history_changed) == (serial.stages, serial.segments, 24)


def test_an_incremental_pass_rewrites_only_the_customer_whose_evidence_changed(engine: Engine) -> None:
    world(engine)
    first = tagger(engine)
    first.run(AS_OF)
    with engine.connect() as connection:
        stamps = dict(connection.execute(text("SELECT id, computed_at FROM stage_history")).all())
        customer = connection.execute(select(PersonRecord.customer_id)
                                      .where(PersonRecord.id == "hubspot:contacts:1")).scalar_one()
    with engine.begin() as connection:  # contact 1 buys: a won deal, seen by a later pull
        upsert(connection, SourceRecord, [source("salesforce:Opportunity:901", "deal", utcnow())])
        upsert(connection, Deal, [{"id": "salesforce:Opportunity:901", "status": "won", "opened_at": T0,
                                   "closed_at": T0 + timedelta(days=40)}])
        upsert(connection, Association, [link("salesforce:Opportunity:901", "hubspot:contacts:1")])
    summary = first.run(AS_OF + timedelta(days=1))
    assert summary.history_changed == 1
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, customer_id, stage, computed_at FROM stage_history")).all()
    assert "purchase" in {stage for _, owner, stage, _ in rows if owner == customer}
    assert all(stamps[row_id] == computed for row_id, owner, _, computed in rows if owner != customer)


def test_a_changed_address_takes_the_events_sent_to_it_along(engine: Engine) -> None:
    add_people(engine, ("hubspot:contacts:1", "a@x.io"), ("hubspot:contacts:2", "b@x.io"))
    with engine.begin() as connection:
        upsert(connection, Interaction, [interaction("hubspot:calls:1", 0), interaction("hubspot:calls:2", 4)])
        upsert(connection, Association, [link("hubspot:calls:1", "email:a@x.io"),
                                         link("hubspot:calls:2", "email:c@x.io")])
    run = tagger(engine)
    run.run(AS_OF)
    assert customer_links(engine) == {"hubspot:calls:1": {"hubspot:contacts:1"}}
    with engine.begin() as connection:  # as a later pull writes a changed contact: keys to recompute
        connection.execute(text("UPDATE person_record SET email = 'c@x.io', keys_version = NULL WHERE id = :id"),
                           {"id": "hubspot:contacts:1"})
        upsert(connection, SourceRecord, [source("hubspot:contacts:1", "person", utcnow())])
    summary = run.run(AS_OF)
    assert customer_links(engine) == {"hubspot:calls:2": {"hubspot:contacts:1"}}
    assert summary.evaluated == 1
    with engine.connect() as connection:
        assert connection.execute(select(PersonRecord.email_key).where(PersonRecord.id == "hubspot:contacts:1")
                                  ).scalar_one() == email_key("c@x.io", IDENTITY)


@pytest.mark.parametrize("value", [
    datetime(2025, 3, 4, 10, 0, tzinfo=UTC),
    datetime(2025, 3, 4, 10, 0, 59, 7, tzinfo=UTC),
    datetime(2025, 3, 4, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2))),
    datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5))),
])
def test_driver_level_timestamps_are_the_text_the_orm_stores(sqlite_engine: Engine, value: datetime) -> None:
    with sqlite_engine.begin() as connection:
        upsert(connection, Deal, [{"id": "d", "status": "won", "opened_at": value}])
        stored = connection.execute(text("SELECT opened_at FROM deal")).scalar_one()
        read = connection.execute(select(Deal.opened_at)).scalar_one()
    assert sqlite_time(value) == stored and read == value


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sqlite_time(datetime(2025, 1, 1))


def test_an_incremental_pass_looks_up_the_customers_it_evaluates_not_every_customer(engine: Engine) -> None:
    """Memory of an incremental pass follows what changed: no statement of the stage step reads every live
    customer's id (a million ids held ~130 MB), and merged or unknown customers among the touched are left out."""
    world(engine)
    hub = tagger(engine)
    hub.run(AS_OF)
    with engine.connect() as connection:
        live, other = connection.execute(text("SELECT id FROM customer ORDER BY id LIMIT 2")).scalars().all()
        total = connection.execute(text("SELECT COUNT(*) FROM customer")).scalar_one()
    with engine.begin() as connection:
        connection.execute(text("UPDATE customer SET merged_into_id = :live WHERE id = :other"),
                           {"live": live, "other": other})
    assert hub._live_among({live, other, "cus_unknown"}) == [live]
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(" ".join(statement.split()).lower())

    event.listen(engine, "before_cursor_execute", seen)
    try:
        summary = hub.run(AS_OF + timedelta(days=1))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert summary.customers == total - 1
    unbounded = [sql for sql in statements if sql.startswith("select customer.id from customer")
                 or (sql.startswith("select id from customer where merged_into_id is null") and "limit" not in sql)]
    assert not unbounded, unbounded


def test_a_full_pass_sets_each_segment_with_its_journey_columns_and_later_passes_follow_the_clock(
        engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each evaluated customer's segment is written in the same update as its journey columns (one row version,
    not two); only customers a pass did not evaluate are left to the segment scan, which a full pass skips."""
    world(engine)
    segment_scan = Tagger._segments
    monkeypatch.setattr(Tagger, "_segments", lambda *_: pytest.fail("a full pass scanned for segments"))
    full = tagger(engine, workers=2, parallel_threshold=1).run(AS_OF)  # the workers' batches carry the segments
    monkeypatch.setattr(Tagger, "_segments", segment_scan)
    with engine.connect() as connection:
        stored = dict(connection.execute(text("SELECT segment, COUNT(*) FROM customer GROUP BY segment")).all())
        stamped = connection.execute(text("SELECT COUNT(*) FROM customer WHERE segment_since IS NULL")).scalar()
    assert full.segments == stored and sum(stored.values()) == 24 and len(stored) > 1 and stamped == 0
    assert full.segment_changes == 24
    assert segment_scan(tagger(engine), AS_OF) == (0, stored)  # the scan agrees with every segment set
    later = AS_OF + timedelta(days=3 * 365)  # nothing changed, but years passed: every buyer has churned
    summary = tagger(engine).run(later)
    _, customers = outcome(engine)
    assert summary.evaluated == 0 and summary.segment_changes == 24 - stored.get("prospect", 0)
    assert set(summary.segments) <= {"prospect", "churned"} and summary.segments.get("churned")
    assert {segment_since for *_, segment, segment_since in customers if segment == "churned"} == {
        sqlite_time(later) if engine.dialect.name == "sqlite" else later}


def test_a_customer_whose_journey_changes_but_not_its_segment_keeps_its_segment_since(engine: Engine) -> None:
    world(engine)
    first = tagger(engine)
    first.run(AS_OF)
    with engine.connect() as connection:
        customer, since, seen = connection.execute(text(
            "SELECT c.id, c.segment_since, c.last_interaction_at FROM customer c WHERE c.segment = 'prospect' "
            "ORDER BY c.id LIMIT 1")).one()
        person = connection.execute(select(PersonRecord.id).where(PersonRecord.customer_id == customer)
                                    .order_by(PersonRecord.id).limit(1)).scalar_one()
    with engine.begin() as connection:  # a new form submission: journey columns move, still no purchase
        upsert(connection, SourceRecord, [source("hubspot:calls:900", "interaction", utcnow())])
        upsert(connection, Interaction, [interaction("hubspot:calls:900", 4, occurred_at=AS_OF - timedelta(days=1))])
        upsert(connection, Association, [link("hubspot:calls:900", person)])
    first.run(AS_OF + timedelta(days=1))
    with engine.connect() as connection:
        after = connection.execute(text("SELECT segment, segment_since, last_interaction_at FROM customer "
                                        "WHERE id = :id"), {"id": customer}).one()
    assert after[0] == "prospect" and after[1] == since and after[2] != seen
