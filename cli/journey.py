"""`journeyhub tag` and `journeyhub explain`: the journey engine from the command line."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import datetime
from typing import Any

import typer
from rich.markup import escape
from rich.panel import Panel

from cli import context, output, stop
from cli.context import UserError, console
from flows.runtime import seconds_text
from journeyhub.journey.explain import Explanation, explain


def tag(as_of: str | None = typer.Option(None, help="evaluate as of this date/time (default: now)"),
        full: bool = typer.Option(False, "--full", help="re-evaluate every customer, not only changed ones"),
        as_json: bool = typer.Option(False, "--json", help="print one JSON document (see README) instead")) -> None:
    """Resolve identities, tag lifecycle stages with history, and assign segments."""
    from flows.journey import run_journey

    settings = context.checked_settings()
    context.engine(settings)
    stop.on_stop("tag", "each step commits as a whole; run `journeyhub tag` again to finish")
    if not as_json:
        output.say("resolving identities, tagging stages and segments…")
    started = time.monotonic()
    with output.run_log_lines(to_stderr=as_json):
        summary = run_journey(settings, as_of=context.moment("--as-of", as_of), full=full)
    if as_json:
        output.emit_json({"command": "tag", **asdict(summary)})
        return
    output.table("Stages", ["stage", "customers"], list(summary.stages.items()), numeric={"customers"})
    output.table("Segments", ["segment", "customers"], sorted(summary.segments.items()), numeric={"customers"})
    output.say(f"[green]✓[/] {summary.customers} customers ({summary.new_customers} new, {summary.merges} merged), "
               f"{summary.evaluated} re-evaluated{' (full)' if summary.full else ''}, "
               f"{summary.history_changed} histories changed, {summary.segment_changes} segment changes "
               f"in {seconds_text(time.monotonic() - started)} — as of {summary.as_of:%Y-%m-%d %H:%M} UTC, "
               f"rules {summary.ruleset_version}")


def _when(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M") if isinstance(value, datetime) else ("" if value is None else str(value))


def header_lines(result: Explanation) -> list[str]:
    """The customer at a glance (rich markup; user data escaped)."""
    customer, current = result.customer, result.history[-1] if result.history else None
    lines = [f"[bold]{escape(customer['full_name'] or '(no name)')}[/]  {escape(customer['email'] or '')}  "
             f"{escape(customer['phone'] or '')}",
             f"customer [cyan]{customer['id']}[/] · first seen {_when(customer['first_seen_at'])}",
             f"stage [bold magenta]{current['stage'] if current else '-'}[/] since "
             f"{_when(current['entered_at']) if current else '-'} · segment [bold yellow]{customer['segment'] or '-'}"
             f"[/] since {_when(customer['segment_since'])}",
             f"last interaction {_when(customer['last_interaction_at'])} via "
             f"{customer['last_interaction_channel'] or '-'}"]
    if result.followed:
        lines.append(f"[dim]followed merged id(s) {' → '.join(result.followed)} → {customer['id']}[/]")
    if result.others:
        lines.append(f"[yellow]also matching: {', '.join(result.others)}[/]")
    return lines


def show(result: Explanation) -> None:
    if output.live():
        console.print(Panel("\n".join(header_lines(result)), title="Customer"))
    else:
        for line in header_lines(result):
            output.say(line)
    output.table("Records in the CRMs and why they are one person",
                 ["system", "object", "id", "name", "email", "phone", "linked by", "evidence"],
                 [(row["system"], row["object_type"], row["remote_id"] + (" (deleted)" if row["is_deleted"] else ""),
                   row["full_name"], row["email"], row["phone"], row["match_rule"], row["match_evidence"])
                  for row in result.sources], keys=3, fold=True)
    output.table("Stage history", ["stage", "entered", "exited", "rule", "evidence"],
                 [(row["stage"], _when(row["entered_at"]), _when(row["exited_at"]),
                   f"{row['rule_id']}@{row['ruleset_version']}",
                   f"{row['evidence_type']} {row['evidence_id']}"
                   + (f" — {row['evidence_title']}" if row["evidence_title"] else ""))
                  for row in result.history], keys=1, fold=True)
    output.table(f"Unified timeline ({len(result.timeline)} most recent of {result.timeline_total})",
                 ["when", "system", "kind", "channel", "dir", "title"],
                 [(_when(row["occurred_at"]), row["system"], row["kind"], row["channel"], row["direction"],
                   (row["title"] or "")[:80] if output.live() else row["title"]) for row in result.timeline],
                 keys=2, fold=True)


def explain_command(query: str = typer.Argument(..., help="an email address, a customer id (cus_…) or a source key"),
                    limit: int = typer.Option(40, help="timeline items to show"),
                    as_json: bool = typer.Option(False, "--json", help="print one JSON document (see README)"),
                    ) -> None:
    """Explain one customer: records and matching rules, timeline, stage history with evidence, segment."""
    result = explain(context.engine(), query, timeline_limit=limit)
    if result is None:
        raise UserError(f"no customer matches {query!r} (try an email address, a cus_… id, or run `journeyhub tag`)",
                        code=1)
    if as_json:
        output.emit_json({"command": "explain", "query": query, **asdict(result)})
    else:
        show(result)
