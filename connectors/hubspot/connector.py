"""`HubSpotConnector`: the `connectors.base.Connector` for HubSpot — reads, batched writes, what write-back
needs (connectors/hubspot/writeback.py) and association reconciliation."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from connectors.base import FieldInfo, ObjectDescription, Page, SourceField, WriteOp, WriteResult
from connectors.hubspot.client import SYSTEM, HubSpotClient, HubSpotConfig
from connectors.hubspot.objects import OBJECTS, STATIC_FIELDS
from connectors.hubspot.reader import Reader
from connectors.hubspot.writeback import HubSpotWriteback
from connectors.hubspot.writer import Writer


class HubSpotConnector(HubSpotWriteback):
    """Reads and writes one HubSpot portal through `hubspot-api-client`; see QUIRKS.md for the vendor's
    surprises and how each is handled. What write-back needs comes from `HubSpotWriteback`."""

    system = SYSTEM
    concurrent_reads = True   # per-read state lives in each read (its page counter, its cursor); the client is shared

    def __init__(self, config: HubSpotConfig) -> None:
        self.config = config
        self.client = HubSpotClient(config)
        self.reader = Reader(self.client, config)
        self.writer = Writer(self.client)

    @property
    def api_calls(self) -> int:
        """Every HTTP call made so far (each retry attempt counts)."""
        return self.client.api_calls

    def check(self) -> None:
        """One cheap authenticated call; raises AuthError/PermissionDenied/… when something is wrong."""
        self.client.call(self.client.objects_basic.get_page, "contacts", limit=1, properties=["hs_object_id"],
                         what="check access to contacts")

    def objects(self) -> list[str]:
        return list(OBJECTS)

    def describe(self, object_type: str) -> ObjectDescription:
        spec = self.reader.spec(object_type)
        if spec.kind != "crm":
            fields = {name: FieldInfo(name, kind, createable=False, updateable=False)
                      for name, kind in STATIC_FIELDS[object_type]}
            return ObjectDescription(object_type, fields)
        body = self.client.call(self.client.properties_core.get_all, object_type,
                                what=f"describe {object_type}") or {}
        fields = {}
        for item in body.get("results") or []:
            read_only = bool((item.get("modificationMetadata") or {}).get("readOnlyValue"))
            fields[item["name"]] = FieldInfo(item["name"], item.get("type", "string"), item.get("label"),
                                             custom=not item.get("hubspotDefined", False),
                                             createable=not read_only, updateable=not read_only,
                                             external_id=bool(item.get("hasUniqueValue")))
        return ObjectDescription(object_type, fields)

    def fields_for(self, object_type: str, paths: Iterable[str]) -> dict[str, SourceField | None]:
        """`properties.x` → property `x`; the record envelope (`id`, `createdAt`, `archived`, …) and `_`
        enrichment → None. For owners, pipelines and email events, the document's top-level keys."""
        spec = self.reader.spec(object_type)
        return {path: spec.source_field(path) for path in paths}

    def read(self, object_type: str, cursor: str | None, *, full: bool = False,
             fields: Sequence[str] | None = None) -> Iterator[Page]:
        """Pages of RemoteRecords (a generator): a full load without a cursor or with `full` (archived records
        included, as tombstones with their data), else changes since the cursor, deletions as tombstones.
        `fields`: the properties to read. Persist each page's cursor once the page is stored."""
        return self.reader.read(object_type, cursor, full, fields)

    def reconcile_associations(self, object_type: str, since: datetime | None = None, *,
                               fields: Sequence[str] | None = None) -> Iterator[Page]:
        """Records active since `since` (default: the reconcile window) with freshly read associations, as
        full records with `fields`; their pages carry no cursor. Association changes do not move `updatedAt`."""
        return self.reader.reconcile(object_type, since, fields)

    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return self.writer.write(object_type, ops)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> HubSpotConnector:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
