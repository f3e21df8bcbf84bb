"""Several object types of one CRM pulled at once, in dependency steps ("waves").

Why steps: the loader links records by source keys, so nothing needs its parents stored to be written, but
two things read what earlier objects stored — a deleted relation record (an OpportunityContactRole) asks
whether its parent is deleted too, and a merge repoints the links already stored to its loser. Objects of one
entity (`flows.sync.ENTITY_ORDER`) never depend on each other, so each entity's objects are one wave, pulled
`object_concurrency` at a time; the next wave starts when the previous one is stored. Within a wave the
CRM's shared budget (`flows.limits`) sets the pace.

Each pull runs in a copy of the caller's context (Prefect's flow run context: tasks, rate-limit slots, run
logs) inside its own request-count scope (`connectors.meter.counted_apart`), so its pages and run counters
count its own requests only.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from itertools import groupby
from typing import TypeVar

from sqlalchemy import Engine

from connectors.base import Connector
from connectors.meter import counted_apart
from journeyhub.ingest.spec import MappingSpec
from journeyhub.settings import Settings

Result = TypeVar("Result")

def concurrency(settings: Settings, engine: Engine, connector: Connector) -> int:
    """Object types of the connector's CRM pulled at once: the setting, or 1 where pulls cannot share the
    connector (it does not declare `concurrent_reads`) or the database (an in-memory SQLite database is one
    per thread)."""
    database = engine.url.database or ""
    in_memory = engine.dialect.name == "sqlite" and (database in ("", ":memory:") or "mode=memory" in database)
    if in_memory or not getattr(connector, "concurrent_reads", False):
        return 1
    return settings.object_concurrency


def waves(names: list[str], mappings: dict[str, MappingSpec]) -> Iterator[list[str]]:
    """`names` (in dependency order) cut into runs of the same entity."""
    for _, group in groupby(names, key=lambda name: mappings[name].entity):
        yield list(group)


def run_wave(pull: Callable[[str], Result], names: list[str], width: int) -> list[Result]:
    """`pull(name)` for every name, `width` at a time, results in the order of `names`. One at a time is the
    plain loop in the caller's thread. A pull's exception is raised once every pull started has ended (the
    first in `names`' order); `pull` itself decides whether the others still start. An interruption of the
    caller (a stop signal: `cli.stop`) cancels the pulls not started and returns at once, as the plain loop
    would: the ones in flight are the process's exit to end, their uncommitted pages roll back."""
    if width <= 1 or len(names) <= 1:
        return [pull(name) for name in names]
    pool = ThreadPoolExecutor(max_workers=min(width, len(names)), thread_name_prefix="object-pull")
    try:
        futures = [pool.submit(contextvars.copy_context().run, _apart, pull, name) for name in names]
        wait(futures)
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown()
    return [future.result() for future in futures]


def _apart(pull: Callable[[str], Result], name: str) -> Result:
    with counted_apart():
        return pull(name)
