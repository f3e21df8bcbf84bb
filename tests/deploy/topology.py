"""The production topology on one machine, driven the way IT drives it: the `prefect` and `journeyhub`
commands of the README, a Prefect server on its own PostgreSQL database, process workers, and the sandbox
CRMs whose request logs measure what reached them."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def peak(times: list[float], window: float = 10.0) -> int:
    """The most requests that arrived within any `window` seconds (both ends included)."""
    times, best, first = sorted(times), 0, 0
    for last, moment in enumerate(times):
        while moment - times[first] > window:
            first += 1
        best = max(best, last - first + 1)
    return best


def budget(rate: str, window: float = 10.0) -> int:
    """What `burst/per-second` allows in any window: the burst, plus the rate over the window."""
    burst, per_second = rate.split("/")
    return int(burst) + int(float(per_second) * window)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (read from /proc: the flow-run process a worker started, and its own)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(parent, []).append(int(entry.name))
    found, pending = [], [pid]
    while pending:
        children = parents.get(pending.pop(), [])
        found += children
        pending += children
    return found


@dataclass
class Topology:
    """A running Prefect server, the environment every command and worker gets, and the workers."""

    api: str
    env: dict[str, str]
    logs: Path
    server: subprocess.Popen[bytes]
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # ------------------------------------------------------------------ the recipe's commands
    def command(self, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
                timeout: float = 180) -> str:
        """Run `prefect …` or `journeyhub …` as IT would; its output, or a failure showing it."""
        return self.commands([args], cwd=cwd, env=env, timeout=timeout)[0]

    def commands(self, commands: list[tuple[str, ...]], *, cwd: Path = ROOT, env: dict[str, str] | None = None,
                 timeout: float = 180) -> list[str]:
        """Independent commands started at once (each one's Python start-up is seconds on a busy machine)."""
        started = [(args, self.start(*args, cwd=cwd, env=env)) for args in commands]
        outputs = []
        for args, process in started:
            output = process.communicate(timeout=timeout)[0]
            assert process.returncode == 0, f"{' '.join(args)} failed:\n{output[-4000:]}"
            outputs.append(output)
        return outputs

    def start(self, *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen([str(BIN / args[0]), *args[1:]], cwd=cwd, env=env or self.env,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)

    def start_workers(self, *names: str, limit: int = 2) -> None:
        """`prefect worker start --pool journeyhub --name NAME --limit 2` for each, until all are online."""
        for name in names:
            log = (self.logs / f"{name}.log").open("ab")
            self.workers[name] = subprocess.Popen(
                [str(BIN / "prefect"), "worker", "start", "--pool", "journeyhub", "--name", name, "--limit",
                 str(limit)], cwd=self.logs, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 90
        while not set(names) <= self.online_workers():
            for name in names:
                assert self.workers[name].poll() is None, f"worker {name} exited (see {self.logs / name}.log)"
            assert time.monotonic() < deadline, f"workers {names} did not come online"
            time.sleep(0.5)

    def kill_worker(self, name: str) -> list[int]:
        """kill -9 of the worker and everything it started (its flow-run process and that one's children)."""
        worker = self.workers.pop(name)
        victims = [worker.pid, *descendants(worker.pid)]
        for pid in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        worker.wait(10)
        return victims

    def run(self, deployment: str, **parameters: Any) -> str:
        """`prefect deployment run NAME --param k=v …`; the new flow run's id."""
        return self.run_many([(deployment, parameters)])[0]

    def run_many(self, runs: list[tuple[str, dict[str, Any]]]) -> list[str]:
        """Several `prefect deployment run` commands started at once (as several operators would); their ids."""
        commands = []
        for deployment, parameters in runs:
            args = ["prefect", "deployment", "run", deployment]
            for name, value in parameters.items():
                args += ["--param", f"{name}={str(value).lower() if isinstance(value, bool) else value}"]
            commands.append(tuple(args))
        ids = []
        for output in self.commands(commands):
            found = re.search(r"UUID: ([0-9a-f-]{36})", output)
            assert found, f"prefect deployment run printed no flow-run id:\n{output[-3000:]}"
            ids.append(found.group(1))
        return ids

    # ------------------------------------------------------------------ what the server knows
    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.api}{path}", timeout=30)
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(f"{self.api}{path}", json=body, timeout=30)
        response.raise_for_status()
        return response.json()

    def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        return dict(self.get(f"/flow_runs/{flow_run_id}"))

    def state(self, flow_run_id: str) -> str:
        state = self.flow_run(flow_run_id).get("state") or {}
        return str(state.get("type", "PENDING"))

    def wait(self, flow_run_ids: list[str], timeout: float = 300, until: set[str] = FINAL) -> dict[str, dict]:
        deadline = time.monotonic() + timeout
        while True:
            runs = {run: self.flow_run(run) for run in flow_run_ids}
            if all((run.get("state") or {}).get("type") in until for run in runs.values()):
                return runs
            assert time.monotonic() < deadline, "flow runs still not done: " + ", ".join(
                f"{run['name']} {(run.get('state') or {}).get('type')}" for run in runs.values())
            time.sleep(1)

    def worker_of(self, flow_run_id: str) -> str:
        return str(self.flow_run(flow_run_id).get("labels", {}).get("prefect.worker.name"))

    def online_workers(self) -> set[str]:
        workers = self.post("/work_pools/journeyhub/workers/filter", {"limit": 50, "offset": 0})
        return {worker["name"] for worker in workers if worker.get("status") == "ONLINE"}

    def log_lines(self, flow_run_id: str) -> list[str]:
        logs = self.post("/logs/filter", {"logs": {"flow_run_id": {"any_": [flow_run_id]}}, "limit": 200,
                                          "offset": 0, "sort": "TIMESTAMP_ASC"})
        return [entry["message"] for entry in logs]

    def stop_worker(self, name: str) -> None:
        """SIGTERM, as a service manager would; a worker that does not stop within 20 s is killed."""
        worker = self.workers.pop(name)
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            for pid in [worker.pid, *descendants(worker.pid)]:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            worker.wait(10)

    def stop(self) -> None:
        for name in list(self.workers):
            self.stop_worker(name)
        self.server.terminate()
        try:
            self.server.wait(20)
        except subprocess.TimeoutExpired:
            self.server.kill()
            self.server.wait(10)


def start_server(home: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    """`prefect server start` on loopback, backed by PostgreSQL; returns it and its API URL once healthy."""
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
    env.update(PREFECT_HOME=str(home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               PREFECT_SERVER_DATABASE_CONNECTION_URL=database_url)
    home.mkdir(parents=True, exist_ok=True)
    log = (home / "server.log").open("ab")
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              cwd=home, env=env, stdout=log, stderr=subprocess.STDOUT)
    api = f"http://127.0.0.1:{port}/api"
    deadline = time.monotonic() + 120
    while True:
        assert server.poll() is None, f"the Prefect server exited (see {home / 'server.log'})"
        try:
            if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                return server, api
        except httpx.HTTPError:
            pass
        assert time.monotonic() < deadline, f"the Prefect server did not start (see {home / 'server.log'})"
        time.sleep(0.5)
