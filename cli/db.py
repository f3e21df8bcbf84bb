"""`journeyhub db upgrade|status`: create, migrate and inspect the canonical database."""

from __future__ import annotations

import typer
from rich.table import Table

from canonical import schema
from canonical.db import redact
from cli import context
from cli.context import console

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
    console.print(f"[green]✓[/] {redact(current.database_url)}: {verb} revision {after.current} "
                  f"({len(after.tables)} tables, {len(after.views)} views)")


@db_app.command("status")
def status() -> None:
    """Show the schema revision, the tables and the contract views."""
    current = context.settings()
    engine = context.engine(current, require_schema=False)
    state = schema.status(engine)
    table = Table(title=f"Database {redact(current.database_url)}", show_header=False)
    table.add_row("revision", f"{state.current or '(none: run `journeyhub db upgrade`)'}")
    table.add_row("latest", state.head)
    table.add_row("up to date", "yes" if state.up_to_date else "[red]no[/]")
    table.add_row("tables", ", ".join(name for name in state.tables if name != "alembic_version") or "-")
    table.add_row("views", ", ".join(state.views) or "-")
    console.print(table)
    if not state.up_to_date:
        raise typer.Exit(1)
