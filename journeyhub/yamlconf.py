"""YAML configuration validated by pydantic, with errors that name the file, line and key.

PyYAML's composed node tree knows where every key and value sits; `load_yaml_model` keeps a map from the
key path to its line so a pydantic error at `stages.3.rule.any.0.kind` is reported as
`mappings/lifecycle.yaml:42: stages[3].rule.any[0].kind: Input should be ...`.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

Model = TypeVar("Model", bound=BaseModel)
Location = tuple[str | int, ...]


class ConfigFileError(Exception):
    """A configuration file problem, one line per issue, each with file:line and the key."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__("\n".join(problems))


def read_yaml(path: Path) -> tuple[Any, dict[Location, int]]:
    """The document as plain Python plus a map from key paths to line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigFileError(path, [f"{path}: cannot read: {error.strerror}"]) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark
        line = f":{mark.line + 1}" if mark else ""
        raise ConfigFileError(path, [f"{path}{line}: invalid YAML: {error.problem}"]) from None
    lines: dict[Location, int] = {}
    if node is None:
        return None, lines
    return _to_python(node, (), lines, yaml.SafeLoader("")), lines


def _to_python(node: yaml.Node, location: Location, lines: dict[Location, int], loader: yaml.SafeLoader) -> Any:
    lines.setdefault(location, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = loader.construct_object(key_node, deep=True)
            lines[(*location, key)] = key_node.start_mark.line + 1
            result[key] = _to_python(value_node, (*location, key), lines, loader)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_to_python(item, (*location, index), lines, loader) for index, item in enumerate(node.value)]
    return loader.construct_object(node, deep=True)


def format_location(location: Location) -> str:
    text = ""
    for part in location:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(document)"


def _nearest_line(location: Location, lines: dict[Location, int]) -> int | None:
    for end in range(len(location), -1, -1):
        if location[:end] in lines:
            return lines[location[:end]]
    return None


def _yaml_locations(error_location: Location) -> Iterator[Location]:
    """Pydantic puts union/tagged-union member names into `loc`; drop the ones YAML does not have."""
    yield error_location
    yield tuple(part for part in error_location if isinstance(part, int) or not str(part)[:1].isupper())


def validation_problems(path: Path, error: ValidationError, lines: dict[Location, int]) -> list[str]:
    problems = []
    for item in error.errors(include_url=False):
        location: Location = tuple(item["loc"])
        line = None
        shown = location
        for candidate in _yaml_locations(location):
            line = _nearest_line(candidate, lines)
            if candidate in lines:
                shown = candidate
                break
        line, shown = _named_child(shown, item["msg"], lines) or (line, shown)
        where = f"{path}:{line}" if line else str(path)
        problems.append(f"{where}: {format_location(shown)}: {item['msg']}")
    return problems


def _named_child(location: Location, message: str, lines: dict[Location, int]) -> tuple[int, Location] | None:
    """A validator that complains about a key by name (`… no field(s) 'emial' …`) points at that key."""
    for candidate, line in lines.items():
        if len(candidate) == len(location) + 1 and candidate[:-1] == location and f"'{candidate[-1]}'" in message:
            return line, candidate
    return None


def load_yaml_model(path: Path, model: type[Model], context: dict[str, Any] | None = None) -> Model:
    """Parse and validate one YAML file; raises ConfigFileError listing every problem with its line.
    Without a validation context the result is cached until the file changes: flows load the configuration
    for every task, and parsing YAML costs more than a page of records."""
    if context is not None:
        return _load_yaml_model(path, model, context)
    try:
        stat = path.stat()
    except OSError:
        return _load_yaml_model(path, model, None)
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size, model)
    with _cache_lock:
        cached = _loaded.get(key)
    if cached is None:
        cached = _load_yaml_model(path, model, None)
        with _cache_lock:
            _loaded[key] = cached
    return cached  # type: ignore[return-value]


_loaded: dict[tuple[str, int, int, type[BaseModel]], BaseModel] = {}
_cache_lock = threading.Lock()


def _load_yaml_model(path: Path, model: type[Model], context: dict[str, Any] | None) -> Model:
    data, lines = read_yaml(path)
    try:
        return model.model_validate(data, context=context)
    except ValidationError as error:
        raise ConfigFileError(path, validation_problems(path, error, lines)) from None
