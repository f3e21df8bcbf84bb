"""The fault matrix's test rig: one small world on the three emulators, a database synced and tagged from it
(what a scheduled pull leaves before a push), connectors with a fast retry policy, and the check every row
ends with — nothing lost, nothing doubled, in the canonical database and in the CRM.

"Nothing lost" is measured against the emulator's own state read cleanly: the rows a fault-free sync of the
CRM's state stores (`assert_synced_as_clean`), and the items a fault-free push of the same database leaves
in the CRM (`Rig.reference`, checked by `assert_pushed_once`).
"""

from __future__ import annotations

import copy
import re
import shutil
import sqlite3
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import Engine, select

from canonical.db import make_engine
from canonical.models import WritebackIntent, WritebackLedger
from canonical.schema import upgrade
from connectors.base import Connector
from connectors.retry import RetryPolicy
from flows.sync import ordered_objects
from journeyhub.config import load_config_file, load_mappings, mappings_root
from journeyhub.connections import open_connector
from journeyhub.ingest.loader import Counts, PageLoader
from journeyhub.ingest.sync import pull_pages
from journeyhub.runs import new_run_id
from journeyhub.settings import Settings
from journeyhub.writeback.push import PushReport, push
from sandbox.common.emulator import Emulator
from sandbox.common.faults import FaultConfig
from sandbox.runtime import Sandbox
from tests.connectors.test_salesforce_sync import as_utc, snapshot
from tests.e2e.hub import hub_environment, markers, pull, tag

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
PEOPLE, SEED = 40, 11
SYSTEMS = ("hubspot", "salesforce", "dynamics")
TIME = re.compile(r"^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d")
#: what the connector tests use: real retries, waits of milliseconds (Retry-After capped at 50 ms)
FAST = RetryPolicy(max_attempts=8, max_seconds=30, initial_wait=0.01, max_backoff=0.05, max_vendor_wait=0.05)


@dataclass
class Rig:
    sandbox: Sandbox
    scratch: Path
    clean: Path                     # every CRM pulled once as the flows pull, no faults
    tagged: Path                    # `clean`, tagged: ready to push
    reference: dict[str, Counter[str]] = field(default_factory=dict)   # the CRM's items after a clean push

    def emulator(self, system: str) -> Any:
        emulator = self.sandbox.endpoints[system].emulator
        assert isinstance(emulator, Emulator)
        return emulator

    def reset(self, system: str, faults: FaultConfig | None = None) -> Any:
        """The CRM as the world made it (the hub's pushed items gone), with `faults` switched on."""
        emulator = self.emulator(system)
        emulator.load(copy.deepcopy(getattr(self.sandbox.world, system)))
        emulator.faults.configure(faults or FaultConfig())
        emulator.tokens.add(Emulator.default_token)   # valid again after a test that expired every token
        emulator.requests.reset()
        return emulator

    def database(self, name: str, source: Path | None = None) -> Engine:
        """A fresh canonical database (empty, or a copy of `source`) in the scratch folder."""
        path = self.scratch / f"{name}.db"
        for old in self.scratch.glob(f"{name}.db*"):   # the database, its WAL, its writer locks
            shutil.rmtree(old) if old.is_dir() else old.unlink()
        if source is not None:   # SQLite's backup API: a file copy would miss what is still in the WAL
            with sqlite3.connect(source) as origin, sqlite3.connect(path) as target:
                origin.backup(target)
        engine = make_engine(f"sqlite:///{path}")
        upgrade(engine)
        return engine

    def connector(self, system: str, login: dict[str, str] | None = None, *,
                  timeout: float | None = None) -> Connector:
        """A connector as the hub opens it from the environment, retrying fast: the sandbox's static tokens,
        or this CRM's `login` variables in their place."""
        prefix = f"{system.upper()}_"
        env = {key: value for key, value in self.sandbox.env.items()
               if login is None or not key.startswith(prefix) or key.endswith(("_URL", "_INSTANCE_URL"))}
        settings = Settings.from_env({**env, **(login or {})})
        connector = open_connector(system, settings, retry=FAST)  # type: ignore[arg-type]
        if timeout is not None:
            shorten_timeout(connector, timeout)
        return connector


def shorten_timeout(connector: Any, seconds: float) -> None:
    """The read timeout of an opened connector (the settings do not expose it; production uses 30–60 s)."""
    client = connector.client
    if connector.system == "hubspot":
        client.config = replace(client.config, timeout_seconds=seconds)
    elif connector.system == "salesforce":
        client.transport.timeout = seconds
    else:
        client._http.timeout = httpx.Timeout(seconds)


def sync(engine: Engine, connector: Connector, objects: list[str] | None = None) -> dict[str, Counts]:
    """Every mapped object of the connector's CRM (or `objects`), in the flows' order, to the end."""
    mappings = load_mappings(mappings_root(), connector.system)
    loader = PageLoader(engine, connector.system, mappings, run_id=new_run_id())
    return {name: pull_pages(engine, connector, loader, name).counts for name in ordered_objects(mappings, objects)}


def push_one(engine: Engine, connector: Connector) -> PushReport:
    config = load_config_file(mappings_root(), "writeback.yaml")
    return push(engine, config, [connector.system], run_id=new_run_id(), connectors={connector.system: connector})


def rows_of(engine: Engine, system: str) -> dict[str, list[tuple[Any, ...]]]:
    """The canonical rows one CRM's sync stores (the other CRMs' left out)."""
    mine = {table: sorted(tuple(same_time(value) for value in row) for row in rows
                          if any(str(value).startswith(f"{system}:") or value == system for value in row))
            for table, rows in snapshot(engine).items()}
    mine["quarantine"] = sorted(row[1:] for row in mine["quarantine"])   # without its serial id
    return mine


def same_time(value: Any) -> Any:
    """A time as SQLite hands it back (text) and as PostgreSQL does (a datetime, already ISO text here),
    in one spelling, so that the two databases compare."""
    if isinstance(value, str) and TIME.match(value):
        return as_utc(value.replace("Z", "+00:00")).isoformat()
    return value


def assert_synced_as_clean(rig: Rig, engine: Engine, system: str) -> dict[str, Counts]:
    """Nothing lost, nothing doubled in the canonical database: exactly the rows a fault-free sync of the
    CRM's current state stores (read now, with the emulator's faults switched off). Returns that clean
    sync's counts per object."""
    emulator = rig.emulator(system)
    emulator.faults.configure(FaultConfig())
    emulator.tokens.add(Emulator.default_token)
    truth = rig.database(f"truth-{system}")
    counts = sync(truth, rig.connector(system))
    got, clean = rows_of(engine, system), rows_of(truth, system)
    assert sum(map(len, clean.values())) > 100, "the clean sync stored nothing to compare with"
    for table in clean:
        assert got[table] == clean[table], f"{system} {table}: the faulted sync differs from a clean one"
    truth.dispose()
    return counts


def assert_pushed_once(rig: Rig, engine: Engine, system: str) -> None:
    """Nothing lost, nothing doubled in the CRM: each item a clean push leaves is there exactly once and no
    other; the ledger names each one's record; no intent is left unconfirmed."""
    found = markers(system, rig.emulator(system))
    doubled = {marker: n for marker, n in found.items() if n > 1}
    assert not doubled, f"{system}: {len(doubled)} items written more than once, e.g. {next(iter(doubled))}"
    assert found == rig.reference[system], f"{system}: items missing or unexpected in the CRM"
    with engine.connect() as connection:
        assert connection.execute(select(WritebackIntent.id)).first() is None, "intents left unconfirmed"
        ledger = connection.execute(select(WritebackLedger.item_key, WritebackLedger.remote_id,
                                           WritebackLedger.payload, WritebackLedger.status)
                                    .where(WritebackLedger.system == system)).all()
    items = sorted(str(row.payload["marker"]) for row in ledger if row.item_key != "fields")
    assert items == sorted(found), f"{system}: the ledger and the CRM disagree"
    assert all(row.status == "pushed" and row.remote_id for row in ledger), f"{system}: a ledger row not pushed"


def build(scratch: Path) -> Rig:
    """Starts the sandbox, syncs and tags the template databases, and records a clean push per CRM."""
    sandbox = Sandbox(people=PEOPLE, seed=SEED, anchor=ANCHOR, limits=False).__enter__()
    try:
        return _prepare(Rig(sandbox, scratch, scratch / "clean.db", scratch / "tagged.db"))
    except BaseException:
        sandbox.stop()
        raise


def _prepare(rig: Rig) -> Rig:
    sandbox = rig.sandbox
    rig.database("clean").dispose()
    with hub_environment(sandbox.env, f"sqlite:///{rig.clean}") as settings:
        pull(settings)   # as the flows pull: identity resolved, so that the tagger finds customers
    rig.database("tagged", rig.clean).dispose()
    with hub_environment(sandbox.env, f"sqlite:///{rig.tagged}") as settings:
        tag(settings, ANCHOR)
    for system in SYSTEMS:
        rig.reset(system)
        engine = rig.database(f"reference-{system}", rig.tagged)
        report = push_one(engine, rig.connector(system))
        assert not report.errors and report.outcome is not None and not report.outcome.failed, report.errors
        rig.reference[system] = markers(system, rig.emulator(system))
        assert rig.reference[system] and max(rig.reference[system].values()) == 1
        engine.dispose()
    return rig

