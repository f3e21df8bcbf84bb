"""Nightly reconciliation: what incremental syncs cannot see.

- **Hard deletes**: a record purged from a CRM (past its recycle bin, or in a table without change
  tracking) never comes back as a tombstone. Reconciliation re-reads the object's full id set and
  tombstones every stored record the CRM no longer has.
- **Associations**: where a CRM's association changes do not mark a record modified, the connector's
  `reconcile_associations` pass re-reads the associations of recently active records in batches (a
  connector whose CRM has no such gap yields nothing).
A full re-read goes through the page loader, so unchanged records cost nothing to store.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update

from canonical.models import SourceRecord
from canonical.types import utcnow
from canonical.upsert import chunks
from connectors.base import Connector, Page
from journeyhub.ingest.loader import Counts, PageLoader
from journeyhub.ingest.schema import SchemaMismatch, finish_read, plan_read
from journeyhub.runs import close_run, open_run

#: objects that only ever grow (events): nothing to reconcile
APPEND_ONLY = {"email_events"}


@dataclass
class Reconciled:
    object_type: str
    counts: Counts
    purged: int


def _seen(pages: Iterator[Page], loader: PageLoader, run_row: int, seen: set[str], counts: Counts) -> None:
    for page in pages:
        seen.update(record.remote_id for record in page.records if not record.deleted)
        counts.add(loader.store(page, run_row))


def reconcile_object(engine: Engine, connector: Connector, loader: PageLoader, object_type: str, *,
                     run_id: str) -> Reconciled:
    """Re-read one object completely and tombstone what the CRM no longer has."""
    row = open_run(engine, run_id, "pull", connector.system, f"{object_type} (reconcile)")
    counts, seen = Counts(), set[str]()
    try:
        plan = plan_read(engine, connector, loader.preparer.mapper(object_type).spec, run_row_id=row)
        if plan.problem():
            raise SchemaMismatch(plan.problem())
        _seen(connector.read(object_type, None, full=True, fields=plan.fields), loader, row, seen, counts)
        purged = tombstone_missing(engine, connector.system, object_type, seen, started=utcnow())
        _seen(connector.reconcile_associations(object_type, fields=plan.fields), loader, row, set(), counts)
    except Exception as error:
        close_run(engine, row, "failed", f"{type(error).__name__}: {error}")
        raise
    finish_read(engine, plan)
    counts.deleted += purged
    close_run(engine, row, "succeeded", deleted=counts.deleted)
    return Reconciled(object_type, counts, purged)


def tombstone_missing(engine: Engine, system: str, object_type: str, seen: set[str], *, started: datetime) -> int:
    """Mark stored, live records of this object that the full re-read did not return as deleted."""
    with engine.connect() as connection:
        stored = set(connection.execute(select(SourceRecord.remote_id).where(
            SourceRecord.system == system, SourceRecord.object_type == object_type,
            SourceRecord.is_deleted.is_(False), ~SourceRecord.remote_id.contains("#"))).scalars())
    missing = sorted(stored - seen)
    with engine.begin() as connection:
        for chunk in chunks(missing, 500):
            connection.execute(update(SourceRecord).where(
                SourceRecord.system == system, SourceRecord.object_type == object_type,
                SourceRecord.remote_id.in_(chunk)).values(is_deleted=True, deleted_at=started, last_seen_at=started))
    return len(missing)
