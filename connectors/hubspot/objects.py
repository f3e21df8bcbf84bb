"""The object table: what the connector reads for each HubSpot object type, as data.

`properties` are the ones the default mappings read (docs/crm-conventions.md); HubSpot returns only what is
asked for, so a mapping that reads another property needs it added here. `associations` are fetched with
each record and exposed to mappings as `_associations.<type>` (lists of ids as strings). `stages` names the
pipeline object type whose stage metadata is attached as `_stage` (label, isClosed, isWon).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Kind = Literal["crm", "owners", "pipelines", "email_events"]

#: the property the hub stamps on the notes/tasks it writes back (value `jh:…`); pulls skip those records
MARKER_PROPERTY = "journeyhub_item_id"
ENGAGEMENT_ASSOCIATIONS = ("contacts", "deals", "tickets", "companies")


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    kind: Kind = "crm"
    properties: tuple[str, ...] = ()
    modified_property: str = "hs_lastmodifieddate"
    associations: tuple[str, ...] = ()
    stages: str | None = None           # "deals"/"tickets": attach the record's pipeline stage as `_stage`
    stage_properties: tuple[str, str] = ("pipeline", "dealstage")

    @property
    def request_properties(self) -> list[str]:
        """What to ask for: the mapped properties plus the modified-date property the cursor follows."""
        names = dict.fromkeys((*self.properties, self.modified_property))
        return list(names)


def _engagement(name: str, *properties: str) -> ObjectSpec:
    return ObjectSpec(name, properties=("hs_timestamp", "hubspot_owner_id", "hs_createdate", *properties),
                      associations=ENGAGEMENT_ASSOCIATIONS)


OBJECTS: dict[str, ObjectSpec] = {spec.name: spec for spec in (
    ObjectSpec("contacts", modified_property="lastmodifieddate", associations=("companies",), properties=(
        "email", "firstname", "lastname", "phone", "mobilephone", "company", "hubspot_owner_id", "createdate",
        "lifecyclestage", "hs_lead_status", "first_conversion_date", "first_conversion_event_name",
        "recent_conversion_date", "recent_conversion_event_name", "num_conversion_events",
        "hs_feedback_last_nps_rating", "hs_feedback_last_survey_date", "salesforcecontactid", "salesforceleadid",
        "hs_merged_object_ids")),
    ObjectSpec("companies", properties=("name", "domain", "industry", "phone", "hubspot_owner_id", "createdate")),
    ObjectSpec("deals", associations=("contacts", "companies"), stages="deals", properties=(
        "dealname", "amount", "deal_currency_code", "pipeline", "dealstage", "closedate", "createdate",
        "hs_is_closed", "hs_is_closed_won", "hubspot_owner_id")),
    ObjectSpec("tickets", associations=("contacts", "companies", "deals"), stages="tickets",
               stage_properties=("hs_pipeline", "hs_pipeline_stage"), properties=(
                   "subject", "content", "hs_pipeline", "hs_pipeline_stage", "hs_ticket_priority", "source_type",
                   "createdate", "closed_date", "hs_is_closed", "hubspot_owner_id")),
    _engagement("notes", "hs_note_body", MARKER_PROPERTY),
    _engagement("calls", "hs_call_title", "hs_call_body", "hs_call_direction", "hs_call_status", "hs_call_duration"),
    _engagement("meetings", "hs_meeting_title", "hs_meeting_body", "hs_meeting_start_time", "hs_meeting_end_time",
                "hs_meeting_outcome"),
    _engagement("tasks", "hs_task_subject", "hs_task_body", "hs_task_status", "hs_task_type", "hs_task_priority",
                MARKER_PROPERTY),
    _engagement("emails", "hs_email_subject", "hs_email_text", "hs_email_direction", "hs_email_status"),
    ObjectSpec("owners", kind="owners"),
    ObjectSpec("pipelines", kind="pipelines"),
    ObjectSpec("email_events", kind="email_events"),
)}

#: object types that have pipelines (and the `pipelines` pseudo-object reads)
PIPELINE_OBJECTS = ("deals", "tickets")

#: HUBSPOT_DEFINED association type ids for creates with inline associations, (from, to) → id
ASSOCIATION_TYPE_IDS: dict[tuple[str, str], int] = {
    ("notes", "contacts"): 202, ("notes", "companies"): 190, ("notes", "deals"): 214, ("notes", "tickets"): 228,
    ("tasks", "contacts"): 204, ("tasks", "companies"): 192, ("tasks", "deals"): 216, ("tasks", "tickets"): 230,
    ("calls", "contacts"): 194, ("meetings", "contacts"): 200, ("emails", "contacts"): 198,
    ("emails", "deals"): 210,
}

#: fields of the objects that have no properties API (what `describe` reports for them)
STATIC_FIELDS: dict[str, tuple[tuple[str, str], ...]] = {
    "owners": (("id", "string"), ("email", "string"), ("firstName", "string"), ("lastName", "string"),
               ("userId", "number"), ("archived", "bool"), ("createdAt", "datetime"), ("updatedAt", "datetime")),
    "pipelines": (("objectType", "string"), ("pipelineId", "string"), ("pipelineLabel", "string"),
                  ("id", "string"), ("label", "string"), ("displayOrder", "number"), ("isClosed", "bool"),
                  ("isWon", "bool"), ("metadata", "object")),
    "email_events": (("id", "string"), ("created", "datetime"), ("type", "string"), ("recipient", "string"),
                     ("emailCampaignId", "number"), ("appId", "number"), ("portalId", "number"),
                     ("sentBy", "object"), ("url", "string"), ("category", "string")),
}
