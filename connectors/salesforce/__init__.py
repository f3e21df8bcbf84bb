"""Salesforce connector: REST queryAll / Bulk API 2.0 reads and sObject Collections writes via
simple-salesforce 1.12. Vendor surprises are in QUIRKS.md."""

from connectors.salesforce.client import SalesforceConfig
from connectors.salesforce.connector import SalesforceConnector

__all__ = ["SalesforceConfig", "SalesforceConnector"]
