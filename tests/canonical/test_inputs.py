"""Write models: each field is the table's own definition, and text longer than its column is cut to fit when
it is free text and refused (`invalid_value`) when it names something."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from canonical.inputs import TEXT_LIMIT, WRITE_MODELS, PersonIn, TicketIn, quarantine_reason
from canonical.models import CANONICAL_TABLES, Association

TABLES = {**CANONICAL_TABLES, "association": Association}
WHEN = datetime(2025, 1, 1, tzinfo=UTC)
MINIMAL: dict[str, dict[str, Any]] = {  # the least each entity's mapping must give
    "person": {"last_name": "Cohen"}, "company": {}, "deal": {"opened_at": WHEN}, "ticket": {"opened_at": WHEN},
    "interaction": {"kind": "note", "occurred_at": WHEN}, "owner": {},
    "pipeline_stage": {"object_type": "deals", "pipeline_id": "default", "stage_id": "won"},
    "association": {"from_id": "hubspot:deals:1", "to_id": "hubspot:contacts:1"},
}


def limit_of(entity: str, name: str) -> int | None:
    """The longest text the column takes (a free-text column without a length: TEXT_LIMIT)."""
    column = TABLES[entity].__table__.c.get(name)  # type: ignore[attr-defined]
    length = getattr(column.type, "length", None) if column is not None else None
    if length is None and name in WRITE_MODELS[entity].free_text:
        return TEXT_LIMIT
    return length


def text_of(name: str, length: int) -> str:
    """A valid value of that length (an address for email fields)."""
    return "d" * (length - 12) + "@example.com" if name == "email" else "x" * length


TEXT_FIELDS = [(entity, name) for entity, model in WRITE_MODELS.items() for name, field in model.model_fields.items()
               if field.annotation in (str, str | None) and limit_of(entity, name) is not None]  # not vocabularies


def test_every_write_model_field_is_declared_by_its_table() -> None:
    """Same type, same default, same length: the write model adds checks, never a second definition."""
    for entity, model in WRITE_MODELS.items():
        table = TABLES[entity]
        for name, field in model.model_fields.items():
            if name == "custom" and "custom" not in table.model_fields:
                continue  # accepted from every mapping, stored only where the table has the column
            declared = table.model_fields[name]
            assert (field.annotation, field.default, field.metadata) == (
                declared.annotation, declared.default, declared.metadata), f"{entity}.{name}"


def test_the_vocabulary_is_enforced_and_stored_as_its_value() -> None:
    assert WRITE_MODELS["interaction"].model_validate(
        {"kind": "call", "channel": "phone", "direction": "inbound", "occurred_at": WHEN}).row()["channel"] == "phone"
    with pytest.raises(ValidationError) as caught:
        WRITE_MODELS["interaction"].model_validate({"kind": "call", "channel": "fax", "occurred_at": WHEN})
    assert quarantine_reason(caught.value)[0] == "invalid_value"


@pytest.mark.parametrize(("entity", "name"), TEXT_FIELDS)
def test_text_longer_than_its_column_is_cut_if_free_text_else_refused(entity: str, name: str) -> None:
    model, limit = WRITE_MODELS[entity], limit_of(entity, name)
    assert limit is not None
    fits = model.model_validate({**MINIMAL[entity], name: text_of(name, limit)}).row()
    assert fits[name] == text_of(name, limit)
    values = {**MINIMAL[entity], name: text_of(name, limit + 1)}
    if name in model.free_text:
        assert model.model_validate(values).row()[name] == "x" * (limit - 1) + "…"
    else:
        with pytest.raises(ValidationError) as caught:
            model.model_validate(values)
        reason, detail = quarantine_reason(caught.value)
        assert reason == "invalid_value" and detail.startswith(f"{name}: String should have at most {limit}")


def test_free_text_is_trimmed_before_it_is_measured_and_cut() -> None:
    padded = PersonIn.model_validate({"first_name": "  " + "D" * 200 + "  "}).row()
    assert padded["first_name"] == "D" * 200
    huge = PersonIn.model_validate({"last_name": " " + "כהן" * 70_000}).row()  # 210 KB of Hebrew
    assert len(huge["last_name"]) == 200 and huge["last_name"].startswith("כהן") and huge["last_name"][-1] == "…"


def test_a_full_name_composed_of_two_long_names_fits_its_column() -> None:
    row = PersonIn.model_validate({"first_name": "D" * 200, "last_name": "C" * 200}).row()
    assert len(row["full_name"]) == 400 and row["full_name"].startswith("D" * 200 + " C")


def test_bodies_are_cut_at_the_text_limit() -> None:
    row = TicketIn.model_validate({"opened_at": WHEN, "body": "b" * 10_000}).row()
    assert len(row["body"]) == TEXT_LIMIT


def test_constructing_a_write_model_validates_as_model_validate_does() -> None:
    assert PersonIn(first_name=" Dana ", email="dana@example.com").row() == PersonIn.model_validate(
        {"first_name": "Dana", "email": "dana@example.com"}).row()
    with pytest.raises(ValidationError) as caught:
        PersonIn(email="dana@@example.com")
    assert quarantine_reason(caught.value)[0] == "invalid_email"
    with pytest.raises(ValidationError) as caught:
        PersonIn(last_name="Cohen", nickname="D")  # type: ignore[call-arg]
    assert caught.value.errors()[0]["type"] == "extra_forbidden"
