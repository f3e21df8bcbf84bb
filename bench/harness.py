"""What the benchmarks share: settings that point the hub at emulators, a fresh database, a scratch
PostgreSQL database."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

#: the emulators serve benchmarks with their rate limits off, and the hub's own API budget (a token bucket when
#: no Prefect server is configured) is lifted to match: the benchmarks measure the hub, not the vendors' limits
NO_BUDGET = {f"JOURNEYHUB_RATE_{system}": "1000000/1000000" for system in ("HUBSPOT", "SALESFORCE", "DYNAMICS")}


@contextmanager
def hub_settings(env: dict[str, str], database: Path) -> Iterator[Any]:
    """Settings read from `env` alone, pointing at the emulators and a fresh, migrated SQLite database; the
    connectors opened for them are closed on exit."""
    from canonical.db import make_engine
    from canonical.schema import upgrade
    from flows import sync as sync_flow
    from journeyhub.settings import Settings

    url = f"sqlite:///{database}"
    upgrade(make_engine(url))
    settings = Settings.from_env({**env, **NO_BUDGET, "JOURNEYHUB_DATABASE_URL": url})
    try:
        yield settings
    finally:
        sync_flow.close_connectors(settings)


def http_calls(counts: dict[str, int]) -> int:
    """HTTP requests in an emulator's request counts. The Dataverse emulator also logs each operation inside
    a `$batch` (under `$batch:<route>`, as they count toward service protection limits); those travel in
    their batch's one request."""
    return sum(count for route, count in counts.items() if not route.startswith("$batch:"))


@contextmanager
def scratch_postgres(url: str, prefix: str) -> Iterator[Any]:
    """An engine on a new database named `<prefix>_<random>` on the server of `url`, dropped afterwards (its
    connections too). Imports inside: a benchmark may run it against an older checkout's code."""
    from sqlalchemy import text

    from canonical.db import make_engine

    admin = make_engine(url, isolation_level="AUTOCOMMIT")
    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    engine = make_engine(admin.url.set(database=name).render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
        admin.dispose()
