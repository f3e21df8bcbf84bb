"""Salesforce time formats.

Stored and served datetimes are UTC strings `YYYY-MM-DDTHH:MM:SS.mmm+0000`: fixed width, so comparing and
sorting the strings is comparing and sorting the instants (the SOQL evaluator relies on it). Dates are
`YYYY-MM-DD`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

_CANONICAL = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}\+0000")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
# what the REST API accepts for a datetime field value: date, optional time, optional fraction and zone
_INPUT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?"
)


def format_datetime(value: datetime) -> str:
    value = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


def parse_datetime(text: str) -> datetime | None:
    """A timezone-aware datetime from any ISO-8601 form Salesforce accepts (naive means UTC), else None."""
    match = _INPUT.fullmatch(text.strip())
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        micro = int((fraction or "0")[:6].ljust(6, "0"))
        value = datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0),
                         int(second or 0), micro, tzinfo=UTC)
    except ValueError:
        return None
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
        if hours > 23 or minutes > 59:
            return None
        value -= sign * timedelta(hours=hours, minutes=minutes)
    return value


def canonical_datetime(text: str) -> str | None:
    """`text` as a canonical Salesforce datetime string, or None when it is not a datetime."""
    if _CANONICAL.fullmatch(text):
        return text
    value = parse_datetime(text)
    return None if value is None else format_datetime(value)


def canonical_date(text: str) -> str | None:
    """`text` as `YYYY-MM-DD` (a datetime is cut to its UTC date), or None."""
    if _DATE.fullmatch(text):
        try:
            date.fromisoformat(text)
        except ValueError:
            return None
        return text
    value = parse_datetime(text)
    return None if value is None else value.date().isoformat()


def to_datetime(canonical: str) -> datetime:
    """The datetime of a canonical string (fast path, no validation)."""
    return datetime(int(canonical[0:4]), int(canonical[5:7]), int(canonical[8:10]), int(canonical[11:13]),
                    int(canonical[14:16]), int(canonical[17:19]), int(canonical[20:23]) * 1000, tzinfo=UTC)


def bulk_datetime(canonical: str) -> str:
    """Bulk API CSV spelling of a datetime: `2024-02-01T10:00:00.000Z`."""
    return canonical[:23] + "Z"
