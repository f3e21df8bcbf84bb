"""Reading HubSpot's CRM objects: full loads (the live list, then the archived one), incremental search windows,
archived records and association reconciliation (the cursors are described in `connectors.hubspot.cursors`);
owners, pipelines and email events are read by `connectors.hubspot.reference`. Every read asks for the
properties it is given (the mapping's) plus the connector's own (`ObjectSpec.request_properties`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from connectors.base import Page, RemoteRecord
from connectors.errors import ConfigError, FatalError
from connectors.hubspot.client import SYSTEM, HubSpotClient, HubSpotConfig, now_ms
from connectors.hubspot.cursors import FullLoad, Watermark, dump, load, to_ms
from connectors.hubspot.objects import OBJECTS, ObjectSpec
from connectors.hubspot.records import RecordContext, archived_ms
from connectors.hubspot.reference import ReferenceReader

SEARCH_CAP = 10_000


class Reader:
    """All reads of one connector: CRM objects here, owners/pipelines/email events by its `ReferenceReader`."""

    def __init__(self, client: HubSpotClient, config: HubSpotConfig) -> None:
        self.client = client
        self.config = config
        self.lookback_ms = int(config.lookback_seconds * 1000)
        self.reference = ReferenceReader(client, config)

    def spec(self, object_type: str) -> ObjectSpec:
        spec = OBJECTS.get(object_type)
        if spec is None:
            raise ConfigError(SYSTEM, f"unknown object type {object_type!r}; known: {', '.join(OBJECTS)}")
        return spec

    def read(self, object_type: str, cursor: str | None, full: bool,
             fields: Sequence[str] | None = None) -> Iterator[Page]:
        """The generator for one object type: a full load without a cursor (or with `full`), else changes."""
        spec = self.spec(object_type)
        state = None if full else load(cursor, object_type)
        if spec.kind == "owners":
            return self.reference.owners(spec, state)
        if spec.kind == "pipelines":
            return self.reference.pipelines(spec, state)
        if spec.kind == "email_events":
            return self.reference.email_events(spec, state)
        properties = spec.request_properties(fields)
        if state is None or state.get("mode") == "full":
            return self._full(spec, state, properties)
        return self._incremental(spec, state, properties)

    # ------------------------------------------------------------------ CRM objects: full load
    def _full(self, spec: ObjectSpec, state: dict[str, Any] | None, properties: list[str]) -> Iterator[Page]:
        """The live list, then the archived one: records deleted before the first sync (HubSpot keeps them 90
        days) come as tombstones with their last properties and associations, so history does not depend on
        the day the hub was installed."""
        meter, context = self.client.meter.pages(), RecordContext(self.client, spec)
        load_ = FullLoad.from_state(state, self.lookback_ms)
        while not load_.archived:
            body = self._list_page(spec, load_.after, properties)
            records = context.records(body.get("results") or [], inline=True)
            load_.take([(r.remote_id, context.modified_ms(r.data or {})) for r in records])
            load_.after = ((body.get("paging") or {}).get("next") or {}).get("after")
            load_.archived = not load_.after
            yield Page(spec.name, records, dump(load_.cursor()), meter.take())
        while not load_.finished:
            body = self._list_page(spec, load_.after, properties, archived=True)
            records = context.records(body.get("results") or [], inline=True, archived=True)
            load_.after = ((body.get("paging") or {}).get("next") or {}).get("after")
            load_.finished = not load_.after
            yield Page(spec.name, records, dump(load_.cursor()), meter.take())

    def _list_page(self, spec: ObjectSpec, after: str | None, properties: list[str], *,
                   archived: bool = False) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"limit": self.config.page_size, "properties": properties}
        if after:
            kwargs["after"] = after
        associations = spec.archived_with if archived else spec.associations
        if associations:
            kwargs["associations"] = list(associations)
        if archived:
            kwargs["archived"] = True
        return self.client.call(self.client.objects_basic.get_page, spec.name, what=f"list {spec.name}",
                                **kwargs) or {}

    # ------------------------------------------------------------------ CRM objects: incremental
    def _incremental(self, spec: ObjectSpec, state: dict[str, Any], properties: list[str]) -> Iterator[Page]:
        """Changes since the watermark, then (when due, or half done) the archived check. Only pages with
        records are yielded, plus one last page with the final cursor: a read without changes is one page, a
        caller that stops every N pages always makes progress, and the cursor remembers where the search
        stood (`window`), so the next read goes on from there."""
        meter, context = self.client.meter.pages(), RecordContext(self.client, spec)
        mark = Watermark.from_state(state, self.lookback_ms)
        deletions = dict(state.get("archived") or {"checked": 0, "since": mark.since, "seen": {}})

        def cursor(archived: dict[str, Any], window: dict[str, int] | None = None) -> str:
            return dump({"mode": "incremental", **mark.state(), "archived": archived,
                         **({"window": window} if window else {})})

        start = state.get("window") or {"low": mark.low, "offset": 0}
        last: list[RemoteRecord] = []
        for results, following in self._search_windows(spec, properties, int(start["low"]), int(start["offset"])):
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
            for tombstones, checked in self._archived(spec, deletions, properties):
                yield Page(spec.name, tombstones, cursor(checked), meter.take())

    def _search_windows(self, spec: ObjectSpec, properties: list[str], low: int, offset: int = 0) -> Iterator[
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
            body = self._search(spec, properties, low, offset, limit)
            results = body.get("results") or []
            if not ((body.get("paging") or {}).get("next") or {}).get("after") or not results:
                yield results, None
                return
            newest = max(to_ms((raw.get("properties") or {}).get(modified) or raw.get("updatedAt")) or low
                         for raw in results)
            low, offset = (newest, 0) if newest > low else (low, offset + len(results))
            yield results, {"low": low, "offset": offset}

    def _search(self, spec: ObjectSpec, properties: list[str], low: int, offset: int, limit: int) -> dict[str, Any]:
        request: dict[str, Any] = {
            "filterGroups": [{"filters": [{"propertyName": spec.modified_property, "operator": "GTE",
                                           "value": str(low)}]}],
            "sorts": [{"propertyName": spec.modified_property, "direction": "ASCENDING"}],
            "properties": properties, "limit": limit}
        if offset:
            request["after"] = str(offset)
        return self.client.call(self.client.objects_search.do_search, spec.name, request,
                                what=f"search {spec.name}") or {}

    # ------------------------------------------------------------------ CRM objects: archived records
    def _archived(self, spec: ObjectSpec, state: dict[str, Any], properties: list[str]) -> Iterator[
            tuple[list[RemoteRecord], dict[str, Any]]]:
        """Tombstones for records archived since the last check (with their last properties and associations),
        with the archive state to persist. The whole archived list is paged (HubSpot cannot filter it by time)
        and records archived before the watermark are dropped; a check in progress is kept under `pending` (its
        paging token and watermark), so a read stopped half-way goes on from there."""
        settled = {key: value for key, value in state.items() if key != "pending"}
        pending = state.get("pending") or {}
        checked = int(pending.get("checked") or now_ms())
        mark = Watermark.from_state(pending.get("mark") or settled, self.lookback_ms)
        after = pending.get("after")
        context = RecordContext(self.client, spec)
        while True:
            body = self._list_page(spec, after, properties, archived=True)
            fresh = []
            for raw in body.get("results") or []:
                moment = archived_ms(raw)
                if moment >= mark.low and mark.fresh(str(raw["id"]), moment):
                    fresh.append(raw)
                    mark.add(str(raw["id"]), moment)
            tombstones = context.records(fresh, inline=True, archived=True)
            after = ((body.get("paging") or {}).get("next") or {}).get("after")
            if not after:
                mark.prune()
                yield tombstones, {"checked": checked, **mark.state()}
                return
            if tombstones:
                yield tombstones, {**settled, "pending": {"after": after, "checked": checked, "mark": mark.state()}}

    # ------------------------------------------------------------------ association reconciliation
    def reconcile(self, object_type: str, since: datetime | None,
                  fields: Sequence[str] | None = None) -> Iterator[Page]:
        """Records modified since `since` with their associations read again (v4 batches), as full records:
        association changes do not move `updatedAt`, so incremental reads miss them. Pages carry no cursor.
        Objects read without associations (companies, owners, …) yield nothing."""
        spec = self.spec(object_type)
        if spec.kind != "crm" or not spec.associations:
            return    # nothing the connector reads associations for: no pages, no calls
        meter, context = self.client.meter.pages(), RecordContext(self.client, spec)
        start = since or datetime.now(UTC) - timedelta(seconds=self.config.reconcile_window_seconds)
        window = Watermark(to_ms(start) or 0)
        for results, _ in self._search_windows(spec, spec.request_properties(fields), window.since):
            fresh = [raw for raw in results if window.fresh(str(raw["id"]), context.modified_ms(raw))]
            records = context.records(fresh, inline=False)
            for record in records:
                window.add(record.remote_id, context.modified_ms(record.data or {}))
            window.prune()
            if records:
                yield Page(spec.name, records, None, meter.take())
