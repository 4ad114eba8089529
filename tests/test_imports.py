"""No import circles between the layers the design separates (``train.distributed`` / ``cli``,
``result`` / ``report``). The old circles hid in function-level imports, so every import
statement of the lower module is read, at any depth; and the module is imported alone in a
fresh interpreter, which must not load the upper one."""

from __future__ import annotations

import ast
import subprocess
import sys
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
