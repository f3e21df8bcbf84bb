"""A CRM page holding an escaped lone surrogate is decoded, not failed (orjson alone refuses the whole page)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from connectors.dynamics.client import _json as dataverse_json
from connectors.errors import UpstreamError
from connectors.hubspot.client import parse as hubspot_parse
from connectors.jsonbody import decode

PAGE = b'{"results": [{"id": "1", "name": "Ana \\ud83d"}, {"id": "2", "name": "Bo"}]}'


def test_orjson_alone_refuses_the_page() -> None:
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(PAGE)


def test_a_page_with_a_lone_surrogate_is_decoded_whole() -> None:
    expected = {"results": [{"id": "1", "name": "Ana \ud83d"}, {"id": "2", "name": "Bo"}]}
    assert decode(PAGE) == expected
    assert hubspot_parse(PAGE, "list contacts") == expected
    assert dataverse_json(httpx.Response(200, content=PAGE)) == expected


def test_what_is_not_json_stays_an_error() -> None:
    with pytest.raises(ValueError):
        decode(b"<html>bad gateway</html>")
    with pytest.raises(UpstreamError, match="not JSON"):
        hubspot_parse(b"<html>bad gateway</html>", "list contacts")
    assert dataverse_json(httpx.Response(200, content=b"<html>")) is None
