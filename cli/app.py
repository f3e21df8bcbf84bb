"""The `journeyhub` command: the command modules registered on one typer app; errors become one clear line.

Every failure a user can cause or fix — bad configuration, an unreachable database, rejected credentials, a
CRM that is missing fields — is printed as one red line saying what is wrong and how to fix it, with a
non-zero exit; tracebacks are for bugs only (set JOURNEYHUB_DEBUG=1 to see them for anything).
"""

from __future__ import annotations

import os
import signal
import sys

import typer
from pydantic import ValidationError
from rich.markup import escape

from canonical.db import DatabaseError
from cli import db, demo, journey, push, sandbox, status, stop, sync
from cli.context import UserError, errors
from connectors.errors import ConnectorError
from flows.process import tune_gc
from journeyhub.yamlconf import ConfigFileError

app = typer.Typer(
    name="journeyhub", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Journey Hub: one customer journey across HubSpot, Salesforce and Dynamics 365.",
)
app.add_typer(db.db_app, name="db")
app.add_typer(status.config_app, name="config")
app.add_typer(sandbox.sandbox_app, name="sandbox")
app.command("sync")(sync.sync)
app.command("tag")(journey.tag)
app.command("explain")(journey.explain_command)
app.command("push")(push.push)
app.command("status")(status.status)
app.command("demo")(demo.demo_command)


def main() -> None:
    """Console-script entry point. Exit codes (README): 0 everything succeeded; 1 some object or CRM failed
    or ended partial; 2 a configuration or usage error; 130 / 143 stopped by Ctrl-C / SIGTERM."""
    stop.install()
    tune_gc()  # the process's collector policy: only entry points set one (flows/process.py)
    try:
        result = app(standalone_mode=False)
    except stop.Interrupted as interrupted:
        stop.finish(interrupted.signum)
    except typer.Abort:
        stop.finish(signal.SIGINT)
    except Exception as error:
        if os.environ.get("JOURNEYHUB_DEBUG"):
            raise
        sys.exit(_report(error))
    sys.exit(result if isinstance(result, int) else 0)


def _report(error: Exception) -> int:
    if hasattr(error, "show") and hasattr(error, "exit_code"):  # click's usage errors (typer vendors click)
        error.show()
        return int(error.exit_code)
    if isinstance(error, ConfigFileError):
        for problem in error.problems:
            errors.print(f"[bold red]error:[/] {escape(problem)}", highlight=False, soft_wrap=True)
        return 2
    if isinstance(error, ValidationError):
        for item in error.errors(include_url=False):
            where = ".".join(str(part) for part in item["loc"])
            errors.print(f"[bold red]error:[/] configuration {escape(where)}: {escape(item['msg'])}", highlight=False,
                         soft_wrap=True)
        return 2
    if isinstance(error, UserError):
        errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return error.code
    if isinstance(error, DatabaseError | ConnectorError):
        errors.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        return 1
    raise error


if __name__ == "__main__":
    main()
