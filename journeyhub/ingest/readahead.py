"""Pages read one step ahead, in a thread, while the caller stores the pages before them.

A pull's process alternates between waiting for the CRM (the request, the server's work, the response) and
writing to the database. Both release the interpreter lock — sockets while they wait, SQLite while it runs a
statement or commits — so a reading thread overlaps them: while page n is written, page n+1 is requested and
parsed. Nothing else changes: pages arrive in the order read, a read error arrives after the pages read
before it, and no more than `limit` pages are read, so a task that stores N pages makes exactly the API calls
it did before. The thread runs in a copy of the caller's context, so Prefect's run context (rate-limit slots,
run logs) is the caller's. A read kept open across a pull's batches (`journeyhub.ingest.sync`, no `limit`)
keeps the context of the batch that opened it: what its thread logs goes to that task's run.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

Item = TypeVar("Item")
_END = object()


class ReadAhead(Generic[Item]):
    """Iterates `source` in a thread, at most `depth` items ahead of the consumer and `limit` items in all
    (None: to the end). `close()` stops the thread after the item it is reading and closes `source`."""

    def __init__(self, source: Iterator[Item], *, limit: int | None = None, depth: int = 1) -> None:
        self._source = source
        self._limit = limit
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._read,), name="read-ahead", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        """Thread body: items, then the error that ended the reading (if any), then the end marker."""
        read = 0
        try:
            while (self._limit is None or read < self._limit) and not self._stop.is_set():
                item = next(self._source, _END)
                if item is _END:
                    break
                read += 1
                self._put(item)
        except BaseException as error:  # handed to the consumer, who raises it in its own thread
            self._put(_Failure(error))
        self._put(_END)

    def _put(self, item: object) -> None:
        """Blocks while the consumer is `depth` items behind; gives up once it has closed."""
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def __iter__(self) -> Iterator[Item]:
        return self

    def __next__(self) -> Item:
        if self._finished or self._stop.is_set():  # ended, failed or closed: nothing more will come
            raise StopIteration
        item = self._queue.get()
        if item is _END:
            self._finished = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._finished = True
            raise item.error
        return item  # type: ignore[return-value]

    def close(self) -> None:
        """Stop reading (the thread finishes the item it is on) and close the source."""
        self._stop.set()
        self._thread.join()
        close = getattr(self._source, "close", None)
        if close is not None:
            close()


class _Failure:
    def __init__(self, error: BaseException) -> None:
        self.error = error
