"""Reading Dataverse tables as pages of RemoteRecords, resumably.

Tables with change tracking are read the documented way (Microsoft's "Use change tracking to synchronize
data with external systems"): an initial read with `Prefer: odata.track-changes` returns every row and ends
with an `@odata.deltaLink`; later reads GET that link and get changed rows plus `$deletedEntity` markers,
which become tombstones. Links are followed verbatim.
Tables without change tracking are read by `modifiedon` with a watermark (see `Watermark`); they cannot see
deletes. The cursor persisted after each page is JSON (`Cursor`) and holds what the next call needs to go on:
the nextLink of an unfinished read, the deltaLink of a finished one, or the watermark.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import FieldInfo, ObjectDescription, Page, RemoteRecord
from connectors.dynamics.client import DataverseClient, RequestRejected
from connectors.dynamics.objects import SYSTEM, EntitySet, logical_name
from connectors.errors import FatalError
from connectors.meter import PageCalls

log = logging.getLogger("journeyhub.connectors.dynamics")

LOOKBACK = timedelta(minutes=5)    # modifiedon is stamped before commit: re-read this window, drop what was seen
LOOKUP_TARGET = "@Microsoft.Dynamics.CRM.lookuplogicalname"
EXPIRED_TOKEN = "0x80044352"       # "Version stamp associated with the client has expired. Please perform a full sync."
NOT_TRACKED = "0x80072491"         # "Entity systemuser isn't enabled for change tracking."
LOOKUP_TYPES = {"Lookup", "Customer", "Owner"}


# --------------------------------------------------------------------------------------------- records
def parse_time(value: Any) -> datetime | None:
    if not value or not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_removal(row: dict[str, Any]) -> bool:
    """A change-tracking removal marker: `{"@odata.context": "…/$deletedEntity", "id": …, "reason": …}`."""
    return "$deletedEntity" in str(row.get("@odata.context", ""))


def to_record(entity: EntitySet, row: dict[str, Any]) -> RemoteRecord:
    """One served row as a RemoteRecord. Lookup targets (the lookuplogicalname annotations, whose keys contain
    dots a mapping path cannot name) are copied to `_lookup.<_x_value>` for the mappings' `ref.by_field`."""
    if is_removal(row):
        return RemoteRecord(entity.name, str(row["id"]).lower(), None, deleted=True)
    key = row.get(entity.key)
    if not key:
        raise FatalError(SYSTEM, f"{entity.name}: a row came back without its primary key {entity.key}")
    targets = {name[: -len(LOOKUP_TARGET)]: value for name, value in row.items() if name.endswith(LOOKUP_TARGET)}
    return RemoteRecord(entity.name, str(key).lower(), row, created_at=parse_time(row.get("createdon")),
                        modified_at=parse_time(row.get("modifiedon")), extra={"_lookup": targets})


def prefer(page_size: int, *, tracking: bool) -> str:
    items = [f"odata.maxpagesize={page_size}", f'odata.include-annotations="{LOOKUP_TARGET[1:]}"']
    return ", ".join(["odata.track-changes", *items] if tracking else items)


def fingerprint(select: str) -> str:
    """Changes when the selected columns change, so a deltaLink built for other columns is not reused."""
    return hashlib.blake2b(select.encode(), digest_size=6).hexdigest()


# ---------------------------------------------------------------------------------------------- cursor
@dataclass
class Cursor:
    """What is persisted after a page. `mode`: `initial` (a change-tracking load under way: `next`),
    `delta` (`link` = the deltaLink a delta read started from, `next` = where it got to, if unfinished) or
    `modifiedon` (`since` + `seen`, the watermark)."""

    mode: str
    link: str | None = None
    next: str | None = None
    since: str | None = None
    seen: dict[str, str] = field(default_factory=dict)
    columns: str | None = None

    def dumps(self) -> str:
        return json.dumps({key: value for key, value in asdict(self).items() if value not in (None, {})},
                          separators=(",", ":"))

    @classmethod
    def loads(cls, text: str | None) -> Cursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            cursor = cls(**data)
        except (TypeError, ValueError):
            return None
        return cursor if cursor.mode in ("initial", "delta", "modifiedon") else None


class Watermark:
    """The incremental scheme for tables without change tracking: the newest `modifiedon` of what was
    read and the ids (with their `modifiedon`) within `LOOKBACK` of it. The next read asks for
    `modifiedon ge since - LOOKBACK` and drops rows already seen with the same `modifiedon`, so nothing
    late-committed or sharing a timestamp is lost and an unchanged table returns nothing."""

    def __init__(self, since: str | None = None, seen: dict[str, str] | None = None) -> None:
        self.since = parse_time(since)
        self.seen = dict(seen or {})

    def is_new(self, record: RemoteRecord) -> bool:
        return self.seen.get(record.remote_id) != _modified(record)

    def advance(self, records: list[RemoteRecord]) -> None:
        for record in records:
            if record.modified_at is not None and (self.since is None or record.modified_at > self.since):
                self.since = record.modified_at
            if record.modified_at is not None:
                self.seen[record.remote_id] = _modified(record)
        if self.since is not None:
            cutoff = self.since - LOOKBACK
            self.seen = {key: stamp for key, stamp in self.seen.items()
                         if (parsed := parse_time(stamp)) is not None and parsed >= cutoff}

    def cursor(self) -> Cursor:
        return Cursor("modifiedon", since=format_time(self.since) if self.since else None, seen=dict(self.seen))


def _modified(record: RemoteRecord) -> str:
    return format_time(record.modified_at) if record.modified_at else ""


# ---------------------------------------------------------------------------------------------- reader
class Reader:
    """Pages of one table from a cursor; see the module docstring for the two modes and the cursor."""

    def __init__(self, client: DataverseClient, page_size: int) -> None:
        self.client = client
        self.page_size = page_size

    def read(self, entity: EntitySet, cursor: str | None, full: bool,
             columns: Sequence[str] | None = None) -> Iterator[Page]:
        """Pages of `columns` (plus the key and created/modified) from `cursor`."""
        meter = self.client.meter.pages()
        select = entity.select(columns)
        state = None if full else self._resumable(entity, cursor, select)
        if state is None:
            yield from self._fresh(entity, select, meter)
        elif state.mode == "modifiedon":
            yield from self._by_modifiedon(entity, select, state, meter)
        else:
            yield from self._tracked(entity, select, state, meter)

    def _resumable(self, entity: EntitySet, text: str | None, select: str) -> Cursor | None:
        state = Cursor.loads(text)
        if text and state is None:
            log.warning("%s: the saved cursor is not one this connector wrote; reading everything again", entity.name)
        elif state is not None and state.mode != "modifiedon" and state.columns != fingerprint(select):
            log.warning("%s: the columns read have changed since the saved delta link; reading everything again",
                        entity.name)
            return None
        return state

    def _fresh(self, entity: EntitySet, select: str, meter: PageCalls) -> Iterator[Page]:
        if entity.tracked:
            yield from self._tracked(entity, select, Cursor("initial", columns=fingerprint(select)), meter)
        else:
            yield from self._by_modifiedon(entity, select, Cursor("modifiedon"), meter)

    # ------------------------------------------------------------------ change tracking
    def _tracked(self, entity: EntitySet, select: str, state: Cursor, meter: PageCalls) -> Iterator[Page]:
        """A change-tracking read from `state`: the initial load, its continuation, or a delta read."""
        url = state.next or state.link
        try:
            body = self._get(url or entity.name, None if url else {"$select": select}, tracking=True)
        except RequestRejected as error:
            yield from self._rejected(entity, select, state, error, meter)
            return
        yield from self._tracked_pages(entity, select, state.link if state.mode == "delta" else None, body, meter)

    def _rejected(self, entity: EntitySet, select: str, state: Cursor, error: RequestRejected,
                  meter: PageCalls) -> Iterator[Page]:
        """The first request of a tracked read was refused: fall back, never loop."""
        if error.code == NOT_TRACKED:
            log.warning("%s: change tracking is off for this table (%s); reading by modifiedon instead, which "
                        "cannot see deletes — turn on 'Track changes' for the table to get them", entity.name,
                        error.message)
            yield from self._by_modifiedon(entity, select, Cursor("modifiedon"), meter)
            return
        if state.mode == "initial" and state.next is None:
            raise error
        if state.mode == "delta" and state.next is not None and state.link is not None:
            log.warning("%s: the saved page link of a delta read was rejected (%s); starting that delta read over",
                        entity.name, error.message)
            yield from self._tracked(entity, select, Cursor("delta", link=state.link, columns=state.columns), meter)
            return
        why = ("the change-tracking token has expired (older than the organisation's ExpireChangeTrackingInDays)"
               if error.code == EXPIRED_TOKEN else f"the saved link was rejected ({error.message})")
        log.warning("%s: %s; reading the whole table again (unchanged rows are not rewritten)", entity.name, why)
        yield from self._tracked(entity, select, Cursor("initial", columns=fingerprint(select)), meter)

    def _tracked_pages(self, entity: EntitySet, select: str, base: str | None, body: dict[str, Any],
                       meter: PageCalls) -> Iterator[Page]:
        """Pages of one tracked read, up to its deltaLink. `base`: the deltaLink a delta read started from."""
        mode = "delta" if base else "initial"
        watermark = Watermark()
        while True:
            records = [to_record(entity, row) for row in body.get("value", [])]
            watermark.advance([record for record in records if not record.deleted])
            next_link, delta_link = body.get("@odata.nextLink"), body.get("@odata.deltaLink")
            if next_link:
                cursor = Cursor(mode, link=base, next=next_link, columns=fingerprint(select))
            elif delta_link:
                cursor = Cursor("delta", link=delta_link, columns=fingerprint(select))
            else:
                log.warning("%s: Dataverse did not apply change tracking (no deltaLink); continuing by modifiedon",
                            entity.name)
                cursor = watermark.cursor()
            yield Page(entity.name, records, cursor.dumps(), api_calls=meter.take())
            if not next_link:
                return
            body = self._get(next_link, None, tracking=True)

    # ------------------------------------------------------------------ modifiedon fallback
    def _by_modifiedon(self, entity: EntitySet, select: str, state: Cursor, meter: PageCalls) -> Iterator[Page]:
        watermark = Watermark(state.since, state.seen)
        params = {"$select": select, "$orderby": f"modifiedon asc,{entity.key} asc"}
        if watermark.since is not None:
            params["$filter"] = f"modifiedon ge {format_time(watermark.since - LOOKBACK)}"
        body = self._get(entity.name, params, tracking=False)
        while True:
            records = [to_record(entity, row) for row in body.get("value", [])]
            fresh = [record for record in records if watermark.is_new(record)]
            watermark.advance(records)
            yield Page(entity.name, fresh, watermark.cursor().dumps(), api_calls=meter.take())
            next_link = body.get("@odata.nextLink")
            if not next_link:
                return
            body = self._get(next_link, None, tracking=False)

    def _get(self, url: str, params: dict[str, str] | None, *, tracking: bool) -> dict[str, Any]:
        return self.client.get_json(url, params=params, prefer=prefer(self.page_size, tracking=tracking))


# -------------------------------------------------------------------------------------------- metadata
def attributes(client: DataverseClient, table: str) -> list[dict[str, Any]]:
    """The table's attribute metadata (LogicalName, AttributeType, IsCustomAttribute, IsValidFor…)."""
    body = client.get_json(f"EntityDefinitions(LogicalName='{logical_name(table)}')/Attributes", params={
        "$select": "LogicalName,AttributeType,IsCustomAttribute,IsValidForCreate,IsValidForUpdate"})
    return [item for item in body.get("value", []) if isinstance(item, dict)]


def property_name(attribute: dict[str, Any]) -> str:
    """The Web API property a column is read under: lookups are `_<name>_value`."""
    name = str(attribute.get("LogicalName"))
    return f"_{name}_value" if attribute.get("AttributeType") in LOOKUP_TYPES else name


def describe(client: DataverseClient, entity: EntitySet) -> ObjectDescription:
    fields = {}
    for attribute in attributes(client, entity.logical):
        name = property_name(attribute)
        fields[name] = FieldInfo(name, str(attribute.get("AttributeType")), custom=bool(attribute.get(
            "IsCustomAttribute")), createable=attribute.get("IsValidForCreate") is not False,
            updateable=attribute.get("IsValidForUpdate") is not False)
    return ObjectDescription(entity.name, fields)
