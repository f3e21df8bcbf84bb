"""The CLI as a user meets it: real subprocesses, exit codes, one-line errors, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

CLI = [sys.executable, "-c", "from cli.app import main; main()"]


def run(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith(("HUBSPOT_", "SALESFORCE_", "DYNAMICS_", "JOURNEYHUB_"))}
    environment.update(env or {})
    return subprocess.run([*CLI, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


def test_db_upgrade_creates_the_schema_and_is_idempotent(tmp_path: Path) -> None:
    first = run("db", "upgrade", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "upgraded empty database → revision" in first.stdout and (tmp_path / "journeyhub.db").exists()
    again = run("db", "upgrade", cwd=tmp_path)
    assert again.returncode == 0 and "already at revision" in again.stdout
    status = run("db", "status", cwd=tmp_path)
    assert status.returncode == 0 and "customer_360" in status.stdout


@pytest.mark.parametrize("command", [["status"], ["explain", "dana@example.com"], ["push", "--dry-run"],
                                     ["db", "status"]])
def test_reading_a_database_file_that_does_not_exist_says_how_to_create_it(tmp_path: Path,
                                                                           command: list[str]) -> None:
    result = run(*command, cwd=tmp_path, env={"HUBSPOT_ACCESS_TOKEN": "pat"})
    assert result.returncode == 2, result.stdout + result.stderr
    assert "the database file journeyhub.db does not exist" in result.stderr
    assert "create it with `journeyhub db upgrade`" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "journeyhub.db").exists(), "no empty database is created on the way"


def test_after_the_demo_the_missing_database_error_points_at_the_demo_database(tmp_path: Path) -> None:
    demo = tmp_path / ".journeyhub-demo" / "journeyhub.db"
    demo.parent.mkdir()
    demo.touch()
    result = run("explain", "dana@example.com", cwd=tmp_path)
    assert result.returncode == 2
    assert f"export JOURNEYHUB_DATABASE_URL=sqlite:///{demo}" in result.stderr


def test_status_on_an_empty_database_explains_the_next_step(tmp_path: Path) -> None:
    (tmp_path / "journeyhub.db").touch()
    result = run("status", cwd=tmp_path)
    assert result.returncode == 2
    assert "no Journey Hub schema yet: run `journeyhub db upgrade`" in result.stderr
    assert "Traceback" not in result.stderr
    run("db", "upgrade", cwd=tmp_path)
    ok = run("status", cwd=tmp_path)
    assert ok.returncode == 0 and "no runs yet" in ok.stdout


def test_an_unreachable_database_is_one_clear_line(tmp_path: Path) -> None:
    result = run("db", "status", cwd=tmp_path, env={"JOURNEYHUB_DATABASE_URL": "postgresql://hub:pw@127.0.0.1:1/x"})
    assert result.returncode == 1
    assert "cannot connect to the database" in result.stderr and "pw" not in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_options_are_usage_errors(tmp_path: Path) -> None:
    result = run("db", "upgrade", "--bogus", cwd=tmp_path)
    assert result.returncode == 2 and "No such option: --bogus" in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("command", ["sync", "push"])
def test_sync_and_push_refuse_unknown_and_unconfigured_crms_with_the_fix(tmp_path: Path, command: str) -> None:
    run("db", "upgrade", cwd=tmp_path)
    env = {"HUBSPOT_ACCESS_TOKEN": "pat"}
    unknown = run(command, "--system", "zoho", cwd=tmp_path, env=env)
    assert unknown.returncode == 2
    assert "unknown system zoho: choose from hubspot, salesforce, dynamics" in unknown.stderr
    missing = run(command, "--system", "salesforce", cwd=tmp_path, env=env)
    assert missing.returncode == 2 and "salesforce is not configured: set its credentials" in missing.stderr
    none = run(command, cwd=tmp_path)
    assert none.returncode == 2 and "no CRM is configured" in none.stderr
    assert "Traceback" not in unknown.stderr + missing.stderr + none.stderr


def test_config_check_passes_with_the_packaged_mappings_and_lists_crms(tmp_path: Path) -> None:
    result = run("config", "check", cwd=tmp_path, env={"HUBSPOT_ACCESS_TOKEN": "pat"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hubspot" in result.stdout and "enabled" in result.stdout and "configuration is valid" in result.stdout


def test_config_check_names_file_line_and_key_of_a_bad_yaml(tmp_path: Path) -> None:
    from journeyhub.config import mappings_root

    mappings = tmp_path / "mappings"
    subprocess.run(["cp", "-r", str(mappings_root()), str(mappings)], check=True)
    lifecycle = mappings / "lifecycle.yaml"
    lifecycle.write_text(lifecycle.read_text().replace("new_within_days: 90", "new_within_days: ninety"))
    (mappings / "identity.yaml").write_text("version: 1\nrules: [\n")
    result = run("config", "check", cwd=tmp_path,
                 env={"JOURNEYHUB_MAPPINGS_DIR": str(mappings), "SALESFORCE_USERNAME": "ops@acme.com",
                      "SALESFORCE_INSTANCE_URL": "https://acme.my.salesforce.com"})
    assert result.returncode == 2
    line = next(n for n, text in enumerate(lifecycle.read_text().splitlines(), 1) if "ninety" in text)
    assert f"lifecycle.yaml:{line}: segments.new_within_days" in result.stdout
    assert "identity.yaml:3: invalid YAML" in result.stdout
    assert "SALESFORCE_PASSWORD and SALESFORCE_SECURITY_TOKEN are missing" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


@pytest.mark.parametrize("args", [["--help"], ["db", "--help"], ["config", "--help"]])
def test_help_works(tmp_path: Path, args: list[str]) -> None:
    assert run(*args, cwd=tmp_path).returncode == 0
