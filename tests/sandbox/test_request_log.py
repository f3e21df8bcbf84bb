"""The emulators' request log keeps what a benchmark needs to replay a request, never its credentials."""

from __future__ import annotations

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import Response

from sandbox.common.emulator import Emulator, json_response
from sandbox.common.server import EmulatorServer


@pytest.mark.slow  # a loopback server
def test_the_log_keeps_the_headers_that_shape_a_response_but_no_credentials() -> None:
    emulator = Emulator()

    async def items(request: Request) -> Response:
        return json_response({"value": []})

    emulator.route("/items", items, ["GET"])
    with EmulatorServer(emulator) as server, httpx.Client(base_url=server.url) as client:
        client.get("/items?limit=5", headers={"Authorization": "Bearer sandbox-token", "Cookie": "session=1",
                                              "Prefer": "odata.maxpagesize=5000"})
        (entry,) = client.get("/__sandbox/requests").json()["log"]
    assert (entry["method"], entry["path"], entry["query"], entry["status"]) == ("GET", "/items", "limit=5", 200)
    assert entry["headers"]["prefer"] == "odata.maxpagesize=5000"
    assert not {"authorization", "cookie", "host"} & set(entry["headers"])
    assert "sandbox-token" not in str(entry)
