"""The sObjects the connector reads, as data: how each can be read (recycle bin, getDeleted, Bulk API 2.0)
and the system fields every read selects. Which other fields are selected is the mappings' business: the hub
passes the fields its mapping reads, checked against the org's describe (`fields_for` says which are custom,
hence optional by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from connectors.base import SourceField
from connectors.errors import ConfigError

CURSOR_FIELD = "SystemModstamp"      # indexed, bumped by user and system changes (Salesforce "System Fields")
LOOKBACK_SECONDS = 120.0             # re-read this much before the watermark: stamps are not commit-ordered
DELETED_WINDOW_DAYS = 15             # getDeleted only answers for the last 15 days
SYSTEM_FIELDS = ("Id", "CreatedDate", "LastModifiedDate", CURSOR_FIELD)
#: what a REST record carries besides its fields (never selected)
ENVELOPE = frozenset({"attributes"})


@dataclass(frozen=True)
class SObject:
    name: str
    soft_delete: bool = True         # has IsDeleted: queryAll returns recycle-bin rows as tombstones with data
    deletable: bool = True           # deletions can be listed with getDeleted
    bulk: bool = True                # a first load above bulk_threshold uses Bulk API 2.0

    def select(self, fields: Sequence[str] | None = ()) -> list[str]:
        """The SELECT list: system fields, IsDeleted where it exists, then the fields asked for."""
        names = list(SYSTEM_FIELDS) + (["IsDeleted"] if self.soft_delete else [])
        for name in fields or ():
            if name not in names:
                names.append(name)
        return names


def source_field(path: str) -> SourceField | None:
    """The field a mapping path reads (its first segment; relationship paths such as `Account.Name` are not
    read). Custom fields (`__c`) are optional by default: a standard org has none of the hub's."""
    name = path.split(".", 1)[0]
    if name in ENVELOPE:
        return None
    return SourceField(name, optional=name.endswith("__c"))


SOBJECTS: dict[str, SObject] = {spec.name: spec for spec in (
    SObject("Contact"),
    SObject("Lead"),
    SObject("Account"),
    SObject("Opportunity"),
    SObject("OpportunityContactRole"),
    SObject("Case"),
    SObject("Task"),
    SObject("Event"),
    SObject("EmailMessage"),
    SObject("User", soft_delete=False, deletable=False, bulk=False),
)}


def sobject(name: str) -> SObject:
    """The table entry for `name`; an unknown object is a configuration problem."""
    spec = SOBJECTS.get(name)
    if spec is None:
        raise ConfigError("salesforce", f"the Salesforce connector does not read {name!r}; it reads: "
                          f"{', '.join(SOBJECTS)}")
    return spec
