"""Connector errors, grouped by what the caller should do about them.

Each connector's `client.py` translates its SDK's exceptions into these at the boundary; retry decisions
and run summaries key off these classes only.

- `FatalError`: stop this CRM's sync and tell a person (bad credentials, missing permissions, bad config,
  a query the API rejects). Retrying cannot help.
- `RetriableError`: wait and try again (rate limited — carrying the vendor's wait —, 5xx, network).
- `SkippableError`: one record is bad; quarantine it and carry on.
"""

from __future__ import annotations


class ConnectorError(Exception):
    """Base class: `system` names the CRM, the message says what happened and how to fix it."""

    def __init__(self, system: str, message: str, *, status: int | None = None) -> None:
        self.system = system
        self.message = message
        self.status = status
        super().__init__(f"{system}: {message}")


class FatalError(ConnectorError):
    """Retrying cannot help; a person must act."""


class AuthError(FatalError):
    """Credentials are missing, wrong or expired and cannot be refreshed."""


class PermissionDenied(FatalError):
    """Authenticated, but not allowed (missing scopes or security role)."""


class ConfigError(FatalError):
    """The CRM is not set up the way the hub needs (e.g. custom fields the admin must create)."""


class FieldNotFound(ConfigError):
    """The CRM refused a read naming a field it does not have (deleted since the hub last described the org):
    describe again and read without it. `fields` are the names the CRM's answer gave, if it gave any."""

    def __init__(self, system: str, message: str, *, fields: list[str] | None = None,
                 status: int | None = None) -> None:
        super().__init__(system, message, status=status)
        self.fields = list(fields or [])


class RetriableError(ConnectorError):
    """A transient failure; `retry_after` is the vendor's requested wait in seconds, if it gave one."""

    def __init__(self, system: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(system, message, status=status)
        self.retry_after = retry_after


class HostUnreachable(FatalError):
    """The CRM's host has not answered for the run's window (or its name does not resolve): every further call
    of that CRM in this run fails at once (`connectors.breaker`). `setting` names the variable to fix."""

    def __init__(self, system: str, message: str, *, host: str, setting: str) -> None:
        super().__init__(system, message)
        self.host = host
        self.setting = setting


class RateLimited(RetriableError):
    """429 (or Salesforce's REQUEST_LIMIT_EXCEEDED when transient)."""


class UpstreamError(RetriableError):
    """5xx or a network failure."""


class Unreachable(UpstreamError):
    """No HTTP answer at all: the connection was refused, the name did not resolve, TLS failed or connecting
    timed out. Every connector raises this one class for those, so one breaker (`connectors.breaker`) can stop
    a CRM whose host stays silent. `permanent`: retrying cannot help (a name that does not exist)."""

    def __init__(self, system: str, message: str, *, host: str, setting: str, reason: str,
                 permanent: bool = False) -> None:
        super().__init__(system, message)
        self.host = host
        self.setting = setting
        self.reason = reason
        self.permanent = permanent


class TokenExpired(RetriableError):
    """401 on a token that can be refreshed: refresh once, then retry."""


class WriteUnconfirmed(ConnectorError):
    """A write that is not safe to send twice (a create) was sent and no answer came (read timeout, connection
    reset, a garbled 2xx): the CRM may have applied it. It is not retried; the caller keeps it as unconfirmed
    and looks it up later (write-back settles it by its marker on the next push)."""


class SkippableError(ConnectorError):
    """One record cannot be processed; quarantine it and continue."""

    def __init__(self, system: str, message: str, *, remote_id: str | None = None) -> None:
        super().__init__(system, message)
        self.remote_id = remote_id
