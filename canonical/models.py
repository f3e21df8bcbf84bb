"""The canonical customer and interaction model: the only language connectors' output, the journey engine
and write-back share.

Three layers, as unified-API products keep them:
- **Provenance**: `SourceRecord` is the link table (system, object type, remote id) → canonical row, with
  remote and local times, a tombstone flag and the raw payload. Its id, the *source key*
  `"{system}:{object_type}:{remote_id}"`, is also the primary key of every 1:1 canonical row below, so a
  load is an idempotent upsert with no lookups.
- **Canonical rows**: `PersonRecord` (one CRM contact or lead), `Company`, `Deal`, `Ticket`, `Interaction`,
  `Owner`, `PipelineStage`, and `Association` (who a deal, ticket or interaction is about — a person's
  source key, or `email:<address>` when the CRM only knows an address). Their fields are declared once, in
  `<Entity>Base` classes that the tables and the write models of `canonical.inputs` share.
- **Journey**: `Customer` (the unified person; many person records, one stable id), `LifecycleStageDef`,
  `StageHistory`; and the operational tables `SyncState`, `SyncRun`, `Quarantine`, `WritebackLedger`,
  `WritebackConflict`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, Text, UniqueConstraint, text
from sqlmodel import AutoString, Field, SQLModel

from canonical.types import JSONDocument, UTCDateTime
from canonical.vocabulary import Channel, DealStatus, Direction, InteractionKind, Outcome, PersonKind

KEY = 320  # length of a source key column


def _time(**kw: Any) -> Any:
    return Field(default=None, sa_type=UTCDateTime, **kw)


def _required_time() -> Any:
    """A timestamp every mapping must give; the column stays nullable as it always was."""
    return Field(sa_type=UTCDateTime, nullable=True)


def _json(**kw: Any) -> Any:
    return Field(default=None, sa_type=JSONDocument, **kw)


def _word(length: int, **kw: Any) -> Any:
    """A vocabulary value (`canonical.vocabulary`), stored as text, not as a database enum: a vocabulary can
    grow without a migration."""
    return Field(sa_type=AutoString(length=length), **kw)


# --------------------------------------------------------------------------------------- provenance
class SourceRecord(SQLModel, table=True):
    """One record as a CRM holds it: the link to its canonical row and its provenance."""

    __tablename__ = "source_record"
    __table_args__ = (
        UniqueConstraint("system", "object_type", "remote_id", name="uq_source_record_remote"),
        Index("ix_source_record_entity_seen", "entity", "last_seen_at"),
    )

    id: str = Field(primary_key=True, max_length=KEY)
    system: str = Field(max_length=16)
    object_type: str = Field(max_length=64)
    remote_id: str = Field(max_length=200)
    entity: str = Field(max_length=24)
    canonical_id: str | None = Field(default=None, max_length=KEY, index=True)
    remote_created_at: datetime | None = _time()
    remote_updated_at: datetime | None = _time()
    first_seen_at: datetime | None = _time()
    last_seen_at: datetime | None = _time()
    is_deleted: bool = False
    deleted_at: datetime | None = _time()
    merged_into: str | None = Field(default=None, max_length=KEY)
    raw: dict[str, Any] | None = _json()
    raw_hash: str | None = Field(default=None, max_length=40)
    last_run_id: str | None = Field(default=None, max_length=64)


# --------------------------------------------------------------------------------------- canonical rows
# Each entity's fields are declared once, in `<Entity>Base`, as SQLModel's docs do (`HeroBase` → `Hero`,
# `HeroCreate`): the table adds its key and the columns only the hub fills in (identity resolution's, the
# loader's); the write model in `canonical.inputs` adds to the same base what a mapping must satisfy. A
# column's `max_length` is therefore the write model's limit too (docs/schema.md "Values longer than their
# column"). Vocabulary fields are typed by `canonical.vocabulary` and stored as plain text (`_word`).
class SourceKeyed(SQLModel):
    """The key of every 1:1 canonical row: the source key of the CRM record it mirrors."""

    id: str = Field(primary_key=True, max_length=KEY)


class PersonBase(SQLModel):
    kind: PersonKind = _word(16, default=PersonKind.contact)
    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=64)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    full_name: str | None = Field(default=None, max_length=400)
    company_id: str | None = Field(default=None, max_length=KEY)
    owner_id: str | None = Field(default=None, max_length=KEY)
    converted_to: str | None = Field(default=None, max_length=KEY)
    xrefs: list[str] | None = _json()
    custom: dict[str, Any] | None = _json()


class PersonRecord(PersonBase, SourceKeyed, table=True):
    """A contact or lead in one CRM, mapped; identity resolution links it to a Customer."""

    __tablename__ = "person_record"

    customer_id: str | None = Field(default=None, max_length=40, index=True)
    email_key: str | None = Field(default=None, max_length=330, index=True)
    phone_key: str | None = Field(default=None, max_length=32, index=True)
    match_rule: str | None = Field(default=None, max_length=64)
    match_evidence: str | None = Field(default=None, sa_type=Text)
    keys_version: str | None = Field(default=None, max_length=16)


class CompanyBase(SQLModel):
    name: str | None = Field(default=None, max_length=400)
    domain: str | None = Field(default=None, max_length=255)
    industry: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=64)
    owner_id: str | None = Field(default=None, max_length=KEY)
    custom: dict[str, Any] | None = _json()


class Company(CompanyBase, SourceKeyed, table=True):
    __tablename__ = "company"


class DealBase(SQLModel):
    name: str | None = Field(default=None, max_length=400)
    amount: float | None = None
    currency: str | None = Field(default=None, max_length=8)
    pipeline: str | None = Field(default=None, max_length=200)
    stage: str | None = Field(default=None, max_length=200)
    stage_label: str | None = Field(default=None, max_length=200)
    status: DealStatus = _word(8, default=DealStatus.open)
    opened_at: datetime = _required_time()
    closed_at: datetime | None = _time()
    owner_id: str | None = Field(default=None, max_length=KEY)
    company_id: str | None = Field(default=None, max_length=KEY)
    custom: dict[str, Any] | None = _json()


class Deal(DealBase, SourceKeyed, table=True):
    __tablename__ = "deal"


class TicketBase(SQLModel):
    subject: str | None = Field(default=None, max_length=1000)
    body: str | None = Field(default=None, sa_type=Text)
    status: str | None = Field(default=None, max_length=64)
    is_closed: bool = False
    priority: str | None = Field(default=None, max_length=32)
    channel: Channel | None = _word(16, default=None)
    opened_at: datetime = _required_time()
    closed_at: datetime | None = _time()
    owner_id: str | None = Field(default=None, max_length=KEY)
    company_id: str | None = Field(default=None, max_length=KEY)
    custom: dict[str, Any] | None = _json()


class Ticket(TicketBase, SourceKeyed, table=True):
    __tablename__ = "ticket"


class InteractionBase(SQLModel):
    kind: InteractionKind = _word(32)
    channel: Channel = _word(16, default=Channel.other)
    direction: Direction | None = _word(8, default=None)  # None: internal
    outcome: Outcome | None = _word(32, default=None)
    occurred_at: datetime = _required_time()
    subject: str | None = Field(default=None, max_length=1000)
    body: str | None = Field(default=None, sa_type=Text)
    score: float | None = None
    score_max: float | None = Field(default=None, gt=0)
    owner_id: str | None = Field(default=None, max_length=KEY)
    company_id: str | None = Field(default=None, max_length=KEY)
    deal_id: str | None = Field(default=None, max_length=KEY)
    ticket_id: str | None = Field(default=None, max_length=KEY)
    custom: dict[str, Any] | None = _json()


class Interaction(InteractionBase, SourceKeyed, table=True):
    """One item on the timeline: an activity, a message, a marketing email event, a survey answer…"""

    __tablename__ = "interaction"
    __table_args__ = (
        Index("ix_interaction_occurred", "occurred_at"),
        # activities logged on a deal or ticket belong to its people: customer links look them up this way
        Index("ix_interaction_deal", "deal_id", sqlite_where=text("deal_id IS NOT NULL"),
              postgresql_where=text("deal_id IS NOT NULL")),
        Index("ix_interaction_ticket", "ticket_id", sqlite_where=text("ticket_id IS NOT NULL"),
              postgresql_where=text("ticket_id IS NOT NULL")),
    )


class OwnerBase(SQLModel):
    email: str | None = Field(default=None, max_length=320)
    name: str | None = Field(default=None, max_length=400)
    is_active: bool = True


class Owner(OwnerBase, SourceKeyed, table=True):
    """A rep or user in one CRM."""

    __tablename__ = "owner"


class PipelineStageBase(SQLModel):
    object_type: str = Field(max_length=64)
    pipeline_id: str = Field(max_length=200)
    pipeline_label: str | None = Field(default=None, max_length=200)
    stage_id: str = Field(max_length=200)
    label: str | None = Field(default=None, max_length=200)
    display_order: int | None = None
    is_closed: bool = False
    is_won: bool = False


class PipelineStage(PipelineStageBase, SourceKeyed, table=True):
    """A deal or ticket pipeline stage with its label and whether it closes (and wins)."""

    __tablename__ = "pipeline_stage"

    system: str = Field(max_length=16)  # the loader's: the CRM the stage was read from


class AssociationBase(SQLModel):
    from_id: str = Field(primary_key=True, max_length=KEY)
    to_id: str = Field(primary_key=True, max_length=KEY)
    label: str | None = Field(default=None, max_length=64)
    is_primary: bool = False


class Association(AssociationBase, table=True):
    """`from_id` (a deal, ticket, interaction, person or company) relates to `to_id` (a source key or
    `email:<normalised address>`). Kept in source-key space so it can arrive before its target does."""

    __tablename__ = "association"
    __table_args__ = (Index("ix_association_to", "to_id"),)

    system: str = Field(max_length=16)
    source_id: str | None = Field(default=None, max_length=KEY, index=True)
    is_deleted: bool = False
    updated_at: datetime | None = _time()


# --------------------------------------------------------------------------------------- journey
class Customer(SQLModel, table=True):
    """The unified person. Its id never changes once issued; a merged-away customer keeps its row with
    `merged_into_id` pointing at the survivor so downstream tools can follow it."""

    __tablename__ = "customer"

    id: str = Field(primary_key=True, max_length=40)
    email: str | None = Field(default=None, max_length=320)
    first_name: str | None = Field(default=None, max_length=200)
    last_name: str | None = Field(default=None, max_length=200)
    full_name: str | None = Field(default=None, max_length=400)
    phone: str | None = Field(default=None, max_length=64)
    company_id: str | None = Field(default=None, max_length=KEY)
    owner_id: str | None = Field(default=None, max_length=KEY)
    first_seen_at: datetime | None = _time()
    created_at: datetime | None = _time()
    updated_at: datetime | None = _time()
    merged_into_id: str | None = Field(default=None, max_length=40, index=True)
    merged_at: datetime | None = _time()
    segment: str | None = Field(default=None, max_length=32)
    segment_since: datetime | None = _time()
    first_purchase_at: datetime | None = _time()
    last_activity_at: datetime | None = _time()
    last_return_at: datetime | None = _time()
    last_interaction_at: datetime | None = _time()
    last_interaction_channel: str | None = Field(default=None, max_length=16)


class CustomerLink(SQLModel, table=True):
    """Which customers a deal, ticket or interaction belongs to, maintained by identity resolution from the
    associations (to person records by source key, or by normalised email) — and, for an activity logged on
    a deal or ticket, through that deal's or ticket's people."""

    __tablename__ = "customer_link"
    __table_args__ = (Index("ix_customer_link_customer", "customer_id"),)

    entity_id: str = Field(primary_key=True, max_length=KEY)
    customer_id: str = Field(primary_key=True, max_length=40)


class LifecycleStageDef(SQLModel, table=True):
    """The stages of the rule set in force (from mappings/lifecycle.yaml), for views and funnels."""

    __tablename__ = "lifecycle_stage"

    key: str = Field(primary_key=True, max_length=64)
    name: str = Field(max_length=200)
    stage_order: int
    ruleset_version: str = Field(max_length=32)


class StageHistory(SQLModel, table=True):
    """One stay of a customer in a stage: entered when its condition first held, with the evidence."""

    __tablename__ = "stage_history"
    __table_args__ = (Index("ix_stage_history_customer", "customer_id", "entered_at"),)

    id: int | None = Field(default=None, primary_key=True)
    customer_id: str = Field(max_length=40)
    stage: str = Field(max_length=64)
    stage_order: int
    entered_at: datetime | None = _time()
    exited_at: datetime | None = _time()
    rule_id: str = Field(max_length=120)
    ruleset_version: str = Field(max_length=32)
    evidence_type: str | None = Field(default=None, max_length=24)
    evidence_id: str | None = Field(default=None, max_length=KEY)
    computed_at: datetime | None = _time()


# --------------------------------------------------------------------------------------- operations
class SyncState(SQLModel, table=True):
    """The persisted cursor per system and object, committed in the same transaction as its page."""

    __tablename__ = "sync_state"

    system: str = Field(primary_key=True, max_length=16)
    object_type: str = Field(primary_key=True, max_length=64)
    cursor: str | None = Field(default=None, sa_type=Text)
    updated_at: datetime | None = _time()
    run_id: str | None = Field(default=None, max_length=64)


class SyncRun(SQLModel, table=True):
    """What one run did for one system and object: the ops view's unit."""

    __tablename__ = "sync_run"
    __table_args__ = (Index("ix_sync_run_run", "run_id"), Index("ix_sync_run_started", "started_at"))

    id: int | None = Field(default=None, primary_key=True)
    run_id: str = Field(max_length=64)
    flow_run_id: str | None = Field(default=None, max_length=64)
    direction: str = Field(max_length=8)  # pull | push | tag
    system: str = Field(max_length=16)
    object_type: str = Field(max_length=64)
    started_at: datetime | None = _time()
    finished_at: datetime | None = _time()
    status: str = Field(default="running", max_length=16)  # running | succeeded | partial | failed
    records_read: int = 0
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    quarantined: int = 0
    skipped: int = 0
    pushed: int = 0
    failed: int = 0
    conflicts: int = 0
    api_calls: int = 0
    error: str | None = Field(default=None, sa_type=Text)


class Quarantine(SQLModel, table=True):
    """A record the hub could not take, with the reason and its raw payload; re-seen records update it."""

    __tablename__ = "quarantine"
    __table_args__ = (UniqueConstraint("system", "object_type", "remote_id", name="uq_quarantine_remote"),)

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(max_length=16)
    object_type: str = Field(max_length=64)
    remote_id: str = Field(max_length=200)
    reason: str = Field(max_length=64)
    detail: str | None = Field(default=None, sa_type=Text)
    raw: dict[str, Any] | None = _json()
    run_id: str | None = Field(default=None, max_length=64)
    first_seen_at: datetime | None = _time()
    last_seen_at: datetime | None = _time()
    occurrences: int = 1
    resolved_at: datetime | None = _time()


class WritebackLedger(SQLModel, table=True):
    """What the hub pushed to which record in which system, so a re-run writes nothing new."""

    __tablename__ = "writeback_ledger"
    __table_args__ = (
        UniqueConstraint("system", "target_object_type", "target_remote_id", "item_key",
                         name="uq_writeback_ledger_item"),
    )

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(max_length=16)
    target_object_type: str = Field(max_length=64)
    target_remote_id: str = Field(max_length=200)
    item_key: str = Field(max_length=KEY)
    remote_object_type: str | None = Field(default=None, max_length=64)
    remote_id: str | None = Field(default=None, max_length=200)
    content_hash: str | None = Field(default=None, max_length=40)
    payload: dict[str, Any] | None = _json()
    status: str = Field(default="pushed", max_length=16)  # pushed | failed
    error: str | None = Field(default=None, sa_type=Text)
    attempts: int = 0
    first_pushed_at: datetime | None = _time()
    last_pushed_at: datetime | None = _time()
    run_id: str | None = Field(default=None, max_length=64)


class WritebackConflict(SQLModel, table=True):
    """A field the hub wanted to write but the CRM's value won (or lost) under the ownership policy."""

    __tablename__ = "writeback_conflict"
    __table_args__ = (Index("ix_writeback_conflict_run", "run_id"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: str | None = Field(default=None, max_length=64)
    system: str = Field(max_length=16)
    target_object_type: str = Field(max_length=64)
    target_remote_id: str = Field(max_length=200)
    field: str = Field(max_length=120)
    hub_value: str | None = Field(default=None, sa_type=Text)
    crm_value: str | None = Field(default=None, sa_type=Text)
    policy: str = Field(max_length=32)
    resolution: str = Field(max_length=32)  # kept_crm | wrote_hub
    detected_at: datetime | None = _time()


CANONICAL_TABLES: dict[str, type[SQLModel]] = {
    "person": PersonRecord,
    "company": Company,
    "deal": Deal,
    "ticket": Ticket,
    "interaction": Interaction,
    "owner": Owner,
    "pipeline_stage": PipelineStage,
}


# --------------------------------------------------------------------------------- write-back intents
class WritebackIntent(SQLModel, table=True):
    """A write the hub is about to send, recorded (committed) before its batch goes out and deleted in the
    transaction that records the batch's result in the ledger. One left behind means a push died with the
    write unconfirmed; the next push settles it against the CRM before planning (journeyhub.writeback.settle)."""

    __tablename__ = "writeback_intent"
    __table_args__ = (
        UniqueConstraint("system", "target_object_type", "target_remote_id", "item_key",
                         name="uq_writeback_intent_item"),
    )

    id: int | None = Field(default=None, primary_key=True)
    system: str = Field(max_length=16)
    target_object_type: str = Field(max_length=64)
    target_remote_id: str = Field(max_length=200)
    item_key: str = Field(max_length=KEY)
    remote_object_type: str = Field(max_length=64)
    action: str = Field(max_length=16)  # create | update | upsert
    marker: str | None = Field(default=None, max_length=200)
    remote_id: str | None = Field(default=None, max_length=200)
    content_hash: str | None = Field(default=None, max_length=40)
    payload: dict[str, Any] | None = _json()
    run_id: str | None = Field(default=None, max_length=64)
    recorded_at: datetime | None = _time()
