"""Block-wise journey pass: resolving and tagging a few records at a time writes exactly the rows of one block
holding everything, and the clustering over integer positions links records as the reference `cluster` does."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from canonical.models import Association, Deal, Interaction, PersonRecord, SourceRecord, Ticket
from canonical.upsert import upsert
from journeyhub.config import load_config_file, mappings_root
from journeyhub.journey import identity, tagger
from journeyhub.journey.identity import Person, cluster
from journeyhub.journey.tagger import Tagger

ROOT = mappings_root()
LIFECYCLE = load_config_file(ROOT, "lifecycle.yaml")
IDENTITY = load_config_file(ROOT, "identity.yaml")
T0 = datetime(2025, 1, 1, tzinfo=UTC)
AS_OF = datetime(2026, 1, 1, tzinfo=UTC)
SYSTEMS = [("hubspot", "contacts"), ("salesforce", "Contact"), ("salesforce", "Lead"), ("dynamics", "contacts")]
KINDS = [("marketing_email", "email", "inbound", "opened"), ("call", "phone", "outbound", "completed"),
         ("meeting", "meeting", None, "completed"), ("form_submission", "web", "inbound", None)]


def source(key: str, entity: str, when: datetime, merged_into: str | None = None) -> dict[str, Any]:
    system, object_type, remote_id = key.split(":", 2)
    return {"id": key, "system": system, "object_type": object_type, "remote_id": remote_id, "entity": entity,
            "remote_created_at": when, "remote_updated_at": when, "first_seen_at": when, "last_seen_at": when,
            "is_deleted": merged_into is not None, "merged_into": merged_into}


def seed(engine: Engine, rng: random.Random) -> None:
    """~80 records of ~35 people: shared and variant emails, shared phones, conversions, cross-ids, merges."""
    keys = [f"{system}:{object_type}:{n}" for n in range(80)
            for system, object_type in [SYSTEMS[n % len(SYSTEMS)]]]
    sources, people = [], []
    for n, key in enumerate(keys):
        human = rng.randrange(35)
        email = rng.choice([f"p{human}@x.io", f" P{human}@X.io", None])
        phone = rng.choice([f"050-{human:07d}", None, None, "03-5550000"])
        other = rng.choice(keys)
        merged = other if rng.random() < 0.05 and other != key else None
        sources.append(source(key, "person", T0 + timedelta(days=n), merged))
        people.append({"id": key, "kind": "lead" if "Lead" in key else "contact", "email": email, "phone": phone,
                       "first_name": rng.choice(["Dana", None]), "last_name": f"L{human}", "full_name": None,
                       "converted_to": rng.choice(keys) if "Lead" in key and rng.random() < 0.5 else None,
                       "xrefs": [rng.choice(keys)] if rng.random() < 0.1 else None, "keys_version": None})
    interactions, deals, links = [], [], []
    for n in range(300):
        kind, channel, direction, outcome = KINDS[n % len(KINDS)]
        key = f"hubspot:calls:{n}"
        interactions.append({"id": key, "kind": kind, "channel": channel, "direction": direction,
                             "outcome": outcome, "occurred_at": T0 + timedelta(days=rng.randrange(360)),
                             "deal_id": None, "ticket_id": None})
        links.append({"from_id": key, "to_id": rng.choice(keys), "system": "hubspot", "label": None,
                      "is_primary": True, "source_id": key, "is_deleted": False})
    for n in range(25):
        key = f"salesforce:Opportunity:{n}"
        opened = T0 + timedelta(days=rng.randrange(300))
        status = rng.choice(["open", "won", "lost"])
        deals.append({"id": key, "name": key, "status": status, "opened_at": opened,
                      "closed_at": opened + timedelta(days=20) if status != "open" else None})
        links.append({"from_id": key, "to_id": rng.choice(keys), "system": "salesforce", "label": None,
                      "is_primary": True, "source_id": key, "is_deleted": False})
    with engine.begin() as connection:
        upsert(connection, SourceRecord, sources + [source(row["id"], "interaction", T0) for row in interactions]
               + [source(row["id"], "deal", T0) for row in deals])
        upsert(connection, PersonRecord, people)
        upsert(connection, Interaction, interactions)
        upsert(connection, Deal, deals)
        upsert(connection, Ticket, [])
        upsert(connection, Association, links)


def outcome(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    """What a pass wrote, without the times it was written at."""
    queries = {
        "records": "SELECT id, customer_id, match_rule, match_evidence FROM person_record ORDER BY id",
        "customers": "SELECT id, email, phone, first_name, last_name, full_name, first_seen_at, merged_into_id, "
                     "first_purchase_at, last_activity_at, last_return_at, last_interaction_at, "
                     "last_interaction_channel, segment FROM customer ORDER BY id",
        "history": "SELECT customer_id, stage, stage_order, entered_at, exited_at, rule_id, evidence_type, "
                   "evidence_id FROM stage_history ORDER BY customer_id, entered_at, stage",
        "links": "SELECT entity_id, customer_id FROM customer_link ORDER BY entity_id, customer_id",
    }
    with engine.connect() as connection:
        return {name: [tuple(row) for row in connection.execute(text(sql))] for name, sql in queries.items()}


def reset(engine: Engine) -> None:
    with engine.begin() as connection:
        for sql in ("DELETE FROM stage_history", "DELETE FROM customer_link", "DELETE FROM customer",
                    "DELETE FROM sync_state",
                    "UPDATE person_record SET customer_id = NULL, match_rule = NULL, match_evidence = NULL"):
            connection.execute(text(sql))


def run(engine: Engine, monkeypatch: pytest.MonkeyPatch, block: int) -> dict[str, list[tuple[Any, ...]]]:
    reset(engine)
    monkeypatch.setattr(identity, "BLOCK", block)
    monkeypatch.setattr(tagger, "BATCH", block)
    summary = Tagger(engine, LIFECYCLE, IDENTITY, workers=1).run(AS_OF)
    assert summary.customers > 5 and summary.history_changed > 5
    return outcome(engine)


def test_block_wise_pass_writes_the_rows_of_a_single_block(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(engine, random.Random(3))
    single = run(engine, monkeypatch, 100_000)
    blocks = run(engine, monkeypatch, 7)
    assert blocks == single
    merged = {row[0] for row in single["records"] if row[2] not in (None, "first_record")}
    assert len(merged) > 20 and len({row[1] for row in single["records"]}) < len(single["records"])


def xrefs(value: Any) -> list[str]:
    return (json.loads(value) if isinstance(value, str) else value) or []  # JSON text on SQLite


def test_clustering_over_positions_links_records_as_the_reference_does(engine: Engine) -> None:
    seed(engine, random.Random(5))
    Tagger(engine, LIFECYCLE, IDENTITY, workers=1).run(AS_OF)
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT p.id, s.system, p.kind, p.email_key, p.phone_key, p.converted_to, p.xrefs, s.merged_into, "
            "p.customer_id, p.match_rule, p.match_evidence FROM person_record p JOIN source_record s ON s.id = p.id "
            "ORDER BY p.id")).all()
    people = {row.id: Person(
        id=row.id, system=row.system, kind=row.kind, email=None, phone=None, email_key=row.email_key,
        phone_key=row.phone_key, keys_version=None, converted_to=row.converted_to, xrefs=tuple(xrefs(row.xrefs)),
        merged_into=row.merged_into, is_deleted=False, created=None, updated=None, customer_id=None,
        match_rule=None, match_evidence=None, values={}) for row in rows}
    clusters, matches = cluster(people, IDENTITY)
    stored: dict[str, set[str]] = {}
    for row in rows:
        stored.setdefault(row.customer_id, set()).add(row.id)
        assert (row.match_rule, row.match_evidence) == matches.get(row.id, ("first_record", "no other record matched"))
    assert sorted(map(sorted, stored.values())) == sorted(map(sorted, clusters.values()))
