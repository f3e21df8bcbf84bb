"""Column types that behave the same on SQLite and PostgreSQL.

Timestamps are the contract's weak spot across dialects: PostgreSQL has `timestamptz`, SQLite has text.
`UTCDateTime` stores UTC ISO-8601 text with a `Z` on SQLite (fixed width, so text order is time order and
analysts read the same format the views document) and `timestamptz` on PostgreSQL. Python always sees
timezone-aware UTC datetimes.

Values a database cannot store (docs/schema.md, "Values a database cannot store") are cleaned by one rule,
here, for every table: NUL (U+0000) is removed from text and from JSON strings and keys (PostgreSQL's text
and jsonb refuse it; SQLite would keep it, so both drop it for the same rows everywhere), and a lone UTF-16
surrogate (U+D800–U+DFFF, which no UTF-8 database or JSON encoder takes) becomes U+FFFD. Everything else —
RTL marks, emoji, quotes, backslashes, SQL-looking text — is stored as it came.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, DateTime
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

ISO_STORAGE = "%(year)04d-%(month)02d-%(day)02dT%(hour)02d:%(minute)02d:%(second)02d.%(microsecond)06dZ"
ISO_REGEXP = r"(\d+)-(\d+)-(\d+)T(\d+):(\d+):(\d+)(?:\.(\d+))?Z?"
#: SQLite strftime pattern of the same text, used inside view SQL
SQLITE_ISO_FORMAT = "%Y-%m-%dT%H:%M:%fZ"


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC timestamp; ISO-8601 text on SQLite, timestamptz on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(SQLITE_DATETIME(storage_format=ISO_STORAGE, regexp=ISO_REGEXP))
        return dialect.type_descriptor(DateTime(timezone=True))

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: canonical timestamps must be timezone-aware UTC")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: JSON documents: JSONB on PostgreSQL (indexable, compact), JSON text on SQLite.
JSONDocument = JSON().with_variant(postgresql.JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


NUL = "\x00"
REPLACEMENT = "\ufffd"
_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str) -> str:
    """`value` without NUL and with lone surrogates replaced (the same object when already clean: the
    checks are a scan each, so every value of every record can afford them)."""
    if NUL in value:
        value = value.replace(NUL, "")
    if not value.isascii() and _SURROGATE.search(value):
        value = _SURROGATE.sub(REPLACEMENT, value)
    return value


def clean_json(value: Any) -> Any:
    """A JSON-like value with every string (and key) cleaned by `clean_text`."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(key) if isinstance(key, str) else key: clean_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(item) for item in value]
    return value


def needs_cleaning(value: Any) -> bool:
    """Whether a JSON-like value holds NUL or a lone surrogate (one orjson serialisation, ~0.3 µs for a small
    document, instead of walking it in Python)."""
    try:
        return b"\\u0000" in orjson.dumps(value, default=str)
    except orjson.JSONEncodeError:
        return True


def json_bytes(value: Any) -> bytes:
    """`value` as JSON (orjson; other types as their `str`), cleaned first only when it needs it: orjson
    refuses lone surrogates, and writes NUL as the escape `\\u0000` — one serialisation for a clean value."""
    try:
        body = orjson.dumps(value, default=str)
    except orjson.JSONEncodeError:
        return orjson.dumps(clean_json(value), default=str)
    if b"\\u0000" in body:
        return orjson.dumps(clean_json(value), default=str)
    return body


def json_text(value: Any) -> str:
    return json_bytes(value).decode()
