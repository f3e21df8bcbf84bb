"""What the Dataverse connector puts on the wire and how it reacts to each answer (respx, strict).

Tokens (fetch, reuse, refresh once on 401), throttling and server errors under the retry policy, the error
classes callers see, links followed byte for byte, change-tracking fallbacks, and `$batch` framing.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs

import httpx
import pytest
import respx

from connectors.base import WriteOp
from connectors.dynamics import DynamicsConfig, DynamicsConnector
from connectors.dynamics.objects import ENTITY_SETS
from connectors.dynamics.reader import Cursor, fingerprint
from connectors.errors import AuthError, ConfigError, FatalError, PermissionDenied, RateLimited, UpstreamError
from connectors.retry import RetryPolicy

ORG = "https://acme.crm4.dynamics.com"
API = f"{ORG}/api/data/v9.2/"
TOKEN_URL = "https://login.microsoftonline.com/tenant-1/oauth2/v2.0/token"
FAST = RetryPolicy(max_attempts=4, max_seconds=30, initial_wait=0.5, max_backoff=10, max_vendor_wait=30)
CONTACTS = ENTITY_SETS["contacts"]
GUID_A, GUID_B = "6f1a1b52-0d2e-4c1b-9a11-0c2f3a4b5c6d", "7a2b2c63-1e3f-4d2c-8b22-1d3a4b5c6d7e"
NEXT_LINK = (f"{API}contacts?$select=contactid,lastname&$skiptoken=%3Ccookie%20pagenumber=%222%22%20pagingcookie"
             "=%22%253ccookie%2520page%253d%25221%2522%253e%253ccontactid%2520last%253d%2522%257bA%257d%2522%2520"
             "%252f%253e%253c%252fcookie%253e%22%20istracking=%22True%22%20/%3E")
DELTA_LINK = f"{API}contacts?$select=contactid,lastname&$deltatoken=919042%2108%2f22%2f2017%2008%3a10%3a44"
NEW_DELTA_LINK = f"{API}contacts?$select=contactid,lastname&$deltatoken=919058%2108%2f23%2f2017%2008%3a10%3a44"


@pytest.fixture
def mock() -> Iterator[respx.MockRouter]:
    with respx.mock(assert_all_called=True, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the retry policy asked for (tenacity sleeps through time.sleep)."""
    recorded: list[float] = []
    monkeypatch.setattr("time.sleep", recorded.append)
    return recorded


def static(**overrides: object) -> DynamicsConnector:
    return DynamicsConnector(DynamicsConfig(url=ORG, access_token="static-token", retry=FAST, **overrides))


def login(**overrides: object) -> DynamicsConnector:
    return DynamicsConnector(DynamicsConfig(url=ORG, token_url=TOKEN_URL, client_id="app-1", client_secret="s3cret",
                                            retry=FAST, **overrides))


def token_answers(*tokens: str, expires_in: int = 3599) -> list[httpx.Response]:
    return [httpx.Response(200, json={"token_type": "Bearer", "expires_in": expires_in, "ext_expires_in": expires_in,
                                      "access_token": token}) for token in tokens]


def error(status: int, code: str, message: str, **headers: str) -> httpx.Response:
    return httpx.Response(status, json={"error": {"code": code, "message": message}}, headers=headers)


def row(remote_id: str, name: str, modified: str = "2024-02-01T10:00:00Z") -> dict[str, object]:
    return {"@odata.etag": 'W/"1"', "contactid": remote_id, "lastname": name, "createdon": "2024-01-01T00:00:00Z",
            "modifiedon": modified}


def whoami(seen: list[str], answers: Callable[[str], httpx.Response]) -> Callable[[httpx.Request], httpx.Response]:
    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return answers(request.headers["Authorization"])
    return answer


# ----------------------------------------------------------------------------------------------- tokens
def test_a_client_credentials_token_is_fetched_once_reused_and_refreshed_once_on_401(mock: respx.MockRouter) -> None:
    token = mock.post(TOKEN_URL).mock(side_effect=token_answers("t1", "t2"))
    seen: list[str] = []
    calls = iter([200, 401, 200])
    mock.get(f"{API}WhoAmI").mock(side_effect=whoami(seen, lambda _auth: httpx.Response(
        next(calls), json={"UserId": GUID_A})))
    hub = login()
    hub.check()
    hub.check()                                    # 401 on t1 → one new token → the same request again
    assert seen == ["Bearer t1", "Bearer t1", "Bearer t2"]
    assert token.call_count == 2 and hub.api_calls == 5
    form = parse_qs(token.calls[0].request.content.decode())
    assert form == {"grant_type": ["client_credentials"], "client_id": ["app-1"], "client_secret": ["s3cret"],
                    "scope": [f"{ORG}/.default"]}


def test_the_token_is_fetched_again_shortly_before_it_expires(mock: respx.MockRouter) -> None:
    token = mock.post(TOKEN_URL).mock(side_effect=token_answers("t1", "t2"))
    seen: list[str] = []
    mock.get(f"{API}WhoAmI").mock(side_effect=whoami(seen, lambda _: httpx.Response(200, json={"UserId": GUID_A})))
    hub = login()
    now = [1000.0]
    hub.client.auth.clock = lambda: now[0]  # type: ignore[attr-defined]
    hub.check()
    now[0] += 3599 - 61
    hub.check()
    now[0] += 2
    hub.check()
    assert seen == ["Bearer t1", "Bearer t1", "Bearer t2"] and token.call_count == 2


def test_a_second_401_right_after_a_refresh_is_an_auth_error(mock: respx.MockRouter) -> None:
    token = mock.post(TOKEN_URL).mock(side_effect=token_answers("t1", "t2"))
    data = mock.get(f"{API}WhoAmI").mock(return_value=httpx.Response(401))
    with pytest.raises(AuthError, match="freshly issued token"):
        login().check()
    assert token.call_count == 2 and data.call_count == 2


def test_a_static_token_that_expired_says_how_to_configure_a_login(mock: respx.MockRouter) -> None:
    data = mock.get(f"{API}WhoAmI").mock(return_value=httpx.Response(401, headers={
        "WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access token is expired"'}))
    with pytest.raises(AuthError) as raised:
        static().check()
    assert "cannot be refreshed" in raised.value.message and "DYNAMICS_CLIENT_SECRET" in raised.value.message
    assert data.call_count == 1


def test_entra_errors_are_auth_errors_carrying_entras_description(mock: respx.MockRouter) -> None:
    token = mock.post(TOKEN_URL).mock(return_value=httpx.Response(401, json={
        "error": "invalid_client", "error_codes": [7000215],
        "error_description": "AADSTS7000215: Invalid client secret provided. Trace ID: 1"}))
    with pytest.raises(AuthError) as raised:
        login().check()
    assert "invalid_client" in raised.value.message and "AADSTS7000215: Invalid client secret" in raised.value.message
    assert token.call_count == 1


# --------------------------------------------------------------------------------------------- retries
def test_a_429_waits_exactly_what_retry_after_asks(mock: respx.MockRouter, sleeps: list[float]) -> None:
    route = mock.get(f"{API}WhoAmI").mock(side_effect=[
        error(429, "0x80072322", "Number of requests exceeded the limit of 6000 over time window of 300 seconds.",
              **{"Retry-After": "7"}),
        httpx.Response(200, json={"UserId": GUID_A})])
    hub = static()
    hub.check()
    assert sleeps == [7.0] and route.call_count == 2 and hub.api_calls == 2


def test_throttling_that_never_ends_surfaces_as_rate_limited(mock: respx.MockRouter, sleeps: list[float]) -> None:
    mock.get(f"{API}WhoAmI").mock(return_value=error(429, "0x80072321", "Combined execution time…",
                                                     **{"Retry-After": "2"}))
    with pytest.raises(RateLimited) as raised:
        static().check()
    assert raised.value.retry_after == 2.0 and sleeps == [2.0, 2.0, 2.0]


def test_server_errors_are_retried_with_growing_backoff_then_surface_as_upstream(
        mock: respx.MockRouter, sleeps: list[float]) -> None:
    route = mock.get(f"{API}WhoAmI").mock(return_value=error(500, "0x80040216", "An unexpected error occurred."))
    with pytest.raises(UpstreamError) as raised:
        static().check()
    assert route.call_count == FAST.max_attempts and raised.value.status == 500
    assert len(sleeps) == 3
    for attempt, wait in enumerate(sleeps):
        assert FAST.initial_wait * 2 ** attempt <= wait <= FAST.initial_wait * 2 ** attempt + FAST.initial_wait


def test_network_failures_are_upstream_errors(mock: respx.MockRouter, sleeps: list[float]) -> None:
    mock.get(f"{API}WhoAmI").mock(side_effect=httpx.ConnectError("connection refused"))
    with pytest.raises(UpstreamError, match="ConnectError"):
        static().check()
    assert len(sleeps) == FAST.max_attempts - 1


@pytest.mark.parametrize(("answer", "kind", "words"), [
    (error(403, "0x80040220", "Principal user is missing prvReadContact privilege."), PermissionDenied,
     "security role"),
    (error(404, "0x8006088a", "Resource not found for the segment 'contacts'."), ConfigError, "plural"),
    (error(400, "0x0", "Could not find a property named 'new_surveyscore' on type 'Microsoft.Dynamics.CRM.task'."),
     ConfigError, "does not exist"),
    (error(400, "0x80060888", "Something Dataverse dislikes."), FatalError, "Something Dataverse dislikes"),
])
def test_refusals_become_the_error_class_that_says_what_to_do(mock: respx.MockRouter, answer: httpx.Response,
                                                              kind: type, words: str) -> None:
    route = mock.get(url__startswith=f"{API}contacts").mock(return_value=answer)
    with pytest.raises(kind, match=words) as raised:
        list(static().read("contacts", None, full=True))
    assert raised.value.system == "dynamics" and route.call_count == 1


# ----------------------------------------------------------------------------------------------- reading
def test_the_initial_read_asks_for_tracking_and_follows_the_next_link_verbatim(mock: respx.MockRouter) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            return httpx.Response(200, json={"value": [row(GUID_A, "A")], "@odata.nextLink": NEXT_LINK})
        return httpx.Response(200, json={"value": [row(GUID_B, "B")], "@odata.deltaLink": DELTA_LINK})

    mock.get(url__startswith=f"{API}contacts").mock(side_effect=answer)
    pages = list(static(page_size=1).read("contacts", None, full=True))
    first, second = seen
    assert first.url.params["$select"] == CONTACTS.select()
    assert str(second.url) == NEXT_LINK, "the nextLink goes out byte for byte"
    for request in seen:
        assert request.headers["Prefer"] == ('odata.track-changes, odata.maxpagesize=1, '
                                             'odata.include-annotations="Microsoft.Dynamics.CRM.lookuplogicalname"')
        assert request.headers["OData-Version"] == "4.0" and request.headers["OData-MaxVersion"] == "4.0"
    assert [json.loads(page.cursor or "") for page in pages] == [
        {"mode": "initial", "next": NEXT_LINK, "columns": fingerprint(CONTACTS.select())},
        {"mode": "delta", "link": DELTA_LINK, "columns": fingerprint(CONTACTS.select())}]
    assert [page.api_calls for page in pages] == [1, 1]


def test_a_delta_read_turns_removal_markers_into_tombstones(mock: respx.MockRouter) -> None:
    route = mock.get(DELTA_LINK).mock(return_value=httpx.Response(200, json={
        "@odata.context": f"{API}$metadata#contacts(contactid,lastname)/$delta", "@odata.deltaLink": NEW_DELTA_LINK,
        "value": [{**row(GUID_A, "Renamed"), "_parentcustomerid_value": GUID_B,
                   "_parentcustomerid_value@Microsoft.Dynamics.CRM.lookuplogicalname": "account"},
                  {"@odata.context": f"{API}$metadata#contacts/$deletedEntity", "id": GUID_B, "reason": "deleted"}]}))
    cursor = Cursor("delta", link=DELTA_LINK, columns=fingerprint(CONTACTS.select())).dumps()
    (page,) = list(static().read("contacts", cursor))
    changed, removed = page.records
    assert (changed.remote_id, changed.deleted, changed.data["lastname"]) == (GUID_A, False, "Renamed")
    assert changed.document()["_lookup"] == {"_parentcustomerid_value": "account"}
    assert (removed.remote_id, removed.deleted, removed.data) == (GUID_B, True, None)
    assert json.loads(page.cursor or "")["link"] == NEW_DELTA_LINK and route.call_count == 1


def test_an_expired_delta_token_falls_back_to_a_full_read(mock: respx.MockRouter,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    mock.get(DELTA_LINK).mock(return_value=error(
        400, "0x80044352", "Version stamp associated with the client has expired. Please perform a full sync."))
    full = mock.get(f"{API}contacts", params={"$select": CONTACTS.select()}).mock(return_value=httpx.Response(
        200, json={"value": [row(GUID_A, "A"), row(GUID_B, "B")], "@odata.deltaLink": NEW_DELTA_LINK}))
    cursor = Cursor("delta", link=DELTA_LINK, columns=fingerprint(CONTACTS.select())).dumps()
    with caplog.at_level(logging.WARNING, "journeyhub.connectors.dynamics"):
        pages = list(static().read("contacts", cursor))
    assert [record.remote_id for page in pages for record in page.records] == [GUID_A, GUID_B]
    assert json.loads(pages[-1].cursor or "")["link"] == NEW_DELTA_LINK
    assert "track-changes" in full.calls[0].request.headers["Prefer"]
    assert "expired" in caplog.text and "reading the whole table again" in caplog.text
    assert pages[0].api_calls == 2, "the refused call is counted too"


def test_a_rejected_page_link_of_a_delta_read_restarts_that_delta_read(mock: respx.MockRouter) -> None:
    stale = f"{DELTA_LINK}&$skiptoken=%3Ccookie%20pagenumber=%222%22%20/%3E"
    mock.get(stale).mock(return_value=error(400, "0x80040203", "Invalid $skiptoken value."))
    mock.get(DELTA_LINK).mock(return_value=httpx.Response(200, json={"value": [row(GUID_A, "A")],
                                                                     "@odata.deltaLink": NEW_DELTA_LINK}))
    cursor = Cursor("delta", link=DELTA_LINK, next=stale, columns=fingerprint(CONTACTS.select())).dumps()
    (page,) = list(static().read("contacts", cursor))
    assert [record.remote_id for record in page.records] == [GUID_A]


def test_a_rejected_next_link_of_the_initial_load_restarts_the_load(mock: respx.MockRouter) -> None:
    mock.get(NEXT_LINK).mock(return_value=error(400, "0x80040203", "Invalid $skiptoken value."))
    mock.get(f"{API}contacts", params={"$select": CONTACTS.select()}).mock(return_value=httpx.Response(
        200, json={"value": [row(GUID_A, "A")], "@odata.deltaLink": NEW_DELTA_LINK}))
    cursor = Cursor("initial", next=NEXT_LINK, columns=fingerprint(CONTACTS.select())).dumps()
    (page,) = list(static().read("contacts", cursor))
    assert [record.remote_id for record in page.records] == [GUID_A]


def test_a_table_without_change_tracking_is_read_by_modifiedon(mock: respx.MockRouter,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if "$orderby" not in request.url.params:
            return error(400, "0x80072491", "Entity contact isn't enabled for change tracking.")
        return httpx.Response(200, json={"value": [row(GUID_A, "A", "2024-02-01T10:00:00Z"),
                                                   row(GUID_B, "B", "2024-02-01T10:03:00Z")]})

    route = mock.get(f"{API}contacts").mock(side_effect=answer)
    with caplog.at_level(logging.WARNING, "journeyhub.connectors.dynamics"):
        (page,) = list(static().read("contacts", None, full=True))
    tracked, ordered = (call.request for call in route.calls)
    assert "track-changes" in tracked.headers["Prefer"] and "track-changes" not in ordered.headers["Prefer"]
    assert ordered.url.params["$orderby"] == "modifiedon asc,contactid asc" and "$filter" not in ordered.url.params
    assert json.loads(page.cursor or "") == {"mode": "modifiedon", "since": "2024-02-01T10:03:00Z", "seen": {
        GUID_A: "2024-02-01T10:00:00Z", GUID_B: "2024-02-01T10:03:00Z"}}
    assert "cannot see deletes" in caplog.text and page.api_calls == 2


def test_the_watermark_rereads_its_lookback_window_and_drops_only_what_it_has_seen(mock: respx.MockRouter) -> None:
    late = "8b3c3d74-2f40-4e3d-9c33-2e4b5c6d7e8f"
    route = mock.get(f"{API}systemusers").mock(return_value=httpx.Response(200, json={"value": [
        {**row(GUID_A, "seen"), "systemuserid": GUID_A, "modifiedon": "2024-02-01T10:00:00Z"},
        {**row(late, "same second, not seen"), "systemuserid": late, "modifiedon": "2024-02-01T10:00:00Z"},
        {**row(GUID_B, "changed since"), "systemuserid": GUID_B, "modifiedon": "2024-02-01T10:00:30Z"}]}))
    cursor = json.dumps({"mode": "modifiedon", "since": "2024-02-01T10:00:00Z",
                         "seen": {GUID_A: "2024-02-01T10:00:00Z", GUID_B: "2024-02-01T09:58:00Z"}})
    (page,) = list(static().read("systemusers", cursor))
    assert route.calls[0].request.url.params["$filter"] == "modifiedon ge 2024-02-01T09:55:00Z"
    assert [record.remote_id for record in page.records] == [late, GUID_B]
    assert json.loads(page.cursor or "")["since"] == "2024-02-01T10:00:30Z"


# ----------------------------------------------------------------------------------------------- $batch
def batch_answer(boundary: str, *parts: tuple[int, dict[str, str], str]) -> httpx.Response:
    body = ""
    for status, headers, content in parts:
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        body += (f"--{boundary}\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: binary\r\n\r\n"
                 f"HTTP/1.1 {status} X\r\n{head}\r\n{content}\r\n")
    return httpx.Response(200, content=(body + f"--{boundary}--\r\n").encode(),
                          headers={"Content-Type": f"multipart/mixed; boundary={boundary}"})


def test_a_batch_is_framed_as_documented_and_each_part_answers_its_operation(mock: respx.MockRouter) -> None:
    task_id = "9c4d4e85-3051-4f4e-8d44-3f5c6d7e8f90"
    route = mock.post(f"{API}$batch").mock(return_value=batch_answer(
        "batchresponse_1",
        (204, {"OData-EntityId": f"{API}contacts({GUID_A})"}, ""),
        (201, {"Content-Type": "application/json"}, json.dumps({"activityid": task_id})),
        (400, {"Content-Type": "application/json"}, json.dumps({"error": {
            "code": "0x80044331", "message": "A validation error occurred.  The length of the 'subject' attribute"}}))))
    results = static().write("tasks", [
        WriteOp("update", "c1", {"new_journeystage": "purchase"}, remote_id=GUID_A),
        WriteOp("upsert", "t1", {"subject": "Deal won", "new_externalid": "jh:o'brien"},
                external_id=("new_externalid", "jh:o'brien"), associations=[("contacts", GUID_B)]),
        WriteOp("upsert", "t2", {"subject": "x" * 300}, external_id=("new_externalid", "jh:2"))])
    assert [(r.key, r.ok, r.remote_id, r.created, r.retriable) for r in results] == [
        ("c1", True, GUID_A, None, False), ("t1", True, task_id, True, False), ("t2", False, None, None, False)]
    assert "0x80044331" in (results[2].error or "") and "length of the 'subject'" in (results[2].error or "")
    request = route.calls[0].request
    assert request.headers["Prefer"] == "odata.continue-on-error"
    boundary = request.headers["Content-Type"].split("boundary=")[1]
    body = request.content.decode()
    assert body.count(f"--{boundary}\r\nContent-Type: application/http\r\n") == 3 and "changeset" not in body
    assert body.endswith(f"--{boundary}--\r\n")
    assert f"PATCH /api/data/v9.2/tasks({GUID_A}) HTTP/1.1\r\n" in body and "If-Match: *\r\n" in body
    assert "PATCH /api/data/v9.2/tasks(new_externalid='jh:o''brien')?$select=activityid HTTP/1.1" in body
    upsert_body = json.loads(body.split("activityid HTTP/1.1\r\n")[1].split("\r\n\r\n", 1)[1].split("\r\n--")[0])
    assert upsert_body == {"subject": "Deal won", "regardingobjectid_contact_task@odata.bind": f"/contacts({GUID_B})"}


def test_parts_refused_for_a_transient_reason_are_sent_again_alone(mock: respx.MockRouter,
                                                                    sleeps: list[float]) -> None:
    route = mock.post(f"{API}$batch").mock(side_effect=[
        batch_answer("b1", (204, {"OData-EntityId": f"{API}contacts({GUID_A})"}, ""),
                     (429, {"Retry-After": "3", "Content-Type": "application/json"},
                      json.dumps({"error": {"code": "0x80072322", "message": "Number of requests exceeded"}}))),
        batch_answer("b2", (204, {"OData-EntityId": f"{API}contacts({GUID_B})"}, ""))])
    results = static().write("contacts", [WriteOp("update", "a", {"lastname": "A"}, remote_id=GUID_A),
                                          WriteOp("update", "b", {"lastname": "B"}, remote_id=GUID_B)])
    assert [(r.ok, r.remote_id) for r in results] == [(True, GUID_A), (True, GUID_B)]
    assert sleeps == [3.0] and route.call_count == 2
    assert route.calls[1].request.content.decode().count("PATCH ") == 1


def test_operations_that_cannot_be_expressed_fail_alone_without_a_call(mock: respx.MockRouter) -> None:
    route = mock.post(f"{API}$batch").mock(return_value=batch_answer(
        "b", (204, {"OData-EntityId": f"{API}contacts({GUID_A})"}, "")))
    results = static().write("contacts", [WriteOp("update", "no-id", {"lastname": "X"}),
                                          WriteOp("update", "ok", {"lastname": "Y"}, remote_id=GUID_A),
                                          WriteOp("update", "bad-id", {"lastname": "Z"}, remote_id="003ABC")])
    assert [(r.key, r.ok) for r in results] == [("no-id", False), ("ok", True), ("bad-id", False)]
    assert "needs remote_id" in (results[0].error or "") and "GUID" in (results[2].error or "")
    assert route.call_count == 1


def test_a_batch_that_never_gets_through_reports_every_operation_as_retriable(mock: respx.MockRouter,
                                                                              sleeps: list[float]) -> None:
    route = mock.post(f"{API}$batch").mock(return_value=error(503, "0x80040216", "An unexpected error occurred."))
    results = static().write("contacts", [WriteOp("update", "a", {"lastname": "A"}, remote_id=GUID_A),
                                          WriteOp("update", "b", {"lastname": "B"}, remote_id=GUID_B)])
    assert [(r.ok, r.retriable) for r in results] == [(False, True), (False, True)]
    assert "503" in (results[0].error or "") and route.call_count == FAST.max_attempts


@pytest.mark.parametrize(("config", "words"), [
    (DynamicsConfig(url="acme.crm4.dynamics.com", access_token="t"), "must be the organisation URL"),
    (DynamicsConfig(url=ORG, client_id="app-1"), "missing: token URL (or tenant id), client secret"),
])
def test_an_incomplete_configuration_fails_before_any_call(config: DynamicsConfig, words: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(words)):
        DynamicsConnector(config)
