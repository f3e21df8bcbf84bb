"""What every command needs: settings, and a database engine that is reachable and migrated."""

from __future__ import annotations

from sqlalchemy import Engine

from canonical.db import check_connection, make_engine, redact
from canonical.schema import status
from journeyhub.cli.app import UserError
from journeyhub.settings import Settings, load_settings


def settings() -> Settings:
    return load_settings()


def engine(current: Settings | None = None, *, require_schema: bool = True) -> Engine:
    """An engine for JOURNEYHUB_DATABASE_URL; with `require_schema`, the schema must be up to date."""
    url = (current or settings()).database_url
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
