"""Match keys: the normalised forms of emails and phones that identity rules compare."""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterator
from functools import lru_cache

import phonenumbers

from journeyhub.journey.identity_config import IdentityConfig


def email_key(email: str | None, config: IdentityConfig) -> str | None:
    """`email:` + the address trimmed, Unicode-normalised and case-folded; None when there is none."""
    if not email:
        return None
    text = unicodedata.normalize(config.email.unicode_form, email).strip()
    if config.email.casefold:
        text = text.casefold()
    return f"email:{text}" if text else None


def phone_key(phone: str | None, config: IdentityConfig) -> str | None:
    """The number in E.164 (`+972501234567`), reading numbers without a country code in the default
    region; None for anything that is not a plausible number."""
    if not phone:
        return None
    return _e164(phone, config.phone.default_region, config.phone.min_digits)


@lru_cache(maxsize=16_384)
def _e164(phone: str, region: str, min_digits: int) -> str | None:
    """`phonenumbers`' reading of the text, remembered: numbers recur (a switchboard shared by a company's
    people, one person in three CRMs, a changed record read again), and parsing is the costliest step of
    preparing a person record.

    Fewer than `min_digits` digits is no number. `00` in front is the international prefix. Text with a plus
    has one reading, kept when it is a possible number (or a valid one). Text without one is read as a national
    number of `region`, else as international digits that lost their plus ("9725…"): the first valid reading
    wins, else the first possible one."""
    if len(phone) < min_digits or sum(character.isdigit() for character in phone) < min_digits:
        return None
    text = phone.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):
        number = _parse(text, region)
        keep = number is not None and (phonenumbers.is_possible_number(number) or phonenumbers.is_valid_number(number))
        return _format(number) if keep else None  # type: ignore[arg-type]
    possible = None
    for number in _readings(text, region):
        if number is None:
            continue
        if phonenumbers.is_valid_number(number):
            return _format(number)
        if possible is None and phonenumbers.is_possible_number(number):
            possible = number
    return _format(possible) if possible is not None else None


def _readings(text: str, region: str) -> Iterator[phonenumbers.PhoneNumber | None]:
    """A national number, else international digits without their plus; parsed only when asked for (the first
    reading is the only one most numbers need)."""
    yield _parse(text, region)
    yield _parse("+" + "".join(character for character in text if character.isdigit()), region)


def _format(number: phonenumbers.PhoneNumber) -> str:
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _parse(text: str, region: str) -> phonenumbers.PhoneNumber | None:
    try:
        return phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None


def keys_fingerprint(config: IdentityConfig) -> str:
    """Changes when the normalisation settings change, so stored keys are recomputed."""
    email, phone = config.email, config.phone
    text = f"{email.unicode_form}|{email.casefold}|{phone.default_region}|{phone.min_digits}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]
