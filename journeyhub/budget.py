"""A CRM's API budget inside one process, for runs with no Prefect server to share it through.

`TokenBucket(burst, per_second)` lets `burst` requests go at once and then `per_second` more each second:
in any window of `w` seconds at most `burst + per_second * w` requests start, the same bound as the Prefect
rate limit that replaces it when a server is configured (`flows/limits.py`). Callers reserve their token
before sleeping, so concurrent threads are served in order and the bound holds across them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class TokenBucket:
    """Thread-safe; `take()` blocks until the caller may send one request."""

    def __init__(self, burst: int, per_second: float, *, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if burst < 1 or per_second <= 0:
            raise ValueError("a token bucket needs a burst of at least 1 and a rate above 0")
        self.burst, self.per_second = burst, per_second
        self._clock, self._sleep = clock, sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> float:
        """Reserve one request and wait until it may be sent; returns the seconds waited."""
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._updated) * self.per_second)
            self._updated = now
            self._tokens -= 1.0
            wait = -self._tokens / self.per_second if self._tokens < 0 else 0.0
        if wait > 0:
            self._sleep(wait)
        return wait

    def __call__(self) -> None:
        self.take()
