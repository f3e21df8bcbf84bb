"""The Dynamics 365 / Dataverse connector (Web API v9.2 over plain httpx).

`DynamicsConnector` implements connectors.base.Connector: `read` pages tables by change tracking (deletes
as tombstones) or, where a table has none, by `modifiedon`; `write` sends `$batch` requests; `describe`
serves `config check`; what write-back needs is in writeback.py. See QUIRKS.md for the vendor behaviour
this relies on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.package import lazy_export

if TYPE_CHECKING:
    from connectors.dynamics.client import DynamicsConfig
    from connectors.dynamics.connector import DynamicsConnector

__all__ = ["DynamicsConfig", "DynamicsConnector"]


def __getattr__(name: str) -> Any:
    return lazy_export(__name__, name, {"DynamicsConfig": "client", "DynamicsConnector": "connector"})
