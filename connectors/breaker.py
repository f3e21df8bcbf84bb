"""A circuit breaker per CRM: a host that does not answer stops that CRM once per run, not per call.

Retrying a refused connection for minutes per object (the retry policy's 8 attempts / 300 s) makes a dead host
cost a quarter of an hour per CRM. Each connector's client owns one `Breaker`, shared by all its calls in the
run: it counts `Unreachable` failures (no HTTP answer at all) from the start of the first such attempt; once the
host has been silent for `window` seconds of attempts — or at once when its name does not resolve — it opens,
and every later call raises `HostUnreachable` without touching the network. Any HTTP answer, 429 and 5xx
included, closes it again (those keep their own bounded, Retry-After-honouring retries).

`connection_failure(error)` is the vendor-neutral half of the translation: which OS-level cause an SDK's
connect error carries (each client decides that an exception is a connect failure; this says why).
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

from connectors.errors import ConnectorError, HostUnreachable, Unreachable

T = TypeVar("T")
DEFAULT_WINDOW = 30.0
#: seconds to wait for a connection (the read timeout stays the client's own): a host that drops SYNs costs
#: a few attempts of this inside the window, not one 60 s attempt beyond it
CONNECT_TIMEOUT = 10.0
#: getaddrinfo's "this name does not exist" answers (NXDOMAIN, no address): retrying cannot help
_NO_SUCH_NAME = {code for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
                 if code is not None}


class Breaker:
    """Counts unanswered attempts of one CRM; `run(fn)` is one attempt under it."""

    def __init__(self, system: str, label: str, window: float = DEFAULT_WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.system, self.label, self.window, self.clock = system, label, window, clock
        self.silent_since: float | None = None     # start of the first unanswered attempt since the last answer
        self.opened: HostUnreachable | None = None
        self._lock = threading.Lock()

    def run(self, fn: Callable[[], T]) -> T:
        """`fn()` unless the breaker is open; an `Unreachable` that opens it becomes `HostUnreachable`."""
        if self.opened is not None:
            raise self._again()
        started = self.clock()
        try:
            result = fn()
        except Unreachable as error:
            opened = self.unanswered(error, started)
            if opened is not None:
                raise opened from None
            raise
        except ConnectorError as error:
            if error.status is not None:   # the host answered (a 4xx, 429 or 5xx): it is alive
                self.answered()
            raise
        self.answered()
        return result

    def answered(self) -> None:
        with self._lock:
            self.silent_since = None

    def unanswered(self, error: Unreachable, started: float) -> HostUnreachable | None:
        """Record one unanswered attempt that began at `started`; the error to raise if that opens the breaker."""
        with self._lock:
            if self.opened is not None:
                return self._again()
            if self.silent_since is None:
                self.silent_since = started
            silent = self.clock() - self.silent_since
            if not error.permanent and silent < self.window:
                return None
            how = "its name does not resolve" if error.permanent else f"it has not answered for {silent:.3g} s"
            self.opened = HostUnreachable(
                self.system, f"{self.label} at {error.host} cannot be reached ({error.reason}); {how}, so "
                f"{self.label} is stopped for this run — check {error.setting} and that the host is reachable",
                host=error.host, setting=error.setting)
            return self.opened

    def _again(self) -> HostUnreachable:
        opened = self.opened
        assert opened is not None
        return HostUnreachable(self.system, opened.message, host=opened.host, setting=opened.setting)


def chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it wraps: `__cause__`, `__context__`, urllib3's `reason`, exceptions in `args`."""
    seen: set[int] = set()
    pending: list[BaseException] = [error]
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        reason = getattr(current, "reason", None)
        links = [current.__cause__, current.__context__, reason if isinstance(reason, BaseException) else None,
                 *(item for item in current.args if isinstance(item, BaseException))]
        pending += [link for link in links if link is not None]


def failed_to_connect(error: BaseException, kinds: tuple[type[BaseException], ...]) -> bool:
    """Whether `error` is, or wraps, one of an HTTP library's "no connection was made" classes `kinds`."""
    return any(isinstance(link, kinds) for link in chain(error))


def connection_failure(error: BaseException) -> tuple[str, bool]:
    """(why, permanent) of a failure to connect, from the OS errors in its chain: refused, name not resolved,
    TLS, timed out."""
    for current in chain(error):
        if isinstance(current, socket.gaierror):
            return f"the name does not resolve: {current.strerror or current}", current.errno in _NO_SUCH_NAME
        if isinstance(current, ssl.SSLError):
            return f"TLS failed: {getattr(current, 'reason', None) or current}", False
        if isinstance(current, ConnectionRefusedError):
            return "connection refused", False
        if isinstance(current, TimeoutError):
            return "connecting timed out", False
        if isinstance(current, OSError) and current.errno is not None and current.strerror:
            return str(current.strerror), False
    name = type(error).__name__
    if "timeout" in name.lower():
        return "connecting timed out", False
    return f"could not connect ({name})", False
