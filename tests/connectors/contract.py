"""The contract every connector passes, run against its emulator over loopback with the real SDK.

A CRM's test module subclasses `ConnectorContract` and provides one fixture, `harness`, returning a
`Harness` for a person object type whose emulator holds at least a few hundred records. Each CRM runs it
against both org profiles (`full` and a `plain` org with history from before install), reading the fields
the packaged mapping reads as the schema check leaves them for that org (`checked_fields`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from types import GeneratorType

import pytest

from connectors.base import Connector, Page
from connectors.errors import AuthError, ConnectorError, FatalError, RetriableError
from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.schema import compare, describe_names, requested_fields, source_fields


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
        Salesforce's recycle bin) comes as a tombstone that keeps its data, so it counts as history."""
        if not harness.keeps_deleted:
            pytest.skip("this CRM keeps nothing of a deleted record")
        victim = sorted(harness.live_ids())[7]
        harness.delete(victim)
        harness.settle()
        pages, _ = drain(harness.connector.read(harness.object_type, None, full=True, fields=harness.fields))
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
