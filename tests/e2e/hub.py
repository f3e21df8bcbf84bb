"""Running the hub's steps in tests without Prefect: pull (the flows' plain path), tag, push."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from connectors.retry import RetryPolicy
from flows import sync as sync_flow
from flows.runtime import hub_context
from journeyhub.journey.tagger import Tagger, TagSummary
from journeyhub.runs import new_run_id
from journeyhub.settings import Settings
from journeyhub.writeback.push import PushReport, push

FAST = RetryPolicy(max_attempts=4, max_seconds=20, initial_wait=0.05, max_backoff=0.2, max_vendor_wait=1)
SYSTEMS = ["hubspot", "salesforce", "dynamics"]
#: where each CRM keeps the hub's mirrored items, and the field holding each item's marker ("jh:…")
MARKERS = {"hubspot": ("notes", "journeyhub_item_id"), "salesforce": ("Task", "External_Id__c"),
           "dynamics": ("tasks", "new_externalid")}


def markers(system: str, emulator: Any) -> Counter[str]:
    """How many live mirror records in the CRM (its emulator's own store) carry each hub marker."""
    object_type, marker = MARKERS[system]
    with emulator.lock:
        if system == "hubspot":
            store = emulator.store.types.get(object_type)
            values = [] if store is None else [store.records[str(num)].props.get(marker) for num in store.active]
        elif system == "salesforce":
            values = [row.get(marker) for row in emulator.store.tables[object_type].values()
                      if not row.get("IsDeleted")]
        else:
            values = [row.get(marker) for row in emulator.store.all_rows(object_type)]
    return Counter(value for value in values if value and str(value).startswith("jh:"))


@contextmanager
def hub_environment(env: dict[str, str], database_url: str, mappings: Path | None = None) -> Iterator[Settings]:
    """Settings read from a sandbox's variables and a database URL alone (as the CLI would read them from
    exactly that environment); the connectors opened for them are closed on exit."""
    extra = {} if mappings is None else {"JOURNEYHUB_MAPPINGS_DIR": str(mappings)}
    settings = Settings.from_env({**env, "JOURNEYHUB_DATABASE_URL": database_url, **extra})
    try:
        yield settings
    finally:
        sync_flow.close_connectors(settings)


def pull(settings: Settings, systems: list[str] = SYSTEMS) -> list[sync_flow.SystemSync]:
    run_id = new_run_id()
    return [sync_flow.sync_system(settings, system, run_id=run_id) for system in systems]  # type: ignore[arg-type]


def tag(settings: Settings, as_of: datetime, *, full: bool = False) -> TagSummary:
    context = hub_context(settings)
    return Tagger(context.engine, context.lifecycle, context.identity).run(as_of, full=full)


def push_all(settings: Settings, *, dry_run: bool = False, systems: list[str] = SYSTEMS) -> PushReport:
    context = hub_context(settings)
    connectors = {system: sync_flow.connector_for(system, settings) for system in systems}  # type: ignore[arg-type]
    return push(context.engine, context.writeback, systems, run_id=new_run_id(), dry_run=dry_run,
                connectors=connectors)


def engine_of(settings: Settings) -> Engine:
    return hub_context(settings).engine


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    from sqlalchemy import text

    with engine.connect() as connection:
        return connection.execute(text(sql), params).scalar()
