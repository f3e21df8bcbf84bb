"""`customer_link`: which customers each deal, ticket and interaction belongs to.

Derived from associations (to a person record by source key, or to `email:<address>` for events that only
know an address) and, for an activity logged on a deal or ticket, that deal's or ticket's people. Kept
incrementally: only entities that changed since the last pass, or whose people moved to another customer,
are recomputed; the first pass (or a large change) rebuilds the table.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import Engine, text
from sqlalchemy.engine import Connection

from canonical.upsert import chunks
from journeyhub.journey import clustering
from journeyhub.journey.dbio import analyze

# The last two parts (activities logged on a deal or ticket) say `CROSS JOIN`, SQLite's way to keep `interaction`
# the outer loop: it walks the partial index of interactions that have a deal (ticket) instead of scanning every
# association and probing that index once each. PostgreSQL plans it as the inner join it is.
DERIVE = """
SELECT a.from_id AS entity_id, p.customer_id AS customer_id
  FROM association a JOIN person_record p ON p.id = a.to_id
 WHERE a.is_deleted = {false} AND p.customer_id IS NOT NULL {only_a}
UNION ALL
SELECT a.from_id, p.customer_id
  FROM association a JOIN person_record p ON p.email_key = a.to_id
 WHERE a.to_id >= 'email:' AND a.to_id < 'email;' AND a.is_deleted = {false} AND p.customer_id IS NOT NULL {only_a}
UNION ALL
SELECT i.id, p.customer_id
  FROM interaction i CROSS JOIN association a JOIN person_record p ON p.id = a.to_id
 WHERE i.deal_id IS NOT NULL AND a.from_id = i.deal_id AND a.is_deleted = {false} AND p.customer_id IS NOT NULL {only_i}
UNION ALL
SELECT i.id, p.customer_id
  FROM interaction i CROSS JOIN association a JOIN person_record p ON p.id = a.to_id
 WHERE i.ticket_id IS NOT NULL AND a.from_id = i.ticket_id AND a.is_deleted = {false} AND p.customer_id IS NOT NULL
   {only_i}
"""

REBUILD_SHARE = 0.3  # above this share of entities affected, rebuilding is cheaper than patching
REBUILD_CACHE_KIB = 65_536  # SQLite page cache while rebuilding (64 MB: it counts in the pass's resident size)


def _derive(dialect: str, restricted: bool) -> str:
    false = "false" if dialect == "postgresql" else "0"
    only_a = "AND a.from_id IN (SELECT id FROM link_scope)" if restricted else ""
    only_i = "AND i.id IN (SELECT id FROM link_scope)" if restricted else ""
    return DERIVE.format(false=false, only_a=only_a, only_i=only_i)


def _insert_links(connection: Connection, restricted: bool) -> None:
    """The derived pairs, duplicates dropped by the table's primary key (cheaper than a UNION's sort)."""
    derive = _derive(connection.dialect.name, restricted)
    if connection.dialect.name == "sqlite":
        connection.execute(text(f"INSERT OR IGNORE INTO customer_link (entity_id, customer_id) {derive}"))
    else:
        connection.execute(text(f"INSERT INTO customer_link (entity_id, customer_id) {derive} "
                                "ON CONFLICT DO NOTHING"))


def rebuild(connection: Connection) -> None:
    """Every link again. On SQLite the secondary index is rebuilt after the bulk insert (a sorted build
    beats a million random index inserts) with a larger page cache for the duration; PostgreSQL keeps its
    index (dropping it would lock readers of the views out until the transaction ends)."""
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        cache_size = int(connection.exec_driver_sql("PRAGMA cache_size").scalar_one())
        connection.exec_driver_sql(f"PRAGMA cache_size = -{REBUILD_CACHE_KIB}")
        connection.exec_driver_sql("DROP INDEX IF EXISTS ix_customer_link_customer")
    connection.execute(text("DELETE FROM customer_link"))
    _insert_links(connection, restricted=False)
    analyze(connection, "customer_link")
    if sqlite:
        connection.exec_driver_sql("CREATE INDEX ix_customer_link_customer ON customer_link (customer_id)")
        connection.exec_driver_sql(f"PRAGMA cache_size = {cache_size}")  # the connection's own size again


def _scope_table(connection: Connection) -> None:
    connection.execute(text("DROP TABLE IF EXISTS link_scope"))
    connection.execute(text("CREATE TEMPORARY TABLE link_scope (id VARCHAR(320) PRIMARY KEY)"))


def _add_to_scope(connection: Connection, select_sql: str, params: dict[str, object] | None = None) -> None:
    connection.execute(text(f"INSERT INTO link_scope (id) SELECT DISTINCT x.id FROM ({select_sql}) x "
                            "WHERE x.id NOT IN (SELECT id FROM link_scope)"), params or {})


def _add_ids(connection: Connection, ids: Iterable[str]) -> None:
    for chunk in chunks(sorted(set(ids)), 500):
        placeholders = ", ".join(f":p{index}" for index in range(len(chunk)))
        params = {f"p{index}": value for index, value in enumerate(chunk)}
        _add_to_scope(connection, f"SELECT from_id AS id FROM association WHERE to_id IN ({placeholders})", params)


def refresh(engine: Engine, since: datetime | None, moved_people: set[str], moved_email_keys: set[str], *,
            collect: bool = True) -> set[str]:
    """Recompute links of entities changed since `since` or attached to people who changed customer;
    returns the customers whose links changed (before or after). `since=None` rebuilds everything; then
    `collect=False` (a full pass, which re-evaluates everyone anyway) returns nothing instead of every customer."""
    with _writing(engine) as connection:  # reads (the scope) then writes: take the write lock first
        if since is None:
            rebuild(connection)
            if not collect:
                return set()
            return {row[0] for row in connection.execute(text("SELECT DISTINCT customer_id FROM customer_link"))}
        _scope_table(connection)
        _add_to_scope(connection, "SELECT id FROM source_record WHERE entity IN ('deal', 'ticket', 'interaction') "
                                  "AND last_seen_at > :since", {"since": _bind_time(connection, since)})
        _add_to_scope(connection, "SELECT from_id AS id FROM association WHERE updated_at > :since",
                      {"since": _bind_time(connection, since)})
        # a person whose record changed may have a new email (events to it now belong to them) or have
        # lost one (events to the old address no longer do): recompute their customers' links. Driven from
        # the few changed records (`CROSS JOIN` fixes SQLite's join order), not by scanning every link.
        changed_people = ("SELECT p.id, p.email_key, p.customer_id FROM source_record s CROSS JOIN person_record p "
                          "WHERE s.entity = 'person' AND s.last_seen_at > :since AND p.id = s.id")
        _add_to_scope(connection, f"SELECT a.from_id AS id FROM ({changed_people}) c CROSS JOIN association a "
                                  "WHERE a.to_id = c.email_key", {"since": _bind_time(connection, since)})
        _add_to_scope(connection, f"SELECT l.entity_id AS id FROM ({changed_people}) c CROSS JOIN customer_link l "
                                  "WHERE l.customer_id = c.customer_id", {"since": _bind_time(connection, since)})
        _add_ids(connection, moved_people | moved_email_keys)
        _add_to_scope(connection, "SELECT i.id FROM interaction i WHERE i.deal_id IN (SELECT id FROM link_scope) "
                                  "OR i.ticket_id IN (SELECT id FROM link_scope)")
        scoped = connection.execute(text("SELECT COUNT(*) FROM link_scope")).scalar_one()
        total = connection.execute(text("SELECT COUNT(*) FROM source_record WHERE entity IN "
                                        "('deal', 'ticket', 'interaction')")).scalar_one()
        if total and scoped > REBUILD_SHARE * total:
            before = {row[0] for row in connection.execute(text("SELECT DISTINCT customer_id FROM customer_link"))}
            rebuild(connection)
            after = {row[0] for row in connection.execute(text("SELECT DISTINCT customer_id FROM customer_link"))}
            return before | after
        touched = {row[0] for row in connection.execute(text(
            "SELECT DISTINCT customer_id FROM customer_link WHERE entity_id IN (SELECT id FROM link_scope)"))}
        connection.execute(text("DELETE FROM customer_link WHERE entity_id IN (SELECT id FROM link_scope)"))
        _insert_links(connection, restricted=True)
        touched |= {row[0] for row in connection.execute(text(
            "SELECT DISTINCT customer_id FROM customer_link WHERE entity_id IN (SELECT id FROM link_scope)"))}
        connection.execute(text("DROP TABLE link_scope"))
        return touched


@contextmanager
def _writing(engine: Engine) -> Iterator[Connection]:
    """`canonical.db.transaction`, on SQLite with temporary files on disk while it lasts: a rebuild's index
    build and the scope's sorts spill to them, and under the connection's `temp_store = MEMORY` they would be
    RAM growing with the number of links (~120 MB of a 100,000-customer pass's resident size). Set outside the
    transaction, as SQLite requires."""
    with engine.connect() as connection:
        clustering.temp_on_disk(connection, True)
        try:
            with connection.execution_options(journeyhub_immediate=True).begin():
                yield connection
        finally:
            clustering.temp_on_disk(connection, False)


def _bind_time(connection: Connection, value: datetime) -> object:
    """Raw SQL compares timestamps as stored: ISO text on SQLite, timestamptz on PostgreSQL."""
    if connection.dialect.name == "sqlite":
        from datetime import UTC

        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value
