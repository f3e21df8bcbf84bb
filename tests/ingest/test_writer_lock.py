"""One writer per (CRM, object), on SQLite and PostgreSQL: a second writer waits (saying so once), a killed
holder frees the object at once, and two `journeyhub sync` processes of the same CRM started together read,
store and count every record once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from canonical.schema import upgrade
from journeyhub.ingest.writer_lock import writer_lock
from sandbox.runtime import Sandbox

ROOT = Path(__file__).resolve().parents[2]
HOLD_IN_CHILD = """
import sys, time
from canonical.db import make_engine
from journeyhub.ingest.writer_lock import writer_lock
with writer_lock(make_engine(sys.argv[1]), "hubspot", "contacts"):
    print("held", flush=True)
    time.sleep(120)
"""


def database_url(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=False)


def test_a_second_writer_waits_for_the_first_and_says_so_once(engine: Engine) -> None:
    events: list[str] = []
    held, release = threading.Event(), threading.Event()

    def first() -> None:
        with writer_lock(engine, "hubspot", "contacts"):
            events.append("first in")
            held.set()
            release.wait(10)
            events.append("first out")

    thread = threading.Thread(target=first)
    thread.start()
    held.wait(10)
    second = threading.Thread(target=lambda: _second(engine, events))
    second.start()
    time.sleep(0.5)
    assert events == ["first in", "second waits"]
    release.set()
    thread.join(10)
    second.join(10)
    assert events == ["first in", "second waits", "first out", "second in"]
    with writer_lock(engine, "hubspot", "deals", on_wait=lambda: events.append("never")), \
            writer_lock(engine, "salesforce", "contacts", on_wait=lambda: events.append("never")):
        pass  # other objects are other locks
    assert "never" not in events


def _second(engine: Engine, events: list[str]) -> None:
    with writer_lock(engine, "hubspot", "contacts", on_wait=lambda: events.append("second waits")):
        events.append("second in")


def test_a_killed_holder_frees_the_object_at_once(engine: Engine) -> None:
    child = subprocess.Popen([sys.executable, "-c", HOLD_IN_CHILD, database_url(engine)], cwd=ROOT,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        waited = threading.Event()
        blocked = threading.Thread(target=lambda: _take(engine, waited))
        blocked.start()
        blocked.join(1)
        assert blocked.is_alive() and waited.is_set(), "the child's lock did not hold"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        blocked.join(10)
        assert not blocked.is_alive(), "the killed holder's lock was not released"
    finally:
        if child.poll() is None:
            child.kill()


def _take(engine: Engine, waited: threading.Event) -> None:
    with writer_lock(engine, "hubspot", "contacts", on_wait=waited.set):
        pass


@pytest.mark.slow
def test_two_syncs_of_the_same_crm_at_once_store_and_count_every_record_once(engine: Engine,
                                                                            tmp_path: Path) -> None:
    upgrade(engine)
    with Sandbox(people=120, seed=11) as sandbox:
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
        env.update(sandbox.env, JOURNEYHUB_DATABASE_URL=database_url(engine), PREFECT_HOME=str(tmp_path),
                   JOURNEYHUB_RATE_HUBSPOT="2/8")  # paced, so that the two runs overlap for seconds
        command = [sys.executable, "-m", "cli.app", "sync", "--system", "hubspot"]
        runs = [subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True) for _ in range(2)]
        outputs = [run.communicate(timeout=300)[0] for run in runs]
        for run, output in zip(runs, outputs, strict=True):
            assert run.returncode == 0, output[-3000:]
    with engine.connect() as connection:
        rows = connection.execute(text(
            "SELECT run_id, object_type, started_at, finished_at, records_read, inserted FROM sync_run "
            "WHERE system = 'hubspot' AND direction = 'pull' ORDER BY started_at")).all()
        stored = dict(connection.execute(text(
            "SELECT object_type, COUNT(*) FROM source_record WHERE system = 'hubspot' GROUP BY object_type")).all())
    run_ids = {row.run_id for row in rows}
    assert len(run_ids) == 2
    spans = {run: (min(r.started_at for r in rows if r.run_id == run), max(r.finished_at for r in rows
                                                                          if r.run_id == run)) for run in run_ids}
    first, second = sorted(spans.values())
    assert second[0] < first[1], "the two syncs did not run at the same time: the test proves nothing"
    for object_type in {row.object_type for row in rows}:
        mine = [row for row in rows if row.object_type == object_type]
        assert len(mine) == 2
        assert mine[1].started_at >= mine[0].finished_at, f"{object_type} was pulled by both runs at once"
        # the second went on from the first one's cursor: nothing read twice, nothing stored or counted twice
        assert (mine[1].records_read, mine[1].inserted) == (0, 0), f"{object_type} was read by both runs"
        assert mine[0].inserted <= stored.get(object_type, 0)
    assert sum(row.records_read for row in rows if row.object_type == "contacts") >= 100
