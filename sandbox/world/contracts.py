"""The emulators' seed-data classes, imported lazily (same shapes as docs/architecture.md).

The emulator packages own `HubSpotData`, `SalesforceData` and `DynamicsData`; their `data.py` modules are
dependency-free. If one is missing (an emulator not written yet) an identical local dataclass stands in.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class _HubSpotData:
    objects: dict[str, list[dict]] = field(default_factory=dict)
    associations: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    owners: list[dict] = field(default_factory=list)
    pipelines: dict[str, list[dict]] = field(default_factory=dict)
    email_events: list[dict] = field(default_factory=list)
    properties: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class _SalesforceData:
    records: dict[str, list[dict]] = field(default_factory=dict)


@dataclass
class _DynamicsData:
    rows: dict[str, list[dict]] = field(default_factory=dict)


def hubspot_data(**parts: Any) -> Any:
    try:
        from sandbox.hubspot.data import HubSpotData
    except ImportError:  # pragma: no cover - the emulator package is not there yet
        return _HubSpotData(**parts)
    return HubSpotData(**parts)


def salesforce_data(records: dict[str, list[dict]]) -> Any:
    try:
        from sandbox.salesforce.data import SalesforceData
    except ImportError:  # pragma: no cover
        return _SalesforceData(records)
    return SalesforceData(records)


def dynamics_data(rows: dict[str, list[dict]]) -> Any:
    try:
        from sandbox.dynamics.data import DynamicsData
    except ImportError:  # pragma: no cover
        return _DynamicsData(rows)
    return DynamicsData(rows)
