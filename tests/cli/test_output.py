"""Every command's output with stdout piped (as in CI logs, cron mail, `| tee`): complete lines that never
wrap — even with COLUMNS=40 — and no box-drawing; and each `--json` document parses and carries the same
counts as the database."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from canonical.db import make_engine
from sandbox.runtime import Sandbox
from tests.cli.processes import CLI, clean_env

pytestmark = pytest.mark.slow

BOXES = re.compile("[\u2500-\u257f]|\u2026(?!$)", re.M)  # box drawing; the ellipsis rich cuts cells with
OBJECT_LINE = re.compile(r"^(hubspot|salesforce|dynamics) \w+: read \d+, inserted \d+, updated \d+, deleted \d+, "
                         r"quarantined \d+, skipped \d+, \d+ API calls$")
COUNTS = ("records_read", "inserted", "updated", "unchanged", "deleted", "quarantined", "skipped", "api_calls")


class Hub:
    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.engine: Engine = make_engine(env["JOURNEYHUB_DATABASE_URL"])

    def run(self, *args: str, code: int | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([*CLI, *args], cwd=self.folder, env=self.env, capture_output=True, text=True,
                                timeout=300)
        assert "Traceback" not in result.stderr, result.stderr
        if code is not None:
            assert result.returncode == code, result.stdout + result.stderr
        return result

    def plain(self, *args: str, code: int = 0) -> list[str]:
        """The command's stdout lines, checked: no box drawing, no cut cells."""
        result = self.run(*args, code=code)
        assert not BOXES.search(result.stdout), result.stdout
        return result.stdout.splitlines()

    def document(self, *args: str, code: int = 0) -> dict[str, Any]:
        """The one JSON document on stdout."""
        result = self.run(*args, "--json", code=code)
        lines = result.stdout.splitlines()
        assert len(lines) == 1, result.stdout
        return json.loads(lines[0])

    def rows(self, sql: str, **params: Any) -> list[Any]:
        with self.engine.connect() as connection:
            return list(connection.execute(text(sql), params).all())


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hub]:
    folder = tmp_path_factory.mktemp("output")
    with Sandbox(people=60, seed=11) as sandbox:
        env = clean_env(**sandbox.env, JOURNEYHUB_DATABASE_URL=f"sqlite:///{folder / 'hub.db'}", COLUMNS="40")
        hub = Hub(folder, env)
        hub.plain("db", "upgrade")
        yield hub


@pytest.fixture(scope="module")
def first_sync(hub: Hub) -> dict[str, Any]:
    return hub.document("sync")  # the world's deliberately bad records are quarantined, not a failure: exit 0


def test_sync_json_carries_the_counts_of_the_run_rows(hub: Hub, first_sync: dict[str, Any]) -> None:
    runs = {(row.system, row.object_type): row for row in hub.rows(
        "SELECT * FROM sync_run WHERE run_id = :run AND direction = 'pull'", run=first_sync["run_id"])}
    objects = [(system["system"], item) for system in first_sync["systems"] for item in system["objects"]]
    assert len(objects) == len(runs) == 33
    for system, item in objects:
        row = runs[(system, item["object"])]
        assert row.status == item["status"] and all(getattr(row, name) == item[name] for name in COUNTS), item
    for system in first_sync["systems"]:
        quarantined = hub.rows("SELECT COUNT(*) FROM quarantine WHERE system = :system AND run_id = :run",
                               system=system["system"], run=first_sync["run_id"])[0][0]
        assert system["totals"]["quarantined"] == quarantined > 0 and system["status"] == "succeeded"
    assert first_sync["status"] == "succeeded" and first_sync["mode"] == "incremental"


def test_sync_prints_one_full_line_per_object_then_a_line_per_crm(hub: Hub, first_sync: dict[str, Any]) -> None:
    lines = hub.plain("sync")  # incremental, nothing changed: every object succeeds
    objects = [line for line in lines if OBJECT_LINE.match(line)]
    assert len(objects) == 33, lines
    run_id = hub.rows("SELECT MAX(run_id) FROM sync_run WHERE direction = 'pull'")[0][0]
    summary = lines[lines.index(f"Sync (incremental) — run {run_id}: succeeded:") + 1:]
    assert [line.split(":")[0].strip() for line in summary] == ["hubspot", "salesforce", "dynamics"]
    assert all(re.fullmatch(r"  \w+: status succeeded, objects \d+, read \d+, .*, API calls \d+", line)
               for line in summary), summary


def test_tag_json_and_lines(hub: Hub, first_sync: dict[str, Any]) -> None:
    summary = hub.document("tag")
    customers = hub.rows("SELECT COUNT(*) FROM customer WHERE merged_into_id IS NULL")[0][0]
    assert summary["customers"] == customers == sum(summary["stages"].values()) == sum(summary["segments"].values())
    lines = hub.plain("tag")
    assert any(line.startswith(f"✓ {customers} customers (0 new, 0 merged), 0 re-evaluated") for line in lines)
    assert "Segments:" in lines


def test_explain_json_and_lines(hub: Hub, first_sync: dict[str, Any]) -> None:
    hub.run("tag", code=0)
    customer, email = hub.rows("SELECT customer_id, email FROM customer_360 WHERE email IS NOT NULL "
                               "ORDER BY customer_id LIMIT 1")[0]
    result = hub.document("explain", email)
    assert result["customer"]["id"] == customer
    assert len(result["sources"]) == hub.rows("SELECT COUNT(*) FROM person_record WHERE customer_id = :c",
                                              c=customer)[0][0]
    assert result["timeline_total"] == hub.rows("SELECT COUNT(*) FROM unified_timeline WHERE customer_id = :c",
                                                c=customer)[0][0]
    lines = hub.plain("explain", email)
    assert f"customer {customer} · first seen" in " ".join(lines)
    assert "Records in the CRMs and why they are one person:" in lines and "Stage history:" in lines
    assert hub.run("explain", "nobody@nowhere.example", code=1).stderr.startswith("error: no customer matches")


def test_push_json_carries_the_counts_of_the_push_rows(hub: Hub, first_sync: dict[str, Any]) -> None:
    hub.run("tag", code=0)
    planned = hub.plain("push", "--dry-run")
    assert planned[1] == "Write-back plan (dry run: nothing written):"
    plan_line = re.compile(r"  \w+ \w+: create \d+, update \d+, upsert \d+, unchanged \d+, pushed -, failed -, "
                           r"conflicts \d+")
    assert all(plan_line.fullmatch(line) for line in planned[2:] if not line.startswith("conflict ")), planned
    result = hub.document("push")
    assert result["status"] == "succeeded" and not result["not_run"]
    rows = {row.system: row for row in hub.rows(
        "SELECT * FROM sync_run WHERE id IN (SELECT MAX(id) FROM sync_run WHERE direction = 'push' GROUP BY system)")}
    for system, row in rows.items():
        objects = [item for item in result["objects"] if item["system"] == system]
        assert sum(item["pushed"] for item in objects) == row.pushed > 0
        assert sum(item["failed"] for item in objects) == row.failed == 0


def test_status_json_is_the_tables(hub: Hub, first_sync: dict[str, Any]) -> None:
    status = hub.document("status")
    latest = hub.rows("SELECT * FROM sync_run WHERE id IN (SELECT MAX(id) FROM sync_run "
                      "GROUP BY direction, system, object_type)")
    assert len(status["runs"]) == len(latest)
    by_key = {(run["direction"], run["system"], run["object"]): run for run in status["runs"]}
    for row in latest:
        run = by_key[(row.direction, row.system, row.object_type)]
        assert run["status"] == row.status and all(run[name] == getattr(row, name) for name in COUNTS)
    assert len(status["cursors"]) == hub.rows("SELECT COUNT(*) FROM sync_state")[0][0]
    open_quarantine = hub.rows("SELECT COUNT(*) FROM quarantine WHERE resolved_at IS NULL")[0][0]
    assert sum(item["records"] for item in status["quarantine"]) == open_quarantine > 0
    lines = hub.plain("status")
    assert lines[0] == "Last runs:" and "Cursors:" in lines and "Quarantined records (open):" in lines
    assert any(re.fullmatch(r"  pull hubspot contacts: status \w+, finished [\d-]+ [\d:]+, read \d+, .*", line)
               for line in lines)


def test_config_check_db_and_sandbox_generate_lines(hub: Hub, tmp_path: Path) -> None:
    checked = hub.document("config", "check")
    assert checked["valid"] and checked["systems"] == {"hubspot": True, "salesforce": True, "dynamics": True}
    lines = hub.plain("config", "check")
    assert lines[:2] == ["Journey Hub configuration:", f"  database: value sqlite:///{hub.folder / 'hub.db'}"]
    assert lines[-1] == "✓ configuration is valid"
    assert any(line.startswith("  views: value customer_360") or "customer_360" in line
               for line in hub.plain("db", "status"))
    generated = hub.plain("sandbox", "generate", "--people", "50", "--out", str(tmp_path / "world"))
    assert generated[0].startswith(f"✓ 50 people (seed 7) written to {tmp_path / 'world'}/ — stages: ")


def test_a_long_pull_prints_progress_lines_with_records_rate_and_elapsed(tmp_path: Path) -> None:
    from sandbox.common.faults import FaultConfig, FaultRule

    with Sandbox(people=60, seed=11) as sandbox:
        slow = FaultRule(kind="delay", path="/email/public/v1/events", times=3, delay_seconds=2.5)
        sandbox.set_faults("hubspot", FaultConfig(rules=[slow]))
        env = clean_env(**sandbox.env, JOURNEYHUB_DATABASE_URL=f"sqlite:///{tmp_path / 'hub.db'}",
                        JOURNEYHUB_PAGE_TASK_SIZE="1", JOURNEYHUB_STORE_GROUP_RECORDS="1")  # a batch per API page
        hub = Hub(tmp_path, env)
        hub.plain("db", "upgrade")
        lines = hub.plain("sync", "--system", "hubspot")
    progress = [line for line in lines if line.startswith("hubspot email_events: ") and "so far" in line]
    assert progress, lines
    assert all(re.fullmatch(r"hubspot email_events: [\d,]+ records so far, [\d,]+ records/s, \d+ s elapsed", line)
               for line in progress), progress
    assert int(progress[0].split(", ")[-1].split()[0]) >= 5, "a line every 5 s off a terminal, none sooner"


def test_progress_lines_are_timed_per_object_and_spaced(monkeypatch: pytest.MonkeyPatch) -> None:
    from flows import runtime
    from journeyhub.ingest.loader import Counts

    clock = [100.0]
    monkeypatch.setattr(runtime.time, "monotonic", lambda: clock[0])
    lines: list[str] = []
    progress = runtime.ProgressLog(lambda message, *args: lines.append(message % args), every=10)
    for at, object_type, read in [(103, "owners", 6), (110, "contacts", 1000), (121, "contacts", 20000),
                                  (125, "contacts", 22000), (140, "contacts", 40000)]:
        clock[0] = at
        progress("hubspot", object_type, Counts(records_read=read))
    assert lines == ["hubspot contacts: 20,000 records so far, 1,111 records/s, 18 s elapsed",
                     "hubspot contacts: 40,000 records so far, 1,081 records/s, 37 s elapsed"]


@pytest.mark.postgres
def test_sync_and_status_json_carry_the_database_counts_on_postgresql(engine_pg_clean: Engine,
                                                                       tmp_path: Path) -> None:
    url = engine_pg_clean.url.render_as_string(hide_password=False)
    with Sandbox(people=50, seed=13) as sandbox:
        hub = Hub(tmp_path, clean_env(**sandbox.env, JOURNEYHUB_DATABASE_URL=url))
        synced = hub.document("sync", "--system", "dynamics")  # bad records quarantined: reported, exit 0
    runs = {row.object_type: row for row in hub.rows("SELECT * FROM sync_run WHERE run_id = :run",
                                                     run=synced["run_id"])}
    objects = synced["systems"][0]["objects"]
    assert len(objects) == len(runs) == 11
    assert all(getattr(runs[item["object"]], name) == item[name] for item in objects for name in COUNTS)
    status = hub.document("status")
    assert {run["object"]: run["records_read"] for run in status["runs"]} == \
        {name: row.records_read for name, row in runs.items()}
    assert sum(item["records"] for item in status["quarantine"]) == synced["systems"][0]["totals"]["quarantined"]
