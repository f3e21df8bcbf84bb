"""What a HubSpot record carries besides its properties: its associations (inline on list reads, v4 batch
reads otherwise) under `_associations`, and its pipeline stage (label, closed, won) under `_stage`."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from connectors.base import RemoteRecord
from connectors.hubspot.client import HubSpotClient
from connectors.hubspot.cursors import parse_time, to_ms
from connectors.hubspot.objects import ObjectSpec

BATCH_IDS = 100                     # v4 association batch reads: ids per call


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


def stage_index(client: HubSpotClient, object_type: str) -> StageIndex:
    """The pipelines of one object type (`deals`, `tickets`), read in one call."""
    body = client.call(client.pipelines_api.get_all, object_type, what=f"list {object_type} pipelines") or {}
    return StageIndex(object_type, body.get("results") or [])


# ---------------------------------------------------------------------------------------------- records
class RecordContext:
    """Turns raw records of one object type into RemoteRecords: associations (inline or v4 batches) under
    `_associations`, the pipeline stage under `_stage` (its pipelines read once, on first need)."""

    def __init__(self, client: HubSpotClient, spec: ObjectSpec) -> None:
        self.client = client
        self.spec = spec
        self._stages: StageIndex | None = None

    def modified_ms(self, raw: dict[str, Any]) -> int:
        properties = raw.get("properties") or {}
        return to_ms(properties.get(self.spec.modified_property) or raw.get("updatedAt")) or 0

    def records(self, raws: list[dict[str, Any]], *, inline: bool, archived: bool = False) -> list[RemoteRecord]:
        """`archived`: records of the archived list, tombstones that keep their last properties and the
        associations on their own side (`ObjectSpec.archived_with`)."""
        if not raws:
            return []
        wanted = self.spec.archived_with if archived else self.spec.associations
        if inline:
            linked = {str(raw["id"]): inline_associations(raw.get("associations"), wanted) for raw in raws}
        else:
            linked = self.fetch_associations([str(raw["id"]) for raw in raws])
        return [self.record(raw, linked.get(str(raw["id"])), wanted, archived=archived) for raw in raws]

    def record(self, raw: dict[str, Any], associations: dict[str, list[str]] | None,
               wanted: tuple[str, ...] | None = None, *, archived: bool = False) -> RemoteRecord:
        raw.pop("associations", None)  # read into `_associations` already; `raw` is this page's own parse
        wanted = self.spec.associations if wanted is None else wanted
        extra: dict[str, Any] = {}
        if wanted:
            extra["_associations"] = associations or {name: [] for name in wanted}
        if self.spec.stages:
            pipeline_property, stage_property = self.spec.stage_properties
            properties = raw.get("properties") or {}
            stage = self.stages().find(properties.get(pipeline_property), properties.get(stage_property))
            if stage is not None:
                extra["_stage"] = {key: stage[key] for key in ("pipelineLabel", "label", "displayOrder",
                                                               "isClosed", "isWon")}
        modified = archived_ms(raw) if archived else raw.get("updatedAt")
        return RemoteRecord(self.spec.name, str(raw["id"]), raw, created_at=parse_time(raw.get("createdAt")),
                            modified_at=parse_time(modified), deleted=archived, extra=extra)

    def stages(self) -> StageIndex:
        if self._stages is None:
            self._stages = stage_index(self.client, self.spec.stages or "")
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


def archived_ms(raw: dict[str, Any]) -> int:
    """When an archived record was archived (its `archivedAt`, else its last update), epoch ms."""
    return to_ms(raw.get("archivedAt") or raw.get("updatedAt")) or 0


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
