"""One writer per (CRM, object): a second pull or reconciliation of the same object waits for the first.

The cursor and the page loader assume a single writer per object; two runs reading from the same cursor at
once would read, count and store everything twice. The lock lives where the data lives, so it holds for
every process that can write it:

- **PostgreSQL**: a session-level advisory lock on the canonical database itself, taken on a connection of
  its own (autocommit, so no transaction stays open while the pull runs). Every worker on every host talks to
  this one server, and the server drops the lock the moment the holder's connection ends — a killed
  process or a dead host never leaves it behind, so the next run goes ahead at once (a Prefect tag limit
  would keep a killed run's slot until its lease expired, and does not exist for runs without a server).
- **SQLite** (one host by nature): an exclusive `flock` on a file next to the database, which the kernel
  releases when the holder's process ends.
- An in-memory SQLite database lives in one process: a lock of that process.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text

_memory_locks: dict[tuple[str, str, str], threading.Lock] = {}
_memory_guard = threading.Lock()


def lock_key(system: str, object_type: str) -> int:
    """A stable signed 64-bit key for PostgreSQL's advisory locks."""
    digest = hashlib.blake2b(f"journeyhub:writer:{system}:{object_type}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


@contextmanager
def writer_lock(engine: Engine, system: str, object_type: str,
                on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the (system, object) writer lock; when another run holds it, call `on_wait` once, then wait."""
    if engine.dialect.name == "postgresql":
        with _advisory_lock(engine, lock_key(system, object_type), on_wait):
            yield
        return
    database = engine.url.database
    if engine.dialect.name == "sqlite" and database and database != ":memory:" and not database.startswith("file:"):
        with _file_lock(Path(f"{database}.locks") / f"{system}.{object_type}.lock", on_wait):
            yield
        return
    with _process_lock((str(engine.url), system, object_type), on_wait):
        yield


@contextmanager
def _advisory_lock(engine: Engine, key: int, on_wait: Callable[[], None] | None) -> Iterator[None]:
    connection = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        if not connection.execute(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}).scalar():
            if on_wait is not None:
                on_wait()
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": key})
        yield
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    except BaseException:
        connection.invalidate()  # ending the session releases whatever it holds, whatever state it is in
        raise
    finally:
        connection.close()


@contextmanager
def _file_lock(path: Path, on_wait: Callable[[], None] | None) -> Iterator[None]:
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if on_wait is not None:
                on_wait()
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextmanager
def _process_lock(key: tuple[str, str, str], on_wait: Callable[[], None] | None) -> Iterator[None]:
    with _memory_guard:
        lock = _memory_locks.setdefault(key, threading.Lock())
    if not lock.acquire(blocking=False):
        if on_wait is not None:
            on_wait()
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
