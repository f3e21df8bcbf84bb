"""What write-back needs from Dataverse beyond `$batch` writes: the columns (and the alternate key) an admin
must create (the Web API the hub uses cannot), value formats, mirrored items as completed tasks, and finding
them by marker.

Mirrored tasks are upserted by an alternate key on the marker column (`PATCH tasks(new_externalid='jh:…')`),
so sending one twice updates it in place. Without the key Dataverse refuses the request (0x80060890), so
`ensure_fields` requires an active alternate key made of exactly that column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from connectors.base import FieldSpec, MarkedRecord, MirroredItem
from connectors.dynamics.client import DataverseClient
from connectors.dynamics.objects import SYSTEM, entity_set, logical_name
from connectors.dynamics.writer import MAX_BATCH, Writer
from connectors.errors import ConfigError
from connectors.values import FlatRecordWriteback

#: the hub's column types as the maker portal names them (what an admin creates)
TYPES = {"string": "Single line of text (100)", "datetime": "Date and time", "number": "Whole number"}
MARKER_TYPE = "Single line of text (255), with an alternate key on it"
SUBJECT_LIMIT, DESCRIPTION_LIMIT = 200, 100_000
MARKERS_PER_QUERY = 100            # `col eq '…' or …` clauses per GET (≈ 6 KB)


def _datetime_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class DynamicsWriteback(FlatRecordWriteback):
    """The write-back part of `connectors.base.Connector` for Dataverse (mixed into `DynamicsConnector`)."""

    datetime_text = staticmethod(_datetime_text)
    client: DataverseClient
    writer: Writer

    def write_batch_size(self, object_type: str) -> int:
        return MAX_BATCH

    def ensure_fields(self, fields: Mapping[str, Sequence[FieldSpec]], *, group: str | None = None) -> list[str]:
        """Checks the columns and the marker's alternate key exist (an admin creates them)."""
        return ensure_fields(self.client, self.writer, fields)

    def mirror_fields(self, object_type: str, item: MirroredItem) -> dict[str, Any]:
        return mirror_fields(item)

    def find_mirrored(self, object_type: str, marker_field: str,
                      records: Sequence[MarkedRecord]) -> dict[str, str]:
        return find_mirrored(self.writer, object_type, marker_field, records)

    def read_current(self, object_type: str, remote_ids: Sequence[str],
                     fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.writer.read_current(object_type, remote_ids, fields)


def mirror_fields(item: MirroredItem) -> dict[str, Any]:
    """A mirrored item as a completed task (the marker travels in the alternate key of the upsert's URL)."""
    text = f"{item.title}\n\n{item.detail}".strip()
    when = _datetime_text(item.occurred_at.astimezone(UTC))
    return {"subject": f"[Journey Hub] {item.headline}: {item.title}"[:SUBJECT_LIMIT],
            "description": text[:DESCRIPTION_LIMIT] or item.headline, "actualend": when, "scheduledend": when,
            "statecode": 1, "statuscode": 5}


def ensure_fields(client: DataverseClient, writer: Writer, fields: Mapping[str, Sequence[FieldSpec]]) -> list[str]:
    """Checks every column (and the marker's alternate key) in the table metadata; creates nothing. One
    ConfigError lists every column an admin must create or fix, with its type."""
    missing: list[str] = []
    for object_type, specs in fields.items():
        absent = set(writer.missing_columns(object_type, [(spec.name, spec.type) for spec in specs]))
        markers = [spec.name for spec in specs if spec.marker and spec.name not in absent]
        if markers:
            keyed = _alternate_keys(client, object_type)
            absent |= {name for name in markers if (name,) not in keyed}
        missing += [f"{object_type}.{spec.name} ({MARKER_TYPE if spec.marker else TYPES.get(spec.type, spec.type)})"
                    for spec in specs if spec.name in absent]
    if missing:
        raise ConfigError(SYSTEM, f"{len(missing)} column(s) the hub writes are missing; an admin must create: "
                                  f"{', '.join(missing)} (see README, 'Fields to create in the CRMs')")
    return []


def _alternate_keys(client: DataverseClient, object_type: str) -> set[tuple[str, ...]]:
    """The table's active alternate keys, each as its column names."""
    body = client.get_json(f"EntityDefinitions(LogicalName='{logical_name(object_type)}')/Keys",
                           params={"$select": "LogicalName,KeyAttributes,EntityKeyIndexStatus"})
    return {tuple(key.get("KeyAttributes") or ()) for key in body.get("value", [])
            if isinstance(key, dict) and key.get("EntityKeyIndexStatus") == "Active"}


def find_mirrored(writer: Writer, object_type: str, marker_field: str,
                  records: Sequence[MarkedRecord]) -> dict[str, str]:
    """`{marker: row id}` by `$filter=<marker> eq '…' or …` queries of 100 markers, in one `$batch`."""
    entity = entity_set(object_type)
    markers = sorted({record.marker for record in records})
    queries = []
    for start in range(0, len(markers), MARKERS_PER_QUERY):
        clauses = " or ".join(f"{marker_field} eq '{marker.replace(chr(39), chr(39) * 2)}'"
                              for marker in markers[start:start + MARKERS_PER_QUERY])
        queries.append(f"{entity.name}?$select={entity.key},{marker_field}&$filter="
                       + quote(clauses, safe="$=,'()"))
    found: dict[str, str] = {}
    for start in range(0, len(queries), MAX_BATCH):
        for body in writer.query_bodies(queries[start:start + MAX_BATCH]):
            for row in sorted(body.get("value", []), key=lambda row: str(row.get(entity.key))):
                found.setdefault(str(row.get(marker_field)), str(row[entity.key]).lower())
    return found
