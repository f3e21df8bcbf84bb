"""The database contract: migrations build exactly the models' schema, and the views have the documented
names and columns, on SQLite and PostgreSQL."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlmodel import SQLModel

import canonical.models  # noqa: F401
from canonical.db import make_engine
from canonical.schema import downgrade, include_object, status, upgrade
from canonical.views import CONTRACT_VIEWS, HELPER_VIEWS

SCHEMA_DOC = Path(__file__).resolve().parents[2] / "docs" / "schema.md"


def test_migrations_produce_exactly_the_models_schema(engine: Engine) -> None:
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_object": include_object, "compare_type": True})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == []


def test_upgrade_is_idempotent_and_reports_head(engine: Engine) -> None:
    upgrade(engine)
    state = status(engine)
    assert state.up_to_date and state.current == state.head


def test_contract_views_have_exactly_the_documented_columns(engine: Engine) -> None:
    inspector = inspect(engine)
    for view, columns in {**CONTRACT_VIEWS, **HELPER_VIEWS}.items():
        assert [column["name"] for column in inspector.get_columns(view)] == columns, view


def test_contract_views_are_queryable_when_empty(engine: Engine) -> None:
    with engine.connect() as connection:
        for view in CONTRACT_VIEWS:
            assert connection.execute(text(f"SELECT * FROM {view}")).all() == []


def test_downgrade_removes_everything_and_upgrade_restores_it(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'roundtrip.db'}")
    upgrade(engine)
    downgrade(engine, "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    assert inspect(engine).get_view_names() == []
    upgrade(engine)
    assert set(CONTRACT_VIEWS) <= set(inspect(engine).get_view_names())


def documented_schema() -> dict[str, list[str]]:
    """`{table or view: [columns in order]}` as docs/schema.md documents them."""
    documented: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in SCHEMA_DOC.read_text(encoding="utf-8").splitlines():
        heading = re.match(r"^###\s+`(\w+)`", line)
        if heading:
            current = documented.setdefault(heading.group(1), [])
            continue
        row = re.match(r"^\|\s*`(\w+)`\s*\|", line)
        if row and current is not None:
            current.append(row.group(1))
    return documented


def test_schema_docs_document_every_table_view_and_column(engine: Engine) -> None:
    inspector = inspect(engine)
    actual = {name: [column["name"] for column in inspector.get_columns(name)]
              for name in [*inspector.get_table_names(), *inspector.get_view_names()] if name != "alembic_version"}
    documented = documented_schema()
    assert sorted(documented) == sorted(actual), "docs/schema.md and the database list different tables/views"
    for name, columns in actual.items():
        if name in CONTRACT_VIEWS or name in HELPER_VIEWS:
            assert documented[name] == columns, f"{name}: documented columns differ (order matters for views)"
        else:
            assert sorted(documented[name]) == sorted(columns), f"{name}: documented columns differ"


@pytest.mark.parametrize("view", sorted(CONTRACT_VIEWS))
def test_every_contract_view_is_described(view: str) -> None:
    text_ = SCHEMA_DOC.read_text(encoding="utf-8")
    section = text_.split(f"### `{view}`", 1)[1].split("\n### ", 1)[0]
    assert len(section.split("|")[0].strip()) > 40, f"{view} needs a description above its column table"
