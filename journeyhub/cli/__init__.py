"""The `journeyhub` command line (typer + rich)."""

from journeyhub.cli.app import app, main

__all__ = ["app", "main"]
