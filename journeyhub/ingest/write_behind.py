"""Pages written in order, one transaction each — on PostgreSQL while the next page is being made ready.

On PostgreSQL a page's transaction is mostly the server's work (its statements' inserts, index upkeep,
parsing the raw documents into jsonb) while this process waits; classifying the next page against what is
stored and building its rows is this process's work. `OrderedWrites` does the second while the first runs:
page n's transaction runs in a writer thread (waiting on a socket releases the interpreter lock) while the
caller stages page n+1 (`PageLoader.stage`). At most one page is in flight, and page n+1's transaction
starts only after page n's committed, so pages still commit in the order read, each with its own cursor.

Nothing else changes. A page that reads a source key the page in flight writes (a record read twice across
the page boundary, a merge) is staged only after that page committed, so it classifies exactly as one written
after the other; PostgreSQL's page transactions count what their statements did, not what the read before
them guessed (`loader._recount`). On SQLite a page is classified inside its transaction, under the database's
write lock, so pages are written there one after the other, as `PageLoader.write` does.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from types import TracebackType

from journeyhub.ingest.loader import Counts, PageLoader, Prepared, StagedPage, read_keys


class OrderedWrites:
    """Writes `Prepared` pages in order; `on_written(counts)` runs in the caller's thread for each page once it
    committed. Call `finish()` at the end to wait for the last page (it raises that page's error); `close()`
    always, also after an error: it waits for a page in flight, so none outlives the caller's writer lock.
    As a context manager it does both (`finish` only when the block succeeded)."""

    def __init__(self, loader: PageLoader, run_row_id: int | None, on_written: Callable[[Counts], None]) -> None:
        self.loader = loader
        self.run_row_id = run_row_id
        self.on_written = on_written
        self.behind = loader.engine.dialect.name == "postgresql"
        self._executor: ThreadPoolExecutor | None = None
        self._in_flight: tuple[set[str], Future[Counts]] | None = None  # its written keys, its transaction

    def write(self, prepared: Prepared) -> None:
        if not self.behind:
            self.on_written(self.loader.write(prepared, self.run_row_id))
            return
        if self._in_flight is not None and not self._in_flight[0].isdisjoint(read_keys(prepared)):
            self.finish()  # it reads what the page in flight writes: classify it after that page committed
        staged = self.loader.stage(prepared)
        self.finish()
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="page-writer")
        context = contextvars.copy_context()  # the caller's run context (logging, Prefect)
        future = self._executor.submit(context.run, self._write_staged, staged)
        self._in_flight = (staged.rows.written_keys(), future)

    def __enter__(self) -> OrderedWrites:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if kind is None:
                self.finish()
        finally:
            self.close()

    def _write_staged(self, staged: StagedPage) -> Counts:
        return self.loader.write_staged(staged, self.run_row_id)

    def finish(self) -> None:
        """Wait for the page in flight; its counts go to `on_written`, its error is raised here."""
        if self._in_flight is None:
            return
        future = self._in_flight[1]
        self._in_flight = None
        self.on_written(future.result())

    def close(self) -> None:
        """Wait for the page in flight (its counts still go to `on_written` if it committed; an error of its
        own is left to the one the caller is already handling) and stop the writer thread."""
        try:
            if self._in_flight is not None:
                future = self._in_flight[1]
                self._in_flight = None
                if future.exception() is None:
                    self.on_written(future.result())
        finally:
            if self._executor is not None:
                self._executor.shutdown(wait=True)
                self._executor = None
