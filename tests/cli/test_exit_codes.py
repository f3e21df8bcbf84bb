"""Exit codes a scheduler can use, as the README's table states them: 0 everything succeeded, 1 some object
or CRM failed or ended partial, 2 a configuration or usage error, 130 / 143 stopped (tests/cli/test_stops.py).
Here: the table itself, and a CRM that does not answer (a closed port) making `journeyhub sync` exit 1."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from cli.demo_run import free_port
from sandbox.runtime import Sandbox
from tests.cli.processes import CLI, clean_env

README = Path(__file__).resolve().parents[2] / "README.md"
#: a process-wide brief retry policy: the dead host is given up on in milliseconds instead of a minute per object
BRIEF_RETRIES = """
from connectors.retry import DEFAULT_POLICY
for name, value in {"max_attempts": 2, "initial_wait": 0.01, "max_backoff": 0.02}.items():
    object.__setattr__(DEFAULT_POLICY, name, value)
"""


def test_the_readme_states_the_exit_codes() -> None:
    text = README.read_text(encoding="utf-8")
    table = text[text.index("| code | meaning |"):].split("\n\n")[0]
    codes = {int(code): meaning for code, meaning in re.findall(r"^\| (\d+) \| (.+) \|$", table, flags=re.M)}
    assert sorted(codes) == [0, 1, 2, 130, 143]
    assert "everything succeeded" in codes[0] and "failed or ended partial" in codes[1]
    assert "configuration or usage error" in codes[2] and "SIGINT" in codes[130] and "SIGTERM" in codes[143]


@pytest.mark.slow
def test_a_crm_that_does_not_answer_makes_sync_exit_1_while_the_others_sync(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(BRIEF_RETRIES, encoding="utf-8")
    with Sandbox(people=50, seed=2) as sandbox:
        env = clean_env(**sandbox.env, JOURNEYHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}",
                        PYTHONPATH=str(tmp_path / "site"))
        env["HUBSPOT_BASE_URL"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        subprocess.run([*CLI, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True)
        result = subprocess.run([*CLI, "sync", "--system", "hubspot", "--system", "dynamics", "--json"],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads(result.stdout)
    systems = {system["system"]: system for system in document["systems"]}
    assert systems["hubspot"]["status"] == "failed" and document["status"] == "partial"
    assert all(item["status"] == "failed" for item in systems["hubspot"]["objects"])
    assert not any(item["status"] == "failed" for item in systems["dynamics"]["objects"])
    assert "error: not every object succeeded: hubspot owners failed: hubspot: " in result.stderr
    assert "Traceback" not in result.stderr


def test_a_push_that_cannot_run_for_a_crm_exits_1_naming_it(tmp_path: Path) -> None:
    with Sandbox(people=50, seed=2) as sandbox:
        env = clean_env(**sandbox.env, JOURNEYHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}")
        env["SALESFORCE_ACCESS_TOKEN"] = "expired-session"
        subprocess.run([*CLI, "db", "upgrade"], cwd=tmp_path, env=env, check=True, capture_output=True)
        result = subprocess.run([*CLI, "push", "--system", "salesforce", "--system", "dynamics", "--json"],
                                cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "partial" and list(document["not_run"]) == ["salesforce"]
    assert "error: the push did not succeed everywhere: salesforce: push not run: " in result.stderr
