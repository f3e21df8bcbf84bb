"""Batch upserts with the dialect's native ON CONFLICT (SQLite and PostgreSQL), never row by row."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Table, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

CHUNK = 2000  # rows per statement execution: bounds memory, keeps PostgreSQL packets moderate
ID_CHUNK = 500  # ids per IN (...) lookup, well under SQLite's bound-parameter limit


def table_of(model: type[SQLModel] | Table) -> Table:
    return model if isinstance(model, Table) else model.__table__  # type: ignore[attr-defined]


def _insert(connection: Connection, table: Table) -> Any:
    dialect = connection.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"upserts are implemented for sqlite and postgresql, not {dialect}")


def chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def upsert(connection: Connection, model: type[SQLModel] | Table, rows: Sequence[dict[str, Any]], *,
           conflict: Sequence[str] | None = None, update: Iterable[str] | None = None) -> int:
    """Insert `rows` (all with the same keys), updating `update` columns where `conflict` already exists.

    `conflict` defaults to the primary key; `update` to every other column present in the rows. With no
    columns to update it becomes INSERT … ON CONFLICT DO NOTHING.
    """
    if not rows:
        return 0
    table = table_of(model)
    conflict = list(conflict or [column.name for column in table.primary_key.columns])
    columns = update if update is not None else [key for key in rows[0] if key not in conflict]
    statement = _insert(connection, table)
    set_ = {name: statement.excluded[name] for name in columns}
    if set_:
        statement = statement.on_conflict_do_update(index_elements=conflict, set_=set_)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=conflict)
    for chunk in chunks(rows, CHUNK):
        connection.execute(statement, list(chunk))
    return len(rows)


def fetch_by_ids(connection: Connection, model: type[SQLModel] | Table, ids: Sequence[str],
                 columns: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """`{id: (columns…)}` for the ids that exist, in a few IN (…) queries."""
    table = table_of(model)
    key = next(iter(table.primary_key.columns))
    wanted = [table.c[name] for name in columns]
    found: dict[str, tuple[Any, ...]] = {}
    for chunk in chunks(list(ids), ID_CHUNK):
        for row in connection.execute(select(key, *wanted).where(key.in_(chunk))):
            found[row[0]] = tuple(row[1:])
    return found
