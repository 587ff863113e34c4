"""Import rules of the layout (models/README.md): checked on the source, so they cannot rot."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "flexopt"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _files(sub: str = "") -> list[Path]:
    return sorted((PKG / sub).rglob("*.py"))


def test_only_grid_imports_pandapower():
    for f in _files():
        if "pandapower" in {n.split(".")[0] for n in _imports(f)}:
            assert f.parent.name == "grid", f"{f} imports pandapower"


def test_instance_imports_no_solver_and_no_physics():
    for f in _files("instance"):
        roots = {n.split(".")[0] for n in _imports(f)}
        assert not roots & {"pyomo", "pandapower", "highspy"}, f
        assert not {
            n
            for n in _imports(f)
            if n.startswith("flexopt.") and not n.startswith(("flexopt.instance", "flexopt.errors"))
        }, f


def test_only_solve_module_calls_a_solver():
    for f in _files():
        if f.name == "solve.py":
            continue
        text = f.read_text()
        assert "SolverFactory" not in text, f
        assert "contrib.solver" not in text, f


def test_builders_never_solve():
    for f in _files("market"):
        assert "flexopt.solve" not in _imports(f), f


@pytest.mark.parametrize("module", ["flexopt", "flexopt.instance", "flexopt.cli"])
def test_light_imports_do_not_load_pandapower(module):
    code = f"import sys, {module}; print('pandapower' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_optim_depends_on_nothing_of_ours():
    """flexopt.optim is numpy only: no pyomo, no pandapower, nothing of flexopt outside it."""
    for f in _files("optim"):
        names = _imports(f)
        assert not {n.split(".")[0] for n in names} & {"pyomo", "pandapower", "highspy"}, f
        ours = {n for n in names if n.startswith("flexopt") and not n.startswith("flexopt.optim")}
        assert not ours, f"{f} imports {ours}"


def test_optim_imports_standalone():
    code = "import sys, flexopt.optim; print(sorted(m for m in ('pyomo', 'pandapower') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
