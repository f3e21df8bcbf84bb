"""`journeyhub demo`: the whole job on an embedded default — three local CRM emulators with a generated
world, a SQLite database, and the hub flow end to end (pull → resolve → tag → push), no credentials and
no server needed. With `ui=True` a local Prefect server is started so the run can be opened in its UI."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from cli.stop import end_process

DEMO_QUERIES = {
    "Customers per stage and segment": (
        "SELECT lifecycle_stage, segment, COUNT(*) AS customers FROM customer_360 "
        "GROUP BY lifecycle_stage, segment ORDER BY customers DESC LIMIT 8"),
    "The lifecycle funnel": (
        "SELECT stage, customers, reached, ROUND(conversion_to_next, 3) AS conversion_to_next, "
        "ROUND(median_days_in_stage, 1) AS median_days FROM lifecycle_funnel ORDER BY stage_order"),
    "One customer's timeline across all three CRMs (marketing emails left out)": (
        "SELECT substr(occurred_at, 1, 16) AS occurred_at, system, kind, channel, direction, title "
        "FROM unified_timeline WHERE kind <> 'marketing_email' AND customer_id = "
        "(SELECT customer_id FROM customer_sources GROUP BY customer_id HAVING COUNT(DISTINCT system) = 3 "
        "ORDER BY customer_id LIMIT 1) ORDER BY occurred_at DESC LIMIT 10"),
}
#: a real person of the demo world for `journeyhub explain`: one with records in all three CRMs
PERSON_IN_THREE_CRMS = (
    "SELECT email FROM customer_360 WHERE email IS NOT NULL AND customer_id IN (SELECT customer_id FROM "
    "customer_sources GROUP BY customer_id HAVING COUNT(DISTINCT system) = 3) ORDER BY customer_id LIMIT 1")


@dataclass
class DemoRun:
    database: Path
    state: Any
    result: Any
    truth: dict[str, Any]
    flow_run_id: str | None
    ui_url: str | None
    seconds: float


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def quiet_prefect(home: Path) -> dict[str, str]:
    """Prefect settings for a self-contained run: its own home, no telemetry, quiet logs."""
    return {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            # runs keep their INFO logs for the UI; the terminal shows the hub's own lines (cli.output)
            "PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL": "ERROR",
            "PREFECT_LOGGING_HANDLERS_CONSOLE_FLOW_RUNS_LEVEL": "ERROR",
            "PREFECT_LOGGING_HANDLERS_CONSOLE_TASK_RUNS_LEVEL": "ERROR",
            "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90"}


@contextmanager
def prefect_server(home: Path) -> Any:
    """A local Prefect server on loopback (SQLite: fine for one demo), stopped on exit."""
    port = free_port()
    env = {**os.environ, **quiet_prefect(home), "PREFECT_UI_API_URL": f"http://127.0.0.1:{port}/api"}
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("w")
    process = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                                "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the Prefect server exited (see {home / 'server.log'})")
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the Prefect server did not start in time (see {home / 'server.log'})")
            time.sleep(0.5)
        yield url
    finally:
        end_process(process)
        log.close()


def prepare_workdir(workdir: Path) -> Path:
    """A fresh demo database (a demo always starts from an empty hub)."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name in ("journeyhub.db", "journeyhub.db-wal", "journeyhub.db-shm"):
        (workdir / name).unlink(missing_ok=True)
    shutil.rmtree(workdir / "prefect", ignore_errors=True)
    (workdir / "prefect").mkdir()
    return workdir / "journeyhub.db"


def run_hub(sandbox_env: dict[str, str], database: Path, prefect_env: dict[str, str]) -> tuple[Any, Any, str | None]:
    """Runs the hub flow in this process with the sandbox's settings; returns (state, result, flow run id)."""
    os.environ.update({**sandbox_env, **prefect_env, "JOURNEYHUB_DATABASE_URL": f"sqlite:///{database}"})
    from canonical.db import make_engine
    from canonical.schema import upgrade
    from flows.hub import hub
    from flows.runtime import outcome

    upgrade(make_engine(f"sqlite:///{database}"))
    state = hub(return_state=True)
    try:
        result = outcome(state)
    except Exception:  # the flow crashed: its state says why
        result = None
    if not hasattr(result, "syncs"):
        result = None
    return state, result, str(state.state_details.flow_run_id) if state.state_details.flow_run_id else None


def query(database: Path, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    from sqlalchemy import text

    from canonical.db import make_engine

    with make_engine(f"sqlite:///{database}").connect() as connection:
        rows = connection.execute(text(sql))
        return list(rows.keys()), [tuple(row) for row in rows]
