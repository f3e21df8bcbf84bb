"""Match keys: the normalised forms of emails and phones that identity rules compare."""

from __future__ import annotations

import hashlib
import unicodedata
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
    """Cached: parsing is the costliest step of loading a person, and shared numbers (a switchboard, the
    same person in three CRMs) recur."""
    digits = sum(character.isdigit() for character in phone)
    if digits < min_digits:
        return None
    text = phone.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    if text.startswith("+"):  # one reading, kept when it is valid or at least possible (the cheaper test first)
        number = _parse(text, region)
        keep = number is not None and (phonenumbers.is_possible_number(number) or phonenumbers.is_valid_number(number))
        return _format(number) if keep else None  # type: ignore[arg-type]
    candidates = [lambda: _parse(text, region),  # national, else international without the plus ("9725…")
                  lambda: _parse("+" + "".join(c for c in text if c.isdigit()), region)]
    possible = None
    for parse in candidates:  # parsed lazily: the first valid reading wins, most numbers need one parse
        number = parse()
        if number is None:
            continue
        if phonenumbers.is_valid_number(number):
            return _format(number)
        if possible is None and phonenumbers.is_possible_number(number):
            possible = number
    return _format(possible) if possible is not None else None


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
