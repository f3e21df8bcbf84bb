"""Driver-level reads and writes for the journey pass, bound as each dialect stores the values.

A full pass writes hundreds of thousands of history rows and customer columns; binding them as dicts through
SQLAlchemy's per-value type processing took the one writing process about as long as the workers took to compute
them (the same reason facts.py reads with plain SQL). Rows here are plain tuples, made ready by whoever computes
them (in a pool, the worker processes), so the writing process only executes statements. Timestamps are stored
as `canonical.types.UTCDateTime` stores them: UTC ISO-8601 text ending in `Z` on SQLite, aware datetimes
(timestamptz) on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Connection

from canonical.upsert import sqlite_timestamp

TimeWriter = Callable[[datetime | None], Any]


def sqlite_time(value: datetime | None) -> str | None:
    """A timestamp as SQLite stores it (`canonical.upsert.sqlite_timestamp`)."""
    return None if value is None else sqlite_timestamp(value)


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: canonical timestamps must be timezone-aware UTC")
    return value


def time_writer(dialect: str) -> TimeWriter:
    """How timestamps are bound on this dialect."""
    return sqlite_time if dialect == "sqlite" else _aware


def mark(connection: Connection) -> str:
    """The driver's placeholder: `?` for sqlite3, `%s` for psycopg."""
    return "?" if connection.dialect.paramstyle == "qmark" else "%s"


def marks(connection: Connection, count: int) -> str:
    return ", ".join([mark(connection)] * count)


def insert_sql(connection: Connection, table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(connection, len(columns))})"


def update_sql(connection: Connection, table: str, columns: Sequence[str], key: str = "id") -> str:
    """`UPDATE … SET <columns> WHERE <key>`: rows bind the columns, then the key."""
    placeholder = mark(connection)
    assignments = ", ".join(f"{name} = {placeholder}" for name in columns)
    return f"UPDATE {table} SET {assignments} WHERE {key} = {placeholder}"


def upsert_sql(connection: Connection, table: str, columns: Sequence[str], key: str, update: Sequence[str]) -> str:
    """`INSERT … ON CONFLICT (<key>) DO UPDATE SET <update>` (the same text on SQLite and PostgreSQL)."""
    changes = ", ".join(f"{name} = excluded.{name}" for name in update)
    return f"{insert_sql(connection, table, columns)} ON CONFLICT ({key}) DO UPDATE SET {changes}"


def execute_many(connection: Connection, sql: str, rows: Sequence[tuple[Any, ...]]) -> None:
    """One executemany in the connection's transaction; nothing is executed for no rows."""
    if rows:
        connection.exec_driver_sql(sql, rows if isinstance(rows, list) else list(rows))


def fetch_rows(connection: Connection, sql: str, parameters: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The driver's own rows, plain tuples: nothing processed per value by SQLAlchemy, and (unlike its rows)
    objects the cyclic collector stops tracking, however many of them a batch holds."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(sql, tuple(parameters))
        return cursor.fetchall()
    finally:
        cursor.close()
