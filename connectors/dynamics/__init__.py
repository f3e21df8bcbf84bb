"""The Dynamics 365 / Dataverse connector (Web API v9.2 over plain httpx).

`DynamicsConnector` implements connectors.base.Connector: `read` pages tables by change tracking (deletes
as tombstones) or, where a table has none, by `modifiedon`; `write` sends `$batch` requests; `describe`
serves `config check`; what write-back needs is in writeback.py. See QUIRKS.md for the vendor behaviour
this relies on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from connectors.base import ObjectDescription, Page, WriteOp, WriteResult
from connectors.dynamics.client import DataverseClient, DynamicsConfig
from connectors.dynamics.objects import ENTITY_SETS, SYSTEM, entity_set
from connectors.dynamics.reader import Reader, describe
from connectors.dynamics.writeback import DynamicsWriteback
from connectors.dynamics.writer import Writer
from connectors.errors import UpstreamError


class DynamicsConnector(DynamicsWriteback):
    """Dataverse through one httpx client; `api_calls` counts every HTTP request it made. What write-back
    needs comes from `DynamicsWriteback`."""

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

    def close(self) -> None:
        self.client.close()


__all__ = ["DynamicsConfig", "DynamicsConnector"]
