"""The one place the HubSpot SDK is touched: construction, auth, calls, and error translation.

Every call goes through `HubSpotClient.call`: it runs under the shared retry policy, counts each HTTP attempt
on the shared request meter (`connectors.meter`), and turns whatever the SDK, urllib3 or requests raised
into a `connectors.errors` class.
The generated APIs are called with `_preload_content=False` and the bytes are parsed with orjson: building
the SDK's model objects costs more than the HTTP round trip (see QUIRKS.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
import urllib3
from hubspot import HubSpot
from hubspot.utils.requests.http_request_builder import Request as RawRequest

from connectors import jsonbody, retry
from connectors.breaker import CONNECT_TIMEOUT, Breaker, connection_failure, failed_to_connect
from connectors.errors import (
    AuthError,
    ConnectorError,
    FatalError,
    PermissionDenied,
    RateLimited,
    SkippableError,
    Unreachable,
    UpstreamError,
    WriteUnconfirmed,
)
from connectors.meter import RequestMeter
from connectors.retry import DEFAULT_POLICY, RetryPolicy

SYSTEM = "hubspot"
#: HubSpot's rate-limit policies and how long each window lasts (used when a 429 carries no Retry-After)
POLICY_WINDOWS = {"TEN_SECONDLY_ROLLING": 10.0, "SECONDLY": 1.0}
#: urllib3 must not retry: a hidden retry would be uncounted and would swallow the 429 the policy needs to see.
#: Redirects are still followed (plain HTTP; the SDK asks for `/crm/v3/owners/` with a trailing slash).
NO_RETRIES = urllib3.util.Retry(total=None, connect=0, read=0, status=0, other=0, redirect=3, raise_on_status=False,
                                respect_retry_after_header=False)


@dataclass(frozen=True)
class HubSpotConfig:
    access_token: str
    base_url: str = "https://api.hubapi.com"
    page_size: int = 100                 # list endpoint max
    search_page_size: int = 200          # search endpoint max
    lookback_seconds: float = 60.0       # search index lag overlap (see watermark scheme)
    archived_check_interval_seconds: float = 3600.0   # how often an incremental read also lists archived records
    reconcile_window_seconds: float = 7 * 86400       # association reconciliation looks at records active this recently
    timeout_seconds: float = 30.0
    retry: RetryPolicy = DEFAULT_POLICY
    throttle: Callable[[], None] | None = None  # called before every request (a shared rate budget)


class HubSpotClient:
    """Thin, counted, retried access to the endpoints the connector uses; returns parsed JSON."""

    def __init__(self, config: HubSpotConfig) -> None:
        if not config.access_token:
            raise AuthError(SYSTEM, "no access token: set HUBSPOT_ACCESS_TOKEN to a private app token")
        self.config = config
        base = config.base_url.rstrip("/")
        self.sdk = HubSpot(access_token=config.access_token, host=base, base_url=base, retry=NO_RETRIES)
        self.meter = RequestMeter(config.throttle)
        self.breaker = Breaker(SYSTEM, "HubSpot", config.retry.unreachable_seconds)
        self._session = requests.Session()

    @property
    def api_calls(self) -> int:
        return self.meter.calls

    @property
    def timeouts(self) -> tuple[float, float]:
        """(connect, read) seconds: connecting gives up sooner (`connectors.breaker.CONNECT_TIMEOUT`)."""
        return min(CONNECT_TIMEOUT, self.config.timeout_seconds), self.config.timeout_seconds

    # ------------------------------------------------------------------ SDK API objects (built once: each
    # discovery property access builds a new ApiClient with its own connection pool)
    @cached_property
    def objects_basic(self) -> Any:
        return self.sdk.crm.objects.basic_api

    @cached_property
    def objects_search(self) -> Any:
        return self.sdk.crm.objects.search_api

    @cached_property
    def objects_batch(self) -> Any:
        return self.sdk.crm.objects.batch_api

    @cached_property
    def associations_batch(self) -> Any:
        return self.sdk.crm.associations.v4.batch_api

    @cached_property
    def owners_api(self) -> Any:
        return self.sdk.crm.owners.owners_api

    @cached_property
    def pipelines_api(self) -> Any:
        return self.sdk.crm.pipelines.pipelines_api

    @cached_property
    def properties_core(self) -> Any:
        return self.sdk.crm.properties.core_api

    @cached_property
    def properties_batch(self) -> Any:
        return self.sdk.crm.properties.batch_api

    @cached_property
    def property_groups(self) -> Any:
        return self.sdk.crm.properties.groups_api

    # ------------------------------------------------------------------ calling
    def call(self, fn: Callable[..., Any], *args: Any, what: str, record_id: str | None = None,
             resend: bool = True, **kwargs: Any) -> Any:
        """`fn(*args, **kwargs)` (a generated SDK method) under the retry policy; the parsed JSON body.
        `record_id` marks a call about one record, whose 404 is skippable rather than fatal. `resend=False`
        marks a write that must not be sent twice (batch create has no idempotency key): when it went out and
        no answer came, it raises `WriteUnconfirmed` instead of being retried."""

        def attempt() -> Any:
            try:
                return self.request(fn, *args, what=what, record_id=record_id, **kwargs)
            except UpstreamError as error:
                if resend or error.status is not None or isinstance(error, Unreachable):
                    raise   # an answer (429, 5xx) or no connection at all: nothing was applied
                raise WriteUnconfirmed(SYSTEM, f"{what}: sent, but no answer came ({error.message}); HubSpot "
                                       "may have applied it, so it is not sent again") from None

        return retry.call(attempt, policy=self.config.retry, breaker=self.breaker)

    def request(self, fn: Callable[..., Any], *args: Any, what: str, record_id: str | None = None,
                **kwargs: Any) -> Any:
        """One attempt, counted: the raw response is parsed with orjson instead of the SDK's models."""
        self.meter.request()
        try:
            response = fn(*args, **kwargs, _preload_content=False, _request_timeout=self.timeouts)
            try:
                body = response.data
            finally:
                response.release_conn()
        except Exception as error:
            translated = translate(error, what, record_id, self.config.base_url)
            if translated is error:
                raise
            raise translated from None
        return parse(body, what)

    def raw_get(self, path: str, query: dict[str, Any], *, what: str) -> Any:
        """A GET the generated APIs do not wrap (the legacy email events API). Built by the SDK's own raw
        request builder (what `client.api_request` uses: auth, `base_url`) but sent on a keep-alive session
        with a timeout, which `api_request` cannot take."""
        request = RawRequest(self.sdk.config, {"method": "GET", "path": path, "qs": query})

        def attempt() -> Any:
            self.meter.request()
            try:
                response = self._session.get(request.get_url(), timeout=self.timeouts,
                                             **request.get_options_for_sending())
            except (requests.ConnectTimeout, requests.exceptions.SSLError) as error:
                raise unreachable(error, what, self.config.base_url) from None
            except requests.ConnectionError as error:
                if _connect_failure(error):
                    raise unreachable(error, what, self.config.base_url) from None
                raise UpstreamError(SYSTEM, f"{what}: {type(error).__name__}: {error}") from None
            except requests.RequestException as error:
                raise UpstreamError(SYSTEM, f"{what}: {type(error).__name__}: {error}") from None
            if not 200 <= response.status_code < 300:
                raise http_error(response.status_code, response.content, response.headers, what, None)
            return parse(response.content, what)

        return retry.call(attempt, policy=self.config.retry, breaker=self.breaker)

    def close(self) -> None:
        for name in ("objects_basic", "objects_search", "objects_batch", "associations_batch", "owners_api",
                     "pipelines_api", "properties_core", "properties_batch", "property_groups"):
            api = self.__dict__.pop(name, None)
            if api is not None:
                api.api_client.rest_client.pool_manager.clear()
        self._session.close()


def parse(body: bytes | None, what: str) -> Any:
    """A 2xx body as JSON; anything else (a proxy's HTML page, a cut-off body) is worth another try."""
    if not body:
        return None
    try:
        return jsonbody.decode(body)
    except ValueError as error:
        raise UpstreamError(SYSTEM, f"{what}: HubSpot's answer is not JSON ({error}): {body[:120]!r}") from None


# ---------------------------------------------------------------------------------------------- errors
def translate(error: Exception, what: str, record_id: str | None, base_url: str = "") -> Exception:
    """An exception an SDK call raised → the error class that says what the caller should do. Each generated
    package has its own `ApiException` class, so they are recognised by shape (`status`, `body`); anything
    else that is not a transport failure is a bug and is returned unchanged."""
    status = getattr(error, "status", None)
    if isinstance(status, int) and status > 0 and hasattr(error, "body"):
        headers = getattr(error, "headers", None) or {}
        return http_error(status, getattr(error, "body", None), headers, what, record_id)
    if _connect_failure(error):
        return unreachable(error, what, base_url)
    if isinstance(error, urllib3.exceptions.HTTPError | OSError) or (status == 0 and hasattr(error, "reason")):
        reason = getattr(error, "reason", None) or error
        return UpstreamError(SYSTEM, f"{what}: could not reach HubSpot ({type(error).__name__}: {reason})")
    return error


#: urllib3's exceptions for "no connection was made" (NameResolutionError is a NewConnectionError)
CONNECT_FAILURES = (urllib3.exceptions.NewConnectionError, urllib3.exceptions.ConnectTimeoutError,
                    urllib3.exceptions.SSLError)


def _connect_failure(error: BaseException) -> bool:
    """Whether no HTTP connection was made (also when wrapped: MaxRetryError's `reason`, requests'
    ConnectionError, the SDK's `ApiException(status=0)` raised while handling one)."""
    return failed_to_connect(error, CONNECT_FAILURES)


def unreachable(error: BaseException, what: str, base_url: str) -> Unreachable:
    why, permanent = connection_failure(error)
    host = urlsplit(base_url).netloc or base_url or "the API host"
    return Unreachable(SYSTEM, f"{what}: could not reach HubSpot at {host} ({why})", host=host,
                       setting="HUBSPOT_BASE_URL", reason=why, permanent=permanent)


def http_error(status: int, body: Any, headers: Any, what: str, record_id: str | None) -> ConnectorError:
    """A non-2xx HubSpot answer → the matching error class, with HubSpot's own message in it."""
    parsed = _json(body)
    message = _message(parsed) or f"HTTP {status}"
    if status == 401:
        return AuthError(SYSTEM, f"{what}: HubSpot rejected the access token ({message}). Private app tokens "
                         "cannot be refreshed: create or rotate the token in HubSpot (Settings → Integrations → "
                         "Private apps) and set HUBSPOT_ACCESS_TOKEN", status=status)
    if status == 403:
        scopes = _missing_scopes(parsed)
        hint = (f"grant the private app the scope(s) {', '.join(scopes)}" if scopes
                else "check the private app's scopes")
        return PermissionDenied(SYSTEM, f"{what}: not allowed ({message}); {hint}", status=status)
    if status == 429:
        policy = str(parsed.get("policyName", "")) if isinstance(parsed, dict) else ""
        if policy == "DAILY":
            return FatalError(SYSTEM, f"{what}: HubSpot's daily API limit is used up; it resets at midnight in "
                              "the portal's time zone, and the next run continues from the saved cursor",
                              status=status)
        return RateLimited(SYSTEM, f"{what}: rate limited ({policy or 'no policy named'})", status=status,
                           retry_after=_retry_after(headers, policy))
    if status >= 500:
        return UpstreamError(SYSTEM, f"{what}: HubSpot answered {status} ({message})", status=status)
    if status == 404 and record_id is not None:
        return SkippableError(SYSTEM, f"{what}: record {record_id} not found ({message})", remote_id=record_id)
    if status == 404:
        return FatalError(SYSTEM, f"{what}: not found ({message}); check HUBSPOT_BASE_URL and the object type",
                          status=status)
    return FatalError(SYSTEM, f"{what}: HubSpot refused the request ({status}): {message}", status=status)


def _json(body: Any) -> Any:
    if not body:
        return None
    try:
        return orjson.loads(body)
    except (orjson.JSONDecodeError, TypeError):
        return None


def _message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    message = body.get("message")
    details = [item.get("message") for item in body.get("errors") or [] if isinstance(item, dict)]
    details = [detail for detail in details if detail and detail != message]
    category = body.get("category")
    text = str(message) if message else None
    if details:
        text = f"{text}: {'; '.join(details)}" if text else "; ".join(details)
    if text and category:
        text = f"{category}: {text}"
    return text


def _missing_scopes(body: Any) -> list[str]:
    scopes: list[str] = []
    for item in (body or {}).get("errors") or [] if isinstance(body, dict) else []:
        context = item.get("context") if isinstance(item, dict) else None
        for scope in (context or {}).get("requiredGranularScopes") or (context or {}).get("requiredScopes") or []:
            if scope not in scopes:
                scopes.append(str(scope))
    return scopes


def _retry_after(headers: Any, policy: str) -> float | None:
    raw = None
    if headers is not None:
        raw = headers.get("Retry-After") if hasattr(headers, "get") else None
    if raw:
        try:
            return max(float(raw), 0.0)
        except ValueError:
            pass
    return POLICY_WINDOWS.get(policy)


def now_ms() -> int:
    return int(time.time() * 1000)
