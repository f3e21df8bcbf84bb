"""The garbage collector's policy is a process's own: entry points set it once, library code never touches it."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("journeyhub", "canonical", "connectors")
WORKER_ENTRY = ("journeyhub/ingest/pipeline.py", {"_start_worker", "prepare_job"})  # the mapping worker's own


def run(code: str) -> str:
    """`code` in a fresh interpreter (this one's collector stays as it is); its last printed line."""
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def test_tune_gc_freezes_the_start_up_heap_and_spaces_young_collections_once() -> None:
    assert run("import gc; from flows.process import tune_gc\n"
               "before = gc.get_freeze_count(); tune_gc()\n"
               "frozen, threshold = gc.get_freeze_count(), gc.get_threshold(); tune_gc()\n"
               "print(before == 0 < frozen == gc.get_freeze_count(), threshold[0], gc.isenabled())"
               ) == "True 50000 True"


def test_the_cli_sets_its_process_policy_before_running_a_command() -> None:
    assert run("import gc, sys; from cli.app import main\nsys.argv = ['journeyhub', '--help']\n"
               "try:\n    main()\nexcept SystemExit:\n    pass\n"
               "print(gc.get_freeze_count() > 0, gc.get_threshold()[0])") == "True 50000"


def test_every_flow_a_deployment_runs_sets_its_process_policy_first() -> None:
    deployments = yaml.safe_load((ROOT / "prefect.yaml").read_text(encoding="utf-8"))["deployments"]
    for deployment in deployments:
        module, name = deployment["entrypoint"].split(":")  # `flows.hub:hub` (a module of the installed package)
        tree = ast.parse((ROOT / f"{module.replace('.', '/')}.py").read_text(encoding="utf-8"))
        flow = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name)
        body = flow.body[1:] if isinstance(flow.body[0], ast.Expr) and isinstance(flow.body[0].value, ast.Constant) \
            else flow.body
        assert ast.unparse(body[0]) == "tune_gc()", f"{deployment['entrypoint']} does not start with tune_gc()"


def test_library_code_leaves_the_collector_to_the_entry_points() -> None:
    """Only the mapping worker, a process the hub starts for itself, sets a policy, in its own entry."""
    offenders = []
    for package in LIBRARY:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            allowed = WORKER_ENTRY[1] if relative == WORKER_ENTRY[0] else set()
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                imports_gc = isinstance(node, ast.Import | ast.ImportFrom) and any(a.name == "gc" for a in node.names)
                if imports_gc and not allowed:
                    offenders.append(f"{relative}:{node.lineno}: imports gc")
                if isinstance(node, ast.FunctionDef):
                    uses = [use for use in ast.walk(node) if isinstance(use, ast.Attribute)
                            and isinstance(use.value, ast.Name) and use.value.id == "gc"]
                    if uses and node.name not in allowed:
                        offenders.append(f"{relative}:{uses[0].lineno}: gc in {node.name}")
    assert offenders == []
