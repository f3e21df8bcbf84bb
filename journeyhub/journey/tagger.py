"""The journey pass: resolve identities → refresh customer links → tag stages → segments.

Incremental and deterministic: only customers touched since the last pass (records changed, links moved,
evidence that has since come due) are re-evaluated, and the same data always yields the same stages and
history; unchanged history rows are left as they are. Changing the rule set (its `version`) re-evaluates
everyone. Segments depend on the clock, so every customer's is recomputed on every pass: an evaluated customer's
with its journey columns (one row version, not two), everyone else's from three stored dates.
"""

from __future__ import annotations

import json
import logging
import multiprocessing
import os
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import Engine, delete, event, insert, select, text
from sqlalchemy.engine import Connection

from canonical.db import transaction
from canonical.models import (
    Customer,
    CustomerLink,
    Interaction,
    LifecycleStageDef,
    SourceRecord,
    SyncState,
)
from canonical.types import utcnow
from canonical.upsert import chunks, fetch_by_ids, upsert
from journeyhub.journey import links
from journeyhub.journey.dbio import (
    analyze,
    fetch_rows,
    ids_parameters,
    in_ids,
    index_joins,
    index_probes,
    mark,
    marks,
    stream_rows,
    time_writer,
    write_insert,
    write_update,
)
from journeyhub.journey.facts import load_facts, moment
from journeyhub.journey.identity import ANALYZE_AFTER, IdentityResolver, Resolution
from journeyhub.journey.identity_config import IdentityConfig
from journeyhub.journey.keys import keys_fingerprint
from journeyhub.journey.lifecycle import RuleSet, segment
from journeyhub.journey.lifecycle_config import LifecycleConfig

log = logging.getLogger("journeyhub.journey")
STATE_KEY = ("hub", "journey")
BATCH = 2000
JOURNEY_COLUMNS = ("first_purchase_at", "last_activity_at", "last_return_at", "last_interaction_at",
                   "last_interaction_channel")
SEGMENT_COLUMNS = ("segment", "segment_since")
HISTORY_COLUMNS = ("customer_id", "stage", "stage_order", "entered_at", "exited_at", "rule_id", "ruleset_version",
                   "evidence_type", "evidence_id", "computed_at")


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
    segmented_all: bool = False  # every live customer was evaluated, so every segment is already assigned


def read_state(engine: Engine) -> dict[str, Any]:
    with engine.connect() as connection:
        cursor = connection.execute(select(SyncState.cursor).where(
            SyncState.system == STATE_KEY[0], SyncState.object_type == STATE_KEY[1])).scalar_one_or_none()
    return json.loads(cursor) if cursor else {}


class Tagger:
    """`workers` processes evaluate large passes in parallel (default: the machine's cores, at most 4) once
    at least `parallel_threshold` customers are to be evaluated; smaller passes run in this process."""

    def __init__(self, engine: Engine, lifecycle: LifecycleConfig, identity: IdentityConfig, *,
                 workers: int | None = None, parallel_threshold: int = 20_000) -> None:
        self.engine = engine
        self.rules = RuleSet(lifecycle)
        self.lifecycle = lifecycle
        self.identity = identity
        self.workers = workers if workers is not None else min(4, os.cpu_count() or 1)
        self.parallel_threshold = parallel_threshold
        self.identity_key = f"{identity.version}:{keys_fingerprint(identity)}"

    def _people_changed(self, since: datetime) -> bool:
        with self.engine.connect() as connection:
            return connection.execute(select(SourceRecord.id).where(
                SourceRecord.entity == "person", SourceRecord.last_seen_at > since).limit(1)).first() is not None

    def run(self, as_of: datetime | None = None, *, full: bool = False) -> TagSummary:
        """The whole pass; flows run the three steps as separate tasks."""
        plan = self.resolve(full=full)
        return self.assign_segments(self.tag(plan, as_of or plan.started))

    def resolve(self, *, full: bool = False) -> TagPlan:
        """Step 1: identities, then customer links; returns which customers need re-evaluation."""
        started = utcnow()
        state = read_state(self.engine)
        full = full or not state or state.get("ruleset") != self.rules.version or "since" not in state
        since = None if full else datetime.fromisoformat(state["since"])
        if since is not None and state.get("identity") == self.identity_key and not self._people_changed(since):
            resolution = Resolution()  # no contact or lead changed: every match still stands
        else:
            resolution = IdentityResolver(self.engine, self.identity).resolve(track=not full)
        # without a watermark every link is rebuilt: which addresses moved does not matter (and on a first pass,
        # looking up every record's address cost seconds)
        moved_keys = self._email_keys(resolution) | resolution.changed_keys if since is not None else set()
        touched = links.refresh(self.engine, since, resolution.changed_people, moved_keys, collect=not full)
        # a full pass re-evaluates everyone: who was touched is not collected (it would be every customer)
        touched = set() if full else touched | resolution.touched_customers
        return TagPlan(started=started, full=full, touched=touched, merges=len(resolution.merged),
                       new_customers=resolution.counts["new_customers"],
                       previous_as_of=datetime.fromisoformat(state["as_of"]) if state.get("as_of") else None)

    def tag(self, plan: TagPlan, as_of: datetime) -> TagSummary:
        """Step 2: stages and history for the touched customers (everyone after a rule change)."""
        summary = TagSummary(started=plan.started, as_of=as_of, ruleset_version=self.rules.version,
                             full=plan.full, merges=plan.merges, new_customers=plan.new_customers)
        self._write_stage_definitions()
        if plan.full:  # everyone, read a batch at a time in id order: no list of every customer is held
            with self.engine.begin() as connection:  # the fact queries' tables, as planned by the workers
                analyze(connection, "interaction", "deal", "ticket", "stage_history", "customer")
            summary.customers = self._count_live()
            batches: Iterable[list[str]] = self._live_batches()
            evaluated = summary.customers
        else:
            touched = set(plan.touched)
            if plan.previous_as_of is not None:
                touched |= self._customers_with_evidence_between(plan.previous_as_of, as_of)
            evaluate = self._live_among(touched)
            batches = [list(batch) for batch in chunks(evaluate, BATCH)]
            summary.customers, evaluated = self._count_live(), len(evaluate)
        segments: Counter[str] = Counter()
        if self.workers > 1 and evaluated >= self.parallel_threshold:
            results: Iterator[BatchResult] = self._evaluate_parallel(batches, as_of)
        else:
            results = (evaluate_batch(self.engine, self.rules, batch, as_of) for batch in batches)
        for result in results:
            summary.history_changed += self._write_batch(result)
            summary.segment_changes += result.segment_changes
            segments.update(result.segments)
        summary.evaluated = evaluated
        if plan.full:
            summary.segments, summary.segmented_all = dict(segments), True
        if plan.full or summary.history_changed > ANALYZE_AFTER:
            with self.engine.begin() as connection:
                analyze(connection, "stage_history", "customer")
        return summary

    def assign_segments(self, summary: TagSummary) -> TagSummary:
        """Step 3: every live customer's segment as of the evaluation time (after a full pass, tagging has set
        them all); then the watermark."""
        if not summary.segmented_all:
            changed, summary.segments = self._segments(summary.as_of)
            summary.segment_changes += changed
        summary.stages = self._stage_counts()
        self._save_state({"since": summary.started.isoformat(), "as_of": summary.as_of.isoformat(),
                          "ruleset": self.rules.version, "identity": self.identity_key})
        log.info("journey: %d customers, %d evaluated, %d history changes, %d merges", summary.customers,
                 summary.evaluated, summary.history_changed, summary.merges)
        return summary

    # ------------------------------------------------------------------ evaluation
    def _write_batch(self, result: BatchResult) -> int:
        with self.engine.begin() as connection:
            return write_batch(connection, result)

    def _evaluate_parallel(self, batches: Iterable[list[str]], as_of: datetime) -> Iterator[BatchResult]:
        """Several batches evaluated at once in worker processes (the evaluation is CPU-bound); the caller
        writes each result, in order, as it comes. At most two batches per worker are in flight, so results
        never pile up when writing is the slower side."""
        context = multiprocessing.get_context("spawn")  # not fork: flows run this from threaded processes
        url = self.engine.url.render_as_string(hide_password=False)
        with ProcessPoolExecutor(max_workers=self.workers, mp_context=context) as pool:
            pending: deque[Future[BatchResult]] = deque()
            for batch in batches:
                pending.append(pool.submit(_evaluate_in_worker, (url, self.lifecycle, batch, as_of)))
                if len(pending) >= 2 * self.workers:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()

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
        """Every live customer's segment (plain SQL: all customers are read and most written on a first pass),
        read and written a block at a time in one transaction."""
        since = time_writer(self.engine.dialect.name)(as_of)
        counts: Counter[str] = Counter()
        changed = 0
        sql = ("SELECT id, first_purchase_at, last_activity_at, last_return_at, segment FROM customer "
               "WHERE merged_into_id IS NULL")
        with self.engine.connect() as reader, transaction(self.engine) as writer:
            for rows in stream_rows(reader, sql, (), 20_000):
                changes = []
                for customer_id, first_purchase, last_activity, last_return_at, previous in rows:
                    value = segment(moment(first_purchase), moment(last_activity), moment(last_return_at), as_of,
                                    self.lifecycle)
                    counts[value] += 1
                    if value != previous:
                        changes.append((value, since, customer_id))
                write_update(writer, "customer", ("segment", "segment_since"), changes)
                changed += len(changes)
        return changed, dict(counts)

    def _stage_counts(self) -> dict[str, int]:
        with self.engine.connect() as connection:
            return dict(connection.execute(text(
                "SELECT h.stage, COUNT(*) FROM stage_history h JOIN customer c ON c.id = h.customer_id "
                "WHERE h.exited_at IS NULL AND c.merged_into_id IS NULL GROUP BY h.stage")).all())

    def _count_live(self) -> int:
        with self.engine.connect() as connection:
            return int(connection.exec_driver_sql("SELECT COUNT(*) FROM customer WHERE merged_into_id IS NULL")
                       .scalar_one())

    def _live_batches(self) -> Iterator[list[str]]:
        """Live customer ids in batches of BATCH, in id order (keyset pages: no cursor is held open)."""
        with self.engine.connect() as connection:
            placeholder = mark(connection)
        sql = (f"SELECT id FROM customer WHERE merged_into_id IS NULL AND id > {placeholder} ORDER BY id "
               f"LIMIT {BATCH}")
        last = ""
        while True:
            with self.engine.connect() as connection:
                batch = [row[0] for row in fetch_rows(connection, sql, (last,))]
            if batch:
                yield batch
                last = batch[-1]
            if len(batch) < BATCH:
                return

    def _live_among(self, customer_ids: set[str]) -> list[str]:
        """The live ones of `customer_ids`, in id order: looked up, so an incremental pass holds what it
        evaluates, not every customer's id (~130 MB at a million customers)."""
        if not customer_ids:
            return []
        with self.engine.connect() as connection:
            found = fetch_by_ids(connection, Customer, sorted(customer_ids), ["merged_into_id"])
        return sorted(key for key, (merged_into,) in found.items() if merged_into is None)

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


@dataclass
class BatchResult:
    """What one batch must write, bound as the database stores it (see dbio): made where the batch is evaluated,
    so the process that writes every batch only executes statements."""

    changed: list[str]                 # customers whose history changed
    replaced: list[str]                # of those, the ones that had stored rows to delete
    rows: list[tuple[Any, ...]]        # their new history rows, in HISTORY_COLUMNS order
    updates: list[tuple[Any, ...]]     # (*JOURNEY_COLUMNS, *SEGMENT_COLUMNS, id): journey or segment changed
    segments: Counter[str] = field(default_factory=Counter)  # the batch's customers by segment
    segment_changes: int = 0


def write_batch(connection: Connection, result: BatchResult) -> int:
    """Only what changed is written: unchanged histories keep their rows (and their computed_at)."""
    for chunk in chunks(result.replaced, 500):
        connection.exec_driver_sql(f"DELETE FROM stage_history WHERE customer_id IN ({marks(connection, len(chunk))})",
                                   tuple(chunk))
    write_insert(connection, "stage_history", HISTORY_COLUMNS, result.rows)
    with index_joins(connection):  # 2,000 customers of the whole table: by its key, not a hash of it all
        write_update(connection, "customer", JOURNEY_COLUMNS + SEGMENT_COLUMNS, result.updates)
    return len(result.changed)


def _stored_history(connection: Connection, customer_ids: list[str]) -> dict[str, tuple[tuple[Any, ...], ...]]:
    rows = fetch_rows(connection, (
        "SELECT customer_id, stage, stage_order, entered_at, exited_at, rule_id, ruleset_version, evidence_type, "
        f"evidence_id FROM stage_history WHERE customer_id {in_ids(connection, len(customer_ids))} "
        "ORDER BY customer_id, entered_at"), ids_parameters(connection, customer_ids))
    return {customer_id: tuple((row[1], row[2], moment(row[3]), moment(row[4]), *row[5:]) for row in group)
            for customer_id, group in groupby(rows, key=itemgetter(0))}


def _current_journeys(connection: Connection, customer_ids: list[str]) -> dict[str, tuple[Any, ...]]:
    """Each customer's journey columns and segment, then its segment_since as stored (written back unchanged
    when only the journey columns change)."""
    columns = ", ".join(JOURNEY_COLUMNS + SEGMENT_COLUMNS)
    rows = fetch_rows(connection, f"SELECT id, {columns} FROM customer "
                                  f"WHERE id {in_ids(connection, len(customer_ids))}",
                      ids_parameters(connection, customer_ids))
    return {row[0]: (moment(row[1]), moment(row[2]), moment(row[3]), moment(row[4]), row[5], row[6], row[7])
            for row in rows}


def evaluate_batch(engine: Engine, rules: RuleSet, customer_ids: list[str], as_of: datetime) -> BatchResult:
    """Evaluate a batch of customers and compare with what is stored: what must be written."""
    with engine.connect() as connection:
        index_probes(connection)
        facts = load_facts(connection, customer_ids)
        stored = _stored_history(connection, customer_ids)
        current = _current_journeys(connection, customer_ids)
    result = BatchResult([], [], [], [])
    stamp = time_writer(engine.dialect.name)
    now, since = stamp(utcnow()), stamp(as_of)
    for customer_id in customer_ids:
        journey = rules.evaluate(facts.pop(customer_id), as_of)  # evaluated facts go at once, with their caches
        history = tuple((stay.stage, stay.order, stay.entered_at, stay.exited_at, stay.rule_id, rules.version,
                         stay.evidence.type, stay.evidence.id) for stay in journey.history)  # as _stored_history reads
        if history != stored.get(customer_id, ()):
            result.changed.append(customer_id)
            if customer_id in stored:
                result.replaced.append(customer_id)
            result.rows += [(customer_id, stage, order, stamp(entered), stamp(exited), rule, version, kind, evidence,
                             now) for stage, order, entered, exited, rule, version, kind, evidence in history]
        values = (journey.first_purchase_at, journey.last_activity_at, journey.last_return_at,
                  journey.last_interaction_at, journey.last_interaction_channel)  # JOURNEY_COLUMNS
        value = segment(values[0], values[1], values[2], as_of, rules.config)
        result.segments[value] += 1
        stored_values = current.get(customer_id, (None,) * 7)
        moved = value != stored_values[5]
        if moved or values != stored_values[:5]:
            result.segment_changes += moved
            result.updates.append((*(stamp(time) for time in values[:4]), values[4], value,
                                   since if moved else stored_values[6], customer_id))
    return result


def _evaluate_in_worker(job: tuple[str, LifecycleConfig, list[str], datetime]) -> BatchResult:
    url, config, customer_ids, as_of = job
    engine = _worker_engine(url)
    return evaluate_batch(engine, RuleSet(config), customer_ids, as_of)


_WORKER_ENGINES: dict[str, Engine] = {}
WORKER_MMAP = 2**31  # bytes of the SQLite file a worker maps (SQLite caps it at its compile-time maximum)


def _worker_engine(url: str) -> Engine:
    """One engine per worker process, reused across its batches."""
    if url not in _WORKER_ENGINES:
        from canonical.db import make_engine

        engine = make_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _map_pages)
        _WORKER_ENGINES[url] = engine
    return _WORKER_ENGINES[url]


def _map_pages(dbapi_connection: Any, _record: Any) -> None:
    """Workers only read, and the fact queries jump around the interaction table: memory-mapped pages are read
    without a system call and a copy each (about a third of the workers' query time), and the operating system
    shares them between the workers. The writing process does not map the file: every page it touched would
    count in its resident size."""
    cursor = dbapi_connection.cursor()
    cursor.execute(f"PRAGMA mmap_size = {WORKER_MMAP}")
    cursor.close()

