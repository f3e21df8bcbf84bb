"""The sObjects the connector reads, as data: fields to select, optional (describe-checked) fields, and how
each object can be read (recycle bin, getDeleted, Bulk API 2.0).

Fields are what the default mappings read (docs/crm-conventions.md) plus the system fields every read needs.
`optional` fields are selected only when the org's describe shows them, so an org without the hub's custom
fields still syncs (the skipped ones are logged).
"""

from __future__ import annotations

from dataclasses import dataclass

from connectors.errors import ConfigError

CURSOR_FIELD = "SystemModstamp"      # indexed, bumped by user and system changes (Salesforce "System Fields")
LOOKBACK_SECONDS = 120.0             # re-read this much before the watermark: stamps are not commit-ordered
DELETED_WINDOW_DAYS = 15             # getDeleted only answers for the last 15 days
SYSTEM_FIELDS = ("Id", "CreatedDate", "LastModifiedDate", CURSOR_FIELD)


@dataclass(frozen=True)
class SObject:
    name: str
    fields: tuple[str, ...]
    optional: tuple[str, ...] = ()
    soft_delete: bool = True         # has IsDeleted: queryAll returns recycle-bin rows as tombstones with data
    deletable: bool = True           # deletions can be listed with getDeleted
    bulk: bool = True                # a first load above bulk_threshold uses Bulk API 2.0

    def select(self, optional: list[str] | tuple[str, ...] = ()) -> list[str]:
        """The SELECT list: system fields, IsDeleted where it exists, the object's fields, present optionals."""
        names = list(SYSTEM_FIELDS) + (["IsDeleted"] if self.soft_delete else [])
        for name in (*self.fields, *optional):
            if name not in names:
                names.append(name)
        return names


SOBJECTS: dict[str, SObject] = {spec.name: spec for spec in (
    SObject("Contact", ("FirstName", "LastName", "Email", "Phone", "MobilePhone", "AccountId", "OwnerId",
                        "LeadSource", "MasterRecordId")),
    SObject("Lead", ("FirstName", "LastName", "Email", "Phone", "MobilePhone", "Company", "Status", "LeadSource",
                     "IsConverted", "ConvertedContactId", "ConvertedAccountId", "ConvertedDate", "OwnerId",
                     "MasterRecordId")),
    SObject("Account", ("Name", "Website", "Industry", "Phone", "OwnerId", "MasterRecordId")),
    SObject("Opportunity", ("Name", "StageName", "CloseDate", "Amount", "AccountId", "OwnerId", "IsClosed",
                            "IsWon")),
    SObject("OpportunityContactRole", ("OpportunityId", "ContactId", "Role", "IsPrimary")),
    SObject("Case", ("CaseNumber", "Subject", "Description", "Status", "Priority", "Origin", "ContactId",
                     "AccountId", "IsClosed", "ClosedDate", "OwnerId", "MasterRecordId")),
    SObject("Task", ("Subject", "WhoId", "WhatId", "ActivityDate", "CompletedDateTime", "Status", "TaskSubtype",
                     "Type", "CallType", "CallDisposition", "CallDurationInSeconds", "Description", "OwnerId"),
            optional=("Survey_Score__c", "Review_Rating__c", "External_Id__c")),
    SObject("Event", ("Subject", "WhoId", "WhatId", "StartDateTime", "EndDateTime", "ActivityDateTime", "Type",
                      "Description", "OwnerId"),
            optional=("External_Id__c",)),
    SObject("EmailMessage", ("Subject", "TextBody", "FromAddress", "ToAddress", "MessageDate", "Incoming",
                             "Status", "ParentId", "RelatedToId")),
    SObject("User", ("Username", "Email", "FirstName", "LastName", "Name", "IsActive"),
            soft_delete=False, deletable=False, bulk=False),
)}


def sobject(name: str) -> SObject:
    """The table entry for `name`; an unknown object is a configuration problem."""
    spec = SOBJECTS.get(name)
    if spec is None:
        raise ConfigError("salesforce", f"the Salesforce connector does not read {name!r}; it reads: "
                          f"{', '.join(SOBJECTS)}")
    return spec
