"""Dynamics 365 (Dataverse) as the hub sees it: its settings (`DYNAMICS_*`), its API budget and how its
connector is built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import SecretStr

from connectors.package import ConnectorPackage, ConnectorSettings, Throttle, settings_config, url_problem
from connectors.retry import RetryPolicy

if TYPE_CHECKING:
    from connectors.dynamics.connector import DynamicsConnector


class DynamicsSettings(ConnectorSettings):
    model_config = settings_config("DYNAMICS_")
    secret_fields = ("access_token", "client_secret")

    url: str | None = None
    access_token: SecretStr | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str | None = None
    api_version: str = "v9.2"

    @property
    def auth_method(self) -> Literal["token", "client_credentials"] | None:
        if self.provided("access_token"):
            return "token"
        if self.client_id or self.tenant_id:
            return "client_credentials"
        return None

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.auth_method)

    def problems(self) -> list[str]:
        malformed = [problem for problem in (
            url_problem("DYNAMICS_URL", self.url, "https://acme.crm.dynamics.com"),
            url_problem("DYNAMICS_TOKEN_URL", self.token_url,
                        "https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token")) if problem]
        return malformed + self._credential_problems()

    def _credential_problems(self) -> list[str]:
        method = self.auth_method
        if not self.url and method:
            return ["Dynamics credentials are set but DYNAMICS_URL is missing (e.g. https://acme.crm.dynamics.com)"]
        if method == "client_credentials":
            missing = [name for name, given in (
                ("DYNAMICS_TENANT_ID", bool(self.tenant_id or self.token_url)),
                ("DYNAMICS_CLIENT_ID", bool(self.client_id)),
                ("DYNAMICS_CLIENT_SECRET", self.provided("client_secret")),
            ) if not given]
            if missing:
                return [f"Dynamics client-credentials login needs {', '.join(missing)}"]
        if self.url and not method:
            return ["DYNAMICS_URL is set but no credentials: set DYNAMICS_ACCESS_TOKEN, or DYNAMICS_TENANT_ID + "
                    "DYNAMICS_CLIENT_ID + DYNAMICS_CLIENT_SECRET"]
        return []

    @property
    def resolved_token_url(self) -> str | None:
        if self.token_url:
            return self.token_url
        if self.tenant_id:
            return f"https://login.microsoftonline.com/{self.tenant_id}/oauth2/v2.0/token"
        return None


def open_dynamics(settings: DynamicsSettings, retry: RetryPolicy, throttle: Throttle | None) -> DynamicsConnector:
    # imported when a connector is opened: the registry is read by processes that never open one (the
    # mapping worker), and the client and its SDK cost them ~40 MB
    from connectors.dynamics.client import DynamicsConfig
    from connectors.dynamics.connector import DynamicsConnector
    return DynamicsConnector(DynamicsConfig(
        url=settings.url or "", access_token=settings.secret("access_token"), token_url=settings.resolved_token_url,
        client_id=settings.client_id, client_secret=settings.secret("client_secret"),
        api_version=settings.api_version, retry=retry, throttle=throttle))


#: Dataverse's service protection: 6,000 requests per 5 minutes per user
PACKAGE = ConnectorPackage("dynamics", "Dynamics 365", DynamicsSettings, rate=(600, 18.0), open=open_dynamics)
