"""What write-back needs from Salesforce beyond sObject Collections: the fields an admin must create (the REST
API cannot), value formats, mirrored items as completed Tasks, and finding them by marker.

Mirrored Tasks are upserted by their External ID field (`composite/sobjects/Task/External_Id__c`), so sending
one twice — a push killed after the batch landed, then run again — updates it in place. That holds only if the
field is an External ID *and* Unique (two concurrent upserts of a new value could otherwise both insert), so
`ensure_fields` requires both.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import FieldSpec, MarkedRecord, MirroredItem
from connectors.errors import ConfigError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.writer import COLLECTION_LIMIT, Writer
from connectors.values import FlatRecordWriteback

SYSTEM = "salesforce"
#: the hub's field types as Salesforce's setup names them (what an admin creates)
TYPES = {"string": "Text(40)", "datetime": "Date/Time", "number": "Number"}
MARKER_TYPE = "Text(255), External ID, Unique"
SUBJECT_LIMIT, DESCRIPTION_LIMIT = 255, 32_000
MARKERS_PER_QUERY = 200            # ≈ 9 KB of SOQL: well under the 100,000-character limit


def _datetime_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class SalesforceWriteback(FlatRecordWriteback):
    """The write-back part of `connectors.base.Connector` for Salesforce (mixed into `SalesforceConnector`)."""

    datetime_text = staticmethod(_datetime_text)
    client: SalesforceClient
    writer: Writer

    def write_batch_size(self, object_type: str) -> int:
        return COLLECTION_LIMIT

    def ensure_fields(self, fields: Mapping[str, Sequence[FieldSpec]], *, group: str | None = None) -> list[str]:
        """Checks the fields exist (an admin creates them); a ConfigError lists the missing ones."""
        return ensure_fields(self.writer, fields)

    def mirror_fields(self, object_type: str, item: MirroredItem) -> dict[str, Any]:
        return mirror_fields(item)

    def find_mirrored(self, object_type: str, marker_field: str,
                      records: Sequence[MarkedRecord]) -> dict[str, str]:
        return find_mirrored(self.client, object_type, marker_field, records)

    def read_current(self, object_type: str, remote_ids: Sequence[str],
                     fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.writer.read_current(object_type, list(remote_ids), list(fields))


def mirror_fields(item: MirroredItem) -> dict[str, Any]:
    """A mirrored item as a completed Task (the marker travels as the upsert's external id)."""
    text = f"{item.title}\n\n{item.detail}".strip()
    return {"Subject": f"[Journey Hub] {item.headline}: {item.title}"[:SUBJECT_LIMIT],
            "Description": text[:DESCRIPTION_LIMIT] or item.headline,
            "ActivityDate": item.occurred_at.astimezone(UTC).date().isoformat(), "Status": "Completed",
            "Priority": "Normal"}


def ensure_fields(writer: Writer, fields: Mapping[str, Sequence[FieldSpec]]) -> list[str]:
    """Checks every field against the org's describe; creates nothing (the REST API cannot). One ConfigError
    lists every field an admin must create or fix, with its type."""
    missing: list[str] = []
    for sobject, specs in fields.items():
        kinds = {spec.name: "external_id" if spec.marker else spec.type for spec in specs}
        for name in writer.missing_fields(sobject, list(kinds.items())):
            kind = kinds[name]
            missing.append(f"{sobject}.{name} ({MARKER_TYPE if kind == 'external_id' else TYPES.get(kind, kind)})")
    if missing:
        raise ConfigError(SYSTEM, f"{len(missing)} field(s) the hub writes are missing; an admin must create: "
                                  f"{', '.join(missing)} (see README, 'Fields to create in the CRMs')")
    return []


def find_mirrored(client: SalesforceClient, sobject: str, marker_field: str,
                  records: Sequence[MarkedRecord]) -> dict[str, str]:
    """`{marker: Id}` by SOQL `WHERE <marker> IN (…)`, 200 markers per query (deleted Tasks are not found)."""
    markers = sorted({record.marker for record in records})
    found: dict[str, str] = {}
    for start in range(0, len(markers), MARKERS_PER_QUERY):
        values = ", ".join(_literal(marker) for marker in markers[start:start + MARKERS_PER_QUERY])
        soql = f"SELECT Id, {marker_field} FROM {sobject} WHERE {marker_field} IN ({values}) ORDER BY Id"
        result = client.call(f"find {sobject} by {marker_field}", lambda sf, soql=soql: sf.query_all(soql),
                             sobject=sobject)
        for row in result.get("records") or []:
            found.setdefault(str(row.get(marker_field)), str(row["Id"]))
    return found


def _literal(value: str) -> str:
    """A SOQL string literal (backslash and quote escaped)."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
