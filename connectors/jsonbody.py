"""Decoding a CRM's JSON answer: orjson for speed, the standard library for what orjson refuses but JSON allows.

JSON may carry an escaped lone surrogate (`"\\ud800"`: half of a UTF-16 pair, e.g. a name cut in the middle of
an emoji by another system). orjson rejects the whole document for it; one such value must not fail a page of
thousands of records, so that rare page is decoded by `json` instead (the canonical layer then replaces the
lone surrogate, see docs/schema.md)."""

from __future__ import annotations

import json
from typing import Any

import orjson


def decode(body: bytes) -> Any:
    """`body` as JSON; raises ValueError when it is not JSON at all."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body)
