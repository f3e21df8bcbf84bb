"""The CRM object types the emulator serves and HubSpot's HUBSPOT_DEFINED association types between them."""

from __future__ import annotations

from dataclasses import dataclass

ENGAGEMENT_DEFAULTS = ("hs_createdate", "hs_lastmodifieddate", "hs_object_id")


@dataclass(frozen=True)
class ObjectType:
    name: str                  # plural, as in the URL path: "contacts"
    singular: str              # "contact" (v3 association type names, error messages)
    type_id: str               # "0-1"
    created_prop: str          # "createdate" (CRM objects) / "hs_createdate" (engagements)
    modified_prop: str         # "lastmodifieddate" (contacts) / "hs_lastmodifieddate" (everything else)
    default_properties: tuple[str, ...]
    required_on_create: tuple[str, ...] = ()
    text_search: tuple[str, ...] = ()   # properties the free-text `query` of search looks at
    engagement: bool = False

    @property
    def label(self) -> str:
        return self.singular.upper()


OBJECT_TYPES: dict[str, ObjectType] = {ot.name: ot for ot in (
    ObjectType("contacts", "contact", "0-1", "createdate", "lastmodifieddate",
               ("createdate", "email", "firstname", "hs_object_id", "lastmodifieddate", "lastname"),
               text_search=("firstname", "lastname", "email", "phone", "mobilephone", "company",
                            "hs_additional_emails")),
    ObjectType("companies", "company", "0-2", "createdate", "hs_lastmodifieddate",
               ("createdate", "domain", "hs_lastmodifieddate", "hs_object_id", "name"),
               text_search=("name", "domain", "website", "phone")),
    ObjectType("deals", "deal", "0-3", "createdate", "hs_lastmodifieddate",
               ("amount", "closedate", "createdate", "dealname", "dealstage", "hs_lastmodifieddate",
                "hs_object_id", "pipeline"),
               text_search=("dealname",)),
    ObjectType("tickets", "ticket", "0-5", "createdate", "hs_lastmodifieddate",
               ("content", "createdate", "hs_lastmodifieddate", "hs_object_id", "hs_pipeline",
                "hs_pipeline_stage", "hs_ticket_category", "hs_ticket_priority", "subject"),
               text_search=("subject", "content")),
    ObjectType("notes", "note", "0-46", "hs_createdate", "hs_lastmodifieddate", ENGAGEMENT_DEFAULTS,
               ("hs_timestamp",), ("hs_note_body",), True),
    ObjectType("calls", "call", "0-48", "hs_createdate", "hs_lastmodifieddate", ENGAGEMENT_DEFAULTS,
               ("hs_timestamp",), ("hs_call_title", "hs_call_body"), True),
    ObjectType("meetings", "meeting", "0-47", "hs_createdate", "hs_lastmodifieddate", ENGAGEMENT_DEFAULTS,
               ("hs_timestamp",), ("hs_meeting_title", "hs_meeting_body"), True),
    ObjectType("tasks", "task", "0-27", "hs_createdate", "hs_lastmodifieddate", ENGAGEMENT_DEFAULTS,
               ("hs_timestamp",), ("hs_task_subject", "hs_task_body"), True),
    ObjectType("emails", "email", "0-49", "hs_createdate", "hs_lastmodifieddate", ENGAGEMENT_DEFAULTS,
               ("hs_timestamp",), ("hs_email_subject", "hs_email_text"), True),
)}

#: every spelling HubSpot accepts for an object type in a path: plural, singular, type id (case-insensitive)
_ALIASES: dict[str, ObjectType] = {}
for _ot in OBJECT_TYPES.values():
    for _alias in (_ot.name, _ot.singular, _ot.type_id):
        _ALIASES[_alias.lower()] = _ot


def resolve_type(name: str) -> ObjectType | None:
    return _ALIASES.get(name.lower())


# --------------------------------------------------------------------------------------- association types
@dataclass(frozen=True)
class AssociationType:
    type_id: int
    from_type: str
    to_type: str
    reverse_id: int
    label: str | None          # None for the unlabelled (default) type
    name: str                  # v3 name, e.g. "contact_to_deal", "contact_to_company_unlabeled"
    category: str = "HUBSPOT_DEFINED"


ASSOCIATION_TYPES: dict[int, AssociationType] = {}
#: the unlabelled type used by "associate default", per (from, to)
DEFAULT_TYPES: dict[tuple[str, str], int] = {}


def _pair(a: str, b: str, ab: int, ba: int, *, labelled: tuple[int, int, str, str] | None = None,
          ab_name: str | None = None, ba_name: str | None = None) -> None:
    sa, sb = OBJECT_TYPES[a].singular, OBJECT_TYPES[b].singular
    suffix = "_unlabeled" if labelled else ""
    ASSOCIATION_TYPES[ab] = AssociationType(ab, a, b, ba, None, ab_name or f"{sa}_to_{sb}{suffix}")
    ASSOCIATION_TYPES[ba] = AssociationType(ba, b, a, ab, None, ba_name or f"{sb}_to_{sa}{suffix}")
    DEFAULT_TYPES[(a, b)] = ab
    DEFAULT_TYPES[(b, a)] = ba
    if labelled:
        lab, lba, label_ab, label_ba = labelled
        ASSOCIATION_TYPES[lab] = AssociationType(lab, a, b, lba, label_ab, f"{sa}_to_{sb}")
        ASSOCIATION_TYPES[lba] = AssociationType(lba, b, a, lab, label_ba, f"{sb}_to_{sa}")


# HubSpot's documented HUBSPOT_DEFINED ids (from→to, to→from). Labelled "Primary" company associations exist
# next to the unlabelled ones; the unlabelled id is the default.
_pair("contacts", "companies", 279, 280, labelled=(1, 2, "Primary", "Primary"))
_pair("deals", "companies", 341, 342, labelled=(5, 6, "Primary", "Primary"))
_pair("tickets", "companies", 339, 340, labelled=(26, 25, "Primary", "Primary"))
_pair("contacts", "deals", 4, 3)
_pair("contacts", "tickets", 15, 16)
_pair("deals", "tickets", 27, 28)
for _from, _ids in {
    "contacts": {"calls": (193, 194), "emails": (197, 198), "meetings": (199, 200), "notes": (201, 202),
                 "tasks": (203, 204)},
    "companies": {"calls": (181, 182), "emails": (185, 186), "meetings": (187, 188), "notes": (189, 190),
                  "tasks": (191, 192)},
    "deals": {"calls": (205, 206), "emails": (209, 210), "meetings": (211, 212), "notes": (213, 214),
              "tasks": (215, 216)},
    "tickets": {"calls": (219, 220), "emails": (223, 224), "meetings": (225, 226), "notes": (227, 228),
                "tasks": (229, 230)},
}.items():
    for _to, (_ab, _ba) in _ids.items():
        _pair(_from, _to, _ab, _ba)

# same-type associations are symmetric (one id both ways); companies also have parent/child labels
for _name, _tid in (("contacts", 449), ("companies", 450), ("deals", 451), ("tickets", 452)):
    _s = OBJECT_TYPES[_name].singular
    ASSOCIATION_TYPES[_tid] = AssociationType(_tid, _name, _name, _tid, None, f"{_s}_to_{_s}")
    DEFAULT_TYPES[(_name, _name)] = _tid
ASSOCIATION_TYPES[13] = AssociationType(13, "companies", "companies", 14, "Child Company",
                                        "parent_to_child_company")
ASSOCIATION_TYPES[14] = AssociationType(14, "companies", "companies", 13, "Parent Company",
                                        "child_to_parent_company")


def association_type(type_id: int, category: str = "HUBSPOT_DEFINED") -> AssociationType | None:
    found = ASSOCIATION_TYPES.get(type_id)
    return found if found is not None and found.category == category else None
