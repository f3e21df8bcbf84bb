"""A push killed (SIGKILL) at any request of its run, then run again, creates nothing twice — in every CRM.

For each CRM a clean push of a small world is run once to count its requests (R, in order: the checks of
the hub's fields, the writes) and record what it leaves. Then, for each kill point, the CRM and the database
are reset, a push runs in a child process (forked by tests/e2e/push_worker.py), and the emulator holds its
Nth request while the test SIGKILLs the child:
- **before** request N reaches the emulator (sent, never applied), for N = 1 … R; and N = R + 1, a run that
  ends unkilled;
- **after** the emulator applied request N, its answer withheld (the batch landed, the push never heard),
  for every write request. After a read the CRM and the database are as before it, so that point is the
  "before" one again and is not run twice.
The push after the kill (settling what the dead one left) must leave every mirrored item in the CRM exactly
once and no other, the journey fields as a clean push leaves them, the ledger naming each item's record and
no intent behind; and one more push writes nothing.

The world is small (60 people) but gives HubSpot two note batches, so a kill between batches of one object
is among the points; the sweep takes about a minute on 2 cores.
"""

from __future__ import annotations

import asyncio
import copy
import os
import queue
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from canonical.db import make_engine
from canonical.models import WritebackIntent, WritebackLedger
from canonical.schema import upgrade
from journeyhub.connections import open_connector
from journeyhub.settings import Settings
from journeyhub.writeback.push import PushReport
from journeyhub.writeback.render import normalized
from sandbox.common.emulator import Emulator
from sandbox.common.server import EmulatorServer
from sandbox.runtime import build_emulators, fault_configs
from sandbox.world import generate
from tests.e2e.hub import hub_environment, markers, pull, tag
from tests.e2e.push_worker import FAST, push_once

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
PEOPLE, SEED = 60, 11
SYSTEMS = ("hubspot", "salesforce", "dynamics")
READS_BY_POST = ("/batch/read", "/search")   # HubSpot reads that are POSTs; every other POST/PATCH writes


class KillGate:
    """ASGI middleware in front of an emulator: counts its requests and holds the Nth — before the emulator
    sees it, or after it answered, withholding the answer — until the test has killed the client."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.count = 0
        self.writes: list[int] = []           # which requests (1-based) were writes
        self.target: int | None = None
        self.phase = "before"
        self.held = threading.Event()
        self.release = threading.Event()

    def arm(self, target: int | None, phase: str = "before") -> None:
        with self.lock:
            self.count, self.writes, self.target, self.phase = 0, [], target, phase
            self.held.clear()
            self.release.clear()

    def open(self) -> None:
        with self.lock:
            self.target = None
        self.release.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/__sandbox"):
            return await self.app(scope, receive, send)
        with self.lock:
            self.count += 1
            if scope["method"] != "GET" and not scope["path"].endswith(READS_BY_POST):
                self.writes.append(self.count)
            hit = self.count == self.target
        if not hit:
            return await self.app(scope, receive, send)
        if self.phase == "after":
            async def withhold(message: Any) -> None:
                return None

            await self.app(scope, receive, withhold)
        self.held.set()
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return None


@dataclass
class Crm:
    system: str
    emulator: Emulator
    gate: KillGate
    url: str
    world: Any


@dataclass
class Reference:
    """What a clean push of the world leaves."""

    requests: int
    write_requests: list[int]
    markers: Counter[str]
    fields: dict[tuple[str, str], dict[str, Any]]
    ledger: int


@dataclass
class Hub:
    crms: dict[str, Crm]
    env: dict[str, str]
    template: Path
    scratch: Path
    forks: ForkServer
    references: dict[str, Reference] = field(default_factory=dict)


def marked(crm: Crm) -> Counter[str]:
    """How many live mirror records carry each hub marker."""
    return markers(crm.system, crm.emulator)


def reset(crm: Crm) -> None:
    crm.emulator.load(copy.deepcopy(crm.world))


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database in WAL mode (what is still in the -wal file included)."""
    with sqlite3.connect(source) as origin, sqlite3.connect(target) as copy_:
        origin.backup(copy_)


def run_push(hub: Hub, database: Path, system: str) -> PushReport:
    """A push in this process (the one after a kill, and the one after that)."""
    saved = dict(os.environ)
    os.environ.update({**hub.env, "JOURNEYHUB_DATABASE_URL": f"sqlite:///{database}"})
    try:
        return push_once(system)
    finally:
        os.environ.clear()
        os.environ.update(saved)


class ForkServer:
    """tests.e2e.push_worker in a child process: forks one push per request, reports pids and exit codes."""

    def __init__(self, env: dict[str, str]) -> None:
        self.process = subprocess.Popen([sys.executable, "-m", "tests.e2e.push_worker"], cwd=ROOT, text=True,
                                        env={**os.environ, **env}, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())

    def start(self, system: str, database: Path) -> int:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{system} sqlite:///{database}\n")
        self.process.stdin.flush()
        word, pid = self.lines.get(timeout=60).split()
        assert word == "started"
        return int(pid)

    def ended(self, pid: int, timeout: float) -> int | None:
        """The exit code of push `pid` if it ends within `timeout` seconds."""
        try:
            line = self.lines.get(timeout=timeout)
        except queue.Empty:
            return None
        word, ended_pid, code = line.split()
        assert word == "ended" and int(ended_pid) == pid, line
        return int(code)

    def close(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        self.process.wait(timeout=30)


def field_values(hub: Hub, database: Path, system: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The journey fields of every record the ledger says were written, as the CRM holds them now."""
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        targets = connection.execute(select(WritebackLedger.target_object_type, WritebackLedger.target_remote_id,
                                            WritebackLedger.payload).where(WritebackLedger.system == system,
                                                                           WritebackLedger.item_key == "fields")).all()
    engine.dispose()
    saved = dict(os.environ)
    os.environ.update(hub.env)
    try:
        connector = open_connector(system, Settings(), retry=FAST)  # type: ignore[arg-type]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    by_type: dict[str, list[str]] = {}
    names: dict[str, set[str]] = {}
    for object_type, remote_id, payload in targets:
        by_type.setdefault(object_type, []).append(remote_id)
        names.setdefault(object_type, set()).update(payload or {})
    values = {}
    for object_type, ids in by_type.items():
        current = connector.read_current(object_type, ids, sorted(names[object_type]))
        for remote_id, row in current.items():
            values[(object_type, str(remote_id).lower())] = {name: normalized("string", row.get(name))
                                                             for name in sorted(names[object_type])}
    return values


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    scratch = tmp_path_factory.mktemp("push-kills")
    world = generate(PEOPLE, SEED, ANCHOR)
    crms: dict[str, Crm] = {}
    servers = []
    for system, emulator in build_emulators(fault_configs(None, SEED), limits=False).items():
        part = getattr(world, system)
        emulator.load(copy.deepcopy(part))
        gate = KillGate(emulator.app())
        emulator.app = lambda gate=gate: gate  # type: ignore[method-assign]  # what the server serves
        server = EmulatorServer(emulator).start()
        servers.append(server)
        crms[system] = Crm(system, emulator, gate, server.url, part)
    token = Emulator.default_token
    env = {"HUBSPOT_BASE_URL": crms["hubspot"].url, "HUBSPOT_ACCESS_TOKEN": token,
           "SALESFORCE_INSTANCE_URL": crms["salesforce"].url, "SALESFORCE_ACCESS_TOKEN": token,
           "DYNAMICS_URL": crms["dynamics"].url, "DYNAMICS_ACCESS_TOKEN": token}
    template = scratch / "template.db"
    upgrade(make_engine(f"sqlite:///{template}"))
    with hub_environment(env, f"sqlite:///{template}") as settings:
        pull(settings)
        tag(settings, ANCHOR)
    state = Hub(crms, env, template, scratch, ForkServer(env))
    for system in SYSTEMS:
        crm = crms[system]
        database = scratch / f"reference-{system}.db"
        copy_database(template, database)
        crm.gate.arm(None)
        report = run_push(state, database, system)
        assert not report.errors and report.outcome is not None and report.outcome.failed == 0, report.errors
        requests, writes = crm.gate.count, list(crm.gate.writes)
        engine = make_engine(f"sqlite:///{database}")
        with engine.connect() as connection:
            ledger = len(connection.execute(select(WritebackLedger.id).where(WritebackLedger.system == system,
                                                                             WritebackLedger.status == "pushed")).all())
        engine.dispose()
        state.references[system] = Reference(requests, writes, marked(crm), field_values(state, database, system),
                                             ledger)
        assert state.references[system].markers and max(state.references[system].markers.values()) == 1
        reset(crm)
    try:
        yield state
    finally:
        state.forks.close()
        for crm in crms.values():
            crm.gate.open()
        for server in servers:
            server.stop()


def kill_points(hub: Hub, system: str) -> list[tuple[int, str]]:
    """Every request "before" (plus one past the end: no kill), every write request "after"."""
    reference = hub.references[system]
    return [(n, "before") for n in range(1, reference.requests + 2)] + [(n, "after") for n in reference.write_requests]


def killed_push(hub: Hub, database: Path, system: str, n: int, phase: str) -> bool:
    """Runs a push in a child process and SIGKILLs it at request `n`; False when the run ended before it."""
    crm = hub.crms[system]
    crm.gate.arm(n, phase)
    pid = hub.forks.start(system, database)
    try:
        deadline = time.monotonic() + 120
        while not crm.gate.held.wait(0.02):
            code = hub.forks.ended(pid, 0)
            if code is not None:
                assert code == 0, f"the push ended with {code} (see its stderr above)"
                return False
            assert time.monotonic() < deadline, "the push neither reached the kill point nor ended"
        os.kill(pid, signal.SIGKILL)
        assert hub.forks.ended(pid, 30) == -signal.SIGKILL
        return True
    finally:
        crm.gate.open()


def check_after_rerun(hub: Hub, database: Path, system: str, report: PushReport, where: str) -> None:
    reference, crm = hub.references[system], hub.crms[system]
    assert not report.errors and report.outcome is not None and report.outcome.failed == 0, (where, report.errors)
    markers = marked(crm)
    duplicates = {marker: count for marker, count in markers.items() if count > 1}
    assert not duplicates, f"{where}: {len(duplicates)} items written twice"
    assert markers == reference.markers, f"{where}: items missing or unexpected"
    assert field_values(hub, database, system) == reference.fields, f"{where}: journey fields differ"
    engine = make_engine(f"sqlite:///{database}")
    with engine.connect() as connection:
        assert connection.execute(select(WritebackIntent.id)).first() is None, f"{where}: intents left behind"
        rows = connection.execute(select(WritebackLedger.item_key, WritebackLedger.remote_id, WritebackLedger.payload,
                                         WritebackLedger.status).where(WritebackLedger.system == system)).all()
    engine.dispose()
    assert len(rows) == reference.ledger and all(row.status == "pushed" for row in rows), where
    assert sorted(str(row.payload["marker"]) for row in rows if row.item_key != "fields") == sorted(markers)
    assert all(row.remote_id for row in rows), f"{where}: a ledger row without its record's id"


@pytest.mark.parametrize("system", SYSTEMS)
def test_a_push_killed_at_any_request_then_run_again_creates_nothing_twice(hub: Hub, system: str) -> None:
    crm = hub.crms[system]
    killed = 0
    for n, phase in kill_points(hub, system):
        where = f"{system} killed {phase} request {n} of {hub.references[system].requests}"
        reset(crm)
        database = hub.scratch / f"{system}-{phase}-{n}.db"
        copy_database(hub.template, database)
        killed += killed_push(hub, database, system, n, phase)
        crm.gate.arm(None)
        check_after_rerun(hub, database, system, run_push(hub, database, system), where)
        crm.gate.arm(None)
        quiet = run_push(hub, database, system)
        assert all(action == "unchanged" for _, _, action in quiet.plan.actions), where
        assert crm.gate.writes == [], f"{where}: a push after the re-run still wrote"
        for leftover in database.parent.glob(f"{database.name}*"):   # the database, its WAL, its locks
            shutil.rmtree(leftover) if leftover.is_dir() else leftover.unlink()
    reference = hub.references[system]
    assert killed == reference.requests + len(reference.write_requests), "every kill point was reached"
