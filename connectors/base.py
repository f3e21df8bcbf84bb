"""The one small interface every CRM connector implements.

```
check()                      one cheap authenticated call; raises a connectors.errors class
objects()                    the object types this connector can read
describe(object_type)        fields from the CRM's metadata API (the hub checks what a mapping reads against it)
fields_for(object_type, paths) -> {path: SourceField | None}
                             which field of the CRM each mapping path reads (vendor knowledge: `properties.x`
                             is HubSpot property `x`); None for what every record carries or the connector adds
read(object_type, cursor, full=False, fields=None) -> Iterator[Page]
                             pages of RemoteRecords with `fields` (the CRM's names; None: only the connector's
                             own system fields) plus ids, cursor fields and delete/merge markers; each page
                             carries the cursor to persist once the page is committed; deletions come as
                             tombstones (deleted=True), with their last data where the CRM keeps it
write(object_type, ops) -> list[WriteResult]
                             batched writes; one result per operation, in order
concurrent_reads             (class attribute) whether several reads may run at once on one connector
```
and what write-back and reconciliation need, so the hub's core never names a CRM:
```
write_batch_size(object_type)          operations one write call sends in one request (the executor records
                                       intents and confirms results per call of this size)
ensure_fields({object: [FieldSpec]}, group=)   create the fields the hub writes where the API can; otherwise
                                       one ConfigError listing what an admin must create, with types
format_value(field_type, value)        a hub value (str, int/float, aware UTC datetime, None) as the API takes it
field_value(raw, field)                a field's value in a stored raw record, or MISSING when not read
mirror_mode(object_type)               "create" (then updated by id) or "upsert" (by the marker as external id)
mirror_fields(object_type, item)       a MirroredItem's native fields
find_mirrored(object_type, marker_field, [MarkedRecord]) -> {marker: remote id}
                                       batched lookup of mirrored items by marker (settles a crashed push);
                                       must see records written a moment ago
read_current(object_type, ids, fields) current values of existing records (absent ids left out)
reconcile_associations(object_type)    pages of records whose associations changed unseen (may yield nothing)
```
Connectors import neither `canonical` nor `flows`: they speak the CRM's language (object types, field names,
raw JSON). Mapping into the canonical model is a separate, declarative step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable


@dataclass(slots=True)
class RemoteRecord:
    """One CRM record as the CRM returned it (stored as a canonical `SourceRecord` row once mapped). `data` is
    the vendor JSON (None for a bare tombstone); `extra` is connector enrichment the mappings can read under
    `_`-prefixed keys (e.g. `_associations`, `_stage`)."""

    object_type: str
    remote_id: str
    data: dict[str, Any] | None
    created_at: datetime | None = None
    modified_at: datetime | None = None
    deleted: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def document(self) -> dict[str, Any]:
        """What a mapping reads: the vendor JSON plus the enrichment keys."""
        return {**(self.data or {}), **self.extra}


@dataclass(slots=True)
class Page:
    """A batch of records and the cursor that is safe to persist once they are stored."""

    object_type: str
    records: list[RemoteRecord]
    cursor: str | None
    api_calls: int = 0


@dataclass(slots=True)
class FieldInfo:
    name: str
    type: str
    label: str | None = None
    custom: bool = False
    createable: bool = True
    updateable: bool = True
    external_id: bool = False


@dataclass(slots=True)
class ObjectDescription:
    object_type: str
    fields: dict[str, FieldInfo]


@dataclass(frozen=True, slots=True)
class SourceField:
    """A field of the CRM's schema that a mapping path reads: its name as the CRM's API spells it, and whether
    an org may lack it unless the mapping says otherwise (custom fields, and fields that exist only with an
    edition, a hub or an integration, are optional by default; the vendor's standard fields are required)."""

    name: str
    optional: bool = False
    ask_if_absent: bool = False      # the CRM ignores a request naming a field it lacks: ask anyway, so a field
                                     # created later (the hub's own marker, by its first push) arrives at once


WriteKind = Literal["create", "update", "upsert", "delete"]


@dataclass(slots=True)
class WriteOp:
    """One write. `key` is the caller's correlation key (echoed in the result). For `update`/`delete`,
    `remote_id` names the record; for `upsert`, `external_id` is (field, value)."""

    kind: WriteKind
    key: str
    data: dict[str, Any] = field(default_factory=dict)
    remote_id: str | None = None
    external_id: tuple[str, str] | None = None
    associations: list[tuple[str, str]] = field(default_factory=list)  # (object type, remote id)


@dataclass(slots=True)
class WriteResult:
    key: str
    ok: bool
    remote_id: str | None = None
    created: bool | None = None
    error: str | None = None
    retriable: bool = False


class _Missing:
    """The type of MISSING: a field the stored record does not carry (not read), as opposed to None (empty)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

FieldType = Literal["string", "datetime", "number"]
MirrorMode = Literal["create", "upsert"]


@dataclass(frozen=True, slots=True)
class FieldSpec:
    """A field the hub writes into a CRM object. `marker`: the field carrying mirrored items' markers, which
    must be a unique key (external id / alternate key) where the CRM upserts by it."""

    name: str
    type: FieldType = "string"
    label: str | None = None
    marker: bool = False


@dataclass(frozen=True, slots=True)
class MirroredItem:
    """A timeline item of another CRM, CRM-neutral: the connector turns it into its native activity.
    `headline` is e.g. "Call (outbound) in Salesforce"; `marker` goes into `marker_field`."""

    headline: str
    title: str
    detail: str
    occurred_at: datetime
    marker_field: str
    marker: str


@dataclass(frozen=True, slots=True)
class MarkedRecord:
    """A mirrored item to look up: its marker and the record it was written to (object type, remote id)."""

    marker: str
    target: tuple[str, str]


@runtime_checkable
class Connector(Protocol):
    system: str
    api_calls: int
    #: True promises that one connector may serve several `read()` generators at once, each advanced from its
    #: own thread: a read keeps what it has in progress to itself, and logins and token refreshes are shared
    #: (one at a time, once per expiry). False: one read at a time.
    concurrent_reads: ClassVar[bool] = False

    def check(self) -> None: ...

    def objects(self) -> list[str]: ...

    def describe(self, object_type: str) -> ObjectDescription: ...

    def fields_for(self, object_type: str, paths: Iterable[str]) -> dict[str, SourceField | None]: ...

    def read(self, object_type: str, cursor: str | None, *, full: bool = False,
             fields: Sequence[str] | None = None) -> Iterator[Page]: ...

    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]: ...

    def close(self) -> None: ...

    # ------------------------------------------------------------------ write-back
    def write_batch_size(self, object_type: str) -> int: ...

    def ensure_fields(self, fields: Mapping[str, Sequence[FieldSpec]], *, group: str | None = None) -> list[str]: ...

    def format_value(self, field_type: FieldType, value: Any) -> Any: ...

    def field_value(self, raw: dict[str, Any] | None, field: str) -> Any: ...

    def mirror_mode(self, object_type: str) -> MirrorMode: ...

    def mirror_fields(self, object_type: str, item: MirroredItem) -> dict[str, Any]: ...

    def find_mirrored(self, object_type: str, marker_field: str,
                      records: Sequence[MarkedRecord]) -> dict[str, str]: ...

    def read_current(self, object_type: str, remote_ids: Sequence[str],
                     fields: Sequence[str]) -> dict[str, dict[str, Any]]: ...

    # ------------------------------------------------------------------ reconciliation
    def reconcile_associations(self, object_type: str, *, fields: Sequence[str] | None = None) -> Iterator[Page]: ...
