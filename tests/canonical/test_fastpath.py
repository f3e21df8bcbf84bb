"""The write models' fast path gives exactly what pydantic gives, or leaves the values to pydantic."""

from __future__ import annotations

import enum
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from canonical.inputs import CLEAN, FAST_ROWS, WRITE_MODELS
from canonical.vocabulary import Channel, Direction, InteractionKind, Outcome

FAST = sorted(entity for entity, row in FAST_ROWS.items() if row is not None)
WORDS = sorted({member.value for vocabulary in (Channel, Direction, InteractionKind, Outcome)
                for member in vocabulary} | {"open", "won", "lost", "contact", "lead"})

texts = st.one_of(
    st.text(max_size=12),
    st.sampled_from(["", " ", "a ", " a", "\ta", "a\u00a0", "\u2003x", "x\x1c", "\x85", "ok", "Ωmega", "e\u0301"]),
    st.sampled_from(WORDS),
    st.builds(lambda n, pad: "x" * n + pad, st.sampled_from([7, 8, 9, 63, 64, 65, 199, 200, 201, 320, 321, 400, 401,
                                                             999, 1000, 1001, 3999, 4000, 4001]),
              st.sampled_from(["", " ", "y"])),
)
times = st.one_of(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=3))])),
    st.datetimes(),  # naive
    st.sampled_from(["2024-01-02T03:04:05Z", "2024-01-02", 1700000000]),
)
numbers = st.one_of(st.floats(), st.integers(min_value=-(2 ** 70), max_value=2 ** 70),
                    st.sampled_from([0.0, -0.0, 1e-300, 0.5, float("inf"), float("nan"), "1.5", "x"]))
scalars = st.one_of(st.none(), texts, numbers, st.booleans())
documents = st.one_of(
    st.dictionaries(st.one_of(texts, st.integers(0, 3)), st.one_of(scalars, st.lists(scalars, max_size=2),
                                                                   st.dictionaries(texts, scalars, max_size=2)),
                    max_size=3),
    st.lists(scalars, max_size=2),
)
any_value = st.one_of(st.none(), texts, times, numbers, st.booleans(), documents)


plain_texts = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Zs", "Cc"]), max_size=10)
plain = {"text": plain_texts, "time": st.datetimes(timezones=st.just(UTC)), "bool": st.booleans(),
         "number": st.floats(allow_nan=False, allow_infinity=False, min_value=0.001),
         "int": st.integers(-10, 10 ** 6),
         "document": st.dictionaries(plain_texts, st.one_of(st.none(), plain_texts, st.integers(), st.booleans()),
                                     max_size=3)}
odd = {"text": texts, "time": times, "bool": any_value, "number": numbers, "int": numbers, "document": documents}


def values_for(entity: str) -> st.SearchStrategy[dict[str, Any]]:
    """Values a mapping could hand the model: plainly valid values of each field's type; odd ones (padded,
    too long, converted by the model, of another type) mixed in, some fields left out, sometimes a field
    the model does not have; or plain values but one odd."""
    model = WRITE_MODELS[entity]
    plain_fields, odd_fields = {}, {}
    for name, field in model.model_fields.items():
        annotation = str(field.annotation)
        enum_type = next((item for item in (field.annotation, *getattr(field.annotation, "__args__", ()))
                          if isinstance(item, type) and issubclass(item, enum.Enum)), None)
        kind = ("word" if enum_type is not None else "time" if "datetime" in annotation
                else "document" if "dict" in annotation else "number" if "float" in annotation
                else "int" if "int" in annotation else "bool" if "bool" in annotation else "text")
        if enum_type is not None:
            words = st.sampled_from([member.value for member in enum_type])
            plain_fields[name], odd_fields[name] = words, st.one_of(words, texts)
        else:
            plain_fields[name], odd_fields[name] = plain[kind], odd[kind]
        odd_fields[name] = st.one_of(*[plain_fields[name]] * 6, odd_fields[name], any_value)
    left_out = st.dictionaries(st.sampled_from(sorted(plain_fields)), st.booleans(), max_size=3)

    def pick(chosen: dict[str, Any], present: dict[str, bool], more: dict[str, Any]) -> dict[str, Any]:
        return {name: value for name, value in chosen.items() if present.get(name, True)} | more

    extra = st.one_of(st.just({}), st.just({}), st.just({}),
                      st.dictionaries(st.sampled_from(["nope", "id", "entity"]), any_value, max_size=1))
    one_odd = st.sampled_from(sorted(plain_fields)).flatmap(lambda name: st.builds(
        lambda chosen, value: chosen | {name: value}, st.fixed_dictionaries(plain_fields),
        st.one_of(odd_fields[name], any_value)))
    return st.one_of(st.builds(pick, st.fixed_dictionaries(plain_fields), left_out, st.just({})),
                     st.builds(pick, st.fixed_dictionaries(odd_fields), left_out, extra), one_odd, one_odd)


def same(left: Any, right: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would hide a conversion)."""
    if type(left) is not type(right):
        return False
    if isinstance(left, dict):
        return left.keys() == right.keys() and list(left) == list(right) and all(
            same(left[key], right[key]) for key in left)
    if isinstance(left, list):
        return len(left) == len(right) and all(same(a, b) for a, b in zip(left, right, strict=True))
    if isinstance(left, datetime):
        return left == right and left.tzinfo == right.tzinfo
    return left == right


def pydantic_row(entity: str, values: dict[str, Any]) -> dict[str, Any] | None:
    try:
        return WRITE_MODELS[entity].model_validate(values, context=CLEAN).row()
    except ValueError:  # pydantic's ValidationError
        return None


def test_the_fast_path_covers_the_models_without_validators_of_their_own() -> None:
    assert FAST == ["association", "company", "deal", "interaction", "owner", "pipeline_stage", "ticket"]
    assert FAST_ROWS["person"] is None  # email and name rules: always pydantic


@pytest.mark.parametrize("entity", FAST)
@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_fast_rows_are_pydantic_rows(entity: str, data: st.DataObject) -> None:
    values = data.draw(values_for(entity))
    fast = FAST_ROWS[entity](values)  # type: ignore[misc]
    if fast is None:
        return  # left to pydantic: valid or not, it decides
    expected = pydantic_row(entity, values)
    assert expected is not None, f"fast path accepted values pydantic refuses: {values!r}"
    assert same(fast, expected), (values, fast, expected)


def test_a_plain_email_event_takes_the_fast_path() -> None:
    values = {"kind": "marketing_email", "channel": "email", "direction": "outbound", "outcome": "delivered",
              "occurred_at": datetime(2024, 5, 1, 12, 0, tzinfo=UTC), "custom": {"campaign_id": 101, "url": None}}
    fast = FAST_ROWS["interaction"](values)  # type: ignore[misc]
    assert fast is not None
    assert same(fast, pydantic_row("interaction", values))
    assert fast["custom"] is not values["custom"]  # a copy, as pydantic makes


@pytest.mark.parametrize("change", [
    {"direction": "sideways"},                 # not a vocabulary word
    {"outcome": " delivered"},                 # padded
    {"subject": "x" * 1001},                   # cut by the model
    {"body": "x" * 4001},                      # cut to TEXT_LIMIT
    {"score": 1},                              # an int the model makes a float
    {"score_max": 0.0},                        # not > 0
    {"occurred_at": "2024-05-01T12:00:00Z"},   # text the model parses
    {"occurred_at": None},                     # required
    {"custom": {"list": [1]}},                 # a nested value
    {"unknown": 1},                            # not a field
])
def test_what_pydantic_would_change_or_refuse_is_left_to_it(change: dict[str, Any]) -> None:
    values = {"kind": "marketing_email", "channel": "email", "occurred_at": datetime(2024, 5, 1, tzinfo=UTC)}
    assert FAST_ROWS["interaction"](values) is not None  # type: ignore[misc]
    assert FAST_ROWS["interaction"]({**values, **change}) is None  # type: ignore[misc]
