"""A sync that kills itself (SIGKILL) part-way, for the kill-and-resume tests.

    python -m tests.connectors.resume_worker SYSTEM OBJECT_TYPE KILL_AFTER_PAGES MODE [--full]

MODE `committed`: die right after page KILL_AFTER_PAGES committed. MODE `mid-transaction`: die inside the
transaction that stores that page, before it commits. Settings (database, CRM credentials) come from the
environment. Without a kill (KILL_AFTER_PAGES 0) it syncs to the end and prints the counts as JSON.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

from canonical.db import make_engine
from connectors.retry import RetryPolicy
from journeyhub.config import load_mappings, mappings_root
from journeyhub.connections import open_connector
from journeyhub.ingest import loader as loader_module
from journeyhub.ingest.loader import PageLoader
from journeyhub.ingest.pipeline import WORKER
from journeyhub.ingest.sync import pull_pages
from journeyhub.settings import Settings

FAST = RetryPolicy(max_attempts=6, max_seconds=60, initial_wait=0.05, max_backoff=0.5, max_vendor_wait=2)


def record_worker_pids() -> None:
    """Where the test asks (RESUME_WORKER_PIDS): the mapping worker's pids, to check it dies with us."""
    target = os.environ.get("RESUME_WORKER_PIDS")
    if target:
        Path(target).write_text(json.dumps(WORKER.pids()))


def main() -> None:
    system, object_type, kill_after, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    full = "--full" in sys.argv
    settings = Settings()
    engine = make_engine(settings.database_url)
    connector = open_connector(system, settings, retry=FAST)  # type: ignore[arg-type]
    loader = PageLoader(engine, system, load_mappings(mappings_root(settings), system), run_id="resume-test")
    pages = 0

    def die() -> None:
        record_worker_pids()
        os.kill(os.getpid(), signal.SIGKILL)

    if kill_after and mode == "mid-transaction":
        original = loader_module.PageLoader._resolve_quarantine

        def dying(self: PageLoader, *args: object) -> None:
            nonlocal pages
            pages += 1
            original(self, *args)
            if pages == kill_after:
                die()

        loader_module.PageLoader._resolve_quarantine = dying  # type: ignore[method-assign]

    def after_page(_counts: object) -> None:
        nonlocal pages
        if mode == "committed":
            pages += 1
            if pages == kill_after:
                die()

    batch = pull_pages(engine, connector, loader, object_type, full=full, on_page=after_page,
                       group_records=settings.store_group_records, worker_after=settings.worker_after)
    print(json.dumps(batch.counts.as_dict()))


if __name__ == "__main__":
    main()
