"""The part of the generated world the HubSpot emulator loads (contract in docs/architecture.md).

Kept dependency-free on purpose: the world generator imports it without pulling in the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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


#: HubSpot's default pipelines: (id, label, isClosed, probability) and (id, label, ticketState)
DEFAULT_DEAL_STAGES = (("appointmentscheduled", "Appointment Scheduled", "false", "0.2"),
                       ("qualifiedtobuy", "Qualified To Buy", "false", "0.4"),
                       ("presentationscheduled", "Presentation Scheduled", "false", "0.6"),
                       ("decisionmakerboughtin", "Decision Maker Bought-In", "false", "0.8"),
                       ("contractsent", "Contract Sent", "false", "0.9"),
                       ("closedwon", "Closed Won", "true", "1.0"),
                       ("closedlost", "Closed Lost", "true", "0.0"))
DEFAULT_TICKET_STAGES = (("1", "New", "OPEN"), ("2", "Waiting on contact", "OPEN"), ("3", "Waiting on us", "OPEN"),
                         ("4", "Closed", "CLOSED"))


def default_pipelines(stamp: str) -> dict[str, list[dict[str, Any]]]:
    """The pipelines API's answer for a portal with HubSpot's default deal and ticket pipelines, every
    object stamped `stamp` (an ISO time)."""
    def stage(id_: str, label: str, order: int, metadata: dict[str, str]) -> dict[str, Any]:
        return {"id": id_, "label": label, "displayOrder": order, "metadata": metadata, "createdAt": stamp,
                "updatedAt": stamp, "archived": False, "writePermissions": "CRM_PERMISSIONS_ENFORCEMENT"}

    deals = {"id": "default", "label": "Sales Pipeline", "displayOrder": 0, "createdAt": stamp,
             "updatedAt": stamp, "archived": False,
             "stages": [stage(i, label, n, {"isClosed": closed, "probability": p})
                        for n, (i, label, closed, p) in enumerate(DEFAULT_DEAL_STAGES)]}
    tickets = {"id": "0", "label": "Support Pipeline", "displayOrder": 0, "createdAt": stamp,
               "updatedAt": stamp, "archived": False,
               "stages": [stage(i, label, n, {"ticketState": state, "isClosed": str(state == "CLOSED").lower()})
                          for n, (i, label, state) in enumerate(DEFAULT_TICKET_STAGES)]}
    return {"deals": [deals], "tickets": [tickets]}
