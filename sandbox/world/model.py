"""The world plan: people, their records in each CRM and what happened to them, in domain terms.

Everything the generator decides lives here before any CRM encoding exists. The oracle reads only the
domain fields (times, kinds, directions, outcomes, scores); the renderers turn the same objects into
HubSpot, Salesforce and Dataverse records. Times are whole epoch seconds (UTC).
"""

from __future__ import annotations

from dataclasses import dataclass, field

HUBSPOT, SALESFORCE, DYNAMICS = "hubspot", "salesforce", "dynamics"
SYSTEMS = (HUBSPOT, SALESFORCE, DYNAMICS)

STAGES = ("discovery", "education", "matching", "purchase", "engagement", "advocate")
SEGMENTS = ("prospect", "new", "active", "at_risk", "churned", "returning")

# interaction kinds
EMAIL = "email"                    # one-to-one email; direction "out" (sent by us) or "in" (from them)
MARKETING = "marketing_email"      # campaign email event; outcome sent/delivered/open/click/bounce
CALL = "call"                      # direction in/out; outcome completed/no_answer/busy
MEETING = "meeting"                # outcome held/cancelled/no_show; `end` is the end time
CHAT = "chat"                      # direction in/out
FORM = "form"                      # a form submitted
SURVEY = "survey"                  # `score` 0-10
REFERRAL = "referral"
REVIEW = "review"                  # `rating` 1-5
NOTE = "note"                      # internal rep note
TASK = "task"                      # internal to-do


@dataclass(frozen=True, slots=True)
class Removal:
    """What became of a record before the hub was installed (sandbox/world/history.py)."""

    event: str                     # archived | recycle_bin | purged | deleted
    at: int
    readable: bool                 # can a hub installed now still read it (with its vendor's API)?


@dataclass(eq=False, slots=True)
class Owner:
    system: str
    first_name: str
    last_name: str
    email: str
    created: int
    remote_id: str = ""
    user_id: int = 0


@dataclass(eq=False, slots=True)
class Company:
    key: int
    name: str
    domain: str
    industry: str
    phone: str                     # E.164
    employees: int
    created: dict[str, int] = field(default_factory=dict)
    remote_ids: dict[str, str] = field(default_factory=dict)
    owners: dict[str, Owner] = field(default_factory=dict)


@dataclass(eq=False, slots=True)
class Record:
    """One person record (contact or lead) in one CRM."""

    system: str
    object_type: str               # contacts (HubSpot/Dataverse), leads (Dataverse), Contact / Lead (Salesforce)
    created: int
    role: str = "primary"          # primary | lead | duplicate | merged_loser | merged_away
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None       # exactly as stored (case/whitespace variants)
    phone: str | None = None       # exactly as stored (format varies)
    phone_field: str = "phone"     # phone | mobile
    company: Company | None = None
    owner: Owner | None = None
    remote_id: str = ""
    modified: int = 0
    converted_to: Record | None = None     # lead converted / qualified into this contact
    converted_at: int | None = None
    merged_into: Record | None = None      # merge loser → survivor (HubSpot: the merged-away id)
    merged_at: int | None = None
    exists: bool = True            # False for a HubSpot merged-away contact (its id no longer resolves)
    cross_ids: dict[str, Record] = field(default_factory=dict)   # salesforcecontactid / salesforceleadid
    merged_ids: list[Record] = field(default_factory=list)       # HubSpot survivor: merged-away records
    removal: Removal | None = None

    @property
    def source_key(self) -> str:
        return f"{self.system}:{self.object_type}:{self.remote_id}"


@dataclass(eq=False, slots=True)
class Deal:
    created: int
    outcome: str                   # open | won | lost
    closed: int | None = None      # won/lost time; 00:00 UTC in Salesforce and Dataverse (date-only)
    system: str = ""
    amount: float = 0.0
    currency: str = "ILS"
    name: str = ""
    expected_close: int | None = None   # open deals (00:00 UTC of the expected date)
    record: Record | None = None
    owner: Owner | None = None
    remote_id: str = ""
    role_id: str = ""              # Salesforce OpportunityContactRole id
    modified: int = 0
    removal: Removal | None = None


@dataclass(eq=False, slots=True)
class Ticket:
    opened: int
    system: str = ""
    channel: str = "email"         # phone | email | web | chat | social
    subject: str = ""
    description: str = ""
    priority: str = "medium"       # low | medium | high | urgent
    closed: int | None = None
    record: Record | None = None
    owner: Owner | None = None
    remote_id: str = ""
    number: str = ""
    modified: int = 0
    removal: Removal | None = None


@dataclass(eq=False, slots=True)
class Interaction:
    kind: str
    time: int
    system: str = ""
    direction: str | None = None   # in | out
    outcome: str | None = None
    end: int | None = None         # meetings: end time; calls: end of the call
    score: int | None = None       # survey 0-10
    rating: int | None = None      # review 1-5
    channel: str = ""
    subject: str = ""
    body: str = ""
    record: Record | None = None
    owner: Owner | None = None
    remote_id: str = ""
    ticket: Ticket | None = None   # emails about a ticket
    campaign: int = 0              # marketing emails: campaign id
    created: int | None = None     # record creation when it differs from `time` (scheduled meetings)
    modified: int = 0
    removal: Removal | None = None


@dataclass(eq=False, slots=True)
class Person:
    pid: str
    culture: str                   # hebrew | arabic | english
    first_name: str
    last_name: str
    email: str                     # primary email, normalised (lower-case, trimmed)
    phone: str | None = None       # E.164
    first_native: str | None = None
    last_native: str | None = None
    alt_email: str | None = None   # a second (personal) address some records carry
    company: Company | None = None
    records: list[Record] = field(default_factory=list)
    deals: list[Deal] = field(default_factory=list)
    tickets: list[Ticket] = field(default_factory=list)
    interactions: list[Interaction] = field(default_factory=list)
    intent_stage: str = ""
    intent_segment: str = ""
    cases: list[str] = field(default_factory=list)    # named scenarios and identity features

    def records_in(self, system: str) -> list[Record]:
        return [r for r in self.records if r.system == system]


@dataclass(eq=False, slots=True)
class BadRecord:
    """A record that belongs to nobody and must be quarantined by the hub."""

    system: str
    object_type: str
    created: int
    reason: str                    # invalid_email | missing_required_field
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = None
    phone: str | None = None
    company_name: str | None = None
    owner: Owner | None = None
    remote_id: str = ""

    @property
    def source_key(self) -> str:
        return f"{self.system}:{self.object_type}:{self.remote_id}"


@dataclass(eq=False, slots=True)
class Campaign:
    campaign_id: int
    name: str
    sent: int                      # send time


@dataclass
class Plan:
    """The whole world before encoding."""

    seed: int
    anchor: int
    people: list[Person]
    companies: list[Company]
    owners: dict[str, list[Owner]]
    campaigns: list[Campaign]
    bad_records: list[BadRecord]
    retries: dict[str, int] = field(default_factory=dict)    # why story draws were rejected (diagnostics)
    history: bool = False          # records were archived/deleted before install (sandbox/world/history.py)
