"""The flows as Prefect runs them (one session-scoped test harness): a CRM that fails does not stop the
others and the hub run ends Partial with the reason; each flow publishes its ops artifacts."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prefect.testing.utilities import prefect_test_harness

from canonical.db import make_engine
from canonical.schema import upgrade
from cli.demo_run import free_port
from connectors.errors import AuthError
from connectors.retry import RetryPolicy
from flows import sync as sync_flow
from flows.runtime import RunProblems, outcome
from journeyhub.settings import Settings
from sandbox.common.server import EmulatorServer
from sandbox.hubspot import HubSpotEmulator
from sandbox.runtime import Sandbox
from tests.e2e.hub import scalar


@pytest.fixture(scope="session")
def harness() -> Iterator[None]:
    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def hub_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Sandbox, str]]:
    """A sandbox and a database in the process environment: flow runs read `Settings()` in their body."""
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(make_engine(url))
    with Sandbox(people=60, seed=3) as sandbox:
        for name, value in {**sandbox.env, "JOURNEYHUB_DATABASE_URL": url}.items():
            monkeypatch.setenv(name, value)
        yield sandbox, url


def artifacts_of(flow_run_ids: list[Any]) -> set[str]:
    from prefect.settings import PREFECT_API_URL

    response = httpx.post(f"{PREFECT_API_URL.value()}/artifacts/filter", timeout=30, json={
        "artifacts": {"flow_run_id": {"any_": [str(run) for run in flow_run_ids]}}, "limit": 200, "offset": 0})
    response.raise_for_status()
    return {artifact["key"] for artifact in response.json() if artifact["key"]}


def test_one_failing_crm_leaves_the_others_synced_and_the_run_partial(harness: None, hub_env: tuple[Sandbox, str],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.hub import hub

    sandbox, url = hub_env
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "expired-session")
    state = hub(return_state=True)
    assert state.is_failed() and state.name == "Partial", "a run with a failed CRM is never Completed"
    assert "salesforce" in (state.message or "") and "session" in (state.message or "").lower()
    result = outcome(state)
    syncs = {sync.system: sync for sync in result.syncs}
    assert syncs["salesforce"].status == "failed", "nothing of it was pulled"
    assert not any(item.status == "failed" for item in syncs["hubspot"].objects + syncs["dynamics"].objects)
    engine = make_engine(url)
    assert scalar(engine, "SELECT COUNT(*) FROM source_record WHERE system = 'dynamics'") > 0
    assert scalar(engine, "SELECT COUNT(*) FROM source_record WHERE system = 'salesforce'") == 0
    assert scalar(engine, "SELECT COUNT(*) FROM sync_run WHERE system = 'salesforce' AND status = 'failed'") >= 1
    assert {report.systems[0] for report in result.pushes} == {"hubspot", "dynamics"}
    assert sandbox.total_requests("dynamics") > 0


def test_each_flow_publishes_its_ops_artifacts(harness: None, hub_env: tuple[Sandbox, str]) -> None:
    from flows.journey import journey
    from flows.push import push_flow
    from flows.sync import sync_crm

    synced = sync_crm(system="dynamics", return_state=True)
    assert outcome(synced).status in {"succeeded", "partial"}
    tagged = journey(return_state=True)
    assert tagged.is_completed() and tagged.result().customers > 0 and "customers" in (tagged.message or "")
    planned = push_flow(["dynamics"], dry_run=True, return_state=True)
    assert planned.is_completed() and planned.result()[0].dry_run
    # HubSpot notes before the hub's first push: the marker property is missing, said once in the run's artifact
    noted = sync_crm(system="hubspot", objects=["notes"], return_state=True)
    assert [warning.split(";")[0] for warning in outcome(noted).warnings] == [
        "hubspot notes: journeyhub_item_id not in this org"]
    keys = artifacts_of([state.state_details.flow_run_id for state in (synced, tagged, planned, noted)])
    assert {"dynamics-pull", "lifecycle-funnel", "journey-summary", "push-summary", "hubspot-fields"} <= keys
    assert "dynamics-fields" not in keys, "the full org lacks none of the Dataverse fields"


def test_a_token_held_in_a_prefect_secret_block_opens_the_connector(harness: None) -> None:
    """`HUBSPOT_ACCESS_TOKEN_BLOCK` names a Secret block; the hub fetches it when it opens the connector."""
    from prefect.blocks.system import Secret

    from journeyhub.connections import open_connector

    emulator = HubSpotEmulator(rate_limit_per_10s=None)
    with EmulatorServer(emulator) as server:
        Secret(value=emulator.default_token).save("jh-hubspot-token", overwrite=True)
        Secret(value="revoked").save("jh-old-hubspot-token", overwrite=True)
        settings = Settings.from_env({"HUBSPOT_BASE_URL": server.url, "HUBSPOT_ACCESS_TOKEN_BLOCK": "jh-hubspot-token"})
        assert settings.enabled_systems() == ["hubspot"]
        connector = open_connector("hubspot", settings)
        connector.check()
        connector.close()
        revoked = Settings.from_env({"HUBSPOT_BASE_URL": server.url,
                                     "HUBSPOT_ACCESS_TOKEN_BLOCK": "jh-old-hubspot-token"})
        connector = open_connector("hubspot", revoked, retry=RetryPolicy(max_attempts=1))
        with pytest.raises(AuthError):
            connector.check()
        connector.close()


@pytest.fixture
def brief_retries(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shared retry policy and the page task's retries, briefly: a dead host is given up on at once."""
    from connectors.retry import DEFAULT_POLICY

    monkeypatch.setattr(sync_flow, "pull_batch", sync_flow.pull_batch.with_options(retries=0))

    brief = {"max_attempts": 2, "initial_wait": 0.01, "max_backoff": 0.02}
    saved = {name: getattr(DEFAULT_POLICY, name) for name in brief}
    for name, value in brief.items():
        object.__setattr__(DEFAULT_POLICY, name, value)  # a frozen dataclass, shared by every connector
    yield
    for name, value in saved.items():
        object.__setattr__(DEFAULT_POLICY, name, value)


def test_a_crm_that_does_not_answer_fails_its_sync_run_naming_every_object(
        harness: None, hub_env: tuple[Sandbox, str], brief_retries: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.sync import sync_crm

    monkeypatch.setenv("HUBSPOT_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    state = sync_crm(system="hubspot", return_state=True)
    result = outcome(state)
    assert result.status == "failed" and all(item.status == "failed" for item in result.objects)
    assert state.is_failed() and state.name == "Failed"
    assert all(f"hubspot {item.object_type} failed: " in (state.message or "") for item in result.objects)
    with pytest.raises(RunProblems, match="hubspot owners failed"):
        sync_crm(system="hubspot")  # called without return_state, the run's problems are raised


def test_quarantined_records_are_named_but_not_fatal_and_a_push_that_cannot_run_is_not_completed(
        harness: None, hub_env: tuple[Sandbox, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from flows.push import push_flow
    from flows.sync import sync_crm

    pulled = sync_crm(system="hubspot", return_state=True)  # the world's bad contacts are quarantined
    quarantined = outcome(pulled).totals().quarantined
    assert pulled.is_completed() and quarantined > 0, "bad data is quarantined, never fatal to the run"
    assert f"hubspot contacts: {quarantined} record(s) quarantined" in (pulled.message or "")
    monkeypatch.setenv("SALESFORCE_ACCESS_TOKEN", "expired-session")
    pushed = push_flow(["salesforce"], return_state=True)
    assert pushed.is_failed() and pushed.name == "Failed"
    assert (pushed.message or "").startswith("salesforce: push not run: ")


def test_a_dead_crm_host_stops_its_flow_run_after_the_breaker_window(
        harness: None, hub_env: tuple[Sandbox, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The default retries (8 attempts, page tasks retried twice) but a 2 s window: the CRM's run ends in
    seconds, Failed, with one line naming the setting (connectors/breaker.py)."""
    import time

    from flows.sync import sync_crm

    monkeypatch.setenv("HUBSPOT_BASE_URL", f"http://127.0.0.1:{free_port()}")  # nothing listens there
    monkeypatch.setenv("JOURNEYHUB_UNREACHABLE_SECONDS", "2")
    started = time.monotonic()
    state = sync_crm(system="hubspot", return_state=True)
    assert time.monotonic() - started < 20
    result = outcome(state)
    assert state.is_failed() and state.name == "Failed" and len(result.objects) == 1
    assert "cannot be reached (connection refused)" in (state.message or "")
    assert "check HUBSPOT_BASE_URL" in (state.message or "")


def test_a_deployed_run_refuses_malformed_settings_before_any_request(
        harness: None, hub_env: tuple[Sandbox, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """What `config check` and the CLI refuse ends every flow run Failed at once, naming each variable."""
    from flows.hub import hub
    from flows.journey import journey
    from flows.push import push_flow
    from flows.sync import sync_crm

    monkeypatch.setenv("HUBSPOT_BASE_URL", "not-a-url")
    monkeypatch.setenv("JOURNEYHUB_DATABASE_URL", "garbage")
    for state in (sync_crm(system="hubspot", return_state=True), hub(return_state=True),
                  push_flow(return_state=True), journey(return_state=True)):
        message = state.message or ""
        assert state.is_failed() and state.name == "Failed", state
        assert message.startswith("configuration: ") and "HUBSPOT_BASE_URL" in message, message
        assert "JOURNEYHUB_DATABASE_URL" in message, message


def test_a_flow_pulling_a_page_per_task_keeps_each_read_open_between_its_tasks_and_ends_it(
        harness: None, hub_env: tuple[Sandbox, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """One Prefect task per page: each object's read goes on from task to task (`pull_pages(keep_open=...)`)
    and ends with its object; every task's pages are counted in its run, the same as pulled in one task."""
    import threading

    from connectors.hubspot.connector import HubSpotConnector
    from flows.sync import sync_crm
    from journeyhub.ingest import sync as ingest_sync

    _, url = hub_env
    monkeypatch.setenv("JOURNEYHUB_PAGE_TASK_SIZE", "1")
    monkeypatch.setenv("JOURNEYHUB_STORE_GROUP_RECORDS", "1")
    reads: list[str] = []
    real_read = HubSpotConnector.read

    def counted(self: HubSpotConnector, object_type: str, *args: Any, **kwargs: Any) -> Any:
        reads.append(object_type)
        return real_read(self, object_type, *args, **kwargs)

    monkeypatch.setattr(HubSpotConnector, "read", counted)
    state = sync_crm(system="hubspot", objects=["contacts", "email_events"], return_state=True)
    result = outcome(state)
    assert result.status == "succeeded", result.problems()
    assert not ingest_sync._open_reads, "every object's read ended with it"
    assert not [thread for thread in threading.enumerate() if thread.name == "read-ahead" and thread.is_alive()]
    engine = make_engine(url)
    events = next(item for item in result.objects if item.object_type == "email_events")
    assert events.counts.records_read > 1000, "more than one page, so more than one task"
    assert sorted(reads) == ["contacts", "email_events"], "one read per object, not one per task"
    assert scalar(engine, "SELECT COUNT(*) FROM interaction WHERE kind = 'marketing_email'") == events.counts.inserted
    assert scalar(engine, "SELECT SUM(records_read) FROM sync_run WHERE object_type = 'email_events'") == \
        events.counts.records_read
