"""The Dataverse tables the hub reads and writes, as data: one row per entity set, no class per table.

`columns` are what the default mappings read (docs/crm-conventions.md) and go into `$select`; `lookups` are
the `_x_value` properties also selected (their target table comes back in the lookuplogicalname annotation);
`tracked` says whether to try change tracking (Dataverse ships `systemusers` with it off, so the hub goes
straight to the `modifiedon` fallback there instead of spending a call on the refusal); `bind` is the
navigation property a write uses to point a row at another one (`{target}` = the target's logical name).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.errors import ConfigError

SYSTEM = "dynamics"
_ROW = ("createdon", "modifiedon")


@dataclass(frozen=True)
class EntitySet:
    name: str                      # entity set (URL segment), e.g. "contacts"
    logical: str                   # table logical name, e.g. "contact"
    key: str                       # primary key column
    columns: tuple[str, ...]
    lookups: tuple[str, ...] = ()
    tracked: bool = True
    bind: str | None = None        # navigation property for WriteOp.associations

    @property
    def select(self) -> str:
        """The `$select` list: columns and lookups (the primary key always comes back anyway)."""
        return ",".join((self.key, *self.columns, *self.lookups))


_PERSON = ("firstname", "lastname", "fullname", "emailaddress1", "telephone1", "mobilephone", "merged",
           "statecode", "statuscode", *_ROW)
_ACTIVITY = ("subject", "description", "statecode", "statuscode", "actualend", "scheduledend", *_ROW)
_ACTIVITY_LOOKUPS = ("_regardingobjectid_value", "_ownerid_value")

ENTITY_SETS: dict[str, EntitySet] = {entity.name: entity for entity in (
    EntitySet("contacts", "contact", "contactid", _PERSON,
              ("_parentcustomerid_value", "_originatingleadid_value", "_ownerid_value", "_masterid_value")),
    EntitySet("leads", "lead", "leadid", (*_PERSON, "companyname", "subject", "leadsourcecode"),
              ("_parentcontactid_value", "_parentaccountid_value", "_ownerid_value", "_masterid_value")),
    EntitySet("accounts", "account", "accountid", ("name", "websiteurl", "telephone1", "statecode", *_ROW),
              ("_ownerid_value",)),
    EntitySet("opportunities", "opportunity", "opportunityid",
              ("name", "estimatedvalue", "actualvalue", "estimatedclosedate", "actualclosedate", "statecode",
               "statuscode", "stepname", *_ROW),
              ("_customerid_value", "_parentcontactid_value", "_parentaccountid_value", "_ownerid_value")),
    EntitySet("incidents", "incident", "incidentid",
              ("title", "ticketnumber", "description", "prioritycode", "caseorigincode", "statecode", "statuscode",
               *_ROW),
              ("_customerid_value", "_ownerid_value")),
    EntitySet("phonecalls", "phonecall", "activityid", (*_ACTIVITY, "directioncode", "phonenumber"),
              _ACTIVITY_LOOKUPS, bind="regardingobjectid_{target}_phonecall"),
    EntitySet("appointments", "appointment", "activityid", (*_ACTIVITY, "scheduledstart", "location"),
              _ACTIVITY_LOOKUPS, bind="regardingobjectid_{target}_appointment"),
    EntitySet("emails", "email", "activityid", (*_ACTIVITY, "directioncode", "sender", "torecipients"),
              _ACTIVITY_LOOKUPS, bind="regardingobjectid_{target}_email"),
    EntitySet("tasks", "task", "activityid", (*_ACTIVITY, "category", "new_surveyscore", "new_externalid"),
              _ACTIVITY_LOOKUPS, bind="regardingobjectid_{target}_task"),
    EntitySet("annotations", "annotation", "annotationid", ("subject", "notetext", "objecttypecode", *_ROW),
              ("_objectid_value", "_ownerid_value"), bind="objectid_{target}"),
    EntitySet("systemusers", "systemuser", "systemuserid",
              ("fullname", "internalemailaddress", "isdisabled", *_ROW), tracked=False),
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
