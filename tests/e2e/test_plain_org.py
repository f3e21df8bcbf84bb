"""A standard org, as a new user has one: none of the hub's custom fields, no edition or integration fields, and
history from before install (sandbox `org="plain"`). `journeyhub sync` completes every object on all three CRMs
(exit 0) with one warning per missing optional field, `config check --online` lists the same fields, and the
journey is what a correct hub reads there: it differs from the full org's only where a missing field (or a
record gone before install) carried a signal."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine

from sandbox.runtime import Sandbox
from sandbox.truthcheck import check
from tests.e2e.hub import hub_environment, tag

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)
HUB_ITEMS = "the hub's own write-backs cannot be recognised"
#: (system, object, field) of every optional field the default mappings read that a plain org lacks
MISSING = [*(("hubspot", "contacts", name) for name in ("salesforcecontactid", "salesforceleadid",
                                                        "hs_feedback_last_survey_date", "hs_feedback_last_nps_rating")),
           *(("hubspot", name, "journeyhub_item_id") for name in ("calls", "emails", "meetings", "notes", "tasks")),
           ("salesforce", "Event", "External_Id__c"), ("salesforce", "Task", "External_Id__c"),
           ("salesforce", "Task", "Survey_Score__c"), ("salesforce", "Task", "Review_Rating__c"),
           ("dynamics", "tasks", "new_externalid"), ("dynamics", "tasks", "new_surveyscore")]


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {key: value for key, value in os.environ.items()
             if not key.startswith(("HUBSPOT_", "SALESFORCE_", "DYNAMICS_", "JOURNEYHUB_", "PREFECT_API"))}
    return subprocess.run([sys.executable, "-c", "from cli.app import main; main()", *args], cwd=cwd,
                          env={**clean, **env, "COLUMNS": "300"}, capture_output=True, text=True, timeout=600)


def said(output: str, system: str, object_type: str, field: str) -> int:
    return output.count(f"{system} {object_type}: {field} not in this org")


@pytest.mark.slow
def test_a_plain_org_syncs_every_object_and_says_once_which_fields_it_lacks(engine: Engine, tmp_path: Path) -> None:
    url = engine.url.render_as_string(hide_password=False)
    with Sandbox(people=300, seed=23, anchor=ANCHOR, org="plain", history=True, limits=False) as sandbox:
        env = {**sandbox.env, "JOURNEYHUB_DATABASE_URL": url}
        checked = cli("config", "check", "--online", cwd=tmp_path, env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert all(said(checked.stdout, *missing) == 1 for missing in MISSING), checked.stdout
        assert checked.stdout.count("not in this org") == len(MISSING) and "✗" not in checked.stdout

        synced = cli("sync", cwd=tmp_path, env=env)
        assert synced.returncode == 0, synced.stdout + synced.stderr
        assert "failed" not in synced.stdout and "Traceback" not in synced.stdout + synced.stderr
        assert all(said(synced.stdout, *missing) == 1 for missing in MISSING), synced.stdout
        assert synced.stdout.count("not in this org") == len(MISSING)
        assert synced.stdout.count(HUB_ITEMS) == 6          # HubSpot's five activity types and Dataverse tasks

        again = cli("sync", cwd=tmp_path, env=env)           # the cached describe: the same warnings, once each
        assert again.returncode == 0 and again.stdout.count("not in this org") == len(MISSING), again.stdout

        with hub_environment(sandbox.env, url) as settings:
            tag(settings, ANCHOR)
        truth = sandbox.truth
        report = check(engine, truth, limit=40)
    assert report.perfect, report.problems
    assert truth["org"] == "plain" and report.persons == len(truth["persons"])
    differs = [person for person in truth["persons"] if "full_org" in person]
    assert differs and all(person.get("unreadable") for person in differs), \
        "the journey differs from the full org's only where a signal could not be read"
