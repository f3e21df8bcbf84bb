"""Driver-level reads and writes for the journey pass, bound as each dialect stores the values.

A full pass writes hundreds of thousands of history rows and customer columns; binding them as dicts through
SQLAlchemy's per-value type processing took the one writing process about as long as the workers took to compute
them (the same reason facts.py reads with plain SQL). Rows here are plain tuples, made ready by whoever computes
them (in a pool, the worker processes), so the writing process only executes statements. Timestamps are stored
as `canonical.types.UTCDateTime` stores them: UTC ISO-8601 text ending in `Z` on SQLite, aware datetimes
(timestamptz) on PostgreSQL.

On PostgreSQL every row of an executemany is still a statement the server parses, plans and runs, however well
the driver pipelines them; the bulk writes here send a block's rows set-based: `write_insert` with one `COPY` into
the table, `write_update` and `write_upsert` as one `UPDATE … FROM unnest(…)` or `INSERT … SELECT * FROM
unnest(…) ON CONFLICT` whose columns travel as binary arrays (`canonical.pg_bulk`). They used a temporary staging
table per call (CREATE, COPY, ANALYZE, then the statement): four round trips, and catalog rows created and
dropped each time, which without autovacuum pile up in pg_class and pg_attribute; `unnest` of a bound array is
planned with its real length, without any ANALYZE. On SQLite, in-process, executemany is
the fastest path and is kept. The tagger's small update blocks are joined to `customer` through its key's index
(`index_joins`): the planner's own choice at 50,000–100,000 customers was a hash of the whole table per block.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from itertools import count
from typing import Any

from sqlalchemy.engine import Connection

from canonical import models, pg_bulk
from canonical.upsert import chunks, sqlite_timestamp

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


def in_ids(connection: Connection, count: int) -> str:
    """What follows `column` to test membership in `count` bound ids: `= ANY(%s)` with one array on PostgreSQL
    (`ids_parameters`), whose driver otherwise splits and binds a statement of thousands of placeholders per
    batch, `IN (?, ?, …)` on SQLite."""
    return "= ANY(%s::text[])" if connection.dialect.name == "postgresql" else f"IN ({marks(connection, count)})"


def ids_parameters(connection: Connection, ids: Sequence[str]) -> tuple[Any, ...]:
    """The parameters `in_ids` takes: one list on PostgreSQL, the ids themselves on SQLite."""
    return (list(ids),) if connection.dialect.name == "postgresql" else tuple(ids)


def insert_sql(connection: Connection, table: str, columns: Sequence[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks(connection, len(columns))})"


def update_sql(connection: Connection, table: str, columns: Sequence[str], key: str = "id") -> str:
    """`UPDATE … SET <columns> WHERE <key>`: rows bind the columns, then the key."""
    placeholder = mark(connection)
    assignments = ", ".join(f"{name} = {placeholder}" for name in columns)
    return f"UPDATE {table} SET {assignments} WHERE {key} = {placeholder}"


def upsert_sql(connection: Connection, table: str, columns: Sequence[str], key: str, update: Sequence[str]) -> str:
    """`INSERT … ON CONFLICT (<key>) DO UPDATE SET <update>` (the same text on SQLite and PostgreSQL)."""
    return f"{insert_sql(connection, table, columns)} {on_conflict(key, update)}"


def on_conflict(key: str, update: Sequence[str]) -> str:
    """`ON CONFLICT (<key>) DO UPDATE SET <update>`, or `DO NOTHING` when there is nothing to update."""
    if not update:
        return f"ON CONFLICT ({key}) DO NOTHING"
    return f"ON CONFLICT ({key}) DO UPDATE SET {', '.join(f'{name} = excluded.{name}' for name in update)}"


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


_STAGING = count()


def _copy(connection: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """The rows into `table` with one `COPY … FROM STDIN` (psycopg adapts each value as it binds it)."""
    cursor = connection.connection.cursor()
    try:
        with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    finally:
        cursor.close()


UNNEST_CHUNK = 10_000  # rows per set-based statement: a block's rows at once, bounded packets


def _unnest(connection: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
            sql: Callable[[str], str]) -> None:
    """`sql(unnest(%b::type[], …))` for each chunk of the rows, their columns as binary arrays typed as the
    table declares them."""
    parameters, converters = pg_bulk.array_types(connection, models.SQLModel.metadata.tables[table], columns)
    statement = sql(f"unnest({', '.join(parameters)})")
    for chunk in chunks(rows, UNNEST_CHUNK):
        pg_bulk.execute_arrays(connection, statement, pg_bulk.column_arrays(chunk, converters))


def write_insert(connection: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
    """`INSERT` of rows bound in the columns' order."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        _copy(connection, table, columns, rows)
    else:
        execute_many(connection, insert_sql(connection, table, columns), rows)


def write_update(connection: Connection, table: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                 key: str = "id") -> None:
    """`UPDATE … SET <columns> WHERE <key>` for rows that bind the columns, then the key (as `update_sql`)."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        execute_many(connection, update_sql(connection, table, columns, key), rows)
        return
    aliases = ", ".join(f"c{index}" for index in range(len(columns) + 1))
    assignments = ", ".join(f"{name} = u.c{index}" for index, name in enumerate(columns))
    _unnest(connection, table, (*columns, key), rows, lambda arrays: (
        f"UPDATE {table} t SET {assignments} FROM {arrays} AS u({aliases}) WHERE t.{key} = u.c{len(columns)}"))


#: the join methods `index_joins` turns off for its statements
_SET_JOINS = "SET LOCAL enable_hashjoin = {0}; SET LOCAL enable_mergejoin = {0}"


@contextmanager
def index_joins(connection: Connection) -> Iterator[None]:
    """PostgreSQL statements inside joining a block's rows to a table by its key through the key's index.
    The planner otherwise hashed the whole table for every block at 50,000–100,000 customers (a `UPDATE … FROM
    unnest(…)` of 2,000 rows costed a nested loop of 2,000 index probes above a sequential scan of 50,000
    customers; measured 42 ms by hash against 17 ms by index per block; the tagger's stage writes at 100,000
    customers 13.4/10.1 s → 7.1/5.0 s). At 200,000 the planner already probes the index, so it changes nothing
    there. For small blocks of a large table only (the tagger's): identity's 5,000-record blocks of
    `person_record` were slower by index at 200,000 customers (random pages instead of one sequential scan).
    Transaction-local settings (`SET LOCAL`), put back to the defaults after the statements; a no-op on SQLite."""
    if connection.dialect.name != "postgresql":
        yield
        return
    connection.exec_driver_sql(_SET_JOINS.format("off"))
    yield  # on an error the transaction is rolled back, and its local settings with it
    connection.exec_driver_sql(_SET_JOINS.format("DEFAULT"))


#: the page cost `index_probes` plans with: PostgreSQL's documented setting for storage where a random read costs
#: about what a sequential one does (SSDs, or a working set in memory), against the default 4.0 made for disks
INDEX_PROBE_PAGE_COST = 1.1


def index_probes(connection: Connection) -> None:
    """The rest of this transaction plans a block's lookups and keyed updates as index probes. With the default
    `random_page_cost` the planner read each tagger batch's facts (2,000 customers' records, deals, tickets,
    interactions, history) by hashing whole tables after a sequential scan, and joined each identity block's
    5,000 record updates to a scan of all of `person_record` (200,000 customers, 1M interactions, each plan
    timed in turn on one database: ~435 → ~270 ms per batch's five queries, 270–600 → 135–145 ms per block
    update). Set with `SET LOCAL`: gone with the transaction, other sessions untouched; a no-op on SQLite."""
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql(f"SET LOCAL random_page_cost = {INDEX_PROBE_PAGE_COST}")


def write_upsert(connection: Connection, table: str, columns: Sequence[str], key: str, update: Sequence[str],
                 rows: Sequence[tuple[Any, ...]]) -> None:
    """`INSERT … ON CONFLICT (<key>) DO UPDATE SET <update>` (as `upsert_sql`); keys must be unique in `rows`."""
    if not rows:
        return
    if connection.dialect.name != "postgresql":
        execute_many(connection, upsert_sql(connection, table, columns, key, update), rows)
        return
    names = ", ".join(columns)
    _unnest(connection, table, columns, rows, lambda arrays: (
        f"INSERT INTO {table} ({names}) SELECT * FROM {arrays} {on_conflict(key, update)}"))


def stream_rows(connection: Connection, sql: str, parameters: Sequence[Any] = (),
                size: int = 10_000) -> Iterator[list[tuple[Any, ...]]]:
    """The query's rows in lists of up to `size`, never all at once: a server-side (named) cursor on
    PostgreSQL, whose client cursor would hold the whole result; SQLite's cursor steps through it anyway."""
    raw = connection.connection.dbapi_connection
    postgres = connection.dialect.name == "postgresql"
    cursor = raw.cursor(name=f"jh_stream_{next(_STAGING)}") if postgres else raw.cursor()  # type: ignore[union-attr]
    try:
        if postgres:
            cursor.itersize = size
        cursor.execute(sql, tuple(parameters))
        while rows := cursor.fetchmany(size):
            yield rows
    finally:
        cursor.close()


def analyze(connection: Connection, *tables: str) -> None:
    """Fresh planner statistics on PostgreSQL after a bulk write: until autovacuum gets to a table just filled,
    the planner still sees it (nearly) empty and joins it by nested loops over full scans — a first pass's
    stage counts took 38 s of a 74 s run at 20,000 customers that way. Samples a few thousand rows; a no-op
    on SQLite, whose plans come from its indexes."""
    if connection.dialect.name == "postgresql" and tables:
        connection.exec_driver_sql(f"ANALYZE {', '.join(tables)}")
