"""`journeyhub tag` and `journeyhub explain`: the journey engine from the command line."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import typer
from rich.console import Group
from rich.panel import Panel
from rich.table import Table

from cli import context
from cli.context import UserError, console
from journeyhub.journey.explain import Explanation, explain


def parse_as_of(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(f"--as-of {value!r} is not a date or timestamp (use e.g. 2026-11-01 or "
                        "2026-11-01T12:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def tag(as_of: str | None = typer.Option(None, help="evaluate as of this date/time (default: now)"),
        full: bool = typer.Option(False, "--full", help="re-evaluate every customer, not only changed ones")) -> None:
    """Resolve identities, tag lifecycle stages with history, and assign segments."""
    from flows.journey import run_journey

    settings = context.settings()
    summary = run_journey(settings, as_of=parse_as_of(as_of), full=full)
    table = Table(title=f"Journey as of {summary.as_of:%Y-%m-%d %H:%M} UTC (rules {summary.ruleset_version})")
    table.add_column("stage")
    table.add_column("customers", justify="right")
    for stage, count in summary.stages.items():
        table.add_row(stage, str(count))
    segments = Table(title="Segments")
    segments.add_column("segment")
    segments.add_column("customers", justify="right")
    for name, count in sorted(summary.segments.items()):
        segments.add_row(name, str(count))
    console.print(table, segments)
    console.print(f"[green]✓[/] {summary.customers} customers ({summary.new_customers} new, {summary.merges} merged), "
                  f"{summary.evaluated} re-evaluated{' (full)' if summary.full else ''}, "
                  f"{summary.history_changed} histories changed, {summary.segment_changes} segment changes")


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else ("" if value is None else str(value))


def render(result: Explanation) -> Group:
    customer = result.customer
    current = result.history[-1] if result.history else None
    header = (f"[bold]{customer['full_name'] or '(no name)'}[/]  {customer['email'] or ''}  {customer['phone'] or ''}\n"
              f"customer [cyan]{customer['id']}[/] · first seen {_when(customer['first_seen_at'])}\n"
              f"stage [bold magenta]{current['stage'] if current else '-'}[/] since "
              f"{_when(current['entered_at']) if current else '-'} · segment [bold yellow]{customer['segment'] or '-'}"
              f"[/] since {_when(customer['segment_since'])}\n"
              f"last interaction {_when(customer['last_interaction_at'])} via "
              f"{customer['last_interaction_channel'] or '-'}")
    if result.followed:
        header += f"\n[dim]followed merged id(s) {' → '.join(result.followed)} → {customer['id']}[/]"
    if result.others:
        header += f"\n[yellow]also matching: {', '.join(result.others)}[/]"
    sources = Table(title="Records in the CRMs and why they are one person", expand=True)
    for column in ("system", "object", "id", "name", "email", "phone", "linked by", "evidence"):
        sources.add_column(column, overflow="fold")
    for row in result.sources:
        deleted = " [red](deleted)[/]" if row["is_deleted"] else ""
        sources.add_row(row["system"], row["object_type"], f"{row['remote_id']}{deleted}", row["full_name"] or "",
                        row["email"] or "", row["phone"] or "", row["match_rule"] or "", row["match_evidence"] or "")
    history = Table(title="Stage history", expand=True)
    for column in ("stage", "entered", "exited", "rule", "evidence"):
        history.add_column(column, overflow="fold")
    for row in result.history:
        evidence = f"{row['evidence_type']} {row['evidence_id']}" + (f" — {row['evidence_title']}"
                                                                    if row["evidence_title"] else "")
        history.add_row(row["stage"], _when(row["entered_at"]), _when(row["exited_at"]),
                        f"{row['rule_id']}@{row['ruleset_version']}", evidence)
    timeline = Table(title=f"Unified timeline ({len(result.timeline)} most recent of {result.timeline_total})",
                     expand=True)
    for column in ("when", "system", "kind", "channel", "dir", "title"):
        timeline.add_column(column, overflow="fold")
    for row in result.timeline:
        timeline.add_row(_when(row["occurred_at"]), row["system"], row["kind"], row["channel"] or "",
                         row["direction"] or "", (row["title"] or "")[:80])
    return Group(Panel(header, title="Customer"), sources, history, timeline)


def explain_command(query: str = typer.Argument(..., help="an email address, a customer id (cus_…) or a source key"),
                    limit: int = typer.Option(40, help="timeline items to show")) -> None:
    """Explain one customer: records and matching rules, timeline, stage history with evidence, segment."""
    result = explain(context.engine(), query, timeline_limit=limit)
    if result is None:
        raise UserError(f"no customer matches {query!r} (try an email address, a cus_… id, or run `journeyhub tag`)")
    console.print(render(result))
