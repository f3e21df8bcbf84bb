"""HubSpot's error envelopes.

Single-object errors: `{"status":"error","message","correlationId","category"[,"subCategory","errors","context",
"links"]}`. Items of a batch's `errors` array (StandardError): `{"status":"error","category","message","context",
"errors","links"}`. Rate limits use `errorType`/`policyName` instead of `category`.
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.responses import Response

from sandbox.common.emulator import json_response


def correlation_id() -> str:
    return str(uuid.uuid4())


def envelope(message: str, category: str, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"status": "error", "message": message, "correlationId": correlation_id(),
                            "category": category}
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def error_response(status: int, message: str, category: str, headers: dict[str, str] | None = None,
                   **extra: Any) -> Response:
    return json_response(envelope(message, category, **extra), status, headers)


class HubSpotError(Exception):
    """Raised inside handlers; the emulator turns it into HubSpot's error response."""

    def __init__(self, status: int, category: str, message: str, *, errors: list[dict] | None = None,
                 context: dict[str, list[str]] | None = None, sub_category: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.category = category
        self.message = message
        self.errors = errors
        self.context = context
        self.sub_category = sub_category

    def response(self) -> Response:
        return error_response(self.status, self.message, self.category, subCategory=self.sub_category,
                              errors=self.errors, context=self.context)

    def standard_error(self, ids: list[str] | None = None) -> dict[str, Any]:
        """This error as one entry of a batch response's `errors` array."""
        context = dict(self.context or {})
        if ids is not None:
            context["ids"] = ids
        return {"status": "error", "category": self.category, "message": self.message, "context": context,
                "errors": self.errors or [], "links": {}}


def validation(message: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(400, "VALIDATION_ERROR", message, **kwargs)


def not_found(message: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(404, "OBJECT_NOT_FOUND", message, **kwargs)


def conflict(message: str, **kwargs: Any) -> HubSpotError:
    return HubSpotError(409, "CONFLICT", message, **kwargs)


def invalid_properties(problems: list[dict[str, str]]) -> HubSpotError:
    """HubSpot's "Property values were not valid" error; `problems` items: {name, message, error}."""
    results = [{"isValid": False, "message": p["message"], "error": p["error"], "name": p["name"]}
               for p in problems]
    details = [{"message": p["message"], "code": p["error"], "in": p["name"]} for p in problems]
    return HubSpotError(400, "VALIDATION_ERROR",
                        "Property values were not valid: " + orjson.dumps(results).decode(), errors=details)


def parse_json(raw: bytes) -> Any:
    if not raw:
        raise validation("Invalid input JSON: the request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise validation(f"Invalid input JSON on line 1, column {error.pos + 1}: {error.msg}") from None
