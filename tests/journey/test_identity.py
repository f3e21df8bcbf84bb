"""Identity resolution: the rules of mappings/identity.yaml, stable ids, merges, splits and golden records."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, select, update

from canonical.models import Customer, PersonRecord, SourceRecord
from canonical.upsert import upsert
from journeyhub.config import load_config_file, mappings_root
from journeyhub.journey.identity import IdentityResolver, Person, assign_ids, cluster
from journeyhub.journey.identity_config import IdentityConfig
from journeyhub.journey.keys import email_key, phone_key

CONFIG: IdentityConfig = load_config_file(mappings_root(), "identity.yaml")
T0 = datetime(2025, 1, 1, tzinfo=UTC)


def person(key: str, *, email: str | None = None, phone: str | None = None, kind: str = "contact",
           first: str | None = None, last: str = "Cohen", converted_to: str | None = None,
           xrefs: list[str] | None = None, merged_into: str | None = None, created: int = 0, updated: int = 0,
           deleted: bool = False) -> tuple[dict[str, Any], dict[str, Any]]:
    system, object_type, remote_id = key.split(":", 2)
    source = {"id": key, "system": system, "object_type": object_type, "remote_id": remote_id, "entity": "person",
              "remote_created_at": T0 + timedelta(days=created), "remote_updated_at": T0 + timedelta(days=updated),
              "first_seen_at": T0, "last_seen_at": T0, "is_deleted": deleted, "merged_into": merged_into}
    row = {"id": key, "kind": kind, "email": email, "phone": phone, "first_name": first, "last_name": last,
           "full_name": " ".join(p for p in (first, last) if p), "converted_to": converted_to, "xrefs": xrefs,
           "keys_version": None}  # as the page loader does: match keys are recomputed
    return source, row


def load(engine: Engine, *people: tuple[dict[str, Any], dict[str, Any]]) -> None:
    with engine.begin() as connection:
        upsert(connection, SourceRecord, [source for source, _ in people])
        upsert(connection, PersonRecord, [row for _, row in people])


def customers_of(engine: Engine) -> dict[str, str]:
    with engine.connect() as connection:
        return dict(connection.execute(select(PersonRecord.id, PersonRecord.customer_id)).all())


def groups(engine: Engine) -> list[set[str]]:
    by_customer: dict[str, set[str]] = {}
    for record, customer in customers_of(engine).items():
        by_customer.setdefault(customer, set()).add(record)
    return sorted(by_customer.values(), key=sorted)


def resolve(engine: Engine) -> Any:
    return IdentityResolver(engine, CONFIG).resolve()


def test_keys_normalise_case_whitespace_unicode_and_phone_formats() -> None:
    assert email_key("  Dana.Cohen@Example.COM ", CONFIG) == email_key("dana.cohen@example.com", CONFIG)
    assert email_key("ｄａｎａ@example.com", CONFIG) == "email:dana@example.com"  # full-width → NFKC
    numbers = {"+972 50-123-4567", "050-1234567", "972501234567", "00972 50 123 4567"}
    assert {phone_key(number, CONFIG) for number in numbers} == {"+972501234567"}
    assert phone_key("12345", CONFIG) is None
    assert phone_key("1-415-555-0134", CONFIG) == "+14155550134"  # international without the plus: 2nd reading
    assert phone_key("+1 415 555 0134", CONFIG) == phone_key("001 415 555 0134", CONFIG) == "+14155550134"


def test_one_person_across_three_crms_by_email_and_phone_transitively(engine: Engine) -> None:
    load(engine,
         person("hubspot:contacts:1", email="Dana@Example.com "),
         person("salesforce:Contact:003A", email="dana@example.com", phone="+972 50-123-4567"),
         person("dynamics:contacts:c1", phone="050-1234567"),
         person("dynamics:contacts:c2", email="other@example.com", first="Dana"))
    resolve(engine)
    assert groups(engine) == [{"dynamics:contacts:c1", "hubspot:contacts:1", "salesforce:Contact:003A"},
                              {"dynamics:contacts:c2"}]
    with engine.connect() as connection:
        rules = dict(connection.execute(select(PersonRecord.id, PersonRecord.match_rule)).all())
        evidence = connection.execute(select(PersonRecord.match_evidence)
                                      .where(PersonRecord.id == "hubspot:contacts:1")).scalar_one()
    assert rules["hubspot:contacts:1"] == "same_email" and rules["dynamics:contacts:c1"] == "same_phone"
    assert "dana@example.com" in evidence and "salesforce:Contact:003A" in evidence


def test_conversion_cross_ids_and_source_merges_link_records_with_different_keys(engine: Engine) -> None:
    load(engine,
         person("salesforce:Lead:00Q1", email="lead@x.io", kind="lead", converted_to="salesforce:Contact:0031"),
         person("salesforce:Contact:0031", email="contact@x.io"),
         person("hubspot:contacts:7", email="hs@x.io", xrefs=["salesforce:Contact:0031"]),
         person("salesforce:Contact:0032", email="dup@x.io", merged_into="salesforce:Contact:0031", deleted=True))
    resolve(engine)
    assert len(groups(engine)) == 1
    with engine.connect() as connection:
        rules = dict(connection.execute(select(PersonRecord.id, PersonRecord.match_rule)).all())
    assert rules == {"salesforce:Lead:00Q1": "lead_conversion", "salesforce:Contact:0031": "source_merge",
                     "hubspot:contacts:7": "cross_system_id", "salesforce:Contact:0032": "source_merge"}


def test_same_name_is_not_the_same_person_and_a_shared_switchboard_number_does_not_merge(engine: Engine) -> None:
    people = [person(f"hubspot:contacts:{n}", email=f"p{n}@x.io", phone="+972 3-555-0000", first="Mohammed",
                     last="Khalil") for n in range(7)]
    load(engine, *people)
    resolve(engine)
    assert len(groups(engine)) == 7


def test_ids_are_stable_survive_merges_and_splits(engine: Engine) -> None:
    load(engine, person("hubspot:contacts:1", email="a@x.io", created=0),
         person("salesforce:Contact:003B", email="b@x.io", created=5))
    resolve(engine)
    first = customers_of(engine)
    a_id, b_id = first["hubspot:contacts:1"], first["salesforce:Contact:003B"]
    load(engine, person("dynamics:contacts:c1", email="a@x.io", created=9))  # joins A: A's id survives
    resolution = resolve(engine)
    assert customers_of(engine)["dynamics:contacts:c1"] == a_id and not resolution.merged
    load(engine, person("dynamics:contacts:c2", email="b@x.io", phone="050-7654321", created=10),
         person("dynamics:contacts:c1", email="a@x.io", phone="050-7654321", created=9))  # bridges A and B
    resolution = resolve(engine)
    assert set(customers_of(engine).values()) == {a_id} and resolution.merged == {b_id: a_id}
    with engine.connect() as connection:
        assert connection.execute(select(Customer.merged_into_id).where(Customer.id == b_id)).scalar_one() == a_id
    load(engine, person("dynamics:contacts:c1", email="a@x.io", created=9),
         person("dynamics:contacts:c2", email="b@x.io", created=10))  # the bridge goes away: a split
    resolve(engine)
    after = customers_of(engine)
    assert after["hubspot:contacts:1"] == a_id and after["dynamics:contacts:c1"] == a_id
    assert after["salesforce:Contact:003B"] == after["dynamics:contacts:c2"] != a_id
    assert resolve(engine).changed_people == set(), "a second pass changes nothing"


def test_the_golden_record_follows_survivorship_and_never_prefers_empty(engine: Engine) -> None:
    load(engine,
         person("hubspot:contacts:1", email="Dana@x.io", phone="050-1111111", first="Dana", updated=30),
         person("salesforce:Contact:003A", email="dana@x.io", phone="050-2222222", first=None, last="Levi",
                updated=10),
         person("dynamics:contacts:c1", email="DANA@X.IO", phone=None, first="Dana", last="Cohen", updated=40))
    resolve(engine)
    with engine.connect() as connection:
        customer = connection.execute(select(Customer)).one()
    assert customer.email == "dana@x.io"                      # source priority: Salesforce first
    assert customer.last_name == "Levi" and customer.first_name == "Dana"  # Salesforce has no first name
    assert customer.phone == "050-1111111"                   # most recent non-empty phone
    assert customer.first_seen_at == T0


def test_a_changed_email_moves_a_record_to_the_right_customer(engine: Engine) -> None:
    load(engine, person("hubspot:contacts:1", email="a@x.io"), person("hubspot:contacts:2", email="b@x.io"),
         person("salesforce:Contact:003A", email="a@x.io"))
    resolve(engine)
    with engine.begin() as connection:  # the loader resets keys_version when a record changes
        connection.execute(update(PersonRecord).where(PersonRecord.id == "salesforce:Contact:003A")
                           .values(email="b@x.io", keys_version=None))
    resolution = resolve(engine)
    assert customers_of(engine)["salesforce:Contact:003A"] == customers_of(engine)["hubspot:contacts:2"]
    assert resolution.changed_people == {"salesforce:Contact:003A"}
    assert {"email:a@x.io", "email:b@x.io"} <= resolution.changed_keys


# ----------------------------------------------------------------------------------- properties (pure)
EMAILS = ["a@x.io", "A@X.io ", "b@x.io", "c@x.io", None]
PHONES = ["050-1234567", "+972501234567", "052-7654321", None]


def pure_people(specs: list[tuple[int, int, int]]) -> dict[str, Person]:
    people = {}
    for index, (email, phone, system) in enumerate(specs):
        key = f"{['hubspot', 'salesforce', 'dynamics'][system]}:contacts:{index}"
        people[key] = Person(
            id=key, system=key.split(":")[0], kind="contact", email=EMAILS[email], phone=PHONES[phone],
            email_key=email_key(EMAILS[email], CONFIG), phone_key=phone_key(PHONES[phone], CONFIG), keys_version="x",
            converted_to=None, xrefs=[], merged_into=None, is_deleted=False, created=T0, updated=T0, customer_id=None,
            match_rule=None, match_evidence=None, values={})
    return people


SPECS = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 3), st.integers(0, 2)), min_size=1, max_size=25)


@settings(max_examples=150, deadline=None)
@given(SPECS, st.randoms(use_true_random=False))
def test_clustering_does_not_depend_on_record_order(specs: list[tuple[int, int, int]], rng: random.Random) -> None:
    people = pure_people(specs)
    shuffled_keys = list(people)
    rng.shuffle(shuffled_keys)
    shuffled = {key: people[key] for key in shuffled_keys}
    first, _ = cluster(people, CONFIG)
    second, _ = cluster(shuffled, CONFIG)
    assert sorted(first.values()) == sorted(second.values())
    assert assign_ids(first, people, {})[0] == assign_ids(second, shuffled, {})[0]


@settings(max_examples=150, deadline=None)
@given(SPECS)
def test_resolution_is_idempotent(specs: list[tuple[int, int, int]]) -> None:
    people = pure_people(specs)
    clusters, _ = cluster(people, CONFIG)
    assigned, merged = assign_ids(clusters, people, {})
    assert not merged
    for customer, members in assigned.items():
        for member in members:
            people[member].customer_id = customer
    again, merged_again = assign_ids(cluster(people, CONFIG)[0], people, dict.fromkeys(assigned, T0))
    assert again == assigned and not merged_again


def test_the_block_writes_are_planned_as_index_probes_on_postgresql(engine: Engine, monkeypatch: Any) -> None:
    """Each block's record updates joined to a scan of all of person_record with PostgreSQL's default page
    cost (`dbio.index_probes`); the setting is the writing transaction's only."""
    from journeyhub.journey import identity

    costs: list[str] = []
    write_update = identity.write_update

    def observed(connection: Any, *args: Any, **kwargs: Any) -> None:
        if connection.dialect.name == "postgresql" and args[1] == identity.MATCH_COLUMNS:  # a block's records
            costs.append(connection.exec_driver_sql("SELECT current_setting('random_page_cost')").scalar())
        write_update(connection, *args, **kwargs)

    monkeypatch.setattr(identity, "write_update", observed)
    with engine.connect() as connection:
        server = (connection.exec_driver_sql("SELECT current_setting('random_page_cost')").scalar()
                  if engine.dialect.name == "postgresql" else None)
    load(engine, person("hubspot:contacts:1", email="dana@example.com"),
         person("salesforce:Contact:003A", email="Dana@Example.com"))
    resolve(engine)
    assert len(groups(engine)) == 1
    if engine.dialect.name == "postgresql":
        assert costs and set(costs) == {"1.1"}
        with engine.connect() as connection:
            assert connection.exec_driver_sql("SELECT current_setting('random_page_cost')").scalar() == server


def test_stale_match_keys_are_recomputed_a_chunk_at_a_time_each_starting_after_the_last(engine: Engine,
                                                                                 monkeypatch: Any) -> None:
    """Each chunk starts after the previous one's last id (asking from the first id again re-read every
    record fixed so far: a first pass quadratic in the records)."""
    from journeyhub.journey import identity
    from journeyhub.journey.keys import keys_fingerprint

    monkeypatch.setattr(identity, "KEYS_CHUNK", 2)
    read: list[str] = []
    starts: list[str] = []  # where each chunk's query starts: after the id the chunk before it ended with
    fetch_rows = identity.fetch_rows

    def observed(connection: Any, sql: str, parameters: Any) -> Any:
        rows = fetch_rows(connection, sql, parameters)
        if "keys_version" in sql and sql.lstrip().startswith("SELECT id, email"):
            starts.append(parameters[0])
            read.extend(row[0] for row in rows)
        return rows

    monkeypatch.setattr(identity, "fetch_rows", observed)
    people = [person(f"hubspot:contacts:{index}", email=f"P{index}@Example.com") for index in range(7)]
    load(engine, *people)
    with engine.begin() as connection:  # one of them already has current keys: not read again
        connection.execute(update(PersonRecord).where(PersonRecord.id == "hubspot:contacts:3").values(
            email_key=email_key("P3@Example.com", CONFIG), keys_version=keys_fingerprint(CONFIG)))
    resolve(engine)
    assert read == sorted(f"hubspot:contacts:{index}" for index in range(7) if index != 3)
    assert starts == ["", read[1], read[3], read[5]]  # chunks of two: 0 1 | 2 4 | 5 6 | (none)
    with engine.connect() as connection:
        stored = dict(connection.execute(select(PersonRecord.id, PersonRecord.email_key)).all())
    assert stored == {f"hubspot:contacts:{index}": email_key(f"P{index}@Example.com", CONFIG) for index in range(7)}
