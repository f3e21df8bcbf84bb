"""Record ids and time formats of the three CRMs, as the generated world writes them.

Times inside the world plan are whole epoch seconds (UTC); they are formatted per vendor only when a
record is rendered. Ids are allocated deterministically: counters for HubSpot and Salesforce, UUIDv5 of
(seed, entity set, counter) for Dataverse.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sandbox.salesforce.ids import checksum as sf_checksum  # the vendor's case-safe suffix, one implementation

DAY = 86_400
HOUR = 3_600
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# --------------------------------------------------------------------------------------------- times


def to_datetime(ts: int) -> datetime:
    return _EPOCH + timedelta(seconds=ts)


def from_datetime(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return delta.days * DAY + delta.seconds


def iso_z(ts: int) -> str:
    """Ground-truth / Dataverse format: `2024-02-01T10:00:00Z`."""
    return f"{to_datetime(ts):%Y-%m-%dT%H:%M:%S}Z"


def hubspot_time(ts: int, ms: int = 0) -> str:
    """HubSpot format: `2024-02-02T03:04:05.123Z`."""
    return f"{to_datetime(ts):%Y-%m-%dT%H:%M:%S}.{ms:03d}Z"


def salesforce_time(ts: int) -> str:
    """Salesforce format: `2024-02-01T10:00:00.000+0000`."""
    return f"{to_datetime(ts):%Y-%m-%dT%H:%M:%S}.000+0000"


def date_only(ts: int) -> str:
    """`2024-02-01` (the UTC date of the instant)."""
    return f"{to_datetime(ts):%Y-%m-%d}"


def midnight(ts: int) -> int:
    """00:00 UTC of the instant's date."""
    return ts - ts % DAY


# --------------------------------------------------------------------------------------- Salesforce ids
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

SF_PREFIXES = {
    "Account": "001", "Contact": "003", "Lead": "00Q", "Opportunity": "006", "OpportunityContactRole": "00K",
    "Case": "500", "Task": "00T", "Event": "00U", "EmailMessage": "02s", "User": "005",
}


def sf_id(prefix: str, number: int) -> str:
    """An 18-character id: 3-char key prefix, pod `0W`, 10 base-62 digits of a scrambled counter, checksum.

    The counter is multiplied by an odd constant modulo 62**10 so that ids mix upper- and lower-case letters
    (the checksum then carries information) while staying unique.
    """
    value = (number * 0x9E3779B1 + 0x1F2E3D) % 62**10
    digits = []
    for _ in range(10):
        value, rest = divmod(value, 62)
        digits.append(_BASE62[rest])
    id15 = f"{prefix}0W{''.join(reversed(digits))}"
    return id15 + sf_checksum(id15)


def sf_id_valid(value: str, prefix: str | None = None) -> bool:
    """18 alphanumeric characters, right key prefix (when given), correct checksum."""
    if not isinstance(value, str) or len(value) != 18 or not value.isascii() or not value.isalnum():
        return False
    if prefix is not None and not value.startswith(prefix):
        return False
    return sf_checksum(value[:15]) == value[15:]


# --------------------------------------------------------------------------------------------- allocator
class Ids:
    """Deterministic id allocation for one world."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self._hubspot = 1000
        self._sf: dict[str, int] = {}
        self._dyn: dict[str, int] = {}
        self._namespace = uuid.uuid5(uuid.NAMESPACE_URL, f"https://journeyhub.invalid/world/{seed}")

    def hubspot(self) -> str:
        """HubSpot ids are positive integers, unique across the portal's object types here."""
        self._hubspot += 1
        return str(self._hubspot)

    def salesforce(self, sobject: str) -> str:
        number = self._sf.get(sobject, 0) + 1
        self._sf[sobject] = number
        return sf_id(SF_PREFIXES[sobject], number)

    def dynamics(self, entity_set: str) -> str:
        number = self._dyn.get(entity_set, 0) + 1
        self._dyn[entity_set] = number
        return str(uuid.uuid5(self._namespace, f"{entity_set}/{number}"))
