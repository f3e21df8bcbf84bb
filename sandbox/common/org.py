"""Org profiles: which customisations the emulated CRM orgs have.

- `full` — the org the hub's default mappings and write-back were written for: every custom field exists
  (Salesforce `*__c`, Dataverse `new_*` columns), HubSpot has Service Hub's feedback properties and the
  Salesforce integration's properties.
- `plain` — a standard org set up by the vendors' documentation: none of the hub's custom fields, no
  fields that exist only with another edition, hub or integration. What the hub needs it must create
  itself (HubSpot's properties API still works).

History from before the hub was installed (records archived, deleted or merged before its first sync) is
an option of the generated world, on by default in `plain` (see sandbox/world/history.py).
"""

from __future__ import annotations

ORGS = ("full", "plain")


def check_org(org: str) -> str:
    """`org` if it names a profile; ValueError naming the choices otherwise."""
    if org not in ORGS:
        raise ValueError(f"unknown org profile {org!r}; choose one of: {', '.join(ORGS)}")
    return org


def default_history(org: str) -> bool:
    """Whether a world for `org` has pre-install history unless told otherwise."""
    return check_org(org) == "plain"
