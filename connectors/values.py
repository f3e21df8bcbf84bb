"""Write-back pieces shared by the connectors whose APIs speak flat JSON records and upsert mirrored items
by the marker (Salesforce, Dataverse)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from connectors.base import MISSING, FieldType, MirrorMode, Page


def json_value(field_type: FieldType, value: Any, datetime_text: Callable[[datetime], str]) -> Any:
    """A hub value as a JSON API takes it: `datetime_text(aware UTC datetime)` for datetimes, numbers as
    numbers, text as text, None as null."""
    if value is None:
        return None
    if field_type == "datetime" and isinstance(value, datetime):
        return datetime_text(value.astimezone(UTC))
    if field_type == "number":
        return value
    return str(value)


def flat_field(raw: dict[str, Any] | None, field: str) -> Any:
    """A field of a flat JSON record (fields at the top level), MISSING when the record does not carry it."""
    if not raw:
        return MISSING
    return raw.get(field, MISSING)


class FlatRecordWriteback:
    """The part of the write-back protocol such CRMs share; `datetime_text` is the CRM's datetime format."""

    datetime_text: Callable[[datetime], str]

    def format_value(self, field_type: FieldType, value: Any) -> Any:
        return json_value(field_type, value, self.datetime_text)

    def field_value(self, raw: dict[str, Any] | None, field: str) -> Any:
        return flat_field(raw, field)

    def mirror_mode(self, object_type: str) -> MirrorMode:
        return "upsert"

    def reconcile_associations(self, object_type: str, *, fields: Sequence[str] | None = None) -> Iterator[Page]:
        """Nothing to do: associations are lookups on the records, and changing one marks the record modified,
        so incremental reads see it."""
        yield from ()
