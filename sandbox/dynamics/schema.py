"""Tables, columns, lookups, navigation properties, alternate keys and the metadata the emulator serves.

One `Schema` per emulator instance (the custom columns exist or not). Column names are the Web API
property names rows are stored and served under: a lookup whose logical name is `parentcustomerid` is the
property `_parentcustomerid_value`; everything else uses its logical name.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

# AttributeType → Edm type used by $filter type checks
EDM = {
    "String": "Edm.String", "Memo": "Edm.String", "EntityName": "Edm.String",
    "Integer": "Edm.Int32", "BigInt": "Edm.Int64", "Picklist": "Edm.Int32", "State": "Edm.Int32",
    "Status": "Edm.Int32", "Money": "Edm.Decimal", "Decimal": "Edm.Decimal", "Double": "Edm.Double",
    "Boolean": "Edm.Boolean", "DateTime": "Edm.DateTimeOffset", "Uniqueidentifier": "Edm.Guid",
    "Lookup": "Edm.Guid", "Customer": "Edm.Guid", "Owner": "Edm.Guid",
}
LOOKUP_KINDS = frozenset({"Lookup", "Customer", "Owner"})
OPTION_KINDS = frozenset({"Picklist", "State", "Status"})
METADATA_TYPE = {  # AttributeType → @odata.type of its AttributeMetadata
    "String": "StringAttributeMetadata", "Memo": "MemoAttributeMetadata", "Integer": "IntegerAttributeMetadata",
    "BigInt": "BigIntAttributeMetadata", "Picklist": "PicklistAttributeMetadata",
    "State": "StateAttributeMetadata", "Status": "StatusAttributeMetadata", "Money": "MoneyAttributeMetadata",
    "Decimal": "DecimalAttributeMetadata", "Double": "DoubleAttributeMetadata",
    "Boolean": "BooleanAttributeMetadata", "DateTime": "DateTimeAttributeMetadata",
    "Uniqueidentifier": "UniqueIdentifierAttributeMetadata", "Lookup": "LookupAttributeMetadata",
    "Customer": "LookupAttributeMetadata", "Owner": "LookupAttributeMetadata",
    "EntityName": "EntityNameAttributeMetadata",
}
_NS = uuid.UUID("9a1d2c54-5b1f-4c3e-9f0b-6d7e8f901234")


def metadata_id(*parts: str) -> str:
    """A stable MetadataId for a table, column or key."""
    return str(uuid.uuid5(_NS, "/".join(parts)))


@dataclass(frozen=True)
class Column:
    name: str                       # attribute LogicalName (e.g. "parentcustomerid")
    kind: str                       # AttributeType
    max_length: int | None = None
    min_value: float | None = None
    max_value: float | None = None
    options: dict[int, str] | None = None      # option labels; None = any int accepted
    targets: tuple[str, ...] = ()              # lookup target logical names
    create: bool = True                         # IsValidForCreate
    update: bool = True                         # IsValidForUpdate
    custom: bool = False
    bool_labels: tuple[str, str] = ("No", "Yes")

    @property
    def prop(self) -> str:
        return f"_{self.name}_value" if self.kind in LOOKUP_KINDS else self.name

    @property
    def edm(self) -> str:
        return EDM[self.kind]

    @property
    def is_lookup(self) -> bool:
        return self.kind in LOOKUP_KINDS


@dataclass
class Table:
    logical: str
    entity_set: str
    pk: str
    display: str
    object_type_code: int
    primary_name: str | None
    columns: dict[str, Column] = field(default_factory=dict)          # by Web API property name
    attributes: dict[str, Column] = field(default_factory=dict)       # by attribute logical name
    nav: dict[str, tuple[Column, str]] = field(default_factory=dict)  # nav property → (column, target)
    alt_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)  # key name → attribute names
    states: dict[int, tuple[str, int]] = field(default_factory=dict)  # statecode → (label, default status)
    statuses: dict[int, tuple[str, int]] = field(default_factory=dict)  # statuscode → (label, statecode)
    is_activity: bool = False
    read_only: bool = False           # activitypointers: a read view
    tracking_default: bool = True
    defaults: dict[str, object] = field(default_factory=dict)

    @property
    def type_name(self) -> str:
        return f"Microsoft.Dynamics.CRM.{self.logical}"

    def add(self, column: Column) -> None:
        self.columns[column.prop] = column
        self.attributes[column.name] = column

    @property
    def metadata_id(self) -> str:
        return metadata_id(self.logical)


@dataclass
class Schema:
    tables: dict[str, Table]                  # by entity set
    by_logical: dict[str, Table]

    def table(self, entity_set: str) -> Table | None:
        return self.tables.get(entity_set)


# ----------------------------------------------------------------------------------------- option sets
STATE_ACTIVE = {0: ("Active", 1), 1: ("Inactive", 2)}
STATUS_ACTIVE = {1: ("Active", 0), 2: ("Inactive", 1)}
PRIORITY_ACTIVITY = {0: "Low", 1: "Normal", 2: "High"}
LEAD_SOURCE = {1: "Advertisement", 2: "Employee Referral", 3: "External Referral", 4: "Partner",
               5: "Public Relations", 6: "Seminar", 7: "Trade Show", 8: "Web", 9: "Word of Mouth", 10: "Other"}
ACTIVITY_TABLES = ("task", "phonecall", "email", "appointment")
REGARDING_TARGETS = ("account", "contact", "lead", "opportunity", "incident")
NOTE_TARGETS = ("contact", "lead", "account", "opportunity", "incident")

# display names for EntityName formatted values
DISPLAY = {"account": "Account", "contact": "Contact", "lead": "Lead", "opportunity": "Opportunity",
           "incident": "Case", "task": "Task", "phonecall": "Phone Call", "email": "Email",
           "appointment": "Appointment", "annotation": "Note", "systemuser": "User",
           "activitypointer": "Activity", "team": "Team"}


def _s(name: str, length: int, **kw: object) -> Column:
    return Column(name, "String", max_length=length, **kw)  # type: ignore[arg-type]


def _memo(name: str, length: int = 2000, **kw: object) -> Column:
    return Column(name, "Memo", max_length=length, **kw)  # type: ignore[arg-type]


def _dt(name: str, **kw: object) -> Column:
    return Column(name, "DateTime", **kw)  # type: ignore[arg-type]


def _lookup(name: str, *targets: str, **kw: object) -> Column:
    return Column(name, "Lookup", targets=targets, **kw)  # type: ignore[arg-type]


def _system_columns(owned: bool = True) -> list[Column]:
    cols = [
        _dt("createdon", create=False, update=False),
        _dt("modifiedon", create=False, update=False),
        _dt("overriddencreatedon", update=False),
        Column("versionnumber", "BigInt", create=False, update=False),
        _lookup("createdby", "systemuser", create=False, update=False),
        _lookup("modifiedby", "systemuser", create=False, update=False),
    ]
    if owned:
        cols.append(Column("ownerid", "Owner", targets=("systemuser", "team")))
        cols.append(_lookup("owninguser", "systemuser", create=False, update=False))
        cols.append(_lookup("owningbusinessunit", "businessunit", create=False, update=False))
    return cols


def _state_columns(table: Table, states: dict[int, tuple[str, int]], statuses: dict[int, tuple[str, int]]) -> None:
    table.states, table.statuses = states, statuses
    table.add(Column("statecode", "State", options={k: v[0] for k, v in states.items()}))
    table.add(Column("statuscode", "Status", options={k: v[0] for k, v in statuses.items()}))


def _journey_columns(table: Table) -> None:
    for name in ("new_journeystage", "new_journeysegment", "new_lastinteractionchannel"):
        table.add(_s(name, 100, custom=True))
    table.add(_dt("new_stageenteredon", custom=True))
    table.add(_dt("new_lastinteractionon", custom=True))


def _finish(table: Table) -> Table:
    """Navigation properties for every writable lookup."""
    for column in table.columns.values():
        if not column.is_lookup or not (column.create or column.update):
            continue
        if column.kind == "Customer":
            for target in column.targets:
                table.nav[f"{column.name}_{target}"] = (column, target)
        elif column.name == "regardingobjectid":
            for target in column.targets:
                table.nav[f"regardingobjectid_{target}_{table.logical}"] = (column, target)
        elif column.name == "objectid":
            for target in column.targets:
                table.nav[f"objectid_{target}"] = (column, target)
        else:
            table.nav[column.name] = (column, column.targets[0])
    return table


def _person(logical: str, entity_set: str, pk: str, display: str, otc: int) -> Table:
    table = Table(logical, entity_set, pk, display, otc, "fullname")
    table.add(Column(pk, "Uniqueidentifier", update=False))
    for col in (_s("firstname", 50), _s("lastname", 50), _s("middlename", 50),
                _s("fullname", 160, create=False, update=False), _s("emailaddress1", 100),
                _s("emailaddress2", 100), _s("telephone1", 50), _s("mobilephone", 50), _s("jobtitle", 100),
                _s("address1_city", 80), _memo("description")):
        table.add(col)
    return table


def build_schema(custom_columns: bool = True) -> Schema:
    tables: list[Table] = []

    # contact ---------------------------------------------------------------------------------------
    contact = _person("contact", "contacts", "contactid", "Contact", 2)
    contact.add(Column("parentcustomerid", "Customer", targets=("account", "contact")))
    contact.add(_lookup("originatingleadid", "lead"))
    contact.add(_lookup("masterid", "contact", create=False, update=False))
    contact.add(_lookup("accountid", "account", create=False, update=False))
    contact.add(Column("merged", "Boolean", create=False, update=False))
    contact.add(Column("leadsourcecode", "Picklist", options={1: "Default"}))
    _state_columns(contact, STATE_ACTIVE, STATUS_ACTIVE)
    for col in _system_columns():
        contact.add(col)
    if custom_columns:
        _journey_columns(contact)
    contact.defaults = {"merged": False}
    tables.append(contact)

    # lead ------------------------------------------------------------------------------------------
    lead = _person("lead", "leads", "leadid", "Lead", 4)
    for col in (_s("subject", 300), _s("companyname", 100),
                Column("leadsourcecode", "Picklist", options=LEAD_SOURCE),
                _lookup("parentcontactid", "contact"), _lookup("parentaccountid", "account"),
                Column("customerid", "Customer", targets=("account", "contact")),
                _lookup("qualifyingopportunityid", "opportunity"),
                _lookup("masterid", "lead", create=False, update=False),
                Column("merged", "Boolean", create=False, update=False)):
        lead.add(col)
    _state_columns(lead, {0: ("Open", 1), 1: ("Qualified", 3), 2: ("Disqualified", 4)},
                   {1: ("New", 0), 2: ("Contacted", 0), 3: ("Qualified", 1), 4: ("Lost", 2),
                    5: ("Cannot Contact", 2), 6: ("No Longer Interested", 2), 7: ("Canceled", 2)})
    for col in _system_columns():
        lead.add(col)
    if custom_columns:
        _journey_columns(lead)
    lead.defaults = {"merged": False}
    tables.append(lead)

    # account ---------------------------------------------------------------------------------------
    account = Table("account", "accounts", "accountid", "Account", 1, "name")
    for col in (Column("accountid", "Uniqueidentifier", update=False), _s("name", 160), _s("accountnumber", 20),
                _s("websiteurl", 200), _s("telephone1", 50), _s("emailaddress1", 100), _s("address1_city", 80),
                _memo("description"), Column("industrycode", "Picklist"), Column("revenue", "Money"),
                Column("numberofemployees", "Integer", min_value=0, max_value=1_000_000_000),
                _lookup("primarycontactid", "contact"), _lookup("parentaccountid", "account"),
                _lookup("originatingleadid", "lead"), _lookup("masterid", "account", create=False, update=False),
                _lookup("transactioncurrencyid", "transactioncurrency", create=False, update=False),
                Column("merged", "Boolean", create=False, update=False)):
        account.add(col)
    _state_columns(account, STATE_ACTIVE, STATUS_ACTIVE)
    for col in _system_columns():
        account.add(col)
    account.defaults = {"merged": False}
    tables.append(account)

    # opportunity -----------------------------------------------------------------------------------
    opp = Table("opportunity", "opportunities", "opportunityid", "Opportunity", 3, "name")
    for col in (Column("opportunityid", "Uniqueidentifier", update=False), _s("name", 300), _memo("description"),
                Column("estimatedvalue", "Money"), Column("actualvalue", "Money"), _dt("estimatedclosedate"),
                _dt("actualclosedate"), Column("closeprobability", "Integer", min_value=0, max_value=100),
                _s("stepname", 200),
                Column("salesstage", "Picklist", options={0: "Qualify", 1: "Develop", 2: "Propose", 3: "Close"}),
                Column("customerid", "Customer", targets=("account", "contact")),
                _lookup("parentcontactid", "contact"), _lookup("parentaccountid", "account"),
                _lookup("originatingleadid", "lead"), _lookup("accountid", "account", create=False, update=False),
                _lookup("contactid", "contact", create=False, update=False),
                _lookup("transactioncurrencyid", "transactioncurrency", create=False, update=False)):
        opp.add(col)
    _state_columns(opp, {0: ("Open", 1), 1: ("Won", 3), 2: ("Lost", 4)},
                   {1: ("In Progress", 0), 2: ("On Hold", 0), 3: ("Won", 1), 4: ("Canceled", 2),
                    5: ("Out-Sold", 2)})
    for col in _system_columns():
        opp.add(col)
    tables.append(opp)

    # incident --------------------------------------------------------------------------------------
    case = Table("incident", "incidents", "incidentid", "Case", 112, "title")
    for col in (Column("incidentid", "Uniqueidentifier", update=False), _s("title", 200),
                _s("ticketnumber", 100, update=False), _memo("description", 2000),
                Column("prioritycode", "Picklist", options={1: "High", 2: "Normal", 3: "Low"}),
                Column("caseorigincode", "Picklist",
                       options={1: "Phone", 2: "Email", 3: "Web", 2483: "Facebook", 3986: "Twitter",
                                700610000: "IoT"}),
                Column("customerid", "Customer", targets=("account", "contact")),
                _lookup("primarycontactid", "contact"),
                _lookup("masterid", "incident", create=False, update=False),
                Column("merged", "Boolean", create=False, update=False)):
        case.add(col)
    _state_columns(case, {0: ("Active", 1), 1: ("Resolved", 5), 2: ("Cancelled", 6)},
                   {1: ("In Progress", 0), 2: ("On Hold", 0), 3: ("Waiting for Details", 0),
                    4: ("Researching", 0), 5: ("Problem Solved", 1), 1000: ("Information Provided", 1),
                    6: ("Cancelled", 2), 2000: ("Merged", 2)})
    for col in _system_columns():
        case.add(col)
    case.defaults = {"merged": False, "prioritycode": 2}
    tables.append(case)

    # activities ------------------------------------------------------------------------------------
    specs = {
        "task": ("tasks", "Task", 4212,
                 {0: ("Open", 2), 1: ("Completed", 5), 2: ("Canceled", 6)},
                 {2: ("Not Started", 0), 3: ("In Progress", 0), 4: ("Waiting on someone else", 0),
                  7: ("Deferred", 0), 5: ("Completed", 1), 6: ("Canceled", 2)}),
        "phonecall": ("phonecalls", "Phone Call", 4210,
                      {0: ("Open", 1), 1: ("Completed", 2), 2: ("Canceled", 3)},
                      {1: ("Open", 0), 2: ("Made", 1), 4: ("Received", 1), 3: ("Canceled", 2)}),
        "email": ("emails", "Email", 4202,
                  {0: ("Open", 1), 1: ("Completed", 2), 2: ("Canceled", 5)},
                  {1: ("Draft", 0), 8: ("Failed", 0), 2: ("Completed", 1), 3: ("Sent", 1), 4: ("Received", 1),
                   6: ("Pending Send", 1), 7: ("Sending", 1), 5: ("Canceled", 2)}),
        "appointment": ("appointments", "Appointment", 4201,
                        {0: ("Open", 1), 1: ("Completed", 3), 2: ("Canceled", 4), 3: ("Scheduled", 5)},
                        {1: ("Free", 0), 2: ("Tentative", 0), 3: ("Completed", 1), 4: ("Canceled", 2),
                         5: ("Busy", 3), 6: ("Out of Office", 3)}),
    }
    for logical, (entity_set, display, otc, states, statuses) in specs.items():
        act = Table(logical, entity_set, "activityid", display, otc, "subject", is_activity=True)
        for col in _activity_columns():
            act.add(col)
        if logical == "task":
            for col in (_s("category", 250), _s("subcategory", 250),
                        Column("percentcomplete", "Integer", min_value=0, max_value=100)):
                act.add(col)
            if custom_columns:
                act.add(_s("new_externalid", 255, custom=True))
                act.add(Column("new_surveyscore", "Integer", min_value=0, max_value=10, custom=True))
                act.alt_keys["new_externalid"] = ("new_externalid",)
        elif logical == "phonecall":
            act.add(Column("directioncode", "Boolean", bool_labels=("Incoming", "Outgoing")))
            act.add(_s("phonenumber", 200))
            act.add(_s("category", 250))
        elif logical == "email":
            act.add(Column("directioncode", "Boolean", bool_labels=("Incoming", "Outgoing")))
            act.add(_s("sender", 250))
            act.add(_s("torecipients", 500))
            act.add(_s("category", 250))
        elif logical == "appointment":
            act.add(_s("location", 200))
            act.add(Column("isalldayevent", "Boolean"))
            act.add(_s("category", 250))
        _state_columns(act, states, statuses)
        for col in _system_columns():
            act.add(col)
        act.defaults = {"activitytypecode": logical, "prioritycode": 1}
        tables.append(act)

    # annotation ------------------------------------------------------------------------------------
    note = Table("annotation", "annotations", "annotationid", "Note", 5, "subject")
    for col in (Column("annotationid", "Uniqueidentifier", update=False), _s("subject", 500),
                _memo("notetext", 100_000), Column("isdocument", "Boolean"), _s("filename", 255),
                _memo("documentbody", 1_073_741_823), _s("mimetype", 256),
                Column("filesize", "Integer", create=False, update=False),
                _lookup("objectid", *NOTE_TARGETS), Column("objecttypecode", "EntityName")):
        note.add(col)
    for col in _system_columns():
        note.add(col)
    note.defaults = {"isdocument": False}
    tables.append(note)

    # systemuser ------------------------------------------------------------------------------------
    user = Table("systemuser", "systemusers", "systemuserid", "User", 8, "fullname", tracking_default=False)
    for col in (Column("systemuserid", "Uniqueidentifier", update=False), _s("firstname", 64), _s("lastname", 64),
                _s("fullname", 200, create=False, update=False), _s("internalemailaddress", 100),
                _s("domainname", 1024), _s("title", 128),
                Column("isdisabled", "Boolean", bool_labels=("Enabled", "Disabled")),
                Column("applicationid", "Uniqueidentifier"),
                Column("accessmode", "Picklist",
                       options={0: "Read-Write", 1: "Administrative", 2: "Read", 3: "Support User",
                                4: "Non-interactive", 5: "Delegated Admin"})):
        user.add(col)
    for col in _system_columns(owned=False):
        user.add(col)
    user.defaults = {"isdisabled": False, "accessmode": 0}
    tables.append(user)

    # activitypointer (read view over the activity tables) -------------------------------------------
    pointer = Table("activitypointer", "activitypointers", "activityid", "Activity", 4200, "subject",
                    is_activity=True, read_only=True, tracking_default=False)
    for col in _activity_columns():
        pointer.add(col)
    _state_columns(pointer, {0: ("Open", 1), 1: ("Completed", 2), 2: ("Canceled", 3), 3: ("Scheduled", 4)}, {})
    pointer.columns["statuscode"] = pointer.attributes["statuscode"] = Column("statuscode", "Status")
    for col in _system_columns():
        pointer.add(col)
    tables.append(pointer)

    for table in tables:
        _finish(table)
    return Schema({t.entity_set: t for t in tables}, {t.logical: t for t in tables})


def _activity_columns() -> list[Column]:
    return [
        Column("activityid", "Uniqueidentifier", update=False),
        Column("activitytypecode", "EntityName", create=False, update=False),
        _s("subject", 200), _memo("description", 1_048_576),
        _lookup("regardingobjectid", *REGARDING_TARGETS),
        _dt("scheduledstart"), _dt("scheduledend"), _dt("actualstart"), _dt("actualend"),
        Column("actualdurationminutes", "Integer", min_value=0, max_value=2_147_483_647),
        Column("prioritycode", "Picklist", options=PRIORITY_ACTIVITY),
    ]


# ------------------------------------------------------------------------------------------- metadata
def entity_definition(table: Table, tracking: bool) -> dict:
    """An EntityMetadata record (the properties the emulator knows)."""
    return {
        "MetadataId": table.metadata_id,
        "LogicalName": table.logical,
        "SchemaName": table.logical.capitalize() if table.logical != "systemuser" else "SystemUser",
        "EntitySetName": table.entity_set,
        "LogicalCollectionName": table.entity_set,
        "PrimaryIdAttribute": table.pk,
        "PrimaryNameAttribute": table.primary_name,
        "ObjectTypeCode": table.object_type_code,
        "IsActivity": table.is_activity and table.logical != "activitypointer",
        "IsCustomEntity": False,
        "ChangeTrackingEnabled": tracking,
        "CanChangeTrackingBeEnabled": {"Value": table.logical != "activitypointer",
                                       "CanBeChanged": table.logical != "activitypointer",
                                       "ManagedPropertyLogicalName": "canchangetrackingbeenabled"},
        "DisplayName": _label(table.display),
    }


ENTITY_DEFINITION_TYPES = {
    "MetadataId": "Edm.Guid", "LogicalName": "Edm.String", "SchemaName": "Edm.String",
    "EntitySetName": "Edm.String", "LogicalCollectionName": "Edm.String", "PrimaryIdAttribute": "Edm.String",
    "PrimaryNameAttribute": "Edm.String", "ObjectTypeCode": "Edm.Int32", "IsActivity": "Edm.Boolean",
    "IsCustomEntity": "Edm.Boolean", "ChangeTrackingEnabled": "Edm.Boolean",
    "CanChangeTrackingBeEnabled": None, "DisplayName": None,
}


def attribute_definition(table: Table, column: Column) -> dict:
    record: dict = {
        "@odata.type": f"#Microsoft.Dynamics.CRM.{METADATA_TYPE[column.kind]}",
        "MetadataId": metadata_id(table.logical, column.name),
        "LogicalName": column.name,
        "SchemaName": column.name if not column.custom else "new_" + column.name[4:].capitalize(),
        "EntityLogicalName": table.logical,
        "AttributeType": column.kind,
        "AttributeTypeName": {"Value": f"{column.kind}Type" if column.kind != "Uniqueidentifier"
                              else "UniqueidentifierType"},
        "IsCustomAttribute": column.custom,
        "IsPrimaryId": column.name == table.pk,
        "IsPrimaryName": column.name == table.primary_name,
        "IsValidForCreate": column.create,
        "IsValidForUpdate": column.update,
        "IsValidForRead": True,
        "IsLogical": False,
        "MaxLength": column.max_length if column.kind in ("String", "Memo") else None,
        "Targets": list(column.targets) if column.is_lookup else None,
        "MinValue": column.min_value,
        "MaxValue": column.max_value,
    }
    return record


ATTRIBUTE_DEFINITION_TYPES = {
    "MetadataId": "Edm.Guid", "LogicalName": "Edm.String", "SchemaName": "Edm.String",
    "EntityLogicalName": "Edm.String", "AttributeType": "Edm.String", "AttributeTypeName": None,
    "IsCustomAttribute": "Edm.Boolean", "IsPrimaryId": "Edm.Boolean", "IsPrimaryName": "Edm.Boolean",
    "IsValidForCreate": "Edm.Boolean", "IsValidForUpdate": "Edm.Boolean", "IsValidForRead": "Edm.Boolean",
    "IsLogical": "Edm.Boolean", "MaxLength": "Edm.Int32", "Targets": None, "MinValue": "Edm.Double",
    "MaxValue": "Edm.Double", "@odata.type": None,
}


def key_definition(table: Table, name: str, attributes: tuple[str, ...]) -> dict:
    return {
        "MetadataId": metadata_id(table.logical, "key", name),
        "LogicalName": name,
        "SchemaName": name if not name.startswith("new_") else "new_" + name[4:].capitalize(),
        "EntityLogicalName": table.logical,
        "KeyAttributes": list(attributes),
        "EntityKeyIndexStatus": "Active",
        "IsCustomizable": {"Value": True, "CanBeChanged": True, "ManagedPropertyLogicalName": "iscustomizable"},
        "DisplayName": _label(name),
    }


KEY_DEFINITION_TYPES = {
    "MetadataId": "Edm.Guid", "LogicalName": "Edm.String", "SchemaName": "Edm.String",
    "EntityLogicalName": "Edm.String", "KeyAttributes": None, "EntityKeyIndexStatus": "Edm.String",
    "IsCustomizable": None, "DisplayName": None,
}


def _label(text: str) -> dict:
    localized = {"Label": text, "LanguageCode": 1033, "IsManaged": True}
    return {"LocalizedLabels": [localized], "UserLocalizedLabel": localized}
