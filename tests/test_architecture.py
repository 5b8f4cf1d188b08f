"""The package's architecture as its imports show it: each package imports only the layers below it, with no
cycles, and the package list in pyproject.toml names every package folder (so the wheel ships them all)."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "jepa_tui"
GROUND = {"config", "exits", "formatting", "gpu", "provenance", "system", "threads"}  # importable from every layer
# What each layer may import besides the ground floor and itself (README, "Development").
ALLOWED = {
    "config": set(), "exits": set(), "formatting": set(), "gpu": set(), "provenance": set(), "system": set(),
    "threads": set(),
    "data": set(), "model": set(), "runs": set(),
    "evaluation": {"model", "data"},
    "training": {"model", "data", "evaluation", "runs"},
    "reporting": {"runs"},
    "experiments": {"runs"},
    "ui": {"training", "runs"},
    "cli": {"ui", "training", "reporting", "experiments", "evaluation", "runs", "data", "model"},
    "profiles": set(),
}


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, top_level_only: bool = False) -> set[str]:
    """Every ``jepa_tui.*`` module imported by ``path`` (inside functions too, unless ``top_level_only``): relative
    imports resolved, and ``from jepa_tui.pkg import name`` counted as ``jepa_tui.pkg.name`` when that is a module."""
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    package = _module_name(path).split(".")
    if path.name != "__init__.py":
        package = package[:-1]
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("jepa_tui")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from . import x, from ..runs import y
                base = ".".join([*package[:len(package) - node.level + 1], *([base] if base else [])])
            if not base.startswith("jepa_tui"):
                continue
            found.add(base)
            for alias in node.names:
                where = PACKAGE.parent / f"{base}.{alias.name}".replace(".", "/")
                if where.with_suffix(".py").is_file() or where.is_dir():  # a module, not a name in base
                    found.add(f"{base}.{alias.name}")
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None  # None: the package root (its version)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def test_every_package_imports_only_the_layers_below_it():
    wrong = []
    for module, path in _modules().items():
        layer = _layer(module)
        if layer is None:  # the package root holds only the version
            continue
        assert layer in ALLOWED, f"{module}: a new package or module; give it a place in ALLOWED and the README"
        for imported in _imports(path):
            target = _layer(imported)
            if target is None or target == layer or target in GROUND:
                continue
            if target not in ALLOWED[layer]:
                wrong.append(f"{module} imports {imported}")
    assert not wrong, "imports against the architecture:\n" + "\n".join(wrong)


def test_no_import_cycles():
    modules = _modules()
    # imports inside functions count too: a lazy import that closes a loop is still a cycle between the files
    # (the package root is left out: importing any module imports it first, and it only re-exports lazily)
    graph = {m: {i for i in _imports(p) if i in modules and i not in (m, "jepa_tui")} for m, p in modules.items()}
    state: dict[str, int] = {}

    def visit(module: str, trail: list[str]) -> None:
        state[module] = 1
        for nxt in graph[module]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*trail, module, nxt]))
            if nxt not in state:
                visit(nxt, [*trail, module])
        state[module] = 2

    for module in graph:
        if module not in state:
            visit(module, [])


def test_pyproject_lists_every_package_folder():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {_module_name(p) for p in PACKAGE.rglob("__init__.py")} | {"jepa_tui.profiles"}
    assert listed == on_disk


def test_the_dashboard_stays_on_the_training_sessions_surface():
    """The UI drives runs through their sessions (commands in, records out); it never reaches a session's trainer."""
    reached = []
    for path in (PACKAGE / "ui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute) and node.attr == "trainer":
                reached.append(f"{path.name}:{node.lineno}")
    assert not reached, reached
