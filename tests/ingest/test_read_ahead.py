"""`ReadAhead`: the next page is read while the current one is stored — in order, never past the pages the
caller will store, errors raised where the caller asks for the page, and the source closed when stopped."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from connectors.base import Page
from connectors.base import SourceRecord as Record
from connectors.errors import UpstreamError
from journeyhub.ingest.sync import ReadAhead


def pages(count: int, log: list[str], fail_at: int | None = None) -> Iterator[Page]:
    try:
        for number in range(count):
            if number == fail_at:
                raise UpstreamError("hubspot", f"page {number} failed")
            log.append(f"read {number}")
            yield Page("contacts", [Record("contacts", str(number), {"n": number})], f"cursor-{number}", 1)
    finally:
        log.append("closed")


def test_pages_arrive_in_order_and_the_source_is_exhausted() -> None:
    log: list[str] = []
    ahead = ReadAhead(pages(5, log))
    assert [page.cursor for page in ahead] == [f"cursor-{n}" for n in range(5)]
    ahead.close()
    assert log[-1] == "closed" and log.count("closed") == 1


def test_never_reads_past_the_limit_so_no_api_call_is_wasted() -> None:
    log: list[str] = []
    ahead = ReadAhead(pages(10, log), limit=3)
    assert [page.cursor for page in ahead] == ["cursor-0", "cursor-1", "cursor-2"]
    ahead.close()
    assert [entry for entry in log if entry.startswith("read")] == ["read 0", "read 1", "read 2"]


def test_an_error_is_raised_at_the_page_that_failed_after_the_pages_before_it() -> None:
    log: list[str] = []
    ahead = ReadAhead(pages(5, log, fail_at=2))
    assert next(ahead).cursor == "cursor-0" and next(ahead).cursor == "cursor-1"
    with pytest.raises(UpstreamError, match="page 2 failed"):
        next(ahead)
    with pytest.raises(StopIteration):
        next(ahead)
    ahead.close()


def test_closing_early_stops_the_reader_and_closes_the_source() -> None:
    log: list[str] = []
    ahead = ReadAhead(pages(1000, log))
    assert next(ahead).cursor == "cursor-0"
    ahead.close()
    assert log[-1] == "closed"
    assert sum(entry.startswith("read") for entry in log) <= 3  # one page in hand, at most one or two ahead
    assert not any(thread.name == "read-ahead" and thread.is_alive() for thread in threading.enumerate())
