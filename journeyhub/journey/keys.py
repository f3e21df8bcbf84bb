"""Match keys: the normalised forms of emails and phones that identity rules compare."""

from __future__ import annotations

import hashlib
import unicodedata

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
    digits = sum(character.isdigit() for character in phone)
    if digits < config.phone.min_digits:
        return None
    text = phone.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    candidates = [_parse(text, config.phone.default_region)]
    if not text.startswith("+"):  # "972501234567", "1-415-555-0134": international without the plus
        candidates.append(_parse("+" + "".join(c for c in text if c.isdigit()), config.phone.default_region))
    numbers = [number for number in candidates if number is not None]
    chosen = next((n for n in numbers if phonenumbers.is_valid_number(n)), None) or next(
        (n for n in numbers if phonenumbers.is_possible_number(n)), None)
    return phonenumbers.format_number(chosen, phonenumbers.PhoneNumberFormat.E164) if chosen else None


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
