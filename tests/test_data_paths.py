"""The data files evo-nas does not ship come from an argument or an environment variable, never
from a path guessed outside the repository (``evo_nas.data_paths``): the library, the example and
every benchmark that reads the NB201 table or the CIFAR-10 subset; a missing one is one line
naming the argument and the variables."""

from __future__ import annotations

import ast
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest
from nb201_slice import SLICE, SUB

from evo_nas import data_paths as dp
from evo_nas.errors import DataError
from problems.tabular import default_nb201_path, load_nb201, nb201_space

ROOT = Path(__file__).resolve().parents[1]
ENV_VARS = ("EVO_NAS_NB201_CSV", "EVO_NAS_CIFAR_NPZ", "EVO_NAS_DATA")


@pytest.fixture
def no_env(monkeypatch):
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)


def test_the_variable_names():
    assert (dp.NB201_ENV, dp.CIFAR_ENV, dp.DATA_ENV) == ENV_VARS


def test_without_argument_or_variable_nothing_is_guessed(no_env):
    """Even where ``../shared/data`` sits beside the checkout, the library does not look there."""
    assert default_nb201_path() is None and dp.shared_data_dir() is None
    with pytest.raises(DataError) as e:
        load_nb201()
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith("path: no NAS-Bench-201 table given; pass load_nb201(path=...)")
    assert "$EVO_NAS_NB201_CSV" in msg and "$EVO_NAS_DATA" in msg


def test_a_missing_path_names_where_it_came_from(tmp_path, monkeypatch, no_env):
    with pytest.raises(DataError, match=r"^path = '.*gone.csv': NAS-Bench-201 table not found; "
                                        r"pass load_nb201\(path=\.\.\.\).*\$EVO_NAS_NB201_CSV"):
        load_nb201(tmp_path / "gone.csv")
    monkeypatch.setenv("EVO_NAS_NB201_CSV", str(tmp_path / "gone.csv"))
    with pytest.raises(DataError, match=r"^\$EVO_NAS_NB201_CSV = '.*gone.csv': NAS-Bench-201"):
        load_nb201()
    monkeypatch.delenv("EVO_NAS_NB201_CSV")
    monkeypatch.setenv("EVO_NAS_DATA", str(tmp_path))
    with pytest.raises(DataError, match=r"^\$EVO_NAS_DATA/nb201 = '.*nb201': NAS-Bench-201 "
                                        "table not found"):
        load_nb201()
    (tmp_path / "nb201").mkdir()  # the folder, without the table in it
    with pytest.raises(DataError, match=r"^\$EVO_NAS_DATA/nb201 = '.*nb201' \(no nb201_cifar10"
                                        r"\.csv in it\)"):
        load_nb201()


def test_the_table_comes_from_either_variable(tmp_path, monkeypatch, no_env):
    space = nb201_space(SUB)
    want = load_nb201(SLICE, space=space).genomes
    monkeypatch.setenv("EVO_NAS_NB201_CSV", str(SLICE))
    assert default_nb201_path() == SLICE
    assert (load_nb201(space=space).genomes == want).all()
    monkeypatch.delenv("EVO_NAS_NB201_CSV")
    (tmp_path / "nb201").mkdir()
    shutil.copyfile(SLICE, tmp_path / "nb201" / "nb201_cifar10.csv")
    monkeypatch.setenv("EVO_NAS_DATA", str(tmp_path))
    assert default_nb201_path() == tmp_path / "nb201" / "nb201_cifar10.csv"
    assert (load_nb201(space=space).genomes == want).all()
    # the specific variable wins over the folder one; a folder works as well as the file
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(SLICE, other / "nb201_cifar10.csv")
    monkeypatch.setenv("EVO_NAS_NB201_CSV", str(other))
    assert default_nb201_path() == other / "nb201_cifar10.csv"
    assert dp.resolve_nb201_path() == other / "nb201_cifar10.csv"
    # an argument wins over both
    assert dp.resolve_nb201_path(SLICE) == SLICE


def _module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("name", ["bench_operators", "bench_predictor", "bench_search"])
def test_benchmarks_take_data_from_the_flag_or_the_variables(name, tmp_path, monkeypatch,
                                                             no_env):
    """``--data`` defaults to the variables; neither, or a missing file, exits with one line
    naming the flag and both variables, before any work."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    bench = _module(ROOT / "benchmarks" / f"{name}.py", name)
    with pytest.raises(SystemExit) as e:
        bench.main(["--quick", "--out", str(tmp_path)])
    msg = str(e.value.code)
    assert "\n" not in msg
    assert msg.startswith(f"{name}: --data: no NAS-Bench-201 table given; pass --data PATH")
    assert "$EVO_NAS_NB201_CSV" in msg and "$EVO_NAS_DATA" in msg
    monkeypatch.setenv("EVO_NAS_DATA", str(tmp_path))
    with pytest.raises(SystemExit) as e:
        bench.main(["--quick", "--out", str(tmp_path)])
    assert str(e.value.code).startswith(f"{name}: $EVO_NAS_DATA/nb201 = "
                                        f"{str(tmp_path / 'nb201')!r}")
    with pytest.raises(SystemExit) as e:
        bench.main(["--quick", "--data", str(tmp_path / "gone.csv"), "--out", str(tmp_path)])
    assert str(e.value.code).startswith(f"{name}: --data = {str(tmp_path / 'gone.csv')!r}")
    assert not list(tmp_path.glob("*.json"))


def test_the_parallel_benchmark_takes_its_data_the_same_way(tmp_path, monkeypatch, no_env):
    bench = _module(ROOT / "benchmarks" / "bench_parallel.py", "bench_parallel")
    monkeypatch.setattr(sys, "argv", ["bench_parallel.py", "--quick",
                                      "--out", str(tmp_path / "p.json")])
    with pytest.raises(SystemExit) as e:
        bench.main()
    msg = str(e.value.code)
    assert "\n" not in msg
    assert msg.startswith("bench_parallel: --data: no CIFAR-10 subset given; pass --data PATH")
    assert "$EVO_NAS_CIFAR_NPZ" in msg and "$EVO_NAS_DATA" in msg
    assert not (tmp_path / "p.json").exists()


def _strings_outside_docstrings(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    docs = {id(n.body[0].value) for n in ast.walk(tree)
            if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
            and n.body and isinstance(n.body[0], ast.Expr)
            and isinstance(n.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def test_no_code_builds_a_path_to_the_shared_folder_beside_the_checkout():
    """Only tests/data_paths.py may look at ``../shared/data`` (the tests' fallback)."""
    bad = []
    for folder in ("evo_nas", "problems", "operators", "benchmarks", "examples"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for line, value in _strings_outside_docstrings(path):
                if value == "shared" or "shared/data" in value:
                    bad.append(f"{path.relative_to(ROOT)}:{line}: {value!r}")
    assert not bad, bad
