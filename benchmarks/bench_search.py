"""Search that needs few real evaluations, measured on NAS-Bench-201 (CIFAR-10).

1. Hypervolume against the number of real evaluations (budget 300) for surrogate-assisted
   NSGA-II, plain NSGA-II, regularized evolution and random search, on accuracy vs FLOPs and
   accuracy vs Raspberry Pi 4 latency; medians over seeds.
2. Predictor Kendall tau against training-set size (25, 50, 100, 200 random architectures, tested
   on all others) for every built-in predictor; medians over 3 seeds.

HV is pymoo's indicator on (test error %, cost), normalised with ideal = the true front's minimum
and nadir = (20 % error, the true front's maximum cost), reference point (1.1, 1.1); points beyond
it count nothing. Reported as a fraction of the true front's HV (found by enumerating the table).

Latency is measured, so by default the surrogate *predicts* it (only the 300 evaluated
architectures' latencies are known). The ``surrogate_lut`` rows treat raspi4 latency as a cheap
lookup table (NSGANetV2's setting: latency from a LUT, accuracy predicted), which is also shown.

    python benchmarks/bench_search.py [--quick] [--data PATH] [--seeds N] [--replot]

Writes benchmarks/results/search.json and benchmarks/results/search_hv.png.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import warnings
from importlib import metadata
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrices: BLAS threads only contend

import numpy as np  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from evo_nas.algorithms import RegularizedEvolution  # noqa: E402
from evo_nas.algorithms.surrogate import hypervolume  # noqa: E402
from evo_nas.predictors import PREDICTORS, kendall_tau, make_predictor  # noqa: E402
from evo_nas.search import search  # noqa: E402
from problems.tabular import TabularProblem, default_nb201_path, load_nb201  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
COSTS = {"flops": "accuracy vs FLOPs", "latency_raspi4": "accuracy vs raspi4 latency"}
METHODS = ("surrogate", "surrogate_lut", "nsga2", "regularized", "random")
TRAIN_SIZES = (25, 50, 100, 200)


# --------------------------------------------------------------------------- HV bookkeeping
def hv_scale(problem: TabularProblem, cost: str) -> tuple[np.ndarray, np.ndarray, float]:
    front = problem.true_front(["error", cost])
    T = np.array([[r["error"], r[cost]] for r in front])
    ideal = T.min(axis=0)
    nadir = np.array([20.0, T[:, 1].max()])
    return ideal, nadir, hypervolume(T, ideal, nadir)


def hv_curve(problem: TabularProblem, cost: str, checkpoints: list[int]) -> list[float]:
    """HV ratio of the first n real evaluations, for each checkpoint n."""
    ideal, nadir, true_hv = hv_scale(problem, cost)
    F = np.array([[h["error"], h[cost]] for h in problem.history], dtype=float)
    return [hypervolume(F[:n], ideal, nadir) / true_hv for n in checkpoints]


# --------------------------------------------------------------------------- the methods
def run_pymoo(problem: TabularProblem, algo, budget: int, seed: int) -> None:
    """Run a pymoo algorithm (a name or an object) for exactly ``budget`` real evaluations."""
    search(problem, algo, pop_size=20, budget=budget, seed=seed)


def run_method(method: str, data: Path, cost: str, budget: int, seed: int) -> TabularProblem:
    cheap = ("flops", "params") + ((cost,) if method == "surrogate_lut" else ())
    problem = load_nb201(data, objectives=("error", cost), cheap=cheap)
    if method.startswith("surrogate"):
        search(problem, "surrogate", pop_size=20, budget=budget, seed=seed)  # 20 per round
    elif method == "nsga2":
        run_pymoo(problem, "nsga2", budget, seed)
    elif method == "regularized":
        algo = RegularizedEvolution(problem.space, pop_size=20, sample_size=5, n_offsprings=5)
        run_pymoo(problem, algo, budget, seed)
    elif method == "random":
        rng = np.random.default_rng(seed)
        seen: dict[bytes, np.ndarray] = {}
        while len(seen) < budget:
            for row in problem.space.sample(budget, rng):
                if len(seen) < budget:
                    seen.setdefault(row.tobytes(), row)
        problem.measure(np.stack(list(seen.values())))
    else:
        raise ValueError(method)
    assert problem.n_real == budget, (method, problem.n_real)  # budgets are exact now
    return problem


def bench_hv(data: Path, seeds: list[int], budget: int, methods: list[str]) -> dict:
    checkpoints = list(range(25, budget + 1, 25))
    out: dict = {}
    for cost in COSTS:
        out[cost] = {"checkpoints": checkpoints}
        for method in methods:
            if method == "surrogate_lut" and cost == "flops":
                continue  # FLOPs are cheap already: identical to "surrogate"
            t0 = time.perf_counter()
            curves = []
            for seed in seeds:
                problem = run_method(method, data, cost, budget, seed)
                curves.append(hv_curve(problem, cost, checkpoints))
            C = np.array(curves)
            out[cost][method] = {
                "median": np.median(C, axis=0).round(5).tolist(),
                "q25": np.percentile(C, 25, axis=0).round(5).tolist(),
                "q75": np.percentile(C, 75, axis=0).round(5).tolist(),
                "final_per_seed": C[:, -1].round(5).tolist(),
                "seconds_per_run": round((time.perf_counter() - t0) / len(seeds), 2),
            }
            print(f"{cost:>15} {method:>13}: median HV ratio at {budget} evals = "
                  f"{np.median(C[:, -1]):.4f} (min {C[:, -1].min():.4f}, "
                  f"{out[cost][method]['seconds_per_run']} s/run)", flush=True)
    return out


def bench_tau(data: Path, seeds: list[int], sizes: tuple[int, ...], names: list[str]) -> dict:
    problem = load_nb201(data)
    X, y = problem.genomes, problem.values["error"]
    out: dict = {"sizes": list(sizes), "features": "one-hot + option counts + NB201 cell graph"}
    for name in names:
        taus, secs = [], []
        for n in sizes:
            per = []
            for seed in seeds:
                idx = np.random.default_rng(seed).permutation(len(X))
                model = make_predictor(name, problem.space, features=problem.features,
                                       random_state=seed)
                t0 = time.perf_counter()
                model.fit(X[idx[:n]], y[idx[:n]])
                secs.append(time.perf_counter() - t0)
                per.append(kendall_tau(y[idx[n:]], model.predict(X[idx[n:]])))
            taus.append(round(float(np.median(per)), 4))
        out[name] = {"kendall_tau": taus, "fit_seconds_median": round(float(np.median(secs)), 3)}
        print(f"tau {name:>13}: " + "  ".join(f"n={n}: {t:.3f}" for n, t in
                                               zip(sizes, taus, strict=True)), flush=True)
    onehot = []  # the baseline the cell features improve on: the default on one-hot alone
    for seed in seeds:
        idx = np.random.default_rng(seed).permutation(len(X))
        m = make_predictor("default", problem.space, encoding="onehot", random_state=seed)
        m.fit(X[idx[:100]], y[idx[:100]])
        onehot.append(kendall_tau(y[idx[100:]], m.predict(X[idx[100:]])))
    out["default_onehot_only_n100"] = round(float(np.median(onehot)), 4)
    return out


# --------------------------------------------------------------------------- report
def machine() -> dict:
    pkgs = ("numpy", "scipy", "scikit-learn", "pymoo", "deap", "matplotlib")
    return {"platform": platform.platform(), "processor": platform.processor() or
            platform.machine(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
            "versions": {p: metadata.version(p) for p in pkgs}}


def plot(doc: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.6))
    styles = {"surrogate": ("C3", "surrogate NSGA-II"),
              "surrogate_lut": ("C1", "surrogate NSGA-II, latency LUT"),
              "nsga2": ("C0", "NSGA-II"), "regularized": ("C2", "regularized evolution"),
              "random": ("0.4", "random search")}
    for ax, (cost, title) in zip(axes[:2], COSTS.items(), strict=True):
        res = doc["hv"][cost]
        x = res["checkpoints"]
        for m, (c, label) in styles.items():
            if m in res:
                ax.plot(x, res[m]["median"], c=c, label=label)
                ax.fill_between(x, res[m]["q25"], res[m]["q75"], color=c, alpha=0.15)
        ax.axhline(0.995, ls="--", c="k", lw=0.8, label="0.995 of true front")
        ax.set_ylim(0.9, 1.0)
        ax.set_xlabel("real evaluations")
        ax.set_ylabel("HV / HV(true front)")
        ax.set_title(f"NB201 {title} (median, IQR; {doc['n_seeds']} seeds)")
        ax.legend(fontsize=7, loc="lower right")
    ax = axes[2]
    tau = doc["tau"]
    for name in PREDICTORS:
        if name in tau:
            ax.plot(tau["sizes"], tau[name]["kendall_tau"], marker="o", label=name)
    ax.axhline(0.6, ls="--", c="k", lw=0.8)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(tau["sizes"], [str(s) for s in tau["sizes"]])
    ax.set_xlabel("training architectures")
    ax.set_ylabel("Kendall tau on all others")
    ax.set_title("predictors on NB201 CIFAR-10 accuracy")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summarize(hv: dict, tau: dict) -> dict:
    """Top-level figures for tracking across versions: final median HV ratio per table and
    method (at the full budget), and the default predictor's tau at 100 architectures."""
    out: dict = {f"hv_{table}": {m: v["median"][-1] for m, v in rows.items()
                                 if isinstance(v, dict)} for table, rows in hv.items()}
    sizes = tau.get("sizes", [])
    if "default" in tau and 100 in sizes:
        out["default_predictor_tau_100"] = tau["default"]["kendall_tau"][sizes.index(100)]
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=default_nb201_path())
    ap.add_argument("--seeds", type=int, default=10, help="seeds per method (>= 5)")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--quick", action="store_true", help="2 seeds, budget 100, fewer predictors")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--replot", action="store_true", help="redraw the PNG from the saved JSON")
    args = ap.parse_args(argv)
    name = "search_quick" if args.quick else "search"
    if args.replot:
        doc = json.loads((args.out / f"{name}.json").read_text())
        print(f"wrote {plot(doc, args.out / f'{name}_hv.png')}")
        return
    seeds = list(range(2 if args.quick else args.seeds))
    budget = 100 if args.quick else args.budget
    names = ["default", "rf", "gb"] if args.quick else list(PREDICTORS)
    t0 = time.perf_counter()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # GP noise bound at 25 points
    with threadpool_limits(1):
        hv = bench_hv(args.data, seeds, budget, list(METHODS))
        tau = bench_tau(args.data, [0, 1, 2][: 1 if args.quick else 3],
                        (25, 50) if args.quick else TRAIN_SIZES, names)
    doc = {
        "what": "NB201 CIFAR-10: HV ratio to the true front vs real evaluations; predictor "
                "Kendall tau vs training-set size",
        "command": "python benchmarks/bench_search.py" + (" --quick" if args.quick else ""),
        "budget": budget, "n_seeds": len(seeds), "seeds": seeds,
        "hv_definition": "pymoo HV on (test error %, cost); ideal = true front minimum, nadir = "
                         "(20 % error, true front max cost); reference (1.1, 1.1)",
        "methods": {
            "surrogate": "SurrogateAssistedSearch defaults: 50 random initial, batches of 20 "
                         "(30 % single-gene neighbours of the real front), default predictor "
                         "(GB on log target, one-hot + counts + NB201 cell features); "
                         "error and latency predicted, FLOPs exact",
            "surrogate_lut": "as surrogate, with raspi4 latency a cheap lookup (not predicted)",
            "nsga2": "evo-nas make_nsga2, pop 20",
            "regularized": "RegularizedEvolution pop 20, tournament 5, 5 children/generation, "
                           "Pareto-rank tournaments (the default)",
            "random": "distinct uniform random architectures",
        },
        "summary": summarize(hv, tau), "hv": hv, "tau": tau, "machine": machine(),
        "seconds_total": round(time.perf_counter() - t0, 1),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(doc, indent=2))
    png = plot(doc, args.out / f"{name}_hv.png")
    print(f"wrote {args.out / f'{name}.json'} and {png} in {doc['seconds_total']} s")


if __name__ == "__main__":
    main()
