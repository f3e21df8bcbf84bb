"""The Salesforce read cursor and the API's time format.

The cursor (a JSON string) holds the watermark: `since`, the newest SystemModstamp known to have no unread
record before it, and `seen`, the ids (with their stamps) already delivered at or within the lookback before
it. The next read asks `SystemModstamp >= since - lookback` and drops records delivered with an unchanged
stamp, so nothing is lost to late commits and nothing is delivered twice.

A record edited while the client pages shows up later in the same result with a stamp newer than the
query (Salesforce reads field values batch by batch). Such stamps never advance `since`: only stamps older
than the server time of the query's first answer (its `Date` header, the `ceiling`) do, because only those
are known to be in order. An edited record already delivered is then still ahead of the watermark and is
read again by the next incremental sync.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.salesforce.objects import CURSOR_FIELD, LOOKBACK_SECONDS

log = logging.getLogger("journeyhub.connectors.salesforce")

CURSOR_VERSION = 1


# ------------------------------------------------------------------------------------------------ times
def parse_time(value: str | None) -> datetime | None:
    """Salesforce datetimes (`…000+0000`, `…Z`, `+00:00`) as aware UTC datetimes."""
    if not value:
        return None
    text = value.strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    elif len(text) > 5 and text[-5] in "+-" and text[-3] != ":":
        text = f"{text[:-2]}:{text[-2:]}"
    return datetime.fromisoformat(text).astimezone(UTC)


def sf_time(value: datetime) -> str:
    """The REST API's datetime form: `2024-02-01T10:00:00.000+0000`."""
    value = value.astimezone(UTC)
    return f"{value:%Y-%m-%dT%H:%M:%S}.{value.microsecond // 1000:03d}+0000"


# ------------------------------------------------------------------------------------------------ cursor
@dataclass
class State:
    """Everything the cursor remembers about one sObject."""

    since: str | None = None                       # watermark (a served SystemModstamp)
    seen: dict[str, str] = field(default_factory=dict)   # id → stamp delivered, at/within lookback of `since`
    deleted_checked: str | None = None             # getDeleted covered everything up to here
    bulk: dict[str, Any] | None = None             # a first load running as a Bulk API 2.0 job

    @classmethod
    def load(cls, cursor: str | None) -> State:
        if not cursor:
            return cls()
        data = json.loads(cursor)
        if data.get("v") != CURSOR_VERSION:
            log.warning("ignoring a Salesforce cursor of another version; starting a full read")
            return cls()
        return cls(data.get("since"), dict(data.get("seen") or {}), data.get("deleted_checked"), data.get("bulk"))

    def dump(self) -> str:
        return json.dumps({"v": CURSOR_VERSION, "since": self.since, "seen": self.seen,
                           "deleted_checked": self.deleted_checked, "bulk": self.bulk}, sort_keys=True)

    def bookkeeping(self) -> tuple[Any, ...]:
        """What a read must persist even without records. A watermark that moved past records already
        delivered is not: re-reading them costs nothing and a page would be a write for nothing."""
        return self.deleted_checked, self.bulk

    @property
    def started(self) -> bool:
        """A first load has begun (an empty object's first load leaves only `deleted_checked` behind)."""
        return self.since is not None or bool(self.seen) or self.bulk is not None or self.deleted_checked is not None

    def delivered(self, record: dict[str, Any]) -> bool:
        """Already delivered with this very stamp (re-read inside the lookback)."""
        return self.seen.get(record["Id"]) == record.get(CURSOR_FIELD)

    def advance(self, records: list[dict[str, Any]], ceiling: datetime) -> None:
        """Take delivered records into the watermark; only stamps below `ceiling` move `since`."""
        since = parse_time(self.since)
        for record in records:
            stamp_text = record.get(CURSOR_FIELD)
            stamp = parse_time(stamp_text)
            if stamp is None:
                continue
            self.seen[record["Id"]] = stamp_text
            if stamp < ceiling and (since is None or stamp > since):
                since, self.since = stamp, stamp_text
        if since is not None:
            floor = since - timedelta(seconds=LOOKBACK_SECONDS)
            self.seen = {rid: text for rid, text in self.seen.items() if parse_time(text) >= floor}

    def lower_bound(self) -> datetime | None:
        since = parse_time(self.since)
        return None if since is None else since - timedelta(seconds=LOOKBACK_SECONDS)
