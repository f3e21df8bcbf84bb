"""Phone match keys: the ways CRM users write a number all read as its E.164 form (through `phonenumbers`), text
that is no number gives no key, and a number that recurs is parsed once."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from journeyhub.config import load_config_file, mappings_root
from journeyhub.journey import keys
from journeyhub.journey.identity_config import IdentityConfig
from journeyhub.journey.keys import phone_key

CONFIG: IdentityConfig = load_config_file(mappings_root(), "identity.yaml")  # default region IL, 8 digits at least
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE,
         PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER,
         PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL)
read = keys._e164.__wrapped__  # without the cache


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The texts handed to `phonenumbers.parse`, with the cache cleared so every number is read."""
    calls: list[str] = []
    library = phonenumbers.parse

    def counted(text: str, region: str | None = None, *args: Any, **kwargs: Any) -> phonenumbers.PhoneNumber:
        calls.append(text)
        return library(text, region, *args, **kwargs)

    monkeypatch.setattr(phonenumbers, "parse", counted)
    keys._e164.cache_clear()
    yield calls
    keys._e164.cache_clear()


# ------------------------------------------------------------------------------------------ as CRMs hold them
COMMON = {  # read with the default region IL (mappings/identity.yaml)
    "+972 50 123 4567": "+972501234567", "+1 415 555 0123": "+14155550123", "+972501234567": "+972501234567",
    "+44 (0) 20 7946 0958": "+442079460958", "00972 50 123 4567": "+972501234567", "050-1234567": "+972501234567",
    "03-1234567": "+97231234567", "972-3-1234567": "+97231234567", "972501234567": "+972501234567",
    "(050) 123-4567": "+972501234567", "+49 30 123456": "+4930123456", "1-415-555-0134": "+14155550134",
    "052.123.4567": "+972521234567", " +39 06 1234 5678 ": "+390612345678", "0039 0612345678": "+390612345678",
}
UNUSUAL = {  # extensions, other digits, URIs, brackets around the plus, no-break spaces
    "+972 50 123 4567 ext. 12": "+972501234567", "٠٥٠١٢٣٤٥٦٧": "+972501234567", "tel:+972-50-123-4567": "+972501234567",
    "(+972) 50 1234567": "+972501234567", "０５０１２３４５６７": "+972501234567", "050\u00a01234567": "+972501234567",
}
NOT_NUMBERS = ["", "n/a", "050-1234", "1-800-FLOWERS", "+0 50 123 4567", "0000000000", "12"]


def test_common_and_unusual_formats_read_as_their_e164_form() -> None:
    assert {phone: phone_key(phone, CONFIG) for phone in {**COMMON, **UNUSUAL}} == {**COMMON, **UNUSUAL}


def test_text_that_is_no_number_or_has_too_few_digits_gives_no_key() -> None:
    assert [phone_key(phone, CONFIG) for phone in [*NOT_NUMBERS, None]] == [None] * (len(NOT_NUMBERS) + 1)
    assert read("50-12345", "IL", 8) is None and read("50-12345", "IL", 7) == "+9725012345"


def test_a_plus_reading_keeps_a_possible_number() -> None:
    """Not valid (555 is no US area code), but possible: kept, so two records holding it still match."""
    assert phone_key("+1 555 555 5555", CONFIG) == "+15555555555"


def test_without_a_plus_a_valid_international_reading_beats_a_merely_possible_national_one() -> None:
    assert phone_key("4930123456", CONFIG) == "+4930123456"  # in Israel only possible, in Germany valid
    assert phone_key("9725012345678", CONFIG) == "+9725012345678"  # valid nowhere: the national reading stays


# ------------------------------------------------------------------------------- every region's numbers
def example_numbers() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    numbers = [(region, number) for region in REGIONS for kind in TYPES
               if (number := phonenumbers.example_number_for_type(region, kind)) is not None]
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        if (number := phonenumbers.example_number_for_non_geo_entity(code)) is not None:
            numbers.append(("001", number))
    return numbers


def test_every_regions_example_numbers_read_the_same_however_they_are_written() -> None:
    """E.164, international, `00`, RFC 3966, dialled from abroad with that country's prefix, national at home:
    one key, so the same person's records match whichever way each CRM holds the number."""
    for home, number in example_numbers():
        e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
        written = {e164, "00" + e164[1:], phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL),
                   phonenumbers.format_number(number, PhoneNumberFormat.RFC3966)}
        for region in ("IL", "US", "JP", home):
            if region == "001":
                continue
            forms = written | {phonenumbers.format_out_of_country_calling_number(number, region)}
            if region == home:
                forms.add(phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL))
            for phone in forms:
                assert read(phone, region, 0) == e164, (home, region, phone)


# -------------------------------------------------------------------------------------------- properties
JUNK = st.sampled_from(["a", "x", "ext. 12", " x5", "#", "*", ";ext=9", "tel:", ";phone-context=+972", "٠١٢", "０",
                        "\u00a0", "\t", "\u2011", "+", "++", "＋", "~", ",", ";", " (0) ", "/", "-", ".",
                        "1-800-FLOWERS"])
PREFIXES = st.sampled_from(["+", "00", "0", "", "+0", "000", "011", "810", "972", "1", "44 (0)", " + "])


@settings(max_examples=500, deadline=None)
@given(prefix=PREFIXES, chunks=st.lists(st.one_of(st.text("0123456789", max_size=20), JUNK), max_size=6),
       region=st.sampled_from(REGIONS), min_digits=st.integers(0, 9))
def test_any_text_gives_no_key_or_an_e164_key_that_fits_its_column(prefix: str, chunks: list[str], region: str,
                                                                     min_digits: int) -> None:
    phone = prefix + "".join(chunks)
    key = read(phone, region, min_digits)
    assert key is None or re.fullmatch(r"\+[1-9]\d{2,19}", key), key  # person_record.phone_key is 32 long
    if key is not None:
        assert sum(character.isdigit() for character in phone) >= min_digits


# ------------------------------------------------------------------------------------------------ cache
def test_a_number_that_recurs_is_parsed_once(parses: list[str]) -> None:
    for _ in range(3):
        assert phone_key("050-2345678", CONFIG) == "+972502345678"  # valid: one reading
        assert phone_key("050-1234567", CONFIG) == "+972501234567"  # only possible: the international one tried
    assert parses == ["050-2345678", "050-1234567", "+0501234567"]
