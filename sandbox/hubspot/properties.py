"""Property definitions: HubSpot's standard properties per object type, property groups, custom properties,
and how a written value is checked and normalised against its definition.

Definitions are kept in the Properties API JSON shape (`name, label, type, fieldType, groupName, options, …`)
so the API serves them as stored. The built-in set covers every property the hub reads
(docs/crm-conventions.md) plus HubSpot's common defaults, with HubSpot's `type` for each.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from sandbox.hubspot.errors import HubSpotError, validation
from sandbox.hubspot.util import date_str, iso_ms, parse_number, parse_time_ms

BUILTIN_TIMESTAMP = "2019-08-06T02:41:52.000Z"

TYPES = ("string", "number", "date", "datetime", "enumeration", "bool", "phone_number")
FIELD_TYPES = ("text", "textarea", "number", "date", "select", "radio", "checkbox", "booleancheckbox",
               "phonenumber", "html", "file", "calculation_equation")
#: which fieldTypes each type accepts
FIELD_TYPES_BY_TYPE: dict[str, tuple[str, ...]] = {
    "string": ("text", "textarea", "html", "file", "phonenumber"),
    "number": ("number", "calculation_equation"),
    "date": ("date",),
    "datetime": ("date",),
    "enumeration": ("select", "radio", "checkbox", "booleancheckbox"),
    "bool": ("booleancheckbox",),
    "phone_number": ("phonenumber",),
}
NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]*")
EMAIL_PATTERN = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s.]+")
MAX_STRING = 65_536
MAX_UNIQUE_PER_OBJECT = 10


def _options(values: Iterable[str | tuple[str, str]]) -> list[dict[str, Any]]:
    out = []
    for order, value in enumerate(values):
        val, label = value if isinstance(value, tuple) else (value, value.replace("_", " ").title())
        out.append({"label": label, "value": val, "displayOrder": order, "hidden": False})
    return out


def _prop(name: str, label: str, type_: str, field_type: str, group: str, options: Iterable[Any] = (), *,
          read_only: bool = False, calculated: bool = False, external: bool = False, unique: bool = False,
          referenced: str | None = None) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "name": name, "label": label, "type": type_, "fieldType": field_type, "description": "",
        "groupName": group, "options": _options(options), "displayOrder": -1, "calculated": calculated,
        "externalOptions": external, "hasUniqueValue": unique, "hidden": False, "hubspotDefined": True,
        "modificationMetadata": {"archivable": False, "readOnlyDefinition": True,
                                 "readOnlyValue": read_only or calculated},
        "formField": False, "dataSensitivity": "non_sensitive", "archived": False,
        "createdAt": BUILTIN_TIMESTAMP, "updatedAt": BUILTIN_TIMESTAMP,
    }
    if type_ == "bool":
        definition["options"] = _options((("true", "Yes"), ("false", "No")))
    if referenced:
        definition["referencedObjectType"] = referenced
    return definition


def _text(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return _prop(name, label, "string", "text", group, **kw)


def _area(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return _prop(name, label, "string", "textarea", group, **kw)


def _html(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return _prop(name, label, "string", "html", group, **kw)


def _num(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return _prop(name, label, "number", "number", group, **kw)


def _dt(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return _prop(name, label, "datetime", "date", group, **kw)


def _date(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return _prop(name, label, "date", "date", group, **kw)


def _enum(name: str, label: str, group: str, options: Iterable[Any], field: str = "select",
          **kw: Any) -> dict[str, Any]:
    return _prop(name, label, "enumeration", field, group, options, **kw)


def _bool(name: str, label: str, group: str, **kw: Any) -> dict[str, Any]:
    return _prop(name, label, "bool", "booleancheckbox", group, **kw)


def _phone(name: str, label: str, group: str) -> dict[str, Any]:
    return _prop(name, label, "string", "phonenumber", group)


def _owner(group: str) -> dict[str, Any]:
    return _enum("hubspot_owner_id", "Owner", group, (), external=True, referenced="OWNER")


def _common(group: str, created: str, modified: str, *, mergeable: bool) -> list[dict[str, Any]]:
    props = [
        _num("hs_object_id", "Record ID", group, read_only=True),
        _dt(created, "Create Date", group),
        _dt(modified, "Last Modified Date", group, read_only=True),
        _owner(group),
        _num("hs_created_by_user_id", "Created by user ID", group, read_only=True),
        _num("hs_updated_by_user_id", "Updated by user ID", group, read_only=True),
    ]
    if mergeable:
        props.append(_enum("hs_merged_object_ids", "Merged record IDs", group, (), "checkbox",
                           read_only=True))
    return props


LIFECYCLE = ("subscriber", "lead", "marketingqualifiedlead", "salesqualifiedlead", "opportunity", "customer",
             "evangelist", "other")
CURRENCIES = ("USD", "EUR", "GBP", "ILS", "CAD", "AUD", "JPY", "CHF", "SEK", "NOK", "DKK", "PLN", "CZK",
              "INR", "BRL", "MXN", "SGD", "HKD", "NZD", "ZAR", "CNY", "KRW")
INDUSTRIES = ("ACCOUNTING", "AIRLINES_AVIATION", "APPAREL_FASHION", "AUTOMOTIVE", "BANKING",
              "BIOTECHNOLOGY", "BUILDING_MATERIALS", "CHEMICALS", "COMPUTER_HARDWARE", "COMPUTER_SOFTWARE",
              "CONSTRUCTION", "CONSUMER_ELECTRONICS", "CONSUMER_GOODS", "CONSUMER_SERVICES", "E_LEARNING",
              "EDUCATION_MANAGEMENT", "ENTERTAINMENT", "FINANCIAL_SERVICES", "FOOD_BEVERAGES",
              "GOVERNMENT_ADMINISTRATION", "HEALTH_WELLNESS_AND_FITNESS", "HOSPITAL_HEALTH_CARE",
              "HOSPITALITY", "INFORMATION_TECHNOLOGY_AND_SERVICES", "INSURANCE", "INTERNET", "LEGAL_SERVICES",
              "LOGISTICS_AND_SUPPLY_CHAIN", "MANAGEMENT_CONSULTING", "MARKETING_AND_ADVERTISING",
              "MEDICAL_DEVICES", "NONPROFIT_ORGANIZATION_MANAGEMENT", "PHARMACEUTICALS", "REAL_ESTATE",
              "RETAIL", "TELECOMMUNICATIONS", "TRANSPORTATION_TRUCKING_RAILROAD", "UTILITIES", "WHOLESALE")


def _contacts() -> list[dict[str, Any]]:
    g = "contactinformation"
    return [*_common(g, "createdate", "lastmodifieddate", mergeable=True),
            _text("email", "Email", g), _text("firstname", "First Name", g), _text("lastname", "Last Name", g),
            _phone("phone", "Phone Number", g), _phone("mobilephone", "Mobile Phone Number", g),
            _text("company", "Company Name", g), _text("website", "Website URL", g),
            _text("jobtitle", "Job Title", g), _text("address", "Street Address", g), _text("city", "City", g),
            _text("state", "State/Region", g), _text("zip", "Postal Code", g), _text("country", "Country", g),
            _enum("lifecyclestage", "Lifecycle Stage", g, LIFECYCLE, "radio"),
            _enum("hs_lead_status", "Lead Status", "sales_properties",
                  ("NEW", "OPEN", "IN_PROGRESS", "OPEN_DEAL", "UNQUALIFIED", "ATTEMPTED_TO_CONTACT",
                   "CONNECTED", "BAD_TIMING"), "radio"),
            _enum("hs_additional_emails", "Additional email addresses", g, (), "checkbox", read_only=True),
            _num("associatedcompanyid", "Primary Associated Company ID", g, read_only=True),
            _dt("first_conversion_date", "First Conversion Date", "conversioninformation", calculated=True),
            _text("first_conversion_event_name", "First Conversion", "conversioninformation",
                  calculated=True),
            _dt("recent_conversion_date", "Recent Conversion Date", "conversioninformation", calculated=True),
            _text("recent_conversion_event_name", "Recent Conversion", "conversioninformation",
                  calculated=True),
            _num("num_conversion_events", "Number of Form Submissions", "conversioninformation",
                 calculated=True),
            _num("hs_feedback_last_nps_rating", "Last NPS survey rating", "feedbackinformation"),
            _dt("hs_feedback_last_survey_date", "Last NPS survey date", "feedbackinformation"),
            _text("salesforcecontactid", "Salesforce Contact ID", "salesforceinformation"),
            _text("salesforceleadid", "Salesforce Lead ID", "salesforceinformation"),
            _enum("hs_analytics_source", "Original Source", "analyticsinformation",
                  ("ORGANIC_SEARCH", "PAID_SEARCH", "EMAIL_MARKETING", "SOCIAL_MEDIA", "REFERRALS",
                   "OTHER_CAMPAIGNS", "DIRECT_TRAFFIC", "OFFLINE", "PAID_SOCIAL"), read_only=True),
            _num("hs_analytics_num_page_views", "Number of Pageviews", "analyticsinformation",
                 calculated=True),
            _dt("notes_last_updated", "Last Activity Date", "sales_properties", read_only=True)]


def _companies() -> list[dict[str, Any]]:
    g = "companyinformation"
    return [*_common(g, "createdate", "hs_lastmodifieddate", mergeable=True),
            _text("name", "Company name", g), _text("domain", "Company Domain Name", g),
            _text("website", "Website URL", g), _enum("industry", "Industry", g, INDUSTRIES),
            _phone("phone", "Phone Number", g), _text("city", "City", g), _text("state", "State/Region", g),
            _text("country", "Country/Region", g), _num("numberofemployees", "Number of Employees", g),
            _num("annualrevenue", "Annual Revenue", g), _area("description", "Description", g),
            _enum("lifecyclestage", "Lifecycle Stage", g, LIFECYCLE, "radio")]


def _deals() -> list[dict[str, Any]]:
    g = "dealinformation"
    return [*_common(g, "createdate", "hs_lastmodifieddate", mergeable=True),
            _text("dealname", "Deal Name", g), _num("amount", "Amount", g),
            _enum("deal_currency_code", "Currency", g, CURRENCIES),
            _enum("pipeline", "Pipeline", g, ()), _enum("dealstage", "Deal Stage", g, ()),
            _dt("closedate", "Close Date", g),
            _enum("dealtype", "Deal Type", g, (("newbusiness", "New Business"),
                                               ("existingbusiness", "Existing Business"))),
            _enum("hs_priority", "Priority", g, ("low", "medium", "high")),
            _area("description", "Deal Description", g),
            _text("closed_lost_reason", "Closed Lost Reason", g),
            _text("closed_won_reason", "Closed Won Reason", g),
            _bool("hs_is_closed", "Is Deal Closed?", g, calculated=True),
            _bool("hs_is_closed_won", "Is Closed Won", g, calculated=True),
            _num("hs_deal_stage_probability", "Deal probability", g, calculated=True)]


def _tickets() -> list[dict[str, Any]]:
    g = "ticketinformation"
    return [*_common(g, "createdate", "hs_lastmodifieddate", mergeable=True),
            _text("subject", "Ticket name", g), _area("content", "Ticket description", g),
            _enum("hs_pipeline", "Pipeline", g, ()), _enum("hs_pipeline_stage", "Ticket status", g, ()),
            _enum("hs_ticket_priority", "Priority", g, ("LOW", "MEDIUM", "HIGH", "URGENT")),
            _enum("hs_ticket_category", "Category", g,
                  ("PRODUCT_ISSUE", "BILLING_ISSUE", "FEATURE_REQUEST", "GENERAL_INQUIRY"), "checkbox"),
            _enum("source_type", "Source", g, ("CHAT", "EMAIL", "FORM", "PHONE")),
            _dt("closed_date", "Close date", g),
            _bool("hs_is_closed", "Is ticket closed?", g, calculated=True)]


def _engagement(group: str, extra: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [*_common(group, "hs_createdate", "hs_lastmodifieddate", mergeable=False),
            _dt("hs_timestamp", "Activity date", group), *extra]


def _notes() -> list[dict[str, Any]]:
    g = "noteinformation"
    return _engagement(g, [_html("hs_note_body", "Note body", g),
                           _enum("hs_attachment_ids", "Attachment IDs", g, (), "checkbox")])


def _calls() -> list[dict[str, Any]]:
    g = "callinformation"
    return _engagement(g, [
        _text("hs_call_title", "Call Title", g), _html("hs_call_body", "Call notes", g),
        _enum("hs_call_direction", "Call direction", g, ("INBOUND", "OUTBOUND")),
        _enum("hs_call_status", "Call status", g,
              ("BUSY", "CALLING_CRM_USER", "CANCELED", "COMPLETED", "CONNECTING", "FAILED", "IN_PROGRESS",
               "MISSED", "NO_ANSWER", "QUEUED", "RINGING")),
        _num("hs_call_duration", "Call duration", g), _text("hs_call_disposition", "Call outcome", g),
        _text("hs_call_from_number", "From number", g), _text("hs_call_to_number", "To number", g)])


def _meetings() -> list[dict[str, Any]]:
    g = "meetinginformation"
    return _engagement(g, [
        _text("hs_meeting_title", "Meeting name", g), _html("hs_meeting_body", "Meeting description", g),
        _dt("hs_meeting_start_time", "Start time", g), _dt("hs_meeting_end_time", "End time", g),
        _enum("hs_meeting_outcome", "Meeting outcome", g,
              ("SCHEDULED", "COMPLETED", "RESCHEDULED", "NO_SHOW", "CANCELED")),
        _text("hs_meeting_location", "Location", g),
        _html("hs_internal_meeting_notes", "Internal meeting notes", g)])


def _tasks() -> list[dict[str, Any]]:
    g = "taskinformation"
    return _engagement(g, [
        _text("hs_task_subject", "Task Title", g), _html("hs_task_body", "Task notes", g),
        _enum("hs_task_status", "Task Status", g,
              ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED")),
        _enum("hs_task_priority", "Priority", g, ("NONE", "LOW", "MEDIUM", "HIGH")),
        _enum("hs_task_type", "Task Type", g,
              ("TODO", "CALL", "EMAIL", "LINKED_IN", "MEETING", "LINKED_IN_CONNECT", "LINKED_IN_MESSAGE")),
        _dt("hs_task_completion_date", "Completed at", g, read_only=True)])


def _emails() -> list[dict[str, Any]]:
    g = "emailinformation"
    return _engagement(g, [
        _text("hs_email_subject", "Email subject", g), _area("hs_email_text", "Email body", g),
        _html("hs_email_html", "Email HTML body", g),
        _enum("hs_email_direction", "Email direction", g, ("EMAIL", "INCOMING_EMAIL", "FORWARDED_EMAIL")),
        _enum("hs_email_status", "Email send status", g, ("BOUNCED", "FAILED", "SCHEDULED", "SENDING", "SENT")),
        _text("hs_email_headers", "Email headers", g)])


BUILTIN_PROPERTIES = {"contacts": _contacts, "companies": _companies, "deals": _deals, "tickets": _tickets,
                      "notes": _notes, "calls": _calls, "meetings": _meetings, "tasks": _tasks,
                      "emails": _emails}

BUILTIN_GROUPS: dict[str, list[tuple[str, str]]] = {
    "contacts": [("contactinformation", "Contact information"), ("emailinformation", "Email information"),
                 ("conversioninformation", "Conversion information"),
                 ("feedbackinformation", "Feedback information"), ("sales_properties", "Sales properties"),
                 ("analyticsinformation", "Web analytics history"),
                 ("salesforceinformation", "Salesforce information")],
    "companies": [("companyinformation", "Company information"),
                  ("analyticsinformation", "Web analytics history"),
                  ("salesforceinformation", "Salesforce information")],
    "deals": [("dealinformation", "Deal information"), ("salesforceinformation", "Salesforce information")],
    "tickets": [("ticketinformation", "Ticket information")],
    "notes": [("noteinformation", "Note information")],
    "calls": [("callinformation", "Call information")],
    "meetings": [("meetinginformation", "Meeting information")],
    "tasks": [("taskinformation", "Task information")],
    "emails": [("emailinformation", "Email information")],
}

#: properties (and their groups) a portal has only with another hub, edition or an integration: Service Hub's
#: customer feedback (`hs_feedback_*`) and the HubSpot–Salesforce integration (`salesforce*`). A `plain`
#: portal (sandbox/common/org.py) has none of them.
EDITION_PROPERTIES: dict[str, frozenset[str]] = {
    "contacts": frozenset({"hs_feedback_last_nps_rating", "hs_feedback_last_survey_date", "salesforcecontactid",
                           "salesforceleadid"}),
}
EDITION_GROUPS = frozenset({"feedbackinformation", "salesforceinformation"})

#: properties whose options come from the pipelines API
PIPELINE_PROPERTIES = {"deals": ("pipeline", "dealstage"), "tickets": ("hs_pipeline", "hs_pipeline_stage")}


class PropertyRegistry:
    """The property definitions and groups of one object type; `plain` leaves out EDITION_PROPERTIES."""

    def __init__(self, object_type: str, *, plain: bool = False) -> None:
        self.object_type = object_type
        self.defs: dict[str, dict[str, Any]] = {d["name"]: d for d in BUILTIN_PROPERTIES[object_type]()}
        for order, definition in enumerate(self.defs.values()):
            definition["displayOrder"] = order
        groups = BUILTIN_GROUPS[object_type]
        if plain:
            for name in EDITION_PROPERTIES.get(object_type, ()):
                del self.defs[name]
            groups = [group for group in groups if group[0] not in EDITION_GROUPS]
        self.archived: dict[str, dict[str, Any]] = {}
        self.groups: dict[str, dict[str, Any]] = {
            name: {"name": name, "label": label, "displayOrder": order, "archived": False}
            for order, (name, label) in enumerate(groups)}
        self._option_values: dict[str, frozenset[str] | None] = {}

    # ------------------------------------------------------------------ lookups
    def get(self, name: str) -> dict[str, Any] | None:
        return self.defs.get(name)

    def type_of(self, name: str) -> str | None:
        definition = self.defs.get(name)
        return definition["type"] if definition else None

    def unique_names(self) -> list[str]:
        return [name for name, d in self.defs.items() if d.get("hasUniqueValue")]

    def option_values(self, name: str) -> frozenset[str] | None:
        """Allowed values of an enumeration, or None when any value is accepted (owner ids, checkbox ids…)."""
        if name not in self._option_values:
            definition = self.defs[name]
            values = frozenset(o["value"] for o in definition.get("options") or [])
            self._option_values[name] = values if values and not definition.get("externalOptions") else None
        return self._option_values[name]

    def set_options(self, name: str, options: list[dict[str, Any]]) -> None:
        self.defs[name]["options"] = options
        self._option_values.pop(name, None)

    # ------------------------------------------------------------------ custom definitions
    def validate_definition(self, body: Any, *, for_update: bool = False) -> dict[str, Any]:
        """Checks a PropertyCreate / PropertyUpdate body; returns the normalised fields."""
        if not isinstance(body, dict):
            raise validation("Invalid input JSON: expected an object")
        if not for_update:
            missing = [key for key in ("name", "label", "type", "fieldType", "groupName") if not body.get(key)]
            if missing:
                raise validation(f"Missing required field(s): {', '.join(missing)}",
                                 errors=[{"message": f"{key} is required", "in": key, "code": "REQUIRED_FIELD"}
                                         for key in missing])
            if not isinstance(body["name"], str) or not NAME_PATTERN.fullmatch(body["name"]):
                raise validation(f"Property name '{body['name']}' is invalid: use lowercase letters, digits and "
                                 "underscores, starting with a letter")
        type_ = body.get("type")
        field_type = body.get("fieldType")
        if type_ is not None and type_ not in TYPES:
            raise validation(f"'{type_}' is not a valid property type; expected one of {', '.join(TYPES)}")
        if field_type is not None and field_type not in FIELD_TYPES:
            raise validation(f"'{field_type}' is not a valid fieldType; expected one of {', '.join(FIELD_TYPES)}")
        if type_ is not None or field_type is not None:
            current = self.defs.get(body.get("name", ""), {})
            type_ = type_ or current.get("type")
            field_type = field_type or current.get("fieldType")
            if field_type not in FIELD_TYPES_BY_TYPE.get(type_, ()):
                raise validation(f"fieldType '{field_type}' is not valid for type '{type_}'; use one of "
                                 f"{', '.join(FIELD_TYPES_BY_TYPE.get(type_, ()))}")
        group = body.get("groupName")
        if group is not None and group not in self.groups:
            raise validation(f"Property group '{group}' does not exist for {self.object_type}")
        options = body.get("options")
        if options is not None:
            if not isinstance(options, list):
                raise validation("options must be a list")
            seen: set[str] = set()
            for option in options:
                if not isinstance(option, dict) or not option.get("label") or option.get("value") in (None, ""):
                    raise validation("Each option needs a label and a value")
                value = str(option["value"])
                if value in seen:
                    raise validation(f"Duplicate option value '{value}'")
                seen.add(value)
        if type_ == "enumeration" and not for_update and not options and not body.get("externalOptions"):
            raise validation("Enumeration properties need at least one option")
        if body.get("hasUniqueValue") and not for_update \
                and len(self.unique_names()) >= MAX_UNIQUE_PER_OBJECT:
            raise validation(f"{self.object_type} already has {MAX_UNIQUE_PER_OBJECT} unique value properties")
        return body

    def create(self, body: dict[str, Any], now_iso: str) -> dict[str, Any]:
        self.validate_definition(body)
        name = body["name"]
        if name in self.defs:
            raise HubSpotError(409, "OBJECT_ALREADY_EXISTS", f"Property named '{name}' already exists.")
        type_ = body["type"]
        options = [{"label": str(o["label"]), "value": str(o["value"]),
                    "displayOrder": int(o.get("displayOrder", index)), "hidden": bool(o.get("hidden", False)),
                    **({"description": o["description"]} if o.get("description") else {})}
                   for index, o in enumerate(body.get("options") or [])]
        if type_ == "bool" and not options:
            options = _options((("true", "Yes"), ("false", "No")))
        definition: dict[str, Any] = {
            "name": name, "label": body["label"], "type": type_, "fieldType": body["fieldType"],
            "description": body.get("description") or "", "groupName": body["groupName"], "options": options,
            "displayOrder": body.get("displayOrder", -1), "calculated": False,
            "externalOptions": bool(body.get("externalOptions", False)),
            "hasUniqueValue": bool(body.get("hasUniqueValue", False)), "hidden": bool(body.get("hidden", False)),
            "modificationMetadata": {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False},
            "formField": bool(body.get("formField", False)),
            "dataSensitivity": body.get("dataSensitivity") or "non_sensitive",
            "createdAt": now_iso, "updatedAt": now_iso, "archived": False,
        }
        for key in ("referencedObjectType", "numberDisplayHint", "textDisplayHint", "showCurrencySymbol",
                    "currencyPropertyName", "calculationFormula"):
            if body.get(key) is not None:
                definition[key] = body[key]
        self.archived.pop(name, None)
        self.defs[name] = definition
        self._option_values.pop(name, None)
        return definition

    def update(self, name: str, body: dict[str, Any], now_iso: str) -> dict[str, Any]:
        definition = self.defs[name]
        if definition.get("hubspotDefined") and any(k in body for k in ("type", "fieldType", "name")):
            raise validation(f"The type of HubSpot-defined property '{name}' cannot be changed")
        self.validate_definition({**body, "name": name}, for_update=True)
        for key in ("label", "description", "groupName", "displayOrder", "hidden", "formField", "type",
                    "fieldType", "numberDisplayHint", "textDisplayHint", "showCurrencySymbol",
                    "currencyPropertyName", "calculationFormula"):
            if key in body and body[key] is not None:
                definition[key] = body[key]
        if body.get("options") is not None:
            definition["options"] = [{"label": str(o["label"]), "value": str(o["value"]),
                                      "displayOrder": int(o.get("displayOrder", i)),
                                      "hidden": bool(o.get("hidden", False))}
                                     for i, o in enumerate(body["options"])]
            self._option_values.pop(name, None)
        definition["updatedAt"] = now_iso
        return definition

    def archive(self, name: str, now_iso: str) -> None:
        definition = self.defs[name]
        if definition.get("hubspotDefined"):
            raise validation(f"HubSpot-defined property '{name}' cannot be archived")
        del self.defs[name]
        self._option_values.pop(name, None)
        self.archived[name] = {**definition, "archived": True, "archivedAt": now_iso}

    def add_seeded(self, definition: dict[str, Any]) -> None:
        """A property definition from the generated world (trusted, completed with defaults)."""
        base = _prop(definition["name"], definition.get("label", definition["name"]),
                     definition.get("type", "string"), definition.get("fieldType", "text"),
                     definition.get("groupName", next(iter(self.groups))))
        base.pop("hubspotDefined")
        base["modificationMetadata"] = {"archivable": True, "readOnlyDefinition": False, "readOnlyValue": False}
        merged = {**base, **definition}
        if merged["groupName"] not in self.groups:
            self.groups[merged["groupName"]] = {"name": merged["groupName"], "label": merged["groupName"],
                                                "displayOrder": -1, "archived": False}
        self.defs[merged["name"]] = merged
        self._option_values.pop(merged["name"], None)

    # ------------------------------------------------------------------ values
    def normalize(self, name: str, raw: Any) -> tuple[str | None, dict[str, str] | None]:
        """A written value → (stored string or None, problem). Problems follow HubSpot's validation results."""
        definition = self.defs.get(name)
        if definition is None:
            return None, {"name": name, "error": "PROPERTY_DOESNT_EXIST",
                          "message": f'Property "{name}" does not exist'}
        if definition["modificationMetadata"].get("readOnlyValue"):
            return None, {"name": name, "error": "READ_ONLY_VALUE",
                          "message": f'"{name}" is a read only property; its value cannot be set.'}
        if raw is None:
            return None, None
        if isinstance(raw, bool):
            value = "true" if raw else "false"
        elif isinstance(raw, (int, float)):
            value = repr(raw) if isinstance(raw, float) else str(raw)
        elif isinstance(raw, str):
            value = raw
        else:
            return None, {"name": name, "error": "INVALID_TYPE",
                          "message": f"{raw!r} is not a valid value for {name}: values are strings"}
        if value == "":
            return None, None
        type_ = definition["type"]
        if type_ == "number":
            if parse_number(value) is None:
                return None, {"name": name, "error": "INVALID_FLOAT",
                              "message": f"{value} was not a valid number."}
            return value.strip(), None
        if type_ == "datetime":
            ms = parse_time_ms(value)
            if ms is None:
                return None, {"name": name, "error": "INVALID_DATETIME",
                              "message": f"{value} was not a valid datetime: use epoch milliseconds or ISO 8601"}
            return iso_ms(ms), None
        if type_ == "date":
            ms = parse_time_ms(value)
            if ms is None or ms % 86_400_000:
                return None, {"name": name, "error": "INVALID_DATE",
                              "message": f"{value} is not a valid date: use YYYY-MM-DD or epoch milliseconds "
                                         "at midnight UTC"}
            return date_str(ms), None
        if type_ == "bool":
            lowered = value.strip().lower()
            if lowered not in ("true", "false"):
                return None, {"name": name, "error": "INVALID_BOOLEAN",
                              "message": f"{value} was not a valid boolean (true or false)"}
            return lowered, None
        if type_ == "enumeration":
            allowed = self.option_values(name)
            if allowed is not None:
                parts = value.split(";") if definition["fieldType"] == "checkbox" else [value]
                bad = [part for part in parts if part not in allowed]
                if bad:
                    return None, {"name": name, "error": "INVALID_OPTION",
                                  "message": f"{bad[0]} was not one of the allowed options: "
                                             f"[{', '.join(sorted(allowed))}]"}
            return value, None
        if len(value) > MAX_STRING:
            return None, {"name": name, "error": "INVALID_LENGTH",
                          "message": f"The value of {name} is {len(value)} characters long; the maximum is "
                                     f"{MAX_STRING}."}
        if name == "email" and self.object_type == "contacts":
            value = value.strip().lower()
            if not EMAIL_PATTERN.fullmatch(value):
                return None, {"name": name, "error": "INVALID_EMAIL", "message": f"Email address {value} is invalid"}
        return value, None
