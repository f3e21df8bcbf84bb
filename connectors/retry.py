"""The one retry policy every connector uses (tenacity), keyed off our error classes only.

Retriable errors are retried with the vendor's requested wait when it gave one (Retry-After, HubSpot's
policy window), otherwise exponential backoff with jitter; bounded in attempts and in total time. Fatal and
skippable errors are raised at once. A 401 on a refreshable token triggers exactly one refresh. A client's
`Breaker` (`connectors.breaker`), when given, guards every attempt: a host that stays silent for
`unreachable_seconds` stops its CRM for the run instead of being retried per call.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from connectors.breaker import Breaker
from connectors.errors import AuthError, RetriableError, TokenExpired

T = TypeVar("T")
log = logging.getLogger("journeyhub.connectors")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. The defaults suit production; tests pass a fast one."""

    max_attempts: int = 8
    max_seconds: float = 300.0
    initial_wait: float = 0.5
    max_backoff: float = 30.0
    max_vendor_wait: float = 120.0
    unreachable_seconds: float = 30.0    # a host without any answer this long stops its CRM (connectors.breaker)

    def retrying(self) -> Retrying:
        backoff = wait_exponential_jitter(initial=self.initial_wait, max=self.max_backoff, jitter=self.initial_wait)

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            if isinstance(error, RetriableError) and error.retry_after is not None:
                return min(max(error.retry_after, 0.0), self.max_vendor_wait)
            return backoff(state)

        return Retrying(
            retry=retry_if_exception_type(RetriableError) & retry_if_not_exception_type(TokenExpired),
            wait=wait,
            stop=stop_after_attempt(self.max_attempts) | stop_after_delay(self.max_seconds),
            before_sleep=_log,
            reraise=True,
        )


DEFAULT_POLICY = RetryPolicy()


def _log(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("retrying after %s (attempt %d): %s", type(error).__name__, state.attempt_number, error)


def call(fn: Callable[[], T], *, refresh: Callable[[], None] | None = None,
         policy: RetryPolicy = DEFAULT_POLICY, breaker: Breaker | None = None) -> T:
    """Run `fn` under the retry policy; on TokenExpired, `refresh` once and try again; each attempt under
    `breaker` (which raises HostUnreachable, not retried, once the host has been silent too long)."""

    def attempt() -> T:
        try:
            return fn()
        except TokenExpired as error:
            if refresh is None:
                raise AuthError(error.system, f"{error.message}; this access token cannot be refreshed — "
                                "configure credentials the hub can log in with again") from None
        refresh()
        try:
            return fn()
        except TokenExpired as again:
            raise AuthError(again.system, "authentication failed right after a token refresh; "
                            "check the credentials") from None

    if breaker is None:
        return policy.retrying()(attempt)
    return policy.retrying()(lambda: breaker.run(attempt))
