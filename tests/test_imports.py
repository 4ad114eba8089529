"""No import circles between the layers the design separates (``train.distributed`` / ``cli``,
``result`` / ``report``). The old circles hid in function-level imports, so every import
statement of the lower module is read, at any depth; and the module is imported alone in a
fresh interpreter, which must not load the upper one.

The whole graph of ``evo_nas/``, ``problems/`` and ``operators/`` has no circle either
(:func:`test_the_import_graph_has_no_circle`): an edge per import statement, module-level and
function-level alike (a function-level import is still a dependency, only a later one). Imports
under ``if TYPE_CHECKING:`` are left out: they never run, so they are annotations, not
dependencies (``evo_nas.cell`` names ``evo_nas.space`` that way, which imports ``cell``).
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    ("evo_nas.train.distributed", ["evo_nas.cli", "evo_nas.commands", "evo_nas.pipeline"]),
    ("evo_nas.result", ["evo_nas.report", "evo_nas.cli", "evo_nas.commands"]),
]


def _imports(module: str) -> set[str]:
    """Every module named by an import statement anywhere in ``module``'s source."""
    path = ROOT / (module.replace(".", "/") + ".py")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    return names


GRAPH_PACKAGES = ("evo_nas", "problems", "operators")


def _modules(root: Path, packages: tuple[str, ...]) -> dict[str, tuple[Path, bool]]:
    """``dotted name -> (file, is a package)`` of every module under ``packages``."""
    mods = {}
    for pkg in packages:
        for path in sorted((root / pkg).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            mods[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return mods


def _is_type_checking(test: ast.expr) -> bool:
    return ast.unparse(test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING")


def import_graph(root: Path = ROOT, packages: tuple[str, ...] = GRAPH_PACKAGES
                 ) -> dict[str, dict[str, list[str]]]:
    """``importer -> {imported: ["line N, module-level" | "line N, function-level", ...]}``.

    Every import statement counts, at any depth, except those in the body of an
    ``if TYPE_CHECKING:``. Relative imports are resolved. ``import a.b.c`` and ``from a.b import
    c`` name the deepest module they reach (``a.b.c`` when it is a module, else ``a.b``); the
    packages above it, whose ``__init__`` Python runs first, are the package structure, not an
    edge. Modules outside ``packages`` are left out."""
    mods = _modules(root, packages)

    def known(name: str) -> str | None:
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in mods:
                return ".".join(parts[:i])
        return None

    graph: dict[str, dict[str, list[str]]] = {m: {} for m in mods}
    for mod, (path, is_pkg) in mods.items():
        here = mod if is_pkg else mod.rpartition(".")[0]

        def visit(node: ast.AST, in_function: bool, mod: str = mod, here: str = here) -> None:
            if isinstance(node, ast.If) and _is_type_checking(node.test):
                for child in node.orelse:  # the body never runs
                    visit(child, in_function)
                return
            inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                     ast.Lambda))
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = here.split(".")[: len(here.split(".")) - (node.level - 1)]
                    base = ".".join(up + ([node.module] if node.module else []))
                names = [f"{base}.{a.name}" if known(f"{base}.{a.name}") == f"{base}.{a.name}"
                         else base for a in node.names]
            for target in sorted({known(name) for name in names} - {None, mod}):
                where = f"line {node.lineno}, {'function' if inner else 'module'}-level"
                graph[mod].setdefault(target, []).append(where)
            for child in ast.iter_child_nodes(node):
                visit(child, inner)

        visit(ast.parse(path.read_text(), str(path)), False)
    return graph


def circles(graph: dict[str, dict[str, list[str]]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def describe_circles(graph: dict[str, dict[str, list[str]]]) -> str:
    """One paragraph per circle: its modules, then each edge inside it with where it is."""
    lines = []
    for comp in circles(graph):
        lines.append("import circle: " + " <-> ".join(comp))
        for a in comp:
            for b in sorted(set(graph[a]) & set(comp)):
                lines.append(f"    {a} -> {b} ({'; '.join(graph[a][b])})")
    return "\n".join(lines)


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert len(graph) > 50 and "evo_nas.nn.protocol" in graph["evo_nas.nn.choice"]
    text = describe_circles(graph)
    assert not text, "\n" + text


def test_the_circle_check_sees_function_level_imports_and_names_the_circle(tmp_path):
    """The check itself: a circle closed only inside a function is found and named with its
    edges; the same import under ``if TYPE_CHECKING:`` is not an edge."""
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from pkg.b import g\n")
    (pkg / "b.py").write_text(textwrap.dedent("""\
        def g():
            from . import a
            return a
        """))
    (pkg / "c.py").write_text(textwrap.dedent("""\
        from typing import TYPE_CHECKING
        if TYPE_CHECKING:
            from pkg import d
        """))
    (pkg / "d.py").write_text("import pkg.c\n")
    graph = import_graph(tmp_path, ("pkg",))
    assert graph["pkg.c"] == {} and graph["pkg.d"] == {"pkg.c": ["line 1, module-level"]}
    assert circles(graph) == [["pkg.a", "pkg.b"]]
    text = describe_circles(graph)
    assert "import circle: pkg.a <-> pkg.b" in text
    assert "pkg.b -> pkg.a (line 2, function-level)" in text
    assert "pkg.a -> pkg.b (line 1, module-level)" in text


def test_nn_and_latency_depend_one_way():
    """``evo_nas.latency`` uses ``evo_nas.nn``; nothing in ``evo_nas.nn`` imports
    ``evo_nas.latency`` (the error and the MobileNet part helpers moved down), and the old names
    still work."""
    graph = import_graph()
    up = sorted(f"{a} -> {b}" for a in graph if a.startswith("evo_nas.nn")
                for b in graph[a] if b.startswith("evo_nas.latency"))
    assert not up, up
    import evo_nas.latency as latency
    from evo_nas import errors
    from evo_nas.latency import lut
    from evo_nas.nn import parts

    assert latency.LatencyTableError is lut.LatencyTableError is errors.LatencyTableError
    assert issubclass(errors.LatencyTableError, errors.EvoNasError)
    assert latency.part_keys is parts.part_keys
    assert lut._skeletons is parts.mobilenet_skeletons
    assert lut._part_modules is parts.mobilenet_part_modules


def test_built_in_supernet_kinds_are_registered_by_importing_the_protocol_alone():
    """``evo_nas.nn.protocol`` imports no supernet module (they import it); the package's
    ``__init__``, which runs first, registers the built-in kinds."""
    code = ("from evo_nas.nn.protocol import SUPERNET_KINDS, build_supernet\n"
            "print(sorted(SUPERNET_KINDS), type(build_supernet({'kind': 'nb201', 'C': 4, "
            "'N': 1})).__name__)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["['fewshot',", "'mobilenet',", "'nb201']", "NB201Supernet"]


def _under(name: str, forbidden: list[str]) -> bool:
    return any(name == f or name.startswith(f + ".") for f in forbidden)


@pytest.mark.parametrize(("module", "forbidden"), CASES)
def test_no_import_statement_reaches_up(module, forbidden):
    bad = sorted(n for n in _imports(module) if _under(n, forbidden))
    assert not bad, f"{module} imports {bad}"


@pytest.mark.parametrize(("module", "forbidden"), CASES)
def test_importing_alone_loads_no_upper_module(module, forbidden):
    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in sys.modules if m in {forbidden!r} "
            f"or any(m.startswith(f + '.') for f in {forbidden!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "[]", f"importing {module} loaded {out.stdout.strip()}"


def test_the_torchrun_entry_point_is_a_command_and_the_cli_does_not_import_it():
    """``torchrun -m evo_nas.commands.ddp`` borrows the CLI's parser; the CLI never imports it
    back (it is no sub-command), so that pair has no circle either."""
    assert "evo_nas.cli" in _imports("evo_nas.commands.ddp")
    assert not any(_under(n, ["evo_nas.commands.ddp"]) for n in _imports("evo_nas.cli"))
    from evo_nas.cli import COMMAND_MODULES

    assert "evo_nas.commands.ddp" not in COMMAND_MODULES


def test_result_save_still_plots_and_report_reexports_the_plot(tmp_path):
    """The Pareto plot moved from report to result; report keeps the old name working."""
    from evo_nas import report, result

    assert report.plot_pareto is result.plot_pareto
    rows = [{"eval": 0, "genome": [0], "config": {}, "error": 10.0, "flops": 1.0,
             "feasible": True, "seconds": 0.1, "status": "ok", "fault": None}]
    res = result.SearchResult(["error", "flops"], {"flops": 2.0}, rows, rows)
    written = res.save(tmp_path)
    assert tmp_path / "pareto.png" in written and (tmp_path / "pareto.png").stat().st_size > 0
