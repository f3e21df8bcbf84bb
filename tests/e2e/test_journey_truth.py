"""The whole pipeline against the generated world's ground truth: every person one customer, in the
expected stage (entered at the expected time) and segment — and a second run changes nothing."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from journeyhub.config import mappings_root
from sandbox.runtime import Sandbox
from sandbox.truthcheck import check
from tests.e2e.hub import engine_of, hub_environment, pull, scalar, tag

ANCHOR = datetime(2026, 11, 1, tzinfo=UTC)


def history(engine: Engine) -> list[tuple[object, ...]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text(
            "SELECT customer_id, stage, entered_at, exited_at, rule_id, evidence_id, computed_at FROM stage_history "
            "ORDER BY customer_id, entered_at"))]


@pytest.mark.parametrize(("database", "people"), [("sqlite", 1200), pytest.param("postgresql", 300,
                                                                                   marks=pytest.mark.postgres)])
def test_every_person_is_one_customer_in_the_expected_stage_and_segment(
        request: pytest.FixtureRequest, tmp_path: Path, database: str, people: int) -> None:
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    if database == "postgresql":
        engine = request.getfixturevalue("engine_pg_clean")
        url = engine.url.render_as_string(hide_password=False)
    else:
        from canonical.db import make_engine
        from canonical.schema import upgrade

        upgrade(make_engine(url))
    with Sandbox(people=people, seed=23, anchor=ANCHOR) as sandbox, hub_environment(sandbox.env, url) as settings:
        first = pull(settings)
        # nothing failed; objects holding the world's deliberately bad records end partial (the truth check counts them)
        assert not any(item.status == "failed" for sync in first for item in sync.objects), [s.error for s in first]
        summary = tag(settings, ANCHOR)
        report = check(engine_of(settings), sandbox.truth)
        assert report.problems == [] and report.perfect, report.problems
        assert summary.customers == people
        before = history(engine_of(settings))

        again = pull(settings)  # nothing changed in the CRMs
        totals = [sync.totals() for sync in again]
        assert sum(t.inserted + t.updated + t.deleted for t in totals) == 0
        second = tag(settings, ANCHOR)
        assert (second.full, second.evaluated, second.history_changed, second.merges) == (False, 0, 0, 0)
        assert history(engine_of(settings)) == before, "same data, same history (rows untouched)"


def test_changing_the_rules_bumps_the_version_and_re_evaluates_everyone(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(mappings_root(), mappings)
    url = f"sqlite:///{tmp_path / 'hub.db'}"
    from canonical.db import make_engine
    from canonical.schema import upgrade

    upgrade(make_engine(url))
    with Sandbox(people=200, seed=5, anchor=ANCHOR) as sandbox, \
            hub_environment(sandbox.env, url, mappings) as settings:
        pull(settings)
        tag(settings, ANCHOR)
        engine = engine_of(settings)
        advocates = scalar(engine, "SELECT COUNT(*) FROM customer_360 WHERE lifecycle_stage = 'advocate'")
        rules = mappings / "lifecycle.yaml"
        rules.write_text(rules.read_text().replace('version: "2026.11-1"', 'version: "2026.11-2"').replace(
            "any: [second_won_deal, promoter_score, referral, positive_review]", "any: [second_won_deal]"))
    with hub_environment(sandbox.env, url, mappings) as settings:
        summary = tag(settings, ANCHOR)
        assert summary.full and summary.evaluated == summary.customers
        engine = engine_of(settings)
        assert scalar(engine, "SELECT COUNT(DISTINCT ruleset_version) FROM stage_history") == 1
        assert scalar(engine, "SELECT MIN(rule) FROM lifecycle_history").endswith("@2026.11-2")
        assert scalar(engine, "SELECT COUNT(*) FROM customer_360 WHERE lifecycle_stage = 'advocate'") < advocates
