"""The journey pass: resolve identities → refresh customer links → tag stages → segments.

Incremental and deterministic: only customers touched since the last pass (records changed, links moved,
evidence that has since come due) are re-evaluated, and the same data always yields the same stages and
history; unchanged history rows are left as they are. Changing the rule set (its `version`) re-evaluates
everyone. Segments depend on the clock, so they are recomputed for every customer from three stored dates.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, select, text, update
from sqlalchemy.engine import Connection

from canonical.models import Customer, CustomerLink, Interaction, LifecycleStageDef, StageHistory, SyncState
from canonical.types import utcnow
from canonical.upsert import chunks, upsert
from journeyhub.journey import links
from journeyhub.journey.facts import load_facts
from journeyhub.journey.identity import IdentityResolver, Resolution
from journeyhub.journey.identity_config import IdentityConfig
from journeyhub.journey.lifecycle import Journey, RuleSet, segment
from journeyhub.journey.lifecycle_config import LifecycleConfig

log = logging.getLogger("journeyhub.journey")
STATE_KEY = ("hub", "journey")
BATCH = 2000
JOURNEY_COLUMNS = ("first_purchase_at", "last_activity_at", "last_return_at", "last_interaction_at",
                   "last_interaction_channel")


@dataclass
class TagPlan:
    started: datetime
    full: bool
    touched: set[str]
    merges: int
    new_customers: int
    previous_as_of: datetime | None


@dataclass
class TagSummary:
    started: datetime
    as_of: datetime
    ruleset_version: str
    full: bool
    customers: int = 0
    evaluated: int = 0
    history_changed: int = 0
    merges: int = 0
    new_customers: int = 0
    segment_changes: int = 0
    stages: dict[str, int] = field(default_factory=dict)
    segments: dict[str, int] = field(default_factory=dict)


def read_state(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        cursor = connection.execute(select(SyncState.cursor).where(
            SyncState.system == STATE_KEY[0], SyncState.object_type == STATE_KEY[1])).scalar_one_or_none()
    return json.loads(cursor) if cursor else {}


class Tagger:
    def __init__(self, engine: Engine, lifecycle: LifecycleConfig, identity: IdentityConfig) -> None:
        self.engine = engine
        self.rules = RuleSet(lifecycle)
        self.lifecycle = lifecycle
        self.identity = identity

    def run(self, as_of: datetime | None = None, *, full: bool = False) -> TagSummary:
        """The whole pass; flows run the three steps as separate tasks."""
        plan = self.resolve(full=full)
        return self.assign_segments(self.tag(plan, as_of or plan.started))

    def resolve(self, *, full: bool = False) -> TagPlan:
        """Step 1: identities, then customer links; returns which customers need re-evaluation."""
        started = utcnow()
        state = read_state(self.engine)
        full = full or not state or state.get("ruleset") != self.rules.version
        resolution = IdentityResolver(self.engine, self.identity).resolve()
        since = None if full or "since" not in state else datetime.fromisoformat(state["since"])
        touched = links.refresh(self.engine, since, resolution.changed_people,
                                self._email_keys(resolution) | resolution.changed_keys)
        touched |= resolution.touched_customers
        return TagPlan(started=started, full=full, touched=touched, merges=len(resolution.merged),
                       new_customers=len(resolution.new_customers),
                       previous_as_of=datetime.fromisoformat(state["as_of"]) if state.get("as_of") else None)

    def tag(self, plan: TagPlan, as_of: datetime) -> TagSummary:
        """Step 2: stages and history for the touched customers (everyone after a rule change)."""
        summary = TagSummary(started=plan.started, as_of=as_of, ruleset_version=self.rules.version,
                             full=plan.full, merges=plan.merges, new_customers=plan.new_customers)
        self._write_stage_definitions()
        customers = self._live_customers()
        touched = set(customers) if plan.full else set(plan.touched)
        if not plan.full and plan.previous_as_of is not None:
            touched |= self._customers_with_evidence_between(plan.previous_as_of, as_of)
        evaluate = sorted(customer for customer in touched if customer in customers)
        for batch in chunks(evaluate, BATCH):
            summary.history_changed += self._evaluate_batch(list(batch), as_of)
        summary.evaluated = len(evaluate)
        summary.customers = len(customers)
        return summary

    def assign_segments(self, summary: TagSummary) -> TagSummary:
        """Step 3: every live customer's segment as of the evaluation time; then the watermark."""
        summary.segment_changes, summary.segments = self._segments(summary.as_of)
        summary.stages = self._stage_counts()
        self._save_state({"since": summary.started.isoformat(), "as_of": summary.as_of.isoformat(),
                          "ruleset": self.rules.version})
        log.info("journey: %d customers, %d evaluated, %d history changes, %d merges", summary.customers,
                 summary.evaluated, summary.history_changed, summary.merges)
        return summary

    # ------------------------------------------------------------------ evaluation
    def _evaluate_batch(self, customer_ids: list[str], as_of: datetime) -> int:
        with self.engine.connect() as connection:
            facts = load_facts(connection, customer_ids)
            stored = self._stored_history(connection, customer_ids)
            current = {row[0]: tuple(row[1:]) for row in connection.execute(
                select(Customer.id, *[getattr(Customer, name) for name in JOURNEY_COLUMNS])
                .where(Customer.id.in_(customer_ids)))}
        journeys = [self.rules.evaluate(facts[customer_id], as_of) for customer_id in customer_ids]
        rows, changed, updates = [], [], []
        now = utcnow()
        for journey in journeys:
            new_history = self._history_rows(journey, now)
            if [_comparable(row) for row in new_history] != stored.get(journey.customer_id, []):
                changed.append(journey.customer_id)
                rows += new_history
            values = tuple(getattr(journey, name) for name in JOURNEY_COLUMNS)
            if values != current.get(journey.customer_id):
                updates.append({"cid": journey.customer_id, **dict(zip(JOURNEY_COLUMNS, values, strict=True))})
        with self.engine.begin() as connection:
            for chunk in chunks(changed, 500):
                connection.execute(delete(StageHistory).where(StageHistory.customer_id.in_(chunk)))
            if rows:
                connection.execute(insert(StageHistory), rows)
            if updates:
                connection.execute(update(Customer).where(Customer.id == bindparam("cid")).values(
                    **{name: bindparam(name) for name in JOURNEY_COLUMNS}), updates)
        return len(changed)

    def _history_rows(self, journey: Journey, now: datetime) -> list[dict[str, Any]]:
        return [{"customer_id": journey.customer_id, "stage": stay.stage, "stage_order": stay.order,
                 "entered_at": stay.entered_at, "exited_at": stay.exited_at, "rule_id": stay.rule_id,
                 "ruleset_version": self.rules.version, "evidence_type": stay.evidence.type,
                 "evidence_id": stay.evidence.id, "computed_at": now} for stay in journey.history]

    @staticmethod
    def _stored_history(connection: Connection, customer_ids: list[str]) -> dict[str, list[tuple[Any, ...]]]:
        stored: dict[str, list[tuple[Any, ...]]] = {}
        rows = connection.execute(
            select(StageHistory.customer_id, StageHistory.stage, StageHistory.stage_order, StageHistory.entered_at,
                   StageHistory.exited_at, StageHistory.rule_id, StageHistory.ruleset_version,
                   StageHistory.evidence_type, StageHistory.evidence_id)
            .where(StageHistory.customer_id.in_(customer_ids)).order_by(StageHistory.customer_id,
                                                                        StageHistory.entered_at))
        for row in rows:
            stored.setdefault(row[0], []).append(tuple(row[1:]))
        return stored

    def _customers_with_evidence_between(self, start: datetime, end: datetime) -> set[str]:
        """Evidence dated between two evaluations (a meeting that has now taken place) changes stages
        without any record changing."""
        if end <= start:
            return set()
        with self.engine.connect() as connection:
            return set(connection.execute(
                select(CustomerLink.customer_id).join(Interaction, Interaction.id == CustomerLink.entity_id)
                .where(Interaction.occurred_at > start, Interaction.occurred_at <= end).distinct()).scalars())

    # ------------------------------------------------------------------ segments and summaries
    def _segments(self, as_of: datetime) -> tuple[int, dict[str, int]]:
        with self.engine.connect() as connection:
            rows = connection.execute(select(Customer.id, Customer.first_purchase_at, Customer.last_activity_at,
                                             Customer.last_return_at, Customer.segment)
                                      .where(Customer.merged_into_id.is_(None))).all()
        counts: Counter[str] = Counter()
        changes = []
        for customer_id, first_purchase, last_activity, last_return_at, previous in rows:
            value = segment(first_purchase, last_activity, last_return_at, as_of, self.lifecycle)
            counts[value] += 1
            if value != previous:
                changes.append({"cid": customer_id, "segment": value, "since": as_of})
        with self.engine.begin() as connection:
            for chunk in chunks(changes, 5000):
                connection.execute(update(Customer).where(Customer.id == bindparam("cid")).values(
                    segment=bindparam("segment"), segment_since=bindparam("since")), list(chunk))
        return len(changes), dict(counts)

    def _stage_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return dict(connection.execute(text(
                "SELECT lifecycle_stage, COUNT(*) FROM customer_360 WHERE lifecycle_stage IS NOT NULL "
                "GROUP BY lifecycle_stage")).all())

    def _live_customers(self) -> set[str]:
        with self.engine.connect() as connection:
            return set(connection.execute(select(Customer.id).where(Customer.merged_into_id.is_(None))).scalars())

    def _write_stage_definitions(self) -> None:
        rows = [{"key": stage.key, "name": stage.name, "stage_order": self.rules.order[stage.key],
                 "ruleset_version": self.rules.version} for stage in self.lifecycle.stages]
        with self.engine.begin() as connection:
            connection.execute(delete(LifecycleStageDef))
            connection.execute(insert(LifecycleStageDef), rows)

    def _save_state(self, state: dict[str, Any]) -> None:
        with self.engine.begin() as connection:
            upsert(connection, SyncState, [{"system": STATE_KEY[0], "object_type": STATE_KEY[1],
                                            "cursor": json.dumps(state), "updated_at": utcnow()}])

    def _email_keys(self, resolution: Resolution) -> set[str]:
        """Email keys of people who moved: events addressed to them must follow them."""
        if not resolution.changed_people:
            return set()
        from canonical.models import PersonRecord

        with self.engine.connect() as connection:
            keys: set[str] = set()
            for chunk in chunks(sorted(resolution.changed_people), 500):
                keys |= {key for key in connection.execute(select(PersonRecord.email_key)
                                                           .where(PersonRecord.id.in_(chunk))).scalars() if key}
            return keys


def _comparable(row: dict[str, Any]) -> tuple[Any, ...]:
    return (row["stage"], row["stage_order"], row["entered_at"], row["exited_at"], row["rule_id"],
            row["ruleset_version"], row["evidence_type"], row["evidence_id"])
