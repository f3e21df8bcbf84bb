"""Match keys: the normalised forms of emails and phones that identity rules compare."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from enum import Enum
from functools import cache, lru_cache

import phonenumbers
from phonenumbers import PhoneMetadata

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
    """Cached: shared numbers (a switchboard, the same person in three CRMs) recur. Parsing is the costliest
    step of loading a person, so numbers written the common ways (ASCII digits, spaces, dashes, dots, slashes,
    brackets, one leading plus) are read from compiled metadata; anything else goes to the library."""
    result = _fast_e164(phone, region, min_digits)
    return _library_e164(phone, region, min_digits) if result is _Unsure.UNSURE else result


def _library_e164(phone: str, region: str, min_digits: int) -> str | None:
    """The reference reading, by `phonenumbers.parse`; the fast path must agree with it on every input."""
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


# ------------------------------------------------------------------------------------------ phone fast path
# A re-reading of `phonenumbers.parse` (and of `is_possible_number` / `is_valid_number`) restricted to text
# made of ASCII digits and the separators below, with at most one plus, in front. For such text the library's
# extension, vanity-letter, Unicode-digit, RFC 3966 and second-number handling cannot trigger, so parsing
# reduces to digit-string steps done here with the same metadata: the IDD, the country calling code, the
# national prefix (with its transform rule) and the possible lengths. Numbers are (country code, national
# significant number) pairs; the E.164 form is "+" + both, exactly what `format_number` gives.

class _Unsure(Enum):
    """The fast path cannot vouch for its reading: ask the library."""
    UNSURE = 0


_Number = tuple[int, str]
_SIMPLE_TEXT = re.compile(r"\+?[0-9 ().\-/]*")
_SEPARATORS = str.maketrans("", "", " ().-/")
_MAX_TEXT = 250  # the library refuses longer input; "+" and the digits of the text must stay within it
_MAX_NATIONAL = 17  # the longest national significant number the library accepts
_POSSIBLE, _LOCAL_ONLY = phonenumbers.ValidationResult.IS_POSSIBLE, phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY
_TOO_SHORT, _TOO_LONG = phonenumbers.ValidationResult.TOO_SHORT, phonenumbers.ValidationResult.TOO_LONG
_INVALID_LENGTH = phonenumbers.ValidationResult.INVALID_LENGTH
_TYPES = ("fixed_line", "mobile", "premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager",
          "uan", "voicemail")  # any match makes a number valid: the order is the regex engine's to try


@dataclass(frozen=True, slots=True)
class _Plan:
    """One region's (or non-geographic calling code's) metadata with its regexes compiled once."""
    country_code: int
    code_text: str
    idd: re.Pattern[str] | None
    national_prefix: re.Pattern[str] | None
    transform: str | None
    general: re.Pattern[str] | None
    length_table: tuple[int, ...]  # _length_result by size, up to the longest length listed
    typed: tuple[re.Pattern[str] | None, ...]  # by national number length: see _typed_pattern

    def fits(self, national: str) -> bool:
        """The general pattern alone, as parsing tests it (`_match_national_number`)."""
        return self.general is not None and self.general.fullmatch(national) is not None

    def has_type(self, national: str) -> bool:
        """`_number_type_helper(...) != UNKNOWN`, in one match; parsing never yields longer numbers than the
        table covers."""
        pattern = self.typed[len(national)]
        return pattern is not None and pattern.fullmatch(national) is not None

    def length_result(self, size: int) -> int:
        """`_test_number_length` for an unknown type, looked up: past the table every length is too long."""
        return self.length_table[size] if size < len(self.length_table) else _TOO_LONG


def _length_result(size: int, lengths: tuple[int, ...], local_lengths: tuple[int, ...]) -> int:
    """`_test_number_length` for an unknown type, step by step (what fills a plan's length table)."""
    if size in local_lengths:
        return _LOCAL_ONLY
    if lengths[0] == size:
        return _POSSIBLE
    if lengths[0] > size:
        return _TOO_SHORT
    if lengths[-1] < size:
        return _TOO_LONG
    return _POSSIBLE if size in lengths[1:] else _INVALID_LENGTH


@dataclass(frozen=True, slots=True)
class _Candidate:
    """A region sharing a calling code, as `region_code_for_number` picks among them and validation checks."""
    leading_digits: re.Pattern[str] | None
    select: _Plan | None  # what picking the region reads (None: skipped)
    check: _Plan | None  # what validating against it reads (None: never valid)


def _compiled(pattern: str | None) -> re.Pattern[str] | None:
    """Where the library treats an empty pattern as none (national prefix, number patterns)."""
    return re.compile(pattern) if pattern else None


def _compiled_even_empty(pattern: str | None) -> re.Pattern[str] | None:
    """Where the library compiles an empty pattern, which matches anything (IDD, leading digits)."""
    return None if pattern is None else re.compile(pattern)


def _typed_pattern(metadata: PhoneMetadata, size: int) -> re.Pattern[str] | None:
    """For numbers of one length, a regex that matches exactly when `_number_type_helper` finds a type: the
    general description (a lookahead) and any description of a type that allows the length. A description
    without possible lengths allows any; one without a pattern matches nothing. None: nothing can match."""
    general = metadata.general_desc
    if general is None or not general.national_number_pattern or (
            general.possible_length and size not in general.possible_length):
        return None
    kinds = [kind for kind in _TYPES if not (kind == "mobile" and metadata.same_mobile_and_fixed_line_pattern)]
    descs = [getattr(metadata, kind) for kind in kinds]
    patterns = [desc.national_number_pattern for desc in descs if desc is not None and desc.national_number_pattern
                and (not desc.possible_length or size in desc.possible_length)]
    if not patterns:
        return None
    return _compile_once(f"(?=(?:{general.national_number_pattern})\\Z)(?:{'|'.join(f'(?:{p})' for p in patterns)})")


def _length_table(general: phonenumbers.PhoneNumberDesc) -> tuple[int, ...]:
    lengths, local = tuple(general.possible_length), tuple(general.possible_length_local_only)
    return tuple(_length_result(size, lengths, local) for size in range(max(lengths + local) + 1))


@cache
def _compile_once(pattern: str) -> re.Pattern[str]:
    """Regions and lengths often share a combined pattern."""
    return re.compile(pattern)


def _new_plan(metadata: PhoneMetadata) -> _Plan:
    general = metadata.general_desc
    return _Plan(country_code=metadata.country_code, code_text=str(metadata.country_code),
                 idd=_compiled_even_empty(metadata.international_prefix),
                 national_prefix=_compiled(metadata.national_prefix_for_parsing),
                 transform=metadata.national_prefix_transform_rule or None,
                 general=_compiled(general.national_number_pattern), length_table=_length_table(general),
                 typed=tuple(_typed_pattern(metadata, size) for size in range(_MAX_NATIONAL + 1)))


_PLANS: dict[int, tuple[PhoneMetadata, _Plan]] = {}  # by id(metadata), which the entry keeps alive


def _plan_of(metadata: PhoneMetadata) -> _Plan:
    """One plan per metadata object (regions sharing a code share it; metadata objects are not hashable)."""
    entry = _PLANS.get(id(metadata))
    if entry is None:
        entry = _PLANS[id(metadata)] = (metadata, _new_plan(metadata))
    return entry[1]


@cache
def _region_plan(region: str) -> _Plan | None:
    """The default region's plan; None for a region the library would not parse with (then it decides)."""
    if region not in phonenumbers.SUPPORTED_REGIONS:
        return None
    metadata = PhoneMetadata.metadata_for_region(region, None)
    return None if metadata is None else _plan_of(metadata)


@cache
def _code_plan(code: int) -> _Plan:
    """The plan of a calling code's main region: what parsing, possibility and formatting read."""
    region = phonenumbers.COUNTRY_CODE_TO_REGION_CODE[code][0]
    metadata = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if metadata is None:  # the library asserts the same
        raise LookupError(f"no phone metadata for calling code {code}")
    return _plan_of(metadata)


@cache
def _candidates(code: int) -> tuple[_Candidate, ...]:
    """The regions of a calling code in the library's order, for `is_valid_number`."""
    return tuple(_candidate(code, region) for region in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(code, ()))


def _candidate(code: int, region: str) -> _Candidate:
    select = PhoneMetadata.metadata_for_region(region, None)
    check = PhoneMetadata.metadata_for_region_or_calling_code(code, region)
    if region != phonenumbers.REGION_CODE_FOR_NON_GEO_ENTITY and (select is None or select.country_code != code):
        check = None  # `is_valid_number_for_region`: the region's own code must be the number's
    if select is None:
        return _Candidate(leading_digits=None, select=None, check=None if check is None else _plan_of(check))
    return _Candidate(leading_digits=_compiled_even_empty(select.leading_digits), select=_plan_of(select),
                      check=None if check is None else _plan_of(check))


def _fast_e164(phone: str, region: str, min_digits: int) -> str | _Unsure | None:
    """`_library_e164`, for text the fast path understands; UNSURE for the rest."""
    text = phone.strip()
    plan = _region_plan(region)
    if plan is None or len(text) >= _MAX_TEXT or _SIMPLE_TEXT.fullmatch(text) is None:
        return _Unsure.UNSURE
    body = text[1:] if text[:1] == "+" else text
    digits = body if body.isdigit() else body.translate(_SEPARATORS)  # ASCII by now, so isdigit() is exact
    if len(digits) < min_digits:
        return None
    if text.startswith(("00", "+")):  # one reading, kept when possible or valid
        number = _read_international(digits[2:] if text[0] == "0" else digits, plan)
        return _e164_text(number) if number is not None and (_is_possible(number) or _is_valid(number)) else None
    national = _read_national(digits, text, plan)  # national, else international without the plus
    if national is not None and _is_valid(national):
        return _e164_text(national)
    possible = national if national is not None and _is_possible(national) else None
    international = _read_international(digits, plan)
    if international is not None and _is_valid(international):
        return _e164_text(international)
    if possible is None and international is not None and _is_possible(international):
        possible = international
    return _e164_text(possible) if possible is not None else None


def _read_international(digits: str, plan: _Plan) -> _Number | None:
    """`parse("+" + digits, region)`; None where the library raises."""
    if len(digits) < 3:  # not a viable number after a plus (or too short after it)
        return None
    code, rest = _leading_code(digits)
    if code == 0:  # an unknown calling code: the library retries the digits as if the plus were not there
        extracted = _extract_code(digits, plan)
        if extracted is None or extracted[0] == 0:
            return None
        code, rest = extracted
    return _national_number(code, rest, _code_plan(code))


def _read_national(digits: str, text: str, plan: _Plan) -> _Number | None:
    """`parse(text, region)` for text without a plus; None where the library raises."""
    if len(digits) < 2 or (len(digits) == 2 and digits not in text):  # viable: two digits alone, or three
        return None
    extracted = _extract_code(digits, plan)
    if extracted is None:
        return None
    code, rest = extracted
    if code == 0:
        return _national_number(plan.country_code, digits, plan)
    return _national_number(code, rest, _code_plan(code))


def _leading_code(digits: str) -> _Number:
    """`_extract_country_code`: the shortest known calling code the digits start with, else 0."""
    if not digits or digits[0] == "0":
        return 0, digits
    codes = _calling_codes()
    for size in (1, 2, 3):
        code = codes.get(digits[:size])
        if code is not None and size <= len(digits):
            return code, digits[size:]
    return 0, digits


@cache
def _calling_codes() -> dict[str, int]:
    """The known calling codes by their digits: a dictionary hit instead of three int() conversions."""
    return {str(code): code for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE}


def _extract_code(digits: str, plan: _Plan) -> _Number | None:
    """`_maybe_extract_country_code` for digits typed without a plus: after the region's IDD, or the region's
    own code in front when the rest reads better; (0, "") when there is none, None where the library raises."""
    idd = plan.idd.match(digits) if plan.idd is not None else None
    if idd is not None and not digits.startswith("0", idd.end()):
        rest = digits[idd.end():]
        if len(rest) <= 2:
            return None
        code, rest = _leading_code(rest)
        return (code, rest) if code else None
    if digits.startswith(plan.code_text):
        potential = _strip_national_prefix(digits[len(plan.code_text):], plan)
        if (not plan.fits(digits) and plan.fits(potential)) or plan.length_result(len(digits)) == _TOO_LONG:
            return plan.country_code, potential
    return 0, ""


def _national_number(code: int, national: str, plan: _Plan) -> _Number | None:
    """The end of `parse`: the national prefix dropped when what remains has a possible length, then the
    length limits."""
    if len(national) < 2:
        return None
    potential = _strip_national_prefix(national, plan)
    if plan.length_result(len(potential)) in (_POSSIBLE, _TOO_LONG):
        national = potential
    if len(national) < 2 or len(national) > _MAX_NATIONAL:
        return None
    return code, national


def _strip_national_prefix(number: str, plan: _Plan) -> str:
    """`_maybe_strip_national_prefix_carrier_code`, without the carrier code nobody reads here."""
    if not number or plan.national_prefix is None:
        return number
    match = plan.national_prefix.match(number)
    if match is None:
        return number
    viable = plan.fits(number)
    groups = match.groups()
    if plan.transform is None or groups[len(groups) - 1] is None:  # the library's IndexError included
        stripped = number[match.end():]
    else:
        stripped = plan.national_prefix.sub(plan.transform, number, count=1)
    return number if viable and not plan.fits(stripped) else stripped


def _is_possible(number: _Number) -> bool:
    """`is_possible_number`: a possible (or local-only) length for the calling code's main region."""
    code, national = number
    return _code_plan(code).length_result(len(national)) in (_POSSIBLE, _LOCAL_ONLY)


def _is_valid(number: _Number) -> bool:
    """`is_valid_number`: the region the number belongs to (by leading digits or by type, among regions that
    share the code), then a type of that region's the number matches."""
    code, national = number
    candidates = _candidates(code)
    if len(candidates) == 1:
        check = candidates[0].check
        return check is not None and check.has_type(national)
    for candidate in candidates:
        if candidate.select is None:
            continue
        if candidate.leading_digits is not None:
            if candidate.leading_digits.match(national):
                return candidate.check is not None and candidate.check.has_type(national)
        elif candidate.select.has_type(national):
            return candidate.check is not None and candidate.check.has_type(national)
    return False


def _e164_text(number: _Number) -> str:
    """`format_number(..., E164)`: the national significant number keeps its leading zeros (Italy)."""
    return f"+{number[0]}{number[1]}"


def keys_fingerprint(config: IdentityConfig) -> str:
    """Changes when the normalisation settings change, so stored keys are recomputed."""
    email, phone = config.email, config.phone
    text = f"{email.unicode_form}|{email.casefold}|{phone.default_region}|{phone.min_digits}"
    return hashlib.sha1(text.encode()).hexdigest()[:16]
