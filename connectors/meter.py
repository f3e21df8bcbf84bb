"""The one request meter every connector uses: it counts each HTTP request a connector sends (retry
attempts, logins, token calls and polls included), takes a slot of the shared rate budget before each one,
and tells a reader how many requests went into each page (`Page.api_calls`)."""

from __future__ import annotations

from collections.abc import Callable


class RequestMeter:
    """Requests sent through one client. Call `request()` right before each HTTP request goes out."""

    def __init__(self, throttle: Callable[[], None] | None = None) -> None:
        self.calls = 0
        self.throttle = throttle   # called before every request (e.g. a slot of the CRM's Prefect rate limit)

    def request(self) -> None:
        self.calls += 1
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
        calls, self.mark = self.meter.calls - self.mark, self.meter.calls
        return calls
