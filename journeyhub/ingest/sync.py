"""Pulling one object type from one CRM into the canonical database, resumably.

`pull_pages` stores up to `max_pages` pages starting from the persisted cursor (the unit a Prefect task
runs; `flows/sync.py` loops it to the end and records the run). Because every page is committed with the
cursor that follows it, stopping anywhere — a killed process, a crash, a `max_pages` boundary — loses and
doubles nothing: the next call continues from the last committed page.
"""

from __future__ import annotations

import logging
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


def pull_pages(engine: Engine, connector: Connector, loader: PageLoader, object_type: str, *,
               full: bool = False, max_pages: int | None = None, run_row_id: int | None = None,
               on_page: Callable[[Counts], None] | None = None, group_records: int = 1,
               worker_after: int | None = None, fields: Sequence[str] | None = None) -> Batch:
    """Store pages from the persisted cursor (or from scratch when `full`) until the end or `max_pages`
    (a page here is a group of the API's pages of about `group_records` records; 1 stores each alone).
    Pages are read one ahead in a thread (`ReadAhead`); once `worker_after` records were read, they are
    mapped in a worker process (None: never); on PostgreSQL each is made ready while the one before it is
    written (`OrderedWrites`). `fields`: the CRM fields to read, as the schema check chose
    them (`journeyhub.ingest.schema.plan_read`; None: every field the mapping reads, unchecked)."""
    cursor = None if full else read_cursor(engine, connector.system, object_type)
    batch = Batch()
    if fields is None:
        fields = requested_fields(connector, loader.preparer.mapper(object_type).spec)
    source = connector.read(object_type, cursor, full=full, fields=fields)
    pages = ReadAhead(grouped(source, group_records), limit=max_pages)
    pipeline = PreparePipeline(loader, worker_after)

    def written(counts: Counts) -> None:
        batch.counts.add(counts)
        batch.pages += 1
        if on_page is not None:
            on_page(counts)

    writes = OrderedWrites(loader, run_row_id, written)

    def store(ready: list[Prepared]) -> None:
        for prepared in ready:
            writes.write(prepared)

    read = 0
    try:
        while True:
            try:
                page = next(pages, None)
            except Exception:
                store(pipeline.flush())  # what was read before the failure is kept
                writes.finish()
                raise
            if page is None:
                break
            read += 1
            store(pipeline.feed(page))
        store(pipeline.flush())
        writes.finish()
    finally:
        writes.close()
        pipeline.cancel()
        pages.close()
        source.close()
    batch.done = max_pages is None or read < max_pages  # else perhaps more: the caller asks again
    return batch
