"""What a connector package declares to the hub: its settings, its label, its default API budget and how to
build its connector. Each CRM's package exposes one `ConnectorPackage` (`connectors/<crm>/settings.py`);
`connectors.registry` lists them, and the hub derives every system name from that list.

A package's settings read environment variables under its own prefix (`HUBSPOT_…`). Fields holding secrets
are `SecretStr` and named in `secret_fields`; the hub may offer other places for a secret (Prefect Secret
blocks), so a package asks `provided(name)` and `secret(name)` rather than reading those fields itself.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.base import Connector
from connectors.retry import RetryPolicy

Throttle = Callable[[], None]


def settings_config(prefix: str) -> SettingsConfigDict:
    """How every connector's settings are read: `<PREFIX>FIELD` variables (any case), or a `.env` file."""
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", extra="ignore", case_sensitive=False)


class ConnectorSettings(BaseSettings):
    """The settings of one CRM. A CRM is enabled when its credentials are present; `problems()` explains
    incomplete ones in words an IT admin can act on."""

    #: the `SecretStr` fields, each of which the hub may also take from elsewhere (a Prefect Secret block)
    secret_fields: ClassVar[tuple[str, ...]] = ()

    @property
    def enabled(self) -> bool:
        raise NotImplementedError

    def problems(self) -> list[str]:
        return []

    def provided(self, name: str) -> bool:
        """Whether the secret `name` is configured (its value need not be fetched to know)."""
        return bool(getattr(self, name))

    def secret(self, name: str) -> str | None:
        """The value of the secret `name`, or None when it is not set."""
        value: SecretStr | None = getattr(self, name)
        return value.get_secret_value() if value is not None and value.get_secret_value() else None


def url_problem(variable: str, value: str | None, example: str) -> str | None:
    """The problem line for a URL setting that is not `http(s)://host[:port]…` (None when it is, or is unset):
    caught by `config check` and before a run, instead of minutes of retried DNS failures."""
    if value is None:
        return None
    fix = f"use the full URL, e.g. {example}"
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return f"{variable}={value!r} is not a URL (bad port): {fix}"
    if parts.scheme not in ("http", "https"):
        return f"{variable}={value!r} is not an http(s) URL: {fix}"
    if not parts.hostname or any(char.isspace() for char in value.strip()):
        return f"{variable}={value!r} is not a URL (no host): {fix}"
    return None


@dataclass(frozen=True)
class ConnectorPackage:
    """One CRM as the hub sees it. `open(settings, retry, throttle)` builds a connector from this package's
    settings, the retry policy and the hook called before every request (the shared rate budget)."""

    name: str                                  # the system name: source keys, mappings/<name>/, flow names
    label: str                                 # how people call the CRM ("HubSpot")
    settings: type[ConnectorSettings]
    rate: tuple[int, float]                    # default API budget: (burst, requests per second)
    open: Callable[[Any, RetryPolicy, Throttle | None], Connector]


def lazy_export(package: str, name: str, modules: dict[str, str]) -> Any:
    """A connector package's `__getattr__`: its public names come from its modules on first use, so that a
    process reading only the registry (the mapping worker) never loads a client and its SDK (~40 MB)."""
    if name not in modules:
        raise AttributeError(f"module {package!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{package}.{modules[name]}"), name)
