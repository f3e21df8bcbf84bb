"""The Dataverse tables the hub reads and writes, as data: one row per entity set, no class per table.

Which columns are read is the mappings' business: the hub passes the columns its mapping reads (`_x_value`
lookups included; their target table comes back in the lookuplogicalname annotation) and `select` adds the
primary key and the `createdon`/`modifiedon` every read needs. `tracked` says whether to try change tracking
(Dataverse ships `systemusers` with it off, so the hub goes straight to the `modifiedon` fallback there instead
of spending a call on the refusal); `bind` is the navigation property a write uses to point a row at another
one (`{target}` = the target's logical name).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from connectors.base import SourceField
from connectors.errors import ConfigError

SYSTEM = "dynamics"
ROW_COLUMNS = ("createdon", "modifiedon")
#: a publisher prefix (`new_`, `contoso_`, first-party solutions' `msdyn_`): a column a standard org may lack.
#: Dataverse's own compound names (`address1_city`) are not prefixes.
PUBLISHER_PREFIX = re.compile(r"^(?!address\d_)[a-z][a-z0-9]*_[a-z0-9_]+$")


@dataclass(frozen=True)
class EntitySet:
    name: str                      # entity set (URL segment), e.g. "contacts"
    logical: str                   # table logical name, e.g. "contact"
    key: str                       # primary key column
    tracked: bool = True
    bind: str | None = None        # navigation property for WriteOp.associations

    def select(self, columns: Sequence[str] | None = ()) -> str:
        """The `$select` list: the primary key, created/modified and the columns asked for."""
        return ",".join(dict.fromkeys((self.key, *ROW_COLUMNS, *(columns or ()))))


def source_field(path: str) -> SourceField | None:
    """The column (or `_x_value` lookup property) a mapping path reads; None for the connector's `_lookup`
    enrichment and OData annotations. Columns with a publisher prefix are optional by default."""
    name = path.split(".", 1)[0]
    if name.startswith("_lookup") or name.startswith("@"):
        return None
    column = name[1:-len("_value")] if name.startswith("_") and name.endswith("_value") else name
    return SourceField(name, optional=bool(PUBLISHER_PREFIX.match(column)))


ENTITY_SETS: dict[str, EntitySet] = {entity.name: entity for entity in (
    EntitySet("contacts", "contact", "contactid"),
    EntitySet("leads", "lead", "leadid"),
    EntitySet("accounts", "account", "accountid"),
    EntitySet("opportunities", "opportunity", "opportunityid"),
    EntitySet("incidents", "incident", "incidentid"),
    EntitySet("phonecalls", "phonecall", "activityid", bind="regardingobjectid_{target}_phonecall"),
    EntitySet("appointments", "appointment", "activityid", bind="regardingobjectid_{target}_appointment"),
    EntitySet("emails", "email", "activityid", bind="regardingobjectid_{target}_email"),
    EntitySet("tasks", "task", "activityid", bind="regardingobjectid_{target}_task"),
    EntitySet("annotations", "annotation", "annotationid", bind="objectid_{target}"),
    EntitySet("systemusers", "systemuser", "systemuserid", tracked=False),
)}

BY_LOGICAL: dict[str, EntitySet] = {entity.logical: entity for entity in ENTITY_SETS.values()}


def entity_set(name: str) -> EntitySet:
    """The table behind an entity set name (or a logical name); a clear ConfigError otherwise."""
    found = ENTITY_SETS.get(name) or BY_LOGICAL.get(name)
    if found is None:
        raise ConfigError(SYSTEM, f"the hub does not know the Dataverse entity set {name!r}; known: "
                          f"{', '.join(ENTITY_SETS)} (entity set names are plural and case-sensitive)")
    return found


def logical_name(name: str) -> str:
    """`contacts` → `contact`; a name the hub does not list is taken to be a logical name already."""
    found = ENTITY_SETS.get(name) or BY_LOGICAL.get(name)
    return found.logical if found else name
