"""`journeyhub config check` means it: every URL setting parsed, the database URL parsed (and with `--online`
connected to), each CRM's credentials tried — one line per problem naming the variable, exit 2 — and `sync`,
`push` and `tag` refuse the same malformed settings before retrying anything. The vendor's own words for a
rejected login reach the line; the secrets never do."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from canonical.db import make_engine
from canonical.schema import upgrade
from cli.app import app
from cli.demo_run import free_port
from sandbox.runtime import Sandbox
from tests.cli.processes import CLEAN

TOKEN = "pat-na1-0123-secret-token"

MALFORMED = [
    ({"HUBSPOT_BASE_URL": "not-a-url", "HUBSPOT_ACCESS_TOKEN": TOKEN}, "HUBSPOT_BASE_URL='not-a-url'"),
    ({"HUBSPOT_BASE_URL": "https://", "HUBSPOT_ACCESS_TOKEN": TOKEN}, "HUBSPOT_BASE_URL='https://' is not a URL"),
    ({"JOURNEYHUB_DATABASE_URL": "garbage"}, "JOURNEYHUB_DATABASE_URL is not a database URL"),
    ({"JOURNEYHUB_DATABASE_URL": "mysql://hub:pw-secret@db/hub"}, "JOURNEYHUB_DATABASE_URL names the database 'mysql'"),
    ({"JOURNEYHUB_DATABASE_URL": "postgresql+nodriver://hub@db/hub"}, "JOURNEYHUB_DATABASE_URL names an unknown"),
    ({"SALESFORCE_INSTANCE_URL": "acme.my.salesforce.com", "SALESFORCE_ACCESS_TOKEN": TOKEN},
     "SALESFORCE_INSTANCE_URL='acme.my.salesforce.com' is not an http(s) URL"),
    ({"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com", "SALESFORCE_USERNAME": "u", "SALESFORCE_PASSWORD":
      "p", "SALESFORCE_SECURITY_TOKEN": "t", "SALESFORCE_DOMAIN": "https://login.salesforce.com"},
     "SALESFORCE_DOMAIN='https://login.salesforce.com' is not a login domain"),
    ({"DYNAMICS_URL": "https://acme crm.dynamics.com", "DYNAMICS_ACCESS_TOKEN": TOKEN}, "DYNAMICS_URL="),
    ({"DYNAMICS_URL": "https://acme.crm.dynamics.com", "DYNAMICS_CLIENT_ID": "c", "DYNAMICS_CLIENT_SECRET": "s",
      "DYNAMICS_TOKEN_URL": "https://login.microsoftonline.com:port/t"}, "DYNAMICS_TOKEN_URL="),
]
IDS = ["hubspot-no-scheme", "hubspot-no-host", "database-garbage", "database-unsupported", "database-no-driver",
       "salesforce-no-scheme", "salesforce-domain", "dynamics-space", "dynamics-token-port"]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    """`journeyhub …` in-process, in an empty folder (no `.env`), with only the given hub variables set."""
    monkeypatch.chdir(tmp_path)
    for name in [name for name in os.environ if name.startswith(CLEAN)]:
        monkeypatch.delenv(name)
    database = {"JOURNEYHUB_DATABASE_URL": f"sqlite:///{tmp_path / 'hub.db'}"}

    def invoke(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
        result = CliRunner().invoke(app, list(args), env={**database, **env})
        assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
        return result.exit_code, result.stdout, result.stderr

    yield invoke


@pytest.mark.parametrize(("env", "line"), MALFORMED, ids=IDS)
def test_config_check_names_each_malformed_setting_and_exits_2(run, env: dict[str, str], line: str) -> None:
    code, out, err = run("config", "check", env=env)
    assert code == 2, out + err
    problems = [text for text in out.splitlines() if text.startswith("✗")]
    assert len(problems) == 1 and line in problems[0], out
    assert "configuration is valid" not in out and TOKEN not in out + err and "pw-secret" not in out + err
    code, out, _ = run("config", "check", "--json", env=env)
    document = json.loads(out)
    assert code == 2 and not document["valid"] and len(document["problems"]) == 1
    assert line in document["problems"][0]


@pytest.mark.parametrize("command", [["sync"], ["push", "--dry-run"], ["tag"]])
@pytest.mark.parametrize(("env", "line"), [MALFORMED[0], MALFORMED[2]], ids=["hubspot-url", "database-url"])
def test_sync_push_and_tag_refuse_the_same_settings_before_starting(run, command: list[str], env: dict[str, str],
                                                                    line: str) -> None:
    code, out, err = run(*command, env=env)
    assert code == 2, out + err
    assert err.count("error:") == 1 and line in err and "Traceback" not in err
    assert not (Path.cwd() / "hub.db").exists(), "refused before touching the database"


def test_a_well_formed_configuration_is_valid(run) -> None:
    code, out, err = run("config", "check", env={"HUBSPOT_BASE_URL": "http://127.0.0.1:8080/api",
                                                 "HUBSPOT_ACCESS_TOKEN": TOKEN,
                                                 "DYNAMICS_URL": "https://acme.crm4.dynamics.com/"})
    assert code == 2 and "DYNAMICS_URL is set but no credentials" in out, "credentials are still checked"
    code, out, err = run("config", "check", env={"HUBSPOT_BASE_URL": "http://127.0.0.1:8080/api",
                                                 "HUBSPOT_ACCESS_TOKEN": TOKEN})
    assert code == 0 and "configuration is valid" in out, out + err


# --------------------------------------------------------------------------------------------------- --online
@pytest.fixture(scope="module")
def sandbox() -> Iterator[Sandbox]:
    with Sandbox(people=10, seed=5) as running:
        yield running


def test_online_names_a_database_it_cannot_reach(run) -> None:
    closed = f"postgresql://postgres:db-secret@127.0.0.1:{free_port()}/journeyhub"
    code, out, err = run("config", "check", "--online", env={"JOURNEYHUB_DATABASE_URL": closed})
    assert code == 2 and "db-secret" not in out + err
    assert any("cannot connect to the database" in line and "JOURNEYHUB_DATABASE_URL" in line
               for line in out.splitlines() if line.startswith("✗")), out
    code, out, _ = run("config", "check", "--online", env={})   # the SQLite file does not exist yet
    assert code == 2 and "JOURNEYHUB_DATABASE_URL: the database file" in out and "db upgrade" in out
    assert not (Path.cwd() / "hub.db").exists(), "said, not created"


@pytest.mark.slow
def test_online_tries_each_crms_credentials_with_the_vendors_words_and_no_secret(run, sandbox: Sandbox,
                                                                                  tmp_path: Path) -> None:
    upgrade(make_engine(f"sqlite:///{tmp_path / 'hub.db'}"))
    code, out, err = run("config", "check", "--online", env=sandbox.env)
    assert code == 0 and "✗" not in out, out + err

    wrong = {**sandbox.env, "HUBSPOT_ACCESS_TOKEN": TOKEN, "SALESFORCE_ACCESS_TOKEN": "00Dwrong!session-secret",
             "DYNAMICS_ACCESS_TOKEN": "eyJ-wrong-secret"}
    code, out, err = run("config", "check", "--online", env=wrong)
    lines = [line for line in out.splitlines() if line.startswith("✗")]
    assert code == 2 and len(lines) == 3, out + err
    hubspot, salesforce, dynamics = lines
    assert hubspot.startswith("✗ hubspot: the credentials were rejected") and "HUBSPOT_ACCESS_TOKEN" in hubspot
    assert "Authentication credentials not found" in hubspot, "HubSpot's own message"
    assert salesforce.startswith("✗ salesforce: the credentials were rejected")
    assert "INVALID_SESSION_ID" in salesforce and "SALESFORCE_ACCESS_TOKEN" in salesforce
    assert dynamics.startswith("✗ dynamics: the credentials were rejected") and "DYNAMICS_ACCESS_TOKEN" in dynamics
    assert all(secret not in out + err for secret in (TOKEN, "session-secret", "wrong-secret"))


@pytest.mark.slow
@pytest.mark.parametrize(("login", "vendor", "variables"), [
    ({"SALESFORCE_USERNAME": "nobody@example.com", "SALESFORCE_PASSWORD": "pw-secret-1",
      "SALESFORCE_SECURITY_TOKEN": "tok-secret-2"},
     "INVALID_LOGIN: Invalid username, password, security token; or user locked out.", "SALESFORCE_PASSWORD"),
    ({"SALESFORCE_CLIENT_ID": "sandbox-client", "SALESFORCE_CLIENT_SECRET": "cs-secret-3"},
     "invalid_client: invalid client credentials", "SALESFORCE_CLIENT_SECRET"),
    ({"DYNAMICS_TENANT_ID": "sandbox-tenant", "DYNAMICS_CLIENT_ID": "sandbox-client",
      "DYNAMICS_CLIENT_SECRET": "cs-secret-4"}, "AADSTS7000215: Invalid client secret provided",
     "DYNAMICS_CLIENT_SECRET"),
], ids=["salesforce-soap", "salesforce-oauth", "dynamics-entra"])
def test_a_rejected_login_shows_the_vendors_message_and_the_variable(run, sandbox: Sandbox, tmp_path: Path,
                                                                     login: dict[str, str], vendor: str,
                                                                     variables: str) -> None:
    upgrade(make_engine(f"sqlite:///{tmp_path / 'hub.db'}"))
    system = "salesforce" if "SALESFORCE_CLIENT_ID" in login or "SALESFORCE_USERNAME" in login else "dynamics"
    env = {key: value for key, value in sandbox.login_env.items() if key.startswith(system.upper())}
    env = {**{key: value for key, value in env.items() if not key.endswith(("_ID", "_SECRET"))}, **login}
    code, out, err = run("config", "check", "--online", env=env)
    lines = [line for line in out.splitlines() if line.startswith("✗")]
    assert code == 2 and len(lines) == 1, out + err
    assert lines[0].startswith(f"✗ {system}: the credentials were rejected") and vendor in lines[0], lines[0]
    assert variables in lines[0] and "Response content" not in lines[0]
    assert not any(secret in out + err for secret in login.values() if "secret" in secret)


# ------------------------------------------------------------------------------------ the vendor's error text
def test_each_connectors_4xx_error_carries_the_vendors_message() -> None:
    import httpx
    from simple_salesforce.exceptions import SalesforceMalformedRequest

    from connectors.dynamics.client import translate as dataverse_error
    from connectors.hubspot.client import http_error as hubspot_error
    from connectors.salesforce.client import SalesforceClient, SalesforceConfig

    hubspot = hubspot_error(400, json.dumps({
        "status": "error", "message": "Property values were not valid", "category": "VALIDATION_ERROR",
        "errors": [{"message": "Property \"lifecyclestage\" does not exist"}]}).encode(), {}, "batch update", None)
    assert 'VALIDATION_ERROR: Property values were not valid: Property "lifecyclestage" does not exist' \
        in str(hubspot)
    dataverse = dataverse_error(400, httpx.Headers(), {"error": {"code": "0x80040203", "message": "Invalid "
                                "character in field 'firstname'"}}, "PATCH contacts(1)", refreshable=False)
    assert dataverse is not None and "0x80040203: Invalid character in field 'firstname'" in str(dataverse)
    challenge = httpx.Headers({"WWW-Authenticate": 'Bearer error="invalid_token", error_description="The access '
                               'token is expired", authorization_uri=https://login.microsoftonline.com/t'})
    expired = dataverse_error(401, challenge, None, "GET contacts", refreshable=False)
    assert expired is not None and "The access token is expired" in str(expired)
    assert "DYNAMICS_ACCESS_TOKEN" in str(expired)
    client = SalesforceClient(SalesforceConfig(instance_url="http://127.0.0.1:9", access_token="00Dsecret!token"))
    salesforce = client.translate(SalesforceMalformedRequest("https://x/query", 400, "query", [
        {"errorCode": "MALFORMED_QUERY", "message": "unexpected token: 'FORM'"}]), "query Contact", "Contact")
    assert "MALFORMED_QUERY: unexpected token: 'FORM'" in str(salesforce) and "00Dsecret" not in str(salesforce)


def test_online_names_a_crm_host_that_does_not_answer_and_its_setting(run, tmp_path: Path) -> None:
    upgrade(make_engine(f"sqlite:///{tmp_path / 'hub.db'}"))
    port = free_port()
    code, out, err = run("config", "check", "--online", env={"HUBSPOT_BASE_URL": f"http://127.0.0.1:{port}",
                                                             "HUBSPOT_ACCESS_TOKEN": TOKEN})
    lines = [line for line in out.splitlines() if line.startswith("✗")]
    assert code == 2 and len(lines) == 1, out + err
    assert lines[0].startswith(f"✗ hubspot: cannot reach 127.0.0.1:{port}") and "connection refused" in lines[0]
    assert "check HUBSPOT_BASE_URL" in lines[0] and TOKEN not in out + err
