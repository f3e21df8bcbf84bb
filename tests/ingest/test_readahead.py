"""Pages read ahead in a thread arrive as the source yields them: in order, errors after the pages read before
them, never more than the limit, in the caller's context, and the thread stops when the consumer closes."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator

import pytest

from journeyhub.ingest.readahead import ReadAhead

REQUEST = contextvars.ContextVar("request", default="none")


class Source:
    """A generator that records what it yielded, in which thread and context, and whether it was closed."""

    def __init__(self, count: int, fail_at: int | None = None) -> None:
        self.count = count
        self.fail_at = fail_at
        self.yielded: list[int] = []
        self.threads: set[str] = set()
        self.contexts: set[str] = set()
        self.closed = False

    def __call__(self) -> Iterator[int]:
        try:
            for number in range(self.count):
                if number == self.fail_at:
                    raise ConnectionError(f"HTTP 503 at item {number}")
                self.threads.add(threading.current_thread().name)
                self.contexts.add(REQUEST.get())
                self.yielded.append(number)
                yield number
        finally:
            self.closed = True


def test_items_arrive_in_order_from_another_thread_in_the_callers_context() -> None:
    source = Source(25)
    REQUEST.set("task-7")
    ahead = ReadAhead(source(), depth=2)
    assert list(ahead) == list(range(25))
    ahead.close()
    assert source.threads == {"read-ahead"} and source.contexts == {"task-7"} and source.closed


@pytest.mark.parametrize("limit", [0, 1, 7, 25, 40])
def test_no_more_than_the_limit_is_read(limit: int) -> None:
    source = Source(25)
    ahead = ReadAhead(source(), limit=limit, depth=3)
    received = list(ahead)
    ahead.close()
    assert received == list(range(min(limit, 25))) and source.yielded == received


def test_an_error_arrives_after_the_items_read_before_it() -> None:
    source = Source(10, fail_at=4)
    ahead = ReadAhead(source())
    received = []
    with pytest.raises(ConnectionError, match="HTTP 503 at item 4"):
        for item in ahead:
            received.append(item)
    ahead.close()
    assert received == [0, 1, 2, 3]
    with pytest.raises(StopIteration):  # an ended read stays ended
        next(ahead)


def test_closing_early_stops_the_thread_and_closes_the_source() -> None:
    source = Source(10_000)
    ahead = ReadAhead(source(), depth=2)
    assert [next(ahead), next(ahead)] == [0, 1]
    ahead.close()
    assert source.closed and not ahead._thread.is_alive()
    assert len(source.yielded) <= 2 + 2 + 1  # consumed, the queue's depth, the item the thread held
    with pytest.raises(StopIteration):  # a closed read ends at once (it does not wait for the stopped thread)
        next(ahead)
