"""Mapping with the write models' fast path gives the rows and quarantine reasons pydantic gives."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from journeyhub.config import load_mappings, mappings_root
from journeyhub.ingest.mapper import Mapper, MappingError

EVENTS = load_mappings(mappings_root(), "hubspot")["email_events"]
BASE = {"id": "e1", "created": 1714564800123, "type": "DELIVERED", "recipient": "Dana@Example.co.il",
        "portalId": 1, "appId": 2, "emailCampaignId": 77, "sentBy": {"id": "s1", "created": 1714564800000}}
CASES: list[dict[str, Any]] = [
    {}, {"type": "CLICK", "url": "https://example.co.il/x"}, {"type": "BOUNCE", "category": "HARD_BOUNCE"},
    {"type": "OPEN", "emailCampaignId": None}, {"url": "  padded  "}, {"category": "x" * 5000},
    {"type": "EXPLODED"}, {"created": None}, {"created": "2024-05-01T12:00:00Z"}, {"created": "soon"},
    {"recipient": None}, {"recipient": "not an email"}, {"emailCampaignId": {"nested": [1]}},
]


def outcome(mapper: Mapper, document: dict[str, Any], clean: bool) -> Any:
    try:
        record = mapper.map("1-e1", document, clean=clean)
    except MappingError as error:
        return ("quarantined", error.reason, error.detail)
    return [(row.entity, row.key, row.row, row.people, row.linked) for row in record.rows]


def pydantic_only(mapper: Mapper) -> Mapper:
    slow = Mapper(mapper.system, mapper.spec)
    slow._main = replace(slow._main, fast=None)
    return slow


@pytest.mark.parametrize("change", CASES)
@pytest.mark.parametrize("clean", [True, False])
def test_email_events_map_as_with_pydantic_alone(change: dict[str, Any], clean: bool) -> None:
    fast = Mapper("hubspot", EVENTS)
    assert fast._main.fast is not None
    document = {**BASE, **change}
    expected = outcome(pydantic_only(fast), document, clean)
    assert repr(outcome(fast, document, clean)) == repr(expected)  # repr: types too (1 vs 1.0, enum vs text)
