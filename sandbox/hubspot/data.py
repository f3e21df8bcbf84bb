"""The part of the generated world the HubSpot emulator loads (contract in docs/architecture.md).

Kept dependency-free on purpose: the world generator imports it without pulling in the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class HubSpotData:
    #: "contacts" → [{"id": "101", "properties": {name: str | None}, "createdAt": iso, "updatedAt": iso,
    #:               "archived": bool}]
    objects: dict[str, list[dict]] = field(default_factory=dict)
    #: (from_type, from_id, to_type, to_id, type_id), one direction; the emulator stores both directions
    associations: list[tuple[str, str, str, str, int]] = field(default_factory=list)
    #: owners API shape: {"id","email","firstName","lastName","userId","createdAt","updatedAt","archived"}
    owners: list[dict] = field(default_factory=list)
    #: "deals"/"tickets" → pipelines API shape (stages with metadata: deals {"isClosed": "true",
    #: "probability": "1.0"}, tickets {"ticketState": "CLOSED"})
    pipelines: dict[str, list[dict]] = field(default_factory=dict)
    #: legacy /email/public/v1/events shape
    email_events: list[dict] = field(default_factory=list)
    #: extra property definitions per object type (custom properties the world uses); standard ones are
    #: built into the emulator
    properties: dict[str, list[dict]] = field(default_factory=dict)
