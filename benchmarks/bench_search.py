"""Search that needs few real evaluations, on NAS-Bench-201 (CIFAR-10) as a user defines it.

The space is the user's own: six genes ``op0..op5`` whose options are the CSV's op codes 0..4,
read with ``TabularProblem.from_csv`` -- no ``features=`` -- plus the one-line declaration
``cell=CellGraph(edges, zero=0)`` (``bench_predictor.user_problem``). The cost is a cheap column.

1. Hypervolume against the number of real evaluations (exactly 300) on all five NB201 problems,
   test error vs FLOPs and vs each HW-NAS-Bench latency (pixel3, raspi4, eyeriss, fpga), for:
   surrogate-assisted NSGA-II (``search(p, "surrogate")``, defaults), the same on the plain genes
   (no cell declaration: the default predictor infers the graph from its training rows), the
   plain genes with that inference off (``infer_cell=False``), evo-nas NSGA-II, pymoo's default
   integer NSGA-II (``bench_operators.pymoo_nsga2``: integer sampling, SBX + PM eta 3, rounded),
   regularized evolution, tournament evolution and random search; the same 10 seeds for every
   method, medians and quartiles.
2. Predictor Kendall tau against training-set size (25, 50, 100, 200 random architectures, tested
   on all others) on the same user-defined space: the default predictor on the plain genes (with
   and without cell inference) and with the declared cell, and a few built-ins with the declared
   cell; medians over 3 seeds.

3. evo-nas NSGA-II against pymoo's on 100 paired seeds (mean difference and standard error):
   at 10 seeds two methods this close are ordered by chance.
4. The twin-free ceiling of each problem: NB201 lists each cell's dead-edge twins (the same
   network: they differ only in ops that never reach the output) as separately trained rows, and
   the true front keeps the luckiest. Evaluating every one of the 9,445 functions once, through a
   random twin, reaches this HV ratio (median of 20 draws); a score above it is training noise
   between identical networks, harvested by re-evaluating twins.
5. Where each run's shortfall lies (medians per method): the HV ratio it would gain from the
   true-front rows of networks it never evaluated, and from those it missed only through the
   draw of dead-edge twins (it evaluated the same network via another twin).
   NSGA-II rows also give the crossover rate the runs learnt (``info["crossover_rate"]``).

HV is pymoo's indicator on (test error %, cost), normalised with ideal = the true front's minimum
and nadir = (20 % error, the true front's maximum cost), reference point (1.1, 1.1); points beyond
it count nothing. Reported as a fraction of the true front's HV (found by enumerating the table).

    OMP_NUM_THREADS=1 python benchmarks/bench_search.py [--quick] [--data PATH] [--seeds N]
        [--paired-seeds N] [--replot]

Writes benchmarks/results/search.json (top-level ``summary``) and search_hv.png
(``--quick``: search_quick.*).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # small matrices: BLAS threads only contend

import numpy as np  # noqa: E402
from bench_operators import pymoo_nsga2  # noqa: E402
from bench_predictor import COSTS, user_problem  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from evo_nas.algorithms.surrogate import hypervolume  # noqa: E402
from evo_nas.cell import dead_edges  # noqa: E402
from evo_nas.data_paths import resolve_nb201_path  # noqa: E402
from evo_nas.errors import DataError  # noqa: E402
from evo_nas.machine import machine_info  # noqa: E402
from evo_nas.predictors import kendall_tau, make_predictor  # noqa: E402
from evo_nas.search import search  # noqa: E402
from evo_nas.space import SearchSpace  # noqa: E402
from problems.tabular import TabularProblem  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
PROBLEMS = tuple(COSTS)  # flops, latency_pixel3, latency_raspi4, latency_eyeriss, latency_fpga
PLOTTED = ("flops", "latency_raspi4")
METHODS = ("surrogate", "surrogate_plain_genes", "surrogate_plain_no_inference", "nsga2",
           "pymoo_nsga2", "regularized", "tournament", "random")
QUICK_METHODS = ("surrogate", "nsga2", "pymoo_nsga2", "random")
TRAIN_SIZES = (25, 50, 100, 200)
BUILTINS = ("gb_log", "rf", "ridge", "gp")  # with the declared cell, beside the default
HV_TARGET, TAU_TARGET = 0.995, 0.75


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
def run_method(method: str, data: Path, cost: str, budget: int, seed: int
               ) -> tuple[TabularProblem, dict]:
    """One run of ``method`` for exactly ``budget`` distinct real evaluations: the problem (its
    history) and the search result's ``info`` (empty for random search)."""
    problem = user_problem(data, cost, cell=not method.startswith("surrogate_plain"))
    info: dict = {}
    if method in ("surrogate", "surrogate_plain_genes"):
        info = search(problem, "surrogate", pop_size=20, budget=budget, seed=seed).info
    elif method == "surrogate_plain_no_inference":  # the plain default before cell inference
        info = search(problem, "surrogate", pop_size=20, budget=budget, seed=seed,
                      options={"predictor": make_predictor(space=problem.space, random_state=seed,
                                                           infer_cell=False)}).info
    elif method == "pymoo_nsga2":
        info = search(problem, pymoo_nsga2(pop_size=20), budget=budget, seed=seed).info
    elif method in ("nsga2", "regularized", "tournament"):
        info = search(problem, method, pop_size=20, budget=budget, seed=seed).info
    elif method == "random":
        rng = np.random.default_rng(seed)
        space = problem.space
        seen: dict[bytes, np.ndarray] = {}
        while len(seen) < budget:
            for row in space.canonical(space.sample(budget, rng)):
                if len(seen) < budget:
                    seen.setdefault(row.tobytes(), row)
        problem.measure(np.stack(list(seen.values())))
    else:
        raise ValueError(method)
    assert problem.n_real == budget, (method, problem.n_real)  # budgets are exact
    return problem, info


def networks(space: SearchSpace, X: np.ndarray) -> np.ndarray:
    """Genomes with their dead edges blanked (-1): rows that are equal are the same network."""
    return np.where(dead_edges(space, X), -1, X)


def shortfall(problem: TabularProblem, cost: str, budget: int, cell_space: SearchSpace
              ) -> tuple[float, float]:
    """Where a run's HV shortfall lies: the HV ratio it would gain if the true-front rows of
    networks it never evaluated were added to what it found, and if the true-front rows it
    missed only by evaluating another of the same network's dead-edge twins were added (twins
    differ by training noise alone: the lucky draw). ``cell_space`` declares the cell (the run's
    own space may not), to tell which rows are the same network."""
    ideal, nadir, true_hv = hv_scale(problem, cost)
    H = problem.history[:budget]
    F = np.array([[h["error"], h[cost]] for h in H], dtype=float)
    front = problem.true_front(["error", cost])
    T = np.array([[r["error"], r[cost]] for r in front])

    def keys(X: list) -> list[bytes]:
        return [r.tobytes() for r in networks(cell_space, np.asarray(X, dtype=np.int64))]

    seen = set(keys([h["genome"] for h in H]))
    missed = [i for i in range(len(T)) if not np.any(np.all(F <= T[i], axis=1))]
    kinds = keys([front[i]["genome"] for i in missed]) if missed else []
    base = hypervolume(F, ideal, nadir)

    def gain(rows: list[int]) -> float:
        return (hypervolume(np.vstack([F, T[rows]]), ideal, nadir) - base) / true_hv \
            if rows else 0.0

    return (gain([i for i, k in zip(missed, kinds, strict=True) if k not in seen]),
            gain([i for i, k in zip(missed, kinds, strict=True) if k in seen]))


def bench_hv(data: Path, seeds: list[int], budget: int, methods: list[str],
             problems: list[str]) -> dict:
    checkpoints = sorted({*range(25, budget + 1, 25), budget})
    out: dict = {}
    for cost in problems:
        out[cost] = {"checkpoints": checkpoints}
        cell_space = user_problem(data, cost, cell=True).space
        for method in methods:
            t0 = time.perf_counter()
            curves, gaps, rates = [], [], []
            for seed in seeds:
                problem, info = run_method(method, data, cost, budget, seed)
                curves.append(hv_curve(problem, cost, checkpoints))
                gaps.append(shortfall(problem, cost, budget, cell_space))
                if "crossover_rate" in info:
                    rates.append(info["crossover_rate"])
            C, S = np.array(curves), np.array(gaps)
            out[cost][method] = {
                "median": np.median(C, axis=0).round(5).tolist(),
                "q25": np.percentile(C, 25, axis=0).round(5).tolist(),
                "q75": np.percentile(C, 75, axis=0).round(5).tolist(),
                "final_per_seed": C[:, -1].round(5).tolist(),
                "gain_networks_never_evaluated_median": round(float(np.median(S[:, 0])), 5),
                "gain_unlucky_twins_median": round(float(np.median(S[:, 1])), 5),
                **({"crossover_rate_final_median": round(float(np.median(rates)), 4),
                    "crossover_rate_final_range": [min(rates), max(rates)]} if rates else {}),
                "seconds_per_run": round((time.perf_counter() - t0) / len(seeds), 2),
            }
            print(f"{cost:>15} {method:>21}: median HV ratio at {budget} evals = "
                  f"{np.median(C[:, -1]):.4f} (min {C[:, -1].min():.4f}, "
                  f"{out[cost][method]['seconds_per_run']} s/run)", flush=True)
    return out


def paired_nsga2(data: Path, seeds: list[int], budget: int, problems: list[str]) -> dict:
    """evo-nas NSGA-II against pymoo's on the same seeds, many of them: the 10-seed medians of
    two methods this close (per-seed spread ~0.007 HV ratio) order them by chance."""
    out: dict = {"seeds": len(seeds)}
    for cost in problems:
        R = {m: np.array([hv_curve(run_method(m, data, cost, budget, s)[0], cost, [budget])[0]
                          for s in seeds]) for m in ("nsga2", "pymoo_nsga2")}
        d = R["nsga2"] - R["pymoo_nsga2"]
        out[cost] = {"median_nsga2": round(float(np.median(R["nsga2"])), 5),
                     "median_pymoo_nsga2": round(float(np.median(R["pymoo_nsga2"])), 5),
                     "mean_difference": round(float(d.mean()), 5),
                     "standard_error": round(float(d.std(ddof=1) / np.sqrt(len(d))), 5),
                     "nsga2_wins": int((d > 0).sum()), "pymoo_wins": int((d < 0).sum())}
        print(f"{cost:>15} NSGA-II - pymoo over {len(seeds)} paired seeds: "
              f"{d.mean():+.4f} ± {out[cost]['standard_error']:.4f}", flush=True)
    return out


def twin_free_ceiling(data: Path, problems: list[str], draws: int = 20) -> dict:
    """The HV ratio of evaluating *every* function once. NB201 lists each cell's dead-edge twins
    (same live edges and ops, so the same network) as separate rows trained separately; the
    true front takes the luckiest twin. A search that evaluated each function exactly once, via
    a random one of its twins, reaches this ratio (median of ``draws`` draws) with the whole
    table as its budget; above it, a score is noise between identical networks."""
    out: dict = {"draws": draws}
    for cost in problems:
        problem = user_problem(data, cost, cell=True)
        G = problem.genomes
        _, cls = np.unique(networks(problem.space, G), axis=0, return_inverse=True)
        F = np.column_stack([problem.values["error"], problem.values[cost]])
        ideal, nadir, true_hv = hv_scale(problem, cost)
        rng = np.random.default_rng(0)
        ratios = []
        for _ in range(draws):
            perm = rng.permutation(len(G))
            _, first = np.unique(cls[perm], return_index=True)
            ratios.append(hypervolume(F[perm[first]], ideal, nadir) / true_hv)
        front = problem.true_front(["error", cost])
        T = np.array([r["genome"] for r in front])
        out[cost] = {"functions": int(cls.max() + 1), "table_rows": len(G),
                     "ceiling_median": round(float(np.median(ratios)), 5),
                     "ceiling_min": round(float(np.min(ratios)), 5),
                     "ceiling_max": round(float(np.max(ratios)), 5),
                     "true_front_rows": len(T),
                     "true_front_rows_with_twins":
                         int(dead_edges(problem.space, T).any(axis=1).sum())}
        print(f"{cost:>15} twin-free ceiling {out[cost]['ceiling_median']:.4f} "
              f"({out[cost]['functions']} functions)", flush=True)
    return out


def bench_tau(data: Path, seeds: list[int], sizes: tuple[int, ...], builtins: tuple[str, ...]
              ) -> dict:
    """Tau on CIFAR-10 test error of the default predictor on the plain and the declared-cell
    user space, and of ``builtins`` on the declared-cell space."""
    plain, cell = user_problem(data), user_problem(data, cell=True)
    X, y = plain.genomes, plain.values["error"]
    assert np.array_equal(X, cell.genomes)
    rows = {"default | plain genes": ("default", plain.space, True),
            "default, infer_cell=False | plain genes": ("default", plain.space, False),
            "default | declared cell": ("default", cell.space, True),
            **{f"{b} | declared cell": (b, cell.space, True) for b in builtins}}
    out: dict = {"sizes": list(sizes), "seeds": seeds, "rows": {},
                 "space": "user-defined (from_csv, no features=); 'declared cell' adds "
                          "cell=CellGraph(edges, zero=0)"}
    for label, (name, space, infer) in rows.items():
        taus, secs = [], []
        for n in sizes:
            per = []
            for seed in seeds:
                idx = np.random.default_rng(seed).permutation(len(X))
                model = make_predictor(name, space, random_state=seed, infer_cell=infer)
                t0 = time.perf_counter()
                model.fit(X[idx[:n]], y[idx[:n]])
                secs.append(time.perf_counter() - t0)
                per.append(kendall_tau(y[idx[n:]], model.predict(X[idx[n:]])))
            taus.append(round(float(np.median(per)), 4))
        out["rows"][label] = {"kendall_tau": taus,
                              "fit_seconds_median": round(float(np.median(secs)), 3)}
        print(f"tau {label:>24}: " + "  ".join(f"n={n}: {t:.3f}" for n, t in
                                               zip(sizes, taus, strict=True)), flush=True)
    return out


# --------------------------------------------------------------------------- report
def machine() -> dict:
    return machine_info(packages=("numpy", "scipy", "scikit-learn", "pymoo", "matplotlib"))


STYLES = {"surrogate": ("C3", "surrogate NSGA-II (declared cell)"),
          "surrogate_plain_genes": ("C1", "surrogate NSGA-II (plain genes, graph inferred)"),
          "surrogate_plain_no_inference": ("C5", "surrogate NSGA-II (plain genes, no inference)"),
          "nsga2": ("C0", "evo-nas NSGA-II"), "pymoo_nsga2": ("C9", "pymoo integer NSGA-II"),
          "regularized": ("C2", "regularized evolution"),
          "tournament": ("C4", "tournament evolution"), "random": ("0.4", "random search")}


def plot(doc: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [c for c in PLOTTED if c in doc["hv"]]
    fig, axes = plt.subplots(1, len(panels) + 1, figsize=(5.4 * (len(panels) + 1), 4.6))
    for ax, cost in zip(axes[:-1], panels, strict=True):
        res = doc["hv"][cost]
        x = res["checkpoints"]
        for m, (c, label) in STYLES.items():
            if m in res:
                ax.plot(x, res[m]["median"], c=c, label=label)
                ax.fill_between(x, res[m]["q25"], res[m]["q75"], color=c, alpha=0.12)
        ax.axhline(HV_TARGET, ls="--", c="k", lw=0.8, label=f"{HV_TARGET} of true front")
        ax.set_ylim(0.9, 1.0)
        ax.set_xlabel("real evaluations")
        ax.set_ylabel("HV / HV(true front)")
        ax.set_title(f"NB201 error vs {cost} (median, IQR; {doc['n_seeds']} seeds)", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
    ax = axes[-1]
    tau = doc["tau"]
    for label, row in tau["rows"].items():
        ax.plot(tau["sizes"], row["kendall_tau"], marker="o", label=label,
                lw=2 if label.startswith("default") else 1)
    ax.axhline(TAU_TARGET, ls="--", c="k", lw=0.8)
    ax.set_xscale("log")
    ax.minorticks_off()
    ax.set_xticks(tau["sizes"], [str(s) for s in tau["sizes"]])
    ax.set_xlabel("training architectures")
    ax.set_ylabel("Kendall tau on all others")
    ax.set_title("predictors, user-defined NB201 (CIFAR-10 error)", fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def summarize(hv: dict, tau: dict, budget: int, settings: dict, paired: dict | None = None,
              ceiling: dict | None = None) -> dict:
    """Top-level figures for tracking across versions: the median HV ratio per problem and
    method at the full budget, the default predictor's tau at 100, the issue-13 checks, the
    many-seed NSGA-II/pymoo comparison and each problem's twin-free ceiling."""
    final = {cost: {m: v["median"][-1] for m, v in rows.items() if isinstance(v, dict)}
             for cost, rows in hv.items()}

    def check(a: str, b: str | float) -> dict:
        return {c: (r[a] >= (r[b] if isinstance(b, str) else b))
                for c, r in final.items() if a in r and (not isinstance(b, str) or b in r)}

    sizes, rows = tau["sizes"], tau["rows"]

    def at100(k: str) -> float | None:
        return rows[k]["kendall_tau"][sizes.index(100)] if 100 in sizes else None

    plain, cell = at100("default | plain genes"), at100("default | declared cell")
    checks = {"surrogate_ge_0995": check("surrogate", HV_TARGET),
              "surrogate_plain_genes_ge_0995": check("surrogate_plain_genes", HV_TARGET),
              "nsga2_ge_pymoo": check("nsga2", "pymoo_nsga2"),
              "regularized_ge_random": check("regularized", "random"),
              "tournament_ge_random": check("tournament", "random"),
              "predictor_tau_100_plain_ge_075": None if plain is None else plain >= TAU_TARGET,
              "predictor_tau_100_declared_cell_ge_075":
                  None if cell is None else cell >= TAU_TARGET}
    return {f"hv_ratio_{budget}": final, "predictor_tau_100_plain": plain,
            "predictor_tau_100_declared_cell": cell,
            "predictor_tau_100": {k: at100(k) for k in rows},
            "hv_target": HV_TARGET, "tau_target": TAU_TARGET, "checks": checks,
            "issue_hv_checks_pass": all(all(checks[k].values()) for k in (
                "surrogate_ge_0995", "nsga2_ge_pymoo", "regularized_ge_random",
                "tournament_ge_random")),
            "nsga2_minus_pymoo_paired": None if paired is None else {
                c: {"mean": v["mean_difference"], "se": v["standard_error"]}
                for c, v in paired.items() if isinstance(v, dict)},
            "twin_free_ceiling": None if ceiling is None else {
                c: v["ceiling_median"] for c, v in ceiling.items() if isinstance(v, dict)},
            "surrogate_shortfall": {
                c: {m: {"networks_never_evaluated": rows[m]["gain_networks_never_evaluated_median"],
                        "unlucky_twins": rows[m]["gain_unlucky_twins_median"]}
                    for m in ("surrogate", "surrogate_plain_genes") if m in rows}
                for c, rows in hv.items()},
            "settings": settings, "machine": machine()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path,
                    help="the NB201 table: nb201_cifar10.csv or its folder (default "
                         "$EVO_NAS_NB201_CSV, else $EVO_NAS_DATA/nb201)")
    ap.add_argument("--seeds", type=int, default=10, help="seeds per method (0..N-1)")
    ap.add_argument("--paired-seeds", type=int, default=100,
                    help="seeds of the paired NSGA-II vs pymoo comparison (0 skips it)")
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--quick", action="store_true",
                    help="2 seeds, 4 methods, FLOPs and raspi4 only, tau at 50/100, 1 seed")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--replot", action="store_true", help="redraw the PNG from the saved JSON")
    args = ap.parse_args(argv)
    name = "search_quick" if args.quick else "search"
    if args.replot:
        doc = json.loads((args.out / f"{name}.json").read_text())
        print(f"wrote {plot(doc, args.out / f'{name}_hv.png')}")
        return
    try:
        args.data = resolve_nb201_path(args.data, "--data")
    except DataError as e:
        sys.exit(f"bench_search: {e}")
    seeds = list(range(2 if args.quick else args.seeds))
    methods = list(QUICK_METHODS if args.quick else METHODS)
    problems = list(PLOTTED if args.quick else PROBLEMS)
    tau_seeds = [0] if args.quick else [0, 1, 2]
    sizes = (50, 100) if args.quick else TRAIN_SIZES
    t0 = time.perf_counter()
    warnings.filterwarnings("ignore", category=ConvergenceWarning)  # GP noise bound at 25 points
    with threadpool_limits(1):
        ceiling = twin_free_ceiling(args.data, problems)
        hv = bench_hv(args.data, seeds, args.budget, methods, problems)
        t_hv = time.perf_counter() - t0
        n_paired = min(args.paired_seeds, 4) if args.quick else args.paired_seeds
        paired = (paired_nsga2(args.data, list(range(n_paired)), args.budget, problems)
                  if n_paired > 1 else None)
        tau = bench_tau(args.data, tau_seeds, sizes, () if args.quick else BUILTINS)
    seconds = round(time.perf_counter() - t0, 1)
    settings = {"quick": args.quick, "seeds": seeds, "budget": args.budget, "methods": methods,
                "problems": problems, "paired_seeds": n_paired, "tau_seeds": tau_seeds,
                "tau_sizes": list(sizes),
                "seconds": seconds, "seconds_hv": round(t_hv, 1),
                "command": "OMP_NUM_THREADS=1 python benchmarks/bench_search.py"
                           + (" --quick" if args.quick else "")}
    doc = {
        "what": "NB201 CIFAR-10 as a user defines it (from_csv, no features=): HV ratio to the "
                "true front vs real evaluations on five problems; predictor Kendall tau vs "
                "training-set size",
        "summary": summarize(hv, tau, args.budget, settings, paired, ceiling),
        "budget": args.budget, "n_seeds": len(seeds), "seeds": seeds,
        "space": "six genes op0..op5, options = CSV op codes 0..4, TabularProblem.from_csv, no "
                 "features=, cost a cheap column; cell=CellGraph(NB201 edges, zero=0) declared "
                 "unless the method says plain genes (bench_predictor.user_problem)",
        "hv_definition": "pymoo HV on (test error %, cost); ideal = true front minimum, nadir = "
                         "(20 % error, true front max cost); reference (1.1, 1.1); ratio to the "
                         "true front's HV",
        "methods": {
            "surrogate": "search(p, 'surrogate', pop_size=20, budget=300): "
                         "SurrogateAssistedSearch defaults, default predictor; error predicted, "
                         "cost a cheap column (so the old surrogate_lut row is the same thing "
                         "and was dropped)",
            "surrogate_plain_genes": "as surrogate, on the space without the cell declaration",
            "nsga2": "search(p, 'nsga2', pop_size=20, budget=300): evo-nas make_nsga2",
            "pymoo_nsga2": "pymoo NSGA2 integer recipe (IntegerRandomSampling, SBX + PM eta 3 "
                           "with RoundingRepair, eliminate_duplicates), pop 20, via search(..., "
                           "budget=300)",
            "regularized": "search(p, 'regularized', pop_size=20, budget=300) (library default)",
            "tournament": "search(p, 'tournament', pop_size=20, budget=300) (library default)",
            "random": "distinct (canonical) uniform random architectures",
        },
        "hv": hv, "nsga2_vs_pymoo_paired": paired, "twin_free_ceiling": ceiling,
        "tau": tau, "machine": machine(), "seconds_total": seconds,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(doc, indent=1) + "\n")
    png = plot(doc, args.out / f"{name}_hv.png")
    s = doc["summary"]
    print(f"\nmedian HV ratio at {args.budget} real evaluations ({len(seeds)} seeds)")
    print(f"{'problem':16s}" + "".join(f"{m:>22s}" for m in methods))
    for cost, row in s[f"hv_ratio_{args.budget}"].items():
        print(f"{cost:16s}" + "".join(f"{row[m]:22.4f}" for m in methods))
    print(f"predictor tau at 100: plain {s['predictor_tau_100_plain']}, declared cell "
          f"{s['predictor_tau_100_declared_cell']}")
    print(json.dumps(s["checks"], indent=1))
    print("twin-free ceiling:", s["twin_free_ceiling"])
    print("surrogate shortfall (HV ratio gained by adding missed front rows):",
          json.dumps(s["surrogate_shortfall"]))
    print("NSGA-II - pymoo, paired:", s["nsga2_minus_pymoo_paired"])
    print(f"wrote {args.out / f'{name}.json'} and {png} in {seconds} s")


if __name__ == "__main__":
    main()
