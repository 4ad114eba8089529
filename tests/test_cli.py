"""The CLI end to end on small sizes, and every bad-input path: one line, exit 2, no traceback."""

import json
import subprocess
import sys

import pytest

from evo_nas.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_writes_results_within_budget(trained_tiny, tmp_path, capsys):
    _, ckpt = trained_tiny
    code, out, err = run(capsys, "search", "--checkpoint", str(ckpt), "--runs-dir", str(tmp_path),
                         "--name", "s", "--pop-size", "8", "--generations", "2",
                         "--budget", "flops=1.0", "--calib-images", "200", "--quiet")
    assert code == 0, err
    assert "Pareto front:" in out and "MFLOPs" in out
    run_dir = tmp_path / "s"
    doc = json.loads((run_dir / "pareto.json").read_text())
    assert doc["pareto"] and all(r["MFLOPs"] <= 1.0 for r in doc["pareto"])
    assert all(0 <= r["accuracy_%"] <= 100 for r in doc["pareto"])
    for name in ("pareto.csv", "pareto.png", "history.csv"):
        assert (run_dir / name).stat().st_size > 0


def test_train_writes_a_loadable_checkpoint(tmp_path, capsys):
    from evo_nas.train import load_checkpoint

    code, out, err = run(capsys, "train", "--epochs", "1", "--runs-dir", str(tmp_path),
                         "--name", "t", "--quiet")
    assert code == 0, err
    net, meta = load_checkpoint(tmp_path / "t" / "supernet.pt")
    assert meta["config"]["train"]["epochs"] == 1 and net.spec.name == "tiny"


@pytest.mark.parametrize(
    "config_text, message",
    [
        ("serach:\n  pop_size: 4\n", "unknown config key 'serach' (did you mean 'search'?)"),
        ("search:\n  pop_size: many\n", "search.pop_size = 'many': expected an integer"),
        ("search:\n  budgets:\n    flops: cheap\n", "search.budgets.flops = 'cheap': expected a"),
        ("search:\n  budgets:\n    flop: 1\n", "search.budgets.flop = 'flop': choose one of"),
        ("train:\n  sampler: fare\n", "train.sampler = 'fare': choose one of"),
        ("preset: huge\n", "preset = 'huge': choose one of"),
        ("- just\n- a list\n", "must hold a mapping"),
        ("search: [unclosed\n", "is not valid YAML"),
    ],
)
def test_bad_config_files(tmp_path, capsys, config_text, message):
    cfg = tmp_path / "run.yaml"
    cfg.write_text(config_text)
    code, out, err = run(capsys, "train", "--config", str(cfg), "--runs-dir", str(tmp_path))
    assert code == 2
    assert message in err and "Traceback" not in err
    assert not any(tmp_path.glob("*/supernet.pt"))


def test_toml_config_is_read(tmp_path, capsys):
    cfg = tmp_path / "run.toml"
    cfg.write_text('[search]\nalgorithm = "annealing"\n')
    code, _, err = run(capsys, "train", "--config", str(cfg))
    assert code == 2 and "search.algorithm = 'annealing'" in err


def test_missing_dataset_folder(tmp_path, capsys):
    missing = tmp_path / "nothing-here"
    code, _, err = run(capsys, "train", "--dataset", "mnist", "--data-dir", str(missing),
                       "--preset", "tiny", "--runs-dir", str(tmp_path))
    assert code == 2
    assert str(missing) in err and "MNIST/raw" in err and "--download" in err


def test_corrupt_checkpoint(tmp_path, capsys):
    bad = tmp_path / "supernet.pt"
    bad.write_bytes(b"\x00" * 100)
    code, _, err = run(capsys, "search", "--checkpoint", str(bad), "--runs-dir", str(tmp_path))
    assert code == 2 and "supernet.pt' is corrupt" in err


def test_impossible_budget_leaves_no_result(trained_tiny, tmp_path, capsys):
    _, ckpt = trained_tiny
    code, _, err = run(capsys, "search", "--checkpoint", str(ckpt), "--runs-dir", str(tmp_path),
                       "--name", "b", "--budget", "flops=0.001", "--quiet")
    assert code == 2
    assert "budget flops <= 0.001 cannot be met" in err
    assert not (tmp_path / "b" / "pareto.json").exists()


def test_bad_budget_syntax_and_console_script_exit_code(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "evo_nas.cli", "search", "--budget", "flops"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2 and "expected NAME=VALUE" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "evo_nas.cli", "train", "--preset", "tiiny"],
                          capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 2
    assert "preset = 'tiiny'" in proc.stderr and "Traceback" not in proc.stderr


def test_surrogate_search_from_a_config_file(trained_tiny, tmp_path, capsys):
    _, ckpt = trained_tiny
    cfg = tmp_path / "run.yaml"
    cfg.write_text("search:\n  algorithm: surrogate\n  pop_size: 4\n  budget: 16\n"
                   "  budgets: {flops: 1.0}\n"
                   "  options: {predictor: rf, n_initial: 8}\n"
                   "eval: {calib_images: 100}\n")
    code, out, err = run(capsys, "search", "--config", str(cfg), "--checkpoint", str(ckpt),
                         "--runs-dir", str(tmp_path), "--name", "sur", "--quiet")
    assert code == 0, err
    doc = json.loads((tmp_path / "sur" / "pareto.json").read_text())
    assert doc["n_evals"] == doc["info"]["real_evaluations"] == 16 and doc["pareto"]
    assert all(r["MFLOPs"] <= 1.0 for r in doc["pareto"])
    code, _, err = run(capsys, "search", "--config", str(cfg), "--predictor", "xgboost",
                       "--checkpoint", str(ckpt), "--runs-dir", str(tmp_path))
    assert code == 2 and "search.options.predictor = 'xgboost'" in err
