"""Salesforce as the hub sees it: its settings (`SALESFORCE_*`), its API budget and how its connector is
built."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr

from connectors.package import ConnectorPackage, ConnectorSettings, Throttle, settings_config, url_problem
from connectors.retry import RetryPolicy

if TYPE_CHECKING:
    from connectors.salesforce.connector import SalesforceConnector


class SalesforceSettings(ConnectorSettings):
    model_config = settings_config("SALESFORCE_")
    secret_fields = ("access_token", "password", "security_token", "client_secret")

    instance_url: str | None = None
    access_token: SecretStr | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    domain: str = "login"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    api_version: str = "59.0"
    batch_size: int = Field(2000, ge=200, le=2000, description="records per query batch (Sforce-Query-Options)")
    bulk_threshold: int = Field(50_000, ge=0, description="first loads of larger objects use Bulk API 2.0")

    @property
    def auth_method(self) -> Literal["session", "password", "client_credentials"] | None:
        if self.provided("access_token"):
            return "session"
        if self.username:
            return "password"
        if self.client_id:
            return "client_credentials"
        return None

    @property
    def enabled(self) -> bool:
        return bool(self.instance_url and self.auth_method)

    def problems(self) -> list[str]:
        malformed = [problem for problem in (
            url_problem("SALESFORCE_INSTANCE_URL", self.instance_url, "https://acme.my.salesforce.com"),
            self._domain_problem()) if problem]
        return malformed + self._credential_problems()

    def _domain_problem(self) -> str | None:
        """simple-salesforce logs in at https://{domain}.salesforce.com: the domain is a host name's start."""
        domain = self.domain.strip()
        if domain and all(char.isalnum() or char in "-." for char in domain) and not domain.startswith((".", "-")):
            return None
        return (f"SALESFORCE_DOMAIN={self.domain!r} is not a login domain: use login, test, or your My Domain "
                "name without https:// or .salesforce.com (e.g. acme.my)")

    def _credential_problems(self) -> list[str]:
        method = self.auth_method
        if not self.instance_url and method:
            return ["Salesforce credentials are set but SALESFORCE_INSTANCE_URL is missing "
                    "(e.g. https://acme.my.salesforce.com)"]
        if method == "password":
            missing = [name for name, given in (
                ("SALESFORCE_PASSWORD", self.provided("password")),
                ("SALESFORCE_SECURITY_TOKEN", self.provided("security_token")),
            ) if not given]
            if missing:
                return [f"SALESFORCE_USERNAME is set but {' and '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} missing"]
        if method == "client_credentials" and not self.provided("client_secret"):
            return ["SALESFORCE_CLIENT_ID is set but SALESFORCE_CLIENT_SECRET is missing"]
        if self.instance_url and not method:
            return ["SALESFORCE_INSTANCE_URL is set but no credentials: set SALESFORCE_ACCESS_TOKEN, or "
                    "SALESFORCE_USERNAME + SALESFORCE_PASSWORD + SALESFORCE_SECURITY_TOKEN, or "
                    "SALESFORCE_CLIENT_ID + SALESFORCE_CLIENT_SECRET"]
        return []


def open_salesforce(settings: SalesforceSettings, retry: RetryPolicy,
                    throttle: Throttle | None) -> SalesforceConnector:
    # imported when a connector is opened: the registry is read by processes that never open one (the
    # mapping worker), and the client and its SDK cost them ~40 MB
    from connectors.salesforce.client import SalesforceConfig
    from connectors.salesforce.connector import SalesforceConnector
    return SalesforceConnector(SalesforceConfig(
        instance_url=settings.instance_url or "", access_token=settings.secret("access_token"),
        username=settings.username, password=settings.secret("password"),
        security_token=settings.secret("security_token"), domain=settings.domain, client_id=settings.client_id,
        client_secret=settings.secret("client_secret"), api_version=settings.api_version,
        batch_size=settings.batch_size, bulk_threshold=settings.bulk_threshold, retry=retry, throttle=throttle))


#: sized by the org's daily allocation rather than a short window
PACKAGE = ConnectorPackage("salesforce", "Salesforce", SalesforceSettings, rate=(100, 25.0), open=open_salesforce)
