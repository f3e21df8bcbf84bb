"""Small helpers shared by the HubSpot emulator modules: time formats, value parsing, cursors."""

from __future__ import annotations

import base64
import binascii
import math
import re
import time
from datetime import UTC, datetime, timedelta
from functools import lru_cache

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DIGITS = re.compile(r"-?\d+")
_CANONICAL = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def iso_ms(ms: int) -> str:
    """Epoch milliseconds → HubSpot's timestamp format, e.g. `2024-02-02T03:04:05.123Z`."""
    t = time.gmtime(ms // 1000)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ" % (  # noqa: UP031 - twice as fast as strftime/f-strings
        t.tm_year, t.tm_mon, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec, ms % 1000)


def is_canonical(value: str) -> bool:
    """Already in HubSpot's `YYYY-MM-DDTHH:MM:SS.mmmZ` form (so it can be stored as given)."""
    return len(value) == 24 and _CANONICAL.fullmatch(value) is not None


def date_str(ms: int) -> str:
    return f"{_EPOCH + timedelta(milliseconds=ms):%Y-%m-%d}"


@lru_cache(maxsize=262_144)
def parse_time_ms(value: str | None) -> int | None:
    """Epoch-millis string, ISO-8601 datetime (any offset, `Z`) or `YYYY-MM-DD` → epoch ms; None if invalid."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DIGITS.fullmatch(text):
        return int(text)
    try:
        if len(text) == 10:
            moment = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(text)
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        return None
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1000 + delta.microseconds // 1000


@lru_cache(maxsize=262_144)
def parse_number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def parse_bool(value: str | None, default: bool = False) -> bool:
    """Query-string booleans: the Python client sends `True`/`False`, others `true`/`false`/`1`/`0`."""
    if value is None or value == "":
        return default
    return value.strip().lower() in ("true", "1", "yes")


def encode_cursor(value: str) -> str:
    """An opaque paging token (urlsafe base64, no padding)."""
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(token: str) -> str | None:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def split_list(values: list[str]) -> list[str]:
    """`properties=a&properties=b` and `properties=a,b` both mean [a, b] (order kept, duplicates dropped)."""
    seen: dict[str, None] = {}
    for value in values:
        for part in value.split(","):
            part = part.strip()
            if part:
                seen[part] = None
    return list(seen)
