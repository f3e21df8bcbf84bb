"""The part of the generated world the Dataverse emulator loads (contract in docs/architecture.md).

Dependency-free on purpose: the world generator imports it without pulling in the emulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class DynamicsData:
    """Seed rows per entity set, in Web API JSON shape.

    `rows["contacts"]` is a list of dicts such as
    `{"contactid": "5f0c…", "firstname": "Dana", "_parentcustomerid_value": "7c1e…", "statecode": 0,
    "createdon": "2024-02-01T10:00:00Z", "modifiedon": "2024-02-01T10:00:00Z", "versionnumber": 1201}`:
    primary key column, lookups as `_x_value` GUIDs, option sets as ints, datetimes as UTC ISO strings.
    Columns left out are null (or their server default); `versionnumber`, `createdon`, `modifiedon`,
    `fullname` and `activitytypecode` are filled in when missing. Annotation keys (`…@odata.etag`,
    `…@Microsoft.Dynamics.CRM.lookuplogicalname`) are ignored: lookup targets are resolved by GUID.
    """

    rows: dict[str, list[dict]] = field(default_factory=dict)
