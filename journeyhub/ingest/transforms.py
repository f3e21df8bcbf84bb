"""The closed set of named transforms a mapping may apply to a value (no expressions in YAML).

Each transform takes the value (and its optional argument) and returns the new value; `None` passes
through untouched so optional fields stay optional. A transform that cannot convert raises
`TransformError`, which quarantines the record with reason `invalid_value`.
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Callable
from datetime import UTC, date, datetime, time
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit


class TransformError(ValueError):
    pass


def parse_datetime(value: Any) -> datetime | None:
    """Vendor timestamps: ISO-8601 (`Z`, `+0000`, `+00:00`), dates, or epoch milliseconds."""
    if type(value) is int:  # epoch milliseconds (every email event's `created`): the one test it needs
        return datetime.fromtimestamp(value / 1000, UTC)
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return datetime.fromtimestamp(int(value) / 1000, UTC)
    if isinstance(value, str):
        text = value.strip()
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(), UTC)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise TransformError(f"not a timestamp: {value!r}") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise TransformError(f"not a timestamp: {value!r}")


def date_utc(value: Any) -> datetime | None:
    """A date (or the date part of a timestamp) as 00:00 UTC of that date: how CRMs' close dates count."""
    parsed = parse_datetime(value)
    if parsed is None:
        return None
    if isinstance(value, str) and len(value.strip()) > 10:
        parsed = parsed.astimezone(UTC)
    return datetime.combine(parsed.date(), time(), UTC)


def to_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TransformError(f"not a number: {value!r}") from None


def to_int(value: Any) -> int | None:
    number = to_float(value)
    return None if number is None else int(number)


def to_bool(value: Any) -> bool | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in {"true", "1", "yes", "y"}:
        return True
    if text in {"false", "0", "no", "n"}:
        return False
    raise TransformError(f"not a boolean: {value!r}")


TAG = re.compile(r"<[^>]+>")
SPACES = re.compile(r"\s+")


def html_to_text(value: Any) -> str | None:
    if value is None:
        return None
    return SPACES.sub(" ", html.unescape(TAG.sub(" ", str(value)))).strip()


def normalize_email(value: Any) -> str | None:
    """Trim, Unicode-normalise (NFKC) and case-fold an address: the identity key of an email."""
    if value is None:
        return None
    return _email_key(value if type(value) is str else str(value))


@lru_cache(maxsize=65_536)
def _email_key(text: str) -> str | None:
    """Cached: an address recurs on every email event, activity and association that names it."""
    return unicodedata.normalize("NFKC", text).strip().casefold() or None


def domain(value: Any) -> str | None:
    """The host of a web address, without `www.`: `https://www.acme.co.il/about` → `acme.co.il`."""
    if value is None or str(value).strip() == "":
        return None
    text = str(value).strip().lower()
    host = urlsplit(text if "://" in text else f"http://{text}").hostname or ""
    return host.removeprefix("www.") or None


def _split(value: Any, separator: str | None = None) -> list[str] | None:
    if value is None or value == "":
        return None
    return [part.strip() for part in str(value).split(separator or ";") if part.strip()]


def _first(value: Any, _arg: Any = None) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _truncate(value: Any, limit: Any = 1000) -> Any:
    if value is None:
        return None
    text = str(value)
    return text if len(text) <= int(limit) else text[: int(limit) - 1] + "…"


def _text(fn: Callable[[str], str]) -> Callable[[Any, Any], Any]:
    return lambda value, _arg=None: None if value is None else fn(str(value))


TRANSFORMS: dict[str, Callable[[Any, Any], Any]] = {
    "strip": _text(str.strip),
    "lower": _text(str.lower),
    "upper": _text(str.upper),
    "casefold": _text(str.casefold),
    "datetime": lambda value, _arg=None: parse_datetime(value),
    "date_utc": lambda value, _arg=None: date_utc(value),
    "float": lambda value, _arg=None: to_float(value),
    "int": lambda value, _arg=None: to_int(value),
    "bool": lambda value, _arg=None: to_bool(value),
    "html_to_text": lambda value, _arg=None: html_to_text(value),
    "email_key": lambda value, _arg=None: normalize_email(value),
    "domain": lambda value, _arg=None: domain(value),
    "split": _split,
    "first": _first,
    "truncate": _truncate,
    "string": lambda value, _arg=None: None if value is None else str(value),
}


def step(named: tuple[str, Any]) -> Callable[[Any], Any]:
    """One (name, argument) step of a mapping as a function of the value, looked up once: `apply` per call."""
    name, argument = named
    transform = TRANSFORMS[name]
    scalar = SCALAR.get(name)  # a one-argument function: the same result, one call fewer per value
    if scalar is not None:
        return lambda value: [scalar(item) for item in value] if isinstance(value, list) else scalar(value)
    if name == "split":
        return lambda value: apply("split", value, argument)
    if name == "first":
        return lambda value: transform(value, argument)

    def one(value: Any) -> Any:
        if isinstance(value, list):
            return [transform(item, argument) for item in value]
        return transform(value, argument)

    return one


SCALAR: dict[str, Callable[[Any], Any]] = {"datetime": parse_datetime, "date_utc": date_utc, "float": to_float,
                                           "int": to_int, "bool": to_bool, "html_to_text": html_to_text,
                                           "email_key": normalize_email, "domain": domain}


def apply(name: str, value: Any, argument: Any = None) -> Any:
    """A transform applies to each item of a list; `split` flattens; `first` takes the list as a whole."""
    if isinstance(value, list) and name == "split":
        return [part for item in value for part in (_split(item, argument) or [])]
    if isinstance(value, list) and name != "first":
        return [TRANSFORMS[name](item, argument) for item in value]
    return TRANSFORMS[name](value, argument)
