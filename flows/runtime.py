"""What every flow shares: the hub's context (settings, database, configuration) and the ops view
(Prefect artifacts), so the flows themselves read like the process they run."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from canonical.db import check_connection, make_engine
from journeyhub.config import load_config_file, mappings_root
from journeyhub.journey.identity_config import IdentityConfig
from journeyhub.journey.lifecycle_config import LifecycleConfig
from journeyhub.settings import Settings
from journeyhub.writeback.config import WritebackConfig

if TYPE_CHECKING:
    from prefect.states import State

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


@dataclass(frozen=True)
class HubContext:
    settings: Settings
    engine: Engine
    mappings: Path
    lifecycle: LifecycleConfig
    identity: IdentityConfig
    writeback: WritebackConfig


def engine_for(url: str) -> Engine:
    """One engine per database URL per process (tasks run in threads and share it)."""
    with _lock:
        if url not in _engines:
            engine = make_engine(url)
            check_connection(engine)
            _engines[url] = engine
        return _engines[url]


def hub_context(settings: Settings | None = None) -> HubContext:
    settings = settings or Settings()
    root = mappings_root(settings)
    return HubContext(settings=settings, engine=engine_for(settings.database_url), mappings=root,
                      lifecycle=load_config_file(root, "lifecycle.yaml"),
                      identity=load_config_file(root, "identity.yaml"),
                      writeback=load_config_file(root, "writeback.yaml"))


def under_prefect() -> bool:
    """True inside a flow run, or when a Prefect server is configured (then CLI runs go through flows so
    ops find them in the UI); otherwise the CLI runs the same steps directly, without Prefect."""
    from prefect.context import FlowRunContext

    if FlowRunContext.get() is not None:
        return True
    from prefect.settings import PREFECT_API_URL

    return bool(os.environ.get("PREFECT_API_URL") or PREFECT_API_URL.value())


#: who else sees the run log's lines (the CLI prints them as the run goes): called with (level, line)
_listeners: list[Callable[[int, str], None]] = []


@contextmanager
def listening(listener: Callable[[int, str], None]) -> Iterator[None]:
    """Show every `run_log` line of this process to `listener` while the block runs."""
    _listeners.append(listener)
    try:
        yield
    finally:
        _listeners.remove(listener)


def run_log(message: str, *args: Any, level: int = 20) -> None:
    """Log to the Prefect run (visible in the UI) when inside one, and to the listeners (the CLI); else,
    with no listener, to the hub's own logger."""
    import logging

    from prefect.context import FlowRunContext, TaskRunContext

    in_run = FlowRunContext.get() is not None or TaskRunContext.get() is not None
    if in_run:
        from prefect.logging import get_run_logger

        get_run_logger().log(level, message, *args)
    for listener in list(_listeners):
        listener(level, message % args if args else message)
    if not in_run and not _listeners:
        logging.getLogger("journeyhub.flows").log(level, message, *args)


class ProgressLog:
    """Progress of long pulls as run-log lines — records so far, rate, elapsed — at most one line per
    object every `every` seconds, so short pulls log none. Call it after each batch with the object's
    counts so far (`sync_system`'s `progress`); an object is timed from the last batch of the same CRM before
    its first one (the previous object's, or, with objects pulled at once, a neighbour's: an elapsed time that
    may start a little early, never late). Safe to call from the threads that pull them."""

    def __init__(self, log: Callable[..., None] = run_log, every: float = 10.0) -> None:
        self.log, self.every = log, every
        self._started: dict[tuple[str, str], float] = {}
        self._logged: dict[tuple[str, str], float] = {}
        self._last_batch: dict[str, float] = {}
        self._created = time.monotonic()

    def __call__(self, system: str, object_type: str, counts: Any) -> None:
        now = time.monotonic()
        key = (system, object_type)
        started = self._started.setdefault(key, self._last_batch.get(system, self._created))
        self._last_batch[system] = now
        if now - self._logged.get(key, started) < self.every:
            return
        self._logged[key] = now
        elapsed = max(now - started, 1e-6)
        self.log("%s %s: %s records so far, %s records/s, %s elapsed", system, object_type,
                 f"{counts.records_read:,}", f"{counts.records_read / elapsed:,.0f}", seconds_text(elapsed))


def seconds_text(seconds: float) -> str:
    """`42 s`, `3 min 05 s`."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


class RunProblems(Exception):
    """What a flow run that did not fully succeed raises when called without `return_state`: the message
    names what failed or ended partial; `result` is what the run did (also returned by `outcome`)."""

    def __init__(self, message: str, result: Any = None) -> None:
        super().__init__(message, result)
        self.message, self.result = message, result

    def __str__(self) -> str:
        return self.message


def final_state(status: str, message: str, result: Any) -> State[Any]:
    """The flow run's final state told by its objects: `Completed` only when everything succeeded; a run
    with a partial or failed object ends `Failed` named `Partial` (the UI and the API show a failed run,
    automations on failed runs fire), and `Failed` when nothing worked."""
    from prefect.states import Completed, Failed

    if status == "succeeded":
        return Completed(message=message, data=result)
    return Failed(message=message, name="Partial" if status == "partial" else "Failed",
                  data=RunProblems(message, result))


def refused(settings: Settings) -> State[Any] | None:
    """A deployed flow run's own `config check`: malformed or incomplete settings end it Failed at once, one
    log line per problem naming the variable, instead of retrying a bad URL against the network (the CLI
    refuses the same settings with exit 2). None when the settings are fine."""
    from prefect.states import Failed

    problems = settings.problems()
    if not problems:
        return None
    for problem in problems:
        run_log("configuration: %s", problem, level=40)
    return Failed(message="configuration: " + "; ".join(problems), data=RunProblems("; ".join(problems)))


def outcome(state: State[Any]) -> Any:
    """What a flow run called with `return_state=True` did, whether it succeeded or ended partial/failed;
    a crash (an exception that is not `RunProblems`) is raised."""
    value = state.result(raise_on_failure=False)
    if isinstance(value, RunProblems):
        return value.result
    if isinstance(value, BaseException):
        raise value
    return value


def in_flow_run() -> bool:
    from prefect.context import FlowRunContext

    return FlowRunContext.get() is not None


def run_name(prefix: str, *parameters: str) -> Callable[[], str]:
    """Readable flow-run names: `sync-hubspot-20261122-1415`, `hub-hubspot+salesforce-20261122-1415`."""

    def name() -> str:
        from prefect.runtime import flow_run

        values = flow_run.parameters or {}
        parts = [prefix]
        for parameter in parameters:
            value = values.get(parameter)
            if isinstance(value, list | tuple):
                value = "+".join(map(str, value)) or "all"
            if value not in (None, ""):
                parts.append(str(value))
        return "-".join([*parts, datetime.now(UTC).strftime("%Y%m%d-%H%M")])

    return name


# The ops view. Prefect's UI shows a table artifact in a column about 726 px wide at a 1,280-px screen and
# never wraps a cell, so every table here has at most seven narrow columns (tests/flows/test_ops_view.py
# checks each header is visible at 1,280 px); errors and the rest go to the summaries and the run log.
# "stored" counts what a pull wrote: inserted + updated + deleted (the split is in `sync_run`).
def _stored(counts: Any) -> int:
    return int(counts.inserted + counts.updated + counts.deleted)


def pull_rows(sync: Any, *, with_crm: bool = False) -> list[dict[str, Any]]:
    """One row per object of a CRM's pull: status, read, stored, quarantined, API calls, seconds."""
    return [{**({"crm": sync.system} if with_crm else {}), "object": item.object_type, "status": item.status,
             "read": item.counts.records_read, "stored": _stored(item.counts), "quarantined": item.counts.quarantined,
             "API calls": item.counts.api_calls, **({} if with_crm else {"seconds": round(item.seconds, 1)})}
            for item in sync.objects]


def push_rows(reports: list[Any]) -> list[dict[str, Any]]:
    """One row per CRM and object of a write-back: planned (records to create, update or upsert), pushed,
    rejected, conflicts; a CRM whose push did not run is one row `not run`."""
    rows = []
    for report in reports:
        planned: dict[tuple[str, str], int] = {}
        for (system, object_type, action), count in report.plan.actions.items():
            planned.setdefault((system, object_type), 0)
            if action != "unchanged":
                planned[(system, object_type)] += count
        for (system, object_type), count in sorted(planned.items()):
            outcome = report.outcome.objects.get((system, object_type)) if report.outcome else None
            status = "planned" if report.dry_run else "succeeded" if not outcome or not outcome.failed else \
                "partial" if outcome.pushed else "failed"
            rows.append({"crm": system, "object": object_type, "status": status, "planned": count,
                         "pushed": outcome.pushed if outcome else 0, "rejected": outcome.failed if outcome else 0,
                         "conflicts": outcome.conflicts if outcome else 0})
        rows += [{"crm": system, "object": "-", "status": "not run", "planned": 0, "pushed": 0, "rejected": 0,
                  "conflicts": 0} for system in report.errors]
    return rows


def publish_sync(result: Any) -> None:
    """The per-object table of one CRM's pull as an artifact of the current flow run."""
    if not in_flow_run():
        return
    from prefect.artifacts import create_table_artifact

    create_table_artifact(key=f"{result.system}-pull", table=pull_rows(result), description=(
        f"{result.system} pull: {result.status}. Stored = inserted + updated + deleted; errors are in the run's "
        "message and log"))


def publish_push(reports: list[Any]) -> None:
    """What each CRM's write-back planned and did, as an artifact of the current flow run."""
    if not in_flow_run():
        return
    from prefect.artifacts import create_table_artifact

    create_table_artifact(key="push-summary", table=push_rows(reports), description=(
        "Write-back per CRM and object: records planned, pushed, rejected by the CRM (retried next push), "
        "conflicts; why a CRM was not run is in the run's message and log"))


def ops_rows(result: Any) -> list[dict[str, Any]]:
    """The ops table of a hub run: one row per CRM and object pulled (a CRM whose pull failed outright is
    one row `*`)."""
    rows = [row for sync in result.syncs for row in pull_rows(sync, with_crm=True)]
    rows += [{"crm": system, "object": "*", "status": "failed", "read": 0, "stored": 0, "quarantined": 0,
              "API calls": 0} for system in result.failures]
    return sorted(rows, key=lambda row: (row["crm"], row["object"]))


def quarantine_reasons(engine: Engine, run_ids: list[str], limit: int = 10) -> list[tuple[str, str, str, int]]:
    if not run_ids:
        return []
    with engine.connect() as connection:
        placeholders = ", ".join(f":r{index}" for index in range(len(run_ids)))
        return [tuple(row) for row in connection.execute(text(
            "SELECT system, object_type, reason, COUNT(*) AS n FROM quarantine "
            f"WHERE run_id IN ({placeholders}) AND resolved_at IS NULL GROUP BY system, object_type, reason "
            "ORDER BY n DESC LIMIT :limit"), {**{f"r{i}": run for i, run in enumerate(run_ids)}, "limit": limit})]


def publish_hub(result: Any) -> None:
    """The ops view of a hub run: what was pulled and pushed per CRM and object (two tables), and a markdown
    summary with the errors, API calls and the top quarantine reasons (the lifecycle funnel is published by
    the journey subflow)."""
    if not in_flow_run():
        return
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_table_artifact(key="hub-objects", table=ops_rows(result), description=(
        "Pulled per CRM and object: read, stored (inserted + updated + deleted), quarantined, API calls; the "
        "write-back is in hub-pushes, errors in hub-summary"))
    create_table_artifact(key="hub-pushes", table=push_rows(result.pushes), description=(
        "Written back per CRM and object: planned, pushed, rejected by the CRM, conflicts"))
    reasons = quarantine_reasons(hub_context().engine, [sync.run_id for sync in result.syncs])
    calls = {sync.system: sync.totals().api_calls for sync in result.syncs}
    pushed = {system: n for report in result.pushes if report.outcome for system, n in report.outcome.api_calls.items()}
    lines = [f"## Hub run: {result.status}", "", f"CRMs: {', '.join(result.systems)}", "",
             "API calls: " + ", ".join(f"{system} {calls.get(system, 0)} pull + {pushed.get(system, 0)} push"
                                       for system in result.systems), ""]
    problems = result.problems()
    lines += ["### Errors", *[f"- {problem}" for problem in problems], ""] if problems else ["No errors.", ""]
    if reasons:
        lines += ["### Top quarantine reasons", "", "| system | object | reason | records |", "|---|---|---|---|",
                  *[f"| {s} | {o} | {r} | {n} |" for s, o, r, n in reasons], ""]
    if result.journey is not None:
        stages = ", ".join(f"{stage} {count}" for stage, count in result.journey.stages.items())
        lines += ["### Journey", f"- {result.journey.customers} customers; stages: {stages}"]
    create_markdown_artifact(key="hub-summary", markdown="\n".join(lines), description="Hub run summary")


def funnel_rows(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT stage, customers, reached, conversion_to_next, median_days_in_stage "
                                       "FROM lifecycle_funnel ORDER BY stage_order"))
        return [dict(row._mapping) for row in rows]


def publish_journey(settings: Settings, summary: Any) -> None:
    """The lifecycle funnel and the tagging summary as artifacts of the current flow run."""
    if not in_flow_run():
        return
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    rows = funnel_rows(hub_context(settings).engine)
    create_table_artifact(key="lifecycle-funnel", table=[
        {"stage": row["stage"], "customers": row["customers"], "ever reached": row["reached"],
         "conversion to next": "" if row["conversion_to_next"] is None else f"{row['conversion_to_next']:.1%}",
         "median days in stage": "" if row["median_days_in_stage"] is None else f"{row['median_days_in_stage']:.0f}"}
        for row in rows], description="Lifecycle funnel: customers per stage now, how many ever reached it, "
                                      "conversion to the next stage and median days spent in it")
    segments = ", ".join(f"{name} {count}" for name, count in sorted(summary.segments.items()))
    create_markdown_artifact(key="journey-summary", markdown=(
        f"## Journey as of {summary.as_of:%Y-%m-%d %H:%M} UTC\n\n"
        f"- rules version **{summary.ruleset_version}**{' (full re-evaluation)' if summary.full else ''}\n"
        f"- **{summary.customers}** customers, {summary.new_customers} new, {summary.merges} merged\n"
        f"- {summary.evaluated} re-evaluated, {summary.history_changed} stage histories changed\n"
        f"- segments: {segments}\n"), description="Identity resolution and tagging summary")
