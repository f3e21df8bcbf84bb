"""The contract every connector passes, run against its emulator over loopback with the real SDK.

A CRM's test module subclasses `ConnectorContract` (reads) and `WriteContract` (what write-back needs) and
provides two fixtures: `harness`, returning a `Harness` for a person object type whose emulator holds at
least a few hundred records, and `write_harness`, a `WriteHarness` on the same emulator. Each CRM runs the
read contract against both org profiles (`full` and a `plain` org with history from before install), reading
the fields the packaged mapping reads as the schema check leaves them for that org (`checked_fields`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import GeneratorType
from typing import Any

import pytest

from connectors.base import MISSING, Connector, FieldSpec, MarkedRecord, MirroredItem, Page, WriteOp
from connectors.errors import AuthError, ConfigError, ConnectorError, FatalError, RetriableError
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.schema import compare, describe_names, requested_fields, source_fields
from journeyhub.writeback.render import hub_value, normalized


@dataclass
class Harness:
    connector: Connector
    object_type: str
    live_ids: Callable[[], set[str]]                 # every live record id in the emulator
    touch: Callable[[str], None]                     # change a record so it reads as modified
    delete: Callable[[str], None]                    # delete a record so it reads as a tombstone
    create: Callable[[], str]                        # create a record, return its id
    bad_token_connector: Callable[[], Connector]     # a connector with credentials the CRM rejects
    failing_connector: Callable[[], Connector]       # a connector whose every call gets a 503
    settle: Callable[[], None] = field(default=lambda: None)  # e.g. wait out a search index lag
    fields: list[str] | None = None                  # what a sync reads (the mapping's, checked against the org)
    keeps_deleted: bool = True                       # a deleted record stays readable (recycle bin, archive)


def mapping_fields(connector: Connector, object_type: str) -> list[str]:
    """The fields the packaged mapping of `object_type` reads (what a sync asks the CRM for), unchecked."""
    return requested_fields(connector, load_mappings(mappings_root(), connector.system)[object_type])


def checked_fields(connector: Connector, object_type: str) -> list[str]:
    """The fields a sync reads of `object_type` in the connector's org: the packaged mapping's, less the
    optional ones the org lacks (`journeyhub.ingest.schema`, against a fresh describe)."""
    spec = load_mappings(mappings_root(), connector.system)[object_type]
    plan = compare(source_fields(connector, spec), describe_names(connector, object_type), connector.system,
                   object_type)
    assert plan.problem() is None, plan.problem()
    return plan.fields


def drain(pages: object) -> tuple[list[Page], str | None]:
    collected = list(pages)  # type: ignore[call-overload]
    cursor = next((page.cursor for page in reversed(collected) if page.cursor is not None), None)
    return collected, cursor


def ids(pages: list[Page], deleted: bool | None = None) -> list[str]:
    return [record.remote_id for page in pages for record in page.records
            if deleted is None or record.deleted == deleted]


class ConnectorContract:
    """Behaviour every connector must show; subclasses provide the `harness` fixture."""

    def test_check_makes_one_cheap_authenticated_call(self, harness: Harness) -> None:
        harness.connector.check()

    def test_read_streams_pages_lazily(self, harness: Harness) -> None:
        pages = harness.connector.read(harness.object_type, None, full=True, fields=harness.fields)
        assert isinstance(pages, GeneratorType), "read() must be a generator: pages stream, memory stays flat"
        first = next(pages)
        assert first.records and first.object_type == harness.object_type
        pages.close()

    def test_a_full_read_returns_every_record_once_with_its_id(self, harness: Harness) -> None:
        pages, cursor = drain(harness.connector.read(harness.object_type, None, full=True, fields=harness.fields))
        seen = ids(pages, deleted=False)
        assert all(seen) and len(seen) == len(set(seen)), "ids present, each record once"
        assert set(seen) == harness.live_ids()
        assert cursor is not None and json.loads(cursor) is not None, "the cursor is a JSON string"

    def test_cursors_round_trip_and_a_second_read_without_changes_returns_nothing(self, harness: Harness) -> None:
        _, cursor = drain(harness.connector.read(harness.object_type, None, full=True, fields=harness.fields))
        harness.settle()
        pages, next_cursor = drain(harness.connector.read(harness.object_type, cursor, fields=harness.fields))
        assert ids(pages) == []
        assert next_cursor is None or json.loads(next_cursor) is not None

    def test_changes_created_and_deleted_records_show_up_incrementally(self, harness: Harness) -> None:
        _, cursor = drain(harness.connector.read(harness.object_type, None, full=True, fields=harness.fields))
        victims = sorted(harness.live_ids())[:3]
        harness.touch(victims[0])
        harness.delete(victims[1])
        created = harness.create()
        harness.settle()
        pages, _ = drain(harness.connector.read(harness.object_type, cursor, fields=harness.fields))
        assert victims[0] in ids(pages, deleted=False) and created in ids(pages, deleted=False)
        tombstones = [record for page in pages for record in page.records if record.deleted]
        assert victims[1] in [record.remote_id for record in tombstones], "deletes come as tombstones"
        assert all(record.remote_id for record in tombstones), "tombstones carry ids"
        assert victims[2] not in ids(pages), "unchanged records are not re-read"

    def test_a_first_read_brings_records_deleted_before_it_with_their_data(self, harness: Harness) -> None:
        """History from before install: what the CRM still keeps of a deleted record (HubSpot's archive,
        Salesforce's recycle bin) comes as a tombstone that keeps its data, so it counts as history; a CRM that
        keeps nothing of it (Dataverse) simply no longer lists it."""
        victim = sorted(harness.live_ids())[7]
        harness.delete(victim)
        harness.settle()
        pages, _ = drain(harness.connector.read(harness.object_type, None, full=True, fields=harness.fields))
        if not harness.keeps_deleted:
            assert victim not in ids(pages), "a deleted row is gone: nothing of it to read"
            return
        tombstone = next(record for page in pages for record in page.records if record.remote_id == victim)
        assert tombstone.deleted and tombstone.data, "a tombstone with its last data"
        assert victim not in ids(pages, deleted=False)

    def test_rejected_credentials_are_a_fatal_auth_error(self, harness: Harness) -> None:
        with pytest.raises(AuthError) as error:
            drain(harness.bad_token_connector().read(harness.object_type, None, full=True, fields=harness.fields))
        assert isinstance(error.value, FatalError) and error.value.system == harness.connector.system

    def test_a_persistent_upstream_failure_surfaces_as_retriable_after_bounded_retries(self, harness: Harness) -> None:
        with pytest.raises(ConnectorError) as error:
            drain(harness.failing_connector().read(harness.object_type, None, full=True, fields=harness.fields))
        assert isinstance(error.value, RetriableError)


# ---------------------------------------------------------------------------------------------- writes
@dataclass
class WriteHarness:
    connector: Connector
    person_type: str                                  # contacts / Contact / contacts
    person_ids: list[str]                             # ≥ 120 existing person records the read tests
                                                      # leave alone (they touch the first ids)
    missing_person_id: str                            # a well-formed id no record has
    fields: list[FieldSpec]                           # journey fields the org holds (a string and a datetime)
    mirror_object: str                                # where mirrored items go (notes / Task / tasks)
    marker_field: str
    raw_record: Callable[[str, list[str]], dict[str, Any]]  # a person record as the CRM's API returns it
    count_marked: Callable[[str], int]                # live mirror records carrying this marker
    bare_connector: Callable[[], Connector]           # an org where nobody created the hub's fields


def mirror_op(h: WriteHarness, marker: str, target: str, *, title: str = "Printer on fire",
              remote_id: str | None = None) -> WriteOp:
    """A mirrored item's write as the hub sends it: upserted by marker, or created (updated by id once known)."""
    fields = h.connector.mirror_fields(h.mirror_object, MirroredItem(
        headline="Ticket opened in Elsewhere", title=title, detail="Case 1027 · high",
        occurred_at=datetime(2026, 3, 1, 10, 30, tzinfo=UTC), marker_field=h.marker_field, marker=marker))
    if h.connector.mirror_mode(h.mirror_object) == "upsert":
        return WriteOp("upsert", marker, fields, external_id=(h.marker_field, marker),
                       associations=[(h.person_type, target)])
    if remote_id is not None:
        return WriteOp("update", marker, fields, remote_id=remote_id)
    return WriteOp("create", marker, fields, associations=[(h.person_type, target)])


class WriteContract:
    """What write-back relies on, the same for every connector; subclasses provide `write_harness`."""

    def test_ensure_fields_passes_for_an_org_that_has_them_and_is_idempotent(self, write_harness: WriteHarness) -> None:
        h = write_harness
        wanted = {h.person_type: h.fields, h.mirror_object: [FieldSpec(h.marker_field, marker=True)]}
        h.connector.ensure_fields(wanted, group="journeyhub")
        assert h.connector.ensure_fields(wanted, group="journeyhub") == [], "nothing left to create"

    def test_ensure_fields_creates_what_it_can_or_lists_what_an_admin_must_create(
            self, write_harness: WriteHarness) -> None:
        h = write_harness
        bare = h.bare_connector()
        wanted = {h.person_type: h.fields, h.mirror_object: [FieldSpec(h.marker_field, marker=True)]}
        names = [spec.name for specs in wanted.values() for spec in specs]
        try:
            created = bare.ensure_fields(wanted, group="journeyhub")
        except ConfigError as error:
            assert "admin must create" in error.message and all(name in error.message for name in names)
            assert error.system == bare.system
        else:
            assert sorted(created) == sorted(names)
            assert bare.ensure_fields(wanted, group="journeyhub") == []

    def test_batched_updates_give_one_result_per_op_in_order_and_a_rejected_record_fails_alone(
            self, write_harness: WriteHarness) -> None:
        h = write_harness
        spec = h.fields[0]
        ids = h.person_ids[:120]
        ops = [WriteOp("update", f"u{i}", {spec.name: h.connector.format_value(spec.type, hub_value(spec.type, "v"))},
                       remote_id=remote_id) for i, remote_id in enumerate(ids)]
        ops.insert(60, WriteOp("update", "gone", {spec.name: "v"}, remote_id=h.missing_person_id))
        before = h.connector.api_calls
        results = h.connector.write(h.person_type, ops)
        calls = h.connector.api_calls - before
        assert [result.key for result in results] == [op.key for op in ops], "one result per op, in op order"
        assert [result.key for result in results if not result.ok] == ["gone"] and results[60].error
        assert all(result.remote_id == op.remote_id for result, op in zip(results, ops, strict=True) if result.ok)
        size = h.connector.write_batch_size(h.person_type)
        assert calls <= math.ceil(len(ops) / size) + 2, f"{calls} calls for {len(ops)} updates in batches of {size}"

    def test_formatted_values_round_trip_through_the_crm(self, write_harness: WriteHarness) -> None:
        h = write_harness
        values = {"string": "purchase", "datetime": datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC), "number": 42}
        target = h.person_ids[-1]
        data = {spec.name: h.connector.format_value(spec.type, hub_value(spec.type, values[spec.type]))
                for spec in h.fields}
        [result] = h.connector.write(h.person_type, [WriteOp("update", "round-trip", data, remote_id=target)])
        assert result.ok, result.error
        raw = h.raw_record(target, [spec.name for spec in h.fields])
        for spec in h.fields:
            assert normalized(spec.type, h.connector.field_value(raw, spec.name)) == normalized(
                spec.type, values[spec.type]), spec
        assert h.connector.field_value(raw, "no_such_field_anywhere") is MISSING
        assert h.connector.field_value(None, h.fields[0].name) is MISSING
        assert h.connector.format_value("string", None) in (None, ""), "None clears a field"
        current = h.connector.read_current(h.person_type, [target, h.missing_person_id], [h.fields[0].name])
        assert list(current) == [target] and normalized("string", current[target][h.fields[0].name]) == "purchase"

    def test_a_mirrored_item_sent_twice_exists_once_and_is_found_by_its_marker(
            self, write_harness: WriteHarness) -> None:
        h = write_harness
        markers = [f"jh:contract{index:04d}" for index in range(110)] + ["jh:contract-gone"]
        targets = [*(h.person_ids[index % 40] for index in range(110)), h.missing_person_id]
        first = h.connector.write(h.mirror_object, [mirror_op(h, m, t) for m, t in zip(markers, targets, strict=True)])
        assert [result.key for result in first] == markers
        assert [result.ok for result in first] == [True] * 110 + [False], "the item of a missing record fails alone"
        records = [MarkedRecord(marker, (h.person_type, target)) for marker, target in zip(markers, targets,
                                                                                             strict=True)]
        found = h.connector.find_mirrored(h.mirror_object, h.marker_field, records)
        assert found == {result.key: result.remote_id for result in first if result.ok}, \
            "every item written a moment ago is found, the one that was not written is not"
        again = h.connector.write(h.mirror_object, [mirror_op(h, m, t, title="Printer fixed", remote_id=found.get(m))
                                                    for m, t in zip(markers[:110], targets, strict=False)])
        assert all(result.ok for result in again) and [r.remote_id for r in again] == [r.remote_id for r in first[:110]]
        assert all(h.count_marked(marker) == 1 for marker in markers[:110]), "written twice, there once"
        assert h.count_marked(markers[-1]) == 0

    def test_association_reconciliation_yields_cursorless_pages_or_nothing(self, write_harness: WriteHarness) -> None:
        pages = list(write_harness.connector.reconcile_associations(write_harness.person_type))
        assert all(page.cursor is None and page.object_type == write_harness.person_type for page in pages)
