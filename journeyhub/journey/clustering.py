"""Identity clustering over compact integer ids, so a pass holds a few bytes per person record, not objects.

Every person record gets its position in id order (`rn`, in a temporary table `jh_ident`); the links the
rules make come from SQL as pairs of positions (keys grouped by the database, streamed), and the union-find
runs over `array`s. What the resolver needs of each record afterwards — its cluster, the block it is resolved
in, the first rule that linked it — is again a handful of integers per record. Positions follow Python's
string order (code points: SQLite's BINARY, PostgreSQL's "C" collation), so the smallest member of a cluster
is its root, as in `identity.cluster`.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Connection

from journeyhub.journey.dbio import stream_rows, write_insert
from journeyhub.journey.identity_config import IdentityConfig

NO_RULE = -1


def collate(connection: Connection) -> str:
    """Order text by code point on either database (what Python's `sorted` does)."""
    return ' COLLATE "C"' if connection.dialect.name == "postgresql" else ""


def find(parent: array, item: int) -> int:  # type: ignore[type-arg]
    root = item
    while parent[root] != root:
        root = parent[root]
    while parent[item] != root:
        parent[item], item = root, parent[item]
    return root


def union(parent: array, a: int, b: int) -> None:  # type: ignore[type-arg]
    """The smaller position (the smaller id) becomes the root, as in `identity.UnionFind`."""
    root_a, root_b = find(parent, a), find(parent, b)
    if root_a != root_b:
        parent[max(root_a, root_b)] = min(root_a, root_b)


@dataclass
class Clusters:
    """Per record position: its cluster's root position, the block root (clusters that share a customer id
    today are resolved together, so a split or merge sees all claimants) and the first link that matched it."""

    size: int
    root: array          # type: ignore[type-arg]
    rule: array          # type: ignore[type-arg]  # index into config.rules, or NO_RULE
    edge_a: array        # type: ignore[type-arg]
    edge_b: array        # type: ignore[type-arg]


def index_people(connection: Connection) -> int:
    """`jh_ident(rn, id)`: every person record's position in id order; returns how many."""
    connection.exec_driver_sql("DROP TABLE IF EXISTS jh_ident")
    connection.exec_driver_sql("DROP TABLE IF EXISTS jh_root")
    connection.exec_driver_sql("CREATE TEMPORARY TABLE jh_ident (rn INTEGER PRIMARY KEY, id VARCHAR(320) NOT NULL)")
    connection.exec_driver_sql("INSERT INTO jh_ident (rn, id) SELECT ROW_NUMBER() OVER (ORDER BY id"
                               f"{collate(connection)}) - 1, id FROM person_record")
    connection.exec_driver_sql("CREATE UNIQUE INDEX jh_ident_id ON jh_ident (id)")
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ANALYZE jh_ident")
    return int(connection.exec_driver_sql("SELECT COUNT(*) FROM jh_ident").scalar_one())


def temp_on_disk(connection: Connection, on: bool) -> None:
    """On SQLite, temporary tables in a file while the pass runs (the connection's `temp_store` is memory:
    they would sit in RAM, a few dozen bytes per record); outside a transaction, as SQLite requires."""
    if connection.dialect.name == "sqlite":
        connection.connection.dbapi_connection.execute(  # type: ignore[union-attr]
            f"PRAGMA temp_store = {'FILE' if on else 'MEMORY'}")


def _pairs(connection: Connection, rule_type: str) -> Iterator[tuple[int, int]]:
    """(record, target) positions of a link rule, by record then target (as `identity.match_edges`)."""
    if rule_type == "source_merge":
        sql = ("SELECT a.rn, b.rn FROM source_record s JOIN jh_ident a ON a.id = s.id "
               "JOIN jh_ident b ON b.id = s.merged_into")
    elif rule_type == "conversion":
        sql = ("SELECT a.rn, b.rn FROM person_record p JOIN jh_ident a ON a.id = p.id "
               "JOIN jh_ident b ON b.id = p.converted_to")
    elif connection.dialect.name == "postgresql":
        sql = ("SELECT a.rn, b.rn FROM person_record p JOIN jh_ident a ON a.id = p.id CROSS JOIN LATERAL "
               "jsonb_array_elements_text(CASE WHEN jsonb_typeof(p.xrefs) = 'array' THEN p.xrefs ELSE '[]' END) j(v) "
               "JOIN jh_ident b ON b.id = j.v")
    else:
        sql = ("SELECT a.rn, b.rn FROM person_record p JOIN jh_ident a ON a.id = p.id, json_each(p.xrefs) j "
               "JOIN jh_ident b ON b.id = j.value WHERE p.xrefs IS NOT NULL AND j.type = 'text'")
    where = " AND " if " WHERE " in sql else " WHERE "
    for rows in stream_rows(connection, f"{sql}{where}a.rn <> b.rn ORDER BY a.rn, b.rn"):
        yield from rows


def _key_pairs(connection: Connection, column: str, max_share: int | None) -> Iterator[tuple[int, int]]:
    """(first, other) for each key's records, the first being the smallest id (as `identity.match_edges`)."""
    sql = (f"SELECT x.rn, p.{column} FROM person_record p JOIN jh_ident x ON x.id = p.id "
           f"WHERE p.{column} IS NOT NULL AND p.{column} <> '' ORDER BY p.{column}{collate(connection)}, x.rn")
    group: list[int] = []
    current: str | None = None
    for rows in stream_rows(connection, sql):
        for rn, key in rows:
            if key != current:
                yield from _star(group, max_share)
                group, current = [], key
            group.append(rn)
    yield from _star(group, max_share)


def _star(group: list[int], max_share: int | None) -> Iterator[tuple[int, int]]:
    if len(group) < 2 or (max_share and len(group) > max_share):
        return
    first = group[0]
    for other in group[1:]:
        yield first, other


def cluster_people(connection: Connection, config: IdentityConfig, size: int) -> Clusters:
    """Clusters by the enabled rules in rule order; each record keeps the first link that touched it."""
    parent = array("i", range(size))
    rule_of = array("b", [NO_RULE]) * size
    edge_a, edge_b = array("i", [0]) * size, array("i", [0]) * size
    for index, rule in enumerate(config.rules):
        if not rule.enabled:
            continue
        if rule.type in {"source_merge", "conversion", "xref"}:
            pairs = _pairs(connection, rule.type)
        else:
            pairs = _key_pairs(connection, "email_key" if rule.type == "email" else "phone_key",
                               rule.max_cluster_share)
        for a, b in pairs:
            union(parent, a, b)
            for person in (a, b):
                if rule_of[person] == NO_RULE:
                    rule_of[person], edge_a[person], edge_b[person] = index, a, b
    root = array("i", (find(parent, item) for item in range(size)))
    return Clusters(size, root, rule_of, edge_a, edge_b)


def stage_blocks(connection: Connection, clusters: Clusters) -> None:
    """`jh_root(rn, root, grp)`: each record's cluster and block, where a block joins the clusters whose records
    carry the same customer id today (so the id's keeper is chosen among all its claimants)."""
    block = array("i", clusters.root)
    sql = ("SELECT x.rn, p.customer_id FROM person_record p JOIN jh_ident x ON x.id = p.id "
           f"WHERE p.customer_id IS NOT NULL ORDER BY p.customer_id{collate(connection)}, x.rn")
    current, first = None, 0
    for rows in stream_rows(connection, sql):
        for rn, customer_id in rows:
            if customer_id != current:
                current, first = customer_id, clusters.root[rn]
            else:
                union(block, first, clusters.root[rn])
    connection.exec_driver_sql("CREATE TEMPORARY TABLE jh_root (rn INTEGER PRIMARY KEY, root INTEGER NOT NULL, "
                               "grp INTEGER NOT NULL)")
    chunk = 50_000
    for start in range(0, clusters.size, chunk):
        rows = [(rn, clusters.root[rn], find(block, rn)) for rn in range(start, min(start + chunk, clusters.size))]
        write_insert(connection, "jh_root", ("rn", "root", "grp"), rows)
    connection.exec_driver_sql("CREATE INDEX jh_root_order ON jh_root (grp, root, rn)")
    if connection.dialect.name == "postgresql":
        connection.exec_driver_sql("ANALYZE jh_root")
