"""What every HubSpot batch endpoint shares: the `inputs` envelope and the batch response (200/201, 207 with
errors), used by the object, association and property routes alike."""

from __future__ import annotations

from typing import Any

from starlette.responses import Response

from sandbox.common.emulator import json_response
from sandbox.hubspot.errors import validation
from sandbox.hubspot.util import iso_ms

BATCH_MAX = 100


def batch_inputs(body: Any, maximum: int = BATCH_MAX) -> list[dict[str, Any]]:
    """The `inputs` of a batch request body; HubSpot's 400 when there are none or too many."""
    if not isinstance(body, dict) or not isinstance(body.get("inputs"), list):
        raise validation("Invalid input JSON: expected {\"inputs\": [...]}")
    inputs = body["inputs"]
    if len(inputs) > maximum:
        raise validation(f"The maximum number of inputs supported in a batch request is {maximum}; got "
                         f"{len(inputs)}")
    if not all(isinstance(item, dict) for item in inputs):
        raise validation("Each input must be an object")
    return inputs


def batch_body(now_ms: int, results: list[Any], errors: list[dict[str, Any]], started: int,
               ok_status: int) -> Response:
    """`{"status":"COMPLETE","results",["numErrors","errors"],"startedAt","completedAt"}`; 207 with errors."""
    body: dict[str, Any] = {"status": "COMPLETE", "results": results}
    if errors:
        body["numErrors"] = len(errors)
        body["errors"] = errors
    body["startedAt"] = iso_ms(started)
    body["completedAt"] = iso_ms(now_ms)
    return json_response(body, 207 if errors else ok_status)
