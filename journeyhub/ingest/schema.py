"""What to read of one CRM object: the fields its mapping reads, checked against the org's own schema first.

The mapping decides what is read (`MappingSpec.source_paths`); the connector translates each path into the
field of the CRM it reads (`Connector.fields_for`: vendor knowledge) and describes the org
(`Connector.describe`). Then, per object:

- a field the org has is read;
- a missing **optional** field (custom, or of another edition, hub or integration — or marked so under the
  mapping's `presence:`) is left out of the request (unless the CRM ignores a request for a field it lacks,
  like HubSpot: then it is asked for anyway and arrives as soon as it exists) and reported once per run as a
  warning naming what is not read without it; the rest of the object syncs;
- a missing **required** field (misspelled, or simply absent) fails that object alone, with one message
  naming the field, the object and the fix;
- an org whose metadata the integration user may not read (a HubSpot private app without the
  `crm.schemas.*.read` scopes) is read unchecked, with one warning saying so.

The outcome of the describe is cached in `sync_state` beside the object's cursor (object type
`<object>#schema`): which of the mapping's fields the org has, when it was described, and which fields the
last complete read asked for. It is described again when it is older than `SCHEMA_MAX_AGE`, when the mapping
asks about a field the cache does not know, when the CRM answers a read with "field not found", and on every
run while a marker of the hub's own write-backs (a field `skip_when` reads) is missing. When the
fields read grow (a field added to a mapping, or created in the CRM), the object is read in full once, so
records that did not change get the new field too (`ReadPlan.reread`, kept until that read completes).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Engine, select

from canonical.models import SyncState
from canonical.upsert import upsert
from connectors.base import Connector, ObjectDescription, SourceField
from connectors.errors import PermissionDenied
from journeyhub.ingest.loader import Counts, add_to_run
from journeyhub.ingest.spec import MappingSpec

SCHEMA_MAX_AGE = timedelta(hours=1)      # describe the org again after this long
STATE_VERSION = 1


class SchemaMismatch(Exception):
    """The org lacks a field the mapping requires: that object cannot be read until someone acts."""


@dataclass
class SourceFieldUse:
    """One field of the CRM a mapping reads: as the CRM names it, the mapping paths and rules that read it,
    whether an org may lack it, and what is lost without it."""

    name: str
    paths: list[str]
    rules: list[str]
    optional: bool
    loss: str | None = None
    ask_if_absent: bool = False       # the CRM ignores a request for it while it lacks it (SourceField)


@dataclass
class ReadPlan:
    """What to read of one object in this run."""

    system: str
    object_type: str
    fields: list[str]                                        # the CRM's names, in the mapping's order
    missing: list[SourceFieldUse] = field(default_factory=list)
    reread: bool = False                                     # read everything: the fields read have grown
    refreshed: bool = False                                  # the org was described for this plan
    api_calls: int = 0
    unchecked: str | None = None                             # why the org could not be described (then every
                                                             # mapped field is asked for, unchecked)

    @property
    def missing_optional(self) -> list[SourceFieldUse]:
        return [use for use in self.missing if use.optional]

    @property
    def missing_required(self) -> list[SourceFieldUse]:
        return [use for use in self.missing if not use.optional]

    def warnings(self) -> list[str]:
        """One line per missing optional field: what the hub does not read without it."""
        if self.unchecked:
            return [f"{self.system} {self.object_type}: the org's schema cannot be read ({self.unchecked}); the "
                    "mapped fields are read unchecked"]
        return [f"{self.system} {self.object_type}: {use.name} not in this org; {_loss(use)}"
                for use in self.missing_optional]

    def problem(self) -> str | None:
        """The one message for missing required fields (None: the object can be read)."""
        missing = self.missing_required
        if not missing:
            return None
        names = ", ".join(use.name for use in missing)
        rules = "; ".join(f"{use.name} → {', '.join(use.rules)}" for use in missing)
        one = len(missing) == 1
        return (f"{self.system} {self.object_type}: {names} {'is' if one else 'are'} not in this org, and "
                f"mappings/{self.system}/{self.object_type}.yaml needs {'it' if one else 'them'} ({rules}) — "
                "create the field in the CRM (or grant the integration user access to it), correct the name in "
                f"the mapping, or mark it optional there (presence: {{{missing[0].paths[0]}: optional}})")


def _loss(use: SourceFieldUse) -> str:
    if use.loss:
        return use.loss
    return f"{', '.join(use.rules)} {'is' if len(use.rules) == 1 else 'are'} not read"


# ---------------------------------------------------------------------------------------------- fields
def source_fields(connector: Connector, spec: MappingSpec) -> list[SourceFieldUse]:
    """The CRM fields `spec` reads (paths the connector fills itself are left out), with their presence:
    the mapping's `presence:` entry where it has one, else the connector's default."""
    paths = spec.source_paths()
    translated: dict[str, SourceField | None] = connector.fields_for(spec.object, list(paths))
    uses: dict[str, SourceFieldUse] = {}
    for path, rules in paths.items():
        source = translated.get(path)
        if source is None:
            continue
        use = uses.get(source.name)
        if use is None:
            use = uses[source.name] = SourceFieldUse(source.name, [], [], source.optional,
                                                     ask_if_absent=source.ask_if_absent)
        use.paths.append(path)
        use.rules += [rule for rule in rules if rule not in use.rules]
        presence = spec.presence.get(path)
        if presence is not None:
            use.optional = bool(presence.optional)
            use.loss = presence.loss or use.loss
    return list(uses.values())


def requested_fields(connector: Connector, spec: MappingSpec) -> list[str]:
    """Every field the mapping reads, unchecked (tests and tools that read without the schema check)."""
    return [use.name for use in source_fields(connector, spec)]


def compare(uses: list[SourceFieldUse], present: Iterable[str], system: str, object_type: str) -> ReadPlan:
    """The plan for an org that has the fields `present`: those are read, and a missing optional one too where
    the CRM ignores a request naming it (it is read the moment it is created, without waiting for a describe)."""
    have = set(present)
    return ReadPlan(system, object_type,
                    [use.name for use in uses if use.name in have or (use.optional and use.ask_if_absent)],
                    [use for use in uses if use.name not in have])


def describe_names(connector: Connector, object_type: str) -> set[str]:
    description: ObjectDescription = connector.describe(object_type)
    return set(description.fields)


# ---------------------------------------------------------------------------------------------- cache
def state_key(object_type: str) -> str:
    return f"{object_type}#schema"


def load_state(engine: Engine, system: str, object_type: str) -> dict[str, Any] | None:
    with engine.connect() as connection:
        text = connection.execute(select(SyncState.cursor).where(
            SyncState.system == system, SyncState.object_type == state_key(object_type))).scalar_one_or_none()
    if not text:
        return None
    try:
        state = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return state if isinstance(state, dict) and state.get("v") == STATE_VERSION else None


def save_state(engine: Engine, system: str, object_type: str, state: dict[str, Any],
               run_row_id: int | None = None, api_calls: int = 0) -> None:
    with engine.begin() as connection:
        upsert(connection, SyncState, [{"system": system, "object_type": state_key(object_type),
                                        "cursor": orjson.dumps({"v": STATE_VERSION, **state}).decode(),
                                        "updated_at": datetime.now(UTC)}])
        if run_row_id is not None and api_calls:
            add_to_run(connection, run_row_id, Counts(api_calls=api_calls))


def _stale(state: dict[str, Any] | None, names: list[str], now: datetime) -> bool:
    if state is None:
        return True
    known = set(state.get("present") or []) | set(state.get("absent") or [])
    if any(name not in known for name in names):
        return True
    try:
        described = datetime.fromisoformat(str(state.get("described_at")))
    except ValueError:
        return True
    return now - described >= SCHEMA_MAX_AGE


# ---------------------------------------------------------------------------------------------- plans
def plan_read(engine: Engine, connector: Connector, spec: MappingSpec, *, refresh: bool = False,
              run_row_id: int | None = None, now: datetime | None = None) -> ReadPlan:
    """What to read of `spec.object` now: the cached describe (or a fresh one when stale, when the mapping
    asks about an unknown field, or with `refresh`), the fields to request, what is missing, and whether the
    fields read have grown since the last complete read (then the object is read in full once)."""
    system, object_type, now = connector.system, spec.object, now or datetime.now(UTC)
    uses = source_fields(connector, spec)
    names = [use.name for use in uses]
    state = load_state(engine, system, object_type)
    calls_before = connector.api_calls
    # a missing marker of the hub's own write-backs is looked for on every run: a push may start writing it any
    # moment (an admin created it), and its items must be recognised from the first one
    markers = {use.name for use in uses if "skip_when" in use.rules and not use.ask_if_absent}
    described = refresh or _stale(state, names, now) or bool(markers & set((state or {}).get("absent") or []))
    if described:
        try:
            have = describe_names(connector, object_type)
        except PermissionDenied as error:   # reads allowed, metadata not (e.g. a HubSpot app without schema scopes)
            return ReadPlan(system, object_type, names, refreshed=True, api_calls=connector.api_calls - calls_before,
                            unchecked=error.message)
        present = [name for name in names if name in have]
        state = {**(state or {}), "described_at": now.isoformat(), "present": present,
                 "absent": [name for name in names if name not in have]}
    assert state is not None
    plan = compare(uses, state.get("present") or [], system, object_type)
    plan.refreshed, plan.api_calls = described, connector.api_calls - calls_before
    if plan.problem() is None:
        previous = state.get("read")
        grown = previous is not None and bool(set(plan.fields) - set(previous))
        plan.reread = bool(state.get("reread")) or grown
        state.update(read=plan.fields, reread=plan.reread)
    if described or plan.problem() is None:
        save_state(engine, system, object_type, state, run_row_id, plan.api_calls)
    return plan


def finish_read(engine: Engine, plan: ReadPlan) -> None:
    """A complete read of the object with `plan.fields` is stored: a pending full re-read is done."""
    if not plan.reread:
        return
    state = load_state(engine, plan.system, plan.object_type) or {}
    if state.get("reread"):
        state["reread"] = False
        save_state(engine, plan.system, plan.object_type, state)


def check_online(connector: Connector, specs: dict[str, MappingSpec]) -> list[ReadPlan]:
    """`config check --online`: every mapped object against a fresh describe of the org (no database, no
    sync): what would be read, what is missing (optional or required)."""
    plans = []
    for object_type, spec in specs.items():
        calls = connector.api_calls
        plan = compare(source_fields(connector, spec), describe_names(connector, object_type), connector.system,
                       object_type)
        plan.refreshed, plan.api_calls = True, connector.api_calls - calls
        plans.append(plan)
    return plans
