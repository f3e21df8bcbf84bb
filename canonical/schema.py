"""Schema management: Alembic migrations run programmatically (`journeyhub db upgrade` / `db status`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect

from canonical.views import CONTRACT_VIEWS, HELPER_VIEWS

MIGRATIONS = Path(__file__).parent / "migrations"
VIEW_NAMES = set(CONTRACT_VIEWS) | set(HELPER_VIEWS)


def include_object(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    """Autogenerate compares tables only; the views are created by hand in the migrations."""
    return not (type_ == "table" and name in VIEW_NAMES)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Create or update the schema to `revision` (idempotent)."""
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def downgrade(engine: Engine, revision: str) -> None:
    config = alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None
    head: str
    tables: list[str]
    views: list[str]

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def status(engine: Engine) -> SchemaStatus:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
        inspector = inspect(connection)
        tables = sorted(inspector.get_table_names())
        views = sorted(inspector.get_view_names())
    return SchemaStatus(current=current, head=head or "", tables=tables, views=views)
