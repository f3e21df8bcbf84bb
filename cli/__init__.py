"""The `journeyhub` command line (typer + rich): an entry point at the edge of the house.

`cli.app` registers the commands; each command module depends only on `cli.context` (settings, the
database, the console and the one-line error) and on the hub's core below it.
"""
