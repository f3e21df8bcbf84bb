"""The Dynamics 365 / Dataverse connector (Web API v9.2 over plain httpx).

`DynamicsConnector` implements connectors.base.Connector: `read` pages tables by change tracking (deletes
as tombstones) or, where a table has none, by `modifiedon`; `write` sends `$batch` requests; `describe`
serves `config check`; what write-back needs is in writeback.py. See QUIRKS.md for the vendor behaviour
this relies on.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from connectors.base import (
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
from connectors.dynamics import writeback
from connectors.dynamics.client import DataverseClient, DynamicsConfig
from connectors.dynamics.objects import ENTITY_SETS, SYSTEM, entity_set
from connectors.dynamics.reader import Reader, describe
from connectors.dynamics.writer import MAX_BATCH, Writer
from connectors.errors import UpstreamError


class DynamicsConnector:
    """Dataverse through one httpx client; `api_calls` counts every HTTP request it made."""

    system = SYSTEM

    def __init__(self, config: DynamicsConfig) -> None:
        self.config = config
        self.client = DataverseClient(config)
        self.reader = Reader(self.client, config.page_size)
        self.writer = Writer(self.client)

    @property
    def api_calls(self) -> int:
        return self.client.api_calls

    def check(self) -> None:
        """`GET WhoAmI`: proves the URL, the token and that the app is a user of this environment."""
        body = self.client.get_json("WhoAmI")
        if not body.get("UserId"):
            raise UpstreamError(SYSTEM, "WhoAmI answered without a UserId")

    def objects(self) -> list[str]:
        return list(ENTITY_SETS)

    def describe(self, object_type: str) -> ObjectDescription:
        return describe(self.client, entity_set(object_type))

    def read(self, object_type: str, cursor: str | None, *, full: bool = False) -> Iterator[Page]:
        yield from self.reader.read(entity_set(object_type), cursor, full)

    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return self.writer.write(object_type, ops)

    # ------------------------------------------------------------------ write-back
    def write_batch_size(self, object_type: str) -> int:
        return MAX_BATCH

    def ensure_fields(self, fields: Mapping[str, Sequence[FieldSpec]], *, group: str | None = None) -> list[str]:
        """Checks the columns and the marker's alternate key exist (an admin creates them)."""
        return writeback.ensure_fields(self.client, self.writer, fields)

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
        return writeback.find_mirrored(self.writer, object_type, marker_field, records)

    def read_current(self, object_type: str, remote_ids: Sequence[str],
                     fields: Sequence[str]) -> dict[str, dict[str, Any]]:
        return self.writer.read_current(object_type, remote_ids, fields)

    def reconcile_associations(self, object_type: str) -> Iterator[Page]:
        """Nothing to do: a changed lookup moves the row's `modifiedon` and its change-tracking version."""
        yield from ()

    def close(self) -> None:
        self.client.close()


__all__ = ["DynamicsConfig", "DynamicsConnector"]
