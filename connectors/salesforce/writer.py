"""Writes through sObject Collections (`/composite/sobjects`): ≤ 200 records per call, `allOrNone: false`,
one result per record in input order (Salesforce REST API, "sObject Collections":
https://developer.salesforce.com/docs/atlas.en-us.api_rest.meta/api_rest/resources_composite_sobjects_collections.htm).

Bodies are cleaned with the org's describe before they leave: fields Salesforce derives (IsClosed) or only
accepts on create (TaskSubtype) are left out, and a field the org does not have fails just that operation
with a message naming it, so one bad record never sinks the batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from connectors.base import WriteOp, WriteResult
from connectors.errors import AuthError, ConnectorError, RetriableError
from connectors.salesforce.client import SalesforceClient

log = logging.getLogger("journeyhub.connectors.salesforce")

COLLECTION_LIMIT = 200
RETRIABLE_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "SERVER_UNAVAILABLE", "REQUEST_RUNNING_TOO_LONG",
                             "UNKNOWN_EXCEPTION", "QUERY_TIMEOUT"})
WHO = frozenset({"Contact", "Lead"})
WHAT = frozenset({"Account", "Opportunity", "Case"})
ACTIVITIES = frozenset({"Task", "Event"})
TEXT = frozenset({"string", "textarea", "picklist", "multipicklist", "combobox", "email", "phone", "url",
                  "encryptedstring"})
NUMBER = frozenset({"double", "int", "currency", "percent", "long"})
ACCEPTS = {  # the hub's field type → describe types that can hold it
    "text": TEXT, "string": TEXT, "str": TEXT, "external_id": TEXT, "datetime": frozenset({"datetime"}),
    "date": frozenset({"date", "datetime"}), "number": NUMBER, "float": NUMBER, "int": NUMBER,
    "boolean": frozenset({"boolean"}), "bool": frozenset({"boolean"}),
}


class Writer:
    def __init__(self, client: SalesforceClient) -> None:
        self.client = client

    # ------------------------------------------------------------------ write
    def write(self, sobject: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """One result per op, in op order; ops are grouped by kind (and upsert key) into ≤ 200-record calls."""
        results: list[WriteResult | None] = [None] * len(ops)
        fields = self.client.describe(sobject) if ops else {}
        groups: dict[tuple[str, str | None], list[int]] = {}
        for index, op in enumerate(ops):
            problem = _invalid(op) or _unknown_fields(sobject, op, fields)
            if problem:
                results[index] = WriteResult(op.key, False, remote_id=op.remote_id, error=problem)
                continue
            groups.setdefault((op.kind, op.external_id[0] if op.external_id else None), []).append(index)
        stopped: RetriableError | None = None
        for (kind, ext_field), indexes in groups.items():
            for start in range(0, len(indexes), COLLECTION_LIMIT):
                chunk = indexes[start:start + COLLECTION_LIMIT]
                if stopped is not None:
                    self._fail(results, ops, chunk, stopped)
                    continue
                try:
                    answers = self._send(sobject, kind, ext_field, [ops[i] for i in chunk], fields)
                except AuthError:
                    raise
                except ConnectorError as error:
                    self._fail(results, ops, chunk, error)
                    if isinstance(error, RetriableError):
                        stopped = error
                    continue
                for index, answer in zip(chunk, answers, strict=True):
                    results[index] = _result(ops[index], kind, answer)
        return [result for result in results if result is not None]

    def _send(self, sobject: str, kind: str, ext_field: str | None, ops: list[WriteOp],
              fields: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        if kind == "delete":
            ids = ",".join(op.remote_id or "" for op in ops)
            answer = self.client.call(f"delete {sobject} records", lambda sf: sf.restful(
                "composite/sobjects", method="DELETE", params={"ids": ids, "allOrNone": "false"}), sobject=sobject)
        else:
            records = [self._record(sobject, kind, op, fields) for op in ops]
            path = f"composite/sobjects/{sobject}/{ext_field}" if kind == "upsert" else "composite/sobjects"
            method = {"create": "POST", "update": "PATCH", "upsert": "PATCH"}[kind]
            body = {"allOrNone": False, "records": records}
            answer = self.client.call(f"{kind} {sobject} records", lambda sf: sf.restful(
                path, method=method, json=body), sobject=sobject)
        if not isinstance(answer, list) or len(answer) != len(ops):
            raise ConnectorError("salesforce", f"{kind} {sobject}: expected {len(ops)} results, got {answer!r:.200}")
        return answer

    def _record(self, sobject: str, kind: str, op: WriteOp, fields: dict[str, dict[str, Any]]) -> dict[str, Any]:
        record: dict[str, Any] = {"attributes": {"type": sobject}}
        dropped = []
        for name, value in op.data.items():
            if _writable(fields.get(name), kind):
                record[name] = value
            else:
                dropped.append(name)
        if sobject in ACTIVITIES:
            for object_type, remote_id in op.associations:
                if object_type in WHO:
                    record["WhoId"] = remote_id
                elif object_type in WHAT:
                    record["WhatId"] = remote_id
        if kind == "update":
            record["id"] = op.remote_id
        elif kind == "upsert" and op.external_id:
            record[op.external_id[0]] = op.external_id[1]
        if dropped:
            log.debug("%s %s %s: not sending %s (derived, or settable on create only)", kind, sobject, op.key,
                      ", ".join(dropped))
        return record

    @staticmethod
    def _fail(results: list[WriteResult | None], ops: Sequence[WriteOp], chunk: list[int],
              error: ConnectorError) -> None:
        for index in chunk:
            results[index] = WriteResult(ops[index].key, False, remote_id=ops[index].remote_id, error=error.message,
                                         retriable=isinstance(error, RetriableError))

    # ------------------------------------------------------------------ helpers for the write-back
    def missing_fields(self, sobject: str, wanted: list[tuple[str, str | None]]) -> list[str]:
        """Fields the write-back needs that the org lacks (or has with a type or access that cannot hold the
        value): the ones an admin must create or fix."""
        fields = self.client.describe(sobject, fresh=True)
        missing = []
        for name, kind in wanted:
            entry = fields.get(name)
            accepts = ACCEPTS.get((kind or "").lower())
            if entry is None:
                reason = "does not exist"
            elif accepts is not None and entry.get("type") not in accepts:
                reason = f"is a {entry.get('type')} field, the hub writes {kind}"
            elif kind == "external_id" and not entry.get("externalId"):
                reason = "is not marked External ID"
            elif kind == "external_id" and not entry.get("unique"):
                reason = "is not marked Unique (upserts by a non-unique external id can insert twice)"
            elif not (entry.get("createable") or entry.get("updateable")):
                reason = "is read-only for the integration user"
            else:
                continue
            log.warning("Salesforce %s.%s %s", sobject, name, reason)
            missing.append(name)
        return missing

    def read_current(self, sobject: str, ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """Current values of `fields` for `ids` (≤ 200 ids per call); ids that no longer exist are absent."""
        names = ",".join(dict.fromkeys(["Id", *fields]))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), COLLECTION_LIMIT):
            chunk = ",".join(ids[start:start + COLLECTION_LIMIT])
            answer = self.client.call(f"read {sobject} records", lambda sf, chunk=chunk: sf.restful(
                f"composite/sobjects/{sobject}", params={"ids": chunk, "fields": names}), sobject=sobject)
            for record in answer or []:
                if record:
                    found[record["Id"]] = {key: value for key, value in record.items() if key != "attributes"}
        return found


def _invalid(op: WriteOp) -> str | None:
    if op.kind in ("update", "delete") and not op.remote_id:
        return f"MISSING_ARGUMENT: {op.kind} needs the record's id"
    if op.kind == "upsert" and not (op.external_id and op.external_id[0] and op.external_id[1]):
        return "MISSING_ARGUMENT: upsert needs external_id = (field, value)"
    return None


def _unknown_fields(sobject: str, op: WriteOp, fields: dict[str, dict[str, Any]]) -> str | None:
    unknown = [name for name in op.data if name not in fields]
    if op.external_id and op.external_id[0] not in fields:
        unknown.append(op.external_id[0])
    if not unknown:
        return None
    return (f"INVALID_FIELD: {sobject} has no field {', '.join(unknown)} — an admin must create it "
            "(docs/crm-conventions.md lists the fields the hub writes)")


def _writable(entry: dict[str, Any] | None, kind: str) -> bool:
    if entry is None:
        return False
    if kind == "create":
        return bool(entry.get("createable"))
    if kind == "update":
        return bool(entry.get("updateable"))
    return bool(entry.get("createable")) and bool(entry.get("updateable"))  # upsert may do either


def _result(op: WriteOp, kind: str, answer: dict[str, Any]) -> WriteResult:
    if answer.get("success"):
        created = answer.get("created") if kind == "upsert" else (kind == "create")
        return WriteResult(op.key, True, remote_id=answer.get("id") or op.remote_id, created=created)
    errors = answer.get("errors") or []
    text = "; ".join(f"{item.get('statusCode')}: {item.get('message')}"
                     + (f" ({', '.join(item['fields'])})" if item.get("fields") else "") for item in errors)
    retriable = any(item.get("statusCode") in RETRIABLE_CODES for item in errors)
    return WriteResult(op.key, False, remote_id=answer.get("id") or op.remote_id, error=text or "failed",
                       retriable=retriable)
