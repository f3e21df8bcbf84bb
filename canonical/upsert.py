"""Batch writes — upserts with the dialect's native ON CONFLICT, plain inserts, keyed updates — on SQLite and
PostgreSQL, never row by row. On SQLite the statement is compiled once per shape and the rows are bound as
tuples on the same DBAPI connection: a sync or a tagging pass writes every record through here.

On PostgreSQL a batch is one set-based statement per chunk: each column goes as one array parameter and
`INSERT … SELECT * FROM unnest(…) ON CONFLICT …` writes them all (`canonical.pg_bulk`)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager, nullcontext
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, Boolean, String, Table, bindparam, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, StatementError
from sqlmodel import AutoString, SQLModel

from canonical import pg_bulk
from canonical.types import UTCDateTime, json_text

try:
    import psycopg
    _PG_ERRORS: tuple[type[BaseException], ...] = (psycopg.DataError, psycopg.IntegrityError)
except ImportError:  # pragma: no cover - psycopg ships with the project
    _PG_ERRORS = ()

#: What a value can make a write raise — the database refusing it (too long, out of range, not storable) or
#: the driver unable to bind it — as opposed to the database being unreachable or a statement being wrong.
#: The page loader quarantines the records that raise these (`is_record_error`); anything else fails the run.
RECORD_ERRORS: tuple[type[BaseException], ...] = (
    StatementError, sqlite3.DataError, sqlite3.IntegrityError, OverflowError, UnicodeError, ValueError,
    TypeError, *_PG_ERRORS)


def is_record_error(error: BaseException) -> bool:
    """A write refused because of a value, not a lost connection, a lock timeout or a wrong statement."""
    if isinstance(error, DBAPIError):  # SQLAlchemy's wrapper of a database error
        return isinstance(error, DataError | IntegrityError)
    return isinstance(error, RECORD_ERRORS)


def error_message(error: BaseException) -> str:
    """The database's (or driver's) own one-line message for a refused write."""
    original = getattr(error, "orig", None) or error
    lines = str(original).strip().splitlines() or [type(original).__name__]
    return f"{type(original).__name__}: {lines[0]}"[:500]


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
    columns = list(update if update is not None else [key for key in rows[0] if key not in conflict])
    if connection.dialect.name == "sqlite":
        _sqlite_executemany(connection, table, tuple(rows[0]), tuple(conflict), tuple(columns), rows)
        return len(rows)
    if connection.dialect.name == "postgresql" and pg_bulk.METHOD != "executemany":
        for chunk in chunks(rows, CHUNK):
            pg_bulk.upsert(connection, table, chunk, tuple(conflict), tuple(columns))
        return len(rows)
    statement = _insert(connection, table)
    set_ = {name: statement.excluded[name] for name in columns}
    if set_:
        statement = statement.on_conflict_do_update(index_elements=conflict, set_=set_)
    else:
        statement = statement.on_conflict_do_nothing(index_elements=conflict)
    for chunk in chunks(rows, CHUNK):
        connection.execute(statement, list(chunk))
    return len(rows)


def upsert_counted(connection: Connection, model: type[SQLModel] | Table, rows: Sequence[dict[str, Any]], *,
                   update: Sequence[str], changed: tuple[str, ...]) -> dict[Any, bool] | None:
    """`upsert` on the primary key that updates an existing row only where a `changed` column differs, and says what
    it did: `{key: True inserted / False updated}`, rows left as they were absent. None on SQLite, where a
    write transaction holds the database's write lock from its start (`canonical.db.transaction`), so what
    it read before writing is what it writes over."""
    if connection.dialect.name != "postgresql" or pg_bulk.METHOD == "executemany":
        upsert(connection, model, rows, update=update)
        return None
    table = table_of(model)
    (key,) = [column.name for column in table.primary_key.columns]
    done: dict[Any, bool] = {}
    for chunk in chunks(rows, CHUNK):
        for written, inserted in pg_bulk.upsert(connection, table, chunk, (key,), tuple(update), changed):
            done[written] = inserted
    return done


def _sqlite_value(type_: Any) -> Callable[[Any], Any] | None:
    """How a value of this column type is stored on SQLite (as SQLAlchemy would store it, minus its
    per-row overhead): UTC ISO text for timestamps, JSON text for documents, 0/1 for booleans; None when
    the value goes in as it is."""
    if isinstance(type_, UTCDateTime):
        return _timestamp_text
    if isinstance(type_, JSON):
        return _json_text
    if isinstance(type_, Boolean):
        return _flag
    return None


def _timestamp_text(value: datetime | None) -> str | None:
    """A timestamp column's value: a remembered text first (most are: a page stamps every row with one `now`)."""
    text = _ISO_CACHE.get(value)  # type: ignore[arg-type]
    if text is not None:
        return text
    return None if value is None else _iso(value)


def _json_text(value: Any) -> str | None:
    return None if value is None else json_text(value)


def _flag(value: Any) -> int | None:
    return None if value is None else int(value)


_ISO_CACHE: dict[datetime, str] = {}
_ISO_CACHE_SIZE = 8192


def _iso(value: datetime) -> str:
    """`sqlite_timestamp`, remembered: a batch stamps every row with the same `now`, and a record's times
    come back in its derived rows (formatting costs ~50x a lookup; a datetime caches its own hash)."""
    text = _ISO_CACHE.get(value)
    if text is None:
        if len(_ISO_CACHE) >= _ISO_CACHE_SIZE:
            _ISO_CACHE.clear()
        text = _ISO_CACHE[value] = sqlite_timestamp(value)
    return text


def sqlite_timestamp(value: datetime) -> str:
    """A timestamp as SQLite stores it: UTC ISO-8601 text ending in `Z`, fixed width so text order is time
    order."""
    if value.tzinfo is not UTC:  # most values are UTC already: no conversion (millions per journey run)
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: canonical timestamps must be timezone-aware UTC")
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


Converters = list[tuple[int, Callable[[Any], Any]]]
Binder = Callable[[Sequence[dict[str, Any]]], list[tuple[Any, ...]]]
_SQLITE_STATEMENTS: dict[tuple[Any, ...], tuple[str, Binder]] = {}
_BINDERS: dict[tuple[Any, ...], Binder] = {}


def _binder(order: Sequence[str], converters: Converters) -> Binder:
    """Rows as the statement's parameter tuples, by a function generated once per shape: one tuple display
    per row, each value converted where its column needs it (the generic loop — a list per row, a call and
    an index per converted value — was ~25% of an email events page's write)."""
    key = (tuple(order), tuple(converters))
    binder = _BINDERS.get(key)
    if binder is None:
        convert = dict(converters)
        items = [f"_c{index}(row[{name!r}])" if index in convert else f"row[{name!r}]"
                 for index, name in enumerate(order)]
        source = f"def bind(rows):\n    return [({', '.join(items)},) for row in rows]\n"
        namespace: dict[str, Any] = {f"_c{index}": function for index, function in converters}
        exec(compile(source, "<sqlite binder>", "exec"), namespace)  # column names go in repr()-quoted
        binder = _BINDERS[key] = namespace["bind"]
    return binder


def _sqlite_statement(connection: Connection, table: Table, names: tuple[str, ...], conflict: tuple[str, ...] | None,
                      columns: tuple[str, ...]) -> tuple[str, Binder]:
    """The statement's SQL text and its row binder, made once per shape (`conflict` None: a plain INSERT)."""
    key = (table.name, names, conflict, columns)
    if key not in _SQLITE_STATEMENTS:
        statement = sqlite.insert(table)
        if conflict is not None:
            set_ = {name: statement.excluded[name] for name in columns}
            statement = (statement.on_conflict_do_update(index_elements=list(conflict), set_=set_) if set_
                         else statement.on_conflict_do_nothing(index_elements=list(conflict)))
        compiled = statement.compile(dialect=connection.dialect, column_keys=list(names))
        order = list(compiled.positiontup or [])
        converters = [(index, convert) for index, name in enumerate(order)
                      if (convert := _sqlite_value(table.c[name].type)) is not None]
        _SQLITE_STATEMENTS[key] = (str(compiled), _binder(order, converters))
    return _SQLITE_STATEMENTS[key]


def _sqlite_executemany(connection: Connection, table: Table, names: tuple[str, ...],
                        conflict: tuple[str, ...] | None, columns: tuple[str, ...],
                        rows: Sequence[dict[str, Any]]) -> None:
    """SQLite fast path: the statement compiled once, rows bound as tuples on the same DBAPI connection
    (same transaction)."""
    sql, bind = _sqlite_statement(connection, table, names, conflict, columns)
    _sqlite_run(connection, sql, bind, rows)


def _sqlite_run(connection: Connection, sql: str, bind: Binder, rows: Sequence[dict[str, Any]]) -> None:
    params = bind(rows)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.executemany(sql, params)
    finally:
        cursor.close()


def pipelined(connection: Connection) -> AbstractContextManager[None]:
    """Batch writes sent back to back without waiting for each other (PostgreSQL's pipeline mode,
    `pg_bulk.pipeline`); elsewhere nothing changes. Put the statement whose answer is needed last."""
    if connection.dialect.name == "postgresql" and pg_bulk.METHOD != "executemany":
        return pg_bulk.pipeline(connection)
    return nullcontext()


def delete_where_in(connection: Connection, model: type[SQLModel] | Table, column: str, values: Sequence[str]) -> None:
    """`DELETE … WHERE column IN values` for a text column: on PostgreSQL one `= ANY(array)` statement per
    chunk (a page's 1,000 keys as one binary parameter, not a compiled statement of 500 bound values, twice),
    on SQLite one prepared `= ?` statement run for each value."""
    table = table_of(model)
    if connection.dialect.name == "postgresql" and pg_bulk.METHOD != "executemany":
        quote = connection.dialect.identifier_preparer.quote
        sql = f"DELETE FROM {quote(table.name)} WHERE {quote(column)} = ANY(%b::text[])"
        for chunk in chunks(list(values), CHUNK):
            pg_bulk.execute_arrays(connection, sql, [list(chunk)])
        return
    if connection.dialect.name == "sqlite":  # on the DBAPI cursor, nothing to compile (a SQLAlchemy IN of 500
        if values:                          # values cost ~4 µs per email event)
            cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
            try:
                cursor.executemany(f'DELETE FROM "{table.name}" WHERE "{column}" = ?', [(value,) for value in values])
            finally:
                cursor.close()
        return
    for chunk in chunks(list(values), ID_CHUNK):
        connection.execute(delete(table).where(table.c[column].in_(chunk)))


def fetch_by_ids(connection: Connection, model: type[SQLModel] | Table, ids: Sequence[str],
                 columns: Sequence[str]) -> dict[str, tuple[Any, ...]]:
    """`{id: (columns…)}` for the ids that exist, in a few IN (…) queries (on PostgreSQL, for plain text and
    boolean columns, one `= ANY(array)` query per chunk: no statement of a thousand parameters to build)."""
    table = table_of(model)
    key = next(iter(table.primary_key.columns))
    wanted = [table.c[name] for name in columns]
    found: dict[str, tuple[Any, ...]] = {}
    plain = all(type(column.type) in (AutoString, String, Boolean) for column in wanted)
    if plain and connection.dialect.name == "postgresql" and pg_bulk.METHOD != "executemany":
        quote = connection.dialect.identifier_preparer.quote
        sql = (f"SELECT {', '.join(quote(column.name) for column in (key, *wanted))} FROM {quote(table.name)} "
               f"WHERE {quote(key.name)} = ANY(%b::text[])")
        for chunk in chunks(list(ids), CHUNK):
            found.update((row[0], tuple(row[1:]))
                         for row in pg_bulk.execute_arrays(connection, sql, [list(chunk)], fetch=True))
        return found
    if plain and connection.dialect.name == "sqlite":
        flags = [index for index, column in enumerate(wanted) if type(column.type) is Boolean]
        return _sqlite_fetch(connection, table.name, key.name, [column.name for column in wanted], ids, flags)
    for chunk in chunks(list(ids), ID_CHUNK):
        for row in connection.execute(select(key, *wanted).where(key.in_(chunk))):
            found[row[0]] = tuple(row[1:])
    return found


def _sqlite_fetch(connection: Connection, table: str, key: str, columns: list[str], ids: Sequence[str],
                  flags: list[int]) -> dict[str, tuple[Any, ...]]:
    """`fetch_by_ids` for text and boolean columns on SQLite: plain SQL on the DBAPI cursor (building and
    compiling a SQLAlchemy IN of 500 parameters cost more than the query: ~10% of an email events page).
    `flags`: the positions of boolean columns, read back as bool (SQLite stores 0/1) as SQLAlchemy would."""
    found: dict[str, tuple[Any, ...]] = {}
    names = ", ".join(f'"{name}"' for name in (key, *columns))
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for chunk in chunks(list(ids), ID_CHUNK):
            cursor.execute(f'SELECT {names} FROM "{table}" WHERE "{key}" IN ({", ".join("?" * len(chunk))})',
                           list(chunk))
            for row in cursor.fetchall():
                values = list(row[1:])
                for index in flags:
                    if values[index] is not None:
                        values[index] = bool(values[index])
                found[row[0]] = tuple(values)
    finally:
        cursor.close()
    return found


def insert_rows(connection: Connection, model: type[SQLModel] | Table, rows: Sequence[dict[str, Any]]) -> int:
    """A plain batch INSERT of rows that all have the same keys."""
    if not rows:
        return 0
    table = table_of(model)
    if connection.dialect.name == "sqlite":
        _sqlite_executemany(connection, table, tuple(rows[0]), None, (), rows)
    elif connection.dialect.name == "postgresql" and pg_bulk.METHOD != "executemany":
        for chunk in chunks(rows, CHUNK):
            pg_bulk.upsert(connection, table, chunk, None, ())
    else:
        for chunk in chunks(rows, CHUNK):
            connection.execute(table.insert(), list(chunk))
    return len(rows)


def update_rows(connection: Connection, model: type[SQLModel] | Table, key: str,
                rows: Sequence[dict[str, Any]]) -> int:
    """Batch `UPDATE … SET <the other keys> WHERE <key> = …` for rows that all have the same keys."""
    if not rows:
        return 0
    table = table_of(model)
    columns = [name for name in rows[0] if name != key]
    if connection.dialect.name == "sqlite":
        sql = f"UPDATE {table.name} SET {', '.join(f'{name} = ?' for name in columns)} WHERE {key} = ?"
        order = [*columns, key]
        converters = [(index, convert) for index, name in enumerate(order)
                      if (convert := _sqlite_value(table.c[name].type)) is not None]
        _sqlite_run(connection, sql, _binder(order, converters), rows)
        return len(rows)
    if connection.dialect.name == "postgresql" and pg_bulk.METHOD != "executemany" and columns:
        for chunk in chunks(rows, CHUNK):
            pg_bulk.update(connection, table, key, chunk)
        return len(rows)
    statement = table.update().where(table.c[key] == bindparam(f"_key_{key}")).values(
        {name: bindparam(f"_v_{name}") for name in columns})
    for chunk in chunks(rows, CHUNK):
        connection.execute(statement, [{f"_key_{key}": row[key], **{f"_v_{name}": row[name] for name in columns}}
                                       for row in chunk])
    return len(rows)
