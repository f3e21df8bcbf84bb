"""prefect.yaml, read by Prefect's own deployment machinery: every entrypoint loads, every parameter set
validates against its flow's signature, every schedule parses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prefect.cli.deploy._config import _load_deploy_configs_and_actions
from prefect.cli.deploy._models import PrefectYamlModel
from prefect.cli.deploy._schedules import _schedule_config_to_deployment_schedule
from prefect.flows import load_flow_from_entrypoint
from rich.console import Console

ROOT = Path(__file__).resolve().parents[2]
PREFECT_YAML = ROOT / "prefect.yaml"
DEPLOYMENTS, ACTIONS = _load_deploy_configs_and_actions(PREFECT_YAML, console=Console(stderr=True))


def test_prefect_yaml_validates_strictly_with_prefects_model() -> None:
    model = PrefectYamlModel.model_validate(yaml.safe_load(PREFECT_YAML.read_text()))
    assert {deployment.name for deployment in model.deployments} == {
        "hub-incremental", "nightly-reconciliation", "tag-only", "push-only", "sync-one-crm"}
    assert len(DEPLOYMENTS) == len(model.deployments), "Prefect's loader skipped deployments it could not read"
    # workers run the installed package: module entrypoints, and no pull step that needs a checkout on the host
    assert ACTIONS["pull"] == [], "a pull step would tie every worker to a checkout at a fixed path"
    assert all(".py" not in deployment["entrypoint"] for deployment in DEPLOYMENTS)


@pytest.mark.parametrize("deployment", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_loads_and_parameters_validate(deployment: dict, monkeypatch: pytest.MonkeyPatch,
                                                  tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # a worker's flow-run process starts anywhere: the entrypoint is the package's
    flow = load_flow_from_entrypoint(deployment["entrypoint"])
    given = deployment.get("parameters") or {}
    validated = flow.validate_parameters(given)
    assert {name: validated[name] for name in given} == given
    assert deployment["work_pool"]["name"] == "journeyhub"
    assert deployment.get("description"), "IT reads what a deployment does and its parameters in the UI"
    for schedule in deployment.get("schedules") or []:
        assert _schedule_config_to_deployment_schedule(schedule)["schedule"] is not None


def test_scheduled_deployments_never_overlap_themselves() -> None:
    for deployment in DEPLOYMENTS:
        if deployment.get("schedules"):
            assert deployment.get("concurrency_limit") == 1, deployment["name"]


def test_bad_parameters_are_rejected() -> None:
    from prefect.exceptions import ParameterTypeError

    flow = load_flow_from_entrypoint("flows.sync:sync_crm")
    with pytest.raises(ParameterTypeError):
        flow.validate_parameters({"system": "zoho"})
