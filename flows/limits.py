"""One API budget per CRM shared by pulls and pushes: Prefect global rate limits named `crm-<system>`.

Sized to the vendors' documented limits as a burst and a steady rate: HubSpot 190 requests per 10 s for a
private app (burst 190, 19/s), Dataverse 6,000 per 5 minutes per user (burst 600, 20/s), Salesforce by daily
allocation (burst 100, 25/s). Override with `JOURNEYHUB_RATE_<SYSTEM>=<burst>/<per second>`. Connectors take
a slot before every call while a flow runs, so pulls and pushes running at once share one budget.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from journeyhub.settings import Settings

log = logging.getLogger("journeyhub.flows")


def limit_name(system: str) -> str:
    return f"crm-{system}"


def ensure_rate_limits(settings: Settings, systems: list[str]) -> None:
    """Create the CRMs' global rate limits on the Prefect server when they do not exist yet."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for system in systems:
            try:
                client.read_global_concurrency_limit_by_name(limit_name(system))
            except ObjectNotFound:
                burst, per_second = settings.rate(system)
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                    name=limit_name(system), limit=max(1, burst), slot_decay_per_second=per_second))
                log.info("created the Prefect rate limit %s (burst %d, %.0f requests/s)", limit_name(system),
                         burst, per_second)


class SlotBucket:
    """Takes the CRM's rate-limit slots from Prefect a few at a time: each acquisition is a round trip to
    the server, so asking per request would cost more than the request. Thread-safe (tasks run in threads)."""

    def __init__(self, system: str, chunk: int = 10) -> None:
        self.name = limit_name(system)
        self.chunk = chunk
        self.remaining = 0
        self._lock = threading.Lock()

    def __call__(self) -> None:
        from prefect.concurrency.sync import rate_limit
        from prefect.context import FlowRunContext, TaskRunContext

        if FlowRunContext.get() is None and TaskRunContext.get() is None:
            return
        with self._lock:
            if self.remaining == 0:
                rate_limit(self.name, occupy=self.chunk, strict=False)
                self.remaining = self.chunk
            self.remaining -= 1


def throttle(system: str) -> Callable[[], None]:
    """What a connector calls before each request: a slot of the CRM's shared rate limit (in flow runs)."""
    return SlotBucket(system)
