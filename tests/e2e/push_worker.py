"""A push in a process of its own, for the kill tests (tests/e2e/test_push_kills.py).

    python -m tests.e2e.push_worker

reads "SYSTEM DATABASE_URL" lines from stdin and forks one push per line; prints "started PID", then
"ended PID CODE" (0: pushed cleanly, 1: an exception, 3: errors or rejected records, -9: killed). The CRMs'
URLs and tokens come from the environment. The server pays the interpreter's start and the imports once; it
runs no threads and opens nothing before it forks, so each push is a fresh, single-threaded process that the
test SIGKILLs like any other.
"""

from __future__ import annotations

import os
import select
import sys
import traceback

from canonical.db import make_engine
from connectors.retry import RetryPolicy
from journeyhub.config import load_config_file, mappings_root
from journeyhub.connections import open_connector
from journeyhub.runs import new_run_id
from journeyhub.settings import Settings
from journeyhub.writeback.push import PushReport, push

FAST = RetryPolicy(max_attempts=3, max_seconds=20, initial_wait=0.05, max_backoff=0.2, max_vendor_wait=1)


def push_once(system: str) -> PushReport:
    settings = Settings()
    config = load_config_file(mappings_root(settings), "writeback.yaml")
    connector = open_connector(system, settings, retry=FAST)  # type: ignore[arg-type]
    return push(make_engine(settings.database_url), config, [system], run_id=new_run_id(),
                connectors={system: connector})


def fork_server() -> None:
    while True:
        _reap()
        ready, _, _ = select.select([sys.stdin], [], [], 0.02)
        if not ready:
            continue
        line = sys.stdin.readline()
        if not line:
            return
        system, database_url = line.split()
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                os.environ["JOURNEYHUB_DATABASE_URL"] = database_url
                report = push_once(system)
                code = 0 if not report.errors and report.outcome is not None and not report.outcome.failed else 3
                if code:
                    print(f"push failed: {report.errors}", file=sys.stderr)
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stderr.flush()
                os._exit(code)
        print(f"started {pid}", flush=True)


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        print(f"ended {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    fork_server()
