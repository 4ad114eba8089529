"""Parallel evaluation: supernet evaluations per second with 1 and 2 workers (loky, Dask), and
the framework's per-evaluation overhead against raw pymoo NSGA-II on a zero-cost problem.

    python benchmarks/bench_parallel.py            # the measurement (quiet 2-core machine)
    python benchmarks/bench_parallel.py --quick    # a smoke run: tiny sizes, figures meaningless

Writes ``benchmarks/results/parallel.json`` (``--out``) with a top-level ``summary``:
``speedup_loky_2`` / ``speedup_dask_2`` (evaluations/s with 2 workers over 1 worker of the same
backend, one torch thread per worker), ``overhead_vs_pymoo`` (seconds per evaluation of
``evo_nas.search``'s default steady-state NSGA-II over raw pymoo's generational one, same
problem), ``overhead_generational_vs_pymoo`` (the same with evo-nas NSGA-II generational, as
pymoo's) and ``gpu_evals_per_s`` (null without CUDA). Supernet: the ``cifar`` preset at its
seeded initial weights (an evaluation costs the same whatever the weights: BN re-calibration +
validation) on the real CIFAR-10 subset (``--data``, else ``$EVO_NAS_CIFAR_NPZ``, else
``$EVO_NAS_DATA/cifar10-subset``; none of them, or a missing file: a one-line exit naming the
flag and the variables). Each setting is timed on fresh architectures after a warm-up batch that
starts the workers and loads the checkpoint and data in each, as a search does once.
Per setting it also records the mean seconds an evaluation took inside its process (so the rest
of the wall time is transfer and scheduling), the round trip of an empty task, the malloc
settings and resident size of each evaluating process (see ``evo_nas.parallel.steady_allocator``)
and the load average; the summary adds one worker's rate over in-process serial.
``EVO_NAS_MALLOC=system`` measures with the system allocator instead.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# ----------------------------------------------------------------------------- overhead
class _Sum:
    """A zero-cost vectorised metric: ``sum(w * genes)`` of the genome matrix."""

    cheap = True

    def __init__(self, weights: np.ndarray, square: bool) -> None:
        self.w, self.square = weights, square

    def batch_genomes(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=float)
        return ((3 - X) ** 2 if self.square else X) @ self.w

    def __call__(self, configs: list[dict]) -> np.ndarray:
        return self.batch_genomes(np.array([list(c.values()) for c in configs]))


def overhead(pop: int, gens: int, n_var: int = 30, repeats: int = 3) -> dict:
    """Seconds per evaluation: evo_nas.search (NASProblem, its operators) vs raw pymoo NSGA-II
    (IntegerRandomSampling, SBX + PM with rounding, duplicate elimination) on the same metrics.

    evo-nas NSGA-II runs twice: as a user gets it (steady-state, ``pop // 4`` children per
    generation, so survival runs four times as often per evaluation) and in the generational
    form pymoo's is (``n_offsprings = pop``, binary tournaments), which isolates the framework
    from the algorithm's own bookkeeping. Each repeat times the three back to back."""
    from pymoo.algorithms.moo.nsga2 import NSGA2
    from pymoo.core.problem import Problem
    from pymoo.operators.crossover.sbx import SBX
    from pymoo.operators.mutation.pm import PM
    from pymoo.operators.repair.rounding import RoundingRepair
    from pymoo.operators.sampling.rnd import IntegerRandomSampling
    from pymoo.optimize import minimize

    from evo_nas.search import search
    from evo_nas.space import Choice, SearchSpace
    from problems import NASProblem

    w = np.linspace(1.0, 2.0, n_var)
    f1, f2 = _Sum(w, False), _Sum(w, True)
    space = SearchSpace([Choice(f"g{i}", (0, 1, 2, 3)) for i in range(n_var)], name="zero")

    class Raw(Problem):
        def __init__(self) -> None:
            super().__init__(n_var=n_var, n_obj=2, xl=0, xu=3, vtype=int)

        def _evaluate(self, X, out, *args, **kwargs) -> None:
            out["F"] = np.column_stack([f1.batch_genomes(X), f2.batch_genomes(X)])

    def ours(r: int, options: dict) -> tuple[float, int]:
        problem = NASProblem(space, {"a": f1, "b": f2})
        t0 = time.perf_counter()
        search(problem, "nsga2", pop_size=pop, generations=gens, seed=r, options=options)
        n = max(len(problem.history), 1)
        return (time.perf_counter() - t0) / n, n

    default, generational, raw, n_eval = [], [], [], {}
    for r in range(repeats):
        t, n_eval["default"] = ours(r, {})
        default.append(t)
        t, n_eval["generational"] = ours(r, {"n_offsprings": pop, "tournament_size": 2})
        generational.append(t)
        algo = NSGA2(pop_size=pop, sampling=IntegerRandomSampling(),
                     crossover=SBX(prob=0.9, eta=15, vtype=float, repair=RoundingRepair()),
                     mutation=PM(eta=20, vtype=float, repair=RoundingRepair()),
                     eliminate_duplicates=True)
        t0 = time.perf_counter()
        res = minimize(Raw(), algo, ("n_gen", gens), seed=r, verbose=False)
        n_eval["pymoo"] = max(res.algorithm.evaluator.n_eval, 1)
        raw.append((time.perf_counter() - t0) / n_eval["pymoo"])
    med = {k: float(np.median(v)) for k, v in
           (("default", default), ("generational", generational), ("pymoo", raw))}
    return {"pop_size": pop, "generations": gens, "n_var": n_var, "repeats": repeats,
            "evaluations_last_repeat": n_eval,
            "ours_s_per_eval": med["default"],
            "ours_generational_s_per_eval": med["generational"],
            "pymoo_s_per_eval": med["pymoo"],
            "ratio": med["default"] / med["pymoo"],
            "ratio_generational": med["generational"] / med["pymoo"]}


# ----------------------------------------------------------------------------- supernet
def _noop() -> int:
    return 0


def _process_state() -> tuple[int, str | None]:
    """(resident MB, malloc settings) of the process that runs this."""
    from evo_nas.parallel import _WORKER

    with open("/proc/self/statm") as f:
        rss = int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") >> 20
    return rss, _WORKER["allocator"]


def supernet_rates(data_path: Path, n: int, calib: int, eval_images: int,
                   settings: list[tuple[str, int]], device: str = "cpu") -> dict:
    """Evaluations/s of ``n`` fresh architectures per (backend, workers), after a warm-up."""
    import torch

    from evo_nas.config import load_config
    from evo_nas.nn.protocol import supernet_from_preset
    from evo_nas.pipeline import build_problem, evaluation_executor, load_run_data
    from evo_nas.train import save_checkpoint

    tmp = Path(tempfile.mkdtemp(prefix="bench-parallel-"))
    torch.manual_seed(0)
    ckpt = save_checkpoint(tmp / "supernet.pt", supernet_from_preset("cifar"))
    cfg = load_config({"preset": "cifar", "device": device, "runs_dir": str(tmp),
                       "data": {"dataset": "npz", "path": str(data_path)},
                       "eval": {"calib_images": calib, "eval_images": eval_images}})
    data = load_run_data(cfg)
    out = {}
    for backend, workers in settings:
        cfg.search.backend, cfg.search.workers, cfg.search.worker_threads = backend, workers, 1
        from evo_nas.train import load_checkpoint

        net, _ = load_checkpoint(ckpt)
        problem = build_problem(net, data, cfg)
        problem.executor = evaluation_executor(cfg, Path(ckpt), problem)
        space = problem.space
        X = space.canonical(space.sample(n * 4 + 8, np.random.default_rng(1)))
        X = X[np.unique([space.key(x) for x in X], return_index=True)[1]]
        X = X[np.random.default_rng(2).permutation(len(X))]
        warm, timed = X[:max(workers, 1) * 2], X[-n:]
        ex = problem.executor
        try:
            t0 = time.perf_counter()
            problem.measure(warm)
            t_warm = time.perf_counter() - t0
            load0 = os.getloadavg()
            t0 = time.perf_counter()
            recs = problem.measure(timed)
            seconds = time.perf_counter() - t0
            inside = [h["seconds"] for h in problem.history[-n:]]
            noop_ms, processes = None, [_process_state()]
            if ex is not None:
                t0 = time.perf_counter()
                for _ in range(20):
                    list(ex.run(_noop, [()]))
                noop_ms = (time.perf_counter() - t0) / 20 * 1e3
                processes = [r for _, r in ex.run(_process_state, [()] * workers)]
        finally:
            if ex is not None:
                ex.close()
        failed = sum(not np.isfinite(r["error"]) for r in recs)
        out[f"{backend}_{workers}"] = {
            "backend": backend, "workers": workers, "evaluations": n, "seconds": seconds,
            "evals_per_s": n / seconds, "warmup_seconds": t_warm, "failed": failed,
            "mean_eval_seconds_inside": float(np.mean(inside)), "noop_task_ms": noop_ms,
            "evaluating_processes": [{"rss_mb": r, "allocator": a} for r, a in processes],
            "driver_torch_threads": torch.get_num_threads(),
            "loadavg_before": load0, "loadavg_after": os.getloadavg()}
        print(f"{backend} x{workers}: {n / seconds:.3f} evals/s ({seconds:.1f} s, "
              f"{np.mean(inside):.2f} s each inside, warm-up {t_warm:.1f} s, "
              f"load {load0[0]:.2f})", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run only")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "parallel.json"))
    ap.add_argument("--n", type=int, default=12, help="timed architectures per setting")
    ap.add_argument("--calib", type=int, default=100, help="BN calibration images")
    ap.add_argument("--eval-images", type=int, default=300, help="validation images scored")
    ap.add_argument("--data", help="the CIFAR-10 subset: cifar10_subset.npz or its folder "
                                   "(default $EVO_NAS_CIFAR_NPZ, else "
                                   "$EVO_NAS_DATA/cifar10-subset)")
    args = ap.parse_args()
    from evo_nas.data_paths import CIFAR_ENV, CIFAR_FILE, CIFAR_FOLDER, resolve_data_path
    from evo_nas.errors import DataError
    from evo_nas.machine import machine_info

    try:
        data_path = resolve_data_path(args.data, "--data", CIFAR_ENV, CIFAR_FILE, CIFAR_FOLDER,
                                      what="CIFAR-10 subset")
    except DataError as e:
        sys.exit(f"bench_parallel: {e}")
    import torch

    torch.set_num_threads(1)
    # defaults: ~7 s per evaluation on one core (cifar preset), so the run takes ~8 minutes;
    # 500 calibration + 932 images cost 26 s per evaluation and ~50 minutes in all
    n, calib, ev = (4, 32, 64) if args.quick else (args.n, args.calib, args.eval_images)
    settings = [("serial", 1), ("loky", 1), ("loky", 2), ("dask", 1), ("dask", 2)]
    t_start = time.time()
    rates = supernet_rates(data_path, n, calib, ev, settings)
    over = overhead(*((40, 5) if args.quick else (100, 50)), repeats=1 if args.quick else 3)
    print(f"overhead vs pymoo: {over['ratio']:.3f} (default, steady-state), "
          f"{over['ratio_generational']:.3f} (generational)", flush=True)
    gpu = None
    if torch.cuda.is_available():
        gpu = supernet_rates(data_path, n, calib, ev, [("serial", 1)],
                             device="cuda")["serial_1"]
    r = {k: v["evals_per_s"] for k, v in rates.items()}
    summary = {"speedup_loky_2": r["loky_2"] / r["loky_1"],
               "speedup_dask_2": r["dask_2"] / r["dask_1"],
               "loky_1_over_serial": r["loky_1"] / r["serial_1"],
               "dask_1_over_serial": r["dask_1"] / r["serial_1"],
               "serial_evals_per_s": r["serial_1"],
               "overhead_vs_pymoo": over["ratio"],
               "overhead_generational_vs_pymoo": over["ratio_generational"],
               "gpu_evals_per_s": None if gpu is None else gpu["evals_per_s"],
               "malloc": os.environ.get("EVO_NAS_MALLOC") or "evo-nas default",
               "quick": args.quick, "loadavg_at_end": os.getloadavg(),
               "cpu_count": os.cpu_count()}
    result = {"summary": summary, "supernet": {"preset": "cifar", "data": data_path.name,
                                               "calib_images": calib, "eval_images": ev,
                                               "threads_per_worker": 1, "rates": rates},
              "overhead": over, "gpu": gpu, "machine": machine_info(),
              "wall_seconds": time.time() - t_start}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
