"""Stores one connector page in the canonical database, with its cursor, in one transaction.

Nothing lost, nothing doubled: the page's rows, its quarantined records, its run counters and the cursor that
follows it are committed together, so a sync killed at any point resumes from the last committed cursor and
re-reads at most one page, which the idempotent upserts absorb. Unchanged records (same payload hash) are
not rewritten, so they do not count as "touched" for the journey engine's incremental pass.

Bad values are contained: text and JSON are cleaned by the storage rule (`canonical.types`), a remote id
longer than its column is quarantined, and when the database refuses a page (a value it cannot take), the
page is written again record by record, each in a savepoint, and only the records it refuses are quarantined
(`database_error`, with the database's message) — one bad record never stops its page, object or CRM.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field, fields, replace
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import Engine, and_, bindparam, delete, select, update
from sqlalchemy.engine import Connection

from canonical.db import transaction
from canonical.models import CANONICAL_TABLES, Association, Quarantine, SourceRecord, SyncRun, SyncState
from canonical.types import clean_text, json_bytes, utcnow
from canonical.upsert import (
    RECORD_ERRORS,
    chunks,
    delete_where_in,
    error_message,
    fetch_by_ids,
    is_record_error,
    pipelined,
    upsert,
    upsert_counted,
)
from connectors.base import Page
from connectors.base import RemoteRecord as Record
from connectors.errors import ConfigError
from journeyhub.ingest.mapper import MappedRecord, Mapper, MappingError, source_key
from journeyhub.ingest.spec import MappingSpec
from journeyhub.journey.identity_config import IdentityConfig
from journeyhub.journey.keys import email_key, keys_fingerprint, phone_key

PERSON_OWNED_BY_IDENTITY = {"customer_id", "match_rule", "match_evidence"}
REMOTE_ID_MAX = 200  # source_record.remote_id and quarantine.remote_id
DATABASE_ERROR = "database_error"  # quarantine reason: the database refused the record's rows


@dataclass
class Counts:
    """What happened to the records of a page (or a whole sync: counts add up)."""

    records_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    skipped: int = 0
    api_calls: int = 0

    def add(self, other: Counts) -> Counts:
        for item in fields(self):
            setattr(self, item.name, getattr(self, item.name) + getattr(other, item.name))
        return self

    def as_dict(self) -> dict[str, int]:
        return {item.name: getattr(self, item.name) for item in fields(self)}


@dataclass
class _Planned:
    record: Record
    key: str
    raw_hash: str
    mapped: MappedRecord | None  # None: a bare tombstone
    verdict: str = ""  # how `_changed` counted it: inserted, updated or deleted


def payload_hash(record: Record, document: dict[str, Any] | None = None) -> str:
    """What "unchanged" is judged by: the mapped document and the deletion flag (`document`: the record's,
    when the caller has built it already)."""
    return payload_digest(record, record.document() if document is None else document)[0]


def payload_digest(record: Record, document: dict[str, Any]) -> tuple[str, bool]:
    """`payload_hash`, and whether the document is clean (no NUL, no lone surrogate): the one serialisation
    the hash needs tells, so the mapping can skip cleaning each value (`canonical.inputs.CLEAN`)."""
    try:
        body = orjson.dumps([document, record.deleted], option=orjson.OPT_SORT_KEYS, default=str)
    except orjson.JSONEncodeError:  # a lone surrogate: hashed as it is stored, cleaned
        return hashlib.blake2b(json_bytes([document, record.deleted]), digest_size=16).hexdigest(), False
    return hashlib.blake2b(body, digest_size=16).hexdigest(), b"\\u0000" not in body


@dataclass
class Prepared:
    """A page mapped and ready to write."""

    page: Page
    mapper: Mapper
    counts: Counts
    planned: list[_Planned] = field(default_factory=list)
    quarantined: list[tuple[Record, MappingError]] = field(default_factory=list)


@dataclass
class PageRows:
    """What a page's transaction writes, statement by statement, built from its changed records."""

    now: datetime  # the page's time stamp
    sources: list[dict[str, Any]] = field(default_factory=list)  # provenance of records and derived rows
    tombstones: list[dict[str, Any]] = field(default_factory=list)  # bare deletions
    entities: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    asserting: list[str] = field(default_factory=list)  # rows whose relations are replaced
    fresh: set[str] = field(default_factory=set)  # those of them new to the database: no relations stored yet
    links: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    merges: list[tuple[str, str]] = field(default_factory=list)  # (loser, survivor)

    def replace_relations(self, key: str, fresh: bool) -> None:
        """The relations stored with `key` as their source give way to the page's (`fresh`: its record is new
        to the database)."""
        self.asserting.append(key)
        if fresh:
            self.fresh.add(key)

    def written_keys(self) -> set[str]:
        """Every source key whose provenance the statements change."""
        return ({row["id"] for row in self.sources} | {row["id"] for row in self.tombstones}
                | {key for pair in self.merges for key in pair})


@dataclass
class StagedPage:
    """A page classified and its rows built (`PageLoader.stage`): what its transaction is left to send."""

    prepared: Prepared
    counts: Counts
    changed: list[_Planned]
    rows: PageRows


def read_keys(prepared: Prepared) -> set[str]:
    """The source keys classifying a page reads: its records' and the parents of its deleted relations."""
    keys = {item.key for item in prepared.planned}
    keys.update(row.row["from_id"] for item in prepared.planned if item.record.deleted and item.mapped is not None
                for row in item.mapped.rows if row.entity == "association")
    return keys


@dataclass
class PageParts:
    """What preparing a page produced, by record index: small and picklable, so a worker process can
    compute it and send back only this while the parent keeps the records."""

    planned: list[tuple[int, str, str, MappedRecord | None]] = field(default_factory=list)  # index, key, hash, rows
    quarantined: list[tuple[int, str, str]] = field(default_factory=list)  # index, reason, detail
    skipped: int = 0


class Preparer:
    """Everything about a page that needs no database: mapping, payload hashes and match keys."""

    def __init__(self, system: str, mappings: dict[str, MappingSpec], identity: IdentityConfig | None) -> None:
        """`identity` lets person records carry their match keys as they arrive (else identity resolution
        computes them on its next pass)."""
        self.system = system
        self.identity = identity
        self.fingerprint = keys_fingerprint(identity) if identity is not None else None
        self.mappers = {object_type: Mapper(system, spec) for object_type, spec in mappings.items()}

    def mapper(self, object_type: str) -> Mapper:
        mapper = self.mappers.get(object_type)
        if mapper is None:
            raise ConfigError(self.system, f"no mapping for {object_type!r}: add "
                              f"mappings/{self.system}/{object_type}.yaml")
        return mapper

    def parts(self, object_type: str, records: list[Record]) -> PageParts:
        """The page's rows by record index; a record read twice in one page counts once, as last read.
        Reads only each record's id, data, extra and deletion flag (all a worker process is sent)."""
        mapper, parts = self.mapper(object_type), PageParts()
        for index in {record.remote_id: index for index, record in enumerate(records)}.values():
            record = records[index]
            problem = _bad_id(record.remote_id)
            if problem:  # an id is never cleaned or cut: it would name another record
                if not record.deleted:
                    parts.quarantined.append((index, "invalid_value", f"remote id: {problem}"))
                continue
            document = record.document()
            raw_hash, clean = payload_digest(record, document)
            try:
                mapped = None if record.data is None else mapper.map(record.remote_id, document, clean=clean)
            except MappingError as error:
                if not record.deleted:
                    parts.quarantined.append((index, error.reason, error.detail))
                    continue
                mapped = None
            if mapped is not None and mapped.skipped:
                parts.skipped += 1
                continue
            if mapped is not None:
                self._add_match_keys(mapped)
            key = source_key(self.system, object_type, record.remote_id)
            parts.planned.append((index, key, raw_hash, mapped))
        return parts

    def _add_match_keys(self, mapped: MappedRecord) -> None:
        """Person rows carry their normalised email and phone (None without an identity configuration)."""
        for row in mapped.rows:
            if row.entity != "person":
                continue
            values = row.row
            if self.identity is None:
                values.update(email_key=None, phone_key=None, keys_version=None)
            else:
                values.update(email_key=email_key(values.get("email"), self.identity),
                              phone_key=phone_key(values.get("phone"), self.identity), keys_version=self.fingerprint)


class PageLoader:
    """Stores pages of one system; one loader per sync run."""

    def __init__(self, engine: Engine, system: str, mappings: dict[str, MappingSpec], run_id: str,
                 identity: IdentityConfig | None = None) -> None:
        self.preparer = Preparer(system, mappings, identity)
        self.engine = engine
        self.system = system
        self.run_id = run_id
        self._open_quarantine: dict[str, bool] = {}  # per object: does it have unresolved quarantine rows?

    def store(self, page: Page, run_row_id: int | None = None) -> Counts:
        """Map and write one page with its cursor."""
        return self.write(self.prepare(page), run_row_id)

    def prepare(self, page: Page) -> Prepared:
        """Mapped in this process (kept apart from the transaction, which then holds SQLite's write lock
        only while it writes)."""
        return self.assemble(page, self.preparer.parts(page.object_type, page.records))

    def assemble(self, page: Page, parts: PageParts) -> Prepared:
        """A page and its prepared parts (computed here or in a worker process) as one writable unit."""
        records = page.records
        counts = Counts(records_read=len(records), api_calls=page.api_calls, skipped=parts.skipped)
        return Prepared(page, self.preparer.mapper(page.object_type), counts,
                        [_Planned(records[index], key, raw_hash, mapped)
                         for index, key, raw_hash, mapped in parts.planned],
                        [(records[index], MappingError(reason, detail))
                         for index, reason, detail in parts.quarantined])

    def write(self, prepared: Prepared, run_row_id: int | None = None) -> Counts:
        """One transaction: the page's rows, quarantine, run counters and the cursor that follows it. When
        the database refuses the page, it is written again record by record (`_write_each`)."""
        return self._write_page(prepared, run_row_id, None)

    def stage(self, prepared: Prepared) -> StagedPage:
        """A write's first half, outside its transaction: classify the page against what is stored and build
        its rows (`journeyhub.ingest.write_behind` does it while the previous page's transaction runs). Only
        where reading outside the write transaction changes nothing: on PostgreSQL, whose page transactions
        read committed data anyway and count what their statements actually did (`_recount`)."""
        with self.engine.connect() as connection:
            return self._stage(connection, prepared)

    def write_staged(self, staged: StagedPage, run_row_id: int | None = None) -> Counts:
        """A staged page's transaction, as `write` (a page the database refuses is written again record by
        record, classified afresh)."""
        return self._write_page(staged.prepared, run_row_id, staged)

    def _stage(self, connection: Connection, prepared: Prepared) -> StagedPage:
        counts = replace(prepared.counts)
        changed, rows = self._classify(connection, prepared.planned, prepared.mapper, counts, utcnow())
        return StagedPage(prepared, counts, changed, rows)

    def _classify(self, connection: Connection, planned: list[_Planned], mapper: Mapper, counts: Counts,
                  now: datetime) -> tuple[list[_Planned], PageRows]:
        """The records that changed against what is stored (counted in `counts`) and the rows writing them."""
        changed = self._changed(connection, planned, counts)
        gone_with = self._deleted_parents(connection, changed)
        return changed, self._rows(changed, mapper.spec.entity, gone_with, now)

    def _write_page(self, prepared: Prepared, run_row_id: int | None, staged: StagedPage | None) -> Counts:
        """The page's transaction, classified inside it unless `staged` already; record by record when the
        database refuses the page."""
        try:
            with transaction(self.engine) as connection:
                _relaxed_commit(connection)
                if staged is None:
                    staged = self._stage(connection, prepared)
                counts, rows = staged.counts, staged.rows
                _recount(counts, staged.changed, self._apply(connection, rows))
                self._finish(connection, prepared.page, prepared.quarantined, prepared.planned, counts, run_row_id,
                             rows.now)
            return counts
        except RECORD_ERRORS as error:
            if not is_record_error(error):
                raise
            return self._write_each(prepared, run_row_id)

    def _write_each(self, prepared: Prepared, run_row_id: int | None) -> Counts:
        """The page again, each record in a savepoint: what the database refuses is quarantined with its
        message, the rest is stored, and the page's cursor and counters are committed with them."""
        page, now = prepared.page, utcnow()
        counts, quarantined, stored = replace(prepared.counts), list(prepared.quarantined), []
        with transaction(self.engine) as connection:
            _relaxed_commit(connection)
            for item in prepared.planned:
                mine = Counts()
                try:
                    with connection.begin_nested():
                        changed, rows = self._classify(connection, [item], prepared.mapper, mine, now)
                        _recount(mine, changed, self._apply(connection, rows))
                except RECORD_ERRORS as error:
                    if not is_record_error(error):
                        raise
                    quarantined.append((item.record, MappingError(DATABASE_ERROR, error_message(error))))
                    continue
                counts.add(mine)
                stored.append(item)
            self._finish(connection, page, quarantined, stored, counts, run_row_id, now)
        return counts

    def _finish(self, connection: Connection, page: Page, quarantined: list[tuple[Record, MappingError]],
                stored: list[_Planned], counts: Counts, run_row_id: int | None, now: datetime) -> None:
        """The page's quarantine, resolved quarantine, cursor and run counters."""
        self._quarantine(connection, page.object_type, quarantined, now)
        self._resolve_quarantine(connection, page.object_type, [p.record.remote_id for p in stored], now)
        counts.quarantined = len(quarantined)
        if page.cursor is not None:
            upsert(connection, SyncState, [{"system": self.system, "object_type": page.object_type,
                                            "cursor": page.cursor, "updated_at": now, "run_id": self.run_id}])
        if run_row_id is not None:
            add_to_run(connection, run_row_id, counts)

    # ------------------------------------------------------------------ classification
    def _changed(self, connection: Connection, planned: list[_Planned], counts: Counts) -> list[_Planned]:
        existing = fetch_by_ids(connection, SourceRecord, [p.key for p in planned], ["raw_hash", "is_deleted"])
        changed = []
        for item in planned:
            before = existing.get(item.key)
            if before is not None and before[0] == item.raw_hash:
                counts.unchanged += 1
                continue
            if item.record.deleted:
                counts.deleted += 0 if before is not None and before[1] else 1
                item.verdict = "deleted"
            elif before is None:
                counts.inserted += 1
                item.verdict = "inserted"
            else:
                counts.updated += 1
                item.verdict = "updated"
            changed.append(item)
        return changed

    # ------------------------------------------------------------------ writes
    def _rows(self, changed: list[_Planned], entity: str, gone_with: set[str], now: datetime) -> PageRows:
        """The rows of the page's statements (no database needed: built before its transaction sends them)."""
        rows = PageRows(now)
        for item in changed:
            mapped = item.mapped
            if mapped is None:  # a bare tombstone: only the deletion is news; keep the payload and merge link
                rows.tombstones.append(self._source_row(item, entity, now))
                continue
            merged_into = mapped.merged_into
            rows.sources.append(self._source_row(item, entity, now, merged_into=merged_into))
            if merged_into:
                rows.merges.append((item.key, merged_into))
            rows.merges += [(loser, item.key) for loser in mapped.merges if loser != item.key]
            for row in mapped.rows:
                if row.entity == "association":  # a relation record, e.g. an OpportunityContactRole
                    rows.replace_relations(row.key, item.verdict == "inserted")
                    removed = item.record.deleted and row.row["from_id"] not in gone_with
                    self._link(rows.links, row.row["from_id"], row.row["to_id"], row.row["label"],
                               row.row["is_primary"], row.key, removed, now)
                    continue
                rows.entities[row.entity].append({"id": row.key, **row.row})
                if row.key != item.key:  # a derived row gets its own provenance, next to its parent's
                    rows.sources.append(self._source_row(item, row.entity, now, key=row.key))
                if row.people is not None or row.linked is not None:
                    rows.replace_relations(row.key, item.verdict == "inserted")
                    for to_id, label, primary in row.people or []:
                        self._link(rows.links, row.key, to_id, label, primary, row.key, False, now)
                    for from_id in row.linked or []:
                        self._link(rows.links, from_id, row.key, None, False, row.key, False, now)
        return rows

    def _apply(self, connection: Connection, rows: PageRows) -> dict[str, bool] | None:
        """Send the page's statements; on PostgreSQL, what the provenance statement did to each record. The
        bulk statements go out back to back (`pipelined`), the provenance one last: its answer is awaited."""
        written, sources, now = None, rows.sources, rows.now
        with pipelined(connection):
            for row_entity, items in rows.entities.items():
                self._upsert_entity(connection, row_entity, items)
            # what a record says about its relations replaces what it said
            delete_where_in(connection, Association, "source_id", _said_before(connection, rows))
            if rows.links:
                upsert(connection, Association, list(rows.links.values()))
            if sources:
                update = [key for key in sources[0] if key not in ("id", "first_seen_at")]
                written = upsert_counted(connection, SourceRecord, sources, update=update,
                                         changed=("raw_hash", "is_deleted"))
        if rows.tombstones:
            upsert(connection, SourceRecord, rows.tombstones,
                   update=["is_deleted", "deleted_at", "last_seen_at", "raw_hash", "last_run_id"])
            tombstone_derived(connection, [row["id"] for row in rows.tombstones], now)
        for loser, survivor in rows.merges:
            mark_merged(connection, loser, survivor, now)
        return written

    @staticmethod
    def _deleted_parents(connection: Connection, changed: list[_Planned]) -> set[str]:
        """The records that deleted relation records hang off, where those are deleted too. A relation deleted
        with its record (an Opportunity's contact roles go to the recycle bin with it) keeps counting as that
        record's history; one deleted alone (a role removed from a live Opportunity) is a correction."""
        parents = {row.row["from_id"] for item in changed if item.record.deleted and item.mapped is not None
                   for row in item.mapped.rows if row.entity == "association"}
        if not parents:
            return set()
        found = fetch_by_ids(connection, SourceRecord, sorted(parents), ["is_deleted"])
        return {key for key, (is_deleted,) in found.items() if is_deleted}

    def _link(self, links: dict[tuple[str, str], dict[str, Any]], from_id: str, to_id: str, label: str | None,
              primary: bool, source: str, deleted: bool, now: datetime) -> None:
        links[(from_id, to_id)] = {"from_id": from_id, "to_id": to_id, "system": self.system, "label": label,
                                   "is_primary": primary, "source_id": source, "is_deleted": deleted,
                                   "updated_at": now}

    def _source_row(self, item: _Planned, entity: str, now: datetime, *, key: str | None = None,
                    merged_into: str | None = None) -> dict[str, Any]:
        record = item.record
        key = key or item.key
        _, object_type, remote_id = key.split(":", 2)
        return {
            "id": key, "system": self.system, "object_type": object_type, "remote_id": remote_id,
            "entity": entity, "canonical_id": key,
            "remote_created_at": record.created_at, "remote_updated_at": record.modified_at,
            "first_seen_at": now, "last_seen_at": now, "is_deleted": record.deleted,
            "deleted_at": now if record.deleted else None, "merged_into": merged_into,
            "raw": record.data if key == item.key else None, "raw_hash": item.raw_hash,
            "last_run_id": self.run_id,
        }

    def _upsert_entity(self, connection: Connection, entity: str, items: list[dict[str, Any]]) -> None:
        table = CANONICAL_TABLES[entity]
        columns = set(table.__table__.columns.keys())  # type: ignore[attr-defined]
        extra = {"system": self.system} if "system" in columns else {}
        items = [_only(item, columns) | extra for item in items]
        if entity == "person":  # match keys were added by `prepare`
            update_columns = [k for k in items[0] if k not in PERSON_OWNED_BY_IDENTITY | {"id"}]
            upsert(connection, table, items, update=update_columns)
        else:
            upsert(connection, table, items)

    # ------------------------------------------------------------------ quarantine
    def _quarantine(self, connection: Connection, object_type: str, items: list[tuple[Record, MappingError]],
                    now: datetime) -> None:
        if not items:
            return
        self._open_quarantine[object_type] = True
        rows = [{"system": self.system, "object_type": object_type, "remote_id": _fit_id(record.remote_id),
                 "reason": error.reason, "detail": error.detail[:2000], "raw": record.data,
                 "run_id": self.run_id, "first_seen_at": now, "last_seen_at": now, "occurrences": 1,
                 "resolved_at": None} for record, error in {r.remote_id: (r, e) for r, e in items}.values()]
        statement_columns = ["reason", "detail", "raw", "run_id", "last_seen_at", "resolved_at"]
        upsert(connection, Quarantine, rows, conflict=["system", "object_type", "remote_id"],
               update=statement_columns)
        keys = [row["remote_id"] for row in rows]
        for chunk in chunks(keys, 500):
            connection.execute(update(Quarantine).where(
                Quarantine.system == self.system, Quarantine.object_type == object_type,
                Quarantine.remote_id.in_(chunk), Quarantine.first_seen_at < now,
            ).values(occurrences=Quarantine.occurrences + 1))

    def _resolve_quarantine(self, connection: Connection, object_type: str, remote_ids: list[str],
                            now: datetime) -> None:
        """A record stored fine that was quarantined before is resolved (asked only while some are open)."""
        if object_type not in self._open_quarantine:
            self._open_quarantine[object_type] = connection.execute(select(Quarantine.id).where(
                Quarantine.system == self.system, Quarantine.object_type == object_type,
                Quarantine.resolved_at.is_(None)).limit(1)).first() is not None
        if not self._open_quarantine[object_type]:
            return
        for chunk in chunks(remote_ids, 500):
            connection.execute(update(Quarantine).where(and_(
                Quarantine.system == self.system, Quarantine.object_type == object_type,
                Quarantine.remote_id.in_(chunk), Quarantine.resolved_at.is_(None),
            )).values(resolved_at=now))


def _relaxed_commit(connection: Connection) -> None:
    """On PostgreSQL a page's commit does not wait for its WAL flush (`synchronous_commit = off`, this
    transaction only; ~40% faster pages on a busy 2-core host). It is the guarantee SQLite's WAL with
    `synchronous=NORMAL` gives the same pages: a database server crash can forget the last fraction of a
    second of pages, never part of one — the cursor is in the same transaction, so the next run re-reads
    exactly what was forgotten. A crash of the hub itself loses nothing committed."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("SET LOCAL synchronous_commit = off")


def _said_before(connection: Connection, rows: PageRows) -> list[str]:
    """The rows whose stored relations a page replaces. On SQLite a page is classified under the database's
    write lock, so a record it found new has none stored (only its own pages write relations with its key):
    nothing to delete for it (~5% of an email events page's write). PostgreSQL classifies a page before its
    transaction (`stage`), where another writer could store the record in between: every row is asked."""
    if connection.dialect.name != "sqlite" or not rows.fresh:
        return rows.asserting
    return [key for key in rows.asserting if key not in rows.fresh]


def _recount(counts: Counts, changed: list[_Planned], written: dict[str, bool] | None) -> None:
    """Inserted / updated / unchanged as the statement found them, not as the read before it guessed: a
    concurrent writer that stored the same record in between makes it unchanged here (run statistics
    counted once)."""
    if written is None:
        return
    for item in changed:
        if item.verdict not in ("inserted", "updated"):
            continue
        actual = "unchanged" if item.key not in written else "inserted" if written[item.key] else "updated"
        if actual != item.verdict:
            setattr(counts, item.verdict, getattr(counts, item.verdict) - 1)
            setattr(counts, actual, getattr(counts, actual) + 1)
            item.verdict = actual


def tombstone_derived(connection: Connection, keys: list[str], now: datetime) -> None:
    """Items read off a record (`key#suffix`) go when their record goes."""
    if not keys:
        return
    statement = update(SourceRecord).where(
        SourceRecord.id > bindparam("low"), SourceRecord.id < bindparam("high"), SourceRecord.is_deleted.is_(False),
    ).values(is_deleted=True, deleted_at=now, last_seen_at=now)
    connection.execute(statement, [{"low": f"{key}#", "high": f"{key}$"} for key in keys])


def mark_merged(connection: Connection, loser: str, survivor: str, now: datetime) -> None:
    """`loser` was merged into `survivor` in its CRM: tombstone it, remember where it went, and point its
    relations at the survivor (dropping any the survivor already has)."""
    system, object_type, remote_id = loser.split(":", 2)
    existing = fetch_by_ids(connection, SourceRecord, [loser], ["is_deleted"])
    if loser in existing:
        connection.execute(update(SourceRecord).where(SourceRecord.id == loser).values(
            merged_into=survivor, is_deleted=True, deleted_at=now, last_seen_at=now, raw_hash=None))
    else:
        upsert(connection, SourceRecord, [{
            "id": loser, "system": system, "object_type": object_type, "remote_id": remote_id,
            "entity": "person", "first_seen_at": now, "last_seen_at": now, "is_deleted": True,
            "deleted_at": now, "merged_into": survivor}], update=[])
    tombstone_derived(connection, [loser], now)
    duplicate = select(Association.from_id).where(Association.to_id == survivor).scalar_subquery()
    connection.execute(delete(Association).where(Association.to_id == loser, Association.from_id.in_(duplicate)))
    connection.execute(update(Association).where(Association.to_id == loser).values(to_id=survivor, updated_at=now))


def _bad_id(remote_id: str) -> str | None:
    """Why a remote id cannot be stored, if it cannot."""
    if len(remote_id) > REMOTE_ID_MAX:
        return f"longer than {REMOTE_ID_MAX} characters (got {remote_id!r:.80})"
    if clean_text(remote_id) is not remote_id:
        return f"holds NUL or a lone surrogate (got {remote_id!r:.80})"
    return None


def _fit_id(remote_id: str) -> str:
    """A remote id the quarantine's column can take: cleaned, and an over-long one cut with a hash of the
    whole to keep it unique."""
    if not _bad_id(remote_id):
        return remote_id
    remote_id = clean_text(remote_id)
    if len(remote_id) <= REMOTE_ID_MAX:
        return remote_id
    digest = hashlib.blake2b(remote_id.encode(errors="surrogatepass"), digest_size=8).hexdigest()
    return f"{remote_id[:REMOTE_ID_MAX - 17]}…{digest}"


def _only(row: dict[str, Any], columns: set[str]) -> dict[str, Any]:
    """The row's values for the table's columns (most rows have no others: then the row as it is)."""
    return row if row.keys() <= columns else {key: value for key, value in row.items() if key in columns}


def add_to_run(connection: Connection, run_row_id: int, counts: Counts) -> None:
    values = {name: getattr(SyncRun, name) + amount for name, amount in counts.as_dict().items() if amount}
    if values:
        connection.execute(update(SyncRun).where(SyncRun.id == run_row_id).values(**values))
