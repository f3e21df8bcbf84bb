"""The ops view, checked as ops would: a real `prefect server` on loopback, the hub flow run against the
sandbox, the run, its subflows and artifacts read back through the Prefect API — the run's state told by its
objects —, and the pages opened in headless Chromium at 1,280 px wide (screenshots saved): the run's page
shows the run, and every column header of every table artifact is visible."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from cli.demo_run import free_port
from sandbox.runtime import Sandbox
from tests.flows.browser import HEADERS, chromium

ROOT = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_DIR = Path(os.environ.get("JOURNEYHUB_SCREENSHOT_DIR", tempfile.gettempdir()))
HUB_RUN = """
from flows.hub import hub
state = hub(return_state=True)
print("FLOW_RUN", state.state_details.flow_run_id, state.name, flush=True)
"""

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("prefect-home")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_UI_API_URL": f"{url}/api"}
    env.pop("PREFECT_API_URL", None)
    log = (home / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            assert server.poll() is None, (home / "server.log").read_text()[-3000:]
            try:
                if httpx.get(f"{url}/api/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prefect server did not start"
            time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def api(url: str, path: str, body: dict | None = None) -> object:
    response = httpx.post(f"{url}/api/{path}", json=body or {}, timeout=30) if body is not None else \
        httpx.get(f"{url}/api/{path}", timeout=30)
    response.raise_for_status()
    return response.json()


def wait_for(check: object, timeout: float = 60) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()  # type: ignore[operator]
        if value or time.monotonic() > deadline:
            return value
        time.sleep(1)


def test_a_hub_run_is_visible_in_the_prefect_api_and_ui(prefect_server: str, tmp_path: Path) -> None:
    database = tmp_path / "hub.db"
    with Sandbox(people=120, seed=17) as sandbox:
        env = {**os.environ, **sandbox.env, "PREFECT_API_URL": f"{prefect_server}/api",
               "JOURNEYHUB_DATABASE_URL": f"sqlite:///{database}", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
        subprocess.run([sys.executable, "-c", "from cli.app import main; main()", "db", "upgrade"],
                       cwd=tmp_path, env=env, check=True, capture_output=True)
        run = subprocess.run([sys.executable, "-c", HUB_RUN], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=600)
    assert run.returncode == 0, run.stderr[-4000:]
    line = next(line for line in run.stdout.splitlines() if line.startswith("FLOW_RUN"))
    _, flow_run_id, state_name = line.split()
    assert state_name == "Completed", "the world's bad records are quarantined, named, and not fatal"

    flow_run = api(prefect_server, f"flow_runs/{flow_run_id}")
    assert flow_run["name"].startswith("hub-") and flow_run["state_type"] == "COMPLETED"  # type: ignore[index]
    assert "record(s) quarantined" in flow_run["state"]["message"]  # type: ignore[index]
    children = api(prefect_server, "flow_runs/filter", {"flow_runs": {"parent_flow_run_id": {"any_": [flow_run_id]}}})
    names = sorted(child["name"].rsplit("-", 2)[0] for child in children)  # type: ignore[union-attr]
    assert names == ["journey", "push-hubspot+salesforce+dynamics", "sync-dynamics", "sync-hubspot",
                     "sync-salesforce"], names
    states = {child["name"].rsplit("-", 2)[0]: (child["state_type"], child["state_name"])  # type: ignore[union-attr]
              for child in children}
    assert states["journey"] == ("COMPLETED", "Completed") and states["sync-hubspot"] == ("COMPLETED", "Completed")
    run_ids = [flow_run_id, *[child["id"] for child in children]]  # type: ignore[union-attr]
    artifacts = api(prefect_server, "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": run_ids}}})
    keys = {artifact["key"] for artifact in artifacts}  # type: ignore[union-attr]
    assert {"hub-objects", "hub-pushes", "hub-summary", "hub-progress", "lifecycle-funnel", "journey-summary",
            "push-summary", "hubspot-pull", "salesforce-pull", "dynamics-pull"} <= keys
    table = next(a for a in artifacts if a["key"] == "hub-objects")  # type: ignore[union-attr]
    assert '"quarantined"' in table["data"] and '"API calls"' in table["data"]
    logs = wait_for(lambda: api(prefect_server, "logs/filter", {"logs": {"flow_run_id": {"any_": run_ids}}}))
    assert any("hubspot contacts: read" in log["message"] for log in logs)  # type: ignore[union-attr]

    if CHROMIUM is None:
        if IN_CI:
            pytest.fail("CI=true but Chromium is not installed (.ci/run installs Debian's chromium)")
        pytest.skip("Chromium is not installed: the UI check needs Debian's chromium package")
    with chromium(CHROMIUM, tmp_path / "chromium", width=1280) as page:
        name = flow_run["name"]  # type: ignore[index]
        page.open(f"{prefect_server}/runs/flow-run/{flow_run_id}",  # its header shows the run's state
                  f"document.body.innerText.includes({name!r}) && document.body.innerText.includes('Completed')",
                  timeout=120)
        time.sleep(2)  # the run graph (a canvas) draws last
        page.screenshot(SCREENSHOT_DIR / "prefect-ui-hub-run.png")
        text = page.evaluate("document.body.innerText")
        for shown in ("Completed", "Subflow Runs", "Artifacts", "Task Runs"):  # the run graph itself is a canvas
            assert shown in text, shown
        tables = [a for a in artifacts if a["type"] == "table" or (a["type"] == "markdown" and "|---" in a["data"])]
        for artifact in sorted(tables, key=lambda a: a["key"] != "hub-objects"):  # type: ignore[union-attr]
            page.open(f"{prefect_server}/artifacts/artifact/{artifact['id']}", "document.querySelector('th')")
            if artifact["key"] == "hub-objects":
                page.screenshot(SCREENSHOT_DIR / "prefect-ui-ops-table.png")
            headers = page.evaluate(HEADERS)
            hidden = [header["text"] for header in headers if not header["visible"]]
            assert headers and hidden == [], f"{artifact['key']} at 1,280 px: {hidden} cut off"
            if artifact["key"] == "hub-objects":
                assert [header["text"] for header in headers] == [
                    "crm", "object", "status", "read", "stored", "quarantined", "API calls"]
                assert "hubspot" in page.evaluate("document.body.innerText"), "the ops table rendered"
