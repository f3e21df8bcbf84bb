"""`SalesforceConnector`: the connectors.base interface over the client, the reader, the writer and what
write-back needs (connectors/salesforce/writeback.py)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from connectors.base import FieldInfo, ObjectDescription, Page, SourceField, WriteOp, WriteResult
from connectors.salesforce.client import SalesforceClient, SalesforceConfig
from connectors.salesforce.objects import SOBJECTS, sobject, source_field
from connectors.salesforce.reader import Reader
from connectors.salesforce.writeback import SalesforceWriteback
from connectors.salesforce.writer import Writer


class SalesforceConnector(SalesforceWriteback):
    """Reads and writes one Salesforce org through simple-salesforce (see QUIRKS.md for the surprises); what
    write-back needs comes from `SalesforceWriteback`."""

    system = "salesforce"
    concurrent_reads = True   # per-read state lives in each `ObjectRead`; the client is shared (one login at a time)

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

    def fields_for(self, object_type: str, paths: Iterable[str]) -> dict[str, SourceField | None]:
        """A path's first segment is the field (`AccountId`); `__c` fields are optional by default."""
        sobject(object_type)
        return {path: source_field(path) for path in paths}

    def read(self, object_type: str, cursor: str | None, *, full: bool = False,
             fields: Sequence[str] | None = None) -> Iterator[Page]:
        """Pages of `fields` plus the system fields (queryAll: recycle-bin records come as tombstones with
        their data); see `Reader`."""
        return self.reader.read(object_type, cursor, full, fields)

    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return self.writer.write(object_type, ops)

    def close(self) -> None:
        self.client.close()


def _field_info(entry: dict[str, Any]) -> FieldInfo:
    return FieldInfo(name=entry["name"], type=entry.get("type", "string"), label=entry.get("label"),
                     custom=bool(entry.get("custom")), createable=bool(entry.get("createable")),
                     updateable=bool(entry.get("updateable")), external_id=bool(entry.get("externalId")))
