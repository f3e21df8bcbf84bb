"""Settings from environment variables (and an optional `.env`), validated by pydantic-settings.

A CRM is enabled when its credentials are present. Secrets are `SecretStr` (printed as `**********`) and may
instead come from Prefect Secret blocks named by the `*_BLOCK` variables. `problems()` lists incomplete
configurations in words an IT admin can act on.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from canonical.db import DEFAULT_DATABASE_URL, normalize_url

SystemName = Literal["hubspot", "salesforce", "dynamics"]
SYSTEMS: tuple[SystemName, ...] = ("hubspot", "salesforce", "dynamics")
#: each CRM's API budget as (burst, requests per second), sized to the vendors' documented limits: HubSpot 190
#: requests per 10 s for a private app, Salesforce by daily allocation, Dataverse 6,000 per 5 minutes per user
DEFAULT_RATES: dict[str, tuple[int, float]] = {"hubspot": (190, 19.0), "salesforce": (100, 25.0),
                                               "dynamics": (600, 20.0)}


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore", case_sensitive=False)


def secret_value(secret: SecretStr | None, block: str | None) -> str | None:
    """The secret's value, from the variable or else from the named Prefect Secret block."""
    if secret is not None and secret.get_secret_value():
        return secret.get_secret_value()
    if block:
        from prefect.blocks.system import Secret

        return str(Secret.load(block).get())
    return None


class HubSpotSettings(BaseSettings):
    model_config = _config("HUBSPOT_")

    access_token: SecretStr | None = None
    access_token_block: str | None = Field(None, description="Prefect Secret block holding the token")
    base_url: str = "https://api.hubapi.com"

    @property
    def enabled(self) -> bool:
        return bool(self.access_token or self.access_token_block)

    def problems(self) -> list[str]:
        return []

    def token(self) -> str | None:
        return secret_value(self.access_token, self.access_token_block)


class SalesforceSettings(BaseSettings):
    model_config = _config("SALESFORCE_")

    instance_url: str | None = None
    access_token: SecretStr | None = None
    access_token_block: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    password_block: str | None = None
    security_token: SecretStr | None = None
    security_token_block: str | None = None
    domain: str = "login"
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_secret_block: str | None = None
    api_version: str = "59.0"
    batch_size: int = Field(2000, ge=200, le=2000, description="records per query batch (Sforce-Query-Options)")
    bulk_threshold: int = Field(50_000, ge=0, description="first loads of larger objects use Bulk API 2.0")

    @property
    def auth_method(self) -> Literal["session", "password", "client_credentials"] | None:
        if self.access_token or self.access_token_block:
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
        method = self.auth_method
        if not self.instance_url and method:
            return ["Salesforce credentials are set but SALESFORCE_INSTANCE_URL is missing "
                    "(e.g. https://acme.my.salesforce.com)"]
        if method == "password":
            missing = [name for name, value in (
                ("SALESFORCE_PASSWORD", self.password or self.password_block),
                ("SALESFORCE_SECURITY_TOKEN", self.security_token or self.security_token_block),
            ) if not value]
            if missing:
                return [f"SALESFORCE_USERNAME is set but {' and '.join(missing)} "
                        f"{'is' if len(missing) == 1 else 'are'} missing"]
        if method == "client_credentials" and not (self.client_secret or self.client_secret_block):
            return ["SALESFORCE_CLIENT_ID is set but SALESFORCE_CLIENT_SECRET is missing"]
        if self.instance_url and not method:
            return ["SALESFORCE_INSTANCE_URL is set but no credentials: set SALESFORCE_ACCESS_TOKEN, or "
                    "SALESFORCE_USERNAME + SALESFORCE_PASSWORD + SALESFORCE_SECURITY_TOKEN, or "
                    "SALESFORCE_CLIENT_ID + SALESFORCE_CLIENT_SECRET"]
        return []

    def secret(self, name: Literal["access_token", "password", "security_token", "client_secret"]) -> str | None:
        return secret_value(getattr(self, name), getattr(self, f"{name}_block"))


class DynamicsSettings(BaseSettings):
    model_config = _config("DYNAMICS_")

    url: str | None = None
    access_token: SecretStr | None = None
    access_token_block: str | None = None
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_secret_block: str | None = None
    token_url: str | None = None
    api_version: str = "v9.2"

    @property
    def auth_method(self) -> Literal["token", "client_credentials"] | None:
        if self.access_token or self.access_token_block:
            return "token"
        if self.client_id or self.tenant_id:
            return "client_credentials"
        return None

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.auth_method)

    def problems(self) -> list[str]:
        method = self.auth_method
        if not self.url and method:
            return ["Dynamics credentials are set but DYNAMICS_URL is missing (e.g. https://acme.crm.dynamics.com)"]
        if method == "client_credentials":
            missing = [name for name, value in (
                ("DYNAMICS_TENANT_ID", self.tenant_id or self.token_url),
                ("DYNAMICS_CLIENT_ID", self.client_id),
                ("DYNAMICS_CLIENT_SECRET", self.client_secret or self.client_secret_block),
            ) if not value]
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

    def secret(self, name: Literal["access_token", "client_secret"]) -> str | None:
        return secret_value(getattr(self, name), getattr(self, f"{name}_block"))


class Settings(BaseSettings):
    """Everything Journey Hub reads from the environment."""

    model_config = _config("JOURNEYHUB_")

    database_url: str = DEFAULT_DATABASE_URL
    mappings_dir: Path | None = Field(None, description="a folder replacing the packaged mappings/")
    page_task_size: int = Field(5, ge=1, description="pages (groups) pulled per Prefect task")
    store_group_records: int = Field(1000, ge=1, description="API pages are stored together up to this many records "
                                                             "per transaction (1: every page alone)")
    map_in_worker: bool = Field(True, description="large pulls map their pages in a worker process while this "
                                                  "one reads and writes")
    map_in_worker_after: int = Field(1000, ge=0, description="records a pull reads before its mapping moves to "
                                                             "the worker (small incremental pulls never start it)")

    rate_hubspot: str | None = Field(None, description="HubSpot's API budget as `burst/per-second` (default 190/19)")
    rate_salesforce: str | None = Field(None, description="Salesforce's API budget as `burst/per-second` (100/25)")
    rate_dynamics: str | None = Field(None, description="Dataverse's API budget as `burst/per-second` (600/20)")

    @field_validator("rate_hubspot", "rate_salesforce", "rate_dynamics")
    @classmethod
    def _rate_format(cls, value: str | None) -> str | None:
        if value is not None:
            parse_rate(value)
        return value

    def rate(self, system: str) -> tuple[int, float]:
        """(burst, requests per second) of one CRM's API budget: JOURNEYHUB_RATE_<SYSTEM>, else the default."""
        configured = getattr(self, f"rate_{system}", None)
        return parse_rate(configured) if configured else DEFAULT_RATES[system]

    @property
    def worker_after(self) -> int | None:
        """When pulls hand their mapping to the worker process (None: never)."""
        return self.map_in_worker_after if self.map_in_worker else None

    @field_validator("database_url")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_url(value.strip())

    @cached_property
    def hubspot(self) -> HubSpotSettings:
        return HubSpotSettings()

    @cached_property
    def salesforce(self) -> SalesforceSettings:
        return SalesforceSettings()

    @cached_property
    def dynamics(self) -> DynamicsSettings:
        return DynamicsSettings()

    def system(self, name: SystemName) -> HubSpotSettings | SalesforceSettings | DynamicsSettings:
        return getattr(self, name)

    def enabled_systems(self) -> list[SystemName]:
        return [name for name in SYSTEMS if self.system(name).enabled]

    def problems(self) -> list[str]:
        return [problem for name in SYSTEMS for problem in self.system(name).problems()]


def parse_rate(value: str) -> tuple[int, float]:
    """`190/19` → (190, 19.0); `40` alone means a burst of 40 refilled at 40 per second."""
    burst, _, per_second = value.strip().partition("/")
    try:
        parsed = int(burst), float(per_second or burst)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate: write burst/per-second, e.g. 190/19") from None
    if parsed[0] < 1 or parsed[1] <= 0:
        raise ValueError(f"{value!r}: the burst must be at least 1 and the rate above 0")
    return parsed


def load_settings() -> Settings:
    return Settings()
