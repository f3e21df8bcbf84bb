"""Finding and validating the configuration-as-data under `mappings/`.

The packaged `mappings/` folder is the default; `JOURNEYHUB_MAPPINGS_DIR` points at a company's own copy.
Every YAML file is validated by the pydantic model that owns it, and problems come back as one line each
with file, line and key.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from journeyhub.ingest.spec import MappingSpec
from journeyhub.settings import SYSTEMS, Settings
from journeyhub.yamlconf import ConfigFileError, load_yaml_model


def mappings_root(settings: Settings | None = None) -> Path:
    if settings is not None and settings.mappings_dir is not None:
        return settings.mappings_dir
    return Path(str(resources.files("mappings")))


def _top_level_models() -> dict[str, type[BaseModel]]:
    """The non-mapping files and their models (imported lazily: they belong to later layers)."""
    from journeyhub.journey.identity_config import IdentityConfig
    from journeyhub.journey.lifecycle_config import LifecycleConfig
    from journeyhub.writeback.config import WritebackConfig

    return {"identity.yaml": IdentityConfig, "lifecycle.yaml": LifecycleConfig, "writeback.yaml": WritebackConfig}


def load_mappings(root: Path, system: str) -> dict[str, MappingSpec]:
    """`{object type: spec}` for one CRM; raises ConfigFileError naming every bad file and key."""
    specs: dict[str, MappingSpec] = {}
    problems: list[str] = []
    seen: dict[str, Path] = {}
    folder = root / system
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            spec = load_yaml_model(path, MappingSpec)
        except ConfigFileError as error:
            problems += error.problems
            continue
        if spec.object in seen:
            problems.append(f"{path}: object {spec.object!r} is already mapped by {seen[spec.object]}")
            continue
        seen[spec.object] = path
        specs[spec.object] = spec
    if problems:
        raise ConfigFileError(folder, problems)
    return specs


def load_config_file(root: Path, name: str) -> Any:
    """One of the top-level configuration files (`identity.yaml`, `lifecycle.yaml`, `writeback.yaml`)."""
    return load_yaml_model(root / name, _top_level_models()[name])


def check_all(root: Path, describe: Callable[[str], list[str]] | None = None) -> tuple[list[str], list[str]]:
    """Validates every YAML file under `root`: (files checked, problems)."""
    checked: list[str] = []
    problems: list[str] = []
    if not root.is_dir():
        return checked, [f"{root}: the mappings folder does not exist (JOURNEYHUB_MAPPINGS_DIR?)"]
    for system in SYSTEMS:
        files = sorted((root / system).glob("*.yaml"))
        checked += [str(path) for path in files]
        try:
            load_mappings(root, system)
        except ConfigFileError as error:
            problems += error.problems
    for name in _top_level_models():
        path = root / name
        checked.append(str(path))
        if not path.exists():
            problems.append(f"{path}: missing (copy it from the packaged mappings/ folder)")
            continue
        try:
            load_config_file(root, name)
        except ConfigFileError as error:
            problems += error.problems
    stray = [path for path in root.rglob("*.yml")]
    problems += [f"{path}: use the .yaml extension (this file is ignored)" for path in stray]
    return checked, problems
