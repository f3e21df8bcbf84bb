"""The object table: how the connector reads each HubSpot object type, as data.

Which properties are read is the mappings' business: the hub passes the properties its mapping reads
(`fields_for` translates `properties.x` to `x`), and the connector adds its own — the modified-date property the
cursor follows and, for deals and tickets, the pipeline and stage it attaches `_stage` from. `associations` are
fetched with each record and exposed to mappings as `_associations.<type>` (lists of ids as strings);
`archived_associations` are the ones an archived record is read with (HubSpot unassociates an archived contact
from its activities, deals and tickets: only its own side still lists them). `stages` names the pipeline
object type whose stage metadata is attached as `_stage` (label, isClosed, isWon).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from connectors.base import SourceField

Kind = Literal["crm", "owners", "pipelines", "email_events"]

#: the property the hub stamps on the notes/tasks it writes back (value `jh:…`); pulls skip those records
MARKER_PROPERTY = "journeyhub_item_id"
ENGAGEMENT_ASSOCIATIONS = ("contacts", "deals", "tickets", "companies")
ENGAGEMENTS = ("calls", "meetings", "notes", "tasks", "emails")
#: what every CRM record carries besides its properties (never asked for, never missing)
ENVELOPE = frozenset({"id", "createdAt", "updatedAt", "archived", "archivedAt"})
#: properties not every portal has: Service Hub's feedback, the Salesforce integration's ids, the hub's own
#: properties (created by its first push)
OPTIONAL_PROPERTIES = re.compile(r"^(hs_feedback_|salesforce\w*id$|journeyhub_|journey_)")


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    kind: Kind = "crm"
    modified_property: str = "hs_lastmodifieddate"
    associations: tuple[str, ...] = ()
    archived_associations: tuple[str, ...] | None = None   # None: the same as `associations`
    stages: str | None = None           # "deals"/"tickets": attach the record's pipeline stage as `_stage`
    stage_properties: tuple[str, str] = ("pipeline", "dealstage")

    def request_properties(self, fields: Iterable[str] | None) -> list[str]:
        """What to ask for: the mapped properties, the modified date the cursor follows, and the pipeline and
        stage `_stage` is read from."""
        own = (self.modified_property, *(self.stage_properties if self.stages else ()))
        return list(dict.fromkeys((*(fields or ()), *own)))

    @property
    def archived_with(self) -> tuple[str, ...]:
        return self.associations if self.archived_associations is None else self.archived_associations

    def source_field(self, path: str) -> SourceField | None:
        """The property (or, for owners, pipelines and email events, the document key) a mapping path reads;
        None for the record envelope and the connector's `_` enrichment."""
        head, _, rest = path.partition(".")
        if head.startswith("_") or (self.kind == "crm" and head in ENVELOPE):
            return None
        if self.kind == "crm" and head == "properties" and rest:
            name = rest.split(".", 1)[0]
            # HubSpot leaves a property it does not have out of the answer: asking for one costs nothing
            return SourceField(name, optional=bool(OPTIONAL_PROPERTIES.match(name)), ask_if_absent=True)
        return SourceField(path if self.kind == "crm" else head)


OBJECTS: dict[str, ObjectSpec] = {spec.name: spec for spec in (
    ObjectSpec("contacts", modified_property="lastmodifieddate", associations=("companies",),
               archived_associations=("companies", "deals", "tickets", *ENGAGEMENTS)),
    ObjectSpec("companies"),
    ObjectSpec("deals", associations=("contacts", "companies"), stages="deals"),
    ObjectSpec("tickets", associations=("contacts", "companies", "deals"), stages="tickets",
               stage_properties=("hs_pipeline", "hs_pipeline_stage")),
    *(ObjectSpec(name, associations=ENGAGEMENT_ASSOCIATIONS) for name in ENGAGEMENTS),
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
