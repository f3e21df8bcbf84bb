"""Dataverse / Dynamics 365 Web API v9.2 emulator (see QUIRKS.md for the behaviour it reproduces)."""

from sandbox.dynamics.data import DynamicsData
from sandbox.dynamics.emulator import DynamicsEmulator

__all__ = ["DynamicsData", "DynamicsEmulator"]
