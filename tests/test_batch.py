"""Batches of experiments x seeds with joblib processes and with a Dask LocalCluster."""

import csv

import pytest

from evo_nas.batch import load_batch, run_batch
from evo_nas.errors import ConfigError


def _spec(tmp_path, checkpoint, **extra):
    data = {
        "name": "b", "runs_dir": str(tmp_path), "seeds": [0, 1], "checkpoint": str(checkpoint),
        "base": {"search": {"pop_size": 6, "generations": 2}, "eval": {"calib_images": 100}},
        "experiments": [{"name": "tight", "search": {"budgets": {"flops": 0.6}}},
                        {"name": "loose", "search": {"budgets": {"flops": 1.5}}}],
    }
    data.update(extra)
    return load_batch(data)


def _check(spec, rows):
    assert [r["status"] for r in rows] == ["ok"] * 4, [r["error"] for r in rows]
    assert sorted(r["run"] for r in rows) == ["loose-s0", "loose-s1", "tight-s0", "tight-s1"]
    for r in rows:
        assert 0.0 < r["hv"] <= 1.21 and r["front_size"] >= 1
        assert (spec.batch_dir / r["run"] / "pareto.json").exists()
        assert (spec.batch_dir / r["run"] / "archive.db").exists()
    with (spec.batch_dir / "summary.csv").open() as f:
        summary = list(csv.DictReader(f))
    assert len(summary) == 4 and {s["status"] for s in summary} == {"ok"}
    assert (spec.batch_dir / "batch.png").stat().st_size > 0


def test_batch_with_local_processes(trained_tiny, tmp_path):
    spec = _spec(tmp_path, trained_tiny[1])
    _check(spec, run_batch(spec, n_jobs=2))


def test_batch_on_a_dask_local_cluster(trained_tiny, tmp_path):
    from dask.distributed import LocalCluster

    spec = _spec(tmp_path, trained_tiny[1])
    with LocalCluster(n_workers=2, threads_per_worker=1, host="127.0.0.1",
                      dashboard_address=None, processes=True) as cluster:
        rows = run_batch(spec, backend="dask", scheduler=cluster.scheduler_address)
    _check(spec, rows)


def test_failing_job_is_recorded_and_others_finish(trained_tiny, tmp_path):
    spec = _spec(tmp_path, trained_tiny[1], seeds=[0], experiments=[
        {"name": "impossible", "search": {"budgets": {"flops": 0.01}}},
        {"name": "fine", "search": {"budgets": {"flops": 1.5}}}])
    rows = run_batch(spec, backend="sequential")
    status = {r["run"]: (r["status"], r["error"]) for r in rows}
    assert status["fine-s0"][0] == "ok"
    assert status["impossible-s0"][0] == "failed"
    assert "BudgetError" in status["impossible-s0"][1]


def test_bad_batch_is_rejected_before_any_work(trained_tiny, tmp_path):
    with pytest.raises(ConfigError, match=r"experiments\[1\] \('bad'\): search.budget = "
                                          r".*\(did you mean 'budgets'\?\)"):
        _spec(tmp_path, trained_tiny[1], experiments=[
            {"name": "ok"}, {"name": "bad", "search": {"budget": {"flops": 1}}}])
    with pytest.raises(ConfigError, match="unknown batch key 'seed' \\(did you mean 'seeds'"):
        load_batch({"seed": [0]})
    with pytest.raises(ConfigError, match="seeds = 'zero'"):
        load_batch({"seeds": "zero"})
    assert not any(tmp_path.iterdir())


def test_report_rebuilds_from_the_archive(trained_tiny, tmp_path, capsys):
    from evo_nas.cli import main

    spec = _spec(tmp_path, trained_tiny[1], seeds=[0])
    run_batch(spec, backend="sequential")
    run_dir = spec.batch_dir / "loose-s0"
    before = (run_dir / "pareto.csv").read_text()
    for name in ("pareto.csv", "pareto.json", "pareto.png", "history.csv"):
        (run_dir / name).unlink()
    assert main(["report", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "Pareto front:" in out
    assert (run_dir / "pareto.csv").read_text() == before
    assert main(["report", str(spec.batch_dir)]) == 0
    assert main(["report", str(tmp_path / "nowhere")]) == 2
