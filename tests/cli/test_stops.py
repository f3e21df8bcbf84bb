"""Clean stops, with real signals sent to real processes: SIGINT (to the process group, as a terminal's
Ctrl-C) and SIGTERM (to the CLI alone, as a scheduler or `kill` does) while `sync`, `push`, `sandbox up`
and `demo` are busy: one `stopped:` line saying what is safe, exit 130 / 143, no traceback, and no process
the command started survives it (found by an environment mark in /proc)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from canonical.db import make_engine
from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.runtime import Sandbox
from tests.cli.processes import CLI, CliProcess, clean_env, survivors

SIGNALS = [pytest.param(signal.SIGINT, True, id="SIGINT-to-the-group"),
           pytest.param(signal.SIGTERM, False, id="SIGTERM-to-the-cli")]


def held(sandbox: Sandbox, system: str) -> bool:
    """True once the emulator is holding the request its delay rule catches (it is in flight)."""
    emulator = sandbox.endpoints[system].emulator
    return emulator is not None and emulator.faults._rule_fired[0] >= 1


def stop_when(run: CliProcess, ready: Callable[[], object], signum: int, group: bool) -> list[str]:
    """Once `ready()` returned (it waits for the moment to stop), send the signal and check the stop
    contract; returns the stderr lines. Nothing of the run outlives the test either way."""
    try:
        ready()
        run.interrupt(signum, group=group)
        return stopped_cleanly(run, signum)
    finally:
        run.kill()


def stopped_cleanly(run: CliProcess, signum: int) -> list[str]:
    """Asserts the stop contract; returns the stderr lines."""
    code = run.finish()
    assert code == 128 + signum, run.output
    assert "Traceback" not in run.output and "KeyboardInterrupt" not in run.output, run.output
    lines = [line.strip() for line in run.stderr if line.strip()]
    stops = [line for line in lines if line.startswith("stopped: ")]
    assert len(stops) == 1, run.output
    assert survivors(run.mark) == [], f"processes left behind: {survivors(run.mark)}"
    return lines


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(people=60, seed=5) as running:
        yield running


def database_with_schema(folder: Path) -> str:
    url = f"sqlite:///{folder / 'hub.db'}"
    subprocess.run([*CLI, "db", "upgrade"], cwd=folder, env=clean_env(JOURNEYHUB_DATABASE_URL=url), check=True,
                   capture_output=True)
    return url


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "group"), SIGNALS)
def test_a_sync_stopped_mid_request_keeps_committed_pages_and_leaves_no_process(
        tmp_path: Path, sandbox: Sandbox, signum: int, group: bool) -> None:
    sandbox.set_faults("hubspot", FaultConfig(rules=[FaultRule(kind="delay", path="/crm/v3/objects/contacts",
                                                               delay_seconds=120)]))
    url = database_with_schema(tmp_path)
    env = clean_env(**sandbox.env, JOURNEYHUB_DATABASE_URL=url, JOURNEYHUB_MAP_IN_WORKER_AFTER="0")
    run = CliProcess("sync", "--system", "hubspot", cwd=tmp_path, env=env)

    def in_flight() -> None:
        run.wait_for(lambda: held(sandbox, "hubspot"), 90, "the contacts request in flight")
        assert run.children(), "the mapping worker runs (JOURNEYHUB_MAP_IN_WORKER_AFTER=0)"

    lines = stop_when(run, in_flight, signum, group)
    assert lines[-1] == (f"stopped: sync ({signal.Signals(signum).name}); the cursors of the committed pages are "
                         "kept; the next `journeyhub sync` continues from there")
    with make_engine(url).connect() as connection:
        cursors = set(connection.execute(text("SELECT object_type FROM sync_state WHERE system = 'hubspot'")).scalars())
        runs = dict(connection.execute(text(
            "SELECT object_type, status || ' ' || COALESCE(error, '') FROM sync_run WHERE system = 'hubspot'")).all())
    assert {"owners", "pipelines", "companies"} <= cursors and "contacts" not in cursors
    assert runs["companies"].startswith("succeeded")
    assert runs["contacts"] == f"failed interrupted ({signal.Signals(signum).name})", "no run row is left running"
    sandbox.set_faults("hubspot", FaultConfig())
    again = subprocess.run([*CLI, "sync", "--system", "hubspot", "--json"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=300)
    objects = {item["object"]: item for item in json.loads(again.stdout)["systems"][0]["objects"]}
    assert objects["contacts"]["inserted"] > 0 and objects["companies"]["inserted"] == 0, "continued, not redone"


@pytest.fixture(scope="module")
def tagged(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, Path]]:
    """A sandbox and a database pulled and tagged from it (each push test works on a copy)."""
    folder = tmp_path_factory.mktemp("tagged")
    with Sandbox(people=60, seed=5) as running:
        url = database_with_schema(folder)
        env = clean_env(**running.env, JOURNEYHUB_DATABASE_URL=url)
        for command in (["sync", "--system", "hubspot"], ["tag"]):
            subprocess.run([*CLI, *command], cwd=folder, env=env, capture_output=True, timeout=300)
        yield running, folder / "hub.db"


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a SQLite database, what its write-ahead log holds included (a file copy is not)."""
    with closing(sqlite3.connect(source)) as original, closing(sqlite3.connect(target)) as copy:
        original.backup(copy)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "group"), SIGNALS)
def test_a_push_stopped_mid_batch_says_what_is_safe_and_leaves_no_process(
        tmp_path: Path, tagged: tuple[Sandbox, Path], signum: int, group: bool) -> None:
    sandbox, database = tagged
    copy_database(database, tmp_path / "hub.db")
    sandbox.set_faults("hubspot", FaultConfig(rules=[FaultRule(kind="delay", method="POST",
                                                               path=r"/crm/v3/objects/\w+/batch/(update|create|upsert)",
                                                               delay_seconds=120)]))
    env = clean_env(**sandbox.env, JOURNEYHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}")
    run = CliProcess("push", "--system", "hubspot", cwd=tmp_path, env=env)
    try:
        lines = stop_when(run, lambda: run.wait_for(lambda: held(sandbox, "hubspot"), 90, "a write batch in flight"),
                          signum, group)
    finally:
        sandbox.set_faults("hubspot", FaultConfig())
    assert lines[-1] == (f"stopped: push ({signal.Signals(signum).name}); what the write-back ledger recorded is not "
                         "sent again; run `journeyhub push` to finish")
    with make_engine(f"sqlite:///{tmp_path / 'hub.db'}").connect() as connection:
        push_runs = connection.execute(text("SELECT status, error FROM sync_run WHERE direction = 'push'")).all()
    assert [tuple(row) for row in push_runs] == [("failed", f"interrupted ({signal.Signals(signum).name})")]


@pytest.mark.parametrize(("signum", "group"), SIGNALS)
def test_sandbox_up_stops_on_a_signal(tmp_path: Path, signum: int, group: bool) -> None:
    run = CliProcess("sandbox", "up", "--people", "50", cwd=tmp_path, env=clean_env())

    def serving() -> str:
        run.wait_for_line("export HUBSPOT_BASE_URL=", timeout=120)
        url = next(line for line in run.stdout if "HUBSPOT_BASE_URL=" in line).strip().split("=", 1)[1]
        assert httpx.get(f"{url}/crm/v3/owners", headers={"Authorization": "Bearer sandbox-token"}).status_code == 200
        return url

    lines = stop_when(run, serving, signum, group)
    url = next(line for line in run.stdout if "HUBSPOT_BASE_URL=" in line).strip().split("=", 1)[1]
    assert lines[-1].startswith(f"stopped: sandbox up ({signal.Signals(signum).name}); the emulators are stopped")
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/crm/v3/owners", timeout=5)


@pytest.mark.slow
@pytest.mark.parametrize(("signum", "group", "ui"), [
    pytest.param(signal.SIGINT, True, False, id="SIGINT-to-the-group"),
    pytest.param(signal.SIGTERM, False, True, id="SIGTERM-to-the-cli-with-ui")])
def test_a_demo_stopped_mid_run_stops_emulators_and_prefect_servers(tmp_path: Path, signum: int, group: bool,
                                                                    ui: bool) -> None:
    run = CliProcess("demo", "--people", "50", "--workdir", str(tmp_path / "demo"), *(["--ui"] if ui else []),
                     cwd=tmp_path, env=clean_env())

    def pulling() -> None:
        run.wait_for_line(" User: read ", timeout=240)  # the hub flow is pulling: mid-run
        assert len(run.children()) >= 2, "the emulators' process and the Prefect server"

    lines = stop_when(run, pulling, signum, group)
    assert lines[-1] == (f"stopped: demo ({signal.Signals(signum).name}); the emulators and Prefect servers are "
                         "stopped; the demo database is incomplete (run `journeyhub demo` again)")


@pytest.mark.slow
def test_demo_keep_leaves_the_emulators_up_with_exports_until_ctrl_c(tmp_path: Path) -> None:
    run = CliProcess("demo", "--people", "50", "--workdir", str(tmp_path / "demo"), "--keep", cwd=tmp_path,
                     env=clean_env())

    def kept() -> None:
        run.wait_for_line("Ctrl-C here stops them", timeout=300)
        exports = dict(line.strip()[len("export "):].split("=", 1) for line in run.stdout
                       if line.strip().startswith("export "))
        assert exports["JOURNEYHUB_DATABASE_URL"] == f"sqlite:///{tmp_path / 'demo' / 'journeyhub.db'}"
        status = subprocess.run([*CLI, "status", "--json"], cwd=tmp_path, env=clean_env(**exports),
                                capture_output=True, text=True, timeout=120)
        assert status.returncode == 0 and '"direction": "push"' in status.stdout, status.stderr
        owners = httpx.get(f"{exports['HUBSPOT_BASE_URL']}/crm/v3/owners",
                           headers={"Authorization": f"Bearer {exports['HUBSPOT_ACCESS_TOKEN']}"})
        assert owners.status_code == 200, "the emulators are still up"

    lines = stop_when(run, kept, signal.SIGINT, group=True)
    assert lines[-1] == ("stopped: demo (SIGINT); the emulators are stopped; the demo database stays at "
                         f"{tmp_path / 'demo' / 'journeyhub.db'}")
