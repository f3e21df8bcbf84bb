"""What write-back needs from HubSpot beyond batched writes: the hub's properties, value formats, mirrored
items as notes, and finding the notes a push that died mid-batch may have created.

Mirrored items are notes created with their association inline and updated by id afterwards; batch create
is not idempotent. Settling a crashed push therefore looks notes up by marker through the target records'
associations (v4 batch read) and a batch read of the associated notes: both read HubSpot's database, where
search reads an index that lags seconds behind a create (QUIRKS.md) — a note created just before the crash
would not be found and would be created twice.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import MISSING, FieldSpec, FieldType, MarkedRecord, MirroredItem, MirrorMode
from connectors.errors import ConfigError
from connectors.hubspot.client import SYSTEM, HubSpotClient
from connectors.hubspot.writer import BATCH, Writer, property_value

NOTE_BODY_LIMIT = 65_000            # HubSpot takes 65,536 characters
DEFAULT_GROUP = "journeyhub"
GROUP_LABEL = "Journey Hub"
MIRROR_OBJECT = "notes"


class HubSpotWriteback:
    """The write-back part of `connectors.base.Connector` for HubSpot (mixed into `HubSpotConnector`)."""

    client: HubSpotClient
    writer: Writer

    def write_batch_size(self, object_type: str) -> int:
        return BATCH

    def ensure_fields(self, fields: Mapping[str, Sequence[FieldSpec]], *, group: str | None = None) -> list[str]:
        """Creates the missing properties (and their group); returns the names created."""
        return ensure_fields(self.writer, fields, group)

    def format_value(self, field_type: FieldType, value: Any) -> Any:
        return format_value(field_type, value)

    def field_value(self, raw: dict[str, Any] | None, field: str) -> Any:
        return field_value(raw, field)

    def mirror_mode(self, object_type: str) -> MirrorMode:
        return "create"

    def mirror_fields(self, object_type: str, item: MirroredItem) -> dict[str, Any]:
        return mirror_fields(object_type, item)

    def find_mirrored(self, object_type: str, marker_field: str,
                      records: Sequence[MarkedRecord]) -> dict[str, str]:
        return find_mirrored(self.client, object_type, marker_field, records)

    def read_current(self, object_type: str, remote_ids: Sequence[str],
                     fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.writer.read_current(object_type, remote_ids, fields)


def format_value(field_type: FieldType, value: Any) -> Any:
    """Every HubSpot property value is a string: datetimes ISO-8601 UTC with milliseconds, "" clears."""
    if value is None:
        return ""
    if field_type == "datetime" and isinstance(value, datetime):
        return property_value(value)
    return str(value)


def field_value(raw: dict[str, Any] | None, field: str) -> Any:
    """A property's value in a stored record (`properties.<name>`), MISSING when the pull did not ask for it."""
    if not raw:
        return MISSING
    return (raw.get("properties") or {}).get(field, MISSING)


def mirror_fields(object_type: str, item: MirroredItem) -> dict[str, Any]:
    """A mirrored item as a note: an HTML body saying where it comes from, timed when it happened."""
    _mirror_object(object_type)
    body = (f"<p><strong>Journey Hub</strong> · {html.escape(item.headline)}</p>"
            + (f"<p>{html.escape(item.title)}</p>" if item.title else "")
            + (f"<p>{html.escape(item.detail)}</p>" if item.detail else ""))
    return {"hs_timestamp": format_value("datetime", item.occurred_at.astimezone(UTC)),
            "hs_note_body": body[:NOTE_BODY_LIMIT], item.marker_field: item.marker}


def _mirror_object(object_type: str) -> None:
    if object_type != MIRROR_OBJECT:
        raise ConfigError(SYSTEM, f"mirrored items are written to HubSpot as {MIRROR_OBJECT}, not {object_type!r}: "
                          f"set hubspot.mirror.object to {MIRROR_OBJECT} in mappings/writeback.yaml")


def ensure_fields(writer: Writer, fields: Mapping[str, Sequence[FieldSpec]], group: str | None) -> list[str]:
    """Creates the missing properties (in `group`, created too): HubSpot's properties API can. Returns the
    names created; a property of another type is a ConfigError."""
    created: list[str] = []
    for object_type, specs in fields.items():
        if any(spec.marker for spec in specs):
            _mirror_object(object_type)
        created += writer.ensure_properties(object_type, group or DEFAULT_GROUP, GROUP_LABEL,
                                            [(spec.name, spec.label or spec.name, spec.type) for spec in specs])
    return created


def find_mirrored(client: HubSpotClient, object_type: str, marker_field: str,
                  records: Sequence[MarkedRecord]) -> dict[str, str]:
    """`{marker: note id}` for the markers that exist: the targets' associated notes (v4 batch reads of 100
    targets), then those notes' markers (batch reads of 100). Where a marker is on two notes (written before
    pushes were crash-safe) the oldest is named."""
    wanted = {record.marker for record in records}
    by_type: dict[str, set[str]] = defaultdict(set)
    for record in records:
        by_type[record.target[0]].add(str(record.target[1]))
    candidates: set[str] = set()
    for target_type, ids in by_type.items():
        candidates.update(_associated(client, target_type, object_type, sorted(ids)))
    found: dict[str, str] = {}
    ordered = sorted(candidates, key=lambda value: (len(value), value))
    for start in range(0, len(ordered), BATCH):
        body = client.call(client.objects_batch.read, object_type,
                           {"inputs": [{"id": i} for i in ordered[start:start + BATCH]],
                            "properties": [marker_field], "propertiesWithHistory": []},
                           what=f"batch read {object_type} markers") or {}
        for result in sorted(body.get("results") or [], key=lambda r: (len(str(r["id"])), str(r["id"]))):
            marker = (result.get("properties") or {}).get(marker_field)
            if marker in wanted:
                found.setdefault(marker, str(result["id"]))
    return found


def _associated(client: HubSpotClient, from_type: str, to_type: str, ids: list[str]) -> Iterator[str]:
    """Ids of the `to_type` records associated with each of `ids`, following each input's paging."""
    for start in range(0, len(ids), BATCH):
        inputs: list[dict[str, Any]] = [{"id": i} for i in ids[start:start + BATCH]]
        while inputs:
            body = client.call(client.associations_batch.get_page, from_type, to_type, {"inputs": inputs},
                               what=f"read {from_type}→{to_type} associations") or {}
            inputs = []
            for result in body.get("results") or []:
                yield from (str(target.get("toObjectId")) for target in result.get("to") or [])
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    inputs.append({"id": str((result.get("from") or {}).get("id")), "after": after})
