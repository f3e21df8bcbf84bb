"""Compares what the hub concluded with the generated world's ground truth: is every person exactly one
customer, in the expected stage (entered at the expected time) and segment? Used by the tests and shown by
`journeyhub demo`."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, text


@dataclass
class TruthReport:
    persons: int = 0
    resolved: int = 0                 # persons whose records are exactly one customer of their own
    stage_correct: int = 0
    entered_correct: int = 0
    segment_correct: int = 0
    quarantined_expected: int = 0
    quarantined_found: int = 0
    problems: list[str] = field(default_factory=list)

    def share(self, value: int) -> float:
        return value / self.persons if self.persons else 1.0

    @property
    def perfect(self) -> bool:
        return (self.resolved == self.stage_correct == self.entered_correct == self.segment_correct == self.persons
                and self.quarantined_found == self.quarantined_expected)


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def check(engine: Engine, truth: dict[str, Any], *, systems: set[str] | None = None, limit: int = 20) -> TruthReport:
    """Grade the canonical database against the truth (optionally only for persons living in `systems`)."""
    with engine.connect() as connection:
        customer_of = dict(connection.execute(text("SELECT id, customer_id FROM person_record")).all())
        state = {row[0]: row[1:] for row in connection.execute(text(
            "SELECT customer_id, lifecycle_stage, lifecycle_stage_entered_at, segment FROM customer_360"))}
        quarantined = {f"{s}:{o}:{r}" for s, o, r in connection.execute(text(
            "SELECT system, object_type, remote_id FROM quarantine WHERE resolved_at IS NULL"))}
    report = TruthReport()
    owners: dict[str, set[str]] = defaultdict(set)
    persons = [person for person in truth["persons"]
               if systems is None or {key.split(":")[0] for key in person["records"]} <= systems]
    for person in persons:
        for key in person["records"]:
            if customer_of.get(key):
                owners[customer_of[key]].add(person["person"])
    for person in persons:
        report.persons += 1
        customers = {customer_of.get(key) for key in person["records"]}
        if None in customers or len(customers) != 1:
            missing = [key for key in person["records"] if not customer_of.get(key)]
            _note(report, limit, f"{person['person']}: records in {len(customers - {None})} customers"
                                 + (f", not stored: {missing[:3]}" if missing else ""))
            continue
        customer = customers.pop()
        if owners[customer] != {person["person"]}:
            _note(report, limit, f"{person['person']}: customer {customer} also holds {sorted(owners[customer])[:3]}")
            continue
        report.resolved += 1
        stage, entered, segment = state.get(customer, (None, None, None))
        if stage == person["stage"]:
            report.stage_correct += 1
        else:
            _note(report, limit, f"{person['person']} ({customer}): stage {stage}, expected {person['stage']}")
        if _instant(entered) == _instant(person["stage_entered_at"]):
            report.entered_correct += 1
        elif stage == person["stage"]:
            _note(report, limit, f"{person['person']} ({customer}): {stage} entered {entered}, "
                                 f"expected {person['stage_entered_at']}")
        if segment == person["segment"]:
            report.segment_correct += 1
        else:
            _note(report, limit, f"{person['person']} ({customer}): segment {segment}, expected {person['segment']}")
    expected = [item for item in truth.get("quarantined", [])
                if systems is None or item["record"].split(":")[0] in systems]
    report.quarantined_expected = len(expected)
    report.quarantined_found = sum(item["record"] in quarantined for item in expected)
    for item in expected:
        if item["record"] not in quarantined:
            _note(report, limit, f"{item['record']}: expected in quarantine ({item['reason']})")
    return report


def _note(report: TruthReport, limit: int, problem: str) -> None:
    if len(report.problems) < limit:
        report.problems.append(problem)
