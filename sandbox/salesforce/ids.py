"""Salesforce record ids: 15-character case-sensitive ids, their 18-character case-safe form, and new ids.

The 18-character form appends three characters that encode which of the 15 characters are upper-case
letters (five bits per character, alphabet A–Z0–5). With that suffix an id survives a case-insensitive
round trip, which is why Salesforce accepts an 18-character id in any case and repairs it.
"""

from __future__ import annotations

import re

_SUFFIX_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ID15 = re.compile(r"[0-9A-Za-z]{15}")
_ID18 = re.compile(r"[0-9A-Za-z]{18}")

#: key prefixes the emulator hands out for things that are not records
ORG_PREFIX = "00D"
QUERY_LOCATOR_PREFIX = "01g"
BULK_JOB_PREFIX = "750"


def checksum(id15: str) -> str:
    """The three-character case-safe suffix of a 15-character id."""
    suffix = []
    for chunk in range(3):
        bits = 0
        for position, char in enumerate(id15[chunk * 5:chunk * 5 + 5]):
            if "A" <= char <= "Z":
                bits |= 1 << position
        suffix.append(_SUFFIX_ALPHABET[bits])
    return "".join(suffix)


def to18(value: object) -> str | None:
    """The canonical 18-character id for a 15- or 18-character id (any case for 18), None if malformed."""
    if not isinstance(value, str):
        return None
    if len(value) == 15 and _ID15.fullmatch(value):
        return value + checksum(value)
    if len(value) != 18 or not _ID18.fullmatch(value):
        return None
    suffix = value[15:].upper()
    if checksum(value[:15]) == suffix:
        return value[:15] + suffix
    # the suffix says which letters are upper case: repair an id whose case was lost on the way
    chars = list(value[:15])
    for chunk, code in enumerate(suffix):
        bits = _SUFFIX_ALPHABET.find(code)
        if bits < 0:
            return None
        for position in range(5):
            index = chunk * 5 + position
            upper = bool(bits >> position & 1)
            if upper and not chars[index].isalpha():
                return None
            chars[index] = chars[index].upper() if upper else chars[index].lower()
    repaired = "".join(chars)
    return repaired + suffix if checksum(repaired) == suffix else None


def make_id(prefix: str, number: int, pod: str = "8d") -> str:
    """A new 18-character id: key prefix, a two-character 'pod' and a base-62 counter."""
    digits = []
    while number:
        number, rest = divmod(number, 62)
        digits.append(_BASE62[rest])
    body = "".join(reversed(digits)).rjust(10, "0")
    if len(body) > 10:
        raise ValueError("id counter overflow")
    id15 = f"{prefix}{pod}{body}"
    return id15 + checksum(id15)
