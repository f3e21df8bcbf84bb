"""What every command shares: the console, the one-line error, settings, and a reachable, migrated database."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from canonical.db import check_connection, make_engine, redact
from canonical.schema import status
from journeyhub.settings import SYSTEMS, Settings, load_settings

console = Console()
errors = Console(stderr=True)


class UserError(Exception):
    """A problem the user can fix; the message says how. Exit code 2 (configuration or usage) unless told."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


def fail(message: str, code: int = 1) -> typer.Exit:
    errors.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def moment(option: str, value: str | None) -> datetime | None:
    """A date or timestamp option (`2026-11-01`, `2026-11-01T12:00:00Z`); a time without a zone is UTC."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"{option} {value!r} is not a date or timestamp (use e.g. 2026-11-01 or "
                        "2026-11-01T12:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def settings() -> Settings:
    return load_settings()


def checked_settings() -> Settings:
    """The settings of a command that runs (`sync`, `push`, `tag`): refused, one line per malformed or
    incomplete setting (as `config check` prints them) and exit 2, before anything is retried against them."""
    current = settings()
    problems = current.problems()
    for problem in problems:
        errors.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
    if problems:
        raise typer.Exit(2)
    return current


def engine(current: Settings | None = None, *, require_schema: bool = True) -> Engine:
    """An engine for JOURNEYHUB_DATABASE_URL; with `require_schema`, the schema must be up to date."""
    url = (current or settings()).database_url
    if require_schema:
        missing_database_file(url)
    db = make_engine(url)
    check_connection(db)
    if require_schema:
        schema = status(db)
        if schema.current is None:
            raise UserError(f"the database {redact(url)} has no Journey Hub schema yet: run `journeyhub db upgrade`")
        if not schema.up_to_date:
            raise UserError(f"the database schema is at revision {schema.current} but this version needs "
                            f"{schema.head}: run `journeyhub db upgrade`")
    return db


def missing_database_file(url: str) -> None:
    """A SQLite file that does not exist is refused with how to create one (connecting would create an
    empty file: a command reading the hub would then silently read nothing)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or parsed.database in (None, "", ":memory:") \
            or parsed.database.startswith("file:"):
        return
    path = Path(parsed.database)
    if path.exists():
        return
    demo = Path(".journeyhub-demo", "journeyhub.db")
    hint = (f"; the demo's database is here: export JOURNEYHUB_DATABASE_URL=sqlite:///{demo.resolve()}"
            if demo.exists() else "")
    raise UserError(f"the database file {path} does not exist (JOURNEYHUB_DATABASE_URL={redact(url)}): create it "
                    f"with `journeyhub db upgrade`, or set JOURNEYHUB_DATABASE_URL to an existing database{hint}")


def chosen_systems(current: Settings, requested: list[str] | None, *, require_credentials: bool = True) -> list[str]:
    """The CRMs a command runs on: those asked for with `--system`, else every configured one; unknown
    names, and (with `require_credentials`) CRMs without credentials, are refused with the fix."""
    unknown = [name for name in requested or [] if name not in SYSTEMS]
    if unknown:
        raise UserError(f"unknown system {', '.join(unknown)}: choose from {', '.join(SYSTEMS)}")
    enabled = current.enabled_systems()
    systems = list(requested or enabled)
    not_configured = [name for name in systems if name not in enabled]
    if require_credentials and not_configured:
        raise UserError(f"{', '.join(not_configured)} {'is' if len(not_configured) == 1 else 'are'} not configured: "
                        "set its credentials (see `journeyhub config check`)")
    if not systems:
        raise UserError("no CRM is configured: set HUBSPOT_ACCESS_TOKEN, SALESFORCE_* or DYNAMICS_* (see README)")
    return systems
