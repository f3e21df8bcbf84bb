"""Large pulls map their pages in a worker process while this process reads and writes.

A pull spends its time in three places: reading a page (HTTP, JSON), preparing it (mapping, payload hashes,
match keys: pure Python, CPU-bound) and writing it (one SQLite/PostgreSQL transaction). Threads cannot
overlap the CPU-bound part, so once a pull proves large (`after_records` read in this call) its pages are
prepared in one worker process, one page ahead: while the worker prepares page n, this process reads page
n+1 and writes page n-1. Only the records go out and only the prepared rows come back (`PageParts`). Once
the worker is up, every pull uses it; small pulls (incremental syncs) never start it.

Order and atomicity are unchanged: pages are written in the order read, each with its own cursor, so a
pull stopped anywhere resumes exactly as before. If the worker dies, the page is prepared here instead and
the next large pull starts a new worker.
"""

from __future__ import annotations

import atexit
import gc
import hashlib
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import threading
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

from connectors.base import Page
from connectors.base import RemoteRecord as Record
from journeyhub.ingest.loader import PageLoader, PageParts, Prepared, Preparer
from journeyhub.ingest.spec import MappingSpec
from journeyhub.journey.identity_config import IdentityConfig

log = logging.getLogger("journeyhub.sync")


Shipped = tuple[str, dict[str, Any] | None, dict[str, Any], bool]  # a record as sent: id, data, extra, deleted


@dataclass(frozen=True)
class PrepareJob:
    """One page for the worker: its records, as plain tuples (what preparing reads of them; pickled several
    times faster than the records), plus what the worker needs to build (once) the same Preparer."""

    preparer_key: str
    system: str
    object_type: str
    spec: MappingSpec
    identity: IdentityConfig | None
    records: list[Shipped]


def shipped(records: list[Record]) -> list[Shipped]:
    return [(record.remote_id, record.data, record.extra, record.deleted) for record in records]


# ---------------------------------------------------------------------------------------------- worker side
_preparers: dict[str, Preparer] = {}


def prepare_job(job: PrepareJob) -> PageParts:
    """Runs in the worker process: the page's parts, with the Preparer built on first use."""
    preparer = _preparers.get(job.preparer_key)
    if preparer is None:
        if len(_preparers) > 32:  # a long-lived worker serving many runs: drop old configurations
            _preparers.clear()
        preparer = _preparers[job.preparer_key] = Preparer(job.system, {job.object_type: job.spec}, job.identity)
    object_type = job.object_type
    records = [Record(object_type, remote_id, data, deleted=deleted, extra=extra)
               for remote_id, data, extra, deleted in job.records]
    parts = preparer.parts(object_type, records)
    gc.collect()  # in the worker process only: its collector runs between pages (see _start_worker)
    return parts


def _start_worker() -> None:
    """The worker process's entry point (the pool's initializer): this process is the hub's own, so it sets its
    own collector policy here, once. Its imports are done, so everything alive now is frozen out of the
    collector's way; then automatic collections stop, because a page's thousands of new objects would set off
    collections that walk them again and again while they are alive: the worker collects once after each page
    instead (`prepare_job`). It also exits with its parent, and leaves Ctrl-C to it: a terminal sends SIGINT to
    the whole process group, and the parent stops the worker in order (a worker dying of KeyboardInterrupt
    would print its traceback into the parent's terminal)."""
    gc.collect()
    gc.freeze()
    gc.disable()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()


def _exit_with_parent() -> None:
    """A pool's worker outlives a parent killed with SIGKILL (its queue's pipe never closes), so it watches
    the parent's sentinel and exits when the parent is gone."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(0)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


# ---------------------------------------------------------------------------------------------- parent side
class _Worker:
    """One spawned worker process per hub process, started on first need, shared by concurrent pulls."""

    def __init__(self) -> None:
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, job: PrepareJob) -> Future[PageParts]:
        with self._lock:
            if self._executor is None:
                self._executor = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                                     initializer=_start_worker)
            return self._executor.submit(prepare_job, job)

    @property
    def running(self) -> bool:
        """Started already: then even small pulls use it (it costs no start-up any more)."""
        return self._executor is not None

    def pids(self) -> list[int]:
        """The worker's process ids (for monitoring and tests)."""
        executor = self._executor
        return list(executor._processes or {}) if executor is not None else []

    def reset(self) -> None:
        """Forget a broken worker; the next submit starts a fresh one."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


WORKER = _Worker()
atexit.register(WORKER.reset)


def _preparer_key(system: str, object_type: str, spec: MappingSpec, identity: IdentityConfig | None) -> str:
    """Identifies the mapping and identity settings, so the worker reuses a Preparer only for the same ones."""
    text = "|".join([system, object_type, spec.model_dump_json(),
                     identity.model_dump_json() if identity is not None else "-"])
    return hashlib.sha1(text.encode()).hexdigest()


class PreparePipeline:
    """Turns pages, in order, into Prepared pages: here while the pull is small, in the worker once
    `after_records` records were read (None: always here)."""

    def __init__(self, loader: PageLoader, after_records: int | None) -> None:
        self.loader = loader
        self.after_records = after_records
        self.records_read = 0
        self._pending: deque[tuple[Page, Future[PageParts]]] = deque()
        self._keys: dict[str, str] = {}

    def feed(self, page: Page) -> list[Prepared]:
        """Takes the next page; returns the pages ready to write, oldest first (at most one page stays
        in the worker, so memory holds about two pages)."""
        use_worker = self.after_records is not None and (WORKER.running or self.records_read >= self.after_records)
        self.records_read += len(page.records)
        if not use_worker or not page.records:
            return [*self.flush(), self.loader.prepare(page)]
        self._pending.append((page, WORKER.submit(self._job(page))))
        ready = []
        while len(self._pending) > 1:
            ready.append(self._collect(*self._pending.popleft()))
        return ready

    def flush(self) -> list[Prepared]:
        """Every page still in the worker, in order."""
        ready = []
        while self._pending:
            ready.append(self._collect(*self._pending.popleft()))
        return ready

    def cancel(self) -> None:
        """Drop pages not yet collected (their pull is ending with an error; they are read again next time)."""
        while self._pending:
            self._pending.popleft()[1].cancel()

    def _job(self, page: Page) -> PrepareJob:
        object_type, system, identity = page.object_type, self.loader.system, self.loader.preparer.identity
        spec = self.loader.preparer.mapper(object_type).spec  # a missing mapping fails here, with its clear message
        if object_type not in self._keys:
            self._keys[object_type] = _preparer_key(system, object_type, spec, identity)
        return PrepareJob(self._keys[object_type], system, object_type, spec, identity, shipped(page.records))

    def _collect(self, page: Page, future: Future[PageParts]) -> Prepared:
        try:
            parts = future.result()
        except BrokenProcessPool:
            log.warning("the mapping worker process stopped; preparing %s pages in this process",
                        page.object_type)
            WORKER.reset()
            self.after_records = None  # the rest of this pull stays here
            return self.loader.prepare(page)
        return self.loader.assemble(page, parts)
