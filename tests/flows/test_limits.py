"""A CRM's API budget where no Prefect server is configured: `journeyhub sync` keeps to it by itself (a token
bucket in the process), measured in the emulator's request log; one budget per CRM and size per process; and
with a server, the same bucket paces one process's sends whatever the timing of the server's grants."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import flows.limits
from canonical.db import make_engine
from canonical.schema import upgrade
from flows.limits import CrmBudget, PrefectSlots, throttle
from journeyhub.budget import TokenBucket
from journeyhub.settings import Settings
from sandbox.runtime import Sandbox
from tests.deploy.topology import budget, peak

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_without_a_server_a_cli_sync_keeps_to_the_budget(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(make_engine(url))
    rate = "3/2"
    with Sandbox(people=300, seed=7) as sandbox:
        env = {key: value for key, value in os.environ.items() if not key.startswith(("PREFECT_", "JOURNEYHUB_"))}
        env.update(sandbox.env, JOURNEYHUB_DATABASE_URL=url, JOURNEYHUB_RATE_HUBSPOT=rate, PREFECT_HOME=str(tmp_path))
        result = subprocess.run([str(Path(sys.executable).parent / "journeyhub"), "sync", "--system", "hubspot"],
                                cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        times = sandbox.request_times("hubspot")
    assert len(times) > budget(rate), "too few requests to put the budget to the test"
    assert peak(times) <= budget(rate), f"{peak(times)} requests in 10 s, budget {budget(rate)}"
    print(f"no server: {len(times)} requests, at most {peak(times)} in 10 s (budget {budget(rate)})")


def test_each_crm_has_one_budget_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYHUB_RATE_HUBSPOT", "7/3")
    settings = Settings()
    assert throttle("hubspot", settings) is throttle("hubspot", Settings())
    assert throttle("hubspot", settings) is not throttle("dynamics", settings)
    monkeypatch.setenv("JOURNEYHUB_RATE_HUBSPOT", "8/3")
    assert throttle("hubspot", Settings()) is not throttle("hubspot", settings)


def test_the_servers_limit_is_asked_again_when_the_requested_size_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A process serving runs of several configurations (a worker, a test session) gets each one's size, not
    the first one's; the same size is asked once; a size set by JOURNEYHUB_RATE_<SYSTEM> resizes the server's
    limit, the package's default does not."""
    asked: list[tuple[str, int, float, bool]] = []

    def ensure(system: str, burst: int, per_second: float, *, resize: bool = False) -> tuple[int, float]:
        asked.append((system, burst, per_second, resize))
        return burst, per_second

    monkeypatch.setattr(flows.limits, "ensure_rate_limit", ensure)
    monkeypatch.setattr(flows.limits, "_api_url", lambda: "http://127.0.0.1:1/api")
    monkeypatch.setattr(flows.limits, "_ensured", {})
    monkeypatch.delenv("JOURNEYHUB_RATE_HUBSPOT", raising=False)
    default = Settings().rate("hubspot")
    assert flows.limits._ensured_size("hubspot", Settings()) == default
    monkeypatch.setenv("JOURNEYHUB_RATE_HUBSPOT", "7/3")
    assert flows.limits._ensured_size("hubspot", Settings()) == (7, 3.0)
    assert flows.limits._ensured_size("hubspot", Settings()) == (7, 3.0)
    monkeypatch.setenv("JOURNEYHUB_RATE_HUBSPOT", "8/4")
    assert flows.limits._ensured_size("hubspot", Settings()) == (8, 4.0)
    assert asked == [("hubspot", *default, False), ("hubspot", 7, 3.0, True), ("hubspot", 8, 4.0, True)]


@pytest.mark.parametrize(("burst", "per_second", "chunk"), [(20, 2.0, 1), (190, 19.0, 9), (600, 100.0, 10),
                                                            (3, 50.0, 3)])
def test_slots_are_taken_a_few_at_a_time_only_when_the_rate_allows(burst: int, per_second: float,
                                                                   chunk: int) -> None:
    # slots unused after half a second are dropped: taking more than the rate gives in that time could
    # send more than the budget, and never more than the burst
    assert PrefectSlots("hubspot", burst, per_second).chunk == chunk


def test_with_a_server_one_process_sends_within_the_budget_even_when_grants_come_bunched(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # the server counts a slot at its transaction's start, so after a slow grant the next ones credit decay
    # for time already past and arrive bunched (seen in the deploy test's in-a-row phase): the sends of one
    # process still keep to burst + rate × w, at the server limit's size (4/2 here, not the settings' 7/3)
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    monkeypatch.setattr(flows.limits, "prefect_configured", lambda: True)
    monkeypatch.setattr(flows.limits, "_ensured_size", lambda system, settings: (4, 2.0))
    monkeypatch.setattr(PrefectSlots, "take", lambda self: 0.0)  # every grant at once
    monkeypatch.setattr(flows.limits, "TokenBucket",
                        lambda burst, per_second: TokenBucket(burst, per_second, clock=lambda: now[0], sleep=sleep))
    monkeypatch.setenv("JOURNEYHUB_RATE_HUBSPOT", "7/3")
    send = CrmBudget("hubspot", Settings())
    sent = []
    for _ in range(60):
        send()
        sent.append(now[0])
    assert peak(sent) <= budget("4/2"), f"{peak(sent)} sends in 10 s, budget {budget('4/2')}"
    assert peak(sent) >= budget("4/2") - 1, "the sends were held back more than the budget asks"
