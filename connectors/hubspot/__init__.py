"""The HubSpot connector: CRM v3/v4 objects, owners, pipelines and legacy marketing email events through
`hubspot-api-client` 12 (read and write). Vendor surprises and how they are handled: QUIRKS.md."""

from connectors.hubspot.client import HubSpotConfig
from connectors.hubspot.connector import HubSpotConnector

__all__ = ["HubSpotConfig", "HubSpotConnector"]
