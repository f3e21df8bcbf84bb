"""The one retry policy every connector uses (tenacity), keyed off our error classes only.

Retriable errors are retried with the vendor's requested wait when it gave one (Retry-After, HubSpot's
policy window), otherwise exponential backoff with jitter; bounded in attempts and in total time. Fatal and
skippable errors are raised at once. A 401 on a refreshable token triggers exactly one refresh.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    stop_after_delay,
    wait_exponential_jitter,
)

from connectors.errors import AuthError, RetriableError, TokenExpired

T = TypeVar("T")
log = logging.getLogger("journeyhub.connectors")

MAX_ATTEMPTS = 8
MAX_TOTAL_SECONDS = 300.0
MAX_SINGLE_WAIT = 120.0
_backoff = wait_exponential_jitter(initial=0.5, max=30, jitter=0.5)


def _wait(state: RetryCallState) -> float:
    error = state.outcome.exception() if state.outcome else None
    if isinstance(error, RetriableError) and error.retry_after is not None:
        return min(max(error.retry_after, 0.0), MAX_SINGLE_WAIT)
    return _backoff(state)


def _log(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome else None
    log.warning("retrying after %s (attempt %d): %s", type(error).__name__, state.attempt_number, error)


def retrying(max_attempts: int = MAX_ATTEMPTS, max_seconds: float = MAX_TOTAL_SECONDS) -> Retrying:
    return Retrying(
        retry=retry_if_exception_type(RetriableError) & ~retry_if_exception_type(TokenExpired),
        wait=_wait,
        stop=stop_after_attempt(max_attempts) | stop_after_delay(max_seconds),
        before_sleep=_log,
        reraise=True,
    )


def call(fn: Callable[[], T], *, refresh: Callable[[], None] | None = None,
         max_attempts: int = MAX_ATTEMPTS) -> T:
    """Run `fn` under the retry policy; on TokenExpired, `refresh` once and try again."""
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

    return retrying(max_attempts)(attempt)
