"""Salesforce connector: REST queryAll / Bulk API 2.0 reads and sObject Collections writes via
simple-salesforce 1.12. Vendor surprises are in QUIRKS.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from connectors.package import lazy_export

if TYPE_CHECKING:
    from connectors.salesforce.client import SalesforceConfig
    from connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConfig", "SalesforceConnector"]


def __getattr__(name: str) -> Any:
    return lazy_export(__name__, name, {"SalesforceConfig": "client", "SalesforceConnector": "connector"})
