"""Batch resume after a real ``kill -9`` of ``evo-nas batch --n-jobs 2``: the loky workers end
with the driver, and running the same command again completes the batch from the job archives
(finished jobs read back, not recomputed; a half-done job resumed) and writes summary.csv."""

from __future__ import annotations

import csv
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

psutil = pytest.importorskip("psutil")  # comes with dask[distributed] (the dev extra)

ROOT = Path(__file__).resolve().parents[1]
JOBS = ["short-s0", "short-s1", "long-s0", "long-s1"]


def _runs(db: Path) -> list[tuple[str, str, int]]:
    """(run, status, rows) of every search in an archive (WAL: readable while the batch writes;
    not opened read-only, which cannot recover the WAL a killed writer leaves)."""
    if not db.is_file():
        return []
    try:
        con = sqlite3.connect(db, timeout=10)
        try:
            return [(r, s, con.execute("SELECT COUNT(*) FROM evaluations WHERE run=?",
                                       (r,)).fetchone()[0])
                    for r, s in con.execute("SELECT run, status FROM runs ORDER BY created")]
        finally:
            con.close()
    except sqlite3.OperationalError as e:  # created but not yet initialised
        if "no such table" not in str(e):
            raise
        return []


def _state(batch_dir: Path) -> dict[str, list[tuple[str, str, int]]]:
    return {job: _runs(batch_dir / job / "archive.db") for job in JOBS}


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    out = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """An untrained tiny supernet: evaluations cost what a trained one's do, training nothing."""
    import torch

    from evo_nas.nn import Supernet
    from evo_nas.train import save_checkpoint

    torch.manual_seed(0)
    return save_checkpoint(tmp_path / "supernet.pt", Supernet("tiny"))


def test_sigkill_of_the_driver_ends_its_workers_and_a_rerun_completes(tiny_checkpoint, tmp_path):
    spec = tmp_path / "batch.yaml"
    spec.write_text(
        f"name: kb\nruns_dir: {tmp_path / 'runs'}\nseeds: [0, 1]\ncheckpoint: {tiny_checkpoint}\n"
        "base: {search: {pop_size: 6, generations: 1}, eval: {calib_images: 50}}\n"
        "experiments:\n  - {name: short}\n  - {name: long, search: {generations: 5}}\n")
    batch_dir = tmp_path / "runs" / "kb"
    cmd = [sys.executable, "-m", "evo_nas.cli", "batch", str(spec), "--n-jobs", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    driver = subprocess.Popen(cmd, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE)
    try:
        # kill once a job has finished and another has committed rows but not finished
        deadline = time.monotonic() + 240
        while True:
            assert driver.poll() is None, "batch ended before it could be killed: " + \
                driver.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, f"no kill point reached: {_state(batch_dir)}"
            state = _state(batch_dir)
            # the running job must be a long one in its first half (5 generations of 6): a
            # short job seen running may finish in the milliseconds before the kill lands
            if any(s == "done" for job in state.values() for _, s, _ in job) and \
                    any(s == "running" and 0 < n <= 18
                        for name, job in state.items() if name.startswith("long")
                        for _, s, n in job):
                break
            time.sleep(0.05)
        workers = psutil.Process(driver.pid).children(recursive=True)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=10)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert len(workers) >= 2  # loky's two workers (and its resource tracker)
    deadline = time.monotonic() + 10
    while _alive(workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = _alive(workers)
    for p in left:  # do not leave them behind for the next test
        p.kill()
    assert not left, f"workers outlived the driver: {[(p.pid, p.cmdline()[:3]) for p in left]}"
    assert not (batch_dir / "summary.csv").exists()

    before = _state(batch_dir)
    finished = {job: runs for job, runs in before.items() if runs and runs[-1][1] == "done"}
    halfway = {job: runs for job, runs in before.items() if runs and runs[-1][1] == "running"}
    assert finished and halfway, before

    out = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    with (batch_dir / "summary.csv").open() as f:
        summary = {r["run"]: r for r in csv.DictReader(f)}
    assert sorted(summary) == sorted(JOBS)
    assert {r["status"] for r in summary.values()} == {"ok"}, summary
    after = _state(batch_dir)
    for job, runs in finished.items():  # read back: no new run, not one row more
        assert after[job] == runs, (job, runs, after[job])
        assert summary[job]["source"] == "archive"
        assert int(summary[job]["evaluations"]) == runs[-1][2]
    for job, runs in halfway.items():  # resumed: the same run id carried on to the end
        assert [r for r, _, _ in after[job]] == [r for r, _, _ in runs], (job, after[job])
        assert after[job][-1][1] == "done" and after[job][-1][2] >= runs[-1][2]
        assert summary[job]["source"] == "resumed"
    assert (batch_dir / "batch.png").stat().st_size > 0


def test_loky_workers_watch_the_driver_and_the_executor_is_reused(tmp_path):
    """Every loky worker of a batch runs the driver watch from its start, and the same
    settings on the next batch reuse joblib's executor (the same two worker processes)."""
    from joblib import Parallel, delayed

    from evo_nas.batch import _local_config

    seen = []
    for call in range(2):
        meet = tmp_path / str(call)
        meet.mkdir()
        with _local_config("loky", 2, os.getpid()):
            seen.append(Parallel()(delayed(_probe)(str(meet)) for _ in range(2)))
    for probes in seen:
        assert all(parent == os.getpid() and watching for _, parent, watching in probes), probes
    first, second = ({pid for pid, _, _ in probes} for probes in seen)
    assert len(first) == 2 and second == first  # reused, not respawned


def _probe(meet: str) -> tuple[int, int, bool]:
    """Wait until both workers have checked in (so each call sees both), then report."""
    import threading

    (Path(meet) / str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(list(Path(meet).iterdir())) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    return os.getpid(), os.getppid(), any(t.name == "evo-nas-driver-watch"
                                          for t in threading.enumerate())
