"""README "Production topology", run as written: a Prefect server on its own PostgreSQL database, the
`journeyhub` work pool, the automation, `prefect deploy --all`, two process workers, the canonical database on
PostgreSQL, the sandbox CRMs. Every CRM's API budget is set low, and the emulators' request logs show it
held in every 10-second window, on the deployment path and on the CLI path against the server.

The tests run in order and build on each other (one topology per module, as one would set it up once):
deploy → a worker killed mid-pull, then two runs of that CRM at once (resume, one writer per object) →
the three CRMs at once on both workers → hub-incremental (the world, the push) → the CLI against the server →
the killed run ended Crashed.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.settings import PREFECT_API_URL, temporary_settings
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from canonical.db import make_engine
from canonical.schema import upgrade
from connectors.hubspot.reference import EVENTS_PATH
from flows.limits import ensure_rate_limit
from journeyhub.settings import Settings
from sandbox.common.faults import FaultConfig, FaultRule
from sandbox.runtime import Sandbox
from sandbox.truthcheck import check
from tests.conftest import POSTGRES_URL
from tests.deploy.topology import BIN, ROOT, Topology, budget, peak, start_server

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PEOPLE = 300
#: each CRM's budget, low enough that every run below is paced by it (burst/per-second)
RATES = {"hubspot": "5/1.5", "salesforce": "2/0.7", "dynamics": "2/0.7"}
WORKERS = ("worker-a", "worker-b")
STATE: dict[str, Any] = {}


def needs(*keys: str) -> None:
    missing = [key for key in keys if key not in STATE]
    if missing:
        pytest.skip(f"runs after the tests before it in this module (missing {', '.join(missing)})")


@pytest.fixture(scope="module")
def databases() -> Iterator[tuple[str, str]]:
    """Two fresh databases on the test PostgreSQL: the Prefect server's own, and the canonical one."""
    admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(f"CI=true but PostgreSQL at {POSTGRES_URL} is unreachable: {error}")
        pytest.skip(f"no PostgreSQL server reachable at {POSTGRES_URL}")
    suffix = uuid.uuid4().hex[:10]
    names = [f"prefect_test_{suffix}", f"jh_deploy_{suffix}"]
    with admin.connect() as connection:
        for name in names:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    base = make_url(POSTGRES_URL)
    try:
        yield (base.set(drivername="postgresql+asyncpg", database=names[0]).render_as_string(hide_password=False),
               base.set(drivername="postgresql", database=names[1]).render_as_string(hide_password=False))
    finally:
        with admin.connect() as connection:
            for name in names:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def world() -> Iterator[Sandbox]:
    with Sandbox(people=PEOPLE, seed=7) as sandbox:
        yield sandbox


@pytest.fixture(scope="module")
def topology(tmp_path_factory: pytest.TempPathFactory, databases: tuple[str, str],
             world: Sandbox) -> Iterator[Topology]:
    prefect_db, canonical_db = databases
    logs = tmp_path_factory.mktemp("topology")
    server, api = start_server(logs / "server", prefect_db)
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("PREFECT_", "JOURNEYHUB_", "HUBSPOT_", "SALESFORCE_", "DYNAMICS_"))}
    env.update(world.env, PREFECT_API_URL=api, PREFECT_HOME=str(logs / "client"),
               PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_FLOWS_HEARTBEAT_FREQUENCY="30",
               PREFECT_WORKER_QUERY_SECONDS="2", JOURNEYHUB_DATABASE_URL=canonical_db,
               **{f"JOURNEYHUB_RATE_{system.upper()}": rate for system, rate in RATES.items()})
    running = Topology(api=api, env=env, logs=logs, server=server)
    try:
        yield running
    finally:
        running.stop()
        print(f"\ntopology logs (server, workers): {logs}")


@pytest.fixture(scope="module")
def canonical(topology: Topology) -> Iterator[Engine]:
    engine = make_engine(topology.env["JOURNEYHUB_DATABASE_URL"])
    yield engine
    engine.dispose()


class Reference:
    """What one uninterrupted HubSpot pull stores and counts, per object: a plain `journeyhub sync` with no
    server into a scratch SQLite database, at full speed (started at once, in the background)."""

    def __init__(self, topology: Topology, scratch: Path) -> None:
        self.url = f"sqlite:///{scratch / 'hub.db'}"
        env = {key: value for key, value in topology.env.items() if not key.startswith(("PREFECT_API", "JOURNEYHUB_"))}
        env.update(JOURNEYHUB_DATABASE_URL=self.url, JOURNEYHUB_RATE_HUBSPOT="1000/1000")
        upgrade(make_engine(self.url))
        self.process = topology.start("journeyhub", "sync", "--system", "hubspot", env=env)
        self._counts: tuple[dict[str, int], dict[str, tuple[int, int]]] | None = None

    def counts(self) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
        """(records stored per object, (read, inserted) per object)."""
        if self._counts is None:
            output = self.process.communicate(timeout=300)[0]
            assert self.process.returncode == 0, output[-3000:]
            engine = make_engine(self.url)
            self._counts = stored(engine, "hubspot"), pull_totals(engine, "hubspot")
            engine.dispose()
        return self._counts


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, topology: Topology) -> Reference:
    return Reference(topology, tmp_path_factory.mktemp("reference"))


def stored(engine: Engine, system: str) -> dict[str, int]:
    with engine.connect() as connection:
        return dict(connection.execute(text("SELECT object_type, COUNT(*) FROM source_record WHERE system = :s "
                                            "GROUP BY object_type"), {"s": system}).all())


def pull_totals(engine: Engine, system: str, run_ids: list[str] | None = None) -> dict[str, tuple[int, int]]:
    """(records read, inserted) per object, summed over the pull runs (all, or those of `run_ids`)."""
    sql = ("SELECT object_type, SUM(records_read), SUM(inserted) FROM sync_run WHERE direction = 'pull' "
           "AND system = :s")
    params: dict[str, Any] = {"s": system}
    if run_ids is not None:
        sql += " AND run_id IN ({})".format(", ".join(f":r{i}" for i in range(len(run_ids))))
        params.update({f"r{i}": run for i, run in enumerate(run_ids)})
    with engine.connect() as connection:
        return {row[0]: (int(row[1]), int(row[2])) for row in connection.execute(text(sql + " GROUP BY object_type"),
                                                                                  params)}


def assert_within_budgets(world: Sandbox, rates: dict[str, str] = RATES) -> dict[str, int]:
    """Every CRM's busiest 10 seconds in its request log, checked against its budget; returns the peaks."""
    peaks = {system: peak(world.request_times(system)) for system in rates}
    for system, rate in rates.items():
        assert peaks[system] <= budget(rate), f"{system}: {peaks[system]} requests in 10 s, budget {budget(rate)}"
    print(f"peak requests per 10 s: {peaks} (budgets {({s: budget(r) for s, r in rates.items()})})")
    return peaks


# ---------------------------------------------------------------------------------------------- the recipe
def test_the_recipe_deploys_the_project_and_two_workers_come_online(topology: Topology,
                                                                    reference: Reference) -> None:
    deploy(topology)


def deploy(topology: Topology) -> None:
    """The recipe's commands and two workers online (STATE["deployed"] once done)."""
    topology.commands([("journeyhub", "db", "upgrade"),  # independent of each other: started at once
                       ("prefect", "work-pool", "create", "journeyhub", "--type", "process"),
                       ("prefect", "automation", "create", "--from-file", "prefect-automations.yaml")])
    topology.command("prefect", "--no-prompt", "deploy", "--all")
    topology.start_workers(*WORKERS)
    deployments = topology.post("/deployments/filter", {"limit": 50, "offset": 0})
    assert {deployment["name"] for deployment in deployments} == {
        "hub-incremental", "nightly-reconciliation", "tag-only", "push-only", "sync-one-crm"}
    assert topology.online_workers() == set(WORKERS)
    STATE["deployed"] = True


def test_a_worker_killed_mid_pull_loses_and_doubles_nothing(topology: Topology, canonical: Engine,
                                                           world: Sandbox, reference: Reference) -> None:
    needs("deployed")
    reference_stored, reference_runs = reference.counts()
    killed = topology.run("sync-crm/sync-one-crm", system="hubspot")
    deadline = time.monotonic() + 180
    while not (topology.state(killed) == "RUNNING" and stored(canonical, "hubspot").get("email_events")):
        assert time.monotonic() < deadline, f"the pull did not get to its email events (state {topology.state(killed)})"
        assert topology.state(killed) not in {"COMPLETED", "FAILED", "CRASHED"}, "the pull ended before the kill"
        time.sleep(0.2)
    worker = topology.worker_of(killed)
    victims = topology.kill_worker(worker)
    at_kill = stored(canonical, "hubspot")
    STATE["killed"], STATE["killed_at"] = killed, time.monotonic()
    assert len(victims) >= 2, "the worker had no flow-run process to kill"
    assert sum(at_kill.values()) < sum(reference_stored.values()), "the pull had finished before the kill"
    topology.start_workers(worker)

    # two runs of the same CRM at once: one goes on from the killed run's cursors, the other waits per object.
    # The first email-events request after the kill is held 20 s (under the client's 30 s read timeout), so the
    # two runs surely meet on that object however far apart the workers pick them up.
    world.reset_request_logs()
    world.set_faults("hubspot", FaultConfig(rules=[FaultRule(kind="delay", path=EVENTS_PATH, delay_seconds=20)]))
    try:
        again = topology.run_many([("sync-crm/sync-one-crm", {"system": "hubspot"})] * 2)
        runs = topology.wait(again, timeout=240)
    finally:
        world.set_faults("hubspot", FaultConfig())
    assert [run["state"]["type"] for run in runs.values()] == ["COMPLETED", "COMPLETED"]
    assert stored(canonical, "hubspot") == reference_stored, "lost or doubled records"
    # every record read and counted once over the killed run and the two after it: as one uninterrupted pull
    assert pull_totals(canonical, "hubspot") == reference_runs
    later = pull_totals(canonical, "hubspot", run_ids=again)
    waited = [line for run in again for line in topology.log_lines(run) if "another run is pulling it" in line]
    assert waited, "neither run had to wait for the other: the two never pulled the same object at once"
    assert all(read <= reference_runs[name][0] for name, (read, _) in later.items())
    with canonical.connect() as connection:
        interrupted = connection.execute(text(
            "SELECT COUNT(*) FROM sync_run WHERE run_id = :r AND status = 'failed' AND error LIKE 'interrupted%'"),
            {"r": killed}).scalar()
        running = connection.execute(text("SELECT COUNT(*) FROM sync_run WHERE status = 'running'")).scalar()
    # each object in flight at the kill (up to JOURNEYHUB_OBJECT_CONCURRENCY of one wave) is closed as interrupted
    in_flight = Settings.model_fields["object_concurrency"].default
    assert 1 <= interrupted <= in_flight and running == 0, "the killed run's objects were not closed as interrupted"
    STATE["peaks-resume"] = assert_within_budgets(world, {"hubspot": RATES["hubspot"]})


def test_the_three_crms_sync_at_once_on_both_workers(topology: Topology, world: Sandbox) -> None:
    needs("deployed")
    world.reset_request_logs()
    started = time.monotonic()
    ids = topology.run_many([("sync-crm/sync-one-crm", {"system": system, "full": True}) for system in RATES])
    runs = dict(zip(RATES, ids, strict=True))
    done = topology.wait(list(runs.values()), timeout=300)
    STATE["parallel_seconds"] = time.monotonic() - started
    assert {run["state"]["type"] for run in done.values()} == {"COMPLETED"}
    workers = {topology.worker_of(run) for run in runs.values()}
    print(f"three sync-one-crm runs at once: {STATE['parallel_seconds']:.0f} s, on {sorted(workers)}")
    assert workers == set(WORKERS), "the runs did not spread over both workers"
    sent = {system: len(world.request_times(system)) for system in RATES}
    assert all(sent[system] > budget(rate) for system, rate in RATES.items()), \
        f"requests {sent}: a CRM got no more than its budget allows in 10 s, so the budget was never put to the test"
    STATE["peaks-parallel"] = assert_within_budgets(world)
    lines = {system: topology.log_lines(run) for system, run in runs.items()}
    for system in ("salesforce", "dynamics"):  # their first runs: the limits are made on demand, and said once
        assert sum(f"created the Prefect rate limit crm-{system}" in line for line in lines[system]) == 1
    for system, messages in lines.items():
        assert not [line for line in messages if "do not exist" in line], f"{system}: a limit was skipped"
        assert sum("waiting for the API budget" in line for line in messages) <= 1, f"{system}: said more than once"


def test_hub_incremental_completes_on_a_worker_with_the_world_and_the_push(topology: Topology, canonical: Engine,
                                                                          world: Sandbox) -> None:
    needs("deployed")
    world.reset_request_logs()
    run = topology.run("hub/hub-incremental")
    state = topology.wait([run], timeout=300)[run]["state"]
    assert state["type"] == "COMPLETED" and state["name"] == "Completed", state
    assert topology.worker_of(run) in WORKERS
    report = check(canonical, world.truth)
    assert report.persons == PEOPLE and report.perfect, report.problems
    with canonical.connect() as connection:
        pushed = dict(connection.execute(text(
            "SELECT system, pushed FROM sync_run WHERE direction = 'push' AND flow_run_id IS NOT NULL")).all())
    written = {"hubspot": sum(len(rows) for rows in world.dump_writes("hubspot")["objects"].values()),
               **{system: sum(len(rows) for rows in world.dump_writes(system).values())
                  for system in ("salesforce", "dynamics")}}
    assert set(pushed) == set(RATES) and all(count > 0 for count in pushed.values())
    assert written == pushed, "what the emulators received is not what the push reported"
    STATE["peaks-hub"] = assert_within_budgets(world)


def test_cli_runs_against_the_server_share_the_budget(topology: Topology, world: Sandbox) -> None:
    needs("deployed")
    rate = "6/3"
    env = {**topology.env, "JOURNEYHUB_RATE_HUBSPOT": rate}
    httpx.delete(f"{topology.api}/v2/concurrency_limits/crm-hubspot", timeout=30).raise_for_status()
    world.reset_request_logs()
    command = [str(BIN / "journeyhub"), "sync", "--system", "hubspot", "--full"]
    runs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            for _ in range(2)]
    outputs = [run.communicate(timeout=300)[0] for run in runs]
    for run, output in zip(runs, outputs, strict=True):
        assert run.returncode == 0, output[-3000:]
    assert len(world.request_times("hubspot")) > budget(rate), "too few requests to put the budget to the test"
    STATE["peaks-cli"] = assert_within_budgets(world, {"hubspot": rate})
    flows = topology.post("/flow_runs/filter", {"flow_runs": {  # runs of no deployment and no parent run
        "deployment_id": {"is_null_": True}, "parent_task_run_id": {"is_null_": True}}, "limit": 50, "offset": 0})
    assert sorted(run["name"][:12] for run in flows) == ["sync-hubspot"] * 2, "the CLI runs are not on the server"
    # the limit was gone: the two runs made it on their first requests, once, at the CLI's size
    created = [line for run in flows for line in topology.log_lines(run["id"])
               if "created the Prefect rate limit" in line]
    assert created == ["created the Prefect rate limit crm-hubspot: burst 6, 3 requests/s"]
    limit = topology.get("/v2/concurrency_limits/crm-hubspot")
    assert (limit["limit"], limit["slot_decay_per_second"]) == (6, 3.0)
    # a run with JOURNEYHUB_RATE_HUBSPOT set to another size resizes it; one with the default keeps it
    with temporary_settings({PREFECT_API_URL: topology.api}):
        assert ensure_rate_limit("hubspot", 8, 4.0, resize=False) == (6, 3.0)
        assert ensure_rate_limit("hubspot", 8, 4.0, resize=True) == (8, 4.0)
        limit = topology.get("/v2/concurrency_limits/crm-hubspot")
        assert (limit["limit"], limit["slot_decay_per_second"]) == (8, 4.0)
        ensure_rate_limit("hubspot", 6, 3.0, resize=True)


def test_the_killed_run_ends_crashed(topology: Topology) -> None:
    needs("killed")
    remaining = 150 - (time.monotonic() - STATE["killed_at"])  # a heartbeat every 30 s, silence for 90 s
    topology.wait([STATE["killed"]], timeout=max(remaining, 5), until={"CRASHED"})
    messages = topology.flow_run(STATE["killed"])["state"]["message"] or ""
    assert "heartbeat" in messages


def sequential_versus_parallel(topology: Topology, world: Sandbox) -> dict[str, Any]:
    """The three full syncs at once on both workers, then the same three one after another on one worker."""
    world.reset_request_logs()
    started = time.monotonic()
    topology.wait(topology.run_many([("sync-crm/sync-one-crm", {"system": system, "full": True})
                                     for system in RATES]), 300)
    parallel = time.monotonic() - started
    peaks_parallel = assert_within_budgets(world)
    topology.stop_worker(WORKERS[1])
    world.reset_request_logs()
    started = time.monotonic()
    for system in RATES:
        run = topology.run("sync-crm/sync-one-crm", system=system, full=True)
        topology.wait([run], 300)
        assert topology.worker_of(run) == WORKERS[0]
    return {"at once": parallel, "in a row": time.monotonic() - started, "peaks at once": peaks_parallel,
            "peaks in a row": assert_within_budgets(world)}


@pytest.mark.measure  # a benchmark, deselected by default: `python -m pytest -m measure tests/deploy -s -n 0`
def test_measure_three_syncs_at_once_against_in_a_row(topology: Topology, world: Sandbox) -> None:
    if "deployed" not in STATE:  # run alone (`-m measure` deselects the recipe's test): deploy first
        deploy(topology)
    measured = sequential_versus_parallel(topology, world)
    print(f"\nthree sync-one-crm full runs: {measured}")
    assert measured["at once"] < measured["in a row"]
