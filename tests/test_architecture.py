"""The shape of the library (ARCHITECTURE.md): processing stages never reach the stores, and
no runtime module grows past ~400 lines."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "include" / "docsync"
STAGES = ("sources", "parse", "parsers", "ocr", "pii", "pii_recognizers", "chunk", "embed", "validate", "limits", "principals")
STORES = {"docsync.state", "docsync.quarantine", "docsync.index"}
MAX_LINES = 420  # "~400 lines"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def module_file(name: str) -> Path | None:
    base = PACKAGE.parent.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.exists():
            return candidate
    return None


def imports_of(path: Path) -> set[str]:
    """docsync modules imported anywhere in a file (also inside functions; not TYPE_CHECKING-only)."""
    tree = ast.parse(path.read_text())
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # annotation-only imports never run
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("docsync")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("docsync"):
            found.add(node.module)
            found |= {f"{node.module}.{a.name}" for a in node.names if module_file(f"{node.module}.{a.name}")}
    return {name for name in found if module_file(name)}


def reachable(start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo += imports_of(module_file(name))
    return seen


def stage_modules() -> list[str]:
    names = []
    for stage in STAGES:
        target = module_file(f"docsync.{stage}")
        if target is None:
            continue
        files = sorted(target.parent.rglob("*.py")) if target.name == "__init__.py" else [target]
        names += [module_name(f) for f in files]
    return names


@pytest.mark.parametrize("name", stage_modules())
def test_processing_stages_never_reach_the_stores(name):
    reached = reachable(name) & STORES
    assert not reached, f"{name} imports {sorted(reached)} (directly or through another module)"


def test_no_runtime_module_is_over_400_lines():
    too_long = {
        module_name(p): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not too_long, too_long


def test_steps_are_one_module_per_task():
    steps = {p.stem for p in (PACKAGE / "steps").glob("*.py")} - {"__init__"}
    assert steps == {"plan", "updates", "process", "write", "finalize", "reconcile"}
