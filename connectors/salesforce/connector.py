"""`SalesforceConnector`: the connectors.base interface over the client, the reader, the writer and what
write-back needs (connectors/salesforce/writeback.py)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.base import (
    FieldInfo,
    FieldSpec,
    FieldType,
    MarkedRecord,
    MirroredItem,
    MirrorMode,
    ObjectDescription,
    Page,
    WriteOp,
    WriteResult,
)
from connectors.salesforce import writeback
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from connectors.salesforce.objects import SOBJECTS
from connectors.salesforce.reader import Reader
from connectors.salesforce.writer import COLLECTION_LIMIT, Writer


class SalesforceConnector:
    """Reads and writes one Salesforce org through simple-salesforce (see QUIRKS.md for the surprises)."""

    system = "salesforce"

    def __init__(self, config: SalesforceConfig) -> None:
        self.config = config
        self.client = SalesforceClient(config)
        self.reader = Reader(self.client, config)
        self.writer = Writer(self.client)

    @property
    def api_calls(self) -> int:
        """Every HTTP call made so far (logins, retries and polls included)."""
        return self.client.api_calls

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, limit) of the org's daily API requests, from the last Sforce-Limit-Info header."""
        return self.client.api_usage

    def check(self) -> None:
        """One cheap authenticated call (`limits/`)."""
        self.client.call("check (limits)", lambda sf: sf.limits())

    def objects(self) -> list[str]:
        return list(SOBJECTS)

    def describe(self, object_type: str) -> ObjectDescription:
        fields = self.client.describe(object_type, fresh=True)
        return ObjectDescription(object_type, {name: _field_info(entry) for name, entry in fields.items()})

    def read(self, object_type: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        return self.reader.read(object_type, cursor, full)

    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return self.writer.write(object_type, ops)

    # ------------------------------------------------------------------ write-back
    def write_batch_size(self, object_type: str) -> int:
        return COLLECTION_LIMIT

    def ensure_fields(self, fields: Mapping[str, Sequence[FieldSpec]], *, group: str | None = None) -> list[str]:
        """Checks the fields exist (an admin creates them); a ConfigError lists the missing ones."""
        return writeback.ensure_fields(self.writer, fields)

    def format_value(self, field_type: FieldType, value: Any) -> Any:
        return writeback.format_value(field_type, value)

    def field_value(self, raw: dict[str, Any] | None, field: str) -> Any:
        return writeback.field_value(raw, field)

    def mirror_mode(self, object_type: str) -> MirrorMode:
        return "upsert"

    def mirror_fields(self, object_type: str, item: MirroredItem) -> dict[str, Any]:
        return writeback.mirror_fields(item)

    def find_mirrored(self, object_type: str, marker_field: str,
                      records: Sequence[MarkedRecord]) -> dict[str, str]:
        return writeback.find_mirrored(self.client, object_type, marker_field, records)

    def read_current(self, object_type: str, remote_ids: Sequence[str],
                     fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.writer.read_current(object_type, list(remote_ids), list(fields))

    def reconcile_associations(self, object_type: str) -> Iterator[Page]:
        """Nothing to do: Salesforce bumps SystemModstamp when a lookup changes, so incremental reads see it."""
        yield from ()

    def close(self) -> None:
        self.client.close()


def _field_info(entry: dict[str, Any]) -> FieldInfo:
    return FieldInfo(name=entry["name"], type=entry.get("type", "string"), label=entry.get("label"),
                     custom=bool(entry.get("custom")), createable=bool(entry.get("createable")),
                     updateable=bool(entry.get("updateable")), external_id=bool(entry.get("externalId")))
