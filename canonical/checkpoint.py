"""SQLite's write-ahead log is checkpointed by a thread of its own, not inside the commit that fills it.

In WAL mode the commit that grows the log past `wal_autocheckpoint` pages also copies the log into the
database file and syncs both, before it returns: a pull paid that in the page transaction every ~1,000 log
pages (~10–15% of an email events page's write, `bench/events_rate.py`). Here every write transaction's
commit (`canonical.db.transaction`: pages, identity, the tagger's batches) wakes one thread
per database file that runs a PASSIVE checkpoint on a connection of its own: it never blocks a reader or a
writer, and its I/O releases the interpreter lock, so the copying overlaps the next page's work. The log
starts over once it was copied completely before the next commit writes: between a pull's pages (while the
next one is mapped and classified) the thread gets there, so the log stays about one page long. Should it
fall behind (commits back to back on a loaded host), each connection still checkpoints by itself at
`BACKSTOP_PAGES` (four times SQLite's default), mostly a sync by then, so the log never grows past ~16 MB.
Nothing changes for durability: until checkpointed, the log is the database. The thread ends after
`IDLE_SECONDS` without a commit and starts again with the next one. (A `file:` URI database keeps only the
backstop.)
"""

from __future__ import annotations

import sqlite3
import threading
from urllib.parse import quote

#: a connection checkpoints by itself only past this many log pages (16 MB at 4 KiB pages)
BACKSTOP_PAGES = 4000
IDLE_SECONDS = 5.0


class Checkpointer:
    """The background checkpoints of one SQLite database file."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.checkpoints = 0  # checkpoints run (monitoring, tests)
        self._wanted = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def nudge(self) -> None:
        """A commit happened: checkpoint soon (many commits in a row make one checkpoint at a time)."""
        with self._lock:
            self._wanted.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
                self._thread.start()

    @property
    def running(self) -> bool:
        return self._thread is not None

    def _run(self) -> None:
        try:  # read-write, never create: a file that is gone stays gone
            connection = sqlite3.connect(f"file:{quote(self.path)}?mode=rw", uri=True, timeout=0.1)
        except sqlite3.Error:
            with self._lock:
                self._thread = None
            return
        try:
            while True:
                if not self._wanted.wait(IDLE_SECONDS):
                    with self._lock:
                        if not self._wanted.is_set():  # idle: end (a nudge from now on starts a new thread)
                            self._thread = None
                            return
                self._wanted.clear()
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                    self.checkpoints += 1
                except sqlite3.Error:  # the file is busy or gone: the next commit asks again (the backstop holds)
                    continue
        finally:
            connection.close()


_checkpointers: dict[str, Checkpointer] = {}
_registry_lock = threading.Lock()


def checkpointer_for(path: str) -> Checkpointer:
    """The one checkpointer of a database file in this process (engines on one file share it)."""
    with _registry_lock:
        found = _checkpointers.get(path)
        if found is None:
            found = _checkpointers[path] = Checkpointer(path)
        return found
