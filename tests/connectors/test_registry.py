"""A CRM is one connector package plus one registry line: a fourth CRM registered here (`acme`) is picked up
by the settings, the CLI's system list, the mapping language, `open_connector` and a sync, with no change to
the hub's core."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from pydantic import SecretStr, TypeAdapter, ValidationError
from sqlalchemy import text

from canonical.db import make_engine
from canonical.schema import upgrade
from cli.context import UserError, chosen_systems
from connectors import registry
from connectors.base import FieldInfo, ObjectDescription, Page, RemoteRecord, SourceField, WriteOp, WriteResult
from connectors.meter import RequestMeter
from connectors.package import ConnectorPackage, ConnectorSettings, Throttle, settings_config
from connectors.retry import RetryPolicy
from flows.sync import close_connectors, sync_system
from journeyhub.config import mappings_root
from journeyhub.connections import open_connector
from journeyhub.ingest.spec import SYSTEM_NAMES
from journeyhub.settings import SYSTEMS, Settings, SystemName

USERS = [{"id": "1", "email": "ada@acme.test", "name": "Ada"}, {"id": "2", "email": "bo@acme.test", "name": "Bo"}]


class AcmeSettings(ConnectorSettings):
    model_config = settings_config("ACME_")
    secret_fields = ("api_key",)

    url: str | None = None
    api_key: SecretStr | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.url and self.provided("api_key"))

    def problems(self) -> list[str]:
        return ["ACME_API_KEY is set but ACME_URL is missing"] if self.provided("api_key") and not self.url else []


class AcmeConnector:
    """Serves `USERS` one per page, with the position as the cursor; counts on the shared meter."""

    system = "acme"

    def __init__(self, url: str, api_key: str, retry: RetryPolicy, throttle: Throttle | None) -> None:
        self.url, self.api_key, self.retry = url, api_key, retry
        self.meter = RequestMeter(throttle)

    @property
    def api_calls(self) -> int:
        return self.meter.calls

    def check(self) -> None:
        self.meter.request()

    def objects(self) -> list[str]:
        return ["users"]

    def describe(self, object_type: str) -> ObjectDescription:
        return ObjectDescription(object_type, {name: FieldInfo(name, "string") for name in USERS[0]})

    def fields_for(self, object_type: str, paths: Iterable[str]) -> dict[str, SourceField | None]:
        return {path: SourceField(path.split(".")[0]) for path in paths}

    def read(self, object_type: str, cursor: str | None, *, full: bool = False,
             fields: Sequence[str] | None = None) -> Iterator[Page]:
        pages = self.meter.pages()
        for position in range(0 if full or cursor is None else int(cursor), len(USERS)):
            self.meter.request()
            user = {name: value for name, value in USERS[position].items() if name == "id" or name in (fields or ())}
            yield Page(object_type, [RemoteRecord(object_type, user["id"], user)], str(position + 1), pages.take())

    def write(self, object_type: str, ops: Sequence[WriteOp]) -> list[WriteResult]:
        return [WriteResult(op.key, ok=False, error="read-only") for op in ops]

    def close(self) -> None:
        self.closed = True


def open_acme(settings: AcmeSettings, retry: RetryPolicy, throttle: Throttle | None) -> AcmeConnector:
    return AcmeConnector(settings.url or "", settings.secret("api_key") or "", retry, throttle)


ACME = ConnectorPackage("acme", "Acme CRM", AcmeSettings, rate=(30, 3.0), open=open_acme)


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch) -> ConnectorPackage:
    monkeypatch.setitem(registry.PACKAGES, "acme", ACME)
    return ACME


def test_a_registered_crm_has_settings_a_budget_and_a_place_in_every_system_list(acme: ConnectorPackage) -> None:
    settings = Settings.from_env({"ACME_URL": "https://acme.test", "ACME_API_KEY": "k-123",
                                  "JOURNEYHUB_RATE_ACME": "12/1.5"})
    assert settings.enabled_systems() == ["acme"]
    assert settings.system("acme").secret("api_key") == "k-123" and "k-123" not in repr(settings.system("acme"))
    assert settings.rate("acme") == (12, 1.5)
    assert Settings.from_env({}).rate("acme") == (30, 3.0)
    assert "acme" in SYSTEMS and "acme" in SYSTEM_NAMES
    assert TypeAdapter(SystemName).validate_python("acme") == "acme"
    assert chosen_systems(settings, ["acme"]) == ["acme"]
    incomplete = Settings.from_env({"ACME_API_KEY_BLOCK": "acme-key"})
    assert incomplete.problems() == ["ACME_API_KEY is set but ACME_URL is missing"]
    with pytest.raises(UserError, match="acme is not configured"):
        chosen_systems(incomplete, ["acme"])


def test_an_unregistered_crm_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValidationError, match="unknown system 'acme': choose from hubspot, salesforce, dynamics"):
        TypeAdapter(SystemName).validate_python("acme")
    with pytest.raises(ValueError, match="unknown system 'acme'"):
        Settings.from_env({}).system("acme")


def test_open_connector_builds_a_registered_crm_from_its_settings(acme: ConnectorPackage) -> None:
    settings = Settings.from_env({"ACME_URL": "https://acme.test", "ACME_API_KEY": "k-123"})
    slots: list[int] = []
    policy = RetryPolicy(max_attempts=2)
    connector = open_connector("acme", settings, retry=policy, throttle=lambda: slots.append(1))
    assert isinstance(connector, AcmeConnector)
    assert (connector.url, connector.api_key, connector.retry) == ("https://acme.test", "k-123", policy)
    connector.check()
    assert slots == [1] and connector.api_calls == 1


def test_a_registered_crm_syncs_through_its_mappings(acme: ConnectorPackage, tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(mappings_root(), mappings, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    (mappings / "acme").mkdir()
    (mappings / "acme" / "users.yaml").write_text("object: users\nentity: owner\nfields:\n  email: email\n"
                                                  "  name: name\n")
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    upgrade(make_engine(url))
    settings = Settings.from_env({"ACME_URL": "https://acme.test", "ACME_API_KEY": "k",
                                  "JOURNEYHUB_DATABASE_URL": url, "JOURNEYHUB_MAPPINGS_DIR": str(mappings)})
    try:
        first = sync_system(settings, "acme")
        again = sync_system(settings, "acme")
    finally:
        close_connectors(settings)
    assert first.status == "succeeded" and first.totals().records_read == 2 and first.totals().api_calls == 2
    assert again.totals().records_read == 0, "the second sync resumes from the persisted cursor"
    with make_engine(url).connect() as connection:
        owners = connection.execute(text("SELECT id, email FROM owner ORDER BY id")).all()
    assert [tuple(row) for row in owners] == [("acme:users:1", "ada@acme.test"), ("acme:users:2", "bo@acme.test")]
