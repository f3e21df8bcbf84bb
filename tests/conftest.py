"""Shared fixtures: canonical databases on SQLite and PostgreSQL.

PostgreSQL tests use the server named by JOURNEYHUB_TEST_POSTGRES_URL (a URL to an existing database on
a server where the user may create databases; `.ci/run` sets it). Each test session creates its own
scratch database and drops it at the end. Outside CI the PostgreSQL tests skip with the reason when no
server is reachable; under CI=true they fail instead.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, inspect, text
from sqlalchemy.engine import make_url

from canonical.db import make_engine
from canonical.schema import upgrade

POSTGRES_URL = os.environ.get("JOURNEYHUB_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _postgres_admin() -> Engine | None:
    engine = make_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        if IN_CI:
            pytest.fail(f"CI=true but PostgreSQL at {POSTGRES_URL} is unreachable: {error}")
        return None
    return engine


@pytest.fixture(scope="session")
def postgres_database() -> Iterator[str]:
    """A scratch PostgreSQL database URL for this test session (created, migrated, dropped)."""
    admin = _postgres_admin()
    if admin is None:
        pytest.skip(f"no PostgreSQL server reachable at {POSTGRES_URL} (set JOURNEYHUB_TEST_POSTGRES_URL)")
    name = f"jh_test_{uuid.uuid4().hex[:10]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="session")
def postgres_engine(postgres_database: str) -> Iterator[Engine]:
    engine = make_engine(postgres_database)
    upgrade(engine)
    yield engine
    engine.dispose()


def truncate_all(engine: Engine) -> None:
    tables = [name for name in inspect(engine).get_table_names() if name != "alembic_version"]
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY"))
        else:
            for name in tables:
                connection.execute(text(f"DELETE FROM {name}"))


@pytest.fixture
def sqlite_engine(tmp_path: Path) -> Iterator[Engine]:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def engine(request: pytest.FixtureRequest) -> Iterator[Engine]:
    """A migrated, empty canonical database on each dialect."""
    if request.param == "sqlite":
        yield request.getfixturevalue("sqlite_engine")
    else:
        engine = request.getfixturevalue("postgres_engine")
        truncate_all(engine)
        yield engine


@pytest.fixture
def engine_pg_clean(postgres_engine: Engine) -> Engine:
    """The session's PostgreSQL database, emptied."""
    truncate_all(postgres_engine)
    return postgres_engine


# ---------------------------------------------------------------------------------------------- no skips in CI
_skipped: list[str] = []


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under CI=true no test may skip (README: the PostgreSQL and Chromium tests skip only outside CI)."""
    if IN_CI and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        _skipped.append(f"{report.nodeid}: {reason}")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _skipped and exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: object) -> None:
    if _skipped:
        write = terminalreporter.write_line  # type: ignore[attr-defined]
        write(f"CI=true, yet {len(_skipped)} test(s) skipped (none may; see README):", red=True)
        for line in _skipped:
            write(f"  {line}")
