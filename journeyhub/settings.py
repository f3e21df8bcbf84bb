"""Settings from environment variables (and an optional `.env`), validated by pydantic-settings.

`Settings` holds the hub's own settings (`JOURNEYHUB_*`) and composes each registered CRM's settings, which
its connector package declares (`connectors/<crm>/settings.py`, e.g. `HUBSPOT_*`). A CRM is enabled when its
credentials are present; `problems()` lists incomplete configurations in words an IT admin can act on.

The hub adds two things to every CRM's settings: each secret may come from a Prefect Secret block named by
`<SECRET>_BLOCK` (e.g. `HUBSPOT_ACCESS_TOKEN_BLOCK`), fetched only when a connector is opened, and the CRM's
API budget may be overridden by `JOURNEYHUB_RATE_<SYSTEM>`. Secrets are `SecretStr` (printed as `**********`).

`Settings()` reads the process environment and `.env`; `Settings.from_env(mapping)` reads that mapping only
(tests, benchmarks, embedded runs), so nothing of the real environment leaks in.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar, cast

from pydantic import AfterValidator, Field, PrivateAttr, create_model, field_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError

from canonical.db import DEFAULT_DATABASE_URL, normalize_url, redact
from connectors.dynamics.settings import DynamicsSettings
from connectors.hubspot.settings import HubSpotSettings
from connectors.package import ConnectorPackage, ConnectorSettings
from connectors.registry import PACKAGES, SystemName, package
from connectors.salesforce.settings import SalesforceSettings

__all__ = ["SYSTEMS", "Settings", "SystemName", "load_settings", "parse_rate"]

#: the registered system names, in order (a live view of `connectors.registry.PACKAGES`)
SYSTEMS = PACKAGES.keys()

_S = TypeVar("_S", bound=BaseSettings)
#: the variables settings are being read from (None: the process environment and `.env`)
_ENVIRON: ContextVar[Mapping[str, str] | None] = ContextVar("journeyhub_environ", default=None)


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


def _rate_format(value: str | None) -> str | None:
    if value is not None:
        parse_rate(value)
    return value


# ---------------------------------------------------------------------------------------------- sources
class MappingSource(EnvSettingsSource):
    """Environment variables taken from a mapping instead of `os.environ` (same prefixes, same rules)."""

    def __init__(self, settings_cls: type[BaseSettings], environ: Mapping[str, str]) -> None:
        self.environ = environ  # before the base reads the variables
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {name if self.case_sensitive else name.lower(): value for name, value in self.environ.items()}


class ReadsHubEnvironment:
    """Settings classes the hub reads: from the process environment and `.env`, or — while `read` runs
    with a mapping — from that mapping alone."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource,
                                   dotenv_settings: PydanticBaseSettingsSource,
                                   file_secret_settings: PydanticBaseSettingsSource
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        environ = _ENVIRON.get()
        if environ is None:
            return init_settings, env_settings, dotenv_settings, file_secret_settings
        return init_settings, MappingSource(settings_cls, environ)


def read(cls: type[_S], environ: Mapping[str, str] | None) -> _S:
    """An instance of settings class `cls` read from `environ` (None: the process environment and `.env`)."""
    token = _ENVIRON.set(environ)
    try:
        return cls()
    finally:
        _ENVIRON.reset(token)


# ---------------------------------------------------------------------------------------------- CRMs
class HubAdditions:
    """What the hub adds to a connector's settings: Prefect Secret blocks for its secrets (`<name>_block`) and
    the override of its API budget (`journeyhub_rate`)."""

    package_name: ClassVar[str]

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickled by system name: the class is built at run time, so pickle cannot find it by its own."""
        return _restore, (self.package_name, self.__getstate__())  # type: ignore[attr-defined]

    def provided(self, name: str) -> bool:
        return super().provided(name) or bool(getattr(self, f"{name}_block", None))  # type: ignore[misc]

    def secret(self, name: str) -> str | None:
        value: str | None = super().secret(name)  # type: ignore[misc]
        block = getattr(self, f"{name}_block", None)
        if value is None and block:
            from prefect.blocks.system import Secret

            value = str(Secret.load(block).get())
        return value


@cache
def hub_settings_class(crm: ConnectorPackage) -> type[ConnectorSettings]:
    """The connector's settings class as the hub reads it: with a `<secret>_block` field per secret and the
    `JOURNEYHUB_RATE_<SYSTEM>` override."""
    prefix = str(crm.settings.model_config.get("env_prefix", "")).upper()
    fields: dict[str, Any] = {
        f"{name}_block": (str | None, Field(None, description=f"Prefect Secret block holding {prefix}{name.upper()}"))
        for name in crm.settings.secret_fields}
    fields["journeyhub_rate"] = (Annotated[str | None, AfterValidator(_rate_format)], Field(
        None, validation_alias=f"JOURNEYHUB_RATE_{crm.name.upper()}",
        description=f"{crm.label}'s API budget as `burst/per-second` (default {crm.rate[0]}/{crm.rate[1]:g})"))
    cls = create_model(crm.settings.__name__, __base__=(ReadsHubEnvironment, HubAdditions, crm.settings),
                       __module__=crm.settings.__module__, **fields)
    cls.package_name = crm.name
    return cast(type[ConnectorSettings], cls)


def _restore(name: str, state: dict[str, Any]) -> ConnectorSettings:
    cls = hub_settings_class(package(name))
    settings = cls.__new__(cls)
    settings.__setstate__(state)
    return settings


# ---------------------------------------------------------------------------------------------- the hub
class Settings(ReadsHubEnvironment, BaseSettings):
    """Everything Journey Hub reads from the environment."""

    model_config = SettingsConfigDict(env_prefix="JOURNEYHUB_", env_file=".env", extra="ignore",
                                      case_sensitive=False)

    database_url: str = DEFAULT_DATABASE_URL
    mappings_dir: Path | None = Field(None, description="a folder replacing the packaged mappings/")
    page_task_size: int = Field(5, ge=1, description="pages (groups) pulled per Prefect task")
    store_group_records: int = Field(1000, ge=1, description="API pages are stored together up to this many records "
                                                             "per transaction (1: every page alone)")
    map_in_worker: bool = Field(True, description="large pulls map their pages in a worker process while this "
                                                  "one reads and writes")
    map_in_worker_after: int = Field(1000, ge=0, description="records a pull reads before its mapping moves to "
                                                             "the worker (small incremental pulls never start it)")
    object_concurrency: int = Field(4, ge=1, description="object types of one CRM pulled at once, within its API "
                                                         "budget (1: one after another)")
    unreachable_seconds: float = Field(30.0, gt=0, description="a CRM host that gives no answer at all for this "
                                                               "long is given up on for the run")

    _environ: Mapping[str, str] | None = PrivateAttr(None)
    _systems: dict[str, ConnectorSettings] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        """Settings read from `environ` alone, as a process with exactly that environment (and no `.env`)
        would read them; the CRMs' settings are read from it too."""
        environ = dict(environ)
        settings = read(cls, environ)
        settings._environ = environ
        return settings

    @field_validator("database_url")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return normalize_url(value.strip())

    @property
    def worker_after(self) -> int | None:
        """When pulls hand their mapping to the worker process (None: never)."""
        return self.map_in_worker_after if self.map_in_worker else None

    # ------------------------------------------------------------------ the CRMs
    def system(self, name: SystemName) -> ConnectorSettings:
        """The settings of the CRM registered as `name`, read (once) from the same source as these."""
        if name not in self._systems:
            self._systems[name] = read(hub_settings_class(package(name)), self._environ)
        return self._systems[name]

    def enabled_systems(self) -> list[SystemName]:
        return [name for name in SYSTEMS if self.system(name).enabled]

    def problems(self) -> list[str]:
        """One line per malformed or incomplete setting, naming the variable (the database URL's first)."""
        database = database_problem(self.database_url)
        return ([database] if database else []) + [
            problem for name in SYSTEMS for problem in self.system(name).problems()]

    def rate(self, system: SystemName) -> tuple[int, float]:
        """(burst, requests per second) of one CRM's API budget: JOURNEYHUB_RATE_<SYSTEM>, else the package's."""
        configured = getattr(self.system(system), "journeyhub_rate", None)
        return parse_rate(configured) if configured else package(system).rate

    def rate_configured(self, system: SystemName) -> bool:
        """JOURNEYHUB_RATE_<SYSTEM> is set: the shared Prefect limit then takes its size."""
        return bool(getattr(self.system(system), "journeyhub_rate", None))

    @property
    def hubspot(self) -> HubSpotSettings:
        return cast(HubSpotSettings, self.system("hubspot"))

    @property
    def salesforce(self) -> SalesforceSettings:
        return cast(SalesforceSettings, self.system("salesforce"))

    @property
    def dynamics(self) -> DynamicsSettings:
        return cast(DynamicsSettings, self.system("dynamics"))


def database_problem(url: str) -> str | None:
    """The problem line for a JOURNEYHUB_DATABASE_URL SQLAlchemy cannot parse, or whose dialect or driver is
    unknown or not installed (None when it is usable); the URL's password is never shown."""
    example = "use e.g. sqlite:///journeyhub.db or postgresql://user@host:5432/dbname"
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"JOURNEYHUB_DATABASE_URL is not a database URL: {example}"
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        return (f"JOURNEYHUB_DATABASE_URL names the database {parsed.get_backend_name()!r} ({redact(url)}): "
                f"Journey Hub supports sqlite and postgresql; {example}")
    try:
        parsed.get_dialect().import_dbapi()
    except NoSuchModuleError:
        return (f"JOURNEYHUB_DATABASE_URL names an unknown database {parsed.drivername!r} "
                f"({redact(url)}): {example}")
    except ImportError as error:
        return (f"JOURNEYHUB_DATABASE_URL needs the driver {parsed.drivername!r}, which is not installed "
                f"({error.name or error}): install it, or {example}")
    return None


def load_settings() -> Settings:
    return Settings()
