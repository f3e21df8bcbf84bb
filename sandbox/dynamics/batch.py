"""Multipart framing of OData `$batch` (OData 4.0 §11.7 as Dataverse uses it): parsing a request body into
operations and change sets, and writing the `batchresponse_…` / `changesetresponse_…` body with CRLF lines.

Only framing lives here; executing the operations is the emulator's job (routes.py).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from http import HTTPStatus

from sandbox.dynamics.odata import bad_request

CRLF = b"\r\n"
MAX_OPERATIONS = 1000


@dataclass
class Operation:
    method: str
    url: str
    headers: dict[str, str]          # lower-case names
    body: bytes
    content_id: str | None = None


@dataclass
class ChangeSet:
    operations: list[Operation] = field(default_factory=list)


def boundary_of(content_type: str | None) -> str | None:
    if not content_type or not content_type.lower().startswith("multipart/mixed"):
        return None
    m = re.search(r'boundary\s*=\s*("([^"]+)"|[^;\s]+)', content_type, re.IGNORECASE)
    if not m:
        return None
    return m.group(2) or m.group(1)


def split_parts(body: bytes, boundary: str) -> list[bytes]:
    """The encapsulated parts between `--boundary` delimiter lines (CRLF or bare LF accepted)."""
    delimiter = b"--" + boundary.encode("latin-1")
    lines = body.split(b"\n")
    parts: list[bytes] = []
    current: list[bytes] | None = None
    closed = False
    for line in lines:
        stripped = line.rstrip(b"\r").rstrip()
        if stripped == delimiter or stripped == delimiter + b"--":
            if current is not None:
                parts.append(b"\n".join(current))
            if stripped.endswith(b"--") and stripped != delimiter:
                closed = True
                current = None
                break
            current = []
            continue
        if current is not None:
            current.append(line)
    if not closed:
        raise bad_request("The batch request body is not terminated with its closing boundary delimiter.")
    # the line break before a delimiter belongs to the delimiter
    return [part[:-1] if part.endswith(b"\r") else part for part in parts]


def _headers_and_content(raw: bytes) -> tuple[dict[str, str], bytes]:
    m = re.search(rb"\r?\n\r?\n", raw)
    if m is None:
        head, content = raw, b""
    else:
        head, content = raw[: m.start()], raw[m.end():]
    headers: dict[str, str] = {}
    for line in re.split(rb"\r?\n", head):
        if not line.strip():
            continue
        name, sep, value = line.decode("utf-8").partition(":")
        if not sep:
            raise bad_request(f"The batch part header '{line.decode('utf-8', 'replace')}' is malformed.")
        headers[name.strip().lower()] = value.strip()
    return headers, content


def _operation(part_headers: dict[str, str], content: bytes) -> Operation:
    content_type = part_headers.get("content-type", "").lower()
    if not content_type.startswith("application/http"):
        raise bad_request("The content type of a batch part must be 'application/http'.")
    content = content.lstrip(b"\r\n")
    first, _sep, rest = content.partition(b"\n")
    m = re.match(rb"\s*([A-Za-z]+)\s+(\S+)(?:\s+HTTP/1\.[01])?\s*$", first.rstrip(b"\r"))
    if m is None:
        raise bad_request("A batch operation does not start with an HTTP request line.")
    method, url = m.group(1).decode().upper(), m.group(2).decode("utf-8")
    if not rest.strip():
        headers, body = {}, b""
    elif re.match(rb"\r?\n", rest):
        headers, body = {}, re.sub(rb"^\r?\n", b"", rest)
    else:
        headers, body = _headers_and_content(rest)
    content_id = part_headers.get("content-id") or headers.get("content-id")
    return Operation(method, url, headers, body.rstrip(b"\r\n"), content_id)


def parse_batch(content_type: str | None, body: bytes) -> list[Operation | ChangeSet]:
    boundary = boundary_of(content_type)
    if boundary is None:
        raise bad_request("The batch request must have a 'Content-Type' header of 'multipart/mixed' with a "
                          "boundary parameter.")
    items: list[Operation | ChangeSet] = []
    for raw in split_parts(body, boundary):
        headers, content = _headers_and_content(raw)
        inner = boundary_of(headers.get("content-type"))
        if inner is not None:
            changeset = ChangeSet()
            for raw_op in split_parts(content, inner):
                op_headers, op_content = _headers_and_content(raw_op)
                if boundary_of(op_headers.get("content-type")):
                    raise bad_request("Change sets cannot be nested.")
                changeset.operations.append(_operation(op_headers, op_content))
            items.append(changeset)
        else:
            items.append(_operation(headers, content))
    return items


@dataclass
class PartResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes = b""
    content_id: str | None = None


def _http_part(part: PartResponse) -> bytes:
    lines = [b"Content-Type: application/http", b"Content-Transfer-Encoding: binary"]
    if part.content_id:
        lines.append(f"Content-ID: {part.content_id}".encode())
    lines.append(b"")
    try:
        reason = HTTPStatus(part.status).phrase
    except ValueError:
        reason = "Unknown"
    lines.append(f"HTTP/1.1 {part.status} {reason}".encode())
    for name, value in part.headers:
        lines.append(f"{name}: {value}".encode())
    lines.append(b"")
    lines.append(part.body)
    return CRLF.join(lines)


class BatchWriter:
    """Builds the multipart/mixed response body."""

    def __init__(self) -> None:
        self.boundary = f"batchresponse_{uuid.uuid4()}"
        self._chunks: list[bytes] = []

    @property
    def content_type(self) -> str:
        return f"multipart/mixed; boundary={self.boundary}"

    def add(self, part: PartResponse) -> None:
        self._chunks.append(b"--" + self.boundary.encode() + CRLF + _http_part(part) + CRLF)

    def add_changeset(self, parts: list[PartResponse]) -> None:
        inner = f"changesetresponse_{uuid.uuid4()}".encode()
        chunk = [b"--" + self.boundary.encode(), b"Content-Type: multipart/mixed; boundary=" + inner, b""]
        body = b"".join(b"--" + inner + CRLF + _http_part(p) + CRLF for p in parts) + b"--" + inner + b"--"
        self._chunks.append(CRLF.join(chunk) + CRLF + body + CRLF)

    def finish(self) -> bytes:
        return b"".join(self._chunks) + b"--" + self.boundary.encode() + b"--" + CRLF


def count_operations(items: list[Operation | ChangeSet]) -> int:
    return sum(len(item.operations) if isinstance(item, ChangeSet) else 1 for item in items)
