"""HubSpot's per-account request limits: a rolling 10-second window for all API calls and a separate
per-second window for search. Both are sliding windows over request timestamps."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Decision:
    allowed: bool
    limit: int
    remaining: int
    retry_after: float   # seconds until a slot frees up (only meaningful when not allowed)


class RollingLimiter:
    def __init__(self, limit: int | None, window_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window_seconds
        self.clock = clock
        self._hits: deque[float] = deque()
        self._lock = threading.Lock()

    def configure(self, limit: int | None) -> None:
        with self._lock:
            self.limit = limit
            self._hits.clear()

    def acquire(self) -> Decision | None:
        """Counts one request; None when the limiter is disabled."""
        if self.limit is None:
            return None
        with self._lock:
            now = self.clock()
            horizon = now - self.window
            hits = self._hits
            while hits and hits[0] <= horizon:
                hits.popleft()
            if len(hits) >= self.limit:
                wait = hits[0] + self.window - now if hits else self.window
                return Decision(False, self.limit, 0, max(wait, 0.001))
            hits.append(now)
            return Decision(True, self.limit, self.limit - len(hits), 0.0)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
