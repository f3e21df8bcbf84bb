"""One API budget per CRM shared by pulls and pushes: Prefect global rate limits named `crm-<system>`.

Sized to the vendors' documented limits (HubSpot 190 requests / 10 s for a private app, Dataverse 6,000 /
5 minutes per user, Salesforce by daily allocation — kept to a steady rate), overridable with
`JOURNEYHUB_RATE_<SYSTEM>` (requests per second). Connectors take a slot before every call while a flow runs.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

log = logging.getLogger("journeyhub.flows")

REQUESTS_PER_SECOND = {"hubspot": 19.0, "salesforce": 20.0, "dynamics": 20.0}


def limit_name(system: str) -> str:
    return f"crm-{system}"


def rate(system: str) -> float:
    return float(os.environ.get(f"JOURNEYHUB_RATE_{system.upper()}", REQUESTS_PER_SECOND[system]))


def ensure_rate_limits(systems: list[str]) -> None:
    """Create the CRMs' global rate limits on the Prefect server when they do not exist yet."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        for system in systems:
            try:
                client.read_global_concurrency_limit_by_name(limit_name(system))
            except ObjectNotFound:
                per_second = rate(system)
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                    name=limit_name(system), limit=max(1, int(per_second)), slot_decay_per_second=per_second))
                log.info("created the Prefect rate limit %s (%.0f requests/s)", limit_name(system), per_second)


def throttle(system: str) -> Callable[[], None]:
    """What a connector calls before each request: take one slot of the CRM's rate limit (only in a flow run)."""
    from prefect.concurrency.sync import rate_limit
    from prefect.context import FlowRunContext, TaskRunContext

    def take_slot() -> None:
        if FlowRunContext.get() is not None or TaskRunContext.get() is not None:
            rate_limit(limit_name(system), occupy=1, strict=False)

    return take_slot
