"""Reading HubSpot: full loads, incremental search windows, archived records, associations, reconciliation.

Cursors are JSON strings and each page carries the one that is safe to persist once that page is stored:

- CRM objects, full load: `{"v": 1, "mode": "full", "after", "started", "high", "seen"}` — the list
  endpoint's paging token, so a killed full load continues where it stopped. When the list ends the cursor
  becomes the incremental watermark below, starting at min(newest modification seen, start of the load) so
  that records changed while the load was paging are read again.
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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from connectors.base import Page, RemoteRecord
from connectors.errors import ConfigError, FatalError
from connectors.hubspot.client import SYSTEM, HubSpotClient, HubSpotConfig, now_ms
from connectors.hubspot.objects import OBJECTS, PIPELINE_OBJECTS, ObjectSpec

CURSOR_VERSION = 1
SEARCH_CAP = 10_000
BATCH_IDS = 100                     # v4 association batch reads: ids per call
OWNERS_PAGE = 500                   # the owners API's maximum page size
EVENTS_PAGE = 1000                  # the legacy email events API's maximum page size
EVENTS_PATH = "/email/public/v1/events"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MS = timedelta(milliseconds=1)


# ---------------------------------------------------------------------------------------------- helpers
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


class Meter:
    """API calls made since the last page (what `Page.api_calls` reports)."""

    def __init__(self, client: HubSpotClient) -> None:
        self.client = client
        self.mark = client.api_calls

    def take(self) -> int:
        calls, self.mark = self.client.api_calls - self.mark, self.client.api_calls
        return calls


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
    """Where a full load is: the list's paging token, when it started, the newest modification it has seen,
    and what it stored within the lookback before the watermark the incremental reads will start from."""

    started: int
    after: str | None = None
    high: int | None = None
    seen: dict[str, int] = field(default_factory=dict)
    lookback_ms: int = 0

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
        if self.after:
            return {"mode": "full", "after": self.after, "started": self.started, "high": self.high,
                    "seen": self.seen}
        return {"mode": "incremental", "since": self.watermark, "seen": self.seen,
                "archived": {"checked": self.started, "since": self.started, "seen": {}}}

    @classmethod
    def from_state(cls, state: dict[str, Any] | None, lookback_ms: int) -> FullLoad:
        if state is None:
            return cls(now_ms(), lookback_ms=lookback_ms)
        return cls(int(state["started"]), state.get("after"), state.get("high"),
                   {str(k): int(v) for k, v in (state.get("seen") or {}).items()}, lookback_ms)


# ---------------------------------------------------------------------------------------------- stages
class StageIndex:
    """Pipeline stages of one object type from the pipelines API, as the documents mappings read."""

    def __init__(self, object_type: str, pipelines: list[dict[str, Any]]) -> None:
        self.object_type = object_type
        self.stages: dict[tuple[str, str], dict[str, Any]] = {}
        self.by_stage: dict[str, dict[str, Any]] = {}
        for pipeline in pipelines:
            for stage in pipeline.get("stages") or []:
                document = stage_document(object_type, pipeline, stage)
                self.stages[(str(pipeline["id"]), str(stage["id"]))] = document
                self.by_stage.setdefault(str(stage["id"]), document)

    def find(self, pipeline: Any, stage: Any) -> dict[str, Any] | None:
        if stage in (None, ""):
            return None
        return self.stages.get((str(pipeline), str(stage))) or self.by_stage.get(str(stage))


def stage_document(object_type: str, pipeline: dict[str, Any], stage: dict[str, Any]) -> dict[str, Any]:
    """One stage with its pipeline and what its metadata means: deals close when `isClosed` and win at
    `probability` 1.0; tickets close in a `ticketState` CLOSED stage."""
    metadata = {str(k): v for k, v in (stage.get("metadata") or {}).items()}
    if object_type == "tickets" and "ticketState" in metadata:
        closed = str(metadata["ticketState"]).upper() == "CLOSED"
    else:
        closed = str(metadata.get("isClosed", "")).lower() == "true"
    try:
        probability = float(metadata.get("probability", "nan"))
    except (TypeError, ValueError):
        probability = float("nan")
    return {"objectType": object_type, "pipelineId": str(pipeline["id"]), "pipelineLabel": pipeline.get("label"),
            "id": str(stage["id"]), "label": stage.get("label"), "displayOrder": stage.get("displayOrder"),
            "metadata": metadata, "isClosed": closed,
            "isWon": closed and object_type == "deals" and probability >= 1.0,
            "archived": bool(stage.get("archived") or pipeline.get("archived")),
            "createdAt": stage.get("createdAt"), "updatedAt": stage.get("updatedAt")}


# ---------------------------------------------------------------------------------------------- reader
class Reader:
    """All reads of one connector; one method per kind of object in the object table."""

    def __init__(self, client: HubSpotClient, config: HubSpotConfig) -> None:
        self.client = client
        self.config = config
        self.lookback_ms = int(config.lookback_seconds * 1000)

    def spec(self, object_type: str) -> ObjectSpec:
        spec = OBJECTS.get(object_type)
        if spec is None:
            raise ConfigError(SYSTEM, f"unknown object type {object_type!r}; known: {', '.join(OBJECTS)}")
        return spec

    def read(self, object_type: str, cursor: str | None, full: bool) -> Iterator[Page]:
        """The generator for one object type: a full load without a cursor (or with `full`), else changes."""
        spec = self.spec(object_type)
        state = None if full else load(cursor, object_type)
        if spec.kind == "owners":
            return self._owners(spec, state)
        if spec.kind == "pipelines":
            return self._pipelines(spec, state)
        if spec.kind == "email_events":
            return self._email_events(spec, state)
        if state is None or state.get("mode") == "full":
            return self._full(spec, state)
        return self._incremental(spec, state)

    # ------------------------------------------------------------------ CRM objects: full load
    def _full(self, spec: ObjectSpec, state: dict[str, Any] | None) -> Iterator[Page]:
        meter, context = Meter(self.client), RecordContext(self, spec)
        load_ = FullLoad.from_state(state, self.lookback_ms)
        while True:
            body = self._list_page(spec, load_.after)
            records = context.records(body.get("results") or [], inline=True)
            load_.take([(r.remote_id, context.modified_ms(r.data or {})) for r in records])
            load_.after = ((body.get("paging") or {}).get("next") or {}).get("after")
            yield Page(spec.name, records, dump(load_.cursor()), meter.take())
            if not load_.after:
                return

    def _list_page(self, spec: ObjectSpec, after: str | None, *, archived: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": self.config.page_size}
        if after:
            kwargs["after"] = after
        if archived:
            kwargs.update(archived=True, properties=["hs_object_id"])
        else:
            kwargs["properties"] = spec.request_properties
            if spec.associations:
                kwargs["associations"] = list(spec.associations)
        return self.client.call(self.client.objects_basic.get_page, spec.name, what=f"list {spec.name}",
                                **kwargs) or {}

    # ------------------------------------------------------------------ CRM objects: incremental
    def _incremental(self, spec: ObjectSpec, state: dict[str, Any]) -> Iterator[Page]:
        """Changes since the watermark, then (when due, or half done) the archived check. Only pages with
        records are yielded, plus one last page with the final cursor: a read without changes is one page, a
        caller that stops every N pages always makes progress, and the cursor remembers where the search
        stood (`window`), so the next read goes on from there."""
        meter, context = Meter(self.client), RecordContext(self, spec)
        mark = Watermark.from_state(state, self.lookback_ms)
        deletions = dict(state.get("archived") or {"checked": 0, "since": mark.since, "seen": {}})

        def cursor(archived: dict[str, Any], window: dict[str, int] | None = None) -> str:
            return dump({"mode": "incremental", **mark.state(), "archived": archived,
                         **({"window": window} if window else {})})

        start = state.get("window") or {"low": mark.low, "offset": 0}
        last: list[RemoteRecord] = []
        for results, following in self._search_windows(spec, int(start["low"]), int(start["offset"])):
            fresh = [raw for raw in results if mark.fresh(str(raw["id"]), context.modified_ms(raw))]
            records = context.records(fresh, inline=False)
            for record in records:
                mark.add(record.remote_id, context.modified_ms(record.data or {}))
            mark.prune()
            if following is None:
                last = records
            elif records:
                yield Page(spec.name, records, cursor(deletions, following), meter.take())
        due = now_ms() - int(deletions.get("checked") or 0) >= self.config.archived_check_interval_seconds * 1000
        if last or not (due or deletions.get("pending")):
            yield Page(spec.name, last, cursor(deletions), meter.take())
        if due or deletions.get("pending"):
            for tombstones, checked in self._archived(spec, deletions):
                yield Page(spec.name, tombstones, cursor(checked), meter.take())

    def _search_windows(self, spec: ObjectSpec, low: int, offset: int = 0) -> Iterator[
            tuple[list[dict[str, Any]], dict[str, int] | None]]:
        """Pages of `modified >= low`, oldest first, each with where the next search starts (None after the
        last). Each page restarts the search at the newest modified time of the previous one (records at
        exactly that time come back and are dropped by the caller), so `after` stays 0 unless more than a page
        of records share one millisecond."""
        modified = spec.modified_property
        limit = self.config.search_page_size
        while True:
            if offset + limit > SEARCH_CAP:
                raise FatalError(SYSTEM, f"search {spec.name}: more than {SEARCH_CAP} records share the modified "
                                 f"time {low}; HubSpot cannot page past that — run a full sync of {spec.name}")
            body = self._search(spec, low, offset, limit)
            results = body.get("results") or []
            if not ((body.get("paging") or {}).get("next") or {}).get("after") or not results:
                yield results, None
                return
            newest = max(to_ms((raw.get("properties") or {}).get(modified) or raw.get("updatedAt")) or low
                         for raw in results)
            low, offset = (newest, 0) if newest > low else (low, offset + len(results))
            yield results, {"low": low, "offset": offset}

    def _search(self, spec: ObjectSpec, low: int, offset: int, limit: int) -> dict[str, Any]:
        request: dict[str, Any] = {
            "filterGroups": [{"filters": [{"propertyName": spec.modified_property, "operator": "GTE",
                                           "value": str(low)}]}],
            "sorts": [{"propertyName": spec.modified_property, "direction": "ASCENDING"}],
            "properties": spec.request_properties, "limit": limit}
        if offset:
            request["after"] = str(offset)
        return self.client.call(self.client.objects_search.do_search, spec.name, request,
                                what=f"search {spec.name}") or {}

    # ------------------------------------------------------------------ CRM objects: archived records
    def _archived(self, spec: ObjectSpec, state: dict[str, Any]) -> Iterator[tuple[list[RemoteRecord],
                                                                                   dict[str, Any]]]:
        """Tombstones for records archived since the last check, with the archive state to persist. The whole
        archived list is paged (HubSpot cannot filter it by time) and records archived before the watermark
        are dropped; a check in progress is kept under `pending` (its paging token and watermark), so a read
        stopped half-way goes on from there."""
        settled = {key: value for key, value in state.items() if key != "pending"}
        pending = state.get("pending") or {}
        checked = int(pending.get("checked") or now_ms())
        mark = Watermark.from_state(pending.get("mark") or settled, self.lookback_ms)
        after = pending.get("after")
        while True:
            body = self._list_page(spec, after, archived=True)
            tombstones = []
            for raw in body.get("results") or []:
                remote_id = str(raw["id"])
                moment = to_ms(raw.get("archivedAt") or raw.get("updatedAt")) or 0
                if moment >= mark.low and mark.fresh(remote_id, moment):
                    tombstones.append(RemoteRecord(spec.name, remote_id, None, modified_at=parse_time(moment),
                                                   deleted=True))
                    mark.add(remote_id, moment)
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                mark.prune()
                yield tombstones, {"checked": checked, **mark.state()}
                return
            if tombstones:
                yield tombstones, {**settled, "pending": {"after": after, "checked": checked, "mark": mark.state()}}

    # ------------------------------------------------------------------ association reconciliation
    def reconcile(self, object_type: str, since: datetime | None) -> Iterator[Page]:
        """Records modified since `since` with their associations read again (v4 batches), as full records:
        association changes do not move `updatedAt`, so incremental reads miss them. Pages carry no cursor.
        Objects read without associations (companies, owners, …) yield nothing."""
        spec = self.spec(object_type)
        if spec.kind != "crm" or not spec.associations:
            return    # nothing the connector reads associations for: no pages, no calls
        meter, context = Meter(self.client), RecordContext(self, spec)
        start = since or datetime.now(UTC) - timedelta(seconds=self.config.reconcile_window_seconds)
        window = Watermark(to_ms(start) or 0)
        for results, _ in self._search_windows(spec, window.since):
            fresh = [raw for raw in results if window.fresh(str(raw["id"]), context.modified_ms(raw))]
            records = context.records(fresh, inline=False)
            for record in records:
                window.add(record.remote_id, context.modified_ms(record.data or {}))
            window.prune()
            if records:
                yield Page(spec.name, records, None, meter.take())

    # ------------------------------------------------------------------ owners
    def _owners(self, spec: ObjectSpec, state: dict[str, Any] | None) -> Iterator[Page]:
        """Owners cannot be searched by time: the (short) list is read and the owners whose JSON changed are
        emitted, in one page. Archived (deactivated) owners are listed with the archived check and emitted
        with `archived: true`."""
        meter = Meter(self.client)
        known: dict[str, str] = dict((state or {}).get("seen") or {})
        checked = int((state or {}).get("checked") or 0)
        check_archived = state is None or now_ms() - checked >= self.config.archived_check_interval_seconds * 1000
        changed = []
        for archived in (False, True) if check_archived else (False,):
            for raw in self._owner_list(archived):
                stamp = fingerprint(raw)
                if known.get(str(raw["id"])) != stamp:
                    known[str(raw["id"])] = stamp
                    changed.append(owner_record(raw))
        cursor = {"seen": known, "checked": now_ms() if check_archived else checked}
        yield Page(spec.name, changed, dump(cursor), meter.take())

    def _owner_list(self, archived: bool) -> Iterator[dict[str, Any]]:
        after = None
        while True:
            query: dict[str, Any] = {"limit": OWNERS_PAGE}
            if archived:
                query["archived"] = True
            if after:
                query["after"] = after
            body = self.client.call(self.client.owners_api.get_page, what="list owners", **query) or {}
            yield from body.get("results") or []
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                return

    # ------------------------------------------------------------------ pipelines
    def stage_index(self, object_type: str) -> StageIndex:
        body = self.client.call(self.client.pipelines_api.get_all, object_type,
                                what=f"list {object_type} pipelines") or {}
        return StageIndex(object_type, body.get("results") or [])

    def _pipelines(self, spec: ObjectSpec, state: dict[str, Any] | None) -> Iterator[Page]:
        """One record per stage of the deal and ticket pipelines. Pipelines rarely change, so incremental
        reads look again only once per archived-check interval; stages that disappeared become tombstones."""
        checked = int((state or {}).get("checked") or 0)
        if state is not None and now_ms() - checked < self.config.archived_check_interval_seconds * 1000:
            return
        meter = Meter(self.client)
        known: dict[str, str] = dict((state or {}).get("seen") or {})
        current: dict[str, str] = {}
        records: list[RemoteRecord] = []
        for object_type in PIPELINE_OBJECTS:
            for document in self.stage_index(object_type).stages.values():
                remote_id = f"{object_type}:{document['pipelineId']}:{document['id']}"
                current[remote_id] = fingerprint(document)
                if known.get(remote_id) != current[remote_id]:
                    records.append(RemoteRecord(spec.name, remote_id, document,
                                                created_at=parse_time(document.get("createdAt")),
                                                modified_at=parse_time(document.get("updatedAt"))))
        records += [RemoteRecord(spec.name, remote_id, None, deleted=True) for remote_id in known
                    if remote_id not in current]
        yield Page(spec.name, records, dump({"seen": current, "checked": now_ms()}), meter.take())

    # ------------------------------------------------------------------ legacy marketing email events
    def _email_events(self, spec: ObjectSpec, state: dict[str, Any] | None) -> Iterator[Page]:
        """Events from the newest `created` stored on, following the API's `offset` within one read. The
        running newest (`created`, ids at it) becomes the watermark when the read ends, so nothing depends on
        the order the API returns events in; a read killed half-way resumes from its `offset`."""
        meter = Meter(self.client)
        start = (state or {}).get("created")
        start_ids = set((state or {}).get("ids") or [])
        resume = (state or {}).get("resume") or {}
        newest, newest_ids = resume.get("created", start), list(resume.get("ids", start_ids))
        offset = resume.get("offset")
        while True:
            body = self._events_page(start, offset)
            if body is None:       # the saved offset is no longer accepted: read the window again
                offset, newest, newest_ids = None, start, list(start_ids)
                continue
            records = []
            for event in body.get("events") or []:
                created, event_id = int(event["created"]), str(event["id"])
                if created == start and event_id in start_ids:
                    continue
                records.append(event_record(event))
                if newest is None or created > newest:
                    newest, newest_ids = created, [event_id]
                elif created == newest and event_id not in newest_ids:
                    newest_ids.append(event_id)
            offset = body.get("offset") if body.get("hasMore") else None
            base = {"created": start, "ids": sorted(start_ids)}
            if offset:
                cursor = {**base, "resume": {"offset": offset, "created": newest, "ids": newest_ids}}
            else:
                cursor = {"created": newest, "ids": sorted(newest_ids)}
            yield Page(spec.name, records, dump(cursor), meter.take())
            if not offset:
                return

    def _events_page(self, start: int | None, offset: str | None) -> dict[str, Any] | None:
        query: dict[str, Any] = {"limit": EVENTS_PAGE, "excludeFilteredEvents": "true"}
        if start is not None:
            query["startTimestamp"] = start
        if offset:
            query["offset"] = offset
        try:
            return self.client.raw_get(EVENTS_PATH, query, what="list email events") or {}
        except FatalError as error:
            if offset and error.status == 400:
                return None
            raise


# ---------------------------------------------------------------------------------------------- records
class RecordContext:
    """Turns raw records of one object type into RemoteRecords: associations (inline or v4 batches) under
    `_associations`, the pipeline stage under `_stage` (its pipelines read once, on first need)."""

    def __init__(self, reader: Reader, spec: ObjectSpec) -> None:
        self.reader = reader
        self.client = reader.client
        self.spec = spec
        self._stages: StageIndex | None = None

    def modified_ms(self, raw: dict[str, Any]) -> int:
        properties = raw.get("properties") or {}
        return to_ms(properties.get(self.spec.modified_property) or raw.get("updatedAt")) or 0

    def records(self, raws: list[dict[str, Any]], *, inline: bool) -> list[RemoteRecord]:
        if not raws:
            return []
        if inline:
            linked = {str(raw["id"]): inline_associations(raw.get("associations"), self.spec.associations)
                      for raw in raws}
        else:
            linked = self.fetch_associations([str(raw["id"]) for raw in raws])
        return [self.record(raw, linked.get(str(raw["id"]))) for raw in raws]

    def record(self, raw: dict[str, Any], associations: dict[str, list[str]] | None) -> RemoteRecord:
        raw.pop("associations", None)  # read into `_associations` already; `raw` is this page's own parse
        extra: dict[str, Any] = {}
        if self.spec.associations:
            extra["_associations"] = associations or {name: [] for name in self.spec.associations}
        if self.spec.stages:
            pipeline_property, stage_property = self.spec.stage_properties
            properties = raw.get("properties") or {}
            stage = self.stages().find(properties.get(pipeline_property), properties.get(stage_property))
            if stage is not None:
                extra["_stage"] = {key: stage[key] for key in ("pipelineLabel", "label", "displayOrder",
                                                               "isClosed", "isWon")}
        return RemoteRecord(self.spec.name, str(raw["id"]), raw, created_at=parse_time(raw.get("createdAt")),
                            modified_at=parse_time(raw.get("updatedAt")), extra=extra)

    def stages(self) -> StageIndex:
        if self._stages is None:
            self._stages = self.reader.stage_index(self.spec.stages or "")
        return self._stages

    def fetch_associations(self, ids: list[str]) -> dict[str, dict[str, list[str]]]:
        """Associations of `ids` by the v4 batch read: one call per associated type and 100 ids."""
        found: dict[str, dict[str, list[str]]] = {i: {name: [] for name in self.spec.associations} for i in ids}
        for to_type in self.spec.associations:
            for chunk in chunks(ids, BATCH_IDS):
                for from_id, targets in self._batch_read(to_type, [{"id": i} for i in chunk]):
                    if from_id in found:
                        found[from_id][to_type] = targets
        return found

    def _batch_read(self, to_type: str, inputs: list[dict[str, Any]]) -> Iterator[tuple[str, list[str]]]:
        """(from id, target ids in HubSpot's order, labelled first) for each input; a from-id with more targets
        than one answer holds is asked again with its paging token."""
        pending: dict[str, list[dict[str, Any]]] = {}
        while inputs:
            body = self.client.call(self.client.associations_batch.get_page, self.spec.name, to_type,
                                    {"inputs": inputs}, what=f"read {self.spec.name}→{to_type} associations") or {}
            inputs = []
            for result in body.get("results") or []:
                from_id = str((result.get("from") or {}).get("id"))
                pending.setdefault(from_id, []).extend(result.get("to") or [])
                after = ((result.get("paging") or {}).get("next") or {}).get("after")
                if after:
                    inputs.append({"id": from_id, "after": after})
        for from_id, targets in pending.items():
            yield from_id, ordered_targets(
                (str(t.get("toObjectId")), any(kind.get("label") for kind in t.get("associationTypes") or []))
                for t in targets)


def inline_associations(raw: Any, wanted: tuple[str, ...]) -> dict[str, list[str]]:
    """v3 inline associations (`{"companies": {"results": [{"id", "type"}]}}`) → ids per wanted type, the
    ids with a labelled (e.g. Primary) association first."""
    out: dict[str, list[str]] = {}
    for name in wanted:
        results = ((raw or {}).get(name) or {}).get("results") or []
        out[name] = ordered_targets((str(item.get("id")), not str(item.get("type", "")).endswith("_unlabeled"))
                                    for item in results)
    return out


def ordered_targets(pairs: Iterable[tuple[str, bool]]) -> list[str]:
    """Distinct ids, labelled ones first, each group in id order (so list and v4 reads agree)."""
    labelled: dict[str, bool] = {}
    for target, is_labelled in pairs:
        labelled[target] = labelled.get(target, False) or is_labelled
    return sorted(labelled, key=lambda target: (not labelled[target], _id_key(target)))


def _id_key(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)


def chunks(items: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def owner_record(raw: dict[str, Any]) -> RemoteRecord:
    name = " ".join(part for part in (raw.get("firstName"), raw.get("lastName")) if part) or None
    return RemoteRecord("owners", str(raw["id"]), raw, created_at=parse_time(raw.get("createdAt")),
                        modified_at=parse_time(raw.get("updatedAt")), extra={"_full_name": name})


def event_record(event: dict[str, Any]) -> RemoteRecord:
    """An email event is identified by (`created`, `id`); both go into its remote id."""
    moment = parse_time(event.get("created"))
    return RemoteRecord("email_events", f"{event['created']}-{event['id']}", event, created_at=moment,
                        modified_at=moment)
