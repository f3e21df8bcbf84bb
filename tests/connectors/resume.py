"""Kill-and-resume harness: sync in a child process that SIGKILLs itself, then resume to the end."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run_sync(system: str, object_type: str, env: dict[str, str], *, kill_after_pages: int = 0,
             mode: str = "committed", full: bool = False) -> dict[str, int] | None:
    """Runs the worker; returns its counts, or None when it was killed as asked."""
    command = [sys.executable, "-m", "tests.connectors.resume_worker", system, object_type,
               str(kill_after_pages), mode] + (["--full"] if full else [])
    # pages are stored one by one here (no grouping), so "killed after N pages" means N API pages
    child_env = {**os.environ, "JOURNEYHUB_STORE_GROUP_RECORDS": "1", **env}
    result = subprocess.run(command, cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=600)
    if kill_after_pages:
        assert result.returncode == -signal.SIGKILL, f"the worker was not killed: {result.stderr[-2000:]}"
        return None
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
