"""The one request meter every connector uses: it counts each HTTP request a connector sends (retry
attempts, logins, token calls and polls included), takes a slot of the shared rate budget before each one,
and tells a reader how many requests went into each page (`Page.api_calls`).

One connector may serve several reads at once (the object types of one CRM pulled concurrently,
`flows/sync.py`). Each read then runs inside its own `counted_apart()` scope: the scope follows the read into
the threads it starts with a copy of its context (`journeyhub.ingest.readahead`), and within it `calls` counts
only the requests made there, so per-page and per-object figures stay exact while other reads run."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar


class _Scope:
    """Requests per meter (by id) made in one `counted_apart()` scope."""

    def __init__(self) -> None:
        self.calls: defaultdict[int, int] = defaultdict(int)


_scope: ContextVar[_Scope | None] = ContextVar("journeyhub_request_scope", default=None)


@contextmanager
def counted_apart() -> Iterator[None]:
    """Within this block (and threads started with a copy of its context) meters count only its requests."""
    token = _scope.set(_Scope())
    try:
        yield
    finally:
        _scope.reset(token)


class RequestMeter:
    """Requests sent through one client. Call `request()` right before each HTTP request goes out; safe to
    call from several threads."""

    def __init__(self, throttle: Callable[[], None] | None = None) -> None:
        self.throttle = throttle   # called before every request (e.g. a slot of the CRM's Prefect rate limit)
        self._total = 0
        self._lock = threading.Lock()

    @property
    def calls(self) -> int:
        """Requests so far: those of the current `counted_apart()` scope inside one, else all of them."""
        scope = _scope.get()
        with self._lock:
            return self._total if scope is None else scope.calls[id(self)]

    @property
    def total(self) -> int:
        """Every request this meter counted, whatever the scope."""
        with self._lock:
            return self._total

    def request(self) -> None:
        scope = _scope.get()
        with self._lock:
            self._total += 1
            if scope is not None:
                scope.calls[id(self)] += 1
        if self.throttle is not None:
            self.throttle()

    def pages(self) -> PageCalls:
        """A counter of the requests each page of one read cost, starting now."""
        return PageCalls(self)


class PageCalls:
    """Requests since the previous page of one read (what `Page.api_calls` reports)."""

    def __init__(self, meter: RequestMeter) -> None:
        self.meter = meter
        self.mark = meter.calls

    def take(self) -> int:
        now = self.meter.calls
        calls, self.mark = now - self.mark, now
        return calls
