"""The house's one direction, read from the code's own imports (every `import`, lazy ones included).

Entry points (`cli/`, `flows/`) → the hub's core (`journeyhub/`) → `connectors/` and `canonical/`. Nothing
below imports anything above it, the product never imports the sandbox (a separate distribution), and no
modules import each other in a circle (names imported under `if TYPE_CHECKING:` only serve type hints and
are not imports at run time).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ("canonical", "connectors", "journeyhub", "flows", "cli")
#: what each top-level package may import of the project (besides itself)
ALLOWED = {
    "canonical": set(),
    "connectors": {"canonical"},
    "journeyhub": {"canonical", "connectors", "mappings"},
    "flows": {"journeyhub", "canonical", "connectors"},
    "cli": {"flows", "journeyhub", "canonical", "connectors", "sandbox"},
    "sandbox": set(),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    found = {}
    for package in (*PRODUCT, "sandbox"):
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[module_name(path)] = path
    return found


def runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (names for type hints, never imported at run time)."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and isinstance(child.test, ast.Name) and child.test.id == "TYPE_CHECKING":
                pending += child.orelse
                continue
            pending.append(child)
    return nodes


def imports(path: Path, name: str, known: dict[str, Path]) -> set[str]:
    """The project modules `path` imports at run time (a `from package import module` counts as the module)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in runtime_nodes(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # a relative import: up `level - 1` packages from this one
                parents = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parents + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(path, name, known) for name, path in known.items()}


def test_every_package_imports_only_the_layers_below_it() -> None:
    wrong = []
    for name, targets in graph().items():
        top = name.split(".")[0]
        for target in targets:
            other = target.split(".")[0]
            if other != top and other not in ALLOWED[top]:
                wrong.append(f"{name} imports {target}")
    assert not wrong, "imports against the direction of the house:\n" + "\n".join(sorted(wrong))


def test_no_modules_import_each_other_in_a_circle() -> None:
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                item = stack.pop()
                component.append(item)
                if item == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    assert not circles, "modules importing each other in a circle:\n" + "\n".join(" ↔ ".join(c) for c in circles)


def test_the_hub_distribution_does_not_ship_the_sandbox() -> None:
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    include = next(line for line in text.splitlines() if line.startswith("include = ["))
    assert "sandbox" not in include.split("#")[0]
    assert (ROOT / "sandbox" / "pyproject.toml").exists(), "the sandbox is its own distribution"


def test_the_wheel_production_workers_install_holds_the_hub_and_no_emulator(tmp_path: Path) -> None:
    """`pip install .` (what a worker installs) ships the hub's packages and mappings, not the sandbox."""
    import subprocess
    import sys
    import zipfile

    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w",
                    str(tmp_path), str(ROOT)], check=True, capture_output=True, timeout=300)
    wheel = next(tmp_path.glob("journeyhub-*.whl"))
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist() if "/" in name}
    assert {"canonical", "connectors", "journeyhub", "flows", "cli", "mappings"} <= tops
    assert "sandbox" not in tops and "tests" not in tops and "bench" not in tops, sorted(tops)
    names = zipfile.ZipFile(wheel).namelist()
    assert "mappings/hubspot/contacts.yaml" in names and "canonical/migrations/env.py" in names
