"""The circuit breaker per CRM (connectors/breaker.py): a host that gives no answer at all stops its CRM after
the window (at once for a name that does not resolve), any HTTP answer closes it, and every connector turns its
HTTP library's connect failures into the one shared `Unreachable` class."""

from __future__ import annotations

import json
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from canonical.db import make_engine
from canonical.schema import upgrade
from cli.demo_run import free_port
from connectors.breaker import Breaker, connection_failure
from connectors.errors import HostUnreachable, RateLimited, Unreachable, UpstreamError
from connectors.retry import RetryPolicy, call
from journeyhub.connections import open_connector
from journeyhub.settings import Settings
from sandbox.runtime import Sandbox
from tests.cli.processes import CLI, clean_env


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def refused(permanent: bool = False) -> Unreachable:
    return Unreachable("hubspot", "GET /crm/v3/owners: could not reach HubSpot", host="127.0.0.1:9",
                       setting="HUBSPOT_BASE_URL", reason="connection refused", permanent=permanent)


def fails_with(error: Exception, clock: Clock | None = None, advance: float = 0.0):
    calls = []

    def fn() -> None:
        calls.append(1)
        if clock is not None:
            clock.now += advance
        raise error

    return fn, calls


def test_it_opens_after_the_window_of_unanswered_attempts_and_then_fails_without_calling() -> None:
    clock = Clock()
    breaker = Breaker("hubspot", "HubSpot", window=30.0, clock=clock)
    fn, calls = fails_with(refused())
    for _ in range(3):                       # t = 0, 10, 20: still inside the window, the error is retriable
        with pytest.raises(Unreachable):
            breaker.run(fn)
        clock.now += 10.0
    with pytest.raises(HostUnreachable) as opened:   # t = 30
        breaker.run(fn)
    assert len(calls) == 4
    message = str(opened.value)
    assert message.startswith("hubspot: HubSpot at 127.0.0.1:9 cannot be reached (connection refused)")
    assert "HUBSPOT_BASE_URL" in message and "30 s" in message
    with pytest.raises(HostUnreachable):
        breaker.run(lambda: calls.append(1))
    assert len(calls) == 4, "an open breaker does not touch the network"


def test_the_window_counts_from_the_start_of_the_first_silent_attempt() -> None:
    """A connect timeout as long as the window is one attempt: it opens the breaker by itself."""
    clock = Clock()
    breaker = Breaker("dynamics", "Dynamics 365", window=30.0, clock=clock)
    fn, _ = fails_with(refused(), clock, advance=30.0)
    with pytest.raises(HostUnreachable):
        breaker.run(fn)


@pytest.mark.parametrize("answer", [RateLimited("hubspot", "429", status=429, retry_after=1.0),
                                    UpstreamError("hubspot", "HubSpot answered 503", status=503), None])
def test_any_http_answer_closes_it_again(answer: Exception | None) -> None:
    clock = Clock()
    breaker = Breaker("hubspot", "HubSpot", window=30.0, clock=clock)
    silent, _ = fails_with(refused())
    with pytest.raises(Unreachable):
        breaker.run(silent)
    clock.now += 25.0
    if answer is None:
        assert breaker.run(lambda: "ok") == "ok"
    else:
        with pytest.raises(type(answer)):
            breaker.run(fails_with(answer)[0])
    clock.now += 25.0                       # 50 s after the first silent attempt, 25 s after the answer
    with pytest.raises(Unreachable) as still:
        breaker.run(silent)
    assert not isinstance(still.value, HostUnreachable)


def test_a_read_timeout_neither_counts_nor_closes() -> None:
    """A slow answer is not a dead host: it keeps its own retries and does not open the breaker."""
    clock = Clock()
    breaker = Breaker("hubspot", "HubSpot", window=30.0, clock=clock)
    with pytest.raises(UpstreamError):
        breaker.run(fails_with(UpstreamError("hubspot", "no answer within 30 s"), clock, advance=60.0)[0])
    assert breaker.opened is None and breaker.silent_since is None


def test_a_name_that_does_not_resolve_opens_it_at_once() -> None:
    breaker = Breaker("hubspot", "HubSpot", window=30.0, clock=Clock())
    with pytest.raises(HostUnreachable, match="its name does not resolve"):
        breaker.run(fails_with(refused(permanent=True))[0])


def test_under_the_retry_policy_the_breaker_stops_the_retries() -> None:
    """8 attempts / 300 s would retry a refused connection for a minute; the breaker ends it after its window."""
    breaker = Breaker("hubspot", "HubSpot", window=0.3)
    fn, calls = fails_with(refused())
    started = time.monotonic()
    with pytest.raises(HostUnreachable):
        call(fn, policy=RetryPolicy(initial_wait=0.05, max_backoff=0.1), breaker=breaker)
    assert time.monotonic() - started < 2.0 and 2 <= len(calls) < 8


def test_with_the_default_policy_and_window_a_dead_host_is_given_up_within_60_seconds(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The production defaults (8 attempts / 300 s of backoff, a 30 s window), on a clock that the retry waits
    advance: a refused host is given up between 30 and 60 s after its first attempt, without 8 attempts."""
    clock = Clock()
    monkeypatch.setattr("tenacity.nap.time.sleep", lambda seconds: setattr(clock, "now", clock.now + seconds))
    breaker = Breaker("hubspot", "HubSpot", clock=clock)
    fn, calls = fails_with(refused())
    with pytest.raises(HostUnreachable, match="HUBSPOT_BASE_URL"):
        call(fn, policy=RetryPolicy(), breaker=breaker)
    assert breaker.window == 30.0
    assert 30.0 <= clock.now - 1000.0 < 60.0 and len(calls) < RetryPolicy().max_attempts, (clock.now, calls)


def wrapped(cause: BaseException) -> Exception:
    outer = RuntimeError("ConnectError")
    outer.__cause__ = cause
    return outer


@pytest.mark.parametrize(("cause", "why", "permanent"), [
    (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), "the name does not resolve", True),
    (socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), "the name does not resolve", False),
    (ConnectionRefusedError(111, "Connection refused"), "connection refused", False),
    (TimeoutError("timed out"), "connecting timed out", False),
    (OSError(113, "No route to host"), "No route to host", False),
], ids=["nxdomain", "resolver-down", "refused", "timeout", "no-route"])
def test_why_a_connection_failed_and_whether_retrying_can_help(cause: BaseException, why: str,
                                                              permanent: bool) -> None:
    """Only a name that does not exist is hopeless at once; a resolver that cannot be asked gets the window."""
    found, hopeless = connection_failure(wrapped(cause))
    assert found.startswith(why) and hopeless is permanent


def dead_settings(system: str, url: str) -> Settings:
    return Settings.from_env({
        "hubspot": {"HUBSPOT_BASE_URL": url, "HUBSPOT_ACCESS_TOKEN": "pat-secret-token"},
        "salesforce": {"SALESFORCE_INSTANCE_URL": url, "SALESFORCE_ACCESS_TOKEN": "00Dsecret!session"},
        "dynamics": {"DYNAMICS_URL": url, "DYNAMICS_ACCESS_TOKEN": "eyJsecret.token"},
    }[system] | {"JOURNEYHUB_UNREACHABLE_SECONDS": "0.5"})


SETTINGS_OF = {"hubspot": "HUBSPOT_BASE_URL", "salesforce": "SALESFORCE_INSTANCE_URL", "dynamics": "DYNAMICS_URL"}
FAST = RetryPolicy(initial_wait=0.05, max_backoff=0.1)


@pytest.mark.parametrize("system", list(SETTINGS_OF))
def test_every_connector_stops_on_a_closed_port_naming_the_setting(system: str) -> None:
    port = free_port()
    connector = open_connector(system, dead_settings(system, f"http://127.0.0.1:{port}"), retry=FAST)
    try:
        started = time.monotonic()
        with pytest.raises(HostUnreachable) as opened:
            connector.check()
        assert time.monotonic() - started < 3.0
        message = str(opened.value)
        assert f"127.0.0.1:{port}" in message and "connection refused" in message
        assert SETTINGS_OF[system] in message and "secret" not in message
        calls = connector.api_calls
        started = time.monotonic()
        with pytest.raises(HostUnreachable):
            connector.check()
        assert connector.api_calls == calls and time.monotonic() - started < 0.1, "fails at once, sends nothing"
    finally:
        connector.close()


@pytest.fixture
def plain_http() -> Iterator[int]:
    """A port that answers plain HTTP: an https:// URL pointing at it fails in the TLS handshake."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("system", list(SETTINGS_OF))
def test_every_connector_counts_a_failed_tls_handshake_as_no_answer(system: str, plain_http: int) -> None:
    connector = open_connector(system, dead_settings(system, f"https://127.0.0.1:{plain_http}"), retry=FAST)
    try:
        with pytest.raises(HostUnreachable, match="TLS failed") as opened:
            connector.check()
        assert SETTINGS_OF[system] in str(opened.value)
    finally:
        connector.close()


@pytest.mark.parametrize("system", list(SETTINGS_OF))
def test_every_connector_gives_up_on_a_name_that_does_not_resolve(system: str) -> None:
    connector = open_connector(system, dead_settings(system, "https://journeyhub-no-such-host.invalid"),
                               retry=RetryPolicy(initial_wait=2.0, max_backoff=2.0))
    try:
        started = time.monotonic()
        with pytest.raises(HostUnreachable) as opened:
            connector.check()
        # NXDOMAIN opens it at the first attempt (a resolver that cannot be asked at all: after the window)
        assert time.monotonic() - started < 1.5
        assert "journeyhub-no-such-host.invalid" in str(opened.value) and SETTINGS_OF[system] in str(opened.value)
    finally:
        connector.close()


# ------------------------------------------------------------------------------------------- the whole CLI
def dead_hubspot_sync(tmp_path: Path, env: dict[str, str], *systems: str) -> tuple[subprocess.CompletedProcess[str],
                                                                                 float]:
    """`journeyhub sync --json` with HubSpot pointing at a closed port; (the process, its seconds)."""
    env = {**env, "JOURNEYHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}",
           "HUBSPOT_BASE_URL": f"http://127.0.0.1:{free_port()}"}      # nothing listens there
    upgrade(make_engine(env["JOURNEYHUB_DATABASE_URL"]))
    started = time.monotonic()
    result = subprocess.run([*CLI, "sync", *(f"--system={name}" for name in systems), "--json"], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=240)
    return result, time.monotonic() - started


def hubspot_part(result: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert result.returncode == 1, result.stdout + result.stderr
    systems = {system["system"]: system for system in json.loads(result.stdout)["systems"]}
    hubspot = systems["hubspot"]
    assert hubspot["status"] == "failed" and "HUBSPOT_BASE_URL" in (hubspot["error"] or "")
    lines = [line for line in result.stderr.splitlines() if "cannot be reached" in line]
    assert lines and all("HUBSPOT_BASE_URL" in line and "hubspot" in line for line in lines), result.stderr
    assert "Traceback" not in result.stderr
    return systems


@pytest.mark.slow
def test_a_dead_crm_stops_after_the_window_while_the_others_sync(tmp_path: Path) -> None:
    """The Prefect-free path the CLI takes, in-process: a 2 s window and the default retry policy."""
    from flows.sync import close_connectors, run_sync

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(make_engine(url))
    with Sandbox(people=20, seed=2) as sandbox:
        settings = Settings.from_env({**sandbox.env, "JOURNEYHUB_DATABASE_URL": url,
                                      "HUBSPOT_BASE_URL": f"http://127.0.0.1:{free_port()}",
                                      "JOURNEYHUB_UNREACHABLE_SECONDS": "2"})
        try:
            results = {result.system: result for result in run_sync(settings, ["hubspot", "dynamics"])}
        finally:
            close_connectors(settings)
    hubspot = results["hubspot"]
    assert hubspot.status == "failed" and len(hubspot.objects) == 1, "stopped at its first object"
    assert 2 <= hubspot.objects[0].seconds < 10
    assert hubspot.error and "HUBSPOT_BASE_URL" in hubspot.error and "connection refused" in hubspot.error
    assert results["dynamics"].status == "succeeded"


@pytest.mark.slow
def test_sync_with_a_dead_crm_exits_1_after_the_window_naming_the_setting(tmp_path: Path) -> None:
    """Through the CLI, with the window the setting gives (the default 30 s is checked on a simulated clock
    above): the dead CRM's part ends just after the window, exit 1, the others sync."""
    with Sandbox(people=20, seed=2) as sandbox:
        env = clean_env(**sandbox.env, JOURNEYHUB_UNREACHABLE_SECONDS="3")
        result, _ = dead_hubspot_sync(tmp_path, env, "hubspot", "dynamics")
    systems = hubspot_part(result)
    assert 3 <= sum(item["seconds"] for item in systems["hubspot"]["objects"]) < 15
    assert systems["dynamics"]["status"] == "succeeded"
