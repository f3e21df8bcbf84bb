"""How commands print, wherever their output goes.

A terminal gets rich's live display and tables. Anything else — a pipe, `| tee`, cron mail, a CI log, a
Prefect worker's log — gets plain lines that never wrap and never draw boxes: a table becomes one line per
row (`hubspot contacts: status succeeded, read 245, …`), so nothing is squeezed to 80 columns. `--json`
prints exactly one JSON document on stdout for scripts (everything else goes to stderr).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from rich.markup import escape
from rich.table import Table
from rich.text import Text

from cli.context import console, errors

STATUS_STYLES = {"succeeded": "green", "partial": "yellow", "failed": "red", "running": "cyan"}


def live() -> bool:
    """True when stdout is a terminal: rich's live display and tables; else plain lines."""
    return console.is_terminal


def say(markup: str) -> None:
    """One line (rich markup: styled on a terminal, plain elsewhere), never wrapped."""
    console.print(markup, soft_wrap=True, highlight=False)


def note(markup: str) -> None:
    """One line on stderr (progress and remarks that must not mix with a JSON document on stdout)."""
    errors.print(markup, soft_wrap=True, highlight=False)


def plain(value: Any) -> str:
    """A cell as text: user data is escaped, so brackets in it are never read as markup."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M")
    return str(value)


def table(title: str, columns: Sequence[str], rows: Iterable[Sequence[Any]], *, keys: int = 1,
          numeric: Iterable[str] = (), styles: dict[str, dict[str, str]] | None = None,
          fold: bool = False) -> None:
    """Print rows as a rich table on a terminal, else as one plain line per row: the first `keys` columns
    name the row, the others follow as `column value` pairs (empty cells left out). `styles` colours a
    column's values by value on a terminal (e.g. statuses)."""
    rows = [[plain(value) for value in row] for row in rows]
    styles = {"status": STATUS_STYLES, **(styles or {})}
    if not live():
        if title:
            say(escape(title) + ":")
        for row in rows:
            name = " ".join(value for value in row[:keys] if value)
            pairs = ", ".join(f"{column} {value}" for column, value in zip(columns[keys:], row[keys:], strict=True)
                              if value != "")
            say(escape("  " + (f"{name}: {pairs}" if name and pairs else name or pairs)))
        return
    numeric = set(numeric)
    grid = Table(title=title or None, title_justify="left")
    for column in columns:
        grid.add_column(column, justify="right" if column in numeric else "left",
                        overflow="fold" if fold else "ellipsis")
    for row in rows:
        grid.add_row(*(Text(value, style=styles.get(column, {}).get(value, ""))
                       for column, value in zip(columns, row, strict=True)))
    console.print(grid)


def _default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, Decimal):  # PostgreSQL numerics (amounts)
        return float(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"not JSON: {type(value).__name__}")


def emit_json(document: dict[str, Any]) -> None:
    """Exactly one JSON document on stdout (one line, UTF-8), nothing else."""
    sys.stdout.write(json.dumps(document, default=_default, ensure_ascii=False) + "\n")
    sys.stdout.flush()


@contextmanager
def run_log_lines(*, to_stderr: bool = False) -> Iterator[None]:
    """While the block runs, print each line the flows log (objects as they finish, progress of long
    pulls, errors) — the same lines the Prefect run log gets; on stderr with `to_stderr` (--json)."""
    from flows.runtime import listening

    show = note if to_stderr else say

    def listener(level: int, line: str) -> None:
        colour = "red" if level >= 40 else "yellow" if level >= 30 else ""
        show(f"[{colour}]{escape(line)}[/]" if colour else escape(line))

    with listening(listener):
        yield
