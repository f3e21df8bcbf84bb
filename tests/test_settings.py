"""Settings: a CRM is enabled by its credentials; incomplete ones are explained; secrets never print."""

from __future__ import annotations

import pickle

import pytest
from pydantic import ValidationError

from journeyhub.settings import Settings

ALL = [name for prefix in ("HUBSPOT_", "SALESFORCE_", "DYNAMICS_", "JOURNEYHUB_")
       for name in ("ACCESS_TOKEN", "BASE_URL", "INSTANCE_URL", "USERNAME", "PASSWORD", "SECURITY_TOKEN",
                    "CLIENT_ID", "CLIENT_SECRET", "URL", "TENANT_ID", "TOKEN_URL", "DATABASE_URL", "DOMAIN")
       for name in [prefix + name]]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: pytest.TempPathFactory) -> None:
    for name in ALL:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_nothing_configured_means_no_crm_and_the_default_sqlite_file() -> None:
    settings = Settings()
    assert settings.enabled_systems() == [] and settings.problems() == []
    assert settings.database_url == "sqlite:///journeyhub.db"


def test_each_crm_is_enabled_by_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-secret")
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("SALESFORCE_CLIENT_ID", "id")
    monkeypatch.setenv("SALESFORCE_CLIENT_SECRET", "s3cret")
    monkeypatch.setenv("DYNAMICS_URL", "https://acme.crm.dynamics.com")
    monkeypatch.setenv("DYNAMICS_TENANT_ID", "t")
    monkeypatch.setenv("DYNAMICS_CLIENT_ID", "c")
    monkeypatch.setenv("DYNAMICS_CLIENT_SECRET", "s")
    settings = Settings()
    assert settings.enabled_systems() == ["hubspot", "salesforce", "dynamics"]
    assert settings.salesforce.auth_method == "client_credentials"
    assert settings.dynamics.resolved_token_url == "https://login.microsoftonline.com/t/oauth2/v2.0/token"
    assert settings.problems() == []


def test_incomplete_credentials_are_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SALESFORCE_INSTANCE_URL", "https://acme.my.salesforce.com")
    monkeypatch.setenv("SALESFORCE_USERNAME", "ops@acme.com")
    monkeypatch.setenv("DYNAMICS_CLIENT_ID", "c")
    problems = Settings().problems()
    assert "SALESFORCE_USERNAME is set but SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN are missing" in problems
    assert any("DYNAMICS_URL is missing" in problem for problem in problems)


def test_secrets_never_appear_in_reprs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "pat-na1-very-secret")
    monkeypatch.setenv("SALESFORCE_PASSWORD", "hunter2")
    settings = Settings()
    text = repr(settings.hubspot) + str(settings.hubspot) + repr(settings.salesforce)
    assert "very-secret" not in text and "hunter2" not in text
    assert settings.hubspot.token() == "pat-na1-very-secret"


def test_plain_postgresql_urls_mean_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYHUB_DATABASE_URL", "postgresql://hub@db:5432/journeyhub")
    assert Settings().database_url == "postgresql+psycopg://hub@db:5432/journeyhub"


def test_dotenv_is_read(tmp_path: pytest.TempPathFactory) -> None:
    (tmp_path / ".env").write_text("HUBSPOT_ACCESS_TOKEN=from-dotenv\n")  # type: ignore[operator]
    assert Settings().hubspot.token() == "from-dotenv"


def test_settings_from_a_mapping_read_nothing_of_the_process_environment(monkeypatch: pytest.MonkeyPatch,
                                                                         tmp_path: pytest.TempPathFactory) -> None:
    monkeypatch.setenv("HUBSPOT_ACCESS_TOKEN", "from-the-process")
    monkeypatch.setenv("JOURNEYHUB_PAGE_TASK_SIZE", "9")
    (tmp_path / ".env").write_text("DYNAMICS_URL=https://from-dotenv.crm.dynamics.com\nDYNAMICS_ACCESS_TOKEN=t\n")  # type: ignore[operator]
    settings = Settings.from_env({"SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
                                  "salesforce_access_token": "00D!session", "JOURNEYHUB_DATABASE_URL": "sqlite:///x.db"})
    assert settings.enabled_systems() == ["salesforce"]
    assert settings.salesforce.secret("access_token") == "00D!session"
    assert (settings.database_url, settings.page_task_size) == ("sqlite:///x.db", 5)
    assert Settings().enabled_systems() == ["hubspot", "dynamics"], "Settings() still reads the process and .env"


def test_each_crm_api_budget_is_its_package_default_unless_overridden(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOURNEYHUB_RATE_HUBSPOT", "40")
    monkeypatch.setenv("JOURNEYHUB_RATE_SALESFORCE", "50/2.5")
    settings = Settings()
    assert [settings.rate(name) for name in ("hubspot", "salesforce", "dynamics")] == [(40, 40.0), (50, 2.5),
                                                                                      (600, 18.0)]
    with pytest.raises(ValidationError, match=r"JOURNEYHUB_RATE_DYNAMICS[^']*'fast' is not a rate"):
        Settings.from_env({"JOURNEYHUB_RATE_DYNAMICS": "fast"}).rate("dynamics")


def test_a_secret_block_variable_counts_as_the_secret_being_set() -> None:
    settings = Settings.from_env({"HUBSPOT_ACCESS_TOKEN_BLOCK": "hubspot-token",
                                  "SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com",
                                  "SALESFORCE_USERNAME": "ops@acme.com", "SALESFORCE_PASSWORD_BLOCK": "sf-password"})
    assert settings.enabled_systems() == ["hubspot", "salesforce"]
    assert settings.problems() == ["SALESFORCE_USERNAME is set but SALESFORCE_SECURITY_TOKEN is missing"]


def test_settings_survive_a_pickle_round_trip_with_their_crm_settings() -> None:
    settings = Settings.from_env({"HUBSPOT_ACCESS_TOKEN": "pat-1", "JOURNEYHUB_RATE_HUBSPOT": "7/0.5"})
    assert settings.hubspot.token() == "pat-1"
    copied = pickle.loads(pickle.dumps(settings))
    assert copied.enabled_systems() == ["hubspot"] and copied.rate("hubspot") == (7, 0.5)
    assert copied.hubspot.token() == "pat-1" and type(copied.hubspot) is type(settings.hubspot)


@pytest.mark.parametrize(("system", "window_seconds", "vendor_limit"), [
    ("hubspot", 10, 190),      # private apps: 190 requests per rolling 10 s (Professional/Enterprise)
    ("dynamics", 300, 6000),   # Dataverse service protection: 6,000 requests per 5 minutes per user
])
def test_the_default_budgets_never_let_more_through_than_the_vendor_allows(system: str, window_seconds: int,
                                                                          vendor_limit: int) -> None:
    burst, per_second = Settings.from_env({}).rate(system)
    assert burst + per_second * window_seconds <= vendor_limit
