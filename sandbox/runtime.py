"""`Sandbox`: the three CRM emulators, seeded with a generated world, served on loopback.

    with Sandbox(people=2000, seed=7, org="plain", history=True) as sandbox:
        os.environ.update(sandbox.env)        # point the hub at the emulators
        ...
        sandbox.request_counts("hubspot")     # API calls per endpoint (what benchmarks report)
        sandbox.dump_writes("salesforce")     # everything written through the API (write-back's output)

`org` is "full" (every custom field the hub's mappings use exists) or "plain" (a standard org without them,
sandbox/common/org.py); `history` (default: on for "plain") seeds records archived, deleted or merged before
the hub's first sync (sandbox/world/history.py). By default the emulators run in threads of this process
(fast to start, easy to inspect). With
`process=True` they run in a child process (`python -m sandbox serve`), so a benchmark's client and the
emulators do not share one interpreter lock; everything above still works, over the admin HTTP API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from sandbox.common.emulator import Emulator
from sandbox.common.faults import FaultConfig, profile
from sandbox.common.org import check_org, default_history
from sandbox.common.server import EmulatorServer

SYSTEMS = ("hubspot", "salesforce", "dynamics")
FaultsArg = str | FaultConfig | dict[str, FaultConfig] | None


@dataclass
class Endpoint:
    """One running emulator: its URL and, in-process, the emulator object itself."""

    system: str
    url: str
    emulator: Emulator | None = None
    server: EmulatorServer | None = None

    def admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(method, f"{self.url}/__sandbox/{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json()


def fault_configs(faults: FaultsArg, seed: int) -> dict[str, FaultConfig]:
    if faults is None:
        return {system: FaultConfig(seed=seed) for system in SYSTEMS}
    if isinstance(faults, str):
        return {system: profile(faults, seed) for system in SYSTEMS}
    if isinstance(faults, FaultConfig):
        return {system: faults for system in SYSTEMS}
    return {system: faults.get(system, FaultConfig(seed=seed)) for system in SYSTEMS}


def build_emulators(faults: dict[str, FaultConfig], *, limits: bool = True, org: str = "full") -> dict[str, Emulator]:
    """The three emulators of an `org` profile; `limits=False` switches off the vendors' rate limiters (fast
    local demos)."""
    from sandbox.dynamics import DynamicsEmulator
    from sandbox.hubspot import HubSpotEmulator
    from sandbox.salesforce import SalesforceEmulator
    from sandbox.world.render_hubspot import PORTAL_ID

    return {
        "hubspot": HubSpotEmulator(faults["hubspot"], portal_id=PORTAL_ID, org=org,
                                   rate_limit_per_10s=190 if limits else None, search_per_second=5 if limits else None),
        "salesforce": SalesforceEmulator(faults["salesforce"], org=org),
        "dynamics": DynamicsEmulator(faults["dynamics"], requests_per_5min=6000 if limits else None, org=org),
    }


class Sandbox:
    """Generated world + three emulators on loopback; a context manager."""

    def __init__(self, people: int = 2000, seed: int = 7, *, anchor: datetime | None = None,
                 faults: FaultsArg = "none", world: Any = None, process: bool = False, limits: bool = True,
                 ports: dict[str, int] | None = None, org: str = "full", history: bool | None = None) -> None:
        self.people, self.seed, self.process, self.limits = people, seed, process, limits
        self.org = check_org(org)
        self.history = default_history(org) if history is None else history
        self.anchor = anchor or datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        self.faults = fault_configs(faults, seed)
        self.world = world
        self.ports = ports or {}
        self.endpoints: dict[str, Endpoint] = {}
        self._child: subprocess.Popen[str] | None = None

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> Sandbox:
        try:
            self._start_child() if self.process else self._start_threads()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _start_threads(self) -> None:
        from sandbox.world import generate

        if self.world is None:
            self.world = generate(self.people, self.seed, self.anchor, org=self.org, history=self.history)
        for system, emulator in build_emulators(self.faults, limits=self.limits, org=self.org).items():
            emulator.load(getattr(self.world, system))
            server = EmulatorServer(emulator, self.ports.get(system, 0)).start()
            self.endpoints[system] = Endpoint(system, server.url, emulator, server)

    def _start_child(self) -> None:
        command = [sys.executable, "-m", "sandbox", "serve", "--people", str(self.people), "--seed", str(self.seed),
                   "--anchor", self.anchor.isoformat(), "--org", self.org,
                   "--history" if self.history else "--no-history", "--faults-json",
                   json.dumps({system: config.model_dump() for system, config in self.faults.items()})]
        if not self.limits:
            command.append("--no-limits")
        for system, port in self.ports.items():
            command += [f"--{system}-port", str(port)]
        self._child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._child.stdout is not None
        ready = self._child.stdout.readline()
        if not ready.startswith("READY "):
            raise RuntimeError("the sandbox child process did not start (see its output above)")
        for system, url in json.loads(ready[6:]).items():
            self.endpoints[system] = Endpoint(system, url)

    def stop(self) -> None:
        for endpoint in self.endpoints.values():
            if endpoint.server is not None:
                endpoint.server.stop()
        child, self._child = self._child, None
        if child is not None:  # SIGTERM ends `python -m sandbox serve` at once and silently
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
            if child.stdout is not None:
                child.stdout.close()

    # ------------------------------------------------------------------ what tests and the demo use
    def __getattr__(self, name: str) -> Endpoint:
        if name in SYSTEMS and name in self.__dict__.get("endpoints", {}):
            return self.endpoints[name]
        raise AttributeError(name)

    @property
    def truth(self) -> dict[str, Any]:
        if self.world is None:
            from sandbox.world import generate

            self.world = generate(self.people, self.seed, self.anchor, org=self.org, history=self.history)
        return self.world.truth

    @property
    def env(self) -> dict[str, str]:
        """Environment variables pointing Journey Hub at the emulators (static tokens)."""
        from sandbox.common.emulator import Emulator as Base

        token = Base.default_token
        return {
            "HUBSPOT_BASE_URL": self.endpoints["hubspot"].url,
            "HUBSPOT_ACCESS_TOKEN": token,
            "SALESFORCE_INSTANCE_URL": self.endpoints["salesforce"].url,
            "SALESFORCE_ACCESS_TOKEN": token,
            "DYNAMICS_URL": self.endpoints["dynamics"].url,
            "DYNAMICS_ACCESS_TOKEN": token,
        }

    @property
    def login_env(self) -> dict[str, str]:
        """Variables for the refreshable logins (Salesforce client credentials, Dataverse client secret),
        for runs where tokens expire mid-sync."""
        salesforce, dynamics = self.endpoints["salesforce"].url, self.endpoints["dynamics"].url
        return {
            "HUBSPOT_BASE_URL": self.endpoints["hubspot"].url,
            "HUBSPOT_ACCESS_TOKEN": "sandbox-token",
            "SALESFORCE_INSTANCE_URL": salesforce,
            "SALESFORCE_CLIENT_ID": "sandbox-client",
            "SALESFORCE_CLIENT_SECRET": "sandbox-secret",
            "DYNAMICS_URL": dynamics,
            "DYNAMICS_TENANT_ID": "sandbox-tenant",
            "DYNAMICS_CLIENT_ID": "sandbox-client",
            "DYNAMICS_CLIENT_SECRET": "sandbox-secret",
            "DYNAMICS_TOKEN_URL": f"{dynamics}/sandbox-tenant/oauth2/v2.0/token",
        }

    def request_counts(self, system: str) -> dict[str, int]:
        return self.endpoints[system].admin("GET", "requests?log=0")["counts"]

    def total_requests(self, system: str) -> int:
        return sum(self.request_counts(system).values())

    def request_times(self, system: str) -> list[float]:
        """Arrival times (seconds since the epoch) of the HTTP requests in the log, in order: what request
        rates are measured from. Operations inside a Dataverse `$batch` travel in their batch's request."""
        log = self.endpoints[system].admin("GET", "requests")["log"]
        return sorted(entry["at"] for entry in log if not entry["route"].startswith("$batch:"))

    def reset_request_logs(self) -> None:
        for endpoint in self.endpoints.values():
            endpoint.admin("POST", "requests/reset")

    def dump_writes(self, system: str) -> dict[str, Any]:
        return self.endpoints[system].admin("GET", "dump")

    def set_faults(self, system: str, config: FaultConfig) -> None:
        self.endpoints[system].admin("PUT", "faults", json=config.model_dump())

    def export_lines(self) -> str:
        """`export NAME=value` lines for a shell."""
        return "\n".join(f"export {name}={value}" for name, value in self.env.items())


def env_for_child(sandbox: Sandbox) -> dict[str, str]:
    """The current environment plus the sandbox's variables (for subprocesses in tests and the demo)."""
    return {**os.environ, **sandbox.env}
