"""Pulling one object type from one CRM into the canonical database, resumably.

`pull_pages` stores up to `max_pages` pages starting from the persisted cursor (the unit a Prefect task
runs; `flows/sync.py` loops it to the end and records the run). Because every page is committed with the
cursor that follows it, stopping anywhere — a killed process, a crash, a `max_pages` boundary — loses and
doubles nothing: the next call continues from the last committed page. A flow's batches of one object keep
their read open from one call to the next (`keep_open`), so batching costs neither queries nor waits.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, select

from canonical.models import SyncState
from connectors.base import Connector, Page
from journeyhub.ingest.loader import Counts, PageLoader, Prepared
from journeyhub.ingest.pipeline import PreparePipeline
from journeyhub.ingest.readahead import ReadAhead
from journeyhub.ingest.schema import requested_fields
from journeyhub.ingest.write_behind import OrderedWrites

log = logging.getLogger("journeyhub.sync")


def read_cursor(engine: Engine, system: str, object_type: str) -> str | None:
    with engine.connect() as connection:
        return connection.execute(select(SyncState.cursor).where(
            SyncState.system == system, SyncState.object_type == object_type)).scalar_one_or_none()


def reset_cursor(engine: Engine, system: str, object_type: str) -> None:
    with engine.begin() as connection:
        connection.execute(delete(SyncState).where(SyncState.system == system, SyncState.object_type == object_type))


@dataclass
class Batch:
    counts: Counts = field(default_factory=Counts)
    pages: int = 0
    done: bool = True


GROUP_RECORDS = 1000  # small API pages are stored together: one transaction per ~1,000 records


def grouped(pages: Iterator[Page], size: int = GROUP_RECORDS) -> Iterator[Page]:
    """Consecutive pages merged until about `size` records: fewer, larger transactions (the per-commit cost
    dominates 100-record pages). The merged page carries the last cursor, so it stays atomic and resumable."""
    if size <= 1:
        yield from pages
        return
    pending: list[Page] = []
    for page in pages:
        pending.append(page)
        if sum(len(item.records) for item in pending) >= size:
            yield merge_pages(pending)
            pending = []
    if pending:
        yield merge_pages(pending)


def merge_pages(pages: list[Page]) -> Page:
    if len(pages) == 1:
        return pages[0]
    cursor = next((page.cursor for page in reversed(pages) if page.cursor is not None), None)
    return Page(pages[0].object_type, [record for page in pages for record in page.records], cursor,
                sum(page.api_calls for page in pages))


@dataclass
class _OpenRead:
    """A read left open between a pull's batches (`pull_pages(keep_open=...)`): the connector's page
    iterator, the read-ahead thread on it, the mapping pipeline with the page it is preparing, and the cursor
    of the last page it committed (the persisted cursor must still be that one for the next batch to go on
    with it)."""

    fields: tuple[str, ...]
    cursor: str | None
    source: Iterator[Page]
    pages: ReadAhead[Page]
    pipeline: PreparePipeline

    def close(self) -> None:
        """Drop what was read or prepared and not written (the next read gets it again from the cursor)."""
        try:
            self.pipeline.cancel()
            self.pages.close()
        finally:
            close = getattr(self.source, "close", None)
            if close is not None:
                close()


_open_reads: dict[tuple[str, str, str], _OpenRead] = {}
_open_lock = threading.Lock()


def close_read(key: str, system: str, object_type: str) -> None:
    """End the read `pull_pages(keep_open=key)` left open for this object, if any (a pull's end, whatever
    way it ended: its thread stops and its unwritten pages are dropped)."""
    with _open_lock:
        read = _open_reads.pop((key, system, object_type), None)
    if read is not None:
        read.close()


def _reopen(key: str | None, system: str, object_type: str, fields: Sequence[str], cursor: str | None,
            full: bool) -> _OpenRead | None:
    """The read left open under `key`, when it goes on from exactly where this batch starts: not a new full
    read, the same fields, and the persisted cursor still the last one it committed (nothing else moved it)."""
    if key is None:
        return None
    with _open_lock:
        read = _open_reads.pop((key, system, object_type), None)
    if read is None:
        return None
    if full or read.fields != tuple(fields) or read.cursor != cursor:
        read.close()
        return None
    return read


def pull_pages(engine: Engine, connector: Connector, loader: PageLoader, object_type: str, *,
               full: bool = False, max_pages: int | None = None, run_row_id: int | None = None,
               on_page: Callable[[Counts], None] | None = None, group_records: int = 1,
               worker_after: int | None = None, fields: Sequence[str] | None = None,
               keep_open: str | None = None) -> Batch:
    """Store pages from the persisted cursor (or from scratch when `full`) until the end or `max_pages`
    (a page here is a group of the API's pages of about `group_records` records; 1 stores each alone).
    Pages are read one ahead in a thread (`ReadAhead`); once `worker_after` records were read, they are
    mapped in a worker process (None: never); on PostgreSQL each is made ready while the one before it is
    written (`OrderedWrites`). `fields`: the CRM fields to read, as the schema check chose
    them (`journeyhub.ingest.schema.plan_read`; None: every field the mapping reads, unchecked).

    `keep_open` (a pull's run id): after `max_pages` pages are written the read stays open — its reading
    thread a page ahead, its mapping worker on the next page — and the next call with the same key goes on
    with it, so a pull split into batches (a Prefect task each) neither re-queries the CRM at each batch nor
    waits at each start for a first page and its mapping. That next call checks first that the persisted
    cursor is still the one the read last committed; else (and after any error) the read is dropped and the
    call starts afresh from the persisted cursor, as without `keep_open`. `close_read` ends it."""
    cursor = None if full else read_cursor(engine, connector.system, object_type)
    if fields is None:
        fields = requested_fields(connector, loader.preparer.mapper(object_type).spec)
    read = _reopen(keep_open, connector.system, object_type, fields, cursor, full)
    if read is None:
        source = connector.read(object_type, cursor, full=full, fields=fields)
        pages = ReadAhead(grouped(source, group_records), limit=None if keep_open else max_pages)
        read = _OpenRead(tuple(fields), cursor, source, pages, PreparePipeline(loader, worker_after))
    else:
        read.pipeline.loader = loader  # this batch's loader: its run row, its configuration
    pipeline, pages = read.pipeline, read.pages
    batch = Batch()

    def written(counts: Counts) -> None:
        batch.counts.add(counts)
        batch.pages += 1
        if on_page is not None:
            on_page(counts)

    writes = OrderedWrites(loader, run_row_id, written)
    stored = 0

    def store(ready: list[Prepared]) -> None:
        nonlocal stored
        for prepared in ready:
            writes.write(prepared)
            stored += 1
            if prepared.page.cursor is not None:
                read.cursor = prepared.page.cursor

    fed, ended, kept = 0, False, False
    try:
        while keep_open is None or max_pages is None or stored < max_pages:
            try:
                page = next(pages, None)
            except Exception:
                store(pipeline.flush())  # what was read before the failure is kept
                writes.finish()
                raise
            if page is None:
                ended = True
                break
            fed += 1
            store(pipeline.feed(page))
        if keep_open is None or ended:
            store(pipeline.flush())
        writes.finish()
        kept = keep_open is not None and not ended
    finally:
        writes.close()
        if kept:
            with _open_lock:
                _open_reads[(keep_open, connector.system, object_type)] = read  # type: ignore[index]
        else:
            read.close()
    if keep_open is not None:
        batch.done = ended
    else:
        batch.done = max_pages is None or fed < max_pages  # else perhaps more: the caller asks again
    return batch
