"""Alembic environment: the canonical models' metadata; the connection comes from `canonical.schema`."""

from alembic import context
from sqlalchemy import Connection
from sqlmodel import SQLModel

import canonical.models  # noqa: F401  (registers every table on SQLModel.metadata)
from canonical.schema import include_object

target_metadata = SQLModel.metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through `journeyhub db upgrade` (canonical.schema.upgrade)")
run_migrations(connection)
