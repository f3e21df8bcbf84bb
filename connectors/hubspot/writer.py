"""Writing to HubSpot in batches of 100: updates, creates with inline associations, upserts, archives; the
custom properties the hub writes (`ensure_properties`); and the current values a conflict check compares.

Every input carries `objectWriteTraceId` = the op's key, so a 207's per-input errors can be matched to
their op where HubSpot names it; creates of notes/tasks are also matched through the marker property (the
response does not say which input a created record came from).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

from connectors.base import WriteOp, WriteResult
from connectors.errors import AuthError, ConfigError, FatalError, PermissionDenied, RetriableError
from connectors.hubspot.client import SYSTEM, HubSpotClient
from connectors.hubspot.objects import ASSOCIATION_TYPE_IDS, MARKER_PROPERTY, OBJECTS

BATCH = 100
#: the hub's property types → HubSpot's (type, fieldType)
PROPERTY_TYPES = {"string": ("string", "text"), "datetime": ("datetime", "date"), "number": ("number", "number"),
                  "date": ("date", "date"), "bool": ("bool", "booleancheckbox")}
#: categories of per-input batch errors worth trying again
RETRIABLE_CATEGORIES = {"RATE_LIMITS", "RATE_LIMIT", "INTERNAL_ERROR", "TIMEOUT", "SERVICE_UNAVAILABLE"}
MARKED_OBJECTS = ("notes", "tasks")

Indexed = list[tuple[int, WriteOp]]


def property_value(value: Any) -> Any:
    """A value as HubSpot takes it: datetimes as ISO-8601 UTC with milliseconds, dates as YYYY-MM-DD,
    booleans as "true"/"false", None as "" (which clears the property)."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


def properties_of(data: dict[str, Any]) -> dict[str, Any]:
    return {name: property_value(value) for name, value in data.items()}


def unique_chunks(items: Indexed, key: Any) -> Iterator[Indexed]:
    """Chunks of at most BATCH ops in which no record appears twice (HubSpot rejects duplicate ids)."""
    pending = list(items)
    while pending:
        chunk, seen, later = [], set(), []
        for item in pending:
            identity = key(item[1])
            if len(chunk) < BATCH and identity not in seen:
                seen.add(identity)
                chunk.append(item)
            else:
                later.append(item)
        yield chunk
        pending = later


class Writer:
    def __init__(self, client: HubSpotClient) -> None:
        self.client = client

    # ------------------------------------------------------------------ write
    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """One result per op, in op order. Per-record failures come back as results; only errors that stop
        every write (credentials, permissions) are raised."""
        if object_type not in OBJECTS or OBJECTS[object_type].kind != "crm":
            raise ConfigError(SYSTEM, f"cannot write {object_type!r}: writable object types are CRM objects")
        results: dict[int, WriteResult] = {}
        groups: dict[str, Indexed] = {"create": [], "update": [], "upsert": [], "delete": []}
        for index, op in enumerate(ops):
            problem = self._invalid(object_type, op)
            if problem:
                results[index] = WriteResult(op.key, False, op.remote_id, error=problem)
            else:
                groups[op.kind].append((index, op))
        for chunk in unique_chunks(groups["update"], lambda op: op.remote_id):
            results.update(self._batch(object_type, "update", chunk, self._update))
        for chunk in unique_chunks(groups["upsert"], lambda op: op.external_id):
            results.update(self._batch(object_type, "upsert", chunk, self._upsert))
        for chunk in unique_chunks(groups["create"], lambda op: op.key):
            results.update(self._batch(object_type, "create", chunk, self._create))
        for chunk in unique_chunks(groups["delete"], lambda op: op.remote_id):
            results.update(self._batch(object_type, "archive", chunk, self._archive))
        return [results[index] for index in range(len(ops))]

    def _invalid(self, object_type: str, op: WriteOp) -> str | None:
        if op.kind in ("update", "delete") and not op.remote_id:
            return f"{op.kind} needs the record's remote_id"
        if op.kind == "upsert" and not op.external_id:
            return "upsert needs external_id (unique property, value)"
        if op.kind not in ("create", "update", "upsert", "delete"):
            return f"unknown write kind {op.kind!r}"
        for to_type, _ in op.associations:
            if op.kind != "create":
                return "associations are written with creates only"
            if (object_type, to_type) not in ASSOCIATION_TYPE_IDS:
                return f"the hub does not associate {object_type} with {to_type}"
        return None

    def _batch(self, object_type: str, action: str, chunk: Indexed, send: Any) -> dict[int, WriteResult]:
        """Sends one chunk; a failure of the whole request becomes a failed result for each of its ops."""
        try:
            return send(object_type, chunk)
        except (AuthError, PermissionDenied, ConfigError):
            raise
        except RetriableError as error:
            return {i: WriteResult(op.key, False, op.remote_id, error=error.message, retriable=True)
                    for i, op in chunk}
        except FatalError as error:  # HubSpot refused this batch (400/409): its ops failed, the run goes on
            return {i: WriteResult(op.key, False, op.remote_id, error=f"{action}: {error.message}")
                    for i, op in chunk}

    # ------------------------------------------------------------------ the four batch calls
    def _update(self, object_type: str, chunk: Indexed) -> dict[int, WriteResult]:
        inputs = [{"id": op.remote_id, "properties": properties_of(op.data), "objectWriteTraceId": op.key}
                  for _, op in chunk]
        body = self.client.call(self.client.objects_batch.update, object_type, {"inputs": inputs},
                                what=f"batch update {object_type}") or {}
        done = [str(result["id"]) for result in body.get("results") or []]
        errors = BatchErrors(body.get("errors") or [])
        # an update addressed to a merged-away contact updates (and names) the survivor: leftover results
        # pair with the ops nothing else accounts for, in order
        leftover = iter(i for i in done if i not in {str(op.remote_id) for _, op in chunk})
        out = {}
        for i, op in chunk:
            if str(op.remote_id) in done:
                out[i] = WriteResult(op.key, True, str(op.remote_id), created=False)
            elif not errors.names(op) and (survivor := next(leftover, None)):
                out[i] = WriteResult(op.key, True, survivor, created=False)
            else:
                out[i] = errors.result(op, str(op.remote_id))
        return out

    def _create(self, object_type: str, chunk: Indexed) -> dict[int, WriteResult]:
        inputs = [self._create_input(object_type, op) for _, op in chunk]
        body = self.client.call(self.client.objects_batch.create, object_type, {"inputs": inputs},
                                what=f"batch create {object_type}", resend=False) or {}
        created = body.get("results") or []
        errors = BatchErrors(body.get("errors") or [])
        by_marker = {str((r.get("properties") or {}).get(MARKER_PROPERTY)): str(r["id"]) for r in created
                     if (r.get("properties") or {}).get(MARKER_PROPERTY)}
        in_order = len(created) == len(chunk) and not errors.items
        out, failed = {}, []
        for position, (i, op) in enumerate(chunk):
            marker = inputs[position]["properties"].get(MARKER_PROPERTY)
            remote_id = by_marker.get(str(marker)) if marker else None
            if remote_id is None and in_order and not by_marker:
                remote_id = str(created[position]["id"])
            if remote_id:
                out[i] = WriteResult(op.key, True, remote_id, created=True)
            else:
                failed.append((i, op))
        if len(failed) > 1 and not errors.attributes(op for _, op in failed) and errors.items:
            # HubSpot did not say which input each error belongs to: each failed op alone names its own
            for item in failed:
                out.update(self._create(object_type, [item]))
            return out
        out.update({i: errors.result(op, None, fallback="HubSpot did not create this record") for i, op in failed})
        return out

    def _create_input(self, object_type: str, op: WriteOp) -> dict[str, Any]:
        data = dict(op.data)
        if object_type in MARKED_OBJECTS:
            data.setdefault(MARKER_PROPERTY, op.key)
        item: dict[str, Any] = {"properties": properties_of(data), "objectWriteTraceId": op.key}
        if op.associations:
            item["associations"] = [
                {"to": {"id": str(to_id)}, "types": [{"associationCategory": "HUBSPOT_DEFINED",
                                                       "associationTypeId": ASSOCIATION_TYPE_IDS[(object_type, to)]}]}
                for to, to_id in op.associations]
        return item

    def _upsert(self, object_type: str, chunk: Indexed) -> dict[int, WriteResult]:
        inputs = []
        for _, op in chunk:
            name, value = op.external_id or ("", "")
            inputs.append({"idProperty": name, "id": str(value), "properties": properties_of(op.data),
                           "objectWriteTraceId": op.key})
        body = self.client.call(self.client.objects_batch.upsert, object_type, {"inputs": inputs},
                                what=f"batch upsert {object_type}") or {}
        results = body.get("results") or []
        errors = BatchErrors(body.get("errors") or [])
        in_order = len(results) == len(chunk)
        out = {}
        for position, (i, op) in enumerate(chunk):
            name, value = op.external_id or ("", "")
            match = next((r for r in results if str((r.get("properties") or {}).get(name, "")).lower()
                          == str(value).lower()), results[position] if in_order else None)
            out[i] = (WriteResult(op.key, True, str(match["id"]), created=bool(match.get("new"))) if match
                      else errors.result(op, str(value)))
        return out

    def _archive(self, object_type: str, chunk: Indexed) -> dict[int, WriteResult]:
        inputs = [{"id": op.remote_id} for _, op in chunk]
        self.client.call(self.client.objects_batch.archive, object_type, {"inputs": inputs},
                         what=f"batch archive {object_type}")
        return {i: WriteResult(op.key, True, op.remote_id) for i, op in chunk}

    # ------------------------------------------------------------------ properties
    def ensure_properties(self, object_type: str, group_name: str, group_label: str,
                          properties: Sequence[tuple[str, str, str]]) -> list[str]:
        """Creates the property group and every missing property; returns the names created. Idempotent:
        with everything in place it is one call. An existing property of another type is a ConfigError."""
        wanted = {name: (label, self._types(name, kind)) for name, label, kind in properties}
        body = self.client.call(self.client.properties_batch.read, object_type,
                                {"archived": False, "inputs": [{"name": name} for name in wanted]},
                                what=f"read {object_type} properties") or {}
        existing = {item["name"]: item for item in body.get("results") or []}
        clashes = [f"{name} is {existing[name].get('type')}, the hub needs {types[0]}"
                   for name, (_, types) in wanted.items() if name in existing
                   and existing[name].get("type") != types[0]]
        if clashes:
            raise ConfigError(SYSTEM, f"{object_type} properties exist with another type: {'; '.join(clashes)}. "
                              "Archive them in HubSpot or rename them in mappings/writeback.yaml")
        missing = [name for name in wanted if name not in existing]
        if not missing:
            return []
        self._ensure_group(object_type, group_name, group_label)
        inputs = [{"name": name, "label": wanted[name][0], "type": wanted[name][1][0],
                   "fieldType": wanted[name][1][1], "groupName": group_name} for name in missing]
        for start in range(0, len(inputs), BATCH):
            created = self.client.call(self.client.properties_batch.create, object_type,
                                       {"inputs": inputs[start:start + BATCH]},
                                       what=f"create {object_type} properties") or {}
            problems = [error.get("message", "") for error in created.get("errors") or []
                        if error.get("category") not in ("OBJECT_ALREADY_EXISTS", "CONFLICT")]
            if problems:
                raise ConfigError(SYSTEM, f"could not create {object_type} properties: {'; '.join(problems)}")
        return missing

    def _types(self, name: str, kind: str) -> tuple[str, str]:
        if kind not in PROPERTY_TYPES:
            raise ConfigError(SYSTEM, f"property {name}: type {kind!r} is not one the hub creates "
                              f"({', '.join(PROPERTY_TYPES)})")
        return PROPERTY_TYPES[kind]

    def _ensure_group(self, object_type: str, name: str, label: str) -> None:
        try:
            self.client.call(self.client.property_groups.create, object_type,
                             {"name": name, "label": label, "displayOrder": -1},
                             what=f"create {object_type} property group {name}")
        except FatalError as error:
            if error.status != 409:   # 409: the group exists already, which is what we want
                raise

    # ------------------------------------------------------------------ current values
    def read_current(self, object_type: str, remote_ids: Sequence[str],
                     properties: Sequence[str]) -> dict[str, dict[str, Any]]:
        """`{id: {property: value}}` for the ids that exist (batch reads of 100); missing ids are absent."""
        found: dict[str, dict[str, Any]] = {}
        ids = list(dict.fromkeys(str(i) for i in remote_ids))
        for start in range(0, len(ids), BATCH):
            body = self.client.call(self.client.objects_batch.read, object_type,
                                    {"inputs": [{"id": i} for i in ids[start:start + BATCH]],
                                     "properties": list(properties), "propertiesWithHistory": []},
                                    what=f"batch read {object_type}") or {}
            for result in body.get("results") or []:
                values = result.get("properties") or {}
                found[str(result["id"])] = {name: values.get(name) for name in properties}
        return found


class BatchErrors:
    """The `errors` of a 207, matched to ops by `objectWriteTraceId` or record id where HubSpot names them."""

    def __init__(self, items: list[dict[str, Any]]) -> None:
        self.items = items
        self.by_key: dict[str, dict[str, Any]] = {}
        for item in items:
            context = item.get("context") or {}
            for key in [*(context.get("objectWriteTraceId") or []), *(context.get("ids") or [])]:
                self.by_key.setdefault(str(key), item)

    def names(self, op: WriteOp) -> bool:
        return op.key in self.by_key or str(op.remote_id) in self.by_key

    def attributes(self, ops: Iterable[WriteOp]) -> bool:
        """Whether every one of `ops` has an error naming it."""
        return all(self.names(op) for op in ops)

    def result(self, op: WriteOp, remote_id: str | None, fallback: str = "HubSpot returned no result") -> WriteResult:
        item = self.by_key.get(op.key) or (self.by_key.get(remote_id) if remote_id else None)
        if item is None and len(self.items) == 1:
            item = self.items[0]
        if item is None:
            message = "; ".join(_describe(error) for error in self.items) or fallback
            return WriteResult(op.key, False, remote_id, error=message)
        return WriteResult(op.key, False, remote_id, error=_describe(item),
                           retriable=str(item.get("category")) in RETRIABLE_CATEGORIES)


def _describe(error: dict[str, Any]) -> str:
    details = [str(e.get("message")) for e in error.get("errors") or [] if isinstance(e, dict) and e.get("message")]
    text = f"{error.get('category', 'ERROR')}: {error.get('message', '')}"
    plain = text.replace("\\", "")
    return f"{text} ({'; '.join(details)})" if details and all(d not in plain for d in details) else text
