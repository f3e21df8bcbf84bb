"""Builds each CRM's connector from the settings (connectors never read settings themselves): the CRM's
package (`connectors.registry`) knows how, from its own settings, the retry policy and the throttle hook."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from connectors.base import Connector
from connectors.registry import package
from connectors.retry import DEFAULT_POLICY, RetryPolicy
from journeyhub.settings import Settings, SystemName


def open_connector(system: SystemName, settings: Settings, *, retry: RetryPolicy = DEFAULT_POLICY,
                   throttle: Callable[[], None] | None = None) -> Connector:
    """A connector for `system` configured from `settings` (the CRM must be enabled); `throttle` is called
    before every request (the flows pass the CRM's Prefect rate limit); a host silent for
    JOURNEYHUB_UNREACHABLE_SECONDS stops the connector for its lifetime (`connectors.breaker`)."""
    retry = replace(retry, unreachable_seconds=settings.unreachable_seconds)
    return package(system).open(settings.system(system), retry, throttle)
