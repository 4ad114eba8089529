"""Parallel evaluation (evo_nas.parallel): the same archive for 1, 2 or 4 workers, real SIGKILLs
of a worker and of the driver on loky and on a Dask LocalCluster, vectorised cheap metrics.

A tiny supernet at its (seeded) initial weights stands in for a trained one: ranks and values do
not matter here, only that every process computes the same numbers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import cloudpickle
import numpy as np
import pytest
import torch
from helpers import count_rows as _count

from evo_nas.archive import Archive
from evo_nas.parallel import LokyExecutor, WorkerDied, make_executor
from evo_nas.search import search
from problems import NASProblem

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/

POP, GENS, SEED = 6, 2, 0
EVAL = {"calib_images": 64, "eval_images": 128, "batch_size": 128}


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """(checkpoint path, RunConfig) of a tiny supernet on digits."""
    from evo_nas.config import load_config
    from evo_nas.nn import Supernet
    from evo_nas.train import save_checkpoint

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("par") / "supernet.pt"
    save_checkpoint(path, Supernet("tiny"))
    cfg = load_config({"preset": "tiny", "eval": dict(EVAL),
                       "search": {"pop_size": POP, "generations": GENS}})
    return path, cfg


def build(setup, backend="serial", workers=1, wrap=None):
    """(problem, executor) as ``evo-nas search`` builds them, metrics error + flops."""
    from evo_nas.pipeline import build_problem, evaluation_executor, load_run_data
    from evo_nas.train import load_checkpoint

    path, cfg = setup
    cfg.search.backend, cfg.search.workers = backend, workers
    net, _ = load_checkpoint(path)
    problem = build_problem(net, load_run_data(cfg), cfg)
    executor = evaluation_executor(cfg, path, problem)
    if wrap is not None:
        acc = problem.metrics["error"]
        problem = NASProblem(problem.space, {"error": wrap(acc), "flops": problem.metrics["flops"]})
    problem.executor = executor
    return problem, executor


def rows_of(db, run="r"):
    with Archive(db) as archive:
        return [(r["key"], r["status"], r["metrics"]) for r in archive.rows(run)]


def run_search(setup, db, backend="serial", workers=1, wrap=None, gens=GENS):
    problem, executor = build(setup, backend, workers, wrap)
    try:
        with Archive(db) as archive:
            problem.attach(archive, "r", scope="s")
            result = search(problem, pop_size=POP, generations=gens, seed=SEED)
    finally:
        if executor is not None:
            executor.close()
    return rows_of(db), sorted(problem.space.key(r["genome"]) for r in result.pareto)


@pytest.fixture(scope="module")
def reference(setup, tmp_path_factory):
    return run_search(setup, tmp_path_factory.mktemp("ref") / "a.db")


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_same_archive_rows_and_front_for_1_2_4_loky_workers(setup, reference, tmp_path,
                                                             workers):
    rows, front = run_search(setup, tmp_path / "a.db", "loky", workers)
    assert rows == reference[0]  # same genomes, same order, same metrics
    assert front == reference[1]


# --------------------------------------------------------------------------- worker SIGKILL
class Marked:
    """Wraps the supernet metric: leaves a ``<pid>-<key>`` marker as each evaluation starts,
    dies by SIGKILL on ``die_on`` every time, and lingers so an outside kill lands mid-task."""

    cheap = False

    def __init__(self, inner, marks: str, die_on: dict | None) -> None:
        self.inner, self.marks, self.die_on = inner, marks, die_on

    def __call__(self, configs):
        key = "_".join(str(v) for v in configs[0].values())
        Path(self.marks, f"{os.getpid()}-{key}-{time.time_ns()}").touch()
        if configs[0] == self.die_on:
            os.kill(os.getpid(), signal.SIGKILL)
        time.sleep(0.2)
        return self.inner(configs)


@pytest.mark.parametrize("backend", ["loky", "dask"])
def test_worker_sigkill_is_retried_and_a_repeat_killer_is_recorded_failed(setup, reference,
                                                                           tmp_path, backend):
    marks = tmp_path / "marks"
    marks.mkdir()
    first = rows_of_first_config(setup, reference)
    die_key = "_".join(str(v) for v in first.values())
    killed: list[int] = []
    stop = threading.Event()

    def killer():  # SIGKILL the first worker seen evaluating anything but the repeat killer
        while not stop.is_set() and not killed:
            for m in sorted(os.listdir(marks)):
                pid = int(m.split("-")[0])
                if die_key not in m and pid != os.getpid():
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                    break
            time.sleep(0.02)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    try:
        rows, _ = run_search(setup, tmp_path / "a.db", backend, 2, gens=1,
                             wrap=lambda acc: Marked(acc, str(marks), first))
    finally:
        stop.set()
        thread.join()
    assert killed, "no worker was killed"
    tries = [m for m in os.listdir(marks) if die_key in m]
    # the first try and one retry; when the outside kill broke the pool before the killer's
    # first try started, that try never ran, and the lone retry is its only run
    assert 1 <= len(tries) <= 2, tries
    by_key = {k: (s, m) for k, s, m in rows}
    failed = [k for k, s, _ in rows if s != "ok"]
    assert len(failed) == 1 and len(rows) > 1  # the search went on
    with Archive(tmp_path / "a.db") as archive:
        fault = [r["fault"] for r in archive.rows("r") if r["status"] != "ok"][0]
    assert fault.startswith("WorkerDied: the worker evaluating it died when it ran alone")
    # every other row holds the values an undisturbed in-process evaluation gives
    problem, _ = build(setup)
    ref = dict((k, m) for k, _, m in reference[0])
    for key, (status, metrics) in by_key.items():
        if status == "ok":
            want = ref.get(key) or problem.measure(np.array([[int(g) for g in key.split("-")]]))[0]
            assert metrics == want, key


def rows_of_first_config(setup, reference):
    problem, _ = build(setup)
    key = reference[0][0][0]
    return problem.space.decode(np.array([int(g) for g in key.split("-")]))


# --------------------------------------------------------------------------- driver SIGKILL


@pytest.mark.parametrize("backend", ["loky", "dask"])
def test_driver_sigkill_then_resume_loses_and_duplicates_nothing(setup, tmp_path, backend):
    import yaml

    from evo_nas.cli import main

    ckpt = setup[0]
    conf = tmp_path / "run.yaml"
    conf.write_text(yaml.safe_dump({"preset": "tiny", "seed": SEED, "eval": EVAL,
                                    "search": {"pop_size": POP, "generations": 3,
                                               # generational: a whole population in flight;
                                               # three generations, so the kill lands before the
                                               # end even when a whole generation's rows are
                                               # written between two polls (a loaded machine)
                                               "options": {"n_offsprings": POP}}}))
    common = ["search", "--config", str(conf), "--checkpoint", str(ckpt), "--quiet",
              "--runs-dir", str(tmp_path), "--threads", "1"]
    assert main([*common, "--name", "full"]) == 0  # serial, uninterrupted
    full = rows_of(tmp_path / "full" / "archive.db", _run_id(tmp_path / "full"))

    db = tmp_path / "killed" / "archive.db"
    proc = subprocess.Popen([sys.executable, "-m", "evo_nas.cli", *common, "--name", "killed",
                             "--backend", backend, "--workers", "2"], start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and _count(db) < POP + 1 and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, "the search ended before it could be killed"
        os.kill(proc.pid, signal.SIGKILL)  # the driver alone, mid-generation
        proc.wait()
    finally:
        time.sleep(0.5)
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # then its orphaned workers
        except ProcessLookupError:
            pass
    before = rows_of(db, _run_id(tmp_path / "killed"))
    assert 0 < len(before) < len(full)
    assert main(["search", "--resume", str(tmp_path / "killed"), "--quiet",
                 "--backend", backend, "--workers", "2", "--threads", "1"]) == 0
    after = rows_of(db, _run_id(tmp_path / "killed"))
    assert after[:len(before)] == before  # nothing lost
    assert [k for k, _, _ in after] == [k for k, _, _ in full]  # nothing duplicated or extra
    assert after == full


def _run_id(run_dir):
    with Archive(run_dir / "archive.db") as archive:
        return archive.runs()[-1]["run"]


# --------------------------------------------------------------------------- unit-level
def test_cheap_metrics_are_called_once_per_batch_on_genomes():
    from evo_nas.costs import CostModel
    from evo_nas.spaces.mobilenet import get_spec

    space = get_spec("tiny").space()
    costs = CostModel(space)
    calls = {"configs": 0, "genomes": 0}
    real = costs.batch_genomes

    def counted(X):
        calls["genomes"] += 1
        return real(X)

    costs.batch_genomes = counted
    seen = []

    def error(configs):
        seen.append(len(configs))
        return [1.0] * len(configs)

    problem = NASProblem(space, {"error": error, "flops": costs}, metrics={"params": costs})
    X = space.sample(20, np.random.default_rng(0))
    recs = problem.measure(np.vstack([X, X[:5]]))
    assert calls["genomes"] == 1 and seen == [1] * len({space.key(r) for r in space.canonical(X)})
    want = costs([space.decode(r) for r in space.canonical(X)])
    assert [r["flops"] for r in recs[:20]] == list(want["flops"])
    assert problem.n_real == len(seen)


def test_a_failing_cheap_batch_fails_only_its_own_architectures():
    from evo_nas.space import Choice, SearchSpace

    space = SearchSpace([Choice(f"g{i}", (0, 1, 2)) for i in range(3)], name="toy3")

    def cost(configs):
        if any(c["g0"] == 2 for c in configs):
            raise RuntimeError("no table entry")
        return [float(sum(c.values())) for c in configs]

    cost.cheap = True
    problem = NASProblem(space, {"error": lambda cs: [1.0] * len(cs), "cost": cost})
    problem.measure(np.array([[0, 1, 1], [2, 0, 0], [1, 1, 1]]))
    assert [r["status"] for r in problem.history] == ["ok", "failed", "ok"]
    assert problem.history[1]["fault"] == "RuntimeError: no table entry"


def _suicide(x):
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 10


def test_loky_executor_retries_once_then_reports_the_dead_task():
    ex = LokyExecutor(2)
    try:
        out = dict(ex.run(_suicide, [(i,) for i in range(6)]))
    finally:
        ex.close()
    assert isinstance(out.pop(3), WorkerDied)
    assert out == {i: i * 10 for i in range(6) if i != 3}


def _worker_state():
    import dask

    from evo_nas import parallel

    return (dict(parallel._WORKER), {k: os.environ.get(k) for k in parallel.MALLOC_ENV},
            dask.config.get("distributed.worker.memory.pause", None))


@pytest.mark.parametrize("backend", ["loky", "dask"])
def test_workers_know_their_rank_and_threads_and_reuse_freed_memory(backend):
    """A Dask worker's rank was lost (its setup plugin, pickled by value, set a copy of the
    module state); workers start with MALLOC_ENV (see steady_allocator), and a local Dask
    worker is not paused for the memory it keeps."""
    from evo_nas.parallel import MALLOC_ENV

    driver_env = dict(os.environ)
    ex = make_executor(backend, workers=1)
    try:
        [(_, (state, env, pause))] = list(ex.run(_worker_state, [()]))
        assert dict(os.environ) == driver_env  # the nannies' worker settings are not left here
    finally:
        ex.close()
    assert state["rank"] == 0 and state["threads"] == 1
    assert env == MALLOC_ENV
    assert state["allocator"].startswith("glibc malloc") and "MALLOC_MMAP_MAX_=0" in state[
        "allocator"], state["allocator"]
    if backend == "dask":
        assert pause is False


def _pid_holding(mb):
    """This worker's pid, after growing its resident size by ``mb`` MB that it keeps."""
    if mb:  # kept by a module (this function's globals are a copy per call: pickled by value)
        sys.__dict__.setdefault("_evo_nas_test_kept", []).append(b"\x01" * (mb << 20))
        time.sleep(1.2)  # past loky's 1 s between leak checks
    return os.getpid()


def test_a_loky_worker_that_keeps_memory_is_not_replaced():
    """loky replaces a worker grown 300 MB since its first task (its leak guard); an evaluation
    worker would then load its checkpoint and data again, mid-batch."""
    ex = LokyExecutor(1)
    try:
        pids = [dict(ex.run(_pid_holding, [(mb,)]))[0] for mb in (0, 400, 0, 0)]
    finally:
        ex.close()
    assert len(set(pids)) == 1, pids


def test_steady_allocator_can_be_turned_off():
    code = "from evo_nas.parallel import steady_allocator as s; print(s()); print(s())"
    for value, want in (("system", "system default (EVO_NAS_MALLOC=system)"),
                        ("", "glibc malloc: MALLOC_ARENA_MAX=1")):
        env = {**os.environ, "EVO_NAS_MALLOC": value}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, check=True).stdout.splitlines()
        if value or sys.platform.startswith("linux"):
            assert out[0].startswith(want) and out[1] == out[0], out


def test_local_dask_binds_loopback_only_and_bad_settings_fail():
    from evo_nas.errors import ConfigError

    ex = make_executor("dask", workers=1)
    try:
        addr = ex.client.scheduler.address
        assert addr.startswith("tcp://127.0.0.1:")
        assert all(w.startswith("tcp://127.0.0.1:") for w in ex.client.scheduler_info()["workers"])
        import psutil

        me = psutil.Process()
        listening = [c.laddr.ip for proc in (me, *me.children(recursive=True))
                     for c in proc.net_connections(kind="inet") if c.status == "LISTEN"]
        assert listening and set(listening) <= {"127.0.0.1"}, listening
    finally:
        ex.close()
    with pytest.raises(ConfigError, match="search.backend"):
        make_executor("ray")
    with pytest.raises(ConfigError, match="needs --backend dask"):
        make_executor("loky", 2, scheduler="tcp://10.0.0.1:8786")


# --------------------------------------------------------------------------- proxies, latency
def _proxy_run(setup, db, backend, workers):
    """An ``nwot, flops`` search as ``evo-nas search`` builds it: (archive rows, pickled size of
    the proxy metric as a task carries it)."""
    import pickle

    from evo_nas.config import load_config
    from evo_nas.pipeline import build_problem, evaluation_executor, load_run_data
    from evo_nas.train import load_checkpoint

    path, _ = setup
    cfg = load_config({"preset": "tiny", "eval": dict(EVAL),
                       "search": {"pop_size": POP, "generations": GENS, "backend": backend,
                                  "workers": workers, "objectives": ["nwot", "flops"]}})
    net, _ = load_checkpoint(path)
    problem = build_problem(net, load_run_data(cfg), cfg)
    problem.executor = evaluation_executor(cfg, path, problem)
    size = len(pickle.dumps(problem.metrics["nwot"]))
    try:
        with Archive(db) as archive:
            problem.attach(archive, "r", scope="s")
            search(problem, pop_size=POP, generations=GENS, seed=SEED)
    finally:
        if problem.executor is not None:
            problem.executor.close()
    return rows_of(db), size


def test_zero_cost_proxies_reach_workers_as_a_spec_with_the_same_values(setup, tmp_path):
    serial, whole = _proxy_run(setup, tmp_path / "s.db", "serial", 1)
    rows, spec = _proxy_run(setup, tmp_path / "l.db", "loky", 2)
    assert rows == serial and len(rows) > POP  # same genomes, order and proxy values
    assert all(status == "ok" for _, status, _ in rows)
    assert spec < 2000 < whole  # a task carries the small spec, not the supernet and images


def test_measured_latency_is_refused_on_parallel_workers(setup):
    from evo_nas.errors import ConfigError
    from evo_nas.latency import MeasuredLatency
    from evo_nas.pipeline import evaluation_executor

    path, cfg = setup
    problem, _ = build(setup)  # serial: nothing started
    problem.metrics["latency"] = MeasuredLatency("tiny")
    cfg.search.backend, cfg.search.workers = "loky", 2
    with pytest.raises(ConfigError, match="search.backend = 'loky': latency is measured"):
        evaluation_executor(cfg, path, problem)
