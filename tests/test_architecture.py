"""Who may import whom: the floors of lib/timeblind, read from the code's own import statements
(every import, also those inside functions)."""

import ast
import json
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "lib" / "timeblind"


def module_name(path: Path) -> str:
    parts = path.relative_to(LIB.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}  # `from pkg import module`
    return found


MODULES = {module_name(p): p for p in LIB.rglob("*.py")}
GRAPH = {name: {m for m in imports_of(path.read_text()) if m in MODULES and m != name}
         for name, path in MODULES.items()}


def part(module: str) -> str:
    """timeblind.<part>.<file>: its folder, or the top-level file."""
    return module.split(".")[1] if module.count(".") >= 1 else module


def imported_parts(module: str) -> set[str]:
    return {part(m) for m in GRAPH[module] if m != "timeblind"}


def test_the_lib_has_no_import_circle():
    state, circles = {}, []

    def visit(node, path):
        state[node] = "open"
        for nxt in sorted(GRAPH[node]):
            if state.get(nxt) == "open":
                circles.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(GRAPH):
        if node not in state:
            visit(node, [node])
    assert not circles, circles


# part -> the parts it may import (besides itself); each list is a floor below the part
ALLOWED = {
    "core": set(),
    "stimuli": {"core"},
    "io": {"core"},
    "data": {"core", "stimuli"},
    "models": {"core"},
    "training": {"core", "data", "models"},
    "analysis": {"core", "data", "io", "stimuli"},
    "evaluation": {"core", "data", "io", "models"},
    "plots": {"core", "data", "io", "models", "stimuli"},
    "plan": {"core", "data", "models", "stimuli", "training"},
    "tracking": {"core"},
}


@pytest.mark.parametrize("name", sorted(ALLOWED))
def test_each_part_imports_only_the_floors_below_it(name):
    for module in (m for m in GRAPH if part(m) == name):
        extra = imported_parts(module) - ALLOWED[name] - {name}
        assert not extra, f"{module} imports {sorted(extra)}"


def test_tracking_is_imported_by_the_steps_alone():
    importers = {m for m, deps in GRAPH.items() if "timeblind.tracking" in deps}
    assert importers and all(m.startswith("timeblind.steps.") for m in importers), importers


def test_evaluation_writes_no_data_sets_and_logs_nothing():
    for module in (m for m in GRAPH if part(m) == "evaluation"):
        source = MODULES[module].read_text()
        assert "mlflow" not in source and "write_dataset" not in source, module


def test_notebooks_import_the_steps_alone():
    for path in sorted((REPO / "notebooks").glob("[0-9]*.ipynb")) + [REPO / "notebooks" / "compare_runs.ipynb"]:
        cells = json.loads(path.read_text())["cells"]
        code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
        used = {m for m in imports_of(code) if m.startswith("timeblind")}
        assert used and all(m == "timeblind.steps" or m.startswith("timeblind.steps.") for m in used), (path.name, used)


def test_the_workflow_imports_the_plan_and_the_layout_alone():
    lines = [line.strip() for path in [REPO / "Snakefile", *(REPO / "workflow" / "rules").glob("*.smk")]
             for line in path.read_text().splitlines() if re.match(r"\s*(from|import) timeblind", line)]
    used = {m for line in lines for m in imports_of(line) if m in MODULES} - {"timeblind.core", "timeblind.plan"}
    assert used and all(m == "timeblind.core.layout" or m.startswith("timeblind.plan") for m in used), used
