"""One API budget per CRM, shared by every run that talks to it: pulls, pushes and reconciliations, from
the CLI or from deployments on any number of workers.

A budget is `burst/per-second` (`Settings.rate`, `JOURNEYHUB_RATE_<SYSTEM>`): `burst` requests at once,
then `per-second` more each second, so at most `burst + per-second × w` requests in any `w` seconds.

- **With a Prefect server** (`PREFECT_API_URL`, or inside a flow run) the budget is the server's global rate
  limit `crm-<system>`, created on the first request of a run when it does not exist yet (and resized when
  `JOURNEYHUB_RATE_<SYSTEM>` is set and differs; a limit ops sized themselves is kept otherwise). Every
  request takes a slot (`strict`: a missing limit is an error, never a silent skip), so all processes on all
  hosts share it. Slots are taken a few at a time when the rate allows, and unused ones are dropped after
  `HOLD_SECONDS`, so a process never sends slots it took long ago: at most `per-second × HOLD_SECONDS`
  requests above the bound, and exactly the bound when that is below one.
  The server counts a slot when its transaction *started* (PostgreSQL `now()`; prefect 3.8.8 decays
  `active_slots` by `floor(slot_decay_per_second × (now() − updated))`), not when the request goes out: a slot
  whose grant took L seconds on a busy server, or whose request left L seconds after the grant, lets the next
  grants credit decay for those L seconds, so grants alone may exceed the bound by `per-second × L`. Every
  process therefore also passes each request through its own token bucket of the same size right before it is
  sent: the requests of one process (one run: e.g. full syncs one after another on one worker) keep to the bound
  exactly by their send times; across processes the server's limit holds it up to that latency.
- **Without one**, the same budget is that token bucket alone (`journeyhub.budget.TokenBucket`).

Whatever deserves a word (a limit created or resized, an inactive limit, requests waiting for the budget)
is logged once per process — once per flow run on a worker — never per request.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

from flows.runtime import run_log
from journeyhub.budget import TokenBucket
from journeyhub.settings import Settings

#: slots taken from the server at once are used within this many seconds or dropped
HOLD_SECONDS = 0.5
#: a wait this long for the budget is worth one log line per run
NOTABLE_WAIT_SECONDS = 1.0

_lock = threading.Lock()
_budgets: dict[tuple[str, int, float], CrmBudget] = {}
_ensured: dict[tuple[str | None, str, int, float, bool], tuple[int, float]] = {}
_said: set[tuple[str | None, str, str]] = set()


def limit_name(system: str) -> str:
    return f"crm-{system}"


def prefect_configured() -> bool:
    """A Prefect API is at hand: inside a flow or task run, or a server named by PREFECT_API_URL."""
    from prefect.context import FlowRunContext, TaskRunContext

    return bool(FlowRunContext.get() or TaskRunContext.get() or os.environ.get("PREFECT_API_URL")
                or _api_url())


def _api_url() -> str | None:
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value()


def _say_once(system: str, condition: str, message: str, *args: object, level: int = 20) -> None:
    key = (_api_url(), system, condition)
    with _lock:
        if key in _said:
            return
        _said.add(key)
    run_log(message, *args, level=level)


def ensure_rate_limit(system: str, burst: int, per_second: float, *, resize: bool = False) -> tuple[int, float]:
    """The server's rate limit for `system` as (burst, per second), created when missing and, with `resize`,
    set to the given size when it differs. Idempotent and safe when several runs start at once."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    name = limit_name(system)
    with get_client(sync_client=True) as client:
        try:
            current = client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            try:
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(
                    name=name, limit=burst, slot_decay_per_second=per_second))
            except ObjectAlreadyExists:  # another run created it a moment ago
                current = client.read_global_concurrency_limit_by_name(name)
            else:
                _say_once(system, "created", "created the Prefect rate limit %s: burst %d, %g requests/s", name,
                          burst, per_second)
                return burst, per_second
        if resize and (current.limit, current.slot_decay_per_second) != (burst, per_second):
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(
                limit=burst, slot_decay_per_second=per_second))
            _say_once(system, "resized", "resized the Prefect rate limit %s from burst %d, %g/s to burst %d, "
                      "%g/s (JOURNEYHUB_RATE_%s)", name, current.limit, current.slot_decay_per_second, burst,
                      per_second, system.upper())
            return burst, per_second
        if not current.active:
            _say_once(system, "inactive", "the Prefect rate limit %s is inactive, so %s requests are not "
                      "throttled: activate it with `prefect gcl enable %s`", name, system, name, level=30)
        if current.slot_decay_per_second <= 0:
            raise RuntimeError(f"the Prefect limit {name} has no slot decay, so it cannot be a rate limit: give it "
                               f"one (`prefect gcl update {name} --slot-decay-per-second 19`) or delete it")
        return current.limit, current.slot_decay_per_second


def ensure_rate_limits(settings: Settings, systems: list[str]) -> None:
    """The CRMs' rate limits exist on the Prefect server (runs that start several CRMs call this first)."""
    for system in systems:
        _ensured_size(system, settings)


def _ensured_size(system: str, settings: Settings) -> tuple[int, float]:
    """The limit's size on the server, asked once per server and requested size (settings that change in a
    process — a worker serving runs of other configurations — ask again)."""
    burst, per_second = settings.rate(system)
    explicit = settings.rate_configured(system)
    key = (_api_url(), system, burst, per_second, explicit)
    with _lock:
        known = _ensured.get(key)
    if known is None:
        known = ensure_rate_limit(system, burst, per_second, resize=explicit)
        with _lock:
            _ensured[key] = known
    return known


class PrefectSlots:
    """Slots of the server's rate limit, taken a few at a time (each acquisition is a round trip) when the
    rate allows and dropped unused after HOLD_SECONDS."""

    def __init__(self, system: str, burst: int, per_second: float) -> None:
        self.name = limit_name(system)
        self.chunk = max(1, min(10, burst, int(per_second * HOLD_SECONDS)))
        self.remaining = 0
        self.expires = 0.0
        self._lock = threading.Lock()

    def take(self) -> float:
        """Wait for a slot; returns the seconds spent waiting for the server."""
        from prefect.concurrency.sync import rate_limit

        with self._lock:
            if self.remaining > 0 and time.monotonic() < self.expires:
                self.remaining -= 1
                return 0.0
            started = time.monotonic()
            rate_limit(self.name, occupy=self.chunk, strict=True)
            now = time.monotonic()
            self.remaining, self.expires = self.chunk - 1, now + HOLD_SECONDS
            return now - started


class CrmBudget:
    """What a connector calls before each request: the CRM's shared Prefect rate limit when a server is at
    hand, then (always) a token bucket of the same size in this process, taken last so it paces the sends."""

    def __init__(self, system: str, settings: Settings) -> None:
        self.system = system
        self.settings = settings
        self.burst, self.per_second = settings.rate(system)
        self.local = TokenBucket(self.burst, self.per_second)
        self._slots: dict[str | None, tuple[PrefectSlots, TokenBucket]] = {}
        self._lock = threading.Lock()

    def __call__(self) -> None:
        if prefect_configured():
            slots, sends = self._prefect()
            waited = slots.take()
            waited += sends.take()  # this process's sends keep to the bound, whatever the grants' timing
            where = f"the Prefect rate limit {limit_name(self.system)}"
        else:
            _say_once(self.system, "local", "no Prefect server is configured: %s requests keep to burst %d, %g/s "
                      "within this process (JOURNEYHUB_RATE_%s)", self.system, self.burst, self.per_second,
                      self.system.upper())
            waited = self.local.take()
            where = "this process's budget"
        if waited >= NOTABLE_WAIT_SECONDS:
            _say_once(self.system, "waiting", "%s requests are waiting for the API budget (%s)", self.system, where)

    def _prefect(self) -> tuple[PrefectSlots, TokenBucket]:
        """The server's slots and this process's bucket, both of the server limit's size (ops may size it)."""
        url = _api_url()
        with self._lock:
            known = self._slots.get(url)
        if known is None:
            burst, per_second = _ensured_size(self.system, self.settings)
            made = PrefectSlots(self.system, burst, per_second), TokenBucket(burst, per_second)
            with self._lock:
                known = self._slots.setdefault(url, made)
        return known


def throttle(system: str, settings: Settings) -> Callable[[], None]:
    """The CRM's budget for this process (one per CRM and size, shared by all its connectors and threads)."""
    burst, per_second = settings.rate(system)
    key = (system, burst, per_second)
    with _lock:
        if key not in _budgets:
            _budgets[key] = CrmBudget(system, settings)
        return _budgets[key]
