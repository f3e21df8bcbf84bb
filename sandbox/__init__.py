"""Local emulators of HubSpot, Salesforce and Dataverse with a generated customer world.

`Sandbox` (sandbox/runtime.py) starts all three on loopback; `sandbox.world` generates the data and its
ground truth; each emulator lives in its own package (sandbox/hubspot, sandbox/salesforce, sandbox/dynamics).
"""

from typing import Any

__all__ = ["Sandbox"]


def __getattr__(name: str) -> Any:
    if name == "Sandbox":
        from sandbox.runtime import Sandbox

        return Sandbox
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
