"""Phone match keys: the fast reading of common formats gives exactly what `phonenumbers.parse` gives, and the
common formats really take it."""

from __future__ import annotations

from collections.abc import Iterator

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import PhoneNumberFormat, PhoneNumberType

from journeyhub.config import load_config_file, mappings_root
from journeyhub.journey import keys
from journeyhub.journey.identity_config import IdentityConfig
from journeyhub.journey.keys import phone_key

CONFIG: IdentityConfig = load_config_file(mappings_root(), "identity.yaml")
REGIONS = sorted(phonenumbers.SUPPORTED_REGIONS)
DEFAULT_REGIONS = ("IL", "US", "GB", "DE", "IT", "BR", "AG", "JP")  # and each example's own region
PREFIX_REGIONS = ("AR", "AU", "CA", "RU", "GG", "SM", "MG", "NF")  # transform rules, odd IDDs, shared codes
TYPES = (PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE, PhoneNumberType.TOLL_FREE, PhoneNumberType.PREMIUM_RATE,
         PhoneNumberType.SHARED_COST, PhoneNumberType.VOIP, PhoneNumberType.PERSONAL_NUMBER, PhoneNumberType.PAGER,
         PhoneNumberType.UAN, PhoneNumberType.VOICEMAIL)
fast = keys._e164.__wrapped__  # the public path without its cache: fast reading, else the library


# ------------------------------------------------------------------------------------------- reference
# The behaviour to keep: `_library_e164`, the body `_e164` had before the fast path (library only, no cache),
# which the module keeps as its fallback.
reference = keys._library_e164


def assert_same(phone: str, region: str, min_digits: int) -> None:
    assert fast(phone, region, min_digits) == reference(phone, region, min_digits), (phone, region, min_digits)


# ------------------------------------------------------------------------------- every region's examples
def example_numbers() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    numbers = [(region, number) for region in REGIONS for kind in TYPES
               if (number := phonenumbers.example_number_for_type(region, kind)) is not None]
    for code in sorted(phonenumbers.COUNTRY_CODES_FOR_NON_GEO_REGIONS):
        if (number := phonenumbers.example_number_for_non_geo_entity(code)) is not None:
            numbers.append(("001", number))
    return numbers


EXAMPLES = example_numbers()


def written_forms(number: phonenumbers.PhoneNumber, default_region: str) -> set[str]:
    """The ways a CRM user may have typed the number, seen from the default region."""
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    return {e164, phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL), national,
            phonenumbers.format_number(number, PhoneNumberFormat.RFC3966), "00" + e164[1:], e164[1:],
            phonenumbers.format_out_of_country_calling_number(number, default_region),  # the region's IDD
            phonenumbers.national_significant_number(number), f" {national}. "}


@pytest.mark.parametrize("default_region", DEFAULT_REGIONS)
def test_every_regions_examples_read_as_the_library_reads_them(default_region: str) -> None:
    for _, number in EXAMPLES:
        for phone in written_forms(number, default_region):
            for min_digits in (0, 8):
                assert_same(phone, default_region, min_digits)


def test_every_regions_examples_read_at_home_as_the_library_reads_them() -> None:
    for region, number in EXAMPLES:
        if region != "001":
            for phone in written_forms(number, region):
                assert_same(phone, region, 8)


def test_very_short_and_very_long_numbers_read_as_the_library_reads_them() -> None:
    """Two digits are a number only when written together (DE has 2-digit local numbers); 17 digits is the
    longest national number."""
    short = ["", "1", "12", "1 2", "1-2", "(12)", "49", "00", "0 0", "123", "1 23", "007", "+12", "+123", "0012"]
    long = ["1" * 17, "1" * 18, "49" + "1" * 17, "+49" + "1" * 17, "+49" + "1" * 18, "0" + "2" * 17, "9" * 40]
    for region in REGIONS:
        for phone in short + long:
            assert_same(phone, region, 0)


def test_italian_leading_zeros_and_national_prefix_inside_international_form() -> None:
    assert fast("+39 06 1234 5678", "IL", 8) == reference("+39 06 1234 5678", "IL", 8) == "+390612345678"
    assert fast("+44 (0) 20 7946 0958", "IL", 8) == reference("+44 (0) 20 7946 0958", "IL", 8) == "+442079460958"
    assert fast("0039 0612345678", "US", 8) == "+390612345678"
    for phone in ("+39 000 1234", "+39 0000 0000", "0000000000", "+0 972 50 123 4567", "(0) 50 123 4567"):
        for region in ("IT", "IL", "US", "VA"):
            assert_same(phone, region, 0)


# -------------------------------------------------------------------------------------------- properties
DIGITS = st.text(alphabet="0123456789", min_size=0, max_size=20)
SEPARATORS = st.sampled_from([" ", "-", ".", "(", ")", "/", " (0) ", "  ", "--"])
JUNK = st.sampled_from(["a", "x", "X", "ext. 12", " x5", "#", "*", ";ext=9", "tel:", ";phone-context=+972", "٠١٢",
                        "０", "１２", "\u00a0", "\t", "\u2011", "+", "++", "＋", "~", ",", ";", "ABC", "1-800-FLOWERS"])
PREFIXES = st.sampled_from(["+", "00", "0", "", "+0", "000", "011", "810", "972", "1", "44 (0)", " + "])


@settings(max_examples=3000, deadline=None)
@given(prefix=PREFIXES, chunks=st.lists(st.one_of(DIGITS, SEPARATORS, JUNK), max_size=6),
       region=st.sampled_from(REGIONS), min_digits=st.integers(0, 9))
def test_random_text_reads_as_the_library_reads_it(prefix: str, chunks: list[str], region: str,
                                                   min_digits: int) -> None:
    assert_same(prefix + "".join(chunks), region, min_digits)


@settings(max_examples=3000, deadline=None)
@given(prefix=PREFIXES, chunks=st.lists(st.one_of(DIGITS, SEPARATORS), max_size=5),
       region=st.sampled_from(REGIONS), min_digits=st.integers(0, 9))
def test_random_digits_and_separators_read_as_the_library_reads_them(prefix: str, chunks: list[str], region: str,
                                                                     min_digits: int) -> None:
    assert_same(prefix + "".join(chunks), region, min_digits)


@st.composite
def near_examples(draw: st.DrawFn) -> tuple[str, str]:
    """An example number cut, lengthened or altered, behind a prefix that matters to some region (its calling
    code, national prefix, an IDD): where national prefixes, transform rules and shared codes are exercised."""
    home, number = draw(st.sampled_from(EXAMPLES))
    national = phonenumbers.national_significant_number(number)
    start = draw(st.integers(0, min(4, len(national))))
    national = national[start:len(national) - draw(st.integers(0, 2))] + draw(st.text("0123456789", max_size=3))
    regions = [*DEFAULT_REGIONS, *PREFIX_REGIONS, *REGIONS]
    region = draw(st.sampled_from(regions if home == "001" else [home, *regions]))
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    code, region_code = str(number.country_code), str(metadata.country_code)
    region_prefix = metadata.national_prefix or ""
    prefix = draw(st.sampled_from(["", "+" + code, code, "00" + code, "011" + code, "810" + code, region_code,
                                   region_code + region_prefix, region_prefix, "+" + region_code + region_prefix,
                                   "+0", "0"]))
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    return prefix + separator + national, region


@settings(max_examples=3000, deadline=None)
@given(case=near_examples(), min_digits=st.sampled_from([0, 5, 8]))
def test_numbers_near_real_ones_read_as_the_library_reads_them(case: tuple[str, str], min_digits: int) -> None:
    phone, region = case
    assert_same(phone, region, min_digits)


# ------------------------------------------------------------------------------------- the fast path is used
COMMON = {  # as CRMs hold them, read with the default region IL (mappings/identity.yaml)
    "+972 50 123 4567": "+972501234567", "+1 415 555 0123": "+14155550123", "+972501234567": "+972501234567",
    "+44 (0) 20 7946 0958": "+442079460958", "00972 50 123 4567": "+972501234567", "050-1234567": "+972501234567",
    "03-1234567": "+97231234567", "972-3-1234567": "+97231234567", "972501234567": "+972501234567",
    "(050) 123-4567": "+972501234567", "+49 30 123456": "+4930123456", "1-415-555-0134": "+14155550134",
    "052.123.4567": "+972521234567", " +39 06 1234 5678 ": "+390612345678",
}


@pytest.fixture
def fallbacks(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The numbers the library had to read, with the cache cleared so every number is read."""
    calls: list[str] = []
    library = keys._library_e164

    def counted(phone: str, region: str, min_digits: int) -> str | None:
        calls.append(phone)
        return library(phone, region, min_digits)

    monkeypatch.setattr(keys, "_library_e164", counted)
    keys._e164.cache_clear()
    yield calls
    keys._e164.cache_clear()


def test_common_formats_take_the_fast_path(fallbacks: list[str]) -> None:
    assert {phone: phone_key(phone, CONFIG) for phone in COMMON} == COMMON
    assert fallbacks == []
    for region in (*DEFAULT_REGIONS, *PREFIX_REGIONS):
        for phone in COMMON:
            assert keys._fast_e164(phone, region, 8) is not keys._Unsure.UNSURE


def test_what_the_fast_path_cannot_vouch_for_goes_to_the_library(fallbacks: list[str]) -> None:
    unusual = ["+972 50 123 4567 ext. 12", "٠٥٠١٢٣٤٥٦٧", "1-800-FLOWERS", "tel:+972-50-123-4567", "(+972) 50 1234567",
               "０５０１２３４５６７", "050\u00a01234567"]
    assert [phone_key(phone, CONFIG) for phone in unusual] == [reference(phone, "IL", 8) for phone in unusual]
    assert fallbacks == unusual
