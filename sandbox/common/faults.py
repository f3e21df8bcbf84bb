"""Fault injection shared by the three emulators.

A `FaultConfig` is plain data (it can come from a named profile, JSON or the admin endpoint). The
`FaultInjector` decides, per request, whether to answer with a vendor-style 429, a 5xx, a delay, or an
expired-token 401. Vendor-specific faults (records changing while a sync pages, merges) live in each
emulator and read their switches from `FaultConfig.vendor`.

Decisions are deterministic for a given seed and request sequence, so a failing test can be replayed.
"""

from __future__ import annotations

import random
import re
import threading
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

FaultKind = Literal["rate_limit", "error", "delay", "expire_token", "timeout"]


class FaultRule(BaseModel):
    """One targeted fault: requests matching `method`/`path` get `kind`, `times` times, after `after` matches."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    path: str = ".*"
    method: str | None = None
    after: int = 0
    times: int = 1
    status: int = 503
    retry_after: float = 1.0
    delay_seconds: float = 0.0


class FaultConfig(BaseModel):
    """Faults for one emulator. Everything defaults to off."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 0
    error_rate: float = Field(0.0, ge=0, le=1, description="probability of a random 5xx per request")
    error_status: int = 503
    rate_limit_rate: float = Field(0.0, ge=0, le=1, description="probability of a random 429 per request")
    retry_after: float = 1.0
    latency_ms: int = 0
    token_ttl_requests: int | None = Field(
        None, description="the current access token expires after this many authenticated requests"
    )
    rules: list[FaultRule] = Field(default_factory=list)
    vendor: dict[str, Any] = Field(
        default_factory=dict,
        description="emulator-specific switches, e.g. {'mutate_during_paging': true, 'merge_during_sync': true}",
    )


PROFILES: dict[str, dict[str, Any]] = {
    "none": {},
    "flaky": {"error_rate": 0.03, "rate_limit_rate": 0.03, "retry_after": 1},
    "throttled": {"rate_limit_rate": 0.2, "retry_after": 1},
    "slow": {"latency_ms": 150},
    "expiring-token": {"token_ttl_requests": 25},
    "chaos": {
        "error_rate": 0.05,
        "rate_limit_rate": 0.05,
        "retry_after": 1,
        "token_ttl_requests": 40,
        "vendor": {"mutate_during_paging": True, "merge_during_sync": True},
    },
}


def profile(name: str, seed: int = 0) -> FaultConfig:
    """A named fault profile (`journeyhub sandbox up --faults NAME`)."""
    if name not in PROFILES:
        raise ValueError(f"unknown fault profile {name!r}; choose one of: {', '.join(PROFILES)}")
    return FaultConfig(seed=seed, **PROFILES[name])


@dataclass(frozen=True)
class Fault:
    kind: FaultKind
    status: int = 503
    retry_after: float = 1.0
    delay_seconds: float = 0.0


class FaultInjector:
    """Decides which fault, if any, a request gets. Thread-safe; reconfigurable at run time."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._random = random.Random(config.seed)
            self._rule_hits = [0] * len(config.rules)
            self._rule_fired = [0] * len(config.rules)
            self._authenticated_requests = 0

    def decide(self, method: str, path: str) -> Fault | None:
        """The fault for this request (admin and token endpoints are never faulted by the caller)."""
        with self._lock:
            for index, rule in enumerate(self.config.rules):
                if rule.method and rule.method.upper() != method.upper():
                    continue
                if not re.search(rule.path, path):
                    continue
                self._rule_hits[index] += 1
                if self._rule_hits[index] > rule.after and self._rule_fired[index] < rule.times:
                    self._rule_fired[index] += 1
                    return Fault(rule.kind, rule.status, rule.retry_after, rule.delay_seconds)
            if self.config.rate_limit_rate and self._random.random() < self.config.rate_limit_rate:
                return Fault("rate_limit", 429, self.config.retry_after)
            if self.config.error_rate and self._random.random() < self.config.error_rate:
                return Fault("error", self.config.error_status)
            if self.config.latency_ms:
                return Fault("delay", delay_seconds=self.config.latency_ms / 1000)
        return None

    def count_authenticated_request(self) -> bool:
        """Counts one authenticated request; True when the token has now expired (TTL reached)."""
        with self._lock:
            ttl = self.config.token_ttl_requests
            if ttl is None:
                return False
            self._authenticated_requests += 1
            return self._authenticated_requests > ttl

    def token_refreshed(self) -> None:
        with self._lock:
            self._authenticated_requests = 0

    def vendor(self, switch: str, default: Any = None) -> Any:
        return self.config.vendor.get(switch, default)
