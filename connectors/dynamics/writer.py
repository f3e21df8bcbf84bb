"""Writing to Dataverse through `$batch`, and the two reads the write-back needs (Microsoft's "Execute batch
operations using the Web API" and "Use Upsert to insert or update a record").

Every write is one part of a `POST $batch` (at most 1000 per batch), sent without change sets and with
`Prefer: odata.continue-on-error`, so one bad record does not stop the others; each part's answer becomes the
`WriteResult` of its operation, in order. Only idempotent requests are sent (PATCH by id or alternate key,
DELETE), so re-sending a batch after a throttled or failed attempt is safe: parts refused for a transient
reason (429, 5xx) are re-sent under the shared retry policy, the rest keep their result.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import orjson

from connectors import retry
from connectors.base import WriteOp, WriteResult
from connectors.dynamics.client import DataverseClient, error_of, retry_after, translate
from connectors.dynamics.objects import SYSTEM, EntitySet, entity_set, logical_name
from connectors.dynamics.reader import attributes
from connectors.errors import ConfigError, RateLimited, RetriableError, UpstreamError

log = logging.getLogger("journeyhub.connectors.dynamics")

MAX_BATCH = 1000           # Dataverse's limit of operations per $batch
IDS_PER_QUERY = 200        # `pk eq … or …` clauses per GET (≈ 10 KB of URL, well under the limits)
GUID = re.compile(r"\(([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})\)")
KEY_SAFE = ":'-_.~@!$&*+,;="
CRLF = b"\r\n"
TYPE_FAMILIES = {  # write-back's column types → the Dataverse AttributeTypes that can hold them
    "string": {"String", "Memo"}, "text": {"String", "Memo"}, "datetime": {"DateTime"},
    "date": {"DateTime"}, "number": {"Integer", "BigInt", "Decimal", "Double", "Money"},
    "integer": {"Integer", "BigInt"}, "boolean": {"Boolean"}, "bool": {"Boolean"},
}


class _BatchFailed(Exception):
    """The `$batch` request itself kept failing (already retried by the client): stop, report the parts."""

    def __init__(self, error: RetriableError) -> None:
        super().__init__(str(error))
        self.error = error


@dataclass
class Part:
    """One request of a batch, or one answer to it."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes = b""
    status: int = 0


# ---------------------------------------------------------------------------------------------- write
class Writer:
    def __init__(self, client: DataverseClient) -> None:
        self.client = client
        self.path = urlsplit(client.root).path        # /api/data/v9.2/

    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        entity = entity_set(object_type)
        results: list[WriteResult | None] = [None] * len(ops)
        requests: dict[int, Part] = {}
        for index, op in enumerate(ops):
            try:
                requests[index] = self._request(entity, op)
            except (ValueError, ConfigError) as error:
                results[index] = WriteResult(op.key, False, error=f"{entity.name}: {error}")
        pending = list(requests)
        for start in range(0, len(pending), MAX_BATCH):
            self._send(entity, ops, requests, pending[start:start + MAX_BATCH], results)
        return [result or WriteResult(op.key, False, error="not sent") for op, result in zip(ops, results,
                                                                                            strict=True)]

    def _send(self, entity: EntitySet, ops: Sequence[WriteOp], requests: dict[int, Part], chunk: list[int],
              results: list[WriteResult | None]) -> None:
        """One batch; parts refused for a transient reason are sent again (only those) under the retry policy."""
        pending = list(chunk)

        def attempt() -> None:
            nonlocal pending
            try:
                answers = self.batch([requests[index] for index in pending])
            except RetriableError as error:  # the client already retried the request itself
                raise _BatchFailed(error) from error
            retry_again, wait, throttled = [], None, False
            for position, index in enumerate(pending):
                answer = answers[position] if position < len(answers) else None
                result = results[index] = self._result(entity, ops[index], answer)
                if result.retriable:
                    retry_again.append(index)
                    throttled = throttled or (answer is not None and answer.status == 429)
                    asked = retry_after(httpx.Headers(answer.headers)) if answer is not None else None
                    if asked is not None:
                        wait = max(wait or 0.0, asked)
            pending = retry_again
            if pending:
                raise (RateLimited if throttled else UpstreamError)(
                    SYSTEM, f"{len(pending)} of the batch's operations were refused for now", retry_after=wait)

        try:
            retry.call(attempt, policy=self.client.config.retry)
        except (RetriableError, _BatchFailed) as error:
            cause = error.error if isinstance(error, _BatchFailed) else error
            log.warning("%s: %d writes still failing after retries: %s", entity.name, len(pending), cause)
            for index in pending:
                if results[index] is None:  # the batch itself never got an answer
                    results[index] = WriteResult(ops[index].key, False, remote_id=ops[index].remote_id,
                                                 error=str(cause), retriable=True)

    # ------------------------------------------------------------------ requests
    def _request(self, entity: EntitySet, op: WriteOp) -> Part:
        """The HTTP request for one operation (ValueError when the operation cannot be expressed)."""
        body = {name: value for name, value in op.data.items() if name != entity.key}
        body.update(self._binds(entity, op))
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if op.kind == "update":
            if not op.remote_id:
                raise ValueError(f"update {op.key!r} needs remote_id (updates never create rows)")
            return Part("PATCH", self._url(entity, f"({_guid(op.remote_id)})"), headers | {"If-Match": "*"},
                        _dumps(body))
        if op.kind == "upsert":
            if op.external_id is not None:
                name, value = op.external_id
                body.pop(name, None)                      # key columns are not repeated in the body
                segment = f"({name}='{quote(str(value).replace(chr(39), chr(39) * 2), safe=KEY_SAFE)}')"
            elif op.remote_id:
                segment = f"({_guid(op.remote_id)})"
            else:
                raise ValueError(f"upsert {op.key!r} needs external_id (alternate key) or remote_id (GUID)")
            return Part("PATCH", self._url(entity, segment, select=entity.key),
                        headers | {"Prefer": "return=representation"}, _dumps(body))
        if op.kind == "create":
            if op.remote_id:
                body[entity.key] = _guid(op.remote_id)
            return Part("POST", self._url(entity, "", select=entity.key),
                        headers | {"Prefer": "return=representation"}, _dumps(body))
        if op.kind == "delete":
            if not op.remote_id:
                raise ValueError(f"delete {op.key!r} needs remote_id")
            return Part("DELETE", self._url(entity, f"({_guid(op.remote_id)})"), {})
        raise ValueError(f"unknown write kind {op.kind!r}")

    def _url(self, entity: EntitySet, key: str, select: str | None = None) -> str:
        return f"{self.path}{entity.name}{key}" + (f"?$select={select}" if select else "")

    def _binds(self, entity: EntitySet, op: WriteOp) -> dict[str, str]:
        """`op.associations` → `<navigation property>@odata.bind` values, e.g.
        `regardingobjectid_contact_task@odata.bind: /contacts(<id>)`."""
        binds = {}
        for object_type, remote_id in op.associations:
            if entity.bind is None:
                raise ValueError(f"{entity.name} rows cannot be linked to {object_type} by this connector")
            target = entity_set(object_type)
            nav = entity.bind.format(target=target.logical)
            binds[f"{nav}@odata.bind"] = f"/{target.name}({_guid(remote_id)})"
        return binds

    # ------------------------------------------------------------------ results
    def _result(self, entity: EntitySet, op: WriteOp, answer: Part | None) -> WriteResult:
        if answer is None:
            return WriteResult(op.key, False, error="the $batch answer has no part for this operation",
                               retriable=True)
        body = _loads(answer.body)
        if answer.status < 400 or (op.kind == "delete" and answer.status == 404):
            remote_id = _remote_id(answer, body, entity) or op.remote_id
            created = {201: True, 200: False}.get(answer.status) if op.kind in ("upsert", "create") else None
            return WriteResult(op.key, True, remote_id=remote_id, created=created)
        error = translate(answer.status, httpx.Headers(answer.headers), body, f"{op.kind} {entity.name} {op.key}",
                          refreshable=True, single_record=True)
        code, _ = error_of(body)
        return WriteResult(op.key, False, remote_id=op.remote_id, error=str(error) if error else code,
                           retriable=isinstance(error, RetriableError))

    # ------------------------------------------------------------------ $batch
    def batch(self, parts: list[Part]) -> list[Part]:
        """One `POST $batch` with these requests; their answers in order."""
        boundary = f"batch_{uuid.uuid4()}"
        response = self.client.request("POST", "$batch", content=encode_batch(parts, boundary), headers={
            "Content-Type": f"multipart/mixed; boundary={boundary}", "Prefer": "odata.continue-on-error"})
        return decode_batch(response.headers.get("content-type", ""), response.content)

    # ------------------------------------------------------------------ reads for the write-back
    def missing_columns(self, entity_logical_name: str, columns: list[tuple[str, str | None]]) -> list[str]:
        """The columns (name, type) this table lacks — or has with a type that cannot hold the value — so the
        write-back can stop with one message listing what an admin must create (the Web API cannot)."""
        existing = {str(item.get("LogicalName")): str(item.get("AttributeType"))
                    for item in attributes(self.client, logical_name(entity_logical_name))}
        missing = []
        for name, kind in columns:
            have = existing.get(name)
            if have is None or (kind and have not in TYPE_FAMILIES.get(kind.lower(), {kind})):
                missing.append(name)
        return missing

    def read_current(self, object_type: str, remote_ids: Sequence[str],
                     columns: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Current values of `columns` for these rows, keyed by id (absent ids are left out): `pk eq … or …`
        queries of `IDS_PER_QUERY` ids, all in one `$batch` when there is more than one."""
        entity = entity_set(object_type)
        ids = sorted({_guid(remote_id) for remote_id in remote_ids})
        if not ids:
            return {}
        select = ",".join(dict.fromkeys([entity.key, *columns]))
        queries = [f"{entity.name}?$select={select}&$filter=" + quote(
            " or ".join(f"{entity.key} eq {value}" for value in ids[start:start + IDS_PER_QUERY]), safe="$=,'()")
            for start in range(0, len(ids), IDS_PER_QUERY)]
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(queries), MAX_BATCH):
            for body in self.query_bodies(queries[start:start + MAX_BATCH]):
                for row in body.get("value", []):
                    found[str(row[entity.key]).lower()] = {name: row.get(name) for name in columns}
        return found

    def query_bodies(self, queries: list[str]) -> list[dict[str, Any]]:
        if len(queries) == 1:
            return [self.client.get_json(queries[0])]
        answers = self.batch([Part("GET", f"{self.path}{query}", {"Accept": "application/json"})
                              for query in queries])
        bodies = []
        for answer in answers:
            body = _loads(answer.body)
            error = translate(answer.status, httpx.Headers(answer.headers), body, "GET (in $batch)",
                              refreshable=True)
            if error is not None:
                raise error
            bodies.append(body if isinstance(body, dict) else {})
        if len(bodies) != len(queries):
            raise UpstreamError(SYSTEM, f"$batch answered {len(bodies)} of {len(queries)} queries")
        return bodies


# ----------------------------------------------------------------------------------------- multipart
def encode_batch(parts: list[Part], boundary: str) -> bytes:
    """A `multipart/mixed` batch body without change sets (OData 4.0 §11.7, as Dataverse documents it), CRLF
    line ends."""
    chunks = []
    for part in parts:
        lines = [f"--{boundary}", "Content-Type: application/http", "Content-Transfer-Encoding: binary", "",
                 f"{part.method} {part.url} HTTP/1.1", *(f"{k}: {v}" for k, v in part.headers.items()), ""]
        chunks.append("\r\n".join(lines).encode() + CRLF + part.body + CRLF)
    return b"".join(chunks) + f"--{boundary}--".encode() + CRLF


def decode_batch(content_type: str, body: bytes) -> list[Part]:
    """The answers of a `$batch` response, in order (change-set answers are flattened in place)."""
    boundary = _boundary(content_type)
    if boundary is None:
        raise UpstreamError(SYSTEM, f"$batch answered {content_type or 'no content type'}, not multipart/mixed")
    answers: list[Part] = []
    for chunk in body.split(b"--" + boundary.encode())[1:]:
        if chunk.startswith(b"--"):
            break
        head, payload = _split_head(chunk.lstrip(b"\r\n"))
        headers = _headers(head)
        inner = _boundary(headers.get("content-type", ""))
        if inner is not None:
            answers += decode_batch(headers["content-type"], payload)
        else:
            answers.append(_http_answer(payload))
    return answers


def _http_answer(payload: bytes) -> Part:
    head, body = _split_head(payload)
    status_line, _, rest = head.partition(b"\n")
    words = status_line.decode("latin-1").split()
    if len(words) < 2 or not words[1].isdigit():
        raise UpstreamError(SYSTEM, f"$batch part without an HTTP status line: {status_line[:80]!r}")
    return Part("", "", _headers(rest), body.rstrip(b"\r\n"), int(words[1]))


def _split_head(chunk: bytes) -> tuple[bytes, bytes]:
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in chunk:
            head, _, rest = chunk.partition(separator)
            return head, rest
    return chunk, b""


def _headers(head: bytes) -> dict[str, str]:
    headers = {}
    for line in head.decode("latin-1").splitlines():
        name, colon, value = line.partition(":")
        if colon:
            headers[name.strip().lower()] = value.strip()
    return headers


def _boundary(content_type: str) -> str | None:
    if not content_type.lower().startswith("multipart/"):
        return None
    match = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
    return match.group(1) if match else None


# --------------------------------------------------------------------------------------------- helpers
def _guid(value: str) -> str:
    """A GUID as Dataverse keys expect it (lowercase, no braces); anything else cannot be a key."""
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{value!r} is not a Dataverse id (GUID)") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"cannot send {type(value).__name__} to Dataverse")


def _dumps(body: dict[str, Any]) -> bytes:
    try:
        return orjson.dumps(body, default=_json_default, option=orjson.OPT_PASSTHROUGH_DATETIME)
    except TypeError as error:
        raise ValueError(str(error)) from None


def _loads(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body.strip() else None
    except orjson.JSONDecodeError:
        return None


def _remote_id(answer: Part, body: Any, entity: EntitySet) -> str | None:
    if isinstance(body, dict) and body.get(entity.key):
        return str(body[entity.key]).lower()
    match = GUID.search(answer.headers.get("odata-entityid", "") or answer.headers.get("location", ""))
    return match.group(1).lower() if match else None
