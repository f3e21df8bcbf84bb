"""Storing pages: idempotent upserts, cursor committed with its page, tombstones, quarantine, relations,
merges — on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, event, select, text

from canonical.models import Association, SourceRecord, SyncRun
from connectors.base import Page
from connectors.base import RemoteRecord as Record
from journeyhub.ingest import loader as loader_module
from journeyhub.ingest.loader import Counts, PageLoader, Prepared
from journeyhub.ingest.spec import MappingSpec

SPECS = {
    "contacts": """
object: contacts
entity: person
fields:
  email: properties.email
  last_name: properties.lastname
merges: {from: properties.hs_merged_object_ids, transform: {split: ";"}, ref: contacts}
linked:
  - {from: _associations.deals, ref: deals}
derived:
  - suffix: form
    when: {path: properties.form_date, present: true}
    fields:
      kind: {value: form_submission}
      occurred_at: {from: properties.form_date, transform: datetime}
""",
    "deals": """
object: deals
entity: deal
fields:
  name: properties.dealname
  opened_at: {from: createdAt, transform: datetime}
people:
  - {from: _associations.contacts, ref: contacts}
""",
    "notes": """
object: notes
entity: interaction
skip_when: {path: properties.journeyhub_item_id, present: true}
fields:
  kind: {value: note}
  occurred_at: {from: properties.hs_timestamp, transform: datetime}
""",
    "roles": """
object: roles
entity: association
fields:
  from_id: {from: deal, ref: deals}
  to_id: {from: contact, ref: contacts}
  label: {value: decision_maker}
""",
}


def mappings() -> dict[str, MappingSpec]:
    return {name: MappingSpec.model_validate(yaml.safe_load(text)) for name, text in SPECS.items()}


def contact(remote_id: str, email: str, **properties: Any) -> Record:
    return Record("contacts", remote_id, {"id": remote_id, "properties": {"email": email, "lastname": "Cohen",
                                                                         **properties}})


def deal(remote_id: str, contacts: list[str] | None) -> Record:
    extra = {} if contacts is None else {"_associations": {"contacts": contacts}}
    return Record("deals", remote_id, {"id": remote_id, "createdAt": "2025-01-01T00:00:00Z",
                                       "properties": {"dealname": "D"}}, extra=extra)


def rows(engine: Engine, sql: str) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(sql))]


class StagedLoader(PageLoader):
    """Every page through the two halves `OrderedWrites` uses on PostgreSQL: staged outside its transaction,
    then written."""

    def write(self, prepared: Prepared, run_row_id: int | None = None) -> Counts:
        return self.write_staged(self.stage(prepared), run_row_id)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres),
                        pytest.param("postgresql-staged", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each dialect; on PostgreSQL also the write-behind path's staged writes."""
    return request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "engine_pg_clean")


@pytest.fixture
def hub(engine: Engine, request: pytest.FixtureRequest) -> PageLoader:
    staged = request.node.callspec.params["engine"] == "postgresql-staged"
    return (StagedLoader if staged else PageLoader)(engine, "hubspot", mappings(), run_id="run-1")


def test_a_page_and_its_cursor_land_together_and_a_replay_changes_nothing(engine: Engine, hub: PageLoader) -> None:
    page = Page("contacts", [contact("1", "a@x.io"), contact("2", "b@x.io")], cursor='{"after": 2}', api_calls=1)
    first = hub.store(page)
    assert (first.records_read, first.inserted, first.updated, first.unchanged) == (2, 2, 0, 0)
    assert rows(engine, "SELECT cursor FROM sync_state") == [('{"after": 2}',)]
    before = rows(engine, "SELECT id, last_seen_at FROM source_record ORDER BY id")
    again = hub.store(Page("contacts", [contact("1", "a@x.io"), contact("2", "b@x.io")], cursor='{"after": 3}'))
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, 2)
    assert rows(engine, "SELECT id, last_seen_at FROM source_record ORDER BY id") == before
    assert rows(engine, "SELECT cursor FROM sync_state") == [('{"after": 3}',)]
    changed = hub.store(Page("contacts", [contact("1", "a.new@x.io")], cursor=None))
    assert changed.updated == 1
    assert rows(engine, "SELECT email FROM person_record WHERE id = 'hubspot:contacts:1'") == [("a.new@x.io",)]
    assert rows(engine, "SELECT COUNT(*) FROM person_record") == [(2,)]


def test_identity_owned_columns_survive_a_reload(engine: Engine, hub: PageLoader) -> None:
    hub.store(Page("contacts", [contact("1", "a@x.io")], cursor=None))
    with engine.begin() as connection:
        connection.execute(text("UPDATE person_record SET customer_id = 'cus_1', match_rule = 'same_email'"))
    hub.store(Page("contacts", [contact("1", "changed@x.io")], cursor=None))
    assert rows(engine, "SELECT customer_id, match_rule, keys_version FROM person_record") == [
        ("cus_1", "same_email", None)]


def test_tombstones_keep_the_row_and_mark_it_deleted(engine: Engine, hub: PageLoader) -> None:
    hub.store(Page("contacts", [contact("1", "a@x.io")], cursor=None))
    counts = hub.store(Page("contacts", [Record("contacts", "1", None, deleted=True)], cursor=None))
    assert counts.deleted == 1
    assert rows(engine, "SELECT is_deleted FROM source_record") == [(True,)]
    assert rows(engine, "SELECT COUNT(*) FROM person_record") == [(1,)]


def test_bad_records_are_quarantined_and_resolved_when_fixed(engine: Engine, hub: PageLoader) -> None:
    counts = hub.store(Page("contacts", [contact("1", "a@x.io"), contact("2", "bad@@x.io")], cursor=None))
    assert (counts.inserted, counts.quarantined) == (1, 1)
    assert rows(engine, "SELECT remote_id, reason, occurrences FROM quarantine") == [("2", "invalid_email", 1)]
    hub.store(Page("contacts", [contact("2", "bad@@x.io")], cursor=None))
    assert rows(engine, "SELECT occurrences, resolved_at IS NULL FROM quarantine") == [(2, True)]
    hub.store(Page("contacts", [contact("2", "good@x.io")], cursor=None))
    assert rows(engine, "SELECT resolved_at IS NOT NULL FROM quarantine") == [(True,)]


def test_text_longer_than_its_column_is_cut_or_quarantined_and_the_page_lands(engine: Engine, hub: PageLoader) -> None:
    """PostgreSQL refuses text longer than a varchar column (and aborts the transaction): a 200 KB name is cut
    to fit, an address longer than its column quarantines its record, and the rest of the page is stored."""
    long_name, long_email = "כהן" * 70_000, "d" * 400 + "@example.com"
    page = Page("contacts", [contact("1", "a@x.io", lastname=long_name), contact("2", long_email),
                             contact("3", "c@x.io")], cursor='{"after": 3}')
    counts = hub.store(page)
    hub.store(Page("deals", [Record("deals", "9", {"id": "9", "createdAt": "2025-01-01T00:00:00Z",
                                                  "properties": {"dealname": "D" * 1000}})], cursor=None))
    assert (counts.inserted, counts.quarantined) == (2, 1)
    assert rows(engine, "SELECT id, last_name, full_name FROM person_record ORDER BY id") == [
        ("hubspot:contacts:1", long_name[:199] + "…", long_name[:199] + "…"), ("hubspot:contacts:3", "Cohen", "Cohen")]
    assert rows(engine, "SELECT remote_id, reason, substr(detail, 1, 44) FROM quarantine") == [
        ("2", "invalid_value", "email: String should have at most 320 charac")]
    assert rows(engine, "SELECT cursor FROM sync_state WHERE object_type = 'contacts'") == [('{"after": 3}',)]
    assert rows(engine, "SELECT name FROM deal") == [("D" * 399 + "…",)]


def test_a_record_restating_its_people_replaces_them_and_silence_keeps_them(engine: Engine, hub: PageLoader) -> None:
    hub.store(Page("deals", [deal("9", ["1", "2"])], cursor=None))
    assert rows(engine, "SELECT to_id, is_primary FROM association ORDER BY to_id") == [
        ("hubspot:contacts:1", True), ("hubspot:contacts:2", False)]
    hub.store(Page("deals", [deal("9", None)], cursor=None))  # e.g. read through search: no associations
    assert len(rows(engine, "SELECT * FROM association")) == 2
    hub.store(Page("deals", [deal("9", ["2"])], cursor=None))
    assert rows(engine, "SELECT to_id FROM association") == [("hubspot:contacts:2",)]


def test_on_sqlite_a_record_new_to_the_database_asks_for_no_stored_relations_and_a_known_one_does(
        sqlite_engine: Engine) -> None:
    """A page is classified under SQLite's write lock: a record it finds new has no relations stored, so the
    page deletes none for it; a record stored before has its relations replaced."""
    hub = PageLoader(sqlite_engine, "hubspot", mappings(), run_id="run-1")
    deletes: list[str] = []

    def trace(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.set_trace_callback(
            lambda sql: deletes.append(sql) if sql.startswith('DELETE FROM "association"') else None)

    sqlite_engine.dispose()  # every connection from now on is traced
    event.listen(sqlite_engine, "connect", trace)
    hub.store(Page("deals", [deal("9", ["1", "2"]), deal("8", ["3"])], cursor=None))
    assert deletes == [], "two new deals: nothing stored to replace"
    hub.store(Page("deals", [deal("9", ["2"]), deal("7", ["3"])], cursor=None))
    assert len(deletes) == 1 and "hubspot:deals:9" in deletes[0], "deal 9 replaces its relations, 7 is new"
    assert rows(sqlite_engine, "SELECT from_id, to_id FROM association ORDER BY from_id") == [
        ("hubspot:deals:7", "hubspot:contacts:3"), ("hubspot:deals:8", "hubspot:contacts:3"),
        ("hubspot:deals:9", "hubspot:contacts:2")]


def test_relation_records_create_and_tombstone_associations(engine: Engine, hub: PageLoader) -> None:
    role = Record("roles", "r1", {"deal": "9", "contact": "1"})
    hub.store(Page("roles", [role], cursor=None))
    assert rows(engine, "SELECT from_id, to_id, label, is_deleted FROM association") == [
        ("hubspot:deals:9", "hubspot:contacts:1", "decision_maker", False)]
    hub.store(Page("roles", [Record("roles", "r1", {"deal": "9", "contact": "1"}, deleted=True)], cursor=None))
    assert rows(engine, "SELECT is_deleted FROM association") == [(True,)]


def test_a_relation_deleted_with_its_record_keeps_counting_and_one_deleted_alone_does_not(
        engine: Engine, hub: PageLoader) -> None:
    """An Opportunity's contact roles go to the recycle bin with it: history (the deal stays this person's);
    a role removed from a live Opportunity is a correction (the person was not on that deal)."""
    hub.store(Page("deals", [deal("9", None), deal("10", None)], cursor=None))
    hub.store(Page("roles", [Record("roles", "r1", {"deal": "9", "contact": "1"}),
                             Record("roles", "r2", {"deal": "10", "contact": "1"})], cursor=None))
    hub.store(Page("deals", [Record("deals", "9", deal("9", None).data, deleted=True)], cursor=None))
    hub.store(Page("roles", [Record("roles", "r1", {"deal": "9", "contact": "1"}, deleted=True),
                             Record("roles", "r2", {"deal": "10", "contact": "1"}, deleted=True)], cursor=None))
    assert rows(engine, "SELECT from_id, is_deleted FROM association ORDER BY from_id") == [
        ("hubspot:deals:10", True), ("hubspot:deals:9", False)]


def test_records_a_record_lists_as_its_own_relate_to_it_and_silence_keeps_them(engine: Engine,
                                                                               hub: PageLoader) -> None:
    """An archived HubSpot contact lists its deals on its own side only: each deal relates to the contact, as
    the contact says (replaced when it says it again; a contact read without those associations says nothing)."""
    archived = contact("1", "a@x.io")
    archived.deleted, archived.extra = True, {"_associations": {"deals": ["9", "10"]}}
    hub.store(Page("contacts", [archived], cursor=None))
    assert rows(engine, "SELECT from_id, to_id, source_id, is_deleted FROM association ORDER BY from_id") == [
        ("hubspot:deals:10", "hubspot:contacts:1", "hubspot:contacts:1", False),
        ("hubspot:deals:9", "hubspot:contacts:1", "hubspot:contacts:1", False)]
    hub.store(Page("contacts", [contact("1", "a@x.io")], cursor=None))     # live again, no such associations
    assert len(rows(engine, "SELECT * FROM association")) == 2
    again = contact("1", "a@x.io")
    again.extra = {"_associations": {"deals": ["9"]}}
    hub.store(Page("contacts", [again], cursor=None))
    assert rows(engine, "SELECT from_id FROM association") == [("hubspot:deals:9",)]


def test_merges_tombstone_the_loser_and_repoint_its_relations(engine: Engine, hub: PageLoader) -> None:
    hub.store(Page("contacts", [contact("1", "a@x.io"), contact("2", "a@x.io")], cursor=None))
    hub.store(Page("deals", [deal("9", ["2"]), deal("8", ["1", "2"])], cursor=None))
    hub.store(Page("contacts", [contact("1", "a@x.io", hs_merged_object_ids="2;3")], cursor=None))
    with engine.connect() as connection:
        losers = connection.execute(select(SourceRecord.id, SourceRecord.is_deleted, SourceRecord.merged_into)
                                    .where(SourceRecord.merged_into.is_not(None)).order_by(SourceRecord.id)).all()
        links = connection.execute(select(Association.from_id, Association.to_id).order_by(Association.from_id)).all()
    assert [tuple(row) for row in losers] == [("hubspot:contacts:2", True, "hubspot:contacts:1"),
                                              ("hubspot:contacts:3", True, "hubspot:contacts:1")]
    assert [tuple(row) for row in links] == [("hubspot:deals:8", "hubspot:contacts:1"),
                                             ("hubspot:deals:9", "hubspot:contacts:1")]


def test_the_hubs_own_items_are_skipped_and_counted(engine: Engine, hub: PageLoader) -> None:
    note = Record("notes", "n1", {"properties": {"hs_timestamp": "2025-01-01T00:00:00Z", "journeyhub_item_id": "jh:x"}})
    counts = hub.store(Page("notes", [note], cursor=None))
    assert (counts.skipped, counts.inserted) == (1, 0)
    assert rows(engine, "SELECT COUNT(*) FROM interaction") == [(0,)]


def test_a_failure_mid_page_rolls_back_the_page_and_its_cursor(engine: Engine, hub: PageLoader,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    hub.store(Page("deals", [deal("1", ["1"])], cursor="c1"))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk full")

    monkeypatch.setattr(loader_module, "mark_merged", broken)
    with pytest.raises(RuntimeError):
        hub.store(Page("contacts", [contact("5", "e@x.io", hs_merged_object_ids="6")], cursor="c2"))
    assert rows(engine, "SELECT object_type, cursor FROM sync_state") == [("deals", "c1")]
    assert rows(engine, "SELECT COUNT(*) FROM person_record") == [(0,)]


def test_run_counters_accumulate_in_the_same_transaction(engine: Engine, hub: PageLoader) -> None:
    with engine.begin() as connection:
        run_id = connection.execute(SyncRun.__table__.insert().values(
            run_id="run-1", direction="pull", system="hubspot", object_type="contacts").returning(SyncRun.id)).scalar()
    hub.store(Page("contacts", [contact("1", "a@x.io"), contact("2", "x@@y")], cursor=None, api_calls=3), run_id)
    hub.store(Page("contacts", [contact("1", "a@x.io")], cursor=None, api_calls=1), run_id)
    with engine.connect() as connection:
        run = connection.execute(select(SyncRun)).one()
    assert (run.records_read, run.inserted, run.unchanged, run.quarantined, run.api_calls) == (3, 1, 1, 1, 4)
    assert [tuple(r) for r in rows(engine, "SELECT COUNT(*) FROM quarantine")] == [(1,)]


def test_items_read_off_a_record_go_when_the_record_goes(engine: Engine, hub: PageLoader) -> None:
    form = {"form_date": "2025-01-01T00:00:00Z"}
    hub.store(Page("contacts", [contact("1", "a@x.io", **form), contact("2", "b@x.io", **form),
                                contact("3", "c@x.io", **form)], cursor=None))
    hub.store(Page("contacts", [Record("contacts", "1", None, deleted=True),
                                contact("3", "c@x.io", hs_merged_object_ids="2", **form)], cursor=None))
    assert rows(engine, "SELECT id, is_deleted FROM source_record WHERE id LIKE '%#form' ORDER BY id") == [
        ("hubspot:contacts:1#form", True), ("hubspot:contacts:2#form", True), ("hubspot:contacts:3#form", False)]


@pytest.mark.postgres
def test_on_postgresql_a_pages_bulk_statements_go_out_back_to_back(engine_pg_clean: Engine,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """One pipeline per page: the interaction, association and provenance statements are sent without waiting
    for each other (psycopg's pipeline mode), the provenance one last — its answer is read back."""
    import psycopg

    inside: list[list[str]] = []
    pipeline, execute = psycopg.Connection.pipeline, psycopg.Cursor.execute

    @contextmanager
    def counted(self: Any) -> Iterator[Any]:
        inside.append([])
        with pipeline(self) as opened:
            yield opened

    def recorded(self: Any, query: Any, *args: Any, **kwargs: Any) -> Any:
        if self.connection._pipeline is not None and inside:
            inside[-1].append(" ".join(str(query).split()[:3]))
        return execute(self, query, *args, **kwargs)

    monkeypatch.setattr(psycopg.Connection, "pipeline", counted)
    monkeypatch.setattr(psycopg.Cursor, "execute", recorded)
    hub = PageLoader(engine_pg_clean, "hubspot", mappings(), run_id="run-1")
    counts = hub.store(Page("deals", [deal("1", ["7"]), deal("2", ["8"])], cursor="c1"))
    assert counts.inserted == 2
    assert inside == [["INSERT INTO deal", "DELETE FROM association", "INSERT INTO association",
                       "INSERT INTO source_record"]]
    assert rows(engine_pg_clean, "SELECT from_id, to_id FROM association ORDER BY 1") == [
        ("hubspot:deals:1", "hubspot:contacts:7"), ("hubspot:deals:2", "hubspot:contacts:8")]


@pytest.mark.postgres
def test_without_pipeline_mode_in_libpq_a_page_is_written_one_statement_after_another(
        engine_pg_clean: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """A system libpq older than 14 has no pipeline mode: pages are written as before, none fails for it."""
    import psycopg

    def refused(self: Any) -> Any:
        raise psycopg.NotSupportedError("pipeline mode not supported")

    monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    monkeypatch.setattr(psycopg.Connection, "pipeline", refused)
    hub = PageLoader(engine_pg_clean, "hubspot", mappings(), run_id="run-1")
    counts = hub.store(Page("deals", [deal("1", ["7"])], cursor="c1"))
    assert (counts.inserted, counts.quarantined) == (1, 0)
    assert rows(engine_pg_clean, "SELECT from_id, to_id FROM association") == [
        ("hubspot:deals:1", "hubspot:contacts:7")]
