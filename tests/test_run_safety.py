"""Runs that must not give silently wrong results: cache scope, run-dir lock, seeds, failures."""

import csv
import fcntl
import json
import os
import subprocess
import sys
import textwrap

import pytest

from evo_nas.archive import Archive
from evo_nas.cli import main
from evo_nas.errors import BudgetError, RunDirBusyError


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def archived(run_dir):
    """``[(run id, rows)]`` of every search in ``run_dir``'s archive, oldest first."""
    with Archive(run_dir / "archive.db") as archive:
        return [(r["run"], archive.rows(r["run"])) for r in archive.runs()]


def history(run_dir):
    with (run_dir / "history.csv").open(newline="") as f:
        return list(csv.DictReader(f))


# --------------------------------------------------------------------------- 1. cache scope
@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    """Two latency tables of the tiny space: ``b`` has every part twice as slow as ``a``."""
    from evo_nas.latency import build_table

    data = dict(build_table("tiny", repeats=2, warmup=1, contexts=1, calibration=3).data)
    data["calibration"] = {"scale": 1.0, "offset_ms": 0.0}  # predictions: plain sums of parts
    root = tmp_path_factory.mktemp("tables")
    a, b = root / "a.json", root / "b.json"
    a.write_text(json.dumps(data))
    slow = {k: {**v, "ms": 2 * v["ms"]} for k, v in data["entries"].items()}
    b.write_text(json.dumps({**data, "entries": slow}))
    return a, b


def _latency_config(tmp_path, table):
    path = tmp_path / f"{table.stem}.yaml"
    path.write_text(f"search: {{objectives: [error, latency], pop_size: 6, generations: 2}}\n"
                    f"eval: {{calib_images: 100}}\nlatency: {{table: {str(table)!r}}}\n")
    return path


def test_another_latency_table_is_not_read_from_the_cache(trained_tiny, tables, tmp_path,
                                                          capsys):
    from evo_nas.latency import LatencyTable

    ckpt = trained_tiny[1]
    for table in (tables[0], tables[1], tables[0]):
        code, _, err = run(capsys, "search", "--config", _latency_config(tmp_path, table),
                           "--checkpoint", ckpt, "--runs-dir", tmp_path, "--name", "r",
                           "--quiet")
        assert code == 0, err
    (_, first), (_, second), (_, third) = archived(tmp_path / "r")
    a, b = (LatencyTable.load(t, warn_device=False) for t in tables)
    for row in second:  # every value from table b, none copied from table a's run
        assert row["metrics"]["latency"] == pytest.approx(b.predict(row["config"]))
        assert row["metrics"]["latency"] != pytest.approx(a.predict(row["config"]))
    # table a again: every evaluation is the cached one of the first run (same timing record)
    seconds = {r["key"]: r["seconds"] for r in first}
    assert [r["key"] for r in third] == [r["key"] for r in first]
    assert all(r["seconds"] == seconds[r["key"]] for r in third)


def test_scope_changes_with_every_setting_that_changes_a_value(trained_tiny, tables):
    from evo_nas.config import load_config
    from evo_nas.pipeline import evaluation_scope

    ckpt = trained_tiny[1]
    base = {"latency": {"table": str(tables[0])}}

    def scope(extra=None, metrics=("error", "latency")):
        data = {**base, **(extra or {})}
        return evaluation_scope(load_config(data), ckpt, "mobilenet-tiny", metrics)

    same = scope()
    assert scope() == same
    assert scope({"search": {"pop_size": 8, "budgets": {"flops": 2.0}}}) == same
    changed = [{"latency": {"table": str(tables[1])}}, {"seed": 1},
               {"data": {"val_fraction": 0.3}}, {"data": {"max_train": 500}},
               {"eval": {"batch_size": 100}}, {"eval": {"calib_images": 50}},
               {"eval": {"split": "test"}}]
    scopes = [scope(c) for c in changed]
    assert same not in scopes and len(set(scopes)) == len(scopes)
    nb201 = [scope({"preset": "nb201", "supernet": {"C": c, "N": 1, "in_channels": 1}},
                   ("error", "flops")) for c in (4, 8)]
    assert nb201[0] != nb201[1]
    # measured latency: its settings count; without a latency metric they do not
    measured = {"latency": {"repeats": 5}}
    assert scope(measured) != scope({"latency": {"repeats": 6}})
    assert (scope(measured, ("error", "flops")) == scope({"latency": {"repeats": 6}},
                                                        ("error", "flops")))


def test_scope_follows_the_bytes_of_the_checkpoint_and_data_file(trained_tiny, tmp_path):
    """The checkpoint and an npz data file count by content: the same bytes under another
    path share the scope; other bytes under the same path do not."""
    import shutil

    import numpy as np
    import torch

    from evo_nas.config import load_config
    from evo_nas.nn import Supernet
    from evo_nas.pipeline import evaluation_scope
    from evo_nas.train import save_checkpoint

    def scope(ckpt, data=None):
        cfg = load_config({"data": data} if data else {})
        return evaluation_scope(cfg, ckpt, "mobilenet-tiny", ("error", "flops"))

    ckpt = trained_tiny[1]
    copy = shutil.copy(ckpt, tmp_path / "copy.pt")
    assert scope(copy) == scope(ckpt)
    torch.manual_seed(1)
    other = save_checkpoint(tmp_path / "other.pt", Supernet("tiny"))
    assert scope(other) != scope(ckpt)

    npz = tmp_path / "d.npz"

    def write(seed):
        rng = np.random.default_rng(seed)
        np.savez(npz, train_images=rng.integers(0, 256, (40, 1, 8, 8), dtype=np.uint8),
                 train_labels=np.arange(40) % 4)

    data = {"dataset": "npz", "path": str(npz)}
    write(0)
    first = scope(ckpt, data)
    write(0)
    assert scope(ckpt, data) == first
    write(1)  # same path, other images
    assert scope(ckpt, data) != first


# --------------------------------------------------------------------------- 2. one writer
def _hold(path):
    """Lock ``path`` on its own open file description, as another search would."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    return fd


def test_second_search_into_a_locked_run_dir_exits_2(trained_tiny, tmp_path, capsys):
    ckpt = trained_tiny[1]
    argv = ("search", "--checkpoint", ckpt, "--runs-dir", tmp_path, "--name", "r",
            "--pop-size", "4", "--generations", "1", "--calib-images", "100", "--quiet")
    run_dir = tmp_path / "r"
    assert run(capsys, *argv)[0] == 0
    fd = _hold(run_dir / ".lock")
    try:
        code, out, err = run(capsys, *argv)
        assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
        assert str(run_dir) in err and "another search" in err
        assert run(capsys, "report", run_dir)[0] == 0  # readers do not need the lock
        assert len(archived(run_dir)) == 1
    finally:
        os.close(fd)
    assert run(capsys, *argv)[0] == 0
    runs = [r for r, _ in archived(run_dir)]
    assert len(runs) == 2 and runs[0] != runs[1]


def test_lock_is_released_after_an_error_and_after_a_kill(tmp_path):
    from evo_nas.pipeline import run_dir_lock

    with pytest.raises(RuntimeError), run_dir_lock(tmp_path / "r"):
        with pytest.raises(RunDirBusyError, match="another search"), run_dir_lock(tmp_path / "r"):
            pass
        raise RuntimeError("crash")
    script = textwrap.dedent(f"""
        import os, signal
        from pathlib import Path
        from evo_nas.pipeline import run_dir_lock
        with run_dir_lock(Path({str(tmp_path / "r")!r})):
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", script])
    assert proc.returncode == -9
    with run_dir_lock(tmp_path / "r"):
        pass


def test_run_ids_started_in_the_same_second_differ(monkeypatch):
    from evo_nas import pipeline

    monkeypatch.setattr(pipeline.time, "strftime", lambda fmt: "20250101-120000")
    ids = [pipeline.new_run_id("r") for _ in range(50)]
    assert len(set(ids)) == 50 and all(i.startswith("r-20250101-120000-") for i in ids)
    suffixes = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(pipeline.secrets, "token_hex", lambda n: next(suffixes))
    taken = [pipeline.new_run_id("r")]
    assert pipeline.new_run_id("r", taken) == "r-20250101-120000-bbbbbb"


# --------------------------------------------------------------------------- 3. one seed rule
def test_batch_seeds_train_distinct_supernets_unless_train_seed_is_set(tmp_path):
    from evo_nas.batch import load_batch
    from evo_nas.config import load_config, to_dict

    spec = {"name": "b", "runs_dir": str(tmp_path), "seeds": [0, 1, 2],
            "experiments": [{"name": "e"}]}
    jobs = load_batch(spec).jobs
    assert [(j.seed, j.train.seed) for j in jobs] == [(0, 0), (1, 1), (2, 2)]
    assert [load_config(to_dict(j)).train.seed for j in jobs] == [0, 1, 2]  # as a worker sees it
    fixed = load_batch({**spec, "base": {"train": {"seed": 7}}}).jobs
    assert [(j.seed, j.train.seed) for j in fixed] == [(0, 7), (1, 7), (2, 7)]
    assert not any(tmp_path.iterdir())


def test_config_file_and_cli_follow_the_same_seed_rule(tmp_path):
    from evo_nas.cli import _config, build_parser

    def cfg(*argv):
        return _config(build_parser().parse_args(["train", *map(str, argv)]))

    seeded = tmp_path / "seeded.yaml"
    seeded.write_text("seed: 5\n")
    fixed = tmp_path / "fixed.yaml"
    fixed.write_text("seed: 5\ntrain: {seed: 7}\n")
    assert cfg("--config", seeded).train.seed == 5
    assert cfg("--seed", 3).train.seed == 3
    assert cfg("--config", seeded, "--seed", 3).train.seed == 3
    assert (cfg("--config", fixed).train.seed, cfg("--config", fixed, "--seed", 3).train.seed,
            cfg("--config", fixed, "--seed", 3).seed) == (7, 7, 3)


# --------------------------------------------------------------------------- 4. failures
def _search_argv(ckpt, tmp_path, name):
    return ("search", "--checkpoint", ckpt, "--runs-dir", tmp_path, "--name", name,
            "--pop-size", "8", "--generations", "2", "--budget", "flops=1.5",
            "--calib-images", "100", "--quiet")


def test_some_failed_evaluations_are_in_history_csv(trained_tiny, tmp_path, capsys,
                                                     monkeypatch):
    from evo_nas.objectives import SupernetAccuracy

    real = SupernetAccuracy.evaluate

    def flaky(self, config):
        if config["s0.b0.k"] == 5 and config["s0.b0.e"] == 4:
            raise RuntimeError(f"out of memory at res={config['res']}")
        return real(self, config)

    monkeypatch.setattr(SupernetAccuracy, "evaluate", flaky)
    code, out, err = run(capsys, *_search_argv(trained_tiny[1], tmp_path, "some"))
    assert code == 0, err
    rows = history(tmp_path / "some")
    failed = [r for r in rows if r["status"] == "failed"]
    assert failed and len(failed) < len(rows)
    assert f"{len(failed)} evaluations failed" in out
    for r in rows:
        config = json.loads(r["config"])
        if (config["s0.b0.k"], config["s0.b0.e"]) == (5, 4):
            assert r["status"] == "failed" and r["feasible"] == "False"
            assert r["error"].startswith("RuntimeError: out of memory at res=")
        else:
            assert r["status"] == "ok" and r["error"] == ""


def test_all_failed_evaluations_say_so(trained_tiny, tmp_path, capsys, monkeypatch):
    from evo_nas.objectives import SupernetAccuracy

    def broken(self, config):
        raise RuntimeError("CUDA error: device-side assert triggered\nfull trace follows")

    monkeypatch.setattr(SupernetAccuracy, "evaluate", broken)
    code, _, err = run(capsys, *_search_argv(trained_tiny[1], tmp_path, "all"))
    assert code == 2 and err.count("\n") == 1, err
    assert "every evaluation failed" in err and "budgets" not in err
    assert "the first: RuntimeError: CUDA error: device-side assert triggered" in err
    rows = history(tmp_path / "all")
    assert rows and {r["status"] for r in rows} == {"failed"}
    assert all("device-side assert triggered\nfull trace" in r["error"] for r in rows)
    assert not (tmp_path / "all" / "pareto.json").exists()


def test_budget_message_counts_failures_without_blaming_them():
    from evo_nas.search import search
    from evo_nas.space import Choice, SearchSpace
    from problems import NASProblem

    space = SearchSpace([Choice(f"g{i}", (0, 1, 2)) for i in range(4)], name="toy4")

    def cost(configs):
        return [float(sum(c.values())) for c in configs]

    def half(configs):
        if configs[0]["g0"] == 2:
            raise ValueError("bad g0")
        return cost(configs)

    problem = NASProblem(space, {"error": half, "cost": cost}, budgets={"cost": -1.0})
    with pytest.raises(BudgetError, match=r"meets the budgets \(cost <= -1\) after \d+ "
                                          r"evaluations; \d+ of them failed, the first: "
                                          r"ValueError: bad g0"):
        search(problem, pop_size=6, generations=2, seed=0)
