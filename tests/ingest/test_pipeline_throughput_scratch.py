"""`bench/throughput.py --postgres` creates a scratch database per sync; a run stopped by Ctrl-C or a `kill`
(SIGTERM) must drop it as a finished run does, or every interrupted run leaves an `n_throughput_…` database
on the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from canonical.db import make_engine
from tests.conftest import POSTGRES_URL

ROOT = Path(__file__).resolve().parents[2]
#: the child takes Ctrl-C as a terminal's process does: a process started in the background by a shell (a CI
#: runner's job) inherits SIGINT ignored, and Python then leaves it ignored
HOLD = """
import signal, sys, tempfile, time
from pathlib import Path
signal.signal(signal.SIGINT, signal.default_int_handler)
sys.path.insert(0, {bench!r})
import throughput
with throughput.database("postgresql", Path(tempfile.gettempdir()), {url!r}) as url:
    print(url, flush=True)
    time.sleep(120)
"""


@pytest.mark.postgres
@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_an_interrupted_run_drops_its_scratch_database(postgres_database: str, stop: signal.Signals) -> None:
    script = HOLD.format(bench=str(ROOT / "bench"), url=POSTGRES_URL)
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        assert child.stdout is not None
        name = make_url(child.stdout.readline().strip()).database
        assert name and name.startswith("n_throughput_"), child.stderr.read() if child.stderr else ""
        admin = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            exists = text("SELECT count(*) FROM pg_database WHERE datname = :name")
            with admin.connect() as connection:
                assert connection.execute(exists, {"name": name}).scalar() == 1
            child.send_signal(stop)
            child.wait(timeout=60)
            with admin.connect() as connection:
                left = connection.execute(exists, {"name": name}).scalar()
                if left:  # clean up after a failing run, then fail
                    connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            assert left == 0, f"{name} left behind after {stop.name}"
        finally:
            admin.dispose()
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
