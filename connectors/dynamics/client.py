"""The Dataverse Web API over plain httpx: configuration, tokens, retries, and the error boundary.

Every call goes through `DataverseClient.request`, which runs it under the shared retry policy and turns
every HTTP or network failure into a `connectors.errors` class, so nothing above this module sees httpx.
Tokens come from a static access token or from Entra ID client credentials (an `httpx.Auth` flow that
caches the token until shortly before it expires and fetches a new one once when Dataverse answers 401).
Every HTTP request — data, `$batch` and token calls alike — is counted on the shared request meter
(`connectors.meter`).
"""

from __future__ import annotations

import email.utils
import logging
import re
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from connectors import jsonbody, retry
from connectors.breaker import CONNECT_TIMEOUT, Breaker, connection_failure
from connectors.dynamics.objects import SYSTEM
from connectors.errors import (
    AuthError,
    ConfigError,
    ConnectorError,
    FatalError,
    FieldNotFound,
    PermissionDenied,
    RateLimited,
    SkippableError,
    Unreachable,
    UpstreamError,
)
from connectors.meter import RequestMeter
from connectors.retry import DEFAULT_POLICY, RetryPolicy

log = logging.getLogger("journeyhub.connectors.dynamics")


TOKEN_MARGIN_SECONDS = 60          # refresh this long before the token's `expires_in` runs out
UNKNOWN_PROPERTY = re.compile(r"property named '([^']+)'")   # "Could not find a property named 'x' on type …"
UNKNOWN_SEGMENT = "0x8006088a"     # "Resource not found for the segment 'Account'."
CHALLENGE_ERROR = re.compile(r'error_description="([^"]*)"')   # WWW-Authenticate: Bearer error_description="…"
THROTTLED = {"0x80072322", "0x80072321", "0x80072326"}  # service protection: requests, time, concurrency


@dataclass(frozen=True)
class DynamicsConfig:
    url: str                              # org URL, e.g. https://acme.crm.dynamics.com (or the emulator's)
    access_token: str | None = None       # a static token (cannot be refreshed)
    token_url: str | None = None          # Entra ID token endpoint (client credentials)
    client_id: str | None = None
    client_secret: str | None = None
    scope: str | None = None              # default: f"{url}/.default"
    api_version: str = "v9.2"
    page_size: int = 5000                 # Prefer: odata.maxpagesize
    timeout_seconds: float = 60.0
    retry: RetryPolicy = DEFAULT_POLICY
    throttle: Callable[[], None] | None = None  # called before every request (a shared rate budget)

    @property
    def org_url(self) -> str:
        return self.url.rstrip("/")

    @property
    def api_root(self) -> str:
        return f"{self.org_url}/api/data/{self.api_version}/"

    def validate(self) -> None:
        """Fail at construction, with what to set, rather than on the first call."""
        if not self.org_url.startswith(("https://", "http://")):
            raise ConfigError(SYSTEM, f"DYNAMICS_URL must be the organisation URL, e.g. "
                              f"https://acme.crm.dynamics.com (got {self.url!r})")
        if self.access_token:
            return
        missing = [name for name, value in (("token URL (or tenant id)", self.token_url),
                                            ("client id", self.client_id), ("client secret", self.client_secret))
                   if not value]
        if missing:
            raise ConfigError(SYSTEM, "no credentials: set an access token, or client credentials for an "
                              f"application user of this environment (missing: {', '.join(missing)})")


# ------------------------------------------------------------------------------------------------- auth
class StaticToken(httpx.Auth):
    """A token someone else obtained; when it expires the hub cannot get another."""

    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


class ClientCredentials(httpx.Auth):
    """Entra ID client-credentials tokens: fetched on first use, reused until `TOKEN_MARGIN_SECONDS` before
    `expires_in`, and fetched again once when Dataverse answers 401 (then the request is sent again)."""

    requires_response_body = True

    def __init__(self, token_url: str, client_id: str, client_secret: str, scope: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.token_url, self.client_id, self.client_secret, self.scope = token_url, client_id, client_secret, scope
        self.clock = clock
        self.token: str | None = None
        self.expires_at = 0.0

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if self.token is None or self.clock() >= self.expires_at:
            yield from self._fetch()
        request.headers["Authorization"] = f"Bearer {self.token}"
        response = yield request
        if response.status_code == 401:
            log.info("access token rejected (401); fetching a new one from %s", self.token_url)
            yield from self._fetch()
            request.headers["Authorization"] = f"Bearer {self.token}"
            yield request

    def _fetch(self) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield httpx.Request("POST", self.token_url, headers={"Accept": "application/json"}, data={
            "grant_type": "client_credentials", "client_id": self.client_id,
            "client_secret": self.client_secret, "scope": self.scope})
        self.token, lifetime = _token_from(response)
        self.expires_at = self.clock() + max(0.0, lifetime - TOKEN_MARGIN_SECONDS)


def _token_from(response: httpx.Response) -> tuple[str, float]:
    """(access token, lifetime in seconds) from an Entra token response, or the error it describes."""
    body = _json(response)
    if response.status_code == 429 or response.status_code >= 500:
        raise (RateLimited if response.status_code == 429 else UpstreamError)(
            SYSTEM, f"the token endpoint answered HTTP {response.status_code}", status=response.status_code,
            retry_after=retry_after(response))
    token = body.get("access_token") if isinstance(body, dict) else None
    if response.status_code >= 400 or not token:
        error = body.get("error", "") if isinstance(body, dict) else ""
        description = body.get("error_description", "") if isinstance(body, dict) else response.text[:300]
        raise AuthError(SYSTEM, f"Entra ID refused the client-credentials login ({error or response.status_code}): "
                        f"{description.strip() or 'no description'} — check DYNAMICS_TENANT_ID (or "
                        "DYNAMICS_TOKEN_URL), DYNAMICS_CLIENT_ID and DYNAMICS_CLIENT_SECRET, and that the app is an "
                        "application user of this environment", status=response.status_code)
    try:
        lifetime = float(body.get("expires_in", 3599))
    except (TypeError, ValueError):
        lifetime = 3599.0
    return str(token), lifetime


def make_auth(config: DynamicsConfig) -> httpx.Auth:
    if config.access_token:
        return StaticToken(config.access_token)
    return ClientCredentials(config.token_url or "", config.client_id or "", config.client_secret or "",
                             config.scope or f"{config.org_url}/.default")


# ----------------------------------------------------------------------------------------------- errors
class RequestRejected(FatalError):
    """Dataverse refused the request (4xx); `code` is its hexadecimal error code (e.g. 0x80044352)."""

    def __init__(self, message: str, *, status: int, code: str) -> None:
        super().__init__(SYSTEM, message, status=status)
        self.code = code


def error_of(body: Any) -> tuple[str, str]:
    """(code, message) of Dataverse's envelope `{"error": {"code": "0x…", "message": "…"}}`."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        return str(error.get("code") or ""), str(error.get("message") or "")
    return "", ""


def translate(status: int, headers: httpx.Headers, body: Any, what: str, *, refreshable: bool,
              single_record: bool = False) -> ConnectorError | None:
    """The error class for one Dataverse answer (None when it succeeded). `single_record`: the answer is
    about one record of a write, so a 4xx spoils only that record."""
    if status < 400:
        return None
    code, message = error_of(body)
    if status == 401 and not message:   # Dataverse answers a bad token with an empty body and a challenge
        challenge = CHALLENGE_ERROR.search(headers.get("www-authenticate") or "")
        message = challenge.group(1) if challenge else ""
    detail = f"{what}: HTTP {status}" + (f" {code}" if code else "") + (f": {message}" if message else "")
    if status == 401:
        if refreshable:
            return AuthError(SYSTEM, f"{detail} — rejected even with a freshly issued token; make sure the app "
                             "registration is an application user of this environment", status=status)
        return AuthError(SYSTEM, f"{detail} — the access token (DYNAMICS_ACCESS_TOKEN) has expired or was revoked, "
                         "and a static token "
                         "cannot be refreshed; configure client credentials (DYNAMICS_TENANT_ID or "
                         "DYNAMICS_TOKEN_URL, DYNAMICS_CLIENT_ID, DYNAMICS_CLIENT_SECRET) so the hub can log in "
                         "again", status=status)
    if status == 429 or code in THROTTLED:
        return RateLimited(SYSTEM, f"{detail} (service protection limit)", status=status,
                           retry_after=retry_after(headers))
    if status >= 500:
        return UpstreamError(SYSTEM, detail, status=status, retry_after=retry_after(headers))
    if status == 403:
        return PermissionDenied(SYSTEM, f"{detail} — give the application user a security role that can read "
                                "and write these tables", status=status)
    if code == UNKNOWN_SEGMENT:
        return ConfigError(SYSTEM, f"{detail} — no such entity set in this environment (names are plural and "
                           "case-sensitive)", status=status)
    if "Could not find a property named" in message:
        return FieldNotFound(SYSTEM, f"{detail} — a column the hub reads or writes does not exist in this "
                             "environment; create it (docs/crm-conventions.md) or change the mapping",
                             fields=UNKNOWN_PROPERTY.findall(message), status=status)
    if single_record:
        return SkippableError(SYSTEM, detail)
    return RequestRejected(detail, status=status, code=code)


def retry_after(source: httpx.Response | httpx.Headers) -> float | None:
    """Seconds from `Retry-After` (delta-seconds or an HTTP date)."""
    headers = source.headers if isinstance(source, httpx.Response) else source
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _json(response: httpx.Response) -> Any:
    """The body parsed with orjson (a page is 5,000 rows: several times faster than `response.json()`), the
    standard library for a page orjson refuses (`connectors.jsonbody`); None when empty or not JSON."""
    try:
        return jsonbody.decode(response.content) if response.content else None
    except ValueError:
        return None


# ----------------------------------------------------------------------------------------------- client
class DataverseClient:
    """One httpx client per connector; `request` is the only way out (retried, translated, counted)."""

    def __init__(self, config: DynamicsConfig) -> None:
        config.validate()
        self.config = config
        self.meter = RequestMeter(config.throttle)
        self.auth = make_auth(config)
        self.breaker = Breaker(SYSTEM, "Dynamics 365", config.retry.unreachable_seconds)
        self._http = httpx.Client(
            base_url=config.api_root, auth=self.auth,
            timeout=httpx.Timeout(config.timeout_seconds, connect=min(CONNECT_TIMEOUT, config.timeout_seconds)),
            headers={"Accept": "application/json", "OData-MaxVersion": "4.0", "OData-Version": "4.0"},
            event_hooks={"request": [lambda _request: self.meter.request()]})

    @property
    def root(self) -> str:
        return self.config.api_root

    @property
    def api_calls(self) -> int:
        return self.meter.calls

    def request(self, method: str, url: str, *, params: dict[str, str] | None = None,
                headers: dict[str, str] | None = None, content: bytes | None = None) -> httpx.Response:
        """Send under the retry policy; a translated `connectors.errors` class on failure. Absolute URLs
        (nextLink, deltaLink) are sent exactly as given."""
        return retry.call(lambda: self._once(method, url, params, headers, content), policy=self.config.retry,
                          breaker=self.breaker)

    def get_json(self, url: str, *, params: dict[str, str] | None = None,
                 prefer: str | None = None) -> dict[str, Any]:
        headers = {"If-None-Match": "null"} | ({"Prefer": prefer} if prefer else {})
        body = _json(self.request("GET", url, params=params, headers=headers))
        if not isinstance(body, dict):
            raise UpstreamError(SYSTEM, f"GET {_short(url)}: the answer was not a JSON object")
        return body

    def _once(self, method: str, url: str, params: dict[str, str] | None, headers: dict[str, str] | None,
              content: bytes | None) -> httpx.Response:
        what = f"{method} {_short(url)}"
        try:
            response = self._http.request(method, url, params=params, headers=headers, content=content)
        except (httpx.ConnectError, httpx.ConnectTimeout) as error:
            raise self.unreachable(error, what) from None
        except httpx.TimeoutException:
            raise UpstreamError(SYSTEM, f"{what}: no answer within {self.config.timeout_seconds:g} s") from None
        except httpx.TransportError as error:
            raise UpstreamError(SYSTEM, f"{what}: {type(error).__name__}: {error}") from None
        error = translate(response.status_code, response.headers, _json(response), what,
                          refreshable=isinstance(self.auth, ClientCredentials))
        if error is not None:
            raise error
        return response

    def unreachable(self, error: httpx.TransportError, what: str) -> Unreachable:
        """A connect failure, naming the host tried and the setting that chose it (the org's, or the token
        endpoint's)."""
        why, permanent = connection_failure(error)
        try:
            host = error.request.url.netloc.decode("ascii", "replace")
        except RuntimeError:   # an error raised without its request
            host = httpx.URL(self.config.org_url).netloc.decode("ascii", "replace")
        org = httpx.URL(self.config.org_url).netloc.decode("ascii", "replace")
        setting = "DYNAMICS_URL" if host.lower() == org.lower() else "DYNAMICS_TOKEN_URL (or DYNAMICS_TENANT_ID)"
        return Unreachable(SYSTEM, f"{what}: could not reach Dataverse at {host} ({why})", host=host,
                           setting=setting, reason=why, permanent=permanent)

    def close(self) -> None:
        self._http.close()


def _short(url: str) -> str:
    """A URL for messages: without the org and API prefix, and without long tokens."""
    path = url.split("/api/data/", 1)[-1]
    path = path.split("/", 1)[1] if path.startswith("v") and "/" in path else path
    return path if len(path) <= 160 else path[:157] + "…"
