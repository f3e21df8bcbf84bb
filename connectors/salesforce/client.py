"""The Salesforce client boundary: simple-salesforce construction, login, refresh and error translation.

Everything that goes over the wire goes through `SalesforceClient.call`, which runs one SDK call under the
shared retry policy and turns every simple-salesforce / requests exception into a `connectors.errors` class.
A `requests` transport adapter on the session counts every HTTP call on the shared request meter
(`connectors.meter`), keeps the last response's headers
(simple-salesforce's exceptions drop them: Retry-After, Date, Sforce-Limit-Info) and, for an `http://`
instance URL or a host that is not Salesforce's, sends the `https://` URLs the library hard-codes to the
configured instance (simple-salesforce 1.12 builds every URL as `https://{instance}`, whatever the instance
URL's scheme).
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from simple_salesforce import Salesforce
from simple_salesforce.exceptions import (
    SalesforceAuthenticationFailed,
    SalesforceError,
    SalesforceExpiredSession,
    SalesforceGeneralError,
    SalesforceMalformedRequest,
    SalesforceMoreThanOneRecord,
    SalesforceOperationError,
    SalesforceRefusedRequest,
    SalesforceResourceNotFound,
)
from simple_salesforce.login import SalesforceLogin

from connectors import jsonbody, retry
from connectors.breaker import CONNECT_TIMEOUT, Breaker, connection_failure, failed_to_connect
from connectors.errors import (
    AuthError,
    ConfigError,
    FatalError,
    FieldNotFound,
    PermissionDenied,
    RateLimited,
    TokenExpired,
    Unreachable,
    UpstreamError,
)
from connectors.meter import RequestMeter
from connectors.retry import DEFAULT_POLICY, RetryPolicy

SYSTEM = "salesforce"
T = TypeVar("T")
log = logging.getLogger("journeyhub.connectors.salesforce")

NO_SUCH_COLUMN = re.compile(r"No such column '(\w+)'")   # INVALID_FIELD names the field only in its message
DAILY_LIMIT_WAIT = 3600.0  # the daily allocation is a rolling 24 h window: nothing frees up in seconds
#: requests' and urllib3's exceptions for "no connection was made" (urllib3's NameResolutionError is a
#: NewConnectionError; requests wraps them in ConnectionError)
CONNECT_FAILURES = (requests.ConnectTimeout, requests.exceptions.SSLError, urllib3.exceptions.NewConnectionError,
                    urllib3.exceptions.ConnectTimeoutError, urllib3.exceptions.SSLError)
REFRESHABLE_HINT = ("set SALESFORCE_CLIENT_ID + SALESFORCE_CLIENT_SECRET (client credentials) or "
                    "SALESFORCE_USERNAME + SALESFORCE_PASSWORD + SALESFORCE_SECURITY_TOKEN instead of a session id, "
                    "so the hub can log in again by itself")


@dataclass(frozen=True)
class SalesforceConfig:
    instance_url: str                      # https://acme.my.salesforce.com, or http://127.0.0.1:PORT (emulator)
    access_token: str | None = None        # a session id: used as is, cannot be refreshed
    username: str | None = None            # + password + security_token: SOAP/OAuth password login, refreshable
    password: str | None = None
    security_token: str | None = None
    domain: str = "login"
    client_id: str | None = None           # + client_secret: OAuth client credentials, refreshable
    client_secret: str | None = None
    api_version: str = "59.0"
    batch_size: int = 2000                 # Sforce-Query-Options batchSize
    bulk_threshold: int = 50_000           # first loads of objects with more records than this use Bulk API 2.0
    deleted_check_interval_seconds: float = 3600.0   # how often an incremental read also asks deleted/
    timeout_seconds: float = 60.0
    retry: RetryPolicy = DEFAULT_POLICY
    throttle: Callable[[], None] | None = None  # called before every request (a shared rate budget)


class QueryLocatorExpired(Exception):
    """INVALID_QUERY_LOCATOR: the server dropped the query cursor; the reader restarts from its watermark."""


class BulkJobGone(Exception):
    """A Bulk API 2.0 job the cursor names no longer exists (results expire): the reader starts a new one."""


# ------------------------------------------------------------------------------------------------ transport
class OrjsonSalesforce(Salesforce):
    """simple-salesforce's client with its answers decoded by orjson (`connectors.jsonbody`, the standard
    library for what orjson refuses). Its own `Response.json()` guesses the text's encoding and runs the
    standard library's decoder: ~4% of a Salesforce sync's CPU for 2,000-record query batches. The objects are
    the same: plain dicts (the client asks for `object_pairs_hook=dict`), floats as Python parses them."""

    def parse_result_to_json(self, result: requests.Response) -> Any:
        return jsonbody.decode(result.content)


class Transport(HTTPAdapter):
    """Meters every HTTP call, remembers the last response, applies the timeout, and rewrites hosts.

    `rewrites` maps a netloc simple-salesforce builds (`https://<netloc>`) to the (scheme, netloc) to use.
    Several reads may send at once from different threads: `mine` is the last response of the calling
    thread (the Date and Retry-After of the call just made, not another read's), `last` that of any thread
    (the org's API usage).
    """

    def __init__(self, rewrites: dict[str, tuple[str, str]], timeout: float, meter: RequestMeter) -> None:
        super().__init__()
        self.rewrites = rewrites
        self.timeout = timeout
        self.meter = meter
        self.last: requests.Response | None = None
        self._local = threading.local()

    @property
    def mine(self) -> requests.Response | None:
        """The last response this thread received."""
        return getattr(self._local, "response", None)

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        parts = urlsplit(request.url or "")
        target = self.rewrites.get(parts.netloc.lower())
        if target is not None:
            request.url = urlunsplit((target[0], target[1], parts.path, parts.query, parts.fragment))
        if kwargs.get("timeout") is None:   # (connect, read): connecting gives up sooner
            kwargs["timeout"] = (min(CONNECT_TIMEOUT, self.timeout), self.timeout)
        self.meter.request()
        response = super().send(request, **kwargs)
        self.last = self._local.response = response
        return response


def _is_salesforce_host(host: str) -> bool:
    return host.endswith((".salesforce.com", ".force.com"))


@dataclass(frozen=True)
class Endpoints:
    """Where the instance and the login endpoint really are, and the `domain` simple-salesforce logs in at."""

    instance_url: str          # scheme://netloc, no path
    netloc: str
    domain: str
    rewrites: dict[str, tuple[str, str]]


def endpoints(config: SalesforceConfig) -> Endpoints:
    parts = urlsplit(config.instance_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(SYSTEM, f"SALESFORCE_INSTANCE_URL must be a URL such as https://acme.my.salesforce.com, "
                          f"got {config.instance_url!r}")
    netloc, host = parts.netloc.lower(), (parts.hostname or "").lower()
    hosted = _is_salesforce_host(host) and parts.scheme == "https"
    domain = config.domain
    if config.client_id and not config.username:
        # client credentials post to https://{domain}.salesforce.com: the org's own (My Domain) host
        domain = host.removesuffix(".salesforce.com") if hosted and host.endswith(".salesforce.com") else (
            domain if domain not in ("login", "test") else "journeyhub-instance")
    rewrites: dict[str, tuple[str, str]] = {}
    if not hosted:  # an emulator or a proxy: the instance answers the login calls too
        rewrites[netloc] = (parts.scheme, netloc)
        rewrites[f"{domain}.salesforce.com".lower()] = (parts.scheme, netloc)
    return Endpoints(f"{parts.scheme}://{netloc}", netloc, domain, rewrites)


# ------------------------------------------------------------------------------------------------ client
class SalesforceClient:
    """One authenticated simple-salesforce client; `call` is the only way requests leave it."""

    def __init__(self, config: SalesforceConfig) -> None:
        if not (config.access_token or (config.username and config.password is not None)
                or (config.client_id and config.client_secret)):
            raise ConfigError(SYSTEM, "no Salesforce credentials: set SALESFORCE_ACCESS_TOKEN, or " + REFRESHABLE_HINT)
        self.config = config
        self.endpoints = endpoints(config)
        self.meter = RequestMeter(config.throttle)
        self.breaker = Breaker(SYSTEM, "Salesforce", config.retry.unreachable_seconds)
        self.transport = Transport(self.endpoints.rewrites, config.timeout_seconds, self.meter)
        self.session = requests.Session()
        self.session.mount("https://", self.transport)
        self.session.mount("http://", self.transport)
        self._sf: Salesforce | None = None
        self._login_lock = threading.Lock()   # one login at a time: concurrent reads share the session
        self._described: dict[str, dict[str, dict[str, Any]]] = {}

    # ------------------------------------------------------------------ state
    @property
    def refreshable(self) -> bool:
        return self.config.access_token is None

    @property
    def api_calls(self) -> int:
        return self.meter.calls

    @property
    def api_usage(self) -> tuple[int, int] | None:
        """(used, daily limit) from the last Sforce-Limit-Info header."""
        last = self.transport.last
        header = last.headers.get("Sforce-Limit-Info") if last is not None else None
        usage = Salesforce.parse_api_usage(header).get("api-usage") if header else None
        return (usage.used, usage.total) if usage is not None else None

    def server_time(self) -> datetime:
        """The server's clock from the last response's Date header (our own clock when there is none)."""
        last = self.transport.mine
        header = last.headers.get("Date") if last is not None else None
        if header:
            try:
                return parsedate_to_datetime(header).astimezone(UTC)
            except (TypeError, ValueError):
                pass
        return datetime.now(UTC).replace(microsecond=0)

    @property
    def sf(self) -> Salesforce:
        """The shared session, logged in by the first thread that needs it (the others wait for it)."""
        sf = self._sf
        if sf is None:
            with self._login_lock:
                if self._sf is None:
                    self._sf = self._connect()
                sf = self._sf
        return sf

    # ------------------------------------------------------------------ login
    def _connect(self, token: str | None = None) -> Salesforce:
        """A client on `token`: the configured access token, else a new login."""
        return OrjsonSalesforce(instance_url=self.endpoints.instance_url,
                                session_id=token or self.config.access_token or self._login(),
                                session=self.session, version=self.config.api_version, object_pairs_hook=dict)

    def _login(self) -> str:
        """Log in with the configured flow; simple-salesforce's login returns (session id, instance host).

        The REST calls keep using the configured instance URL (the one the admin gave), whatever host
        the login answer names.
        """
        config = self.config
        try:
            if config.username:
                token, _ = SalesforceLogin(
                    username=config.username, password=config.password, security_token=config.security_token,
                    sf_version=config.api_version, session=self.session, domain=self.endpoints.domain,
                    consumer_key=config.client_id if config.client_secret and not config.security_token else None,
                    consumer_secret=config.client_secret if not config.security_token else None)
            else:
                token, _ = SalesforceLogin(consumer_key=config.client_id, consumer_secret=config.client_secret,
                                           session=self.session, domain=self.endpoints.domain,
                                           sf_version=config.api_version)
        except SalesforceAuthenticationFailed as error:
            who = ("username/password/security token (SALESFORCE_USERNAME, SALESFORCE_PASSWORD, "
                   "SALESFORCE_SECURITY_TOKEN)" if config.username
                   else "client id/secret (SALESFORCE_CLIENT_ID, SALESFORCE_CLIENT_SECRET)")
            raise AuthError(SYSTEM, f"login failed ({login_failure(error, self._secrets())}); check the {who} and "
                            "that the connected app / user may use the API", status=401) from None
        except requests.RequestException as error:
            if failed_to_connect(error, CONNECT_FAILURES):
                raise self.unreachable(error, "login") from None
            raise UpstreamError(SYSTEM, f"cannot reach the Salesforce login endpoint: {error}") from None
        log.info("logged in to Salesforce at %s", self.endpoints.instance_url)
        return str(token)

    def _secrets(self) -> list[str]:
        config = self.config
        return [value for value in (config.password, config.security_token, config.client_secret,
                                    config.access_token) if value and len(value) >= 4]

    def refresh(self, stale: Salesforce | None = None) -> None:
        """Log in again (a refreshable flow only); the next call uses the new session. Reads that all found
        `stale` expired at once log in once: the first replaces it, the others find it replaced and retry
        with the new one."""
        with self._login_lock:
            if stale is not None and self._sf is not stale:
                return
            self._sf = self._connect(self._login())

    # ------------------------------------------------------------------ calls
    def call(self, what: str, fn: Callable[[Salesforce], T], *, sobject: str | None = None) -> T:
        """Run `fn(sf)` under the retry policy with translated errors; `what` names the call in messages."""
        used: list[Salesforce] = []   # the session the last attempt ran with: the one a refresh replaces

        def attempt() -> T:
            sf = self.sf
            used[:] = [sf]
            return self._translated(what, sobject, lambda: fn(sf))

        def refresh() -> None:
            self.refresh(used[0] if used else None)

        return retry.call(attempt, refresh=refresh if self.refreshable else None, policy=self.config.retry,
                          breaker=self.breaker)

    def _translated(self, what: str, sobject: str | None, fn: Callable[[], T]) -> T:
        try:
            return fn()
        except SalesforceError as error:
            raise self.translate(error, what, sobject) from None
        except SalesforceOperationError as error:
            raise UpstreamError(SYSTEM, f"{what}: {error}") from None
        except (requests.ConnectionError, requests.Timeout) as error:
            if failed_to_connect(error, CONNECT_FAILURES):
                raise self.unreachable(error, what) from None
            raise UpstreamError(SYSTEM, f"{what}: network error talking to {self.endpoints.instance_url}: "
                                f"{type(error).__name__}") from None

    def unreachable(self, error: requests.RequestException, what: str) -> Unreachable:
        """A connect failure, naming the host tried and the setting that chose it (the login endpoint of a
        hosted org is SALESFORCE_DOMAIN's)."""
        why, permanent = connection_failure(error)
        url = getattr(getattr(error, "request", None), "url", None) or self.endpoints.instance_url
        host = urlsplit(url).netloc or self.endpoints.netloc
        setting = "SALESFORCE_INSTANCE_URL" if host.lower() == self.endpoints.netloc else "SALESFORCE_DOMAIN"
        return Unreachable(SYSTEM, f"{what}: could not reach Salesforce at {host} ({why})", host=host,
                           setting=setting, reason=why, permanent=permanent)

    def translate(self, error: SalesforceError, what: str, sobject: str | None) -> Exception:
        """One simple-salesforce exception → the connectors.errors class the caller acts on."""
        code, message, fields = _error_details(error.content)
        status = error.status
        detail = f"{what}: {code or status}: {message}" if message else f"{what}: HTTP {status}"
        if isinstance(error, SalesforceExpiredSession):
            if self.refreshable:
                return TokenExpired(SYSTEM, detail, status=401)
            return AuthError(SYSTEM, f"{detail} — the Salesforce session id (SALESFORCE_ACCESS_TOKEN) has expired or "
                             f"is invalid and a session id cannot be refreshed; {REFRESHABLE_HINT}", status=401)
        if code == "REQUEST_LIMIT_EXCEEDED" or status == 429:
            return self._rate_limited(detail, code, message, status)
        if isinstance(error, SalesforceRefusedRequest):
            return PermissionDenied(SYSTEM, f"{detail} — give the integration user API access and read/edit "
                                    f"permission on {sobject or 'the object'}", status=403)
        if isinstance(error, SalesforceMalformedRequest):
            return self._malformed(what, detail, code, fields, sobject)
        if isinstance(error, SalesforceResourceNotFound):
            if what.startswith("bulk job"):
                return BulkJobGone(detail)
            return ConfigError(SYSTEM, f"{detail} — {sobject or 'the resource'} does not exist in this org or the "
                               "integration user cannot see it", status=404)
        if isinstance(error, SalesforceMoreThanOneRecord):
            return FatalError(SYSTEM, f"{detail} — more than one record matches", status=300)
        if isinstance(error, SalesforceGeneralError) and (status >= 500 or status == 408):
            return UpstreamError(SYSTEM, detail, status=status, retry_after=self._retry_after(status))
        return FatalError(SYSTEM, detail, status=status)

    def _rate_limited(self, detail: str, code: str | None, message: str, status: int) -> RateLimited:
        if status == 403 and "TotalRequests" in message:
            usage = self.api_usage
            used = f" ({usage[0]}/{usage[1]} calls used)" if usage else ""
            return RateLimited(SYSTEM, f"{detail} — the org's daily API request limit is exhausted{used}; it frees "
                               "up over a rolling 24 hours: wait (hours), or raise the org's API allocation",
                               status=status, retry_after=DAILY_LIMIT_WAIT)
        return RateLimited(SYSTEM, detail, status=status, retry_after=self._retry_after(status))

    def _malformed(self, what: str, detail: str, code: str | None, fields: list[str],
                   sobject: str | None) -> Exception:
        if code == "INVALID_QUERY_LOCATOR":
            return QueryLocatorExpired(detail)
        if code == "INVALID_TYPE":
            return ConfigError(SYSTEM, f"{detail} — {sobject or 'this sObject'} is not available in this org "
                               "(or not to the integration user)", status=400)
        if code in ("INVALID_FIELD", "MALFORMED_QUERY", "INVALID_FIELD_FOR_INSERT_UPDATE"):
            named = f" ({', '.join(fields)})" if fields else ""
            where = sobject or "this object"
            text = (f"{detail}{named} — a field the hub reads or writes on {where} is missing or not accessible: "
                    f"create it, grant field access, or change mappings/salesforce/{sobject or '<object>'}.yaml")
            if code == "INVALID_FIELD" and what.startswith("query"):
                return FieldNotFound(SYSTEM, text, fields=fields or NO_SUCH_COLUMN.findall(detail), status=400)
            return ConfigError(SYSTEM, text, status=400)
        return FatalError(SYSTEM, detail, status=400)

    def _retry_after(self, status: int) -> float | None:
        last = self.transport.mine
        if last is None or last.status_code != status:
            return None
        value = last.headers.get("Retry-After")
        try:
            return float(value) if value is not None else None
        except ValueError:
            return None

    def describe(self, name: str, *, fresh: bool = False) -> dict[str, dict[str, Any]]:
        """{field name: describe entry} for sObject `name`; one describe call per client unless `fresh`."""
        if fresh or name not in self._described:
            described = self.call(f"describe {name}", lambda sf: getattr(sf, name).describe(), sobject=name)
            self._described[name] = {item["name"]: item for item in described.get("fields") or []}
        return self._described[name]

    def close(self) -> None:
        self.session.close()


def login_failure(error: SalesforceAuthenticationFailed, secrets: list[str]) -> str:
    """Salesforce's own words for a failed login: the SOAP fault's exceptionCode and exceptionMessage, or the
    OAuth answer's error and error_description (simple-salesforce's `message` attribute is a template,
    "Response content: {content}", not the text). A configured secret is never repeated."""
    text = getattr(error, "auth_message", None)
    if not isinstance(text, str):
        content = getattr(error, "content", None)
        text = content.decode("utf-8", "replace") if isinstance(content, bytes) else str(content or "")
    text = " ".join(text.split())[:300] or "no message"
    for secret in secrets:
        text = text.replace(secret, "**********")
    return f"{error.code}: {text}" if error.code else text


def _error_details(content: Any) -> tuple[str | None, str, list[str]]:
    """(errorCode, message, fields) from Salesforce's JSON-array error body (or whatever came back)."""
    first = content[0] if isinstance(content, list) and content else content
    if isinstance(first, dict):
        code = first.get("errorCode") or first.get("statusCode") or first.get("error")
        message = first.get("message") or first.get("error_description") or ""
        fields = [str(name) for name in first.get("fields") or []]
        return (str(code) if code else None), str(message), fields
    return None, str(content or "")[:300], []
