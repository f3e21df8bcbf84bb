"""A write model's checks as one plain function, for the values that are plainly valid.

Validating a mapped record with its pydantic write model (`canonical.inputs`) and dumping the result cost
~5 µs, a third of mapping an email event. Most records are plainly valid: their values already have the
exact type the model asks for, need no stripping, cutting or cleaning, and name vocabulary words as they
are. For those, `fast_row(model)` gives the dumped row directly; for anything else — a value that pydantic
would convert, strip, cut, refuse, or that this module does not know — it says "maybe" (None) and the caller
validates with pydantic, which gives the cleaned values or the quarantine reason. So it never decides that a
record is invalid, and what it accepts is exactly what the model would produce (tests/canonical/
test_fastpath.py checks this over generated valid and invalid values). Used only for values read off a
document known to be clean (`canonical.inputs.CLEAN`): the cleaning of NUL and lone surrogates stays in
pydantic's path.
"""

from __future__ import annotations

import enum
import math
import types
import typing
from collections.abc import Callable
from datetime import datetime
from typing import Any

from annotated_types import Gt, MaxLen
from pydantic import BaseModel
from pydantic.fields import FieldInfo

MAYBE: Any = object()  # a value the fast path leaves to pydantic
Check = Callable[[Any], Any]  # the value as the model stores it, or MAYBE
FastRow = Callable[[dict[str, Any]], dict[str, Any] | None]
_SCALARS = (str, int, float, bool, type(None))


def fast_row(model: type[BaseModel], free_text_limits: dict[str, int]) -> FastRow | None:
    """`values -> model.model_validate(values, context=CLEAN).model_dump()` for plainly valid values, else
    None ("maybe invalid"); None as a whole for a model with validators of its own (the person's email and
    name rules) or a field type it does not know. `free_text_limits`: the lengths free text is cut to."""
    decorators = model.__pydantic_decorators__
    if (decorators.field_validators or decorators.validators or decorators.field_serializers
            or decorators.model_serializers or set(decorators.model_validators) - {"_fit_free_text"}
            or model.model_config.get("extra") != "forbid" or not model.model_config.get("str_strip_whitespace")
            or not model.model_config.get("use_enum_values")):
        return None
    checks: dict[str, Check] = {}
    defaults: dict[str, Any] = {}
    required: set[str] = set()
    for name, field in model.model_fields.items():
        check = _field_check(field, free_text_limits.get(name))
        if check is None:
            return None
        checks[name] = check
        if field.is_required():
            required.add(name)
        defaults[name] = None if field.is_required() else field.get_default(call_default_factory=True)

    def row(values: dict[str, Any]) -> dict[str, Any] | None:
        if not required <= values.keys():
            return None
        out = defaults.copy()  # the model's field order, defaults where the mapping gave nothing
        for name, value in values.items():
            check = checks.get(name)
            if check is None:  # an unknown field: refused by the model
                return None
            value = check(value)
            if value is MAYBE:
                return None
            out[name] = value
        return out

    return row


def _field_check(field: FieldInfo, free_text_limit: int | None) -> Check | None:
    """The check of one field's values, from its annotation and constraints; None when unknown."""
    annotation, optional = _unwrap(field.annotation)
    limit: int | None = free_text_limit
    above: float | None = None
    for item in field.metadata:
        if isinstance(item, MaxLen):
            limit = item.max_length if limit is None else min(limit, item.max_length)
        elif isinstance(item, Gt) and isinstance(item.gt, int | float):
            above = float(item.gt)
        elif type(item).__module__.startswith("annotated_types"):
            return None  # a constraint not handled here
    if annotation is str:
        return _text(optional, limit)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        if not all(type(member.value) is str for member in annotation):
            return None
        return _word({member.value for member in annotation}, optional)
    if limit is not None:
        return None  # a length on something other than text
    if annotation is datetime:
        return _typed(datetime, optional)
    if annotation is bool:
        return _typed(bool, optional)
    if annotation is int:
        return _typed(int, optional)
    if annotation is float:
        return _number(optional, above)
    if above is not None:
        return None
    if typing.get_origin(annotation) is dict and typing.get_args(annotation) == (str, Any):
        return _document(optional)
    return None


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """(`X`, True) for `X | None`, (`X`, False) for `X`."""
    if typing.get_origin(annotation) in (types.UnionType, typing.Union):
        members = [item for item in typing.get_args(annotation) if item is not type(None)]
        if len(members) == 1 and len(members) < len(typing.get_args(annotation)):
            return members[0], True
    return annotation, False


def _text(optional: bool, limit: int | None) -> Check:
    def check(value: Any) -> Any:
        if type(value) is str:
            if value and (value[0].isspace() or value[-1].isspace()):
                return MAYBE  # stripped by the model (and Python's whitespace covers pydantic's)
            return value if limit is None or len(value) <= limit else MAYBE
        return None if value is None and optional else MAYBE

    return check


def _word(words: set[str], optional: bool) -> Check:
    def check(value: Any) -> Any:
        if type(value) is str and value in words:
            return value
        return None if value is None and optional else MAYBE

    return check


def _typed(kind: type, optional: bool) -> Check:
    def check(value: Any) -> Any:
        if type(value) is kind:
            return value
        return None if value is None and optional else MAYBE

    return check


def _number(optional: bool, above: float | None) -> Check:
    def check(value: Any) -> Any:
        if type(value) is float and math.isfinite(value) and (above is None or value > above):
            return value
        return None if value is None and optional else MAYBE

    return check


def _document(optional: bool) -> Check:
    """Custom fields: a dict of plain scalars under unpadded text keys, copied as the model copies it."""
    def check(value: Any) -> Any:
        if type(value) is dict:
            for key, item in value.items():
                if (type(key) is not str or (key and (key[0].isspace() or key[-1].isspace()))
                        or type(item) not in _SCALARS or (type(item) is float and not math.isfinite(item))):
                    return MAYBE
            return dict(value)
        return None if value is None and optional else MAYBE

    return check
