"""The HubSpot connector: CRM v3/v4 objects, owners, pipelines and legacy marketing email events through
`hubspot-api-client` 12 (read and write). Vendor surprises and how they are handled: QUIRKS.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.package import lazy_export

if TYPE_CHECKING:
    from connectors.hubspot.client import HubSpotConfig
    from connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConfig", "HubSpotConnector"]


def __getattr__(name: str) -> Any:
    return lazy_export(__name__, name, {"HubSpotConfig": "client", "HubSpotConnector": "connector"})
