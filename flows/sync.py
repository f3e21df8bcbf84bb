"""Pull flows: one per CRM, one task per batch of pages (never per record).

Each object type is pulled from its persisted cursor in batches of `JOURNEYHUB_PAGE_TASK_SIZE` pages; a
batch commits every page with its cursor, so a retried or restarted task continues where the last committed
page ended. The read itself goes on from batch to batch (one query per object, its next page read and
mapped while a batch ends) and is dropped when a batch fails, so a retry starts from the cursor. A fatal
error (rejected credentials, a missing permission) stops that CRM with its reason; a retriable one that
outlives the connector's own retries fails the task, which Prefect retries twice.
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from connectors.base import Connector
from connectors.errors import ConnectorError, FatalError, FieldNotFound, RetriableError
from flows.fields import publish_warnings, read_plan
from flows.limits import throttle
from flows.process import tune_gc
from flows.runtime import (
    HubContext,
    ProgressLog,
    final_state,
    hub_context,
    outcome,
    publish_sync,
    refused,
    run_log,
    run_name,
    under_prefect,
)
from flows.waves import concurrency, run_wave, waves
from journeyhub.config import load_mappings
from journeyhub.connections import open_connector
from journeyhub.ingest.loader import Counts, PageLoader
from journeyhub.ingest.schema import SchemaMismatch, finish_read
from journeyhub.ingest.spec import MappingSpec
from journeyhub.ingest.sync import close_read, pull_pages
from journeyhub.ingest.writer_lock import writer_lock
from journeyhub.runs import close_interrupted, close_run, new_run_id, open_run
from journeyhub.settings import Settings, SystemName

#: logged once when another run holds the object's writer lock (`journeyhub.ingest.writer_lock`)
WAITING = "%s %s: another run is pulling it; waiting for it to finish, then going on from its cursor"
#: reference data first, then people, then what refers to them
ENTITY_ORDER = ["owner", "pipeline_stage", "company", "person", "deal", "ticket", "association", "interaction"]
#: the connectors opened per settings object (by id), dropped when those settings are garbage-collected
_connectors: dict[int, dict[str, Connector]] = {}
_lock = threading.Lock()


def connector_for(system: SystemName, settings: Settings) -> Connector:
    """One connector per CRM per settings per process: tokens and sessions are reused across tasks."""
    with _lock:
        opened = _connectors.get(id(settings))
        if opened is None:
            opened = _connectors[id(settings)] = {}
            weakref.finalize(settings, _connectors.pop, id(settings), None)
        if system not in opened:
            opened[system] = open_connector(system, settings, throttle=throttle(system, settings))
        return opened[system]


def close_connectors(settings: Settings) -> None:
    """Close and forget the connectors opened for `settings` (an embedded run or a test that is done)."""
    with _lock:
        opened = _connectors.pop(id(settings), {})
    for connector in opened.values():
        connector.close()


def ordered_objects(mappings: dict[str, MappingSpec], only: list[str] | None = None) -> list[str]:
    chosen = [name for name in mappings if only is None or name in only]
    return sorted(chosen, key=lambda name: (ENTITY_ORDER.index(mappings[name].entity), name))


@dataclass
class BatchResult:
    counts: Counts
    pages: int
    done: bool


@dataclass
class ObjectResult:
    object_type: str
    status: str
    counts: Counts
    seconds: float
    error: str | None = None
    warnings: list[str] = field(default_factory=list)   # fields the org lacks, each said once per run
    stopped_crm: bool = False                            # a fatal error that stops the whole CRM


@dataclass
class SystemSync:
    system: str
    run_id: str
    objects: list[ObjectResult] = field(default_factory=list)
    error: str | None = None

    @property
    def status(self) -> str:
        """`succeeded`: every object was pulled to the end; `failed`: nothing was (every object failed, or the CRM
        stopped before any object finished); `partial`: anything between (a failed object, a CRM stopped
        half-way). Quarantined records do not make a pull fail: they are bad data, stored with their reason,
        counted and reported (`quarantine_notes`), never fatal to the run."""
        if not self.error and all(item.status == "succeeded" for item in self.objects):
            return "succeeded"
        if not any(item.status == "succeeded" for item in self.objects):
            return "failed"
        return "partial"

    def problems(self) -> list[str]:
        """One line per object that failed (and why the CRM stopped), for messages and logs."""
        lines, fatal = [], set[str | None]()
        for item in self.objects:
            if item.status == "succeeded" or (item.stopped_crm and item.error in fatal):
                continue  # objects pulled at once may meet the same fatal error: it is said once
            if item.stopped_crm:
                fatal.add(item.error)
            lines.append(f"{self.system} {item.object_type} {item.status}: {item.error}")
        if self.error and not any(item.error == self.error for item in self.objects):
            lines.append(f"{self.system} stopped: {self.error}")
        return lines

    def quarantine_notes(self) -> list[str]:
        """One line per object that quarantined records in this run (bad data to fix in the CRM)."""
        return [f"{self.system} {item.object_type}: {item.counts.quarantined} record(s) quarantined"
                for item in self.objects if item.counts.quarantined]

    @property
    def warnings(self) -> list[str]:
        return [warning for item in self.objects for warning in item.warnings]

    def totals(self) -> Counts:
        total = Counts()
        for item in self.objects:
            total.add(item.counts)
        return total


def pull_batch_plain(settings: Settings, system: SystemName, object_type: str, *, full: bool, run_id: str,
                     run_row_id: int, max_pages: int, fields: list[str] | None = None) -> BatchResult:
    """Store up to `max_pages` pages of one object from its persisted cursor, reading `fields`; the read stays
    open for the run's next batch of the object (`pull_pages(keep_open=...)`, ended by `pull_object`)."""
    context = hub_context(settings)
    loader = PageLoader(context.engine, system, load_mappings(context.mappings, system), run_id, context.identity)
    batch = pull_pages(context.engine, connector_for(system, settings), loader, object_type, full=full,
                       max_pages=max_pages, run_row_id=run_row_id, group_records=settings.store_group_records,
                       worker_after=settings.worker_after, fields=fields, keep_open=run_id)
    return BatchResult(batch.counts, batch.pages, batch.done)


def _retriable(task: Any, task_run: Any, state: Any) -> bool:
    """Prefect retries a batch only for errors that waiting can fix."""
    try:
        state.result()
    except RetriableError:
        return True
    except Exception:
        return False
    return False


pull_batch = task(name="pull-pages", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30],
                  retry_condition_fn=_retriable, task_run_name="{system}-{object_type}",
                  tags=["crm-pull"])(pull_batch_plain)


def pull_object(settings: Settings, context: HubContext, system: SystemName, spec: MappingSpec, *, full: bool,
                run_id: str, pull: Callable[..., BatchResult],
                progress: Callable[[str, str, Counts], None] | None) -> ObjectResult:
    """Pull one object to the end from its persisted cursor, recording its run row: the fields to read are
    planned against the org's schema first (`flows.fields`), and a field the CRM no longer has makes it
    describe again once and read on without it."""
    object_type = spec.object
    started = time.perf_counter()
    row = open_run(context.engine, run_id, "pull", system, object_type)
    close_interrupted(context.engine, "pull", system, object_type, keep=row)
    counts, first, warnings = Counts(), True, list[str]()
    try:
        plan = read_plan(context.engine, connector_for(system, settings), spec, row, counts, warnings)
        while True:
            try:
                batch = pull(settings, system, object_type, full=(full or plan.reread) and first, run_id=run_id,
                             run_row_id=row, max_pages=settings.page_task_size, fields=plan.fields)
            except FieldNotFound:  # deleted since the org was described: describe again, read without it
                if plan.refreshed:
                    raise
                plan = read_plan(context.engine, connector_for(system, settings), spec, row, counts, warnings,
                                 refresh=True)
                continue
            first = False
            counts.add(batch.counts)
            if progress is not None:
                progress(system, object_type, counts)
            if batch.done or batch.counts.records_read == 0:  # an idle read: nothing more to pull
                break
        finish_read(context.engine, plan)
    except (ConnectorError, SchemaMismatch) as error:
        close_run(context.engine, row, "failed", str(error))
        run_log("%s %s failed: %s", system, object_type, error, level=40)
        stopped = isinstance(error, FatalError) and not isinstance(error, FieldNotFound)
        return ObjectResult(object_type, "failed", counts, time.perf_counter() - started, str(error), warnings,
                            stopped_crm=stopped)
    except Exception as error:
        close_run(context.engine, row, "failed", f"{type(error).__name__}: {error}")
        raise
    finally:
        close_read(run_id, system, object_type)  # a batch that stopped early leaves its read open
    close_run(context.engine, row, "succeeded")
    return ObjectResult(object_type, "succeeded", counts, time.perf_counter() - started, warnings=warnings)


def sync_system(settings: Settings, system: SystemName, *, full: bool = False, objects: list[str] | None = None,
                run_id: str | None = None, pull: Callable[..., BatchResult] = pull_batch_plain,
                progress: Callable[[str, str, Counts], None] | None = None) -> SystemSync:
    """Pull every mapped object of one CRM, in dependency order, recording a run per object; one run at a time
    writes an object (`journeyhub.ingest.writer_lock`). The objects of one dependency step are pulled
    `object_concurrency` at a time (`flows.waves`), so the CRM's API budget sets the pace, not this loop."""
    context = hub_context(settings)
    run_id = run_id or new_run_id()
    result = SystemSync(system, run_id)
    mappings = load_mappings(context.mappings, system)
    width = concurrency(settings, context.engine, connector_for(system, settings))
    stop = threading.Event()  # a fatal error: objects not started yet are not started

    def one(object_type: str) -> ObjectResult | None:
        if stop.is_set():
            return None
        try:
            with writer_lock(context.engine, system, object_type,
                             on_wait=partial(run_log, WAITING, system, object_type)):
                item = pull_object(settings, context, system, mappings[object_type], full=full, run_id=run_id,
                                   pull=pull, progress=progress)
        except BaseException:
            stop.set()
            raise
        if item.stopped_crm:  # a fatal error is the CRM's (credentials, permissions), not one object's
            stop.set()
        elif item.status != "failed":
            counts = item.counts
            run_log("%s %s: read %d, inserted %d, updated %d, deleted %d, quarantined %d, skipped %d, "
                    "%d API calls", system, object_type, counts.records_read, counts.inserted, counts.updated,
                    counts.deleted, counts.quarantined, counts.skipped, counts.api_calls)
        return item

    for wave in waves(ordered_objects(mappings, objects), mappings):
        for item in run_wave(one, wave, width):
            if item is None:
                continue
            result.objects.append(item)
            if item.stopped_crm and result.error is None:
                result.error = item.error
        if stop.is_set():
            break
    return result


@flow(name="sync-crm", flow_run_name=run_name("sync", "system"), log_prints=True)
def sync_crm(system: SystemName, full: bool = False, objects: list[str] | None = None) -> State[Any]:
    """Pull one CRM into the canonical database (incremental from the persisted cursors; `full` re-reads)."""
    tune_gc()  # a deployment's flow run is its process's entry (flows/process.py)
    settings = Settings()
    if (stop := refused(settings)) is not None:
        return stop
    result = sync_system(settings, system, full=full, objects=objects, pull=pull_batch,
                         progress=ProgressLog(run_log))
    publish_sync(result)
    publish_warnings(result)
    totals = result.totals()
    message = "; ".join(result.problems() + result.quarantine_notes()) or (
        f"{system}: {len(result.objects)} objects, {totals.records_read} records read, {totals.inserted} inserted, "
        f"{totals.updated} updated")
    return final_state(result.status, message, result)


def run_sync(settings: Settings, systems: list[SystemName], *, full: bool = False,
             progress: Callable[[str, str, Counts], None] | None = None) -> list[SystemSync]:
    """Through the flow when a Prefect server is configured, else directly."""
    if under_prefect():
        return [outcome(sync_crm(system, full=full, return_state=True)) for system in systems]
    run_id = new_run_id()
    return [sync_system(settings, system, full=full, run_id=run_id, progress=progress) for system in systems]
