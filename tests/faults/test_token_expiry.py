"""An access token that expires mid-run, for each login the hub can renew by itself: Salesforce client
credentials and username/password (SOAP login), Dataverse client credentials. The hub logs in again and
goes on: a sync loses no page, a push writes each item once. (HubSpot private-app tokens and Salesforce
session ids cannot be renewed: an expiry stops that CRM with a message saying so —
tests/connectors/test_salesforce_sync.py::test_an_expiring_session_is_renewed_with_client_credentials_but_fatal_with_a_session_id.)

Expiry mid-sync with Salesforce client credentials and Dataverse client credentials is proven where the
connectors are tested (see docs/reliability.md); the username/password login is proven here."""

from __future__ import annotations

import pytest

from sandbox.common.faults import FaultConfig
from tests.faults.rig import Rig, assert_pushed_once, assert_synced_as_clean, push_one, sync

#: each renewable login: its CRM and the variables that configure it (`None`: as the sandbox prints them)
LOGINS: dict[str, tuple[str, dict[str, str | None]]] = {
    "salesforce-client-credentials": ("salesforce", {"SALESFORCE_CLIENT_ID": None, "SALESFORCE_CLIENT_SECRET": None}),
    "salesforce-password": ("salesforce", {"SALESFORCE_USERNAME": "hub@sandbox.example",
                                           "SALESFORCE_PASSWORD": "sandbox", "SALESFORCE_SECURITY_TOKEN": "sandbox"}),
    "dynamics-client-credentials": ("dynamics", {"DYNAMICS_TENANT_ID": None, "DYNAMICS_CLIENT_ID": None,
                                                 "DYNAMICS_CLIENT_SECRET": None, "DYNAMICS_TOKEN_URL": None}),
}
TTL = 3   # requests per token


def login_env(rig: Rig, name: str) -> tuple[str, dict[str, str]]:
    system, variables = LOGINS[name]
    return system, {key: value or rig.sandbox.login_env[key] for key, value in variables.items()}


def logins(emulator: object) -> int:
    counts = emulator.requests.counts  # type: ignore[attr-defined]
    return sum(count for route, count in counts.items() if "oauth2" in route or "/Soap/" in route)


def test_a_username_password_session_expiring_mid_sync_is_renewed_without_losing_a_page(rig: Rig) -> None:
    system, login = login_env(rig, "salesforce-password")
    emulator = rig.reset(system, FaultConfig(token_ttl_requests=TTL))
    engine = rig.database("expiry-sync-salesforce-password")
    sync(engine, rig.connector(system, login))
    assert logins(emulator) >= 3, "the session did not expire mid-sync (twice)"
    assert_synced_as_clean(rig, engine, system)


@pytest.mark.parametrize("name", LOGINS)
def test_a_token_expiring_mid_push_is_renewed_and_each_item_written_once(rig: Rig, name: str) -> None:
    system, login = login_env(rig, name)
    emulator = rig.reset(system, FaultConfig(token_ttl_requests=TTL))
    engine = rig.database(f"expiry-push-{name}", rig.tagged)
    report = push_one(engine, rig.connector(system, login))
    assert logins(emulator) >= 2, "the token did not expire mid-push"
    assert not report.errors and report.outcome is not None and not report.outcome.failed, report.errors
    emulator.faults.configure(FaultConfig())
    assert_pushed_once(rig, engine, system)
