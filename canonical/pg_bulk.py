"""PostgreSQL batch writes as one set-based statement: every column of a chunk of rows is sent as one array
and `INSERT INTO t (…) SELECT * FROM unnest(%b::text[], %b::timestamptz[], …) ON CONFLICT …` writes them. The
arrays go in binary format: in text format psycopg escapes each element with a regular expression, which
took a third of the loader's time.

Why this and not the alternatives (measured with `bench/upsert_rate.py`, page loader, pages of 1,000):
- psycopg `executemany` (what SQLAlchemy does, pipelined) still runs one INSERT per row on the server, each
  with its own conflict check and executor start-up; the loader waited on the server for ~70% of its time.
- `COPY` into a temporary staging table, then one `INSERT … SELECT … ON CONFLICT`, is as set-based, but
  costs a CREATE/DROP of the staging table per statement (catalog churn, pages of 1,000 are small) and two
  round trips; `unnest` is one round trip with the same single server-side statement.
Varchar columns travel as `text[]`: an explicit cast to `varchar(n)` would silently cut an over-long value,
whereas the assignment to the column refuses it (the page loader then quarantines that record). Rows with the
same conflict key are reduced to the last one, as the row-by-row statements left them (one statement may not
update a row twice).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from operator import itemgetter
from typing import Any

from sqlalchemy import JSON, Float, String, Table
from sqlalchemy.engine import Connection
from sqlalchemy.types import TypeDecorator

from canonical.types import UTCDateTime, json_text

#: how batches are written: "unnest" (chosen, above); "copy" (staging table) and "executemany" (SQLAlchemy's
#: pipelined row statements) are kept so `bench/upsert_rate.py --pg-methods` can measure the choice again
METHOD = "unnest"
Convert = Callable[[Any], Any]
_STATEMENTS: dict[tuple[Any, ...], tuple[str, list[Convert | None]]] = {}


def _aware(value: Any) -> Any:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: canonical timestamps must be timezone-aware UTC")
    return value


def _float(value: Any) -> Any:
    return None if value is None else float(value)


def _json(value: Any) -> Any:
    return None if value is None else json_text(value)


def _array_type(table: Table, name: str, connection: Connection) -> tuple[str, Convert | None]:
    """The array type a column's values travel as, and how a value is made ready for it."""
    type_ = table.c[name].type
    if isinstance(type_, UTCDateTime):
        return "timestamptz[]", _aware
    if isinstance(type_, JSON):
        return "jsonb[]", _json
    if isinstance(type_, TypeDecorator):  # e.g. SQLModel's AutoString over String
        type_ = type_.impl_instance
    if isinstance(type_, String):
        return "text[]", None
    if isinstance(type_, Float):  # one element type per array: ints among floats become floats
        return "float8[]", _float
    return f"{type_.compile(dialect=connection.dialect)}[]", None


def array_types(connection: Connection, table: Table, names: Sequence[str]) -> tuple[list[str], list[Convert | None]]:
    """Per column, the `%b::type[]` parameter its values travel as and how a value is made ready for it (for
    callers that build their own set-based statement over `unnest`)."""
    types = [_array_type(table, name, connection) for name in names]
    return [f"%b::{array}" for array, _ in types], [convert for _, convert in types]


def column_arrays(rows: Sequence[Sequence[Any]], converters: Sequence[Convert | None]) -> list[list[Any]]:
    """Rows bound as tuples (in the converters' column order) as one list per column, converted."""
    columns = [list(values) for values in zip(*rows, strict=True)]
    return [values if convert is None else [convert(value) for value in values]
            for values, convert in zip(columns, converters, strict=True)]


def _statement(connection: Connection, table: Table, names: tuple[str, ...], conflict: tuple[str, ...] | None,
               columns: tuple[str, ...], changed: tuple[str, ...] | None = None) -> tuple[str, list[Convert | None]]:
    key = (table.name, names, conflict, columns, changed)
    if key not in _STATEMENTS:
        quote = connection.dialect.identifier_preparer.quote
        types = [_array_type(table, name, connection) for name in names]
        column_list = ", ".join(quote(name) for name in names)
        arrays = ", ".join(f"%b::{array}" for array, _ in types)  # binary: no per-element escaping
        sql = f"INSERT INTO {quote(table.name)} ({column_list}) SELECT * FROM unnest({arrays})"
        if conflict is not None:
            target = ", ".join(quote(name) for name in conflict)
            if columns:
                assignments = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in columns)
                sql += f" ON CONFLICT ({target}) DO UPDATE SET {assignments}"
                if changed is not None:
                    differs = " OR ".join(f"{quote(table.name)}.{quote(name)} IS DISTINCT FROM excluded.{quote(name)}"
                                          for name in changed)
                    sql += f" WHERE {differs} RETURNING {target}, (xmax = 0)"
            else:
                sql += f" ON CONFLICT ({target}) DO NOTHING"
        _STATEMENTS[key] = (sql, [convert for _, convert in types])
    return _STATEMENTS[key]


def upsert(connection: Connection, table: Table, rows: Sequence[dict[str, Any]], conflict: tuple[str, ...] | None,
           columns: tuple[str, ...], changed: tuple[str, ...] | None = None) -> list[tuple[Any, ...]]:
    """One statement for `rows` (same keys): a plain INSERT when `conflict` is None, else an upsert on it.
    With `changed` (columns), an existing row is updated only where one of them differs, and the statement
    returns `(conflict key…, inserted)` for each row it inserted or updated: what it actually did, whatever
    another transaction wrote meanwhile (`xmax = 0`: the row version was created by an INSERT)."""
    names = tuple(rows[0])
    if conflict is not None:
        key = itemgetter(*conflict)  # a value for one column, a tuple for several
        rows = list({key(row): row for row in rows}.values())
    sql, converters = _statement(connection, table, names, conflict, columns, changed)
    if METHOD == "copy":
        return _copy(connection, table, names, rows, sql, converters, changed is not None and bool(columns))
    fetch = changed is not None and conflict is not None and bool(columns)
    return execute_arrays(connection, sql, _arrays(rows, names, converters), fetch=fetch)


def update(connection: Connection, table: Table, key: str, rows: Sequence[dict[str, Any]]) -> None:
    """`UPDATE t SET … FROM unnest(…) WHERE t.key = u.key`: one statement for rows that all have the same keys
    (a key given twice: its last row)."""
    rows = list({row[key]: row for row in rows}.values())
    names = (key, *[name for name in rows[0] if name != key])
    cache_key = ("update", table.name, names)
    if cache_key not in _STATEMENTS:
        quote = connection.dialect.identifier_preparer.quote
        types = [_array_type(table, name, connection) for name in names]
        aliases = ", ".join(f"c{index}" for index in range(len(names)))
        assignments = ", ".join(f"{quote(name)} = u.c{index}" for index, name in enumerate(names) if index)
        arrays = ", ".join(f"%b::{array}" for array, _ in types)
        sql = (f"UPDATE {quote(table.name)} SET {assignments} FROM unnest({arrays}) AS u({aliases}) "
               f"WHERE {quote(table.name)}.{quote(key)} = u.c0")
        _STATEMENTS[cache_key] = (sql, [convert for _, convert in types])
    sql, converters = _STATEMENTS[cache_key]
    execute_arrays(connection, sql, _arrays(rows, names, converters))


def _arrays(rows: Sequence[dict[str, Any]], names: Sequence[str], converters: Sequence[Any]) -> list[list[Any]]:
    """One array per column, each value converted to what its array type takes."""
    arrays = []
    for name, convert in zip(names, converters, strict=True):
        values = [row[name] for row in rows]
        arrays.append(values if convert is None else [convert(value) for value in values])
    return arrays


@contextmanager
def pipeline(connection: Connection) -> Iterator[None]:
    """psycopg's pipeline mode for the statements sent inside (`execute_arrays`): each goes out without waiting
    for the one before, so the server runs one while the next one's arrays are dumped here; a statement whose
    rows are fetched waits for those before it, and the first error is raised as usual (the rest are skipped,
    the transaction is aborted). A libpq older than 14 has no pipeline mode: the statements then go one after
    another, as before (psycopg's binary package ships a newer one; a system libpq may not)."""
    import psycopg

    if not psycopg.Pipeline.is_supported():
        yield
        return
    driver = connection.connection.driver_connection
    with driver.pipeline():  # type: ignore[union-attr]
        yield


def execute_arrays(connection: Connection, sql: str, arrays: list[list[Any]], *, fetch: bool = False) -> list[Any]:
    """One statement on the raw psycopg cursor, its parameters binary arrays (one per column, or the one array
    of an `= ANY(%b::text[])`); its rows when `fetch`."""
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(sql, arrays)
        return cursor.fetchall() if fetch else []
    finally:
        cursor.close()


def _copy(connection: Connection, table: Table, names: tuple[str, ...], rows: Sequence[dict[str, Any]], sql: str,
          converters: list[Convert | None], returning: bool) -> list[tuple[Any, ...]]:
    """The alternative measured: COPY into a session staging table, then the same statement reading it."""
    quote = connection.dialect.identifier_preparer.quote
    stage = quote(f"_stage_{table.name}")
    column_list = ", ".join(quote(name) for name in names)
    cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(f"CREATE TEMP TABLE IF NOT EXISTS {stage} (LIKE {quote(table.name)}) ON COMMIT DELETE ROWS")
        with cursor.copy(f"COPY {stage} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row([value if convert is None else convert(value)
                                for value, convert in zip((row[name] for name in names), converters, strict=True)])
        select = sql.split(" SELECT * FROM unnest(")[0] + f" SELECT {column_list} FROM {stage}"
        tail = sql.split(") ON CONFLICT", 1)
        cursor.execute(select + (" ON CONFLICT" + tail[1] if len(tail) > 1 else ""))
        result = cursor.fetchall() if returning else []
        cursor.execute(f"TRUNCATE {stage}")
        return result
    finally:
        cursor.close()
