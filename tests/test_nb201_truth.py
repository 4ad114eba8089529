"""``evo-nas fidelity --truth nb201``: the NB201 ground-truth study from the command line.

Bad input fails in a second with one line naming the field and the value (exit 2), before any
training; ``--quick`` runs the real study end to end on the shared CIFAR-10 subset and NB201
table when they are there (found by tests/data_paths.py: the env vars, else ``../shared/data``
beside the checkout; a fresh clone may lack both: then it is skipped). The command itself never
guesses a path: without ``--nb201`` / ``--cifar`` / ``--data-dir`` or the env vars it stops."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from data_paths import CIFAR_NPZ, NB201_CSV

from evo_nas.cli import main

ROOT = Path(__file__).resolve().parents[1]


def one_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    return lines[0]


def run(capsys, *argv) -> tuple[int, str]:
    code = main(["fidelity", *map(str, argv)])
    return code, capsys.readouterr().err


@pytest.fixture
def no_env(monkeypatch):
    """No data env var set, so the flags under test decide the paths."""
    monkeypatch.delenv("EVO_NAS_NB201_CSV", raising=False)
    monkeypatch.delenv("EVO_NAS_CIFAR_NPZ", raising=False)
    monkeypatch.delenv("EVO_NAS_DATA", raising=False)


@pytest.fixture
def no_work(monkeypatch):
    """Any attempt to load data or train fails loudly: errors must come first."""
    monkeypatch.setattr("evo_nas.nb201_fidelity.run_study", lambda *a, **k: 1 / 0)
    monkeypatch.setattr("evo_nas.nb201_fidelity.NB201Truth", lambda *a, **k: 1 / 0)


def test_missing_nb201_folder_names_the_path_and_the_env_var(tmp_path, capsys, no_env, no_work):
    missing = tmp_path / "nowhere" / "nb201"
    out = tmp_path / "r.json"
    code, err = run(capsys, "--truth", "nb201", "--nb201", missing, "--out", out)
    assert code == 2
    line = one_line(err)
    assert line.startswith("evo-nas: error: --nb201 = ")
    assert repr(str(missing)) in line and "$EVO_NAS_NB201_CSV" in line
    assert not out.exists()


def test_folder_without_the_file_says_which_file(tmp_path, capsys, no_env, no_work):
    code, err = run(capsys, "--truth", "nb201", "--nb201", tmp_path, "--out", tmp_path / "r.json")
    assert code == 2
    line = one_line(err)
    assert repr(str(tmp_path)) in line and "no nb201_cifar10.csv in it" in line


def test_missing_cifar_folder_names_the_path_and_the_env_var(tmp_path, capsys, no_env, no_work):
    (tmp_path / "nb201_cifar10.csv").write_text("op0\n0\n")  # found; never read before the npz
    missing = tmp_path / "cifar10-subset"
    code, err = run(capsys, "--truth", "nb201", "--nb201", tmp_path, "--cifar", missing,
                    "--out", tmp_path / "r.json")
    assert code == 2
    line = one_line(err)
    assert line.startswith("evo-nas: error: --cifar = ")
    assert repr(str(missing)) in line and "$EVO_NAS_CIFAR_NPZ" in line


def test_env_var_and_data_dir_are_named_as_the_source(tmp_path, capsys, monkeypatch, no_work):
    bad = tmp_path / "table.csv"
    monkeypatch.setenv("EVO_NAS_NB201_CSV", str(bad))
    code, err = run(capsys, "--truth", "nb201", "--out", tmp_path / "r.json")
    assert code == 2
    assert one_line(err).startswith(f"evo-nas: error: $EVO_NAS_NB201_CSV = {str(bad)!r}")
    # --data-dir (the folder holding nb201/ and cifar10-subset/) wins over the env var
    code, err = run(capsys, "--truth", "nb201", "--data-dir", tmp_path, "--out",
                    tmp_path / "r.json")
    assert code == 2
    assert one_line(err).startswith(
        f"evo-nas: error: --data-dir = {str(tmp_path / 'nb201')!r}")


def test_no_path_and_no_env_var_is_one_line_naming_flags_and_variables(tmp_path, capsys,
                                                                         no_env, no_work):
    """Nothing outside the repository is guessed: without a flag or a variable the command stops
    (even where ``../shared/data`` sits beside the checkout), naming what to pass or set."""
    code, err = run(capsys, "--truth", "nb201", "--quick", "--out", tmp_path / "r.json")
    assert code == 2
    line = one_line(err)
    assert line.startswith("evo-nas: error: --nb201: no NB201 table given; pass --nb201 PATH")
    for name in ("--data-dir DIR", "$EVO_NAS_NB201_CSV", "$EVO_NAS_DATA"):
        assert name in line, name
    csv = tmp_path / "t.csv"
    csv.write_text("x\n")  # the table found; the CIFAR subset is the one missing
    code, err = run(capsys, "--truth", "nb201", "--nb201", csv, "--out", tmp_path / "r.json")
    assert code == 2
    line = one_line(err)
    assert line.startswith("evo-nas: error: --cifar: no CIFAR-10 subset given; pass --cifar PATH")
    for name in ("--data-dir DIR", "$EVO_NAS_CIFAR_NPZ", "$EVO_NAS_DATA"):
        assert name in line, name


def test_the_shared_data_env_var_is_named_as_the_source(tmp_path, capsys, monkeypatch, no_env,
                                                       no_work):
    monkeypatch.setenv("EVO_NAS_DATA", str(tmp_path))
    code, err = run(capsys, "--truth", "nb201", "--out", tmp_path / "r.json")
    assert code == 2
    assert one_line(err).startswith(
        f"evo-nas: error: $EVO_NAS_DATA/nb201 = {str(tmp_path / 'nb201')!r}: NB201 table not found")


def test_unknown_truth_lists_the_choices(tmp_path, capsys, no_work):
    code, err = run(capsys, "--truth", "nb210", "--out", tmp_path / "r.json")
    assert code == 2
    assert one_line(err) == ("evo-nas: error: --truth = 'nb210': choose one of ['nb201'] "
                             "(did you mean 'nb201'?)")
    code, err = run(capsys, "--truth", "imagenet", "--out", tmp_path / "r.json")
    assert code == 2
    assert "--truth = 'imagenet': choose one of ['nb201']" in one_line(err)


def test_flags_of_the_other_protocol_are_refused(tmp_path, capsys, no_work):
    code, err = run(capsys, "--truth", "nb201", "--k", 5, "--samplers", "uniform,fair")
    assert code == 2
    line = one_line(err)
    assert "--k = 5" in line and "--samplers = 'uniform,fair'" in line
    assert "not used with --truth nb201" in line
    code, err = run(capsys, "--cells", 10, "--nb201", tmp_path)
    assert code == 2
    line = one_line(err)
    assert "--nb201 = " in line and "--cells = 10" in line
    assert "only used with --truth nb201" in line


def test_impossible_study_settings_are_named(tmp_path, capsys, no_work):
    code, err = run(capsys, "--truth", "nb201", "--quick", "--cells", 1)
    assert code == 2
    assert "nb201.cells = 1: must be a whole number >= 2" in one_line(err)
    code, err = run(capsys, "--truth", "nb201", "--supernet-epochs", 0)
    assert code == 2
    assert "nb201.epochs = 0" in one_line(err)


def test_unwritable_out_is_refused_before_work(tmp_path, capsys, no_work):
    csv, npz = tmp_path / "t.csv", tmp_path / "c.npz"  # found; never read before --out is
    csv.write_text("x\n")
    npz.write_bytes(b"")
    afile = tmp_path / "afile"
    afile.write_text("")
    code, err = run(capsys, "--truth", "nb201", "--nb201", csv, "--cifar", npz,
                    "--out", afile / "r.json")
    assert code == 2
    assert "--out = " in one_line(err)


def test_the_console_command_exits_2_with_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("EVO_NAS_")}
    env["EVO_NAS_NB201_CSV"] = str(tmp_path / "gone.csv")
    out = subprocess.run([sys.executable, "-m", "evo_nas.cli", "fidelity", "--truth", "nb201",
                          "--quick", "--out", str(tmp_path / "r.json")], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    line = one_line(out.stderr)
    assert str(tmp_path / "gone.csv") in line and "$EVO_NAS_NB201_CSV" in line


def _bench():
    """``benchmarks/bench_nb201.py`` as a module (benchmarks are scripts, not a package)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bench_nb201",
                                                  ROOT / "benchmarks" / "bench_nb201.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_keeps_its_flags_and_exits_on_missing_data(tmp_path, no_env):
    bench = _bench()
    flags = {o for a in bench.parser()._actions for o in a.option_strings}
    assert flags == {"-h", "--help", "--data", "--table", "--C", "--N", "--epochs", "--cells",
                     "--lever-cells", "--quick-levers", "--lever-rows", "--levers", "--proxies",
                     "--search-evals", "--seed", "--cell-seed", "--threads", "--out",
                     "--rescore"}
    missing = tmp_path / "none.npz"
    with pytest.raises(SystemExit) as e:
        bench.main(["--data", str(missing), "--threads", "1"])
    msg = str(e.value.code)
    assert "\n" not in msg and msg.startswith(f"bench_nb201: --data = {str(missing)!r}")
    assert "$EVO_NAS_CIFAR_NPZ" in msg


# ------------------------------------------------------------------------------ the real run
SUMMARY_TAUS = ("supernet_tau", "params_tau", "tau_within_params_groups", "hybrid_tau")
SUMMARY_HV = ("ws_search_hv_ratio", "params_search_hv_ratio", "hybrid_search_hv_ratio",
              "surrogate_search_hv_ratio")
SUMMARY_ACC = ("best_of_200", "params_best_of_200", "hybrid_best_of_200",
               "ws_search_best_true_acc", "params_search_best_true_acc",
               "hybrid_search_best_true_acc")
SUMMARY_SHARES = ("p_at_top5", "params_p_at_top5", "hybrid_p_at_top5")
SUMMARY_CIS = ("tau_minus_params_ci95", "hybrid_tau_minus_params_ci95")


@pytest.mark.skipif(NB201_CSV is None or CIFAR_NPZ is None,
                    reason="shared NB201 table or CIFAR-10 subset not present "
                           "($EVO_NAS_DATA, else ../shared/data)")
def test_quick_study_runs_end_to_end(tmp_path, capsys):
    out = tmp_path / "nb201.json"
    code = main(["fidelity", "--truth", "nb201", "--quick", "--nb201", str(NB201_CSV.parent),
                 "--cifar", str(CIFAR_NPZ), "--out", str(out), "--quiet"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "Kendall tau vs NB201 test accuracy" in captured.out
    doc = json.loads(out.read_text())
    s = doc["summary"]
    assert set(SUMMARY_TAUS + SUMMARY_HV + SUMMARY_ACC + SUMMARY_SHARES + SUMMARY_CIS) <= set(s)
    for k in SUMMARY_TAUS:
        assert -1.0 <= s[k] <= 1.0, (k, s[k])
    for k in SUMMARY_HV:
        assert 0.0 <= s[k] <= 1.0001, (k, s[k])
    for k in SUMMARY_ACC:
        assert 10.0 <= s[k] <= 94.37, (k, s[k])  # NB201's c10_test_acc range
    for k in SUMMARY_SHARES:
        assert 0.0 <= s[k] <= 1.0, (k, s[k])
    for k in SUMMARY_CIS:
        lo, hi = s[k]
        assert -2.0 <= lo <= hi <= 2.0, (k, s[k])
    st = s["setting"]
    assert st["cells"] == 100 and st["C"] == 4 and st["images"] == 400
    assert doc["settings"]["quick"] is True
    assert len(doc["cells"]["genomes"]) == 100 == len(doc["cells"]["true_acc"])
    for name in ("nsga2", "surrogate", "hybrid_nsga2", "params_nsga2"):
        search = doc["searches"][name]
        assert 1 <= search["evaluations"] <= 40 and search["front_size"] >= 1
    # the truth the study read is NB201's: params alone ranks well above chance
    assert s["params_tau"] > 0.3
    assert out.with_suffix(".png").stat().st_size > 0
