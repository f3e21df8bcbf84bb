"""`journeyhub db upgrade|status`: create, migrate and inspect the canonical database."""

from __future__ import annotations

import typer

from canonical import schema
from canonical.db import redact
from cli import context, output

db_app = typer.Typer(help="Create, migrate and inspect the canonical database.", no_args_is_help=True)


@db_app.command("upgrade")
def upgrade(revision: str = typer.Option("head", help="target migration revision")) -> None:
    """Create the schema or migrate it to the latest version (safe to re-run)."""
    current = context.settings()
    engine = context.engine(current, require_schema=False)
    before = schema.status(engine).current
    schema.upgrade(engine, revision)
    after = schema.status(engine)
    verb = "already at" if before == after.current else f"upgraded {before or 'empty database'} →"
    output.say(f"[green]✓[/] {redact(current.database_url)}: {verb} revision {after.current} "
               f"({len(after.tables)} tables, {len(after.views)} views)")


@db_app.command("status")
def status() -> None:
    """Show the schema revision, the tables and the contract views."""
    current = context.settings()
    context.missing_database_file(current.database_url)
    engine = context.engine(current, require_schema=False)
    state = schema.status(engine)
    output.table(f"Database {redact(current.database_url)}", ["item", "value"], [
        ("revision", state.current or "(none: run `journeyhub db upgrade`)"), ("latest", state.head),
        ("up to date", "yes" if state.up_to_date else "no"),
        ("tables", ", ".join(name for name in state.tables if name != "alembic_version") or "-"),
        ("views", ", ".join(state.views) or "-")], styles={"value": {"no": "red"}})
    if not state.up_to_date:
        raise typer.Exit(1)
