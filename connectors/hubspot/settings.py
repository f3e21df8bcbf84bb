"""HubSpot as the hub sees it: its settings (`HUBSPOT_*`), its API budget and how its connector is built."""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydantic import SecretStr

from connectors.package import ConnectorPackage, ConnectorSettings, Throttle, settings_config, url_problem
from connectors.retry import RetryPolicy

if TYPE_CHECKING:
    from connectors.hubspot.connector import HubSpotConnector


class HubSpotSettings(ConnectorSettings):
    model_config = settings_config("HUBSPOT_")
    secret_fields = ("access_token",)

    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"

    @property
    def enabled(self) -> bool:
        return self.provided("access_token")

    def problems(self) -> list[str]:
        problem = url_problem("HUBSPOT_BASE_URL", self.base_url, "https://api.hubapi.com")
        return [problem] if problem else []

    def token(self) -> str | None:
        return self.secret("access_token")


def open_hubspot(settings: HubSpotSettings, retry: RetryPolicy, throttle: Throttle | None) -> HubSpotConnector:
    # imported when a connector is opened: the registry is read by processes that never open one (the
    # mapping worker), and the client and its SDK cost them ~40 MB
    from connectors.hubspot.client import HubSpotConfig
    from connectors.hubspot.connector import HubSpotConnector
    return HubSpotConnector(HubSpotConfig(access_token=settings.token() or "", base_url=settings.base_url,
                                          retry=retry, throttle=throttle))


#: 190 requests per 10 s for a private app
PACKAGE = ConnectorPackage("hubspot", "HubSpot", HubSpotSettings, rate=(90, 10.0), open=open_hubspot)
