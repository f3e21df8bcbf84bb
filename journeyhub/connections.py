"""Builds each CRM's connector from the settings (connectors never read settings themselves)."""

from __future__ import annotations

from collections.abc import Callable

from connectors.base import Connector
from connectors.retry import DEFAULT_POLICY, RetryPolicy
from journeyhub.settings import Settings, SystemName


def open_connector(system: SystemName, settings: Settings, *, retry: RetryPolicy = DEFAULT_POLICY,
                   throttle: Callable[[], None] | None = None) -> Connector:
    """A connector for `system` configured from `settings` (the CRM must be enabled); `throttle` is called
    before every request (the flows pass the CRM's Prefect rate limit)."""
    if system == "hubspot":
        from connectors.hubspot import HubSpotConfig, HubSpotConnector

        hubspot = settings.hubspot
        return HubSpotConnector(HubSpotConfig(access_token=hubspot.token() or "", base_url=hubspot.base_url,
                                              retry=retry, throttle=throttle))
    if system == "salesforce":
        from connectors.salesforce import SalesforceConfig, SalesforceConnector

        salesforce = settings.salesforce
        return SalesforceConnector(SalesforceConfig(
            instance_url=salesforce.instance_url or "", access_token=salesforce.secret("access_token"),
            username=salesforce.username, password=salesforce.secret("password"),
            security_token=salesforce.secret("security_token"), domain=salesforce.domain,
            client_id=salesforce.client_id, client_secret=salesforce.secret("client_secret"),
            api_version=salesforce.api_version, batch_size=salesforce.batch_size,
            bulk_threshold=salesforce.bulk_threshold, retry=retry, throttle=throttle))
    if system == "dynamics":
        from connectors.dynamics import DynamicsConfig, DynamicsConnector

        dynamics = settings.dynamics
        return DynamicsConnector(DynamicsConfig(
            url=dynamics.url or "", access_token=dynamics.secret("access_token"),
            token_url=dynamics.resolved_token_url, client_id=dynamics.client_id,
            client_secret=dynamics.secret("client_secret"), api_version=dynamics.api_version, retry=retry,
            throttle=throttle))
    raise ValueError(f"unknown system {system!r}")
