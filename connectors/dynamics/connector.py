"""The Dataverse connector: one httpx client, its reader and writer, behind `connectors.base.Connector`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from connectors.base import ObjectDescription, Page, SourceField, WriteOp, WriteResult
from connectors.dynamics.client import DataverseClient, DynamicsConfig
from connectors.dynamics.objects import ENTITY_SETS, SYSTEM, entity_set, source_field
from connectors.dynamics.reader import Reader, describe
from connectors.dynamics.writeback import DynamicsWriteback
from connectors.dynamics.writer import Writer
from connectors.errors import UpstreamError


class DynamicsConnector(DynamicsWriteback):
    """Dataverse through one httpx client; `api_calls` counts every HTTP request it made. What write-back
    needs comes from `DynamicsWriteback`."""

    system = SYSTEM
    concurrent_reads = True   # per-read state lives in each read (its page counter, its cursor); the client is shared

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

    def fields_for(self, object_type: str, paths: Iterable[str]) -> dict[str, SourceField | None]:
        """A path's first segment is the column (`_x_value` for lookups); `_lookup.*` is enrichment. Columns
        with a publisher prefix (`new_…`) are optional by default."""
        entity_set(object_type)
        return {path: source_field(path) for path in paths}

    def read(self, object_type: str, cursor: str | None, *, full: bool = False,
             fields: Sequence[str] | None = None) -> Iterator[Page]:
        """Pages of the columns `fields` (see `Reader`)."""
        yield from self.reader.read(entity_set(object_type), cursor, full, fields)

    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return self.writer.write(object_type, ops)

    def close(self) -> None:
        self.client.close()

