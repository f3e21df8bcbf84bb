"""The README's first command, as a newcomer runs it: `journeyhub demo` completes on an embedded default
(local CRM emulators, SQLite, the hub flow) and matches the generated world's ground truth."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_gives_the_two_commands_ci_runs() -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)```", text, flags=re.S)
    assert blocks[0].strip() == ("python3 -m venv .venv && .venv/bin/pip install -c constraints.txt -e '.[dev]' "
                                 "-e ./sandbox && .venv/bin/journeyhub demo")
    assert blocks[1].strip() == ".venv/bin/python -m pytest"
    ci = (README.parent / ".ci" / "run").read_text(encoding="utf-8")
    assert ci.rstrip().endswith(blocks[1].strip()), "CI runs exactly the README's test command"


@pytest.mark.slow
def test_demo_runs_the_whole_hub_and_matches_the_ground_truth(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HUBSPOT_", "SALESFORCE_", "DYNAMICS_", "JOURNEYHUB_", "PREFECT_"))}
    env["COLUMNS"] = "200"  # keep rich from wrapping the summary panel mid-sentence
    result = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", "demo",
                             "--people", "80", "--workdir", str(tmp_path / "demo")], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = " ".join(result.stdout.replace("│", " ").split())
    assert "100.0% of people resolved to exactly one customer" in output
    assert "100.0% in the expected stage" in output and "100.0% in the expected segment" in output
    assert "Lifecycle funnel" in output and "Pushed back into the CRMs" in output
    assert (tmp_path / "demo" / "journeyhub.db").exists()
