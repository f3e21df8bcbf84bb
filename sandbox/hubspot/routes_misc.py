"""Owners, pipelines, the legacy marketing email events API and OAuth token endpoints."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import orjson
from starlette.requests import Request
from starlette.responses import Response

from sandbox.common.emulator import json_response
from sandbox.hubspot.errors import correlation_id, not_found, validation
from sandbox.hubspot.properties import PIPELINE_PROPERTIES
from sandbox.hubspot.util import decode_cursor, encode_cursor, parse_bool

if TYPE_CHECKING:
    from sandbox.hubspot.emulator import HubSpotEmulator

OWNERS_DEFAULT = 100
OWNERS_MAX = 500
EVENTS_MAX = 1000
TOKEN_TTL = 1800
SCOPES = ["crm.objects.contacts.read", "crm.objects.contacts.write", "crm.objects.companies.read",
          "crm.objects.deals.read", "crm.objects.deals.write", "tickets", "content", "oauth",
          "crm.schemas.contacts.read", "crm.schemas.contacts.write", "crm.objects.owners.read"]


def register(emu: HubSpotEmulator) -> None:
    h = _Handlers(emu)
    emu.route("/crm/v3/owners", h.owners, ["GET"])
    emu.route("/crm/v3/owners/{ownerId}", h.owner, ["GET"])
    emu.route("/crm/v3/pipelines/{objectType}", h.pipelines, ["GET"])
    emu.route("/crm/v3/pipelines/{objectType}/{pipelineId}", h.pipeline, ["GET"])
    emu.route("/crm/v3/pipelines/{objectType}/{pipelineId}/stages", h.stages, ["GET"])
    emu.route("/crm/v3/pipelines/{objectType}/{pipelineId}/stages/{stageId}", h.stage, ["GET"])
    emu.route("/email/public/v1/events", h.email_events, ["GET"])
    emu.route("/email/public/v1/events/{created}/{eventId}", h.email_event, ["GET"])
    emu.route("/oauth/v1/token", h.token, ["POST"], auth=False, faults=False, limited=False)
    emu.route("/oauth/v1/access-tokens/{token}", h.token_info, ["GET"], auth=False, faults=False, limited=False)


def _int(raw: str | None, name: str, default: int | None = None) -> int | None:
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise validation(f"{name} {raw!r} is not a number") from None


class _Handlers:
    def __init__(self, emu: HubSpotEmulator) -> None:
        self.emu = emu

    # ------------------------------------------------------------------ owners
    async def owners(self, request: Request) -> Response:
        emu = self.emu
        query = request.query_params
        limit = max(1, min(_int(query.get("limit"), "limit", OWNERS_DEFAULT) or OWNERS_DEFAULT, OWNERS_MAX))
        archived = parse_bool(query.get("archived"))
        email = (query.get("email") or "").lower()
        after = query.get("after")
        with emu.lock:
            owners = [o for o in emu.owners if bool(o.get("archived")) == archived
                      and (not email or str(o.get("email", "")).lower() == email)]
            start = 0
            if after:
                cursor = emu.decode_after(after)
                start = bisect_left([int(o["id"]) for o in owners], cursor)
            page = owners[start:start + limit]
            body: dict[str, Any] = {"results": page}
            if start + limit < len(owners):
                token = encode_cursor(owners[start + limit]["id"])
                body["paging"] = {"next": {"after": token, "link": f"{emu.base_url}/crm/v3/owners?after={token}"}}
        return json_response(body)

    async def owner(self, request: Request) -> Response:
        emu = self.emu
        owner_id = request.path_params["ownerId"]
        query = request.query_params
        by_user = (query.get("idProperty") or "id") == "userId"
        archived = parse_bool(query.get("archived"))
        with emu.lock:
            for owner in emu.owners:
                key = str(owner.get("userId")) if by_user else owner["id"]
                if key == owner_id and bool(owner.get("archived")) == archived:
                    return json_response(owner)
        raise not_found(f"No owner with {'userId' if by_user else 'id'} {owner_id} exists.",
                        context={"id": [owner_id]})

    # ------------------------------------------------------------------ pipelines
    def _pipelines(self, request: Request) -> list[dict[str, Any]]:
        ts = self.emu.type_store(request.path_params["objectType"])
        if ts.ot.name not in PIPELINE_PROPERTIES:
            raise validation(f"{ts.ot.name} have no pipelines; use deals or tickets")
        return self.emu.store.pipelines[ts.ot.name]

    def _pipeline(self, request: Request) -> dict[str, Any]:
        pipeline_id = request.path_params["pipelineId"]
        for pipeline in self._pipelines(request):
            if pipeline["id"] == pipeline_id and not pipeline.get("archived"):
                return pipeline
        raise not_found(f"Unable to find pipeline {pipeline_id}.", context={"pipelineId": [pipeline_id]})

    async def pipelines(self, request: Request) -> Response:
        with self.emu.lock:
            results = sorted((p for p in self._pipelines(request) if not p.get("archived")),
                             key=lambda p: p.get("displayOrder", 0))
            return json_response({"results": results})

    async def pipeline(self, request: Request) -> Response:
        with self.emu.lock:
            return json_response(self._pipeline(request))

    async def stages(self, request: Request) -> Response:
        with self.emu.lock:
            return json_response({"results": self._pipeline(request)["stages"]})

    async def stage(self, request: Request) -> Response:
        stage_id = request.path_params["stageId"]
        with self.emu.lock:
            for stage in self._pipeline(request)["stages"]:
                if stage["id"] == stage_id:
                    return json_response(stage)
        raise not_found(f"Unable to find stage {stage_id}.", context={"stageId": [stage_id]})

    # ------------------------------------------------------------------ legacy email events
    async def email_events(self, request: Request) -> Response:
        emu = self.emu
        query = request.query_params
        start_ts = _int(query.get("startTimestamp"), "startTimestamp")
        end_ts = _int(query.get("endTimestamp"), "endTimestamp")
        limit = max(1, min(_int(query.get("limit"), "limit", EVENTS_MAX) or EVENTS_MAX, EVENTS_MAX))
        event_type = (query.get("eventType") or "").upper() or None
        recipient = (query.get("recipient") or "").lower() or None
        campaign = _int(query.get("campaignId"), "campaignId")
        app_id = _int(query.get("appId"), "appId")
        exclude_filtered = parse_bool(query.get("excludeFilteredEvents"))
        offset = query.get("offset")
        with emu.lock:
            keys = emu.email_event_keys
            events = emu.email_events
            if offset:
                decoded = decode_cursor(offset)
                try:
                    created, event_id = orjson.loads(decoded or "")
                    position = bisect_right(keys, (int(created), str(event_id)))
                except (orjson.JSONDecodeError, TypeError, ValueError):
                    raise validation(f"Invalid offset {offset!r}: pass the offset of the previous page "
                                     "unchanged") from None
            else:
                position = bisect_left(keys, (start_ts, "")) if start_ts is not None else 0
            page: list[dict[str, Any]] = []
            has_more = False
            last_key: tuple[int, str] | None = None
            while position < len(events):
                event = events[position]
                created = keys[position][0]
                if end_ts is not None and created > end_ts:
                    break
                position += 1
                if start_ts is not None and created < start_ts:
                    continue
                if not _event_matches(event, event_type, recipient, campaign, app_id, exclude_filtered):
                    continue
                if len(page) == limit:
                    has_more = True
                    break
                page.append(event)
                last_key = keys[position - 1]
        token = encode_cursor(orjson.dumps(list(last_key)).decode()) if last_key else (offset or "")
        return json_response({"hasMore": has_more, "offset": token, "events": page})

    async def email_event(self, request: Request) -> Response:
        emu = self.emu
        key = (_int(request.path_params["created"], "created"), request.path_params["eventId"])
        with emu.lock:
            index = bisect_left(emu.email_event_keys, key)
            if index < len(emu.email_event_keys) and emu.email_event_keys[index] == key:
                return json_response(emu.email_events[index])
        raise not_found(f"No email event {key[1]} created at {key[0]}.")

    # ------------------------------------------------------------------ OAuth
    async def token(self, request: Request) -> Response:
        emu = self.emu
        form = {k: v[-1] for k, v in parse_qs((await request.body()).decode("utf-8", "replace")).items()}
        grant = form.get("grant_type")
        if grant not in ("refresh_token", "authorization_code"):
            return _oauth_error("BAD_GRANT_TYPE", "grant_type must be refresh_token or authorization_code")
        if not form.get("client_id") or not form.get("client_secret"):
            return _oauth_error("BAD_CLIENT_ID", "client_id and client_secret are required")
        if grant == "refresh_token":
            refresh = form.get("refresh_token", "")
            if refresh not in emu.refresh_tokens:
                return _oauth_error("BAD_REFRESH_TOKEN", "missing or unknown refresh token")
        else:
            if not form.get("code") or not form.get("redirect_uri"):
                return _oauth_error("BAD_AUTH_CODE", "code and redirect_uri are required")
            refresh = f"sandbox-refresh-{correlation_id()}"
            emu.refresh_tokens.add(refresh)
        access = emu.issue_token("sandbox-oauth-")
        return json_response({"token_type": "bearer", "refresh_token": refresh, "access_token": access,
                              "expires_in": TOKEN_TTL})

    async def token_info(self, request: Request) -> Response:
        emu = self.emu
        token = request.path_params["token"]
        if emu.tokens.state(token) != "valid":
            return json_response({"status": "error", "message": "Token not found or expired",
                                  "correlationId": correlation_id(), "category": "OBJECT_NOT_FOUND"}, 404)
        return json_response({"token": token, "user": "sandbox@journeyhub.local", "hub_domain": "sandbox.local",
                              "scopes": SCOPES, "hub_id": emu.portal_id, "app_id": 1, "expires_in": TOKEN_TTL,
                              "user_id": 1, "token_type": "access"})


def _event_matches(event: dict[str, Any], event_type: str | None, recipient: str | None, campaign: int | None,
                   app_id: int | None, exclude_filtered: bool) -> bool:
    if event_type and str(event.get("type", "")).upper() != event_type:
        return False
    if recipient and str(event.get("recipient", "")).lower() != recipient:
        return False
    if campaign is not None and str(event.get("emailCampaignId")) != str(campaign):
        return False
    if app_id is not None and str(event.get("appId")) != str(app_id):
        return False
    return not (exclude_filtered and event.get("filteredEvent"))


def _oauth_error(status: str, message: str) -> Response:
    return json_response({"status": status, "message": message, "correlationId": correlation_id()}, 400)
