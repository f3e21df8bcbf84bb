"""The Salesforce part of the generated world (`World.salesforce`), as `SalesforceEmulator.load` takes it.

Dependency-free on purpose: the world generator imports it without pulling in the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class SalesforceData:
    """sObject name → records in REST JSON shape, without "attributes".

    Each record carries `Id` (18 characters, the object's key prefix), `CreatedDate`, `LastModifiedDate`,
    `SystemModstamp` (`"2024-02-01T10:00:00.000+0000"`), `IsDeleted` and, where the object has it,
    `MasterRecordId`; dates are `"2024-02-01"`. Fields the emulator's schema does not know are rejected by
    `load` (see sandbox/salesforce/schema.py for the fields of each object).
    """

    records: dict[str, list[dict]] = field(default_factory=dict)
