"""The repository stands alone: nothing tracked refers outside the checkout, and a copy of the tracked files
alone — in a temporary folder, next to nothing else — collects exactly the tests this checkout collects.
(Under CI=true, tests/conftest.py fails the run when any test skips, so "collects" also means "runs".)"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# the reference folder of the machine this was built on, spelt in parts so that this line does not name it
OUTSIDE = ["../" + "shared", "/" + "work/", "crm" + "-apis"]


def tracked_files() -> list[str]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True)
    return [name for name in listing.stdout.decode().split("\0") if name and (ROOT / name).is_file()]


def test_no_tracked_file_refers_outside_the_checkout() -> None:
    here = Path(__file__).relative_to(ROOT).as_posix()
    found = []
    for name in tracked_files():
        if name == here:
            continue
        try:
            content = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        found += [f"{name}: {needle}" for needle in OUTSIDE if needle in content]
    assert found == []


def collecting(folder: Path) -> subprocess.Popen[str]:
    """`pytest --collect-only` started in `folder` (the two collections run at once: each takes a while)."""
    env = {key: value for key, value in os.environ.items() if key not in {"PYTHONPATH", "PYTEST_ADDOPTS"}}
    return subprocess.Popen([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
                            cwd=folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collected(run: subprocess.Popen[str]) -> list[str]:
    stdout, stderr = run.communicate(timeout=600)
    assert run.returncode == 0, stdout[-3000:] + stderr[-3000:]
    return sorted(line for line in stdout.splitlines() if "::" in line)


@pytest.mark.slow
def test_a_copy_of_the_tracked_files_alone_collects_the_same_tests(tmp_path: Path) -> None:
    copy = tmp_path / "journeyhub"
    for name in tracked_files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    in_copy, here = collecting(copy), collecting(ROOT)
    in_copy_items = collected(in_copy)
    assert in_copy_items == collected(here) and len(in_copy_items) > 700
