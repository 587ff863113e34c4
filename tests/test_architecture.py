"""The layout of models/README.md, checked on the source so that it cannot rot: the import
graph (every import, those inside functions and under ``TYPE_CHECKING`` included) has no
cycle and flows one way through the layers; only ``grid`` imports pandapower; only
``solve.py`` calls a solver; builders never solve; modules stay small; public functions are
annotated; nothing cites a document outside the repository."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "flexopt"

#: The layers of models/README.md, bottom up. A module may import its own component and the
#: components of lower layers only ("flexopt" is the package's own ``__init__``).
LAYERS: list[tuple[str, ...]] = [
    ("errors", "atomic", "dask_client", "optim", "pool_keep", "progress"),
    ("pool_feed",),
    ("pool_start",),
    ("executors",),
    ("instance",),
    ("grid",),
    ("plf",),
    ("market",),
    ("dso",),
    ("solve",),
    ("methods",),
    ("outcome",),
    ("report",),
    ("run",),
    ("generate",),
    ("flexopt",),
    ("cli",),
]
LAYER_OF = {c: i for i, layer in enumerate(LAYERS) for c in layer}
MAX_LINES = 450


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(PKG.rglob("*.py"))}


def _imports(path: Path) -> set[str]:
    """Every module named by an import anywhere in the file (functions, ``TYPE_CHECKING``
    blocks): ``import a.b`` names ``a.b``; ``from a import b`` names ``a`` and ``a.b``."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}: relative import"
            base = node.module or ""
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def _targets(path: Path) -> set[str]:
    """The flexopt modules the file imports: ``from pkg import sub`` is the module ``sub`` when
    ``sub`` is one, otherwise the package ``pkg`` (its ``__init__`` defines the name)."""
    mods = _modules()
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name in mods)
        elif isinstance(node, ast.ImportFrom) and node.module in mods:
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                out.add(sub if sub in mods else node.module)
    return out - {_module_name(path)}


def _graph() -> dict[str, set[str]]:
    return {name: _targets(path) for name, path in _modules().items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            scc = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                scc.append(w)
                if w == v:
                    break
            if len(scc) > 1:
                cycles.append(sorted(scc))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return cycles


def _component(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "flexopt"


def test_every_component_has_a_layer():
    assert {_component(m) for m in _modules()} <= set(LAYER_OF)


def test_import_graph_has_no_cycle():
    cycles = _cycles(_graph())
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_check_can_fail(tmp_path):
    """A lazy import inside a function is an edge; a back-import through one is a cycle."""
    lazy = tmp_path / "b.py"
    lazy.write_text("def f():\n    from flexopt.run.api import run_market\n")
    assert "flexopt.run.api" in _imports(lazy)
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_imports_flow_down_the_layers():
    bad = []
    for module, targets in _graph().items():
        mine = _component(module)
        for t in targets:
            theirs = _component(t)
            if theirs != mine and LAYER_OF[theirs] >= LAYER_OF[mine]:
                bad.append(f"{module} → {t}")
    assert not bad, "imports against the layers of models/README.md:\n" + "\n".join(sorted(bad))


def test_models_readme_lists_the_layers():
    text = (ROOT / "models" / "README.md").read_text()
    flow = " → ".join(", ".join(layer) for layer in LAYERS)
    assert flow in text, f"models/README.md should state the layer order: {flow}"


def test_only_grid_imports_pandapower():
    for name, f in _modules().items():
        if "pandapower" in {n.split(".")[0] for n in _imports(f)}:
            assert _component(name) == "grid", f"{f} imports pandapower"


def test_instance_imports_no_solver_and_no_physics():
    for name, f in _modules().items():
        if _component(name) != "instance":
            continue
        names = _imports(f)
        assert not {n.split(".")[0] for n in names} & {"pyomo", "pandapower", "highspy"}, f
        # errors, and the atomic writer that Instance.save writes through: no solver, no physics
        allowed = ("flexopt.instance", "flexopt.errors", "flexopt.atomic")
        ours = {n for n in names if n.startswith("flexopt.") and not n.startswith(allowed)}
        assert not ours, f


def test_only_solve_module_calls_a_solver():
    for f in _modules().values():
        if f.name == "solve.py":
            continue
        text = f.read_text()
        assert "SolverFactory" not in text, f
        assert "contrib.solver" not in text, f


@pytest.mark.parametrize("component", ["market", "dso"])
def test_builders_never_solve(component):
    """Models are built in ``market/`` and ``dso/`` and solved elsewhere (``run``, ``methods``)."""
    for name, f in _modules().items():
        if _component(name) == component:
            assert not any(n.startswith("flexopt.solve") for n in _imports(f)), f
            assert ".solve(" not in f.read_text(), f


@pytest.mark.parametrize(
    "module", ["flexopt", "flexopt.instance", "flexopt.cli", "flexopt.optim", "flexopt.run.options"]
)
def test_light_imports_do_not_load_pandapower(module):
    code = f"import sys, {module}; print('pandapower' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_optim_depends_on_nothing_of_ours():
    """flexopt.optim: numpy (and numba), no pyomo, no pandapower, nothing of flexopt outside it."""
    for name, f in _modules().items():
        if _component(name) != "optim":
            continue
        names = _imports(f)
        assert not {n.split(".")[0] for n in names} & {"pyomo", "pandapower", "highspy"}, f
        ours = {n for n in names if n.startswith("flexopt") and not n.startswith("flexopt.optim")}
        assert not ours, f"{f} imports {ours}"


def test_optim_imports_standalone():
    code = "import sys, flexopt.optim; print(sorted(m for m in ('pyomo', 'pandapower') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_modules_stay_small():
    big = {
        str(p.relative_to(ROOT)): n
        for p in _modules().values()
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not big, f"modules over {MAX_LINES} lines: {big}"


def _unannotated(path: Path) -> list[str]:
    out = []

    def visit(node: ast.AST, owner: str, public: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                visit(child, child.name, public and not child.name.startswith("_"))
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                name = child.name
                private = name.startswith("_") and not (
                    name.startswith("__") and name.endswith("__")
                )
                if public and not private:
                    args = [*child.args.posonlyargs, *child.args.args, *child.args.kwonlyargs]
                    if owner and args and args[0].arg in ("self", "cls"):
                        args = args[1:]
                    args += [a for a in (child.args.vararg, child.args.kwarg) if a is not None]
                    missing = [a.arg for a in args if a.annotation is None]
                    if missing or child.returns is None:
                        out.append(f"{path.relative_to(ROOT)}:{child.lineno} {owner}.{name}")
                # functions nested in functions are not public API

    visit(ast.parse(path.read_text()), "", True)
    return out


def test_public_functions_are_annotated():
    missing = [m for p in _modules().values() for m in _unannotated(p)]
    assert not missing, "public functions without full annotations:\n" + "\n".join(missing)


def test_nothing_cites_a_document_outside_the_repository():
    """The design lives in models/ and the README; no file points elsewhere."""
    pattern = re.compile(r"\bDESIGN\b|\.\./shared|shared/DESIGN")
    files = [
        *PKG.rglob("*.py"),
        *(ROOT / "models").glob("*.md"),
        *(ROOT / "tests").rglob("*.py"),
        *(ROOT / "benchmarks").glob("*.py"),
        *(ROOT / "benchmarks").glob("*.md"),
        *(ROOT / "instances").glob("*.py"),
        *(ROOT / "instances").glob("*.md"),
        ROOT / "README.md",
    ]
    hits = [
        f"{f.relative_to(ROOT)}:{i}"
        for f in files
        if f != Path(__file__)
        for i, line in enumerate(f.read_text().splitlines(), 1)
        if pattern.search(line)
    ]
    assert not hits, f"references to a document outside the repository: {hits}"
