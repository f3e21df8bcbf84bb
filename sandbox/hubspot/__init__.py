"""The HubSpot emulator of the sandbox: HubSpot's CRM API on loopback for `hubspot-api-client` 12.

    from sandbox.hubspot import HubSpotEmulator, HubSpotData
    emulator = HubSpotEmulator(rate_limit_per_10s=190, search_per_second=5)
    emulator.load(HubSpotData(objects={"contacts": [...]}))

What it serves and how closely it follows HubSpot is documented in sandbox/hubspot/QUIRKS.md.
`HubSpotEmulator` is imported on first use, so `sandbox.hubspot.data` stays light for the world generator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sandbox.hubspot.data import HubSpotData

if TYPE_CHECKING:
    from sandbox.hubspot.emulator import HubSpotEmulator

__all__ = ["HubSpotData", "HubSpotEmulator"]


def __getattr__(name: str) -> Any:
    if name == "HubSpotEmulator":
        from sandbox.hubspot.emulator import HubSpotEmulator

        return HubSpotEmulator
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
