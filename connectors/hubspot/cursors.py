"""HubSpot's cursors: time parsing and the watermarks the reader persists after each page.

Cursors are JSON strings and each page carries the one that is safe to persist once that page is stored:

- CRM objects, full load: `{"v": 1, "mode": "full", "after", "started", "high", "seen"}` — the list
  endpoint's paging token, so a killed full load continues where it stopped; `"phase": "archived"` once the
  live list is done and the archived list (records deleted before the load) is being paged. When that list
  ends too the cursor becomes the incremental watermark below, starting at min(newest modification seen,
  start of the load) so that records changed while the load was paging are read again.
- CRM objects, incremental: `{"v": 1, "mode": "incremental", "since", "seen", "archived"}` — `since` is the
  newest modified time (epoch ms) stored, `seen` the ids (→ modified time) stored within the lookback before
  it. A read searches `modified >= since - lookback`, drops records already seen with the same modified
  time, and keyset-pages on the modified time (each page restarts the search at the newest time of the last
  one), which never nears the 10,000-result cap and does not skip records that change while it pages.
  `window` (mid-read only) is where the search stood. `archived` is the same watermark for archivedAt, when
  archived records were last listed, and (`pending`) a listing in progress.
- owners / pipelines: a fingerprint per record; email events: the newest `created` and the ids at it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from connectors.errors import ConfigError
from connectors.hubspot.client import SYSTEM, now_ms

CURSOR_VERSION = 1
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


def parse_time(value: Any) -> datetime | None:
    """HubSpot timestamps: ISO-8601 (`…Z`) strings or epoch milliseconds."""
    if value is None or value == "":
        return None
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        return _EPOCH + timedelta(milliseconds=int(value))
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def to_ms(value: Any) -> int | None:
    moment = parse_time(value)
    return None if moment is None else (moment - _EPOCH) // _MS


def fingerprint(document: Any) -> str:
    return hashlib.blake2b(orjson.dumps(document, option=orjson.OPT_SORT_KEYS), digest_size=8).hexdigest()


def dump(state: dict[str, Any]) -> str:
    return orjson.dumps({"v": CURSOR_VERSION, **state}).decode()


def load(cursor: str | None, object_type: str) -> dict[str, Any] | None:
    if cursor is None:
        return None
    try:
        state = orjson.loads(cursor)
    except orjson.JSONDecodeError:
        state = None
    if not isinstance(state, dict) or state.get("v") != CURSOR_VERSION:
        raise ConfigError(SYSTEM, f"the saved cursor for {object_type} was not written by this connector version "
                          f"({cursor[:80]!r}); run a full sync of {object_type} to start over")
    return state


@dataclass
class Watermark:
    """The newest time stored plus what was stored within the lookback before it (id → time)."""

    since: int
    seen: dict[str, int] = field(default_factory=dict)
    lookback_ms: int = 0

    @property
    def low(self) -> int:
        return self.since - self.lookback_ms

    def fresh(self, remote_id: str, moment: int) -> bool:
        return self.seen.get(remote_id) != moment

    def add(self, remote_id: str, moment: int) -> None:
        self.seen[remote_id] = moment
        self.since = max(self.since, moment)

    def prune(self) -> None:
        low = self.low
        self.seen = {key: moment for key, moment in self.seen.items() if moment >= low}

    def state(self) -> dict[str, Any]:
        return {"since": self.since, "seen": self.seen}

    @classmethod
    def from_state(cls, state: dict[str, Any], lookback_ms: int) -> Watermark:
        return cls(int(state["since"]), {str(k): int(v) for k, v in (state.get("seen") or {}).items()}, lookback_ms)


@dataclass
class FullLoad:
    """Where a full load is: the list's paging token (the live list, then the archived one), when it started,
    the newest modification it has seen, and what it stored within the lookback before the watermark the
    incremental reads will start from."""

    started: int
    after: str | None = None
    high: int | None = None
    seen: dict[str, int] = field(default_factory=dict)
    lookback_ms: int = 0
    archived: bool = False              # paging the archived list (the live one is done)
    finished: bool = False

    @property
    def watermark(self) -> int:
        """Where incremental reads start: records changed while the load paged have later times than its start."""
        return self.started if self.high is None else min(self.high, self.started)

    def take(self, modified: list[tuple[str, int]]) -> None:
        for _, moment in modified:
            self.high = moment if self.high is None else max(self.high, moment)
        low = self.watermark - self.lookback_ms
        self.seen.update((remote_id, moment) for remote_id, moment in modified if moment >= low)
        self.seen = {key: moment for key, moment in self.seen.items() if moment >= low}

    def cursor(self) -> dict[str, Any]:
        if not self.finished:
            return {"mode": "full", "after": self.after, "started": self.started, "high": self.high,
                    "seen": self.seen, **({"phase": "archived"} if self.archived else {})}
        return {"mode": "incremental", "since": self.watermark, "seen": self.seen,
                "archived": {"checked": self.started, "since": self.started, "seen": {}}}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, lookback_ms: int) -> FullLoad:
        if state is None:
            return cls(now_ms(), lookback_ms=lookback_ms)
        return cls(int(state["started"]), state.get("after"), state.get("high"),
                   {str(k): int(v) for k, v in (state.get("seen") or {}).items()}, lookback_ms,
                   archived=state.get("phase") == "archived")
