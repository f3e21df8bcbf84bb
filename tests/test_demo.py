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
def test_demo_runs_the_whole_hub_prints_as_it_goes_and_hands_over(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("HUBSPOT_", "SALESFORCE_", "DYNAMICS_", "JOURNEYHUB_", "PREFECT_"))}
    env["COLUMNS"] = "60"  # stdout is a pipe: nothing may depend on the width
    command = [sys.executable, "-c", "from cli.app import main; main()"]
    result = subprocess.run([*command, "demo", "--people", "80", "--workdir", str(tmp_path / "demo")], cwd=tmp_path,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert not re.search("[\u2500-\u257f]", result.stdout), "no box drawing in a pipe"
    assert lines[0] == "starting three CRM emulators with 80 generated people…"
    assert sum(1 for line in lines if re.match(r"(hubspot|salesforce|dynamics) \w+: read \d+, inserted", line)) == 33
    database = tmp_path / "demo" / "journeyhub.db"
    handover = lines[lines.index("Where things are:"):]
    assert handover[1].startswith(f"  database: {database} (SQLite; the views customer_360, unified_timeline")
    assert re.fullmatch(r"  hub run: succeeded \(12 records quarantined, as the world intends\) in \d+ s", handover[2])
    assert handover[3] == ("  truth check: matches the ground truth — 100.0% of 80 people resolved to exactly one "
                           "customer, 100.0% in the expected stage (100.0% entered at the expected time), 100.0% in "
                           "the expected segment, 12/12 deliberately bad records quarantined")
    assert handover[4] == "Try next:"
    explain, query, ui = (line.strip() for line in handover[5:8])
    assert query == f'sqlite3 {database} "SELECT lifecycle_stage, segment, COUNT(*) FROM customer_360 GROUP BY 1, 2"'
    assert ui == "journeyhub demo --ui"
    setting, _, person = explain.partition(" journeyhub explain ")
    assert setting == f"JOURNEYHUB_DATABASE_URL=sqlite:///{database}" and "@" in person
    explained = subprocess.run([*command, "explain", person], cwd=tmp_path, capture_output=True, text=True,
                               env={**env, "JOURNEYHUB_DATABASE_URL": f"sqlite:///{database}"}, timeout=120)
    assert explained.returncode == 0 and person.lower() in explained.stdout.lower(), explained.stderr
    assert "Records in the CRMs and why they are one person:" in explained.stdout
