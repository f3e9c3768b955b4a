"""The layers run one way: record/ and board/ need no torch, transformers or lm-eval; nothing imports the CLI;
no module imports one that imports it back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "sinkbench"
HEAVY = ("torch", "transformers", "lm_eval", "accelerate")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(path: Path, top_level_only: bool) -> set[str]:
    """Modules a file imports (all of them, or only those at module level)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


MODULES = _modules()


@pytest.mark.parametrize("layer", ["sinkbench.record", "sinkbench.board", "sinkbench.grid"])
def test_torch_free_layers_import_nothing_heavy(layer):
    for name, path in MODULES.items():
        if name.startswith(layer):
            heavy = sorted(n for n in _imports(path, top_level_only=False) if n.split(".")[0] in HEAVY)
            assert not heavy, f"{name} imports {heavy}"


def test_nothing_imports_the_cli():
    for name, path in MODULES.items():
        if name != "sinkbench.cli":
            assert "sinkbench.cli" not in _imports(path, top_level_only=False), name


def test_no_import_cycles():
    """Module-level imports between sinkbench's modules form no cycle (a lazy import inside a function
    is allowed only where the module says why, and is not part of this graph)."""
    graph = {}
    for name, path in MODULES.items():
        imported = _imports(path, top_level_only=True)
        graph[name] = {m for m in MODULES if m != name and (m in imported or any(i.startswith(m + ".") for i in imported))
                       and not name.startswith(m + ".")}  # a package's own __init__ is not a dependency cycle
    state: dict[str, int] = {}

    def visit(node, trail):
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [module])


@pytest.mark.subprocess
def test_reading_and_checking_records_loads_no_torch():
    """At run time too: validate, the board and the CLI's help import neither torch nor transformers."""
    code = ("import sys\nimport sinkbench.record.validate, sinkbench.record.compare, sinkbench.board.build, sinkbench.cli\n"
            "heavy = [m for m in ('torch', 'transformers') if m in sys.modules]\nassert not heavy, heavy\nprint('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
