"""The org's metadata: the sObjects the emulator serves, their fields, key prefixes and describe output.

Field definitions follow Salesforce's object reference for the standard fields a sync touches (plus the
usual basics of each object), with the properties describe reports: type, length, nillable (required
when false and not defaulted on create), createable/updateable (read-only and create-only fields),
externalId/unique/idLookup, picklist values, reference targets and relationship names.

The custom fields an admin creates for the hub (docs/crm-conventions.md) are added when the schema is
built with `custom_fields=True`, so the hub's "missing fields" check can be tested against an org
without them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

#: field type → SOAP type describe reports
SOAP_TYPES = {
    "id": "tns:ID", "reference": "tns:ID", "boolean": "xsd:boolean", "double": "xsd:double",
    "currency": "xsd:double", "percent": "xsd:double", "int": "xsd:int", "date": "xsd:date",
    "datetime": "xsd:dateTime",
}
TEXT_TYPES = frozenset({"string", "textarea", "email", "phone", "url", "picklist", "combobox",
                        "multipicklist"})
ID_TYPES = frozenset({"id", "reference"})
NUMBER_TYPES = frozenset({"double", "currency", "percent", "int"})


def value_kind(field_type: str) -> str:
    """How the SOQL evaluator compares values of a field type: text, id, number, boolean, date, datetime."""
    if field_type in TEXT_TYPES:
        return "text"
    if field_type in ID_TYPES:
        return "id"
    if field_type in NUMBER_TYPES:
        return "number"
    return field_type  # boolean, date, datetime


@dataclass(frozen=True)
class Field:
    name: str
    type: str
    label: str
    length: int = 0
    nillable: bool = True
    createable: bool = True
    updateable: bool = True
    defaulted: bool = False          # defaultedOnCreate
    default: Any = None              # value used when defaulted and not given (picklist defaultValue)
    external_id: bool = False
    unique: bool = False
    custom: bool = False
    id_lookup: bool = False
    reference_to: tuple[str, ...] = ()
    relationship: str | None = None
    picklist: tuple[str, ...] = ()
    picklist_labels: tuple[str, ...] = ()   # when labels differ from values (EmailMessage.Status)
    restricted: bool = False
    calculated: bool = False
    auto_number: bool = False
    filterable: bool = True
    sortable: bool = True
    name_field: bool = False
    precision: int = 0
    scale: int = 0
    cascade_delete: bool = False
    kind: str = field(init=False, compare=False)   # how values compare: text, id, number, boolean, date, datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", value_kind(self.type))

    @property
    def required(self) -> bool:
        """Must be given on create (describe: not nillable, createable, not defaulted on create)."""
        return not self.nillable and self.createable and not self.defaulted and self.type != "boolean"

    def describe(self) -> dict[str, Any]:
        byte_length = self.length * 3 if self.kind == "text" else (18 if self.kind == "id" else 0)
        picklist = []
        if self.picklist:
            labels = self.picklist_labels or self.picklist
            picklist = [{"active": True, "defaultValue": value == self.default, "label": label,
                         "validFor": None, "value": value} for value, label in zip(self.picklist, labels,
                                                                                   strict=True)]
        digits = 9 if self.type == "int" else 0
        return {
            "aggregatable": self.type not in ("textarea", "boolean"),
            "autoNumber": self.auto_number,
            "byteLength": byte_length,
            "calculated": self.calculated,
            "calculatedFormula": None,
            "cascadeDelete": self.cascade_delete,
            "caseSensitive": False,
            "compoundFieldName": None,
            "controllerName": None,
            "createable": self.createable,
            "custom": self.custom,
            "defaultValue": self.default if self.type == "boolean" else None,
            "defaultValueFormula": None,
            "defaultedOnCreate": self.defaulted,
            "dependentPicklist": False,
            "deprecatedAndHidden": False,
            "digits": digits,
            "externalId": self.external_id,
            "extraTypeInfo": None,
            "filterable": self.filterable,
            "groupable": self.filterable and self.type not in ("double", "currency", "percent", "datetime"),
            "htmlFormatted": False,
            "idLookup": self.id_lookup,
            "inlineHelpText": None,
            "label": self.label,
            "length": self.length if self.kind in ("text",) else (18 if self.kind == "id" else 0),
            "name": self.name,
            "nameField": self.name_field,
            "namePointing": len(self.reference_to) > 1,
            "nillable": self.nillable,
            "permissionable": self.nillable and self.createable and self.type != "id",
            "picklistValues": picklist,
            "polymorphicForeignKey": len(self.reference_to) > 1,
            "precision": self.precision,
            "referenceTo": list(self.reference_to),
            "relationshipName": self.relationship,
            "relationshipOrder": None,
            "restrictedDelete": False,
            "restrictedPicklist": self.restricted,
            "scale": self.scale,
            "soapType": SOAP_TYPES.get(self.type, "xsd:string"),
            "sortable": self.sortable,
            "type": self.type,
            "unique": self.unique,
            "updateable": self.updateable,
            "writeRequiresMasterRead": False,
        }


@dataclass
class SObjectType:
    name: str
    label: str
    label_plural: str
    prefix: str
    fields: dict[str, Field]
    createable: bool = True
    updateable: bool = True
    deletable: bool = True
    mergeable: bool = False
    custom: bool = False
    lower: dict[str, Field] = field(default_factory=dict)
    relationships: dict[str, Field] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.lower = {name.lower(): spec for name, spec in self.fields.items()}
        self.relationships = {spec.relationship.lower(): spec for spec in self.fields.values()
                              if spec.relationship}

    def field(self, name: str) -> Field | None:
        return self.lower.get(name.lower())

    @property
    def has_is_deleted(self) -> bool:
        return "IsDeleted" in self.fields

    def global_entry(self, version: str) -> dict[str, Any]:
        base = f"/services/data/v{version}/sobjects/{self.name}"
        return {
            "activateable": False, "associateEntityType": None, "associateParentEntity": None,
            "createable": self.createable, "custom": self.custom, "customSetting": False,
            "deepCloneable": False, "deletable": self.deletable, "deprecatedAndHidden": False,
            "feedEnabled": self.name in ("Account", "Contact", "Lead", "Opportunity", "Case", "User"),
            "hasSubtypes": False, "isInterface": False, "isSubtype": False, "keyPrefix": self.prefix,
            "label": self.label, "labelPlural": self.label_plural, "layoutable": True,
            "mergeable": self.mergeable, "mruEnabled": True, "name": self.name, "queryable": True,
            "replicateable": True, "retrieveable": True, "searchable": True, "triggerable": True,
            "undeletable": self.deletable, "updateable": self.updateable,
            "urls": {"rowTemplate": f"{base}/{{ID}}", "defaultValues": f"{base}/defaultValues?recordTypeId&fields",
                     "describe": f"{base}/describe", "sobject": base},
        }


# ------------------------------------------------------------------------------------------------ picklists
LEAD_SOURCES = ("Web", "Phone Inquiry", "Partner Referral", "Purchased List", "Other")
SALUTATIONS = ("Mr.", "Ms.", "Mrs.", "Dr.", "Prof.", "Mx.")
INDUSTRIES = (
    "Agriculture", "Apparel", "Banking", "Biotechnology", "Chemicals", "Communications", "Construction",
    "Consulting", "Education", "Electronics", "Energy", "Engineering", "Entertainment", "Environmental",
    "Finance", "Food & Beverage", "Government", "Healthcare", "Hospitality", "Insurance", "Machinery",
    "Manufacturing", "Media", "Not For Profit", "Recreation", "Retail", "Shipping", "Technology",
    "Telecommunications", "Transportation", "Utilities", "Other",
)
LEAD_STATUSES = ("Open - Not Contacted", "Working - Contacted", "Closed - Converted", "Closed - Not Converted")
ACCOUNT_TYPES = ("Prospect", "Customer - Direct", "Customer - Channel", "Channel Partner / Reseller",
                 "Installation Partner", "Technology Partner", "Other")
OPPORTUNITY_TYPES = ("Existing Customer - Upgrade", "Existing Customer - Replacement",
                     "Existing Customer - Downgrade", "New Customer")


@dataclass(frozen=True)
class Stage:
    name: str
    probability: float
    forecast: str          # ForecastCategoryName (label)
    closed: bool
    won: bool


#: the default sales process (OpportunityStage metadata): IsClosed/IsWon/Probability/forecast derive from it
STAGES = {stage.name: stage for stage in (
    Stage("Prospecting", 10, "Pipeline", False, False),
    Stage("Qualification", 10, "Pipeline", False, False),
    Stage("Needs Analysis", 20, "Pipeline", False, False),
    Stage("Value Proposition", 50, "Pipeline", False, False),
    Stage("Id. Decision Makers", 60, "Pipeline", False, False),
    Stage("Perception Analysis", 70, "Pipeline", False, False),
    Stage("Proposal/Price Quote", 75, "Pipeline", False, False),
    Stage("Negotiation/Review", 90, "Pipeline", False, False),
    Stage("Closed Won", 100, "Closed", True, True),
    Stage("Closed Lost", 0, "Omitted", True, False),
)}
FORECAST_CATEGORY = {"Omitted": "Omitted", "Pipeline": "Pipeline", "Best Case": "BestCase",
                     "Commit": "Forecast", "Closed": "Closed"}
CASE_STATUSES = ("New", "Working", "Escalated", "Closed")
CLOSED_CASE_STATUSES = frozenset({"Closed"})
TASK_STATUSES = ("Not Started", "In Progress", "Completed", "Waiting on someone else", "Deferred")
CLOSED_TASK_STATUSES = frozenset({"Completed"})
TASK_TYPES = ("Call", "Email", "Meeting", "Other")
JOURNEY_TASK_TYPES = ("Survey", "Referral", "Review")
OCR_ROLES = ("Business User", "Decision Maker", "Economic Buyer", "Economic Decision Maker", "Evaluator",
             "Executive Sponsor", "Influencer", "Technical Buyer", "Other")
EMAIL_STATUSES = ("0", "1", "2", "3", "4", "5")
EMAIL_STATUS_LABELS = ("New", "Read", "Replied", "Sent", "Forwarded", "Draft")

#: polymorphic relationships (Who, What, RelatedTo, Owner of Lead/Case) expose the "Name" pseudo-object
NAME_FIELDS = ("Id", "Name", "Type", "Alias", "Email", "FirstName", "LastName", "IsActive", "Phone",
               "Title", "Username")


# ------------------------------------------------------------------------------------------------ builders
def _text(name: str, label: str, length: int = 255, **kw: Any) -> Field:
    return Field(name, kw.pop("type", "string"), label, length, **kw)


def _area(name: str, label: str, length: int = 32000, **kw: Any) -> Field:
    long = length > 255
    return Field(name, "textarea", label, length, filterable=not long, sortable=not long, **kw)


def _pick(name: str, label: str, values: tuple[str, ...], length: int = 255, **kw: Any) -> Field:
    return Field(name, "picklist", label, length, picklist=values, **kw)


def _ref(name: str, label: str, targets: tuple[str, ...], relationship: str, **kw: Any) -> Field:
    return Field(name, "reference", label, 18, reference_to=targets, relationship=relationship, **kw)


def _bool(name: str, label: str, *, default: bool = False, **kw: Any) -> Field:
    return Field(name, "boolean", label, nillable=False, defaulted=True, default=default, **kw)


def _num(name: str, label: str, kind: str = "double", precision: int = 18, scale: int = 2, **kw: Any) -> Field:
    return Field(name, kind, label, precision=precision, scale=scale, **kw)


def _dt(name: str, label: str, **kw: Any) -> Field:
    return Field(name, "datetime", label, **kw)


def _date(name: str, label: str, **kw: Any) -> Field:
    return Field(name, "date", label, **kw)


def _readonly(spec: Field) -> Field:
    return replace(spec, createable=False, updateable=False)


def _create_only(spec: Field) -> Field:
    return replace(spec, updateable=False)


def _id() -> Field:
    return Field("Id", "id", "Record ID", 18, nillable=False, createable=False, updateable=False,
                 defaulted=True, id_lookup=True)


def _is_deleted() -> Field:
    return _readonly(_bool("IsDeleted", "Deleted"))


def _master(sobject: str) -> Field:
    return _readonly(_ref("MasterRecordId", "Master Record ID", (sobject,), "MasterRecord"))


def _owner(targets: tuple[str, ...] = ("User",)) -> Field:
    return Field("OwnerId", "reference", "Owner ID", 18, nillable=False, defaulted=True, reference_to=targets,
                 relationship="Owner")


def _audit() -> list[Field]:
    return [
        _readonly(Field("CreatedDate", "datetime", "Created Date", nillable=False, defaulted=True)),
        _readonly(_ref("CreatedById", "Created By ID", ("User",), "CreatedBy", nillable=False, defaulted=True)),
        _readonly(Field("LastModifiedDate", "datetime", "Last Modified Date", nillable=False, defaulted=True)),
        _readonly(_ref("LastModifiedById", "Last Modified By ID", ("User",), "LastModifiedBy", nillable=False,
                       defaulted=True)),
        _readonly(Field("SystemModstamp", "datetime", "System Modstamp", nillable=False, defaulted=True)),
    ]


def _person_name(first_len: int = 40) -> list[Field]:
    return [
        _text("LastName", "Last Name", 80, nillable=False),
        _text("FirstName", "First Name", first_len),
        _pick("Salutation", "Salutation", SALUTATIONS, 40),
        _readonly(_text("Name", "Full Name", 121, name_field=True)),
    ]


def _address(prefix: str, label: str) -> list[Field]:
    return [
        _area(f"{prefix}Street", f"{label} Street", 255),
        _text(f"{prefix}City", f"{label} City", 40),
        _text(f"{prefix}State", f"{label} State/Province", 80),
        _text(f"{prefix}PostalCode", f"{label} Zip/Postal Code", 20),
        _text(f"{prefix}Country", f"{label} Country", 80),
    ]


def _journey_fields() -> list[Field]:
    return [
        _text("Journey_Stage__c", "Journey Stage", 40, custom=True),
        _text("Journey_Segment__c", "Journey Segment", 40, custom=True),
        _dt("Journey_Stage_Entered_At__c", "Journey Stage Entered At", custom=True),
        _dt("Last_Interaction_At__c", "Last Interaction At", custom=True),
        _text("Last_Interaction_Channel__c", "Last Interaction Channel", 40, custom=True),
    ]


def _external_id_field() -> Field:
    return _text("External_Id__c", "External Id", 255, custom=True, external_id=True, unique=True,
                 id_lookup=True)


def _fields(specs: list[Field]) -> dict[str, Field]:
    return {spec.name: spec for spec in specs}


WHO = ("Contact", "Lead")
WHAT = ("Account", "Opportunity", "Case")


@cache
def build_schema(custom_fields: bool = True) -> dict[str, SObjectType]:
    """The org's sObjects by name. Cached: the result is shared and must not be mutated."""
    journey = _journey_fields() if custom_fields else []
    ext_id = [_external_id_field()] if custom_fields else []
    task_types = TASK_TYPES + JOURNEY_TASK_TYPES if custom_fields else TASK_TYPES
    activity_custom = ext_id + ([
        _num("Survey_Score__c", "Survey Score", precision=18, scale=0, custom=True),
        _num("Review_Rating__c", "Review Rating", precision=18, scale=0, custom=True),
    ] if custom_fields else [])

    contact = SObjectType("Contact", "Contact", "Contacts", "003", _fields([
        _id(), _is_deleted(), _master("Contact"),
        _ref("AccountId", "Account ID", ("Account",), "Account"),
        *_person_name(),
        *_address("Mailing", "Mailing"),
        _text("Phone", "Business Phone", 40, type="phone"),
        _text("MobilePhone", "Mobile Phone", 40, type="phone"),
        _text("HomePhone", "Home Phone", 40, type="phone"),
        _text("Email", "Email", 80, type="email", id_lookup=True),
        _text("Title", "Title", 128),
        _text("Department", "Department", 80),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _date("Birthdate", "Birthdate"),
        _area("Description", "Contact Description"),
        _bool("HasOptedOutOfEmail", "Email Opt Out"),
        _bool("DoNotCall", "Do Not Call"),
        _owner(),
        *_audit(),
        _readonly(_date("LastActivityDate", "Last Activity")),
        _readonly(_dt("EmailBouncedDate", "Email Bounced Date")),
        *journey,
    ]), mergeable=True)

    lead = SObjectType("Lead", "Lead", "Leads", "00Q", _fields([
        _id(), _is_deleted(), _master("Lead"),
        *_person_name(),
        _text("Title", "Title", 128),
        _text("Company", "Company", 255, nillable=False),
        *_address("", ""),
        _text("Phone", "Phone", 40, type="phone"),
        _text("MobilePhone", "Mobile Phone", 40, type="phone"),
        _text("Email", "Email", 80, type="email", id_lookup=True),
        _text("Website", "Website", 255, type="url"),
        _area("Description", "Description"),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        Field("Status", "picklist", "Status", 255, nillable=False, defaulted=True, default=LEAD_STATUSES[0],
              picklist=LEAD_STATUSES, restricted=True),
        _pick("Industry", "Industry", INDUSTRIES),
        _pick("Rating", "Rating", ("Hot", "Warm", "Cold")),
        _num("AnnualRevenue", "Annual Revenue", "currency"),
        _num("NumberOfEmployees", "Employees", "int", precision=8, scale=0),
        _owner(("User",)),
        _bool("HasOptedOutOfEmail", "Email Opt Out"),
        _create_only(_bool("IsConverted", "Converted")),
        _readonly(_date("ConvertedDate", "Converted Date")),
        _readonly(_ref("ConvertedAccountId", "Converted Account ID", ("Account",), "ConvertedAccount")),
        _readonly(_ref("ConvertedContactId", "Converted Contact ID", ("Contact",), "ConvertedContact")),
        _readonly(_ref("ConvertedOpportunityId", "Converted Opportunity ID", ("Opportunity",),
                       "ConvertedOpportunity")),
        _readonly(_bool("IsUnreadByOwner", "Unread By Owner")),
        *_audit(),
        _readonly(_date("LastActivityDate", "Last Activity")),
        _bool("DoNotCall", "Do Not Call"),
        *journey,
    ]), mergeable=True)

    account = SObjectType("Account", "Account", "Accounts", "001", _fields([
        _id(), _is_deleted(), _master("Account"),
        _text("Name", "Account Name", 255, nillable=False, name_field=True, id_lookup=True),
        _pick("Type", "Account Type", ACCOUNT_TYPES),
        _ref("ParentId", "Parent Account ID", ("Account",), "Parent"),
        *_address("Billing", "Billing"),
        *_address("Shipping", "Shipping"),
        _text("Phone", "Account Phone", 40, type="phone"),
        _text("Fax", "Account Fax", 40, type="phone"),
        _text("Website", "Website", 255, type="url"),
        _pick("Industry", "Industry", INDUSTRIES),
        _num("AnnualRevenue", "Annual Revenue", "currency"),
        _num("NumberOfEmployees", "Employees", "int", precision=8, scale=0),
        _area("Description", "Account Description"),
        _pick("AccountSource", "Account Source", LEAD_SOURCES),
        _owner(),
        *_audit(),
        _readonly(_date("LastActivityDate", "Last Activity")),
    ]), mergeable=True)

    opportunity = SObjectType("Opportunity", "Opportunity", "Opportunities", "006", _fields([
        _id(), _is_deleted(),
        _ref("AccountId", "Account ID", ("Account",), "Account"),
        _bool("IsPrivate", "Private"),
        _text("Name", "Name", 120, nillable=False, name_field=True),
        _area("Description", "Description"),
        Field("StageName", "picklist", "Stage", 255, nillable=False, picklist=tuple(STAGES), restricted=True),
        _num("Amount", "Amount", "currency"),
        Field("Probability", "percent", "Probability (%)", defaulted=True, precision=3, scale=0),
        _readonly(_num("ExpectedRevenue", "Expected Amount", "currency", calculated=True)),
        _date("CloseDate", "Close Date", nillable=False),
        _pick("Type", "Opportunity Type", OPPORTUNITY_TYPES),
        _text("NextStep", "Next Step", 255),
        _pick("LeadSource", "Lead Source", LEAD_SOURCES),
        _readonly(_bool("IsClosed", "Closed")),
        _readonly(_bool("IsWon", "Won")),
        _readonly(_pick("ForecastCategory", "Forecast Category", tuple(FORECAST_CATEGORY.values()), 40)),
        Field("ForecastCategoryName", "picklist", "Forecast Category", 255, defaulted=True,
              picklist=tuple(FORECAST_CATEGORY)),
        _owner(),
        *_audit(),
        _readonly(_date("LastActivityDate", "Last Activity")),
    ]))

    contact_role = SObjectType("OpportunityContactRole", "Opportunity Contact Role",
                               "Opportunity Contact Roles", "00K", _fields([
        _id(),
        _create_only(_ref("OpportunityId", "Opportunity ID", ("Opportunity",), "Opportunity", nillable=False,
                          cascade_delete=True)),
        _ref("ContactId", "Contact ID", ("Contact",), "Contact", nillable=False, cascade_delete=True),
        _pick("Role", "Role", OCR_ROLES, 40),
        _bool("IsPrimary", "Primary"),
        *_audit(),
        _is_deleted(),
    ]))

    case = SObjectType("Case", "Case", "Cases", "500", _fields([
        _id(), _is_deleted(), _master("Case"),
        _readonly(_text("CaseNumber", "Case Number", 30, auto_number=True, name_field=True, nillable=False,
                        defaulted=True)),
        _ref("ContactId", "Contact ID", ("Contact",), "Contact"),
        _ref("AccountId", "Account ID", ("Account",), "Account"),
        _ref("ParentId", "Parent Case ID", ("Case",), "Parent"),
        _text("SuppliedName", "Name", 80),
        _text("SuppliedEmail", "Email Address", 80, type="email"),
        _text("SuppliedPhone", "Phone", 40),
        _text("SuppliedCompany", "Company", 80),
        _pick("Type", "Case Type", ("Mechanical", "Electrical", "Electronic", "Structural", "Other")),
        Field("Status", "picklist", "Status", 255, nillable=True, defaulted=True, default="New",
              picklist=CASE_STATUSES, restricted=True),
        _pick("Reason", "Case Reason", ("Installation", "Equipment Complexity", "Performance", "Breakdown",
                                        "Equipment Design", "Feedback", "Other")),
        _pick("Origin", "Case Origin", ("Phone", "Email", "Web", "Chat")),
        _text("Subject", "Subject", 255),
        Field("Priority", "picklist", "Priority", 255, defaulted=True, default="Medium",
              picklist=("High", "Medium", "Low")),
        _area("Description", "Description"),
        _readonly(_bool("IsClosed", "Closed")),
        _readonly(_dt("ClosedDate", "Closed Date")),
        _bool("IsEscalated", "Escalated"),
        _owner(("User",)),
        *_audit(),
    ]), mergeable=True)

    task = SObjectType("Task", "Task", "Tasks", "00T", _fields([
        _id(),
        _ref("WhoId", "Name ID", WHO, "Who"),
        _ref("WhatId", "Related To ID", WHAT, "What"),
        _text("Subject", "Subject", 255, type="combobox"),
        _date("ActivityDate", "Due Date Only"),
        Field("Status", "picklist", "Status", 255, nillable=False, defaulted=True, default="Not Started",
              picklist=TASK_STATUSES, restricted=True),
        Field("Priority", "picklist", "Priority", 255, nillable=False, defaulted=True, default="Normal",
              picklist=("High", "Normal", "Low")),
        _readonly(_bool("IsHighPriority", "High Priority")),
        _owner(),
        _area("Description", "Description"),
        _pick("Type", "Type", task_types, 40),
        _is_deleted(),
        _readonly(_ref("AccountId", "Account ID", ("Account",), "Account")),
        _readonly(_bool("IsClosed", "Closed")),
        *_audit(),
        _readonly(_bool("IsArchived", "Archived")),
        Field("CallDurationInSeconds", "int", "Call Duration", precision=8),
        _pick("CallType", "Call Type", ("Internal", "Inbound", "Outbound"), 40),
        _text("CallDisposition", "Call Result", 255),
        _text("CallObject", "Call Object Identifier", 255),
        _dt("ReminderDateTime", "Reminder Date/Time"),
        _bool("IsReminderSet", "Reminder Set"),
        _readonly(_dt("CompletedDateTime", "Completed Date/Time")),
        Field("TaskSubtype", "picklist", "Task Subtype", 40, updateable=False, defaulted=True, default="Task",
              picklist=("Task", "Email", "ListEmail", "Cadence", "Call", "LinkedIn")),
        *activity_custom,
    ]))

    event = SObjectType("Event", "Event", "Events", "00U", _fields([
        _id(),
        _ref("WhoId", "Name ID", WHO, "Who"),
        _ref("WhatId", "Related To ID", WHAT, "What"),
        _text("Subject", "Subject", 255, type="combobox"),
        _text("Location", "Location", 255),
        _bool("IsAllDayEvent", "All-Day Event"),
        _dt("ActivityDateTime", "Due Date Time"),
        _date("ActivityDate", "Due Date Only"),
        Field("DurationInMinutes", "int", "Duration", precision=8),
        _dt("StartDateTime", "Start Date Time"),
        _dt("EndDateTime", "End Date Time"),
        _readonly(_date("EndDate", "End")),
        _area("Description", "Description"),
        _readonly(_ref("AccountId", "Account ID", ("Account",), "Account")),
        _owner(),
        _pick("Type", "Type", TASK_TYPES, 40),
        _bool("IsPrivate", "Private"),
        Field("ShowAs", "picklist", "Show Time As", 40, defaulted=True, default="Busy",
              picklist=("Busy", "OutOfOffice", "Free")),
        _is_deleted(),
        *_audit(),
        _readonly(_bool("IsArchived", "Archived")),
        _bool("IsReminderSet", "Reminder Set"),
        _dt("ReminderDateTime", "Reminder Date/Time"),
        Field("EventSubtype", "picklist", "Event Subtype", 40, updateable=False, defaulted=True, default="Event",
              picklist=("Event",)),
        *ext_id,
    ]))

    email = SObjectType("EmailMessage", "Email Message", "Email Messages", "02s", _fields([
        _id(),
        _ref("ParentId", "Case ID", ("Case",), "Parent"),
        _ref("ActivityId", "Activity ID", ("Task",), "Activity"),
        *_audit(),
        _area("TextBody", "Text Body", 131072),
        _area("HtmlBody", "HTML Body", 131072),
        _area("Headers", "Headers", 32000),
        _text("Subject", "Subject", 3000),
        _text("FromName", "From Name", 1000),
        _text("FromAddress", "From Address", 1000, type="email"),
        _text("ValidatedFromAddress", "From", 255, type="picklist"),
        _text("ToAddress", "To Address", 4000),
        _text("CcAddress", "CC Address", 4000),
        _text("BccAddress", "BCC Address", 4000),
        _create_only(_bool("Incoming", "Is Incoming")),
        _readonly(_bool("HasAttachment", "Has Attachment")),
        Field("Status", "picklist", "Status", 40, nillable=False, picklist=EMAIL_STATUSES,
              picklist_labels=EMAIL_STATUS_LABELS, restricted=True),
        _dt("MessageDate", "Message Date"),
        _is_deleted(),
        _ref("ReplyToEmailMessageId", "Email Message ID", ("EmailMessage",), "ReplyToEmailMessage"),
        _bool("IsExternallyVisible", "Is Externally Visible"),
        _text("MessageIdentifier", "Message ID", 998),
        _text("ThreadIdentifier", "Thread ID", 998),
        _ref("RelatedToId", "Related To ID", ("Account", "Opportunity", "Case", "Contact", "Lead"), "RelatedTo"),
    ]))

    user = SObjectType("User", "User", "Users", "005", _fields([
        _id(),
        _text("Username", "Username", 80, nillable=False, unique=True, id_lookup=True),
        _text("LastName", "Last Name", 80, nillable=False),
        _text("FirstName", "First Name", 40),
        _readonly(_text("Name", "Full Name", 121, name_field=True)),
        _text("CompanyName", "Company Name", 80),
        _text("Title", "Title", 80),
        _text("Department", "Department", 80),
        _text("Email", "Email", 128, type="email", nillable=False),
        _text("Phone", "Phone", 40, type="phone"),
        _text("Alias", "Alias", 8, nillable=False),
        _bool("IsActive", "Active", default=True),
        _text("TimeZoneSidKey", "Time Zone", 40, type="picklist", nillable=False),
        _text("LocaleSidKey", "Locale", 40, type="picklist", nillable=False),
        _text("EmailEncodingKey", "Email Encoding", 40, type="picklist", nillable=False),
        _text("LanguageLocaleKey", "Language", 40, type="picklist", nillable=False),
        _ref("ProfileId", "Profile ID", ("Profile",), "Profile", nillable=False),
        _readonly(_pick("UserType", "User Type", ("Standard", "PowerPartner", "CsnOnly", "Guest"), 40)),
        *_audit(),
    ]), deletable=False)

    return {sobject.name: sobject for sobject in (
        contact, lead, account, opportunity, contact_role, case, task, event, email, user)}


#: child relationship names Salesforce gives the standard lookups (parent object, child object, field)
CHILD_RELATIONSHIPS = {
    ("Account", "Contact", "AccountId"): "Contacts",
    ("Account", "Opportunity", "AccountId"): "Opportunities",
    ("Account", "Case", "AccountId"): "Cases",
    ("Account", "Task", "WhatId"): "Tasks",
    ("Account", "Event", "WhatId"): "Events",
    ("Account", "Account", "ParentId"): "ChildAccounts",
    ("Contact", "Case", "ContactId"): "Cases",
    ("Contact", "OpportunityContactRole", "ContactId"): "OpportunityContactRoles",
    ("Contact", "Task", "WhoId"): "Tasks",
    ("Contact", "Event", "WhoId"): "Events",
    ("Lead", "Task", "WhoId"): "Tasks",
    ("Lead", "Event", "WhoId"): "Events",
    ("Opportunity", "OpportunityContactRole", "OpportunityId"): "OpportunityContactRoles",
    ("Opportunity", "Task", "WhatId"): "Tasks",
    ("Opportunity", "Event", "WhatId"): "Events",
    ("Case", "EmailMessage", "ParentId"): "EmailMessages",
    ("Case", "Task", "WhatId"): "Tasks",
    ("Case", "Event", "WhatId"): "Events",
    ("Case", "Case", "ParentId"): "Cases",
}


def describe_sobject(schema: dict[str, SObjectType], name: str, version: str) -> dict[str, Any]:
    """`GET /sobjects/{name}/describe`."""
    sobject = schema[name]
    children = []
    for child in schema.values():
        for spec in child.fields.values():
            if name in spec.reference_to and spec.name != "MasterRecordId":
                children.append({
                    "cascadeDelete": spec.cascade_delete, "childSObject": child.name,
                    "deprecatedAndHidden": False, "field": spec.name, "junctionIdListNames": [],
                    "junctionReferenceTo": [],
                    "relationshipName": CHILD_RELATIONSHIPS.get((name, child.name, spec.name)),
                    "restrictedDelete": False,
                })
    body = sobject.global_entry(version)
    body.update({
        "actionOverrides": [], "childRelationships": children, "compactLayoutable": True,
        "defaultImplementation": None, "extendedBy": None, "extendsInterfaces": None,
        "fields": [spec.describe() for spec in sobject.fields.values()],
        "implementedBy": None, "implementsInterfaces": None, "listviewable": None, "lookupLayoutable": None,
        "namedLayoutInfos": [], "networkScopeFieldName": None,
        "recordTypeInfos": [], "searchLayoutable": True, "supportedScopes": [
            {"label": "All " + sobject.label_plural.lower(), "name": "everything"}],
        "sobjectDescribeOption": "FULL",
    })
    body["urls"].update({"layouts": f"/services/data/v{version}/sobjects/{name}/describe/layouts"})
    return body


def describe_global(schema: dict[str, SObjectType], version: str) -> dict[str, Any]:
    """`GET /sobjects`."""
    return {"encoding": "UTF-8", "maxBatchSize": 200,
            "sobjects": [sobject.global_entry(version) for sobject in schema.values()]}
