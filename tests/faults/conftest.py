"""One rig for the whole fault matrix: the sandbox, the synced and tagged databases, a clean push per CRM."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.faults.rig import Rig, build


@pytest.fixture(scope="session")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    built = build(tmp_path_factory.mktemp("faults"))
    try:
        yield built
    finally:
        built.sandbox.stop()
