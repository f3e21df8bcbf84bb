"""Identity resolution: person records (contacts and leads in every CRM) → customers with stable ids.

1. Match keys (normalised email, E.164 phone) are (re)computed for records whose keys are stale.
2. Records are clustered with the rules of `mappings/identity.yaml` — source merges, lead conversions,
   cross-system ids, same email, same phone — transitively (A~B, B~C ⇒ one customer) with a union-find,
   so the result does not depend on the order records are read in.
3. Each cluster gets a customer id. An id, once issued, stays with the records that carry it; when two
   customers' records meet, the older id survives and the other is recorded as merged into it; when a
   customer's records split apart, the larger part keeps the id.
4. The golden record takes each field from the record its survivorship rule prefers; a non-empty value
   always beats an empty one.
Every record keeps the rule (and the key and record) that linked it, so the hub can explain a match.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from itertools import groupby
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Engine, update
from sqlalchemy.engine import Connection

from canonical.models import Customer, PersonRecord
from canonical.types import utcnow
from canonical.upsert import update_rows
from journeyhub.journey.dbio import execute_many, fetch_rows, time_writer, update_sql, upsert_sql
from journeyhub.journey.facts import moment
from journeyhub.journey.identity_config import GOLDEN_FIELDS, FieldSurvivorship, IdentityConfig
from journeyhub.journey.keys import email_key, keys_fingerprint, phone_key

NEVER = datetime.min.replace(tzinfo=None)
# the rows _write makes: a customer (created_at is written once, when the id is issued) and a record's match
CUSTOMER_COLUMNS = ("id", *GOLDEN_FIELDS, "first_seen_at", "created_at", "updated_at", "merged_into_id", "merged_at")
CUSTOMER_UPDATES = (*GOLDEN_FIELDS, "first_seen_at", "updated_at", "merged_into_id", "merged_at")
MATCH_COLUMNS = ("customer_id", "match_rule", "match_evidence")


@dataclass(slots=True)
class Person:
    """What identity resolution needs of one person record."""

    id: str
    system: str
    kind: str
    email: str | None
    phone: str | None
    email_key: str | None
    phone_key: str | None
    keys_version: str | None
    converted_to: str | None
    xrefs: tuple[str, ...]
    merged_into: str | None
    is_deleted: bool
    created: datetime | None
    updated: datetime | None
    customer_id: str | None
    match_rule: str | None
    match_evidence: str | None
    values: dict[str, Any]


Match = tuple[str, str]  # (rule id, evidence): a plain tuple, which the cyclic collector stops tracking


class UnionFind:
    def __init__(self, items: list[str]) -> None:
        self.parent = {item: item for item in items}

    def find(self, item: str) -> str:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> bool:
        root_a, root_b = self.find(a), self.find(b)
        if root_a == root_b:
            return False
        low, high = sorted((root_a, root_b))
        self.parent[high] = low
        return True


@dataclass
class Resolution:
    """The outcome of one resolution pass."""

    clusters: dict[str, tuple[str, ...]]            # customer id → person record ids
    matches: dict[str, Match]                       # person id → the rule that linked it
    merged: dict[str, str] = field(default_factory=dict)          # merged-away customer → survivor
    changed_people: set[str] = field(default_factory=set)         # person ids whose customer changed
    changed_keys: set[str] = field(default_factory=set)           # email keys that appeared or disappeared
    touched_customers: set[str] = field(default_factory=set)      # customers whose records or golden changed
    new_customers: set[str] = field(default_factory=set)          # ids issued by this pass


def customer_id_for(seed: str) -> str:
    return "cus_" + hashlib.sha1(seed.encode()).hexdigest()[:20]


# ------------------------------------------------------------------------------------------- clustering
def match_edges(people: dict[str, Person], config: IdentityConfig) -> list[tuple[str, str, str, str]]:
    """(rule id, record a, record b, evidence) for every link the enabled rules make, in rule order."""
    edges: list[tuple[str, str, str, str]] = []
    for rule in config.rules:
        if not rule.enabled:
            continue
        if rule.type in {"source_merge", "conversion", "xref"}:
            for person in people.values():
                targets = {"source_merge": [person.merged_into], "conversion": [person.converted_to],
                           "xref": person.xrefs}[rule.type]
                for target in sorted(t for t in targets if t and t in people and t != person.id):
                    edges.append((rule.id, person.id, target, f"{rule.type}: {person.id} → {target}"))
            continue
        attribute = "email_key" if rule.type == "email" else "phone_key"
        keyed = sorted((key, person.id) for person in people.values() if (key := getattr(person, attribute)))
        for key, group in groupby(keyed, key=itemgetter(0)):  # each key's records, in id order
            first, *others = (person_id for _, person_id in group)
            if not others or (rule.max_cluster_share and len(others) + 1 > rule.max_cluster_share):
                continue
            edges += [(rule.id, first, other, f"same {rule.type} {key.removeprefix('email:')}") for other in others]
    return edges


def cluster(people: dict[str, Person], config: IdentityConfig) -> tuple[dict[str, tuple[str, ...]], dict[str, Match]]:
    """Transitive clusters (root → sorted members) and, per record, the highest-priority rule linking it."""
    union = UnionFind(sorted(people))
    matches: dict[str, Match] = {}
    for rule_id, a, b, evidence in match_edges(people, config):
        union.union(a, b)
        for person, other in ((a, b), (b, a)):
            if person not in matches:
                matches[person] = (rule_id, f"{evidence} (matched {other})")
    roots = sorted((union.find(person_id), person_id) for person_id in people)
    clusters = {root: tuple(person_id for _, person_id in members) for root, members in groupby(roots, itemgetter(0))}
    return clusters, matches


# ------------------------------------------------------------------------------------------- stable ids
def assign_ids(clusters: dict[str, tuple[str, ...]], people: dict[str, Person],
               issued: dict[str, datetime | None]) -> tuple[dict[str, tuple[str, ...]], dict[str, str]]:
    """Customer id per cluster and the merges implied: ids survive; in a merge the customer first seen
    earliest (`issued` maps existing ids to their first-seen time) keeps its id; on a split the part holding
    most of an id's records keeps it."""
    claims: dict[str, Counter[str]] = {  # only clusters holding records with ids (none on a first pass)
        root: counter for root, members in clusters.items()
        if (counter := Counter(people[m].customer_id for m in members if people[m].customer_id))}

    def age(customer: str) -> tuple[datetime, str]:
        created = issued.get(customer)
        return (created.replace(tzinfo=None) if created else NEVER, customer)

    # Which cluster keeps each existing id: the one holding most of its records (then the smallest member).
    keeper: dict[str, str] = {}
    for root, counter in claims.items():
        for customer, count in counter.items():
            rival = keeper.get(customer)
            if rival is None or (count, _neg(root)) > (claims[rival][customer], _neg(rival)):
                keeper[customer] = root
    kept_by: dict[str, list[str]] = defaultdict(list)
    for customer, holder in keeper.items():
        kept_by[holder].append(customer)
    assigned: dict[str, tuple[str, ...]] = {}
    merged: dict[str, str] = {}
    taken: set[str] = set()
    for root in sorted(clusters):
        kept = sorted(kept_by.get(root, []), key=age)
        if kept:
            chosen = kept[0]
            merged.update({loser: chosen for loser in kept[1:]})
        else:
            chosen = _fresh_id(clusters[root], issued, taken)
        taken.add(chosen)
        assigned[chosen] = clusters[root]
    return assigned, merged


def _neg(root: str) -> tuple[int, ...]:
    return tuple(-ord(character) for character in root)


def _fresh_id(members: tuple[str, ...], issued: dict[str, datetime | None], taken: set[str]) -> str:
    for member in members:
        candidate = customer_id_for(member)
        if candidate not in taken and candidate not in issued:
            return candidate
    salt = 0
    while (candidate := customer_id_for(f"{members[0]}#{salt}")) in taken or candidate in issued:
        salt += 1
    return candidate


# ------------------------------------------------------------------------------------------- golden record
FieldGroups = list[tuple[FieldSurvivorship, list[str]]]


def field_groups(config: IdentityConfig) -> FieldGroups:
    """The golden fields grouped by survivorship rule (most share one): records are ranked once per rule."""
    groups: FieldGroups = []
    for name in GOLDEN_FIELDS:
        rule = config.field_rule(name)
        for known, names in groups:
            if known == rule:
                names.append(name)
                break
        else:
            groups.append((rule, [name]))
    return groups


def golden(members: list[Person], config: IdentityConfig, groups: FieldGroups | None = None) -> dict[str, Any]:
    """Each field from the record its rule prefers among those that have a value (`groups`: field_groups(config),
    when the caller has it)."""
    if len(members) == 1:  # most customers: nothing to choose between
        only = members[0]
        record = dict(only.values)
        if not record["full_name"]:
            record["full_name"] = " ".join(p for p in (record["first_name"], record["last_name"]) if p) or None
        record["first_seen_at"] = only.created
        return record
    chosen: dict[str, Any] = {}
    facts = {person.id: _facts(person) for person in members}  # once per person, not once per rule
    for rule, names in groups if groups is not None else field_groups(config):
        ranked = sorted(members, key=lambda person: _preference(person, facts[person.id], rule))
        for name in names:  # the preferred record with a value (preferences end with the id: a total order)
            chosen[name] = next((p.values[name] for p in ranked if p.values.get(name) not in (None, "")), None)
    record = {name: chosen[name] for name in GOLDEN_FIELDS}
    if not record["full_name"]:
        record["full_name"] = " ".join(part for part in (record["first_name"], record["last_name"]) if part) or None
    created = [person.created for person in members if person.created]
    record["first_seen_at"] = min(created) if created else None
    return record


def _facts(person: Person) -> tuple[float, float]:
    """(recency, age) sort keys: the most recently modified first, or the first created first."""
    updated = person.updated or person.created
    return (-updated.timestamp() if updated else 0.0,
            person.created.timestamp() if person.created else float("inf"))


def _preference(person: Person, facts: tuple[float, float], rule: FieldSurvivorship) -> tuple[Any, ...]:
    recency, created = facts
    if rule.strategy == "most_recent":
        order: tuple[Any, ...] = (recency,)
    elif rule.strategy == "oldest":
        order = (created,)
    else:
        order = (rule.priority.index(person.system) if person.system in rule.priority else 99, recency)
    lead_last = person.kind != "contact" if rule.prefer_contacts else False
    return (person.is_deleted, lead_last, *order, person.id)


# ------------------------------------------------------------------------------------------- the pass
class IdentityResolver:
    def __init__(self, engine: Engine, config: IdentityConfig) -> None:
        self.engine = engine
        self.config = config
        self.fingerprint = keys_fingerprint(config)

    def resolve(self) -> Resolution:
        people = self._load_people()
        changed_keys = self._refresh_keys(people)
        clusters, matches = cluster(people, self.config)
        issued = self._issued()
        assigned, merged = assign_ids(clusters, people, issued)
        resolution = Resolution(assigned, matches, merged, changed_keys=changed_keys,
                                new_customers=set(assigned) - set(issued))
        self._write(resolution, people, issued)
        return resolution

    def _load_people(self) -> dict[str, Person]:
        """Every person record with what matching and survivorship need (driver-level: hundreds of
        thousands of rows, read once per pass)."""
        golden = ", ".join(f"p.{name}" for name in GOLDEN_FIELDS)
        sql = ("SELECT p.id, s.system, p.kind, p.email, p.phone, p.email_key, p.phone_key, p.keys_version, "
               "p.converted_to, p.xrefs, s.merged_into, s.is_deleted, COALESCE(s.remote_created_at, s.first_seen_at), "
               f"s.remote_updated_at, p.customer_id, p.match_rule, p.match_evidence, {golden} "
               "FROM person_record p JOIN source_record s ON s.id = p.id")
        people: dict[str, Person] = {}
        with self.engine.connect() as connection:
            for row in fetch_rows(connection, sql, ()):
                xrefs = row[9]
                if isinstance(xrefs, str):
                    xrefs = orjson.loads(xrefs)
                people[row[0]] = Person(
                    id=row[0], system=row[1], kind=row[2], email=row[3], phone=row[4], email_key=row[5],
                    phone_key=row[6], keys_version=row[7], converted_to=row[8], xrefs=tuple(xrefs or ()),
                    merged_into=row[10], is_deleted=bool(row[11]), created=moment(row[12]), updated=moment(row[13]),
                    customer_id=row[14], match_rule=row[15], match_evidence=row[16],
                    values=dict(zip(GOLDEN_FIELDS, row[17:], strict=True)))
        return people

    def _refresh_keys(self, people: dict[str, Person]) -> set[str]:
        """Recompute stale match keys; returns the email keys that changed (old and new)."""
        stale = [person for person in people.values() if person.keys_version != self.fingerprint]
        changed: set[str] = set()
        for person in stale:
            old = person.email_key
            person.email_key = email_key(person.email, self.config)
            if old != person.email_key:
                changed |= {key for key in (old, person.email_key) if key}
            person.phone_key = phone_key(person.phone, self.config)
            person.keys_version = self.fingerprint
        with self.engine.begin() as connection:
            update_rows(connection, PersonRecord, "id", [
                {"id": p.id, "email_key": p.email_key, "phone_key": p.phone_key, "keys_version": p.keys_version}
                for p in stale])
        return changed

    def _issued(self) -> dict[str, datetime | None]:
        """Existing customer ids and when each was first seen (the older one survives a merge)."""
        with self.engine.connect() as connection:
            rows = connection.exec_driver_sql("SELECT id, first_seen_at FROM customer")
            return {customer_id: moment(first_seen) for customer_id, first_seen in rows}

    def _write(self, resolution: Resolution, people: dict[str, Person], issued: dict[str, datetime | None]) -> None:
        """Customers whose golden record changed and records whose customer or match changed, as plain rows (a
        first pass writes every customer and every record)."""
        stamp = time_writer(self.engine.dialect.name)
        now = utcnow()
        written = stamp(now)
        existing = self._existing_customers()
        groups = field_groups(self.config)
        customers: list[tuple[Any, ...]] = []
        customer_of: dict[str, str] = {}
        for customer_id, members in resolution.clusters.items():
            record = golden([people[member] for member in members], self.config, groups)
            if existing.get(customer_id) != _comparable(record):
                resolution.touched_customers.add(customer_id)
                customers.append((customer_id, *[record[name] for name in GOLDEN_FIELDS],
                                  stamp(record["first_seen_at"]), written, written, None, None))
            customer_of.update(dict.fromkeys(members, customer_id))
        person_updates: list[tuple[str, str, str, str]] = []
        for person in people.values():  # in the order they were read, which is the table's: updates go in page order
            customer_id = customer_of[person.id]
            match = resolution.matches.get(person.id)
            rule, evidence = match or ("first_record", "no other record matched")
            if (person.customer_id, person.match_rule, person.match_evidence) != (customer_id, rule, evidence):
                if person.customer_id != customer_id:
                    resolution.changed_people.add(person.id)
                    resolution.touched_customers.add(customer_id)
                    if person.customer_id:
                        resolution.touched_customers.add(person.customer_id)
                person_updates.append((customer_id, rule, evidence, person.id))
        # in id order: new customers are appended in key order, so the tagger's batches (by id) then read and
        # write neighbouring pages instead of a few rows on every page
        customers.sort()
        with self.engine.begin() as connection:
            self._apply(connection, customers, person_updates, resolution, now)

    def _existing_customers(self) -> dict[str, tuple[Any, ...]]:
        sql = f"SELECT id, {', '.join(GOLDEN_FIELDS)}, first_seen_at, merged_into_id FROM customer"
        fields = len(GOLDEN_FIELDS)
        with self.engine.connect() as connection:
            return {row[0]: (*row[1:fields + 1], moment(row[fields + 1]), row[fields + 2])
                    for row in connection.exec_driver_sql(sql)}

    def _apply(self, connection: Connection, customers: list[tuple[Any, ...]],
               person_updates: list[tuple[str, str, str, str]], resolution: Resolution, now: datetime) -> None:
        upsert = upsert_sql(connection, "customer", CUSTOMER_COLUMNS, "id", CUSTOMER_UPDATES)
        execute_many(connection, upsert, customers)
        execute_many(connection, update_sql(connection, "person_record", MATCH_COLUMNS), person_updates)
        for loser, survivor in resolution.merged.items():
            connection.execute(update(Customer).where(Customer.id == loser).values(
                merged_into_id=survivor, merged_at=now, updated_at=now))


def _comparable(record: dict[str, Any]) -> tuple[Any, ...]:
    return (*[record[name] for name in GOLDEN_FIELDS], record["first_seen_at"], None)
