"""Database access: one URL (`JOURNEYHUB_DATABASE_URL`), SQLite by default, PostgreSQL in production."""

from __future__ import annotations

import os
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import ArgumentError, OperationalError
from sqlalchemy.exc import NoSuchModuleError as NoDriver

from canonical import checkpoint

DEFAULT_DATABASE_URL = "sqlite:///journeyhub.db"
#: the background checkpoints of each SQLite file engine (`canonical.checkpoint`), found by its write transactions
_checkpointers: weakref.WeakKeyDictionary[Engine, checkpoint.Checkpointer] = weakref.WeakKeyDictionary()


class DatabaseError(Exception):
    """A database problem explained for a person: what is wrong and how to fix it."""


def normalize_url(url: str) -> str:
    """`postgresql://` and `postgres://` mean psycopg 3, the driver the project ships with."""
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def redact(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for the URL, with SQLite tuned for a single writer and many readers."""
    url = normalize_url(url)
    try:
        parsed = make_url(url)
    except ArgumentError as error:
        raise DatabaseError(
            f"JOURNEYHUB_DATABASE_URL is not a database URL ({error}); use e.g. sqlite:///journeyhub.db "
            "or postgresql://user@host:5432/dbname"
        ) from None
    try:
        if parsed.get_backend_name() == "sqlite":
            engine = create_engine(url, connect_args={"timeout": 30}, **kwargs)
            event.listen(engine, "connect", _sqlite_pragmas)
            event.listen(engine, "begin", _sqlite_begin)
            if (path := _database_file(parsed.database)) is not None:
                _checkpointers[engine] = checkpoint.checkpointer_for(path)
        else:
            # No server-side prepared statements: a generic plan made while a table was small (a seq scan)
            # would be kept as the table grows, turning each page's id lookup into a full scan.
            connect_args = {"prepare_threshold": None} if parsed.get_driver_name() == "psycopg" else {}
            engine = create_engine(url, pool_pre_ping=True, connect_args=connect_args, **kwargs)
    except NoDriver:
        raise DatabaseError(
            f"unsupported database {parsed.get_backend_name()!r} in {redact(url)}: "
            "Journey Hub supports sqlite and postgresql"
        ) from None
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # transactions are begun by _sqlite_begin, not by the driver
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA cache_size=-16000")
    cursor.execute("PRAGMA temp_store=MEMORY")
    cursor.execute(f"PRAGMA wal_autocheckpoint={checkpoint.BACKSTOP_PAGES}")  # checkpoints run in a thread
    cursor.close()


def _database_file(database: str | None) -> str | None:
    """The file of an SQLite database (None in memory): the key of its background checkpoints."""
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


def _sqlite_begin(connection: Connection) -> None:
    """Transactions opened by `transaction()` begin IMMEDIATE: one that reads then writes (a page: look up,
    then upsert) must hold the write lock from the start, or it fails at once with "database is locked"
    when another writer committed after its read (WAL's busy-snapshot case, which the busy timeout does not
    cover). Immediate ones simply wait their turn, so concurrent CRM pulls share one SQLite file safely;
    other transactions stay deferred so readers never block each other."""
    immediate = connection.get_execution_options().get("journeyhub_immediate")
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def check_connection(engine: Engine) -> None:
    """One round trip; raises DatabaseError with the reason when the database cannot be reached."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except OperationalError as error:
        reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
        raise DatabaseError(
            f"cannot connect to the database {redact(str(engine.url))}: {reason}. "
            "Check JOURNEYHUB_DATABASE_URL and that the server is running."
        ) from None


@contextmanager
def transaction(engine: Engine) -> Iterator[Connection]:
    """A write transaction that may read first: committed on success, rolled back on any error; on
    SQLite it takes the write lock at the start (see _sqlite_begin)."""
    with engine.connect() as connection:
        connection = connection.execution_options(journeyhub_immediate=True)
        with connection.begin():
            yield connection
    background = _checkpointers.get(engine)
    if background is not None:
        background.nudge()  # after the commit: the connection's own checkpoint, when due, goes first
