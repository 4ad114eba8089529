"""``evo-nas batch`` reports each job as it finishes (one line per job, in order of completion),
not only the table at the end."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\[(\d+)/(\d+)\] (\S+) (ok|failed) (\d+\.\d)s")


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """An untrained tiny supernet: evaluations cost what a trained one's do, training nothing."""
    import torch

    from evo_nas.nn import Supernet
    from evo_nas.train import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "supernet.pt", Supernet("tiny"))


def _done(db: Path) -> bool:
    """Whether the job's archive records a finished search (WAL: readable while it writes)."""
    if not db.is_file():
        return False
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            return any(s == "done" for (s,) in con.execute("SELECT status FROM runs"))
        finally:
            con.close()
    except sqlite3.OperationalError:  # created but not yet initialised
        return False


@pytest.mark.slow(seconds=23)
def test_batch_prints_one_line_per_job_as_it_finishes(tiny_checkpoint, tmp_path):
    # listed first but finishes last: 2 workers take `long` and `impossible`; `impossible` fails
    # at once (no architecture fits), then `short` (4 evaluations) runs on its worker
    spec = tmp_path / "batch.yaml"
    spec.write_text(
        f"name: pb\nruns_dir: {tmp_path / 'runs'}\nseeds: [0]\ncheckpoint: {tiny_checkpoint}\n"
        "base: {search: {pop_size: 4, generations: 1}, eval: {calib_images: 50}}\n"
        "experiments:\n"
        "  - {name: long, search: {pop_size: 6, generations: 6, options: {n_offsprings: 6}}}\n"
        "  - {name: impossible, search: {budgets: {flops: 0.01}}}\n"
        "  - {name: short}\n")
    batch_dir = tmp_path / "runs" / "pb"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "evo_nas.cli", "batch", str(spec), "--n-jobs", "2"],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, long_done_when_seen, t0 = [], [], time.monotonic()
    try:
        for line in proc.stdout:  # read as the batch prints, not after it ends
            assert time.monotonic() < t0 + 300, lines
            lines.append(line.rstrip("\n"))
            print(f"{time.monotonic() - t0:6.1f}s  {lines[-1]}")
            if LINE.match(line):
                long_done_when_seen.append(_done(batch_dir / "long-s0" / "archive.db"))
        err = proc.stderr.read()
        assert proc.wait(timeout=60) == 1, err[-2000:]  # one job failed
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    progress = [m.groups() for m in map(LINE.match, lines) if m]
    assert [(d, t) for d, t, *_ in progress] == [("1", "3"), ("2", "3"), ("3", "3")], lines
    assert [(run, status) for _, _, run, status, _ in progress] == [
        ("impossible-s0", "failed"), ("short-s0", "ok"), ("long-s0", "ok")], lines
    # the first two lines came while the long job was still searching
    assert long_done_when_seen == [False, False, True], (long_done_when_seen, lines)
    assert "BudgetError" in next(line for line in lines if line.startswith("[1/3]"))
    # then the table, in the batch's order, and the summary
    end = lines.index(next(line for line in lines if line.startswith("[3/3]")))
    table = [line.split()[0] for line in lines[end + 1:] if line and not line.startswith("summary")]
    assert table == ["long-s0", "impossible-s0", "short-s0"], lines
    assert (batch_dir / "summary.csv").is_file()


def _sleepy(index: int, seconds: float) -> tuple[int, dict]:
    time.sleep(seconds)
    return index, {"run": f"job{index}"}


@pytest.mark.parametrize("backend", ["sequential", "threading", "multiprocessing"])
def test_rows_come_back_in_job_order_and_progress_in_order_of_completion(backend):
    from joblib import delayed

    from evo_nas.batch import _collect, _local_config

    sleeps = [1.0, 0.0, 0.5]
    seen = []
    with _local_config(backend, 3, os.getpid()):
        rows = _collect([delayed(_sleepy)(i, s) for i, s in enumerate(sleeps)],
                        lambda row, done, total: seen.append((row["run"], done, total)))
    assert [r["run"] for r in rows] == ["job0", "job1", "job2"]
    assert [(d, t) for _, d, t in seen] == [(1, 3), (2, 3), (3, 3)]
    if backend == "threading":  # as they finish (loky's workers may start seconds apart:
        # the CLI test above checks loky with wider margins); multiprocessing: all at the end
        assert [r for r, _, _ in seen] == ["job1", "job2", "job0"], seen
    else:
        assert sorted(r for r, _, _ in seen) == ["job0", "job1", "job2"]
