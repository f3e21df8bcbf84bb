"""HubSpot's reference data, which has no search by time: owners, pipeline stages and the legacy marketing
email events. Owners and stages are compared by fingerprint with the last read; email events follow their
own `created` watermark."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from connectors.base import Page, RemoteRecord
from connectors.errors import FatalError
from connectors.hubspot.client import HubSpotClient, HubSpotConfig, now_ms
from connectors.hubspot.cursors import dump, fingerprint, parse_time
from connectors.hubspot.objects import PIPELINE_OBJECTS, ObjectSpec
from connectors.hubspot.records import event_record, owner_record, stage_index

OWNERS_PAGE = 500                   # the owners API's maximum page size
EVENTS_PAGE = 1000                  # the legacy email events API's maximum page size
EVENTS_PATH = "/email/public/v1/events"


class ReferenceReader:
    """Reads of the objects in the object table that are not CRM objects (`kind` owners, pipelines,
    email_events)."""

    def __init__(self, client: HubSpotClient, config: HubSpotConfig) -> None:
        self.client = client
        self.config = config

    def owners(self, spec: ObjectSpec, state: dict[str, Any] | None) -> Iterator[Page]:
        """Owners cannot be searched by time: the (short) list is read and the owners whose JSON changed are
        emitted, in one page. Archived (deactivated) owners are listed with the archived check and emitted
        with `archived: true`."""
        meter = self.client.meter.pages()
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


    def pipelines(self, spec: ObjectSpec, state: dict[str, Any] | None) -> Iterator[Page]:
        """One record per stage of the deal and ticket pipelines. Pipelines rarely change, so incremental
        reads look again only once per archived-check interval; stages that disappeared become tombstones."""
        checked = int((state or {}).get("checked") or 0)
        if state is not None and now_ms() - checked < self.config.archived_check_interval_seconds * 1000:
            return
        meter = self.client.meter.pages()
        known: dict[str, str] = dict((state or {}).get("seen") or {})
        current: dict[str, str] = {}
        records: list[RemoteRecord] = []
        for object_type in PIPELINE_OBJECTS:
            for document in stage_index(self.client, object_type).stages.values():
                remote_id = f"{object_type}:{document['pipelineId']}:{document['id']}"
                current[remote_id] = fingerprint(document)
                if known.get(remote_id) != current[remote_id]:
                    records.append(RemoteRecord(spec.name, remote_id, document,
                                                created_at=parse_time(document.get("createdAt")),
                                                modified_at=parse_time(document.get("updatedAt"))))
        records += [RemoteRecord(spec.name, remote_id, None, deleted=True) for remote_id in known
                    if remote_id not in current]
        yield Page(spec.name, records, dump({"seen": current, "checked": now_ms()}), meter.take())


    def email_events(self, spec: ObjectSpec, state: dict[str, Any] | None) -> Iterator[Page]:
        """Events from the newest `created` stored on, following the API's `offset` within one read. The
        running newest (`created`, ids at it) becomes the watermark when the read ends, so nothing depends on
        the order the API returns events in; a read killed half-way resumes from its `offset`."""
        meter = self.client.meter.pages()
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
